// Package consolecmd implements `anklume console [--no-attach] [--limit D]
// [--socket NAME]`: the tmux session "anklume", one window per domain and
// one pane per machine, each pane running `anklume shell MACHINE` (the
// same binary, the same -f and --remote), coloured by trust level. See
// internal/console for the layout and for what a guest cannot spoof.
//
// The panes run anklume itself rather than the incus CLI, so the console
// needs only tmux: the project of each machine comes from infra.yml, and
// the Incus connection is the one every other command uses.
package consolecmd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/console"
)

// Options are the inputs of console.
type Options struct {
	*snapshotcmd.Env
	NoAttach bool
	Limit    []string
	// Socket is the tmux server socket name (tmux -L).
	Socket string
	// Executable returns the path of the anklume binary the panes run
	// (os.Executable).
	Executable func() (string, error)
	// Environ is the process environment (os.Environ); the ANKLUME_*,
	// INCUS_* and NO_COLOR variables are handed to the panes.
	Environ func() []string
}

// NewCmdConsole builds the console command. runF replaces the run function
// in tests; nil runs the real one.
func NewCmdConsole(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Env: snapshotcmd.NewEnv(f), Executable: os.Executable, Environ: os.Environ}
	cmd := &cobra.Command{
		Use:   "console [--no-attach] [--limit DOMAIN]... [--socket NAME]",
		Short: "Open a tmux session with a shell in every machine, coloured by trust level",
		Long: "Create (or reuse) the tmux session \"anklume\": one window per domain, in address\n" +
			"order, and one pane per machine running a root shell in it. Window tabs and pane\n" +
			"borders take the domain's trust colour, and each pane border shows\n" +
			"<domain>/<machine>, written by anklume: nothing running inside a machine can\n" +
			"change it. Running console again adds what is missing and restarts panes whose\n" +
			"shell ended. Needs tmux 3.2 or later.",
		Example: "  anklume console\n" +
			"  anklume console --limit work --limit perso\n" +
			"  anklume console --no-attach && tmux attach -t anklume",
		Args:              cmdutil.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(c.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.NoAttach, "no-attach", false, "create or update the session without attaching to it")
	fl.StringArrayVar(&opts.Limit, "limit", nil, "only this domain (repeatable)")
	fl.StringVar(&opts.Socket, "socket", "", "tmux server socket name, as tmux -L (default: tmux's own)")
	return cmd
}

// Run is `anklume console`.
func Run(ctx context.Context, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	t := console.Tmux{Socket: opts.Socket}
	if err := t.CheckVersion(ctx); err != nil {
		return err
	}
	m, _, err := opts.Model()
	if err != nil {
		return err
	}
	exe, err := opts.Executable()
	if err != nil {
		return fmt.Errorf("finding the anklume binary: %w", err)
	}
	windows, err := console.Layout(m, opts.Limit, func(mc *model.Machine) []string {
		return PaneCommand(exe, opts.Globals, opts.Remote(), mc.Name)
	})
	if err != nil {
		return err
	}
	dir, err := opts.Getwd()
	if err != nil {
		return fmt.Errorf("reading the current directory: %w", err)
	}
	r, err := console.Ensure(ctx, t, windows, dir, PaneEnv(opts.Environ()))
	if err != nil {
		return err
	}
	if !opts.Quiet() {
		verb := "updated"
		if r.Created {
			verb = "created"
		}
		fmt.Fprintf(opts.IO.Out, "console: %s tmux session %q: %s, %s (%d new, %d restarted)\n",
			verb, console.Session, plural(r.Windows, "window"), plural(r.Panes, "pane"), r.NewPanes, r.Respawned)
	}
	if opts.NoAttach {
		if !opts.Quiet() {
			fmt.Fprintf(opts.IO.Out, "attach with: %s\n", strings.Join(append(append([]string{"tmux"}, t.Args()...), "attach", "-t", console.Session), " "))
		}
		return nil
	}
	return attach(ctx, t)
}

// PaneCommand is the argument vector of a machine's pane: the anklume
// binary with the -f and --remote in effect, then `shell MACHINE`.
func PaneCommand(exe string, g *cmdutil.GlobalOptions, remote, machine string) []string {
	argv := []string{exe}
	if g != nil && g.FileSet {
		argv = append(argv, "-f", g.File)
	}
	if remote != "" {
		argv = append(argv, "--remote", remote)
	}
	return append(argv, "shell", machine)
}

// PaneEnv keeps the variables of environ that change what anklume reads
// or connects to: ANKLUME_*, INCUS_* and NO_COLOR.
func PaneEnv(environ []string) []string {
	var out []string
	for _, e := range environ {
		name, _, _ := strings.Cut(e, "=")
		if strings.HasPrefix(name, "ANKLUME_") || strings.HasPrefix(name, "INCUS_") || name == "NO_COLOR" {
			out = append(out, e)
		}
	}
	return out
}

// attach attaches the terminal to the session, or switches the current
// client to it when anklume already runs inside tmux.
func attach(ctx context.Context, t console.Tmux) error {
	verb := "attach-session"
	if os.Getenv("TMUX") != "" {
		verb = "switch-client"
	}
	cmd := exec.CommandContext(ctx, t.Binary(), append(t.Args(), verb, "-t", "="+console.Session)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("tmux %s: %w", verb, err)
	}
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
