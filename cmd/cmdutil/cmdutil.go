// Package cmdutil holds what every anklume command shares: the Factory of
// injected dependencies, the global flags, the IO streams, the exit-code
// type and the error kinds the single error printer (cmd/root.Main)
// understands.
package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/progress"
	"github.com/lxc/incus/v6/shared/api"
)

// ExitCode is the process exit status (SPEC.md §13).
type ExitCode int

const (
	// ExitOK is success.
	ExitOK ExitCode = 0
	// ExitFailure is any error, invalid input included.
	ExitFailure ExitCode = 1
	// ExitPending is `plan --detailed-exitcode` with changes pending, and
	// `nftables status` on drift.
	ExitPending ExitCode = 2
)

// IOStreams are the standard streams of a command.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// OutTTY and ErrTTY tell whether Out and ErrOut are terminals.
	OutTTY bool
	ErrTTY bool
	// OutWidth returns the width of the terminal Out is (0: unknown).
	OutWidth func() int
}

// NewProgress returns the progress display of a long command: live (redrawn
// in place) when Out is a terminal, --quiet was not given and TERM is not
// "dumb"; plain finished lines otherwise (a pipe, CI, --quiet). color is
// whether Out may carry colour (Factory.ColorEnabled). Close it when the
// work ends.
func NewProgress(s *IOStreams, g *GlobalOptions, getenv func(string) string, color bool) *progress.Display {
	live := s.OutTTY && (g == nil || !g.Quiet) && (getenv == nil || getenv("TERM") != "dumb")
	return progress.New(progress.Options{Out: s.Out, Live: live, Color: color && live, Width: s.OutWidth})
}

// GlobalOptions are the global flags of SPEC.md §13, filled by the root
// command before any subcommand runs.
type GlobalOptions struct {
	File    string
	FileSet bool
	BaseDir string
	Remote  string
	NoColor bool
	Verbose bool
	Quiet   bool
}

// BuildInfo identifies the binary (injected with -ldflags).
type BuildInfo struct {
	Version string
	Commit  string
}

// Factory carries every dependency a command needs, so tests can replace
// the file system, the environment and the host.
type Factory struct {
	IO *IOStreams
	// Getenv and LookupEnv read the environment.
	Getenv    func(string) string
	LookupEnv func(string) (string, bool)
	// Getwd returns the current directory (absolute, OS form).
	Getwd func() (string, error)
	// FS returns a file system rooted at dir (os.DirFS in production).
	FS func(dir string) fs.FS
	// Host gathers the host context; remote is true with --remote.
	Host func(remote bool) (host.Options, error)
	// Schema returns the embedded JSON Schema, and SchemaPart the schema of
	// one directory-mode file (base, domains or policies).
	Schema     func() []byte
	SchemaPart func(name string) ([]byte, error)
	Build      BuildInfo
	// Incus connects to the Incus server: the local daemon when remote is
	// "", else that remote of the Incus client configuration. Tests put a
	// *incusx.Fake here.
	Incus func(ctx context.Context, remote string) (incusx.Server, error)
	// Remotes lists the remote names of the Incus client configuration,
	// for the completion of --remote (nil: none).
	Remotes func() []string
	// Globals is filled by the root command's persistent flags.
	Globals *GlobalOptions
}

// FlagError is a usage problem: Main prints it followed by the usage.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// FlagErrorf builds a FlagError.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{Err: fmt.Errorf(format, args...)}
}

// ErrSilent means the command already reported the problem (for example
// the diagnostics of a failed validation): Main prints nothing more and
// exits 1.
var ErrSilent = errors.New("silent error")

// ExitError makes Main exit with Code without printing anything.
type ExitError struct{ Code ExitCode }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Remote returns the --remote value, or ANKLUME_REMOTE when the flag is
// not given.
func (f *Factory) Remote() string {
	if f.Globals != nil && f.Globals.Remote != "" {
		return f.Globals.Remote
	}
	if f.Getenv != nil {
		return f.Getenv("ANKLUME_REMOTE")
	}
	return ""
}

