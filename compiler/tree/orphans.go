package tree

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"
)

// Orphan is a file in inventory/, group_vars/ or host_vars/ that holds a
// managed section but belongs to no known domain or machine (§6.9).
type Orphan struct {
	Path string // relative to the base directory, with `/`
	// Protected orphans (ephemeral false, or unreadable) are never deleted.
	Protected bool
	// Unreadable, when set, says why the file's protection could not be
	// read (a YAML error); such a file is kept as protected.
	Unreadable string
}

// FindOrphans lists the orphans under base, in the order inventory/,
// group_vars/, host_vars/ and byte-wise by name within each. domains and
// machines are every known name, those of disabled domains included. Only
// files named `*.yml` directly in those directories are considered, and
// only when they contain a BEGIN line; a missing directory holds none.
func FindOrphans(base string, domains, machines []string) ([]Orphan, error) {
	known := func(names []string, extra ...string) map[string]bool {
		m := make(map[string]bool, len(names)+len(extra))
		for _, n := range names {
			m[n] = true
		}
		for _, n := range extra {
			m[n] = true
		}
		return m
	}
	dirs := []struct {
		dir   string
		known map[string]bool
	}{
		{"inventory", known(domains)},
		{"group_vars", known(domains, "all")},
		{"host_vars", known(machines)},
	}
	r, err := openRoot(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking for orphans: %w", err)
	}
	defer r.close()
	var out []Orphan
	for _, d := range dirs {
		names, err := r.list(d.dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("looking for orphans: %w", err)
		}
		for _, name := range names {
			stem, ok := strings.CutSuffix(name, ".yml")
			if !ok || d.known[stem] {
				continue
			}
			p := d.dir + "/" + name
			if mode, _, err := r.lstat(p); err != nil || mode != unix.S_IFREG {
				continue // links and anything but a regular file are never orphans
			}
			data, _, _, err := r.readFile(p)
			if err != nil {
				return nil, fmt.Errorf("looking for orphans: reading %w", err)
			}
			if !HasBegin(data) {
				continue
			}
			prot, why := protected(data)
			out = append(out, Orphan{Path: p, Protected: prot, Unreadable: why})
		}
	}
	return out, nil
}

// protected applies the rule of §6.9 the way Ansible reads the file, and
// keeps the file whenever that reading is in doubt:
//
//   - the managed block alone (what anklume wrote) and the whole file (what
//     Ansible loads: duplicate keys accepted, the last one wins, YAML 1.1
//     booleans such as `no` and `off`) are each checked; the orphan is
//     protected when either says domain_ephemeral is false, or
//     domain_ephemeral is absent and instance_ephemeral is false;
//   - a block or file that is not valid YAML is protected (unreadable is
//     set): a file whose protection cannot be read is never deleted;
//   - a valid document that is not a mapping protects nothing.
func protected(data []byte) (prot bool, unreadable string) {
	if block, ok := managedBlock(data); ok {
		p, err := protectedDoc(block)
		if err != nil {
			return true, "managed section: " + err.Error()
		}
		if p {
			return true, ""
		}
	}
	p, err := protectedDoc(data)
	if err != nil {
		return true, err.Error()
	}
	return p, ""
}

// managedBlock returns the lines strictly between the BEGIN line and the
// first END line after it; ok is false when data holds no closed block.
func managedBlock(data []byte) ([]byte, bool) {
	text := strings.TrimPrefix(string(data), bom)
	begin := -1
	for _, l := range splitLines(text) {
		line := text[l.start:l.end]
		switch {
		case begin < 0 && isLine(line, Begin):
			begin = l.end + 1
		case begin >= 0 && isLine(line, End):
			return []byte(text[min(begin, l.start):l.start]), true
		}
	}
	return nil, false
}

// protectedDoc parses one YAML document into a node tree (which, unlike a
// map, accepts duplicate keys) and applies the rule to its top-level
// mapping, the last occurrence of a key winning as in Ansible.
func protectedDoc(data []byte) (bool, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return false, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return false, nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return false, nil
	}
	var domain, instance *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		switch m.Content[i].Value {
		case "domain_ephemeral":
			domain = m.Content[i+1]
		case "instance_ephemeral":
			instance = m.Content[i+1]
		}
	}
	if domain != nil {
		return isFalse(domain), nil
	}
	return instance != nil && isFalse(instance), nil
}

// isFalse reports whether n is a boolean false as PyYAML (YAML 1.1) reads
// it: an untagged plain scalar false, no or off in any of their three
// casings, or an explicit !!bool tag on one of them. A quoted 'false' is a
// string.
func isFalse(n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode {
		return false
	}
	switch n.Tag {
	case "!!bool":
	case "!!str":
		if n.Style != 0 {
			return false
		}
	default:
		return false
	}
	switch n.Value {
	case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF":
		return true
	}
	return false
}

// ReportOrphans prints each orphan to w (§6.9) and, when clean is set,
// deletes the unprotected ones, printing `deleted: <path>` (or, under
// dryRun, `[dry-run] would delete: <path>` and deleting nothing) and
// `kept (protected): <path>` for the others.
func ReportOrphans(w io.Writer, base string, orphans []Orphan, clean, dryRun bool) error {
	for _, o := range orphans {
		if o.Unreadable != "" {
			fmt.Fprintf(w, "orphan (kept, not readable as YAML: %s): %s; remove it by hand\n", o.Unreadable, o.Path)
		} else if o.Protected {
			fmt.Fprintf(w, "orphan (protected, ephemeral=false): %s; remove it by hand\n", o.Path)
		} else {
			fmt.Fprintf(w, "orphan: %s\n", o.Path)
		}
		if !clean {
			continue
		}
		switch {
		case o.Protected:
			fmt.Fprintf(w, "kept (protected): %s\n", o.Path)
		case dryRun:
			fmt.Fprintf(w, "[dry-run] would delete: %s\n", o.Path)
		default:
			if err := removeFile(base, o.Path); err != nil {
				return fmt.Errorf("deleting orphan %s: %w", o.Path, err)
			}
			fmt.Fprintf(w, "deleted: %s\n", o.Path)
		}
	}
	return nil
}

// removeFile deletes the regular file at the slash path p under base
// without following any symbolic link below base.
func removeFile(base, p string) error {
	r, err := openRoot(base)
	if err != nil {
		return err
	}
	defer r.close()
	d, name := split(p)
	df, err := r.dir(d, false)
	if err != nil {
		return err
	}
	return unix.Unlinkat(int(df.Fd()), name, 0)
}
