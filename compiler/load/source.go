package load

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/anklume/anklume/compiler/diag"
)

// Source is a loaded PSOT: the merged root node and the files it came from.
type Source struct {
	// Root is the document root (single file) or the merge of the
	// directory-mode files, which is equivalent to the single file.
	Root *Node
	// Files lists the files read, in load order.
	Files []string
	// Dir is true in directory mode.
	Dir bool
}

// readCapped reads a file, stopping just past MaxFileSize so that a huge
// file is rejected without being read whole.
func readCapped(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}

// File loads a single-file PSOT. name is the path inside fsys and display
// the name diagnostics use.
func File(fsys fs.FS, name, display string) (*Source, diag.List, error) {
	data, err := readCapped(fsys, name)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", display, err)
	}
	root, dl := Parse(data, display, 0)
	if root == nil {
		return nil, dl, nil
	}
	return &Source{Root: root, Files: []string{display}}, dl, nil
}

var (
	baseKeys     = []string{"format_version", "global", "project_name", "shared_volumes"}
	policiesKeys = []string{"network_policies"}
)

// Dir loads a directory-mode PSOT (SPEC.md §2.13): dir/base.yml, then
// dir/domains/*.yml in byte-wise order of name, then dir/policies.yml.
// display is the directory name as diagnostics show it.
func Dir(fsys fs.FS, dir, display string) (*Source, diag.List, error) {
	var dl diag.List
	src := &Source{Dir: true}
	join := func(p string) string { return path.Join(dir, p) }
	disp := func(p string) string {
		if display == "" || display == "." {
			return p
		}
		return strings.TrimSuffix(display, "/") + "/" + p
	}
	idx := 0
	parse := func(rel string) (*Node, bool, error) {
		data, err := readCapped(fsys, join(rel))
		if err != nil {
			return nil, false, err
		}
		d := disp(rel)
		src.Files = append(src.Files, d)
		n, pd := Parse(data, d, idx)
		idx++
		dl.Add(pd...)
		return n, n != nil, nil
	}

	base, ok, err := parse("base.yml")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s: not found in infra directory", disp("base.yml"))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", disp("base.yml"), err)
	}
	root := &Node{Kind: Map, Pos: diag.Pos{File: disp("base.yml"), Line: 1, Col: 1}}
	if ok {
		root.Pos = base.Pos
		if base.Kind == Map {
			root.Pos = diag.Pos{File: disp("base.yml"), Line: 1, Col: 1}
			for _, e := range base.Entries {
				if !allowed(e.Key, baseKeys) {
					dl.Errorf(e.KeyPos, diag.Path("").Key(e.Key).String(), "allowed keys in base.yml: "+strings.Join(baseKeys, ", "), "unknown key %s", quote(e.Key))
					continue
				}
				root.Entries = append(root.Entries, e)
			}
		} else if base.Kind != Null {
			dl.Errorf(base.Pos, "(root)", "", "must be a mapping, got %s", base.KindName())
		}
	}

	// Domain files.
	var names []string
	entries, err := fs.ReadDir(fsys, join("domains"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("reading %s: %w", disp("domains"), err)
	}
	for _, e := range entries {
		switch read, warn := domainFile(e.Name(), e.IsDir()); {
		case read:
			names = append(names, e.Name())
		case warn:
			dl.Warnf(diag.Pos{File: disp("domains/" + e.Name()), Line: 1, Col: 1}, "domains", "rename it without the leading dot to read it",
				"hidden file %s is not read", disp("domains/"+e.Name()))
		}
	}
	sort.Strings(names)
	domains := &Node{Kind: Map, Pos: root.Pos}
	seen := map[string]diag.Pos{}
	for _, name := range names {
		n, ok, err := parse("domains/" + name)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", disp("domains/"+name), err)
		}
		if !ok || n.Kind == Null {
			continue
		}
		if n.Kind != Map {
			dl.Errorf(n.Pos, "domains", "", "must be a mapping, got %s", n.KindName())
			continue
		}
		for _, e := range n.Entries {
			if first, dup := seen[e.Key]; dup {
				dl.Errorf(e.KeyPos, diag.Path("domains").Key(e.Key).String(), "", "domain %s is already defined at %s", quote(e.Key), first)
				continue
			}
			seen[e.Key] = e.KeyPos
			domains.Entries = append(domains.Entries, e)
		}
	}
	root.Entries = append(root.Entries, Entry{Key: "domains", KeyPos: root.Pos, Value: domains})

	pol, ok, err := parse("policies.yml")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("reading %s: %w", disp("policies.yml"), err)
	}
	if ok {
		if pol.Kind == Map {
			for _, e := range pol.Entries {
				if !allowed(e.Key, policiesKeys) {
					dl.Errorf(e.KeyPos, diag.Path("").Key(e.Key).String(), "allowed keys in policies.yml: "+strings.Join(policiesKeys, ", "), "unknown key %s", quote(e.Key))
					continue
				}
				root.Entries = append(root.Entries, e)
			}
		} else if pol.Kind != Null {
			dl.Errorf(pol.Pos, "(root)", "", "must be a mapping, got %s", pol.KindName())
		}
	}
	if dl.HasErrors() {
		return nil, dl, nil
	}
	src.Root = root
	return src, dl, nil
}

func allowed(k string, keys []string) bool {
	if strings.HasPrefix(k, "x-") {
		return true
	}
	for _, a := range keys {
		if a == k {
			return true
		}
	}
	return false
}

// domainFile applies the rule for the entries of domains/: a domain file
// is a file whose name ends in `.yml` and starts with neither `.` nor `#`.
// Editor files are skipped silently: Emacs locks (`.#work.yml`, often a
// dangling link) and autosaves (`#work.yml#`), backups (`work.yml~`), swap
// files (`.work.yml.swp`). Any other hidden `*.yml` (`.draft.yml`) is
// skipped with a warning (warn), so that a domain is never added, or
// silently dropped, by a file the user does not see in `ls`.
func domainFile(name string, dir bool) (read, warn bool) {
	if dir || !strings.HasSuffix(name, ".yml") {
		return false, false
	}
	switch {
	case strings.HasPrefix(name, ".#"), strings.HasPrefix(name, "#"):
		return false, false
	case strings.HasPrefix(name, "."):
		return false, true
	}
	return true, false
}
