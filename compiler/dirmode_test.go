package compiler

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/examples"
)

// expand deep-copies n with every alias replaced by a copy of its target,
// so that parts of one document can be written to separate files.
func expand(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return expand(n.Alias)
	}
	c := *n
	c.Anchor = ""
	c.Content = nil
	for _, ch := range n.Content {
		c.Content = append(c.Content, expand(ch))
	}
	return &c
}

// split turns a single-file PSOT into the files of directory mode (SPEC.md
// §2.13): base.yml, one domain file per domain (named so that byte-wise
// order keeps declaration order) and policies.yml.
func split(t *testing.T, data []byte) fstest.MapFS {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	root := expand(doc.Content[0])
	out := fstest.MapFS{}
	write := func(name string, pairs ...*yaml.Node) {
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: pairs}
		b, err := yaml.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out["infra/"+name] = &fstest.MapFile{Data: b}
	}
	var base, policies []*yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "domains":
			for j := 0; j+1 < len(v.Content); j += 2 {
				write(fmt.Sprintf("domains/%02d-%s.yml", j/2, v.Content[j].Value), v.Content[j], v.Content[j+1])
			}
		case "network_policies":
			policies = append(policies, k, v)
		default:
			if !strings.HasPrefix(k.Value, "x-") {
				base = append(base, k, v)
			}
		}
	}
	write("base.yml", base...)
	if policies != nil {
		write("policies.yml", policies...)
	}
	return out
}

// dump renders the model as text with positions and back-pointers left out,
// so that two models can be compared.
func dump(m *model.Infra) string {
	var b strings.Builder
	enc := func(label string, v any) {
		j, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(&b, "%s %s\n", label, j)
	}
	top := *m
	top.Domains, top.Machines, top.Firewall, top.Policies, top.SharedVolumes = nil, nil, nil, nil, nil
	enc("infra", top)
	for _, d := range m.Domains {
		c := *d
		c.Pos, c.Machines = model.Domain{}.Pos, nil
		enc("domain", c)
		for _, mc := range d.Machines {
			x := *mc
			x.Pos, x.Domain = model.Machine{}.Pos, nil
			enc("machine", x)
		}
	}
	for _, p := range m.Policies {
		c := *p
		c.Pos = model.Policy{}.Pos
		for _, e := range []*model.Endpoint{&c.From, &c.To} {
			if e.Domain != nil {
				e.Name += "@" + e.Domain.Name
			}
			e.Domain, e.Machine = nil, nil
		}
		enc("policy", c)
	}
	for _, v := range m.SharedVolumes {
		c := *v
		var names []string
		for _, mt := range c.Mounts {
			names = append(names, fmt.Sprintf("%s:%v", mt.Machine.Name, mt.ReadOnly))
		}
		c.Mounts = nil
		enc("volume", c)
		enc("mounts", names)
	}
	return b.String()
}

// TestDirectoryModeEquivalent: every example split into infra/ resolves to
// the same model as the single file (SPEC.md §2.13 item 4, §16 #23).
func TestDirectoryModeEquivalent(t *testing.T) {
	names := examples.Names()
	if len(names) == 0 {
		t.Fatal("no examples found")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, err := fs.ReadFile(examples.FS(), name+"/infra.yml")
			if err != nil {
				t.Fatal(err)
			}
			single, dl, err := Compile(fstest.MapFS{"infra.yml": {Data: data}}, Input{Path: "infra.yml", Display: "infra.yml"}, benchOptions())
			if err != nil || single == nil {
				t.Fatalf("single file: %v %v", err, dl)
			}
			dirFS := split(t, data)
			dir, dl2, err := Compile(dirFS, Input{Path: "infra", Display: "infra", Dir: true}, benchOptions())
			if err != nil || dir == nil {
				t.Fatalf("directory mode: %v %v", err, dl2)
			}
			if a, b := dump(single.Model), dump(dir.Model); a != b {
				t.Fatalf("models differ\nsingle:\n%s\ndir:\n%s", a, b)
			}
			if len(dl.Filter(0)) != len(dl2.Filter(0)) || len(dl) != len(dl2) {
				t.Errorf("diagnostic counts differ: %d vs %d", len(dl), len(dl2))
			}
		})
	}
}
