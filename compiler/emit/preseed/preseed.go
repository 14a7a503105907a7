// Package preseed renders the managed block of incus/preseed.yml (SPEC.md
// §8), a document that `incus admin init --preseed` accepts, and checks
// the user's part of an existing preseed for keys that would conflict
// with it.
package preseed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/anklume/anklume/compiler/emit/desiredstate"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/emit/yamlw"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
)

// Block returns the content of the managed block of incus/preseed.yml
// (§8) for m: `networks`, `projects` and `profiles`, in domain order;
// within a domain the default profile first, the domain profiles in
// declaration order and firewall-multi-nic last. Object fields follow the
// order of §8 (name, type, project, description, config, devices); config
// keys, device names and device properties are sorted byte-wise; every
// value is a string.
func Block(m *model.Infra) []byte {
	return Render(incus.Desired(m))
}

// Render is Block for an already built state.
func Render(s *incus.State) []byte {
	nets := yamlw.List{}
	projects := yamlw.List{}
	profiles := yamlw.List{}
	if s != nil {
		for _, n := range s.Networks {
			nets = append(nets, yamlw.Map{
				{Key: "name", Value: yamlw.Str(n.Name)},
				{Key: "type", Value: yamlw.Str(n.Type)},
				{Key: "project", Value: yamlw.Str(incus.DefaultProject)},
				{Key: "description", Value: yamlw.Str(n.Description)},
				{Key: "config", Value: desiredstate.SortedConfig(n.Config)},
			})
		}
		for _, p := range s.Projects {
			projects = append(projects, yamlw.Map{
				{Key: "name", Value: yamlw.Str(p.Name)},
				{Key: "description", Value: yamlw.Str(p.Description)},
				{Key: "config", Value: desiredstate.SortedConfig(p.Config)},
			})
			for _, x := range p.Profiles {
				profiles = append(profiles, yamlw.Map{
					{Key: "name", Value: yamlw.Str(x.Name)},
					{Key: "project", Value: yamlw.Str(x.Project)},
					{Key: "description", Value: yamlw.Str(x.Description)},
					{Key: "config", Value: desiredstate.SortedConfig(x.Config)},
					{Key: "devices", Value: desiredstate.SortedDevices(x.Devices)},
				})
			}
		}
	}
	return yamlw.Marshal(yamlw.Map{
		{Key: "networks", Value: nets},
		{Key: "projects", Value: projects},
		{Key: "profiles", Value: profiles},
	})
}

// ConflictError is a top-level key outside the managed block that the
// block owns (§8, §16 #55).
type ConflictError struct {
	// Path is the file as the caller named it.
	Path string
	// Line and Col are 1-based.
	Line, Col int
	// Key is networks, projects or profiles.
	Key string
}

// Error returns `<path>:<line>:<col>: <key>: key outside the managed
// section conflicts with anklume`.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s: key outside the managed section conflicts with anklume",
		e.Path, e.Line, e.Col, e.Key)
}

// isMarker reports whether line equals marker once trailing spaces, tabs
// and `\r` are removed (§6.3).
func isMarker(line, marker string) bool {
	return strings.TrimRight(line, " \t\r") == marker
}

// blankBlock returns data with every line of its managed block, markers
// included, emptied, so that line numbers are kept. ok is false when the
// file has no single, closed block (splicing reports those cases).
func blankBlock(data []byte) (out []byte, found, ok bool) {
	lines := bytes.SplitAfter(data, []byte("\n"))
	begin, end := -1, -1
	for i, l := range lines {
		s := strings.TrimSuffix(string(l), "\n")
		switch {
		case isMarker(s, tree.Begin):
			if begin >= 0 {
				return nil, true, false
			}
			begin = i
		case isMarker(s, tree.End) && begin >= 0 && end < 0:
			end = i
		}
	}
	if begin < 0 {
		return data, false, true
	}
	if end < 0 {
		return nil, true, false
	}
	var b bytes.Buffer
	for i, l := range lines {
		if i >= begin && i <= end {
			if bytes.HasSuffix(l, []byte("\n")) {
				b.WriteByte('\n')
			}
			continue
		}
		b.Write(l)
	}
	return b.Bytes(), true, true
}

// CheckOutside parses an existing incus/preseed.yml, ignoring its managed
// block, and returns a *ConflictError for the first top-level `networks`,
// `projects` or `profiles` key outside the block (§8). path is used in the
// message only. A file whose markers are malformed (two BEGIN lines, or no
// END) is not checked: splicing it fails with its own message. A file
// whose user part is not YAML gives an error naming path.
func CheckOutside(path string, existing []byte) error {
	data := bytes.TrimPrefix(existing, []byte("\xef\xbb\xbf"))
	rest, _, ok := blankBlock(data)
	if !ok {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(rest))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%s: reading the keys outside the managed section: %w", path, err)
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		top := doc.Content[0]
		for i := 0; i+1 < len(top.Content); i += 2 {
			k := top.Content[i]
			if k.Kind != yaml.ScalarNode {
				continue
			}
			switch k.Value {
			case "networks", "projects", "profiles":
				return &ConflictError{Path: path, Line: k.Line, Col: k.Column, Key: k.Value}
			}
		}
	}
}