// Source picks the PSOT as SPEC.md §2.1 says and returns the file system
// to read it from, the compiler input and the selection warnings.
func (f *Factory) Source() (fs.FS, compiler.Input, []string, error) {
	g := f.Globals
	if g == nil {
		g = &GlobalOptions{}
	}
	wd, err := f.Getwd()
	if err != nil {
		return nil, compiler.Input{}, nil, fmt.Errorf("reading the current directory: %w", err)
	}
	cwd := filepath.ToSlash(wd)
	root, p := cwd, g.File
	if g.FileSet {
		root, p = compiler.SourceRoot(cwd, filepath.ToSlash(g.File))
	}
	fsys := f.FS(filepath.FromSlash(root))
	in, warnings, err := compiler.Select(fsys, p, g.FileSet)
	var nf *compiler.NotFoundError
	if errors.As(err, &nf) {
		nf.Path = g.File // report the path as the user wrote it
	}
	if err != nil {
		return nil, compiler.Input{}, nil, err
	}
	return fsys, in, warnings, nil
}

// ColorEnabled tells whether a stream may carry colour (SPEC.md §13): it
// is a TTY, NO_COLOR is not present in the environment (even empty),
// TERM is not "dumb" and --no-color was not given.
func (f *Factory) ColorEnabled(tty bool) bool {
	if !tty || (f.Globals != nil && f.Globals.NoColor) {
		return false
	}
	if f.LookupEnv != nil {
		if _, ok := f.LookupEnv("NO_COLOR"); ok {
			return false
		}
	}
	return f.Getenv == nil || f.Getenv("TERM") != "dumb"
}

// AbsBaseDir returns the absolute base directory of SPEC.md §2.1: the
// --base-dir flag of g, or the directory of the PSOT in, resolved against
// the current directory that getwd returns.
func AbsBaseDir(g *GlobalOptions, getwd func() (string, error), in compiler.Input) (string, error) {
	override := ""
	if g != nil {
		override = filepath.ToSlash(g.BaseDir)
	}
	base := filepath.FromSlash(compiler.BaseDir(in, override))
	if filepath.IsAbs(base) {
		return filepath.Clean(base), nil
	}
	wd, err := getwd()
	if err != nil {
		return "", fmt.Errorf("reading the current directory: %w", err)
	}
	return filepath.Join(wd, base), nil
}

// PrintDiagnostics writes dl to w as SPEC.md §3.2 lays it out; with -q
// (g.Quiet) only the errors and the count line are printed.
func PrintDiagnostics(w io.Writer, g *GlobalOptions, dl diag.List) {
	if g != nil && g.Quiet {
		dl = dl.Filter(diag.Error)
	}
	dl.Print(w)
}

// CompileForRemote compiles the PSOT like compiler.Compile and, with
// --remote (remote != ""), a resource_policy and no host resources (the
// local machine is not the Incus host, so none are detected), reads the
// Incus host's resources (GET /1.0/resources) through connect and compiles
// again with them. plan does the same with its reads, so validate, sync,
// apply and plan compute the same limits and the plan after
// `apply --remote` is empty. When the server cannot be reached, the first
// result (W7, no limits) is kept, with a warning saying why.
func CompileForRemote(ctx context.Context, fsys fs.FS, in compiler.Input, hopts host.Options, remote string,
	connect func(ctx context.Context, remote string) (incusx.Server, error)) (*compiler.Result, diag.List, error) {
	res, dl, err := compiler.Compile(fsys, in, hopts)
	if err != nil || res == nil || res.Model == nil || remote == "" || connect == nil ||
		res.Model.Global.ResourcePolicy == nil || hopts.Resources != nil {
		return res, dl, err
	}
	srv, cerr := connect(ctx, remote)
	var r *api.Resources
	if cerr == nil {
		r, cerr = srv.Resources(ctx)
	}
	if cerr != nil || r == nil || r.CPU.Total == 0 || r.Memory.Total == 0 {
		why := "the server reported no CPU or memory"
		if cerr != nil {
			why = cerr.Error()
		}
		dl.Add(diag.Diagnostic{Severity: diag.Warning, Msg: "could not read the resources of remote " + remote + ": " + why})
		return res, dl, nil
	}
	hopts.Resources = &host.Resources{CPU: int64(r.CPU.Total), Memory: int64(r.Memory.Total)}
	return compiler.Compile(fsys, in, hopts)
}
