// Package shellcmd implements `anklume shell MACHINE [-- CMD ARGS...]`: a
// shell, or a command, in a machine of infra.yml, through the Incus API.
// The user names the machine as infra.yml does; anklume finds its Incus
// project and instance name.
//
// When standard input and output are terminals, the command gets a
// terminal in the instance: the local terminal is put in raw mode (and
// restored on exit), its size is sent at start and again on every
// SIGWINCH through the exec control channel. Otherwise the command runs
// with plain streams, stdout and stderr kept apart. anklume exits with the
// command's exit status.
//
// Without CMD, the shell is `su -l` (a login shell of root, as `incus
// shell` does); when the guest has no su (exit status 127 before any
// output), `/bin/sh -l` is run instead.
package shellcmd

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/anklume/anklume/cmd/cmdutil"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/target"
)

// Options are the inputs of shell.
type Options struct {
	*snapshotcmd.Env
	Machine string
	// Argv is everything after `--`; empty runs a login shell.
	Argv []string
	// Terminal returns the file descriptors of stdin and stdout when both
	// are terminals (nil: checked on IO.In and IO.Out).
	Terminal func() (in, out int, ok bool)
}

// NewCmdShell builds the shell command. runF replaces the run function in
// tests; nil runs the real one.
func NewCmdShell(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Env: snapshotcmd.NewEnv(f)}
	cmd := &cobra.Command{
		Use:   "shell MACHINE [-- CMD ARGS...]",
		Short: "Open a shell, or run a command, in a machine",
		Long: "Open a root login shell in MACHINE (a machine name from infra.yml), or run\n" +
			"CMD ARGS in it as an argument vector (never through a shell string). anklume\n" +
			"finds the machine's Incus project itself. On a terminal, the command gets a\n" +
			"real terminal that follows the size of yours; anklume exits with its status.",
		Example: "  anklume shell dev-web\n" +
			"  anklume shell dev-web -- hostname\n" +
			"  anklume shell dev-web -- sh -c 'ls /srv | wc -l'",
		Args: func(c *cobra.Command, args []string) error {
			dash := c.ArgsLenAtDash()
			if len(args) == 0 || dash == 0 {
				return cmdutil.FlagErrorf("shell needs a machine name: anklume shell MACHINE [-- CMD ARGS...]")
			}
			if dash < 0 && len(args) > 1 || dash > 1 {
				return cmdutil.FlagErrorf("put the command after --: anklume shell MACHINE -- CMD ARGS...")
			}
			opts.Machine, opts.Argv = args[0], args[1:]
			return nil
		},
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(c.Context(), opts)
		},
	}
	return cmd
}

// Run is `anklume shell`.
func Run(ctx context.Context, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m, _, err := opts.Model()
	if err != nil {
		return err
	}
	mc, err := target.Machine(m, opts.Machine)
	if err != nil {
		return err
	}
	srv, err := opts.Ops(ctx)
	if err != nil {
		return err
	}
	req := incusx.ExecIO{Stdin: opts.IO.In, Stdout: opts.IO.Out, Stderr: opts.IO.ErrOut}
	terminal := opts.Terminal
	if terminal == nil {
		terminal = func() (int, int, bool) { return terminalFDs(opts.IO.In, opts.IO.Out) }
	}
	if in, out, ok := terminal(); ok {
		restore, err := interactive(&req, in, out)
		if err != nil {
			return err
		}
		defer restore()
	}
	argv := opts.Argv
	if len(argv) == 0 {
		argv = []string{"su", "-l"}
	}
	first := req
	seen := &countingWriter{w: req.Stdout}
	first.Stdout = seen
	code, err := srv.Exec(ctx, mc.Domain.Project, mc.Instance, argv, first)
	if err == nil && code == 127 && len(opts.Argv) == 0 && seen.n == 0 {
		code, err = srv.Exec(ctx, mc.Domain.Project, mc.Instance, []string{"/bin/sh", "-l"}, req)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return &cmdutil.ExitError{Code: cmdutil.ExitCode(code)}
	}
	return nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += len(p)
	return c.w.Write(p)
}

// terminalFDs returns the descriptors of in and out when both are
// terminals.
func terminalFDs(in io.Reader, out io.Writer) (int, int, bool) {
	fin, ok1 := in.(interface{ Fd() uintptr })
	fout, ok2 := out.(interface{ Fd() uintptr })
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	i, o := int(fin.Fd()), int(fout.Fd())
	return i, o, term.IsTerminal(i) && term.IsTerminal(o)
}

// interactive turns req into a terminal session: the local terminal in
// raw mode, its size, and a resize on every SIGWINCH. restore puts the
// terminal back and stops the signal forwarding.
func interactive(req *incusx.ExecIO, in, out int) (restore func(), err error) {
	state, err := term.MakeRaw(in)
	if err != nil {
		return nil, err
	}
	req.Interactive = true
	req.Env = map[string]string{"TERM": termName()}
	req.Width, req.Height, _ = term.GetSize(out)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	sizes := make(chan incusx.TermSize, 1)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-winch:
				w, h, err := term.GetSize(out)
				if err != nil {
					continue
				}
				select { // keep only the latest size
				case <-sizes:
				default:
				}
				sizes <- incusx.TermSize{Width: w, Height: h}
			}
		}
	}()
	req.Resize = sizes
	return func() {
		signal.Stop(winch)
		close(stop)
		_ = term.Restore(in, state)
	}, nil
}

// termName is the TERM given to the instance: the local one, or xterm.
func termName() string {
	if t := os.Getenv("TERM"); t != "" && t != "dumb" {
		return t
	}
	return "xterm"
}
