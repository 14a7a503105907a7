package tree

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Orphan is a file in inventory/, group_vars/ or host_vars/ that holds a
// managed section but belongs to no known domain or machine (§6.9).
type Orphan struct {
	Path string // relative to the base directory, with `/`
	// Protected orphans (ephemeral false) are never deleted.
	Protected bool
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
	var out []Orphan
	for _, d := range dirs {
		entries, err := os.ReadDir(filepath.Join(base, d.dir))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("looking for orphans: %w", err)
		}
		for _, e := range entries {
			stem, ok := strings.CutSuffix(e.Name(), ".yml")
			if !ok || !e.Type().IsRegular() || d.known[stem] {
				continue
			}
			p := d.dir + "/" + e.Name()
			data, err := os.ReadFile(filepath.Join(base, d.dir, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("looking for orphans: reading %s: %w", p, err)
			}
			if !HasBegin(data) {
				continue
			}
			out = append(out, Orphan{Path: p, Protected: protected(data)})
		}
	}
	return out, nil
}

// protected applies the rule of §6.9: the file parses to a mapping and
// either domain_ephemeral is false, or it is absent and instance_ephemeral
// is false.
func protected(data []byte) bool {
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil || m == nil {
		return false
	}
	if v, ok := m["domain_ephemeral"]; ok {
		return v == false
	}
	return m["instance_ephemeral"] == false
}

// ReportOrphans prints each orphan to w (§6.9) and, when clean is set,
// deletes the unprotected ones, printing `deleted: <path>` (or, under
// dryRun, `[dry-run] would delete: <path>` and deleting nothing) and
// `kept (protected): <path>` for the others.
func ReportOrphans(w io.Writer, base string, orphans []Orphan, clean, dryRun bool) error {
	for _, o := range orphans {
		if o.Protected {
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
			if err := os.Remove(filepath.Join(base, filepath.FromSlash(o.Path))); err != nil {
				return fmt.Errorf("deleting orphan %s: %w", o.Path, err)
			}
			fmt.Fprintf(w, "deleted: %s\n", o.Path)
		}
	}
	return nil
}
