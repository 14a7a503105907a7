// Package upgrade implements `anklume upgrade [--force]` (SPEC.md §12.8):
// after an update of the binary it rewrites the framework files of the
// generated tree (§6.2) with this version, keeping the previous version of
// every replaced file as `<path>.bak`. Managed sections and user files are
// never touched.
package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/tree"
)

// NothingToGenerate is printed when no domain is enabled, as sync does
// (§6.1).
const NothingToGenerate = "nothing to generate: no enabled domains"

// Options are the inputs of upgrade.
type Options struct {
	IO      *cmdutil.IOStreams
	Globals *cmdutil.GlobalOptions
	// Source picks the PSOT (§2.1).
	Source func() (fs.FS, compiler.Input, []string, error)
	// Host gathers the host context (§2.14).
	Host   func(remote bool) (host.Options, error)
	Remote func() string
	// Getwd returns the current directory, against which a relative base
	// directory is resolved.
	Getwd func() (string, error)

	Force bool
}

// NewCmdUpgrade builds the upgrade command. runF replaces the run function
// in tests; nil runs the real one.
func NewCmdUpgrade(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Globals: f.Globals, Source: f.Source, Host: f.Host, Remote: f.Remote, Getwd: f.Getwd}
	cmd := &cobra.Command{
		Use: "upgrade",
		Example: "  anklume upgrade\n" +
			"  anklume upgrade --force",
		Short: "Rewrite the framework files of the generated tree with this version of anklume",
		Long: "After an update of the binary, rewrite the framework files (site.yml, ansible.cfg,\n" +
			"roles/, connection_plugins/, incus/desired-state.yml, .anklume/) as sync does. Every\n" +
			"file whose bytes change is first copied to <path>.bak. Managed sections, infra.yml,\n" +
			"roles_custom/ and roles_vendor/ are never touched.",
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace framework files that lack the anklume header (the old file is kept as <path>.bak)")
	return cmd
}

// Run compiles the PSOT (site.yml depends on the roles in use, §10.2),
// checks every framework file of the tree, then writes those that change.
func Run(opts *Options) error {
	l, err := cmdutil.Load(context.Background(), cmdutil.LoadOptions{Source: opts.Source, Host: opts.Host,
		Remote: opts.Remote(), ErrOut: opts.IO.ErrOut, Globals: opts.Globals})
	if err != nil {
		return err
	}
	in, res := l.Input, l.Result
	out := opts.IO.Out
	if opts.Globals != nil && opts.Globals.Quiet {
		out = io.Discard
	}
	m := res.Model
	if len(m.EnabledDomains()) == 0 {
		fmt.Fprintln(out, NothingToGenerate)
		return nil
	}
	base, err := cmdutil.AbsBaseDir(opts.Globals, opts.Getwd, in)
	if err != nil {
		return err
	}
	plan, err := tree.NewPlan(base, tree.FrameworkFiles(emit.Tree(m)), opts.Force)
	if err != nil {
		opts.printPlanErrors(err)
		return cmdutil.ErrSilent
	}
	return plan.Upgrade(out)
}

// printPlanErrors prints every problem that stopped the plan, each as
// `error: MSG` with its `  hint:` line when it has one (as sync does).
func (opts *Options) printPlanErrors(err error) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		fmt.Fprintf(opts.IO.ErrOut, "error: %s\n", e)
		var te *tree.Error
		if errors.As(e, &te) && te.Hint != "" {
			fmt.Fprintf(opts.IO.ErrOut, "  hint: %s\n", te.Hint)
		}
	}
}
