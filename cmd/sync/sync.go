// Package sync implements `anklume sync [--dry-run] [--diff]
// [--clean-orphans] [--force]` (SPEC.md §6): it compiles the PSOT and
// writes the generated tree under the base directory.
package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/emit"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/internal/aiaccess"
	"github.com/anklume/anklume/internal/incusx"
)

// NothingToGenerate is printed when no domain is enabled (§6.1).
const NothingToGenerate = "nothing to generate: no enabled domains"

// Options are the inputs of sync.
type Options struct {
	IO      *cmdutil.IOStreams
	Globals *cmdutil.GlobalOptions
	// Source picks the PSOT (§2.1).
	Source func() (fs.FS, compiler.Input, []string, error)
	// Host gathers the host context (§2.14).
	Host func(remote bool) (host.Options, error)
	// Incus connects to the server: with --remote, a resource_policy
	// reads its resources (cmdutil.CompileForRemote).
	Incus  func(ctx context.Context, remote string) (incusx.Server, error)
	Remote func() string
	// Getwd returns the current directory, against which a relative base
	// directory is resolved.
	Getwd func() (string, error)
	// Getenv reads the environment (nil: empty).
	Getenv func(string) string

	DryRun       bool
	Diff         bool
	CleanOrphans bool
	Force        bool

	// Now is the clock of the sync stamp (nil: time.Now); tests move it
	// forward to stand for the time that passes between two syncs.
	Now func() time.Time
	// OnStamp, when set (tests), is called with whether the run took the
	// stamp's shortcut.
	OnStamp func(hit bool)
}

// NewCmdSync builds the sync command. runF replaces the run function in
// tests; nil runs the real one.
func NewCmdSync(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{
		IO:      f.IO,
		Globals: f.Globals,
		Source:  f.Source,
		Host:    f.Host,
		Incus:   f.Incus,
		Remote:  f.Remote,
		Getwd:   f.Getwd,
		Getenv:  f.Getenv,
	}
	cmd := &cobra.Command{
		Use: "sync",
		Example: "  anklume sync\n" +
			"  anklume sync --dry-run --diff\n" +
			"  anklume sync -f infra/ --base-dir /srv/anklume",
		Short: "Generate the Ansible tree, nftables ruleset and Incus files from the PSOT",
		Long: "Validate and resolve infra.yml (or infra/), then write the generated tree under the\n" +
			"base directory: inventory/, group_vars/, host_vars/ (managed sections only; your text\n" +
			"outside them is kept), and the framework files owned by anklume (site.yml, ansible.cfg,\n" +
			"roles/, connection_plugins/, .anklume/). Every target is checked before anything is\n" +
			"written, and a file whose bytes would not change is not touched. A managed section or\n" +
			"framework file that sync replaces is first copied to <file>.bak, so a hand edit in it\n" +
			"is never lost. The output is a summary; -v lists every created and updated file.\n\n" +
			"A sync that leaves the tree up to date records a stamp in $XDG_CACHE_HOME/anklume\n" +
			"(the inputs' hash and every file's status): the next plain sync of an unchanged\n" +
			"PSOT and tree answers from it without compiling or reading the tree. Any change to\n" +
			"the PSOT, the tree, anklume or the host context makes a full sync.",
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.DryRun, "dry-run", false, "write nothing; list what would change")
	fl.BoolVar(&opts.Diff, "diff", false, "print a unified diff of each created or updated file")
	fl.BoolVar(&opts.CleanOrphans, "clean-orphans", false, "delete orphan files that are not protected (ephemeral=false)")
	fl.BoolVar(&opts.Force, "force", false, "replace framework files that lack the anklume header (the old file is kept as <path>.bak)")
	return cmd
}

