// Package examples embeds the example infrastructures shipped with anklume
// (SPEC.md §15): examples/<name>/infra.yml.
package examples

import (
	"embed"
	"io/fs"
	"sort"
)

//go:embed */infra.yml
var files embed.FS

// FS returns the examples as a read-only file system holding
// <name>/infra.yml.
func FS() fs.FS { return files }

// Names returns the example names, sorted.
func Names() []string {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil // the embedded root always exists
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// Default is the example `anklume init` installs without --example.
const Default = "student-sysadmin"

// Read returns the infra.yml of example name.
func Read(name string) ([]byte, error) {
	return fs.ReadFile(files, name+"/infra.yml")
}
