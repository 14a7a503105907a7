// Package roles embeds the Ansible roles `anklume sync` writes under
// roles/ (SPEC.md §6.7 item 2): the infra roles, the provisioning roles and
// the shared task files of roles/_shared/. The files do not carry the sync
// header; compiler/tree adds it when it writes them.
package roles

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

// all: keeps roles/_shared, whose name starts with an underscore.
//
//go:embed all:*
var files embed.FS

// File is one file of the embedded roles.
type File struct {
	// Path is relative to roles/, e.g. "base_system/tasks/main.yml".
	Path    string
	Content []byte
}

// Files returns every file of every embedded role, sorted by path. The Go
// sources of this package are not role files and are left out. Reading an
// embedded tree cannot fail; an entry that could not be read would be
// missing from the result, which the tests of this package rule out.
func Files() []File {
	var out []File
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.Contains(p, "/") {
			return nil
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, File{Path: p, Content: data})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Names returns the names of the embedded roles, _shared included,
// sorted.
func Names() []string {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil // the embedded root always exists
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}
