// Package nftables implements `anklume nftables render [-o FILE]`,
// `anklume nftables deploy [--dry-run] [--no-persist] [--skip-preflight]`
// and `anklume nftables status` (SPEC.md §7.1, §7.7, §7.8).
package nftables

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/nft"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/aiaccess"
	"github.com/anklume/anklume/internal/incusx"
	nftsys "github.com/anklume/anklume/internal/nftables"
)

// Actions of the nftables command.
const (
	Render = "render"
	Deploy = "deploy"
	Status = "status"
)

// Options are the inputs of the nftables subcommands.
type Options struct {
	IO      *cmdutil.IOStreams
	Globals *cmdutil.GlobalOptions
	// Source picks the PSOT (§2.1).
	Source func() (fs.FS, compiler.Input, []string, error)
	// Host gathers the host context (§2.14).
	Host   func(remote bool) (host.Options, error)
	Remote func() string
	// Getwd returns the current directory, against which a relative base
	// directory or output file is resolved.
	Getwd func() (string, error)
	// System is the host nft, paths and systemd that deploy and status use.
	System nftsys.System
	// Incus connects to the server, to read the AI access holder that
	// `anklume ai switch` recorded (only with ai_access_policy: exclusive);
	// nil skips it.
	Incus func(ctx context.Context, remote string) (incusx.Server, error)

	// Action is Render, Deploy or Status.
	Action string
	// Output is render's -o FILE ("" prints to stdout).
	Output        string
	DryRun        bool
	NoPersist     bool
	SkipPreflight bool
}

// NewCmdNftables builds `anklume nftables` and its three subcommands.
// runF replaces the run function in tests; nil runs the real one.
func NewCmdNftables(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	newOpts := func(action string) *Options {
		return &Options{
			IO:      f.IO,
			Globals: f.Globals,
			Source:  f.Source,
			Host:    f.Host,
			Remote:  f.Remote,
			Getwd:   f.Getwd,
			System:  nftsys.DefaultSystem(),
			Incus:   f.Incus,
			Action:  action,
		}
	}
	run := func(opts *Options) error {
		if runF != nil {
			return runF(opts)
		}
		return Run(opts)
	}
	cmd := &cobra.Command{
		Use: "nftables",
		Example: "  anklume nftables render\n" +
			"  sudo anklume nftables deploy\n" +
			"  anklume nftables status",
		Short: "Render, deploy and check the nftables isolation rules (table inet anklume)",
		Long: "The isolation between domains is one nftables table, inet anklume, generated from\n" +
			"the PSOT: render prints it, deploy loads it on this host atomically and keeps it\n" +
			"across reboots, status compares the loaded table with the PSOT.",
		// Without a subcommand the help is printed; an unknown one is a
		// usage error (exit 1), not help.
		Args: cobra.ArbitraryArgs,
		RunE: cmdutil.GroupRunE,
	}

	ro := newOpts(Render)
	renderCmd := &cobra.Command{
		Use: "render",
		Long: "Print the nftables ruleset that isolates the domains, as generated from the\n" +
			"PSOT and the AI access holder recorded in Incus: the table inet anklume that\n" +
			"deploy loads. Nothing is changed.",
		Example: "  anklume nftables render\n" +
			"  anklume nftables render -o /tmp/anklume.nft",
		Short: "Print the ruleset (the content of the managed section)",
		Args:  cmdutil.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return run(ro) },
	}
	renderCmd.Flags().StringVarP(&ro.Output, "output", "o", "", "write the ruleset to `FILE` instead of stdout")

	do := newOpts(Deploy)
	deployCmd := &cobra.Command{
		Use: "deploy",
		Example: "  sudo anklume nftables deploy\n" +
			"  sudo anklume nftables deploy --dry-run\n" +
			"  sudo anklume nftables deploy --no-persist",
		Short: "Check and load the ruleset on this host, and load it again at boot",
		Long: "Refresh nftables/anklume-isolation.nft, refuse anything in it but table inet anklume,\n" +
			"check it with nft -c, load it with nft -f (one atomic transaction) and copy it to\n" +
			"/etc/nftables.d/ with a systemd unit that loads it at boot. Needs root.",
		Args: cmdutil.NoArgs,
		RunE: func(*cobra.Command, []string) error { return run(do) },
	}
	fl := deployCmd.Flags()
	fl.BoolVar(&do.DryRun, "dry-run", false, "check the file with nft -c and print it; load and install nothing")
	fl.BoolVar(&do.NoPersist, "no-persist", false, "load the rules now only; do not install them for the next boot")
	fl.BoolVar(&do.SkipPreflight, "skip-preflight", false, "skip the root and bridge netfilter checks")

	so := newOpts(Status)
	statusCmd := &cobra.Command{
		Use: "status",
		Long: "Compare the table inet anklume loaded in the kernel with the one the PSOT\n" +
			"generates. Exit 0 when they match, 2 on drift or when the table is not\n" +
			"loaded, 1 on error.",
		Example: "  anklume nftables status\n" +
			"  sudo anklume nftables status",
		Short: "Compare the loaded table with the PSOT (exit 2 on drift or when not loaded)",
		Args:  cmdutil.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return run(so) },
	}

	cmd.AddCommand(renderCmd, deployCmd, statusCmd)
	return cmd
}