// Run compiles the PSOT and syncs the tree: all checks first, then the
// writes, then the orphan report (§6.1).
func Run(opts *Options) error {
	fsys, in, warnings, err := opts.Source()
	if err != nil {
		return err
	}
	var dl diag.List
	for _, w := range warnings {
		dl.Add(diag.Diagnostic{Severity: diag.Warning, Msg: w})
	}
	remote := opts.Remote()
	hopts, err := opts.Host(remote != "")
	if err != nil {
		opts.printDiagnostics(dl)
		return err
	}
	st := opts.stamper(fsys, in, warnings, hopts, remote)
	hit := st.fresh()
	if opts.OnStamp != nil {
		opts.OnStamp(hit)
	}
	if hit {
		dl.Add(st.old.Diags...)
		opts.printDiagnostics(dl)
		if !opts.quiet() {
			fmt.Fprint(opts.IO.Out, st.old.Output)
		}
		return nil
	}
	res, cl, err := cmdutil.CompileForRemote(context.Background(), fsys, in, hopts, remote, opts.Incus)
	compiled := len(dl) // the diagnostics a stamp records start here
	dl.Add(cl...)
	if err == nil && res != nil && res.Model != nil && !dl.HasErrors() {
		// W16 needs the base directory's roles_custom/ and roles_vendor/.
		if base, berr := opts.baseDir(in); berr == nil {
			dl.Add(compiler.UnknownRoles(res.Model, os.DirFS(base))...)
		}
	}
	opts.printDiagnostics(dl)
	if err != nil {
		return err
	}
	if dl.HasErrors() || res == nil || res.Model == nil {
		return cmdutil.ErrSilent
	}
	if opts.verbose() {
		for _, file := range res.Files {
			fmt.Fprintf(opts.IO.ErrOut, "info: read %s\n", file)
		}
	}
	out := opts.IO.Out
	if opts.quiet() {
		out = io.Discard
	}
	m := res.Model
	// The tree follows the AI access holder recorded in Incus, so that
	// ansible-playbook site.yml keeps an `anklume ai switch`.
	m, warn := aiaccess.Resolve(context.Background(), opts.Incus, remote, m)
	if warn != "" && !opts.quiet() {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s\n", warn)
	}
	if len(m.EnabledDomains()) == 0 {
		fmt.Fprintln(out, NothingToGenerate)
		return nil
	}
	base, err := opts.baseDir(in)
	if err != nil {
		return err
	}
	if opts.verbose() {
		fmt.Fprintf(opts.IO.ErrOut, "info: base directory %s\n", base)
	}

	files := emit.Tree(m)
	plan, err := tree.NewPlan(base, files, opts.Force)
	if err != nil {
		opts.printPlanErrors(err)
		return cmdutil.ErrSilent
	}
	if err := plan.Apply(out, tree.Options{
		DryRun:  opts.DryRun,
		Diff:    opts.Diff,
		Brief:   !opts.verbose() && !opts.DryRun && !opts.Diff,
		KeepOld: true,
		Pause:   opts.pause(),
	}); err != nil {
		return err
	}

	domains, machines := emit.KnownNames(m)
	orphans, err := tree.FindOrphans(base, domains, machines)
	if err != nil {
		return err
	}
	if err := tree.ReportOrphans(out, base, orphans, opts.CleanOrphans, opts.DryRun); err != nil {
		return err
	}
	wrote := ""
	for _, c := range plan.Changes {
		if c.Action != tree.Unchanged {
			wrote = c.Path
			break
		}
	}
	st.save(m, files, dl[compiled:], len(plan.Changes), wrote)
	return nil
}

// EnvTestPause names the test hook that stops sync at a step of its write
// until the process is killed: set to "staged", sync prints
// "sync paused: staged" on stderr once every temporary file is written and
// before any rename, then waits. Tests use it to kill sync mid-write.
const EnvTestPause = "ANKLUME_TEST_SYNC_PAUSE"

// pause returns the Pause hook asked for by EnvTestPause, or nil.
func (opts *Options) pause() func(string) {
	if opts.Getenv == nil {
		return nil
	}
	at := opts.Getenv(EnvTestPause)
	if at == "" {
		return nil
	}
	return func(step string) {
		if step != at {
			return
		}
		fmt.Fprintf(opts.IO.ErrOut, "sync paused: %s\n", step)
		for {
			time.Sleep(time.Hour)
		}
	}
}

// baseDir returns the absolute base directory (§2.1): --base-dir, or the
// directory of the PSOT, resolved against the current directory.
func (opts *Options) baseDir(in compiler.Input) (string, error) {
	return cmdutil.AbsBaseDir(opts.Globals, opts.Getwd, in)
}

// printPlanErrors prints every problem that stopped the plan, each as
// `error: MSG` with its `  hint:` line when it has one.
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

// printDiagnostics prints dl on stderr; with --quiet only the errors.
func (opts *Options) printDiagnostics(dl diag.List) {
	cmdutil.PrintDiagnostics(opts.IO.ErrOut, opts.Globals, dl)
}

func (opts *Options) quiet() bool   { return opts.Globals != nil && opts.Globals.Quiet }
func (opts *Options) verbose() bool { return opts.Globals != nil && opts.Globals.Verbose }
