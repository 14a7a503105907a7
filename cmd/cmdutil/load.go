package cmdutil

import (
	"context"
	"io"
	"io/fs"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/incusx"
)

// LoadOptions are what Load needs: the commands' own Options fields.
type LoadOptions struct {
	// Source selects the PSOT (Factory.Source).
	Source func() (fs.FS, compiler.Input, []string, error)
	// Host gathers the host options; remote is true with --remote.
	Host func(remote bool) (host.Options, error)
	// Remote is the --remote value ("" for the local daemon).
	Remote string
	// Connect, when set, lets a resource_policy read a remote's resources
	// (CompileForRemote); nil compiles with the host options only.
	Connect func(ctx context.Context, remote string) (incusx.Server, error)
	// Extra adds diagnostics once the PSOT compiled without error (apply's
	// unknown roles), before anything is printed.
	Extra func(in compiler.Input, res *compiler.Result) diag.List
	// ErrOut and Globals: where and how the diagnostics are printed
	// (PrintDiagnostics: -q prints the errors only).
	ErrOut  io.Writer
	Globals *GlobalOptions
}

// Loaded is a PSOT that compiled without errors.
type Loaded struct {
	FS     fs.FS
	Input  compiler.Input
	Host   host.Options
	Result *compiler.Result
	Model  *model.Infra
}

// Load is the sequence every command that reads the PSOT starts with:
// select the PSOT, gather the host options, compile, print the
// diagnostics (the selection warnings first). A PSOT with errors returns
// ErrSilent (the diagnostics said it all); a fatal problem (no PSOT, an
// unreadable file, the host) is returned as it is, after the diagnostics
// gathered so far. The Input is returned even on error when it was
// selected, for the commands that name the file in a message.
func Load(ctx context.Context, o LoadOptions) (*Loaded, error) {
	fsys, in, warnings, err := o.Source()
	if err != nil {
		return &Loaded{Input: in}, err
	}
	var dl diag.List
	for _, w := range warnings {
		dl.Add(diag.Diagnostic{Severity: diag.Warning, Msg: w})
	}
	print := func() { PrintDiagnostics(o.ErrOut, o.Globals, dl) }
	hopts, err := o.Host(o.Remote != "")
	if err != nil {
		print()
		return &Loaded{Input: in, Host: hopts}, err
	}
	res, cl, err := CompileForRemote(ctx, fsys, in, hopts, o.Remote, o.Connect)
	dl.Add(cl...)
	if err == nil && res != nil && res.Model != nil && !dl.HasErrors() && o.Extra != nil {
		dl.Add(o.Extra(in, res)...)
	}
	print()
	l := &Loaded{FS: fsys, Input: in, Host: hopts}
	if err != nil {
		return l, err
	}
	if dl.HasErrors() || res == nil || res.Model == nil {
		return l, ErrSilent
	}
	l.Result, l.Model = res, res.Model
	return l, nil
}