// Run runs the action of opts.
func Run(opts *Options) error {
	if opts.Action == Status && opts.Remote() != "" {
		return &nftsys.Error{Msg: nftsys.MsgRemote}
	}
	m, in, err := opts.compile()
	if err != nil {
		return err
	}
	ctx := context.Background()
	m = opts.liveHolder(ctx, m)
	switch opts.Action {
	case Render:
		return opts.render(m)
	case Deploy:
		base, err := opts.baseDir(in)
		if err != nil {
			return err
		}
		return opts.report(opts.System.Deploy(ctx, nftsys.DeployOptions{
			Model:         m,
			Base:          base,
			Remote:        opts.Remote(),
			DryRun:        opts.DryRun,
			NoPersist:     opts.NoPersist,
			SkipPreflight: opts.SkipPreflight,
			Out:           opts.IO.Out,
			ErrOut:        opts.IO.ErrOut,
		}))
	case Status:
		st, diff, err := opts.System.Status(ctx, nft.Render(m))
		if err != nil {
			return opts.report(err)
		}
		fmt.Fprintln(opts.IO.Out, st)
		if _, err := opts.IO.Out.Write(diff); err != nil {
			return fmt.Errorf("printing the diff: %w", err)
		}
		if st != nftsys.InSync {
			return &cmdutil.ExitError{Code: cmdutil.ExitPending}
		}
		return nil
	}
	return fmt.Errorf("unknown nftables action %q", opts.Action)
}

// liveHolder applies the AI access holder recorded in Incus (aiaccess) to
// m, for the rules that are printed, loaded or compared, so render shows
// what deploy loads. When Incus cannot be read, a warning says the PSOT's
// ai_access_default is used.
func (opts *Options) liveHolder(ctx context.Context, m *model.Infra) *model.Infra {
	o, warn := aiaccess.Resolve(ctx, opts.Incus, opts.Remote(), m)
	if warn != "" && (opts.Globals == nil || !opts.Globals.Quiet) {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s\n", warn)
	}
	return o
}

// render prints the ruleset, or writes it to -o FILE.
func (opts *Options) render(m *model.Infra) error {
	text := nft.Render(m)
	if opts.Output == "" {
		if _, err := opts.IO.Out.Write(text); err != nil {
			return fmt.Errorf("printing the ruleset: %w", err)
		}
		return nil
	}
	p := opts.Output
	if !filepath.IsAbs(p) {
		wd, err := opts.Getwd()
		if err != nil {
			return fmt.Errorf("reading the current directory: %w", err)
		}
		p = filepath.Join(wd, p)
	}
	if err := os.WriteFile(p, text, 0o644); err != nil {
		return fmt.Errorf("writing the ruleset: %w", err)
	}
	return nil
}

// compile loads, validates and resolves the PSOT, printing its
// diagnostics on stderr.
func (opts *Options) compile() (*model.Infra, compiler.Input, error) {
	l, err := cmdutil.Load(context.Background(), cmdutil.LoadOptions{Source: opts.Source, Host: opts.Host,
		Remote: opts.Remote(), ErrOut: opts.IO.ErrOut, Globals: opts.Globals})
	return l.Model, l.Input, err
}

// baseDir returns the absolute base directory (§2.1): --base-dir, or the
// directory of the PSOT, resolved against the current directory.
func (opts *Options) baseDir(in compiler.Input) (string, error) {
	return cmdutil.AbsBaseDir(opts.Globals, opts.Getwd, in)
}

// report prints an error that carries a hint as `error: MSG` and
// `  hint: HINT` and returns ErrSilent; other errors go back to Main,
// which prints them.
func (opts *Options) report(err error) error {
	var e *nftsys.Error
	if errors.As(err, &e) && e.Hint != "" {
		fmt.Fprintf(opts.IO.ErrOut, "error: %s\n  hint: %s\n", e.Msg, e.Hint)
		return cmdutil.ErrSilent
	}
	return err
}
