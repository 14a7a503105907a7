// Package plancmd implements `anklume plan [--limit D]… [--adopt]
// [--allow-empty] [--prune-volumes] [--force] [--json]
// [--detailed-exitcode] [--remote R]` (SPEC.md §9.4): it compiles the
// PSOT, reads the live Incus state and prints what apply would do.
package plancmd

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/emit/nft"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/reach"
	"github.com/anklume/anklume/compiler/reach/nfteval"
	"github.com/anklume/anklume/internal/aiaccess"
	"github.com/anklume/anklume/internal/hostdirs"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/metacache"
	nftsys "github.com/anklume/anklume/internal/nftables"
	"github.com/anklume/anklume/internal/plan"
	"github.com/anklume/anklume/internal/reconcile"
)

// Options are the inputs of plan.
type Options struct {
	IO      *cmdutil.IOStreams
	Globals *cmdutil.GlobalOptions
	// Source picks the PSOT (§2.1).
	Source func() (fs.FS, compiler.Input, []string, error)
	// Host gathers the host context (§2.14).
	Host   func(remote bool) (host.Options, error)
	Remote func() string
	// Incus connects to the server (the Fake in tests).
	Incus func(ctx context.Context, remote string) (incusx.Server, error)
	// Color tells whether stdout may carry colour (§13).
	Color func() bool
	// DirExists tells whether a host directory exists (local daemon).
	DirExists func(string) bool
	// MetadataCache keeps the server's configuration metadata on disk
	// ($XDG_CACHE_HOME/anklume); the zero value fetches it every run.
	MetadataCache metacache.Cache
	// LastRuleset returns the isolation ruleset last deployed on this
	// host, for the "Reachability changes" section (nil: no section).
	LastRuleset func() ([]byte, error)

	Limit            []string
	Adopt            bool
	AllowEmpty       bool
	PruneVolumes     bool
	Force            bool
	JSON             bool
	DetailedExitCode bool
}

// NewCmdPlan builds the plan command. runF replaces the run function in
// tests; nil runs the real one.
func NewCmdPlan(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{
		IO:        f.IO,
		Globals:   f.Globals,
		Source:    f.Source,
		Host:      f.Host,
		Remote:    f.Remote,
		Incus:     f.Incus,
		Color:     func() bool { return f.ColorEnabled(f.IO.OutTTY) },
		DirExists: dirExists,

		MetadataCache: metacache.Default(f.Getenv),
		LastRuleset: func() ([]byte, error) {
			return os.ReadFile(filepath.Join(nftsys.DefaultPersistDir, nftsys.PersistName))
		},
	}
	cmd := &cobra.Command{
		Use: "plan",
		Example: "  anklume plan\n" +
			"  anklume plan --limit work\n" +
			"  anklume plan --json\n" +
			"  anklume plan --detailed-exitcode",
		Short: "Show what apply would change in Incus",
		Long: "Validate and resolve infra.yml (or infra/), read the live Incus state and print\n" +
			"the changes apply would make: + create, ~ update, -/+ replace, - delete, ! note.\n" +
			"When the rules of this infrastructure were deployed on this host, a last section\n" +
			"lists the paths between machines that the change opens or closes.\n" +
			"Nothing is changed.",
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&opts.Limit, "limit", nil, "plan only this domain (repeatable)")
	fl.BoolVar(&opts.Adopt, "adopt", false, "take over same-named objects that anklume does not manage")
	fl.BoolVar(&opts.AllowEmpty, "allow-empty", false, "allow a configuration without enabled domains to delete the infrastructure")
	fl.BoolVar(&opts.PruneVolumes, "prune-volumes", false, "delete protected orphan storage volumes")
	fl.BoolVar(&opts.Force, "force", false, "delete adopted orphan objects")
	fl.BoolVar(&opts.JSON, "json", false, "print the plan as one JSON document on stdout")
	fl.BoolVar(&opts.DetailedExitCode, "detailed-exitcode", false, "exit 2 when changes are pending or a domain is unknown (cluster member offline), 0 when there are none")
	return cmd
}

