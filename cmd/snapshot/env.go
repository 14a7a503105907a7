package snapshotcmd

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/progress"
)

// Env is what every lifecycle command (snapshot, disp, golden, backup)
// reads: the PSOT, to learn project_name, the prefix and the domains
// (SPEC.md §12), and the Incus connection. Tests replace its functions.
type Env struct {
	IO      *cmdutil.IOStreams
	Globals *cmdutil.GlobalOptions
	Source  func() (fs.FS, compiler.Input, []string, error)
	Host    func(remote bool) (host.Options, error)
	Remote  func() string
	Getwd   func() (string, error)
	// Incus connects to the server (the Fake in tests).
	Incus func(ctx context.Context, remote string) (incusx.Server, error)
	// Now is the clock for default names (time.Now).
	Now func() time.Time
	// Getenv reads the environment (TERM=dumb turns the live progress
	// off); nil reads nothing.
	Getenv func(string) string
}

// NewEnv returns the Env of a Factory.
func NewEnv(f *cmdutil.Factory) *Env {
	return &Env{IO: f.IO, Globals: f.Globals, Source: f.Source, Host: f.Host, Remote: f.Remote,
		Getwd: f.Getwd, Incus: f.Incus, Now: time.Now, Getenv: f.Getenv}
}

// Model compiles the PSOT. Diagnostics are printed on stderr: errors
// always, warnings only with --verbose (these commands do not validate).
// An invalid PSOT gives cmdutil.ErrSilent.
func (e *Env) Model() (*model.Infra, compiler.Input, error) {
	fsys, in, _, err := e.Source()
	if err != nil {
		return nil, in, err
	}
	hopts, err := e.Host(e.Remote() != "")
	if err != nil {
		return nil, in, err
	}
	res, dl, err := compiler.Compile(fsys, in, hopts)
	if e.Globals == nil || !e.Globals.Verbose {
		dl = dl.Filter(diag.Error)
	}
	dl.Print(e.IO.ErrOut)
	if err != nil {
		return nil, in, err
	}
	if dl.HasErrors() || res == nil || res.Model == nil {
		return nil, in, cmdutil.ErrSilent
	}
	return res.Model, in, nil
}

// Connect opens the Incus connection.
func (e *Env) Connect(ctx context.Context) (incusx.Server, error) {
	return e.Incus(ctx, e.Remote())
}

// Ops opens the Incus connection with the operations of incusx.InstanceOps.
func (e *Env) Ops(ctx context.Context) (incusx.InstanceOps, error) {
	srv, err := e.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ops, ok := srv.(incusx.InstanceOps)
	if !ok {
		return nil, fmt.Errorf("the Incus connection does not support instance export, copy, publish and exec")
	}
	return ops, nil
}

// BaseDir returns the absolute base directory (SPEC.md §2.1, §6.1).
func (e *Env) BaseDir(in compiler.Input) (string, error) {
	return cmdutil.AbsBaseDir(e.Globals, e.Getwd, in)
}

// Progress returns the progress display of a long command: redrawn in
// place on a terminal, plain finished lines elsewhere or with --quiet
// (cmdutil.NewProgress). Close it when the work ends.
func (e *Env) Progress() *progress.Display {
	return cmdutil.NewProgress(e.IO, e.Globals, e.Getenv, false)
}

// Quiet reports --quiet.
func (e *Env) Quiet() bool { return e.Globals != nil && e.Globals.Quiet }

// Printf prints requested output on stdout.
func (e *Env) Printf(format string, args ...any) {
	fmt.Fprintf(e.IO.Out, format, args...)
}
