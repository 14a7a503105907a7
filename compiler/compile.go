// Package compiler turns a PSOT into the resolved model: load (S0),
// validate (S1, S2), resolve (S3, S4). It is pure: it reads an fs.FS and
// returns the model and diagnostics; it never prints, exits or touches the
// network.
package compiler

import (
	"io/fs"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/load"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/resolve"
	"github.com/anklume/anklume/compiler/semantic"
	"github.com/anklume/anklume/compiler/structure"
)

// Input names the PSOT to read inside an fs.FS.
type Input struct {
	// Path is the file or directory inside the fs.FS.
	Path string
	// Display is the name diagnostics use (relative to the current
	// directory when the file lies under it).
	Display string
	// Dir selects directory mode (§2.13).
	Dir bool
}

// Result is what Compile returns on success.
type Result struct {
	Model *model.Infra
	// Files are the PSOT files read, in load order.
	Files []string
}

// Compile runs the whole pipeline. A non-nil error is a fatal,
// non-positional problem (unreadable file, missing base.yml); otherwise a
// nil Result means the diagnostics hold errors.
func Compile(fsys fs.FS, in Input, opts host.Options) (*Result, diag.List, error) {
	var src *load.Source
	var dl diag.List
	var err error
	if in.Dir {
		src, dl, err = load.Dir(fsys, in.Path, in.Display)
	} else {
		src, dl, err = load.File(fsys, in.Path, in.Display)
	}
	if err != nil || src == nil {
		return nil, dl, err
	}
	s1, bad := structure.CheckMemo(src.Root, opts.SchemaMemo)
	dl.Add(s1...)
	dl.Add(semantic.Check(src.Root, bad, opts)...)
	if dl.HasErrors() {
		return nil, dl, nil
	}
	m, rl := resolve.Resolve(src.Root, opts)
	dl.Add(rl...)
	if dl.HasErrors() || m == nil {
		return nil, dl, nil
	}
	return &Result{Model: m, Files: src.Files}, dl, nil
}