// dirExists is the local host check of §4.11.
func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Run compiles, observes, diffs and prints the plan.
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
	res, cl, err := compiler.Compile(fsys, in, hopts)
	// With --remote, a resource policy needs the Incus host's resources
	// (§2.14): they come with the plan's reads (§9.1 item 11), and the
	// PSOT is resolved again with them before any diagnostic is printed.
	remoteRes := err == nil && res != nil && res.Model != nil && remote != "" &&
		res.Model.Global.ResourcePolicy != nil && hopts.Resources == nil
	if !remoteRes {
		dl.Add(cl...)
		opts.printDiagnostics(dl)
		if err != nil {
			return err
		}
		if dl.HasErrors() || res == nil || res.Model == nil {
			return cmdutil.ErrSilent
		}
	}
	m := res.Model

	ctx := context.Background()
	srv, err := opts.Incus(ctx, remote)
	if err != nil {
		return err
	}
	oo := ObserveOptions(m)
	oo.Resources = remoteRes
	oo.MetadataCache = opts.MetadataCache
	obs, err := reconcile.Observe(ctx, srv, oo)
	if err != nil {
		return err
	}
	if remoteRes {
		if r := obs.Resources; r != nil && r.CPU.Total > 0 && r.Memory.Total > 0 {
			hopts.Resources = &host.Resources{CPU: int64(r.CPU.Total), Memory: int64(r.Memory.Total)}
		}
		res, cl, err = compiler.Compile(fsys, in, hopts)
		dl.Add(cl...)
		opts.printDiagnostics(dl)
		if err != nil {
			return err
		}
		if dl.HasErrors() || res == nil || res.Model == nil {
			return cmdutil.ErrSilent
		}
		m = res.Model
	}
	// The AI access holder recorded by `anklume ai switch` (aiaccess).
	m, aiWarn := aiaccess.Live(m, obs.Projects)
	if aiWarn != "" {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s\n", aiWarn)
	}
	want := incus.Desired(m)
	ropts := reconcile.Options{
		Limit: opts.Limit, Adopt: opts.Adopt, AllowEmpty: opts.AllowEmpty,
		PruneVolumes: opts.PruneVolumes, Force: opts.Force, Remote: remote != "",
		ResolveImage: srv.ResolveImage, Model: m,
	}
	if remote == "" {
		ropts.DirExists = opts.DirExists
		ropts.LegacyDir = hostdirs.Legacy
		ropts.EmptyDir = hostdirs.EmptyOrMissing
	}
	p, err := reconcile.Diff(want, obs, ropts)
	if p != nil {
		opts.printWarnings(p.Warnings)
	}
	if err != nil {
		opts.printErrors(err)
		return cmdutil.ErrSilent
	}
	for _, fd := range p.Failed {
		fmt.Fprintf(opts.IO.ErrOut, "error: domain %s: %s\n", fd.Domain, fd.Message)
	}
	for _, u := range p.Unknown {
		fmt.Fprintf(opts.IO.ErrOut, "warning: domain %s: unknown: %s\n", u.Domain, u.Message)
	}
	if opts.JSON {
		err = plan.RenderJSON(opts.IO.Out, p)
	} else {
		err = plan.Render(opts.IO.Out, p, plan.RenderOptions{Color: opts.Color != nil && opts.Color()})
	}
	if err == nil && !opts.JSON && remote == "" {
		err = opts.reachability(m)
	}
	switch {
	case err != nil:
		return err
	case len(p.Failed) > 0:
		return cmdutil.ErrSilent
	case opts.DetailedExitCode && (!p.Empty() || len(p.Unknown) > 0):
		// A domain on an offline cluster member is not known to match.
		return &cmdutil.ExitError{Code: cmdutil.ExitPending}
	}
	return nil
}

// reachability prints the paths the PSOT opens or closes compared with the
// ruleset last deployed on this host: the copy `nftables deploy` (and so
// apply) persists in /etc/nftables.d, the file the boot unit loads. That
// file, not the live table, is the last applied state: it is readable
// without root, and a live table changed by hand is what verify and
// nftables status report. Nothing is printed when no ruleset of this
// infrastructure was deployed, or when it cannot be read.
func (opts *Options) reachability(m *model.Infra) error {
	if opts.LastRuleset == nil {
		return nil
	}
	data, err := opts.LastRuleset()
	if err != nil || !strings.Contains(string(data), `comment "`+nft.TableComment(m.ProjectName)+`"`) {
		return nil
	}
	prev, err := nfteval.Parse(data)
	if err != nil {
		fmt.Fprintf(opts.IO.ErrOut, "warning: reading the deployed ruleset for the reachability changes: %v\n", err)
		return nil
	}
	return reach.WriteChanges(opts.IO.Out, reach.Changes(reach.Compute(m), prev))
}

// ObserveOptions returns the conditional reads of §9.1 that model m
// needs: its pools (cluster members are listed whenever the server is
// clustered).
func ObserveOptions(m *model.Infra) reconcile.ObserveOptions {
	oo := reconcile.ObserveOptions{Pools: []string{m.StoragePool}}
	for _, x := range m.Machines {
		if x.Domain != nil && !x.Domain.Enabled {
			continue
		}
		for _, v := range x.StorageVolumes {
			if v.ResolvedPool != "" && v.ResolvedPool != m.StoragePool {
				oo.Pools = append(oo.Pools, v.ResolvedPool)
			}
		}
	}
	return oo
}

// printWarnings prints the plan-time warnings on stderr, unless --quiet.
func (opts *Options) printWarnings(ws []plan.Warning) {
	if opts.Globals != nil && opts.Globals.Quiet {
		return
	}
	for _, w := range ws {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s\n", w.Msg)
		if w.Hint != "" {
			fmt.Fprintf(opts.IO.ErrOut, "  hint: %s\n", w.Hint)
		}
	}
}

// printErrors prints every plan error as `error: MSG` with its hint.
func (opts *Options) printErrors(err error) {
	for _, e := range reconcile.Errors(err) {
		fmt.Fprintf(opts.IO.ErrOut, "error: %s\n", e.Msg)
		if e.Hint != "" {
			fmt.Fprintf(opts.IO.ErrOut, "  hint: %s\n", e.Hint)
		}
	}
}

// printDiagnostics prints dl on stderr; with --quiet only the errors.
func (opts *Options) printDiagnostics(dl diag.List) {
	cmdutil.PrintDiagnostics(opts.IO.ErrOut, opts.Globals, dl)
}
