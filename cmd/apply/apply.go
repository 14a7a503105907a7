// Package apply implements `anklume apply` (SPEC.md §9.5): compile, check
// the generated tree and the preconditions, take the lock, plan, confirm,
// write the tree, deploy nftables, create host directories, snapshot,
// execute the plan, write the nesting context, provision, release the
// lock and print the summary, in that order.
package apply

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	verifycmd "github.com/anklume/anklume/cmd/verify"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/emit"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/internal/aiaccess"
	applyx "github.com/anklume/anklume/internal/apply"
	"github.com/anklume/anklume/internal/hostdirs"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/lock"
	"github.com/anklume/anklume/internal/metacache"
	nftsys "github.com/anklume/anklume/internal/nftables"
	"github.com/anklume/anklume/internal/plan"
	"github.com/anklume/anklume/internal/plural"
	"github.com/anklume/anklume/internal/reconcile"
	"github.com/anklume/anklume/internal/suggest"
	"github.com/anklume/anklume/internal/verify"
)

// Messages of SPEC.md §9.5.
const (
	MsgOutdated  = "generated tree is out of date; run anklume sync"
	MsgRemoteNFT = "--remote: apply would load the nftables rules on this machine, not on the Incus host; deploy them on the Incus host with anklume nftables deploy and re-run with --no-nftables"
	HintNotRoot  = "run as root, or pass --no-nftables"
	MsgNoAnsible = "ansible-playbook not found in PATH; it is needed to provision %s"
	HintAnsible  = "install ansible-core, or pass --no-provision"
	// MsgNoAnsibleMembers is --deploy-members without ansible-playbook.
	MsgNoAnsibleMembers = "ansible-playbook not found in PATH; --deploy-members needs it"
	HintAnsibleMembers  = "install ansible-core, or load the rules on each member with anklume nftables deploy"
	// MsgMembersNotLoaded is the warning of an apply on a cluster without
	// --deploy-members.
	MsgMembersNotLoaded  = "the Incus server is a cluster: the isolation rules were loaded on this host only, not on the other members that host domains"
	HintMembersNotLoaded = "run ansible-playbook site.yml --tags members in %s, or anklume apply --deploy-members"
	Prompt               = `Type "yes" to confirm these deletions, replacements, renumberings and moves: `
	MsgNeedYes           = "the plan deletes, replaces, renumbers or moves objects; re-run with --yes to confirm"
	MsgCancelled         = "apply cancelled"
)

// Options are the inputs of apply.
type Options struct {
	// MetadataCache keeps the server's configuration metadata on disk
	// ($XDG_CACHE_HOME/anklume); the zero value fetches it every run.
	MetadataCache metacache.Cache
	IO            *cmdutil.IOStreams
	Globals       *cmdutil.GlobalOptions
	Source        func() (fs.FS, compiler.Input, []string, error)
	Host          func(remote bool) (host.Options, error)
	Remote        func() string
	Getwd         func() (string, error)
	Color         func(tty bool) bool
	// Getenv reads the environment (TERM=dumb turns the live progress off).
	Getenv func(string) string

	// Connect opens the Incus connection (incusx.Connect).
	Connect func(ctx context.Context, remote string) (incusx.Server, error)
	// NFT is the host's nftables (nftables.DefaultSystem), for the
	// preconditions; Deploy loads the rules (NFT.Deploy).
	NFT    nftsys.System
	Deploy func(ctx context.Context, o nftsys.DeployOptions) error
	// LookPath finds ansible-playbook (exec.LookPath).
	LookPath func(string) (string, error)
	// Run runs a command in dir with the streams (provisioning).
	Run func(ctx context.Context, dir string, out, errOut io.Writer, name string, args ...string) error
	// Lock tweaks the lock options (tests: clock, host, heartbeat).
	Lock func(*lock.Options)
	// Exec tweaks the executor options (tests).
	Exec func(*applyx.Options)

	Limit          []string
	Jobs           int
	Yes            bool
	Adopt          bool
	AllowEmpty     bool
	PruneVolumes   bool
	Force          bool
	NoNftables     bool
	NoProvision    bool
	NoSync         bool
	NoSnapshot     bool
	NoRestart      bool
	RefreshContext bool
	// DeployMembers loads the isolation rules on every member of an Incus
	// cluster too (ansible-playbook site.yml --tags members), before any
	// Incus change; without it, apply on a cluster tells the user to.
	DeployMembers bool
	// Verify runs VerifyRun (anklume verify) after a successful apply.
	Verify    bool
	VerifyRun func(ctx context.Context, m *model.Infra) error
}

// NewCmdApply builds the apply command. runF replaces the run function in
// tests; nil runs the real one.
func NewCmdApply(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{
		IO: f.IO, Globals: f.Globals, Source: f.Source, Host: f.Host, Remote: f.Remote, Getwd: f.Getwd,
		Color: f.ColorEnabled, Getenv: f.Getenv, MetadataCache: metacache.Default(f.Getenv),
	}
	vo := &verifycmd.Options{Env: snapshotcmd.NewEnv(f), Timeout: verify.DefaultTimeout, Budget: verify.DefaultBudget, Jobs: verify.DefaultJobs}
	opts.VerifyRun = func(ctx context.Context, m *model.Infra) error { return verifycmd.Live(ctx, vo, m) }
	cmd := &cobra.Command{
		Use: "apply",
		Example: "  anklume apply\n" +
			"  anklume apply --limit work --yes\n" +
			"  anklume apply --no-provision --no-snapshot",
		Short: "Make Incus match the PSOT",
		Long: "Compile infra.yml, plan the changes against the Incus server, and carry them out:\n" +
			"the generated tree is written, the nftables isolation rules are loaded before any\n" +
			"Incus change, then projects, networks, profiles, volumes and instances are created,\n" +
			"updated and deleted in priority order, and machines with roles are provisioned.\n" +
			"Deletions, replacements, renumberings and moves need confirmation (or --yes).\n" +
			"On an Incus cluster the rules must be loaded on every member: --deploy-members runs\n" +
			"ansible-playbook site.yml --tags members first; without it apply says so. Exit status 2:\n" +
			"everything was applied but a domain on an offline cluster member, left alone.\n" +
			"With --verify, anklume verify then probes the isolation on this host (as root).",
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Jobs < 1 {
				return cmdutil.FlagErrorf("-j must be at least 1")
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&opts.Limit, "limit", nil, "apply only to this domain (repeatable)")
	fl.IntVarP(&opts.Jobs, "jobs", "j", applyx.DefaultJobs, "actions run in parallel inside a phase")
	fl.BoolVar(&opts.Yes, "yes", false, "do not ask for confirmation")
	fl.BoolVar(&opts.Adopt, "adopt", false, "take over existing objects that anklume does not own")
	fl.BoolVar(&opts.AllowEmpty, "allow-empty", false, "allow a configuration without enabled domains to delete this infrastructure's objects")
	fl.BoolVar(&opts.PruneVolumes, "prune-volumes", false, "delete protected orphan storage volumes")
	fl.BoolVar(&opts.Force, "force", false, "delete adopted orphans")
	fl.BoolVar(&opts.NoNftables, "no-nftables", false, "do not deploy the nftables rules")
	fl.BoolVar(&opts.NoProvision, "no-provision", false, "do not run ansible-playbook")
	fl.BoolVar(&opts.NoSync, "no-sync", false, "do not write the generated tree (it must be up to date)")
	fl.BoolVar(&opts.NoSnapshot, "no-snapshot", false, "take no pre-apply snapshots")
	fl.BoolVar(&opts.NoRestart, "no-restart", false, "never restart a running instance; warn instead")
	fl.BoolVar(&opts.Verify, "verify", false, "run anklume verify (probe the isolation) after a successful apply")
	fl.BoolVar(&opts.DeployMembers, "deploy-members", false, "on an Incus cluster, also load the nftables rules on every member (ansible-playbook site.yml --tags members)")
	fl.BoolVar(&opts.RefreshContext, "refresh-context", false, "rewrite the nesting context files in every running in-scope instance")
	return cmd
}

func (opts *Options) defaults() {
	if opts.Connect == nil {
		opts.Connect = func(ctx context.Context, remote string) (incusx.Server, error) {
			return incusx.Connect(ctx, incusx.Options{Remote: remote, UserAgent: "anklume"})
		}
	}
	if opts.NFT.Run == nil {
		opts.NFT = nftsys.DefaultSystem()
	}
	if opts.Deploy == nil {
		opts.Deploy = opts.NFT.Deploy
	}
	if opts.LookPath == nil {
		opts.LookPath = exec.LookPath
	}
	if opts.Run == nil {
		opts.Run = runCommand
	}
	if opts.Jobs < 1 {
		opts.Jobs = applyx.DefaultJobs
	}
}

func runCommand(ctx context.Context, dir string, out, errOut io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, errOut
	return cmd.Run()
}

// fail prints `error: msg` and its hint and returns ErrSilent.
func (opts *Options) fail(msg, hint string) error {
	fmt.Fprintf(opts.IO.ErrOut, "error: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(opts.IO.ErrOut, "  hint: %s\n", hint)
	}
	return cmdutil.ErrSilent
}

func (opts *Options) verbose() bool { return opts.Globals != nil && opts.Globals.Verbose }

// Run is `anklume apply`.
func Run(ctx context.Context, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	opts.defaults()
	remote := opts.Remote()

	// Step 1: validate, resolve, pre-check the tree.
	l, err := cmdutil.Load(ctx, cmdutil.LoadOptions{Source: opts.Source, Host: opts.Host, Remote: remote,
		Connect: opts.Connect, ErrOut: opts.IO.ErrOut, Globals: opts.Globals,
		// W16 needs the base directory's roles_custom/ and roles_vendor/.
		Extra: func(in compiler.Input, res *compiler.Result) diag.List {
			if base, berr := opts.baseDir(in); berr == nil {
				return compiler.UnknownRoles(res.Model, os.DirFS(base))
			}
			return nil
		}})
	if err != nil {
		return err
	}
	m, in, hopts := l.Model, l.Input, l.Host
	for _, l := range opts.Limit {
		if d := m.Domain(l); d == nil || !d.Enabled {
			return opts.fail(fmt.Sprintf("--limit: unknown domain %q%s", l, suggest.Hint(l, m.DomainNames())), "")
		}
	}
	base, err := opts.baseDir(in)
	if err != nil {
		return err
	}
	var treePlan *tree.Plan
	if len(m.EnabledDomains()) > 0 {
		treePlan, err = tree.NewPlan(base, emit.Tree(m), false)
		if err != nil {
			opts.printTreeErrors(err)
			return cmdutil.ErrSilent
		}
		if opts.NoSync {
			if created, updated, _ := treePlan.Counts(); created+updated > 0 {
				return opts.fail(MsgOutdated, "")
			}
		}
	}

	// Step 2: preconditions.
	scope := inScope(m, opts.Limit)
	if !opts.NoNftables {
		if remote != "" {
			return opts.fail(MsgRemoteNFT, "")
		}
		if !opts.NFT.Privileged() {
			return opts.fail(nftsys.MsgNotRoot, HintNotRoot)
		}
		if _, err := opts.NFT.LookPath(opts.NFT.NFT); err != nil {
			return opts.fail(nftsys.MsgNoNFT, nftsys.HintNoNFT)
		}
	}
	withRoles := machinesWithRoles(scope)
	if opts.DeployMembers && !opts.NoNftables {
		if _, err := opts.LookPath("ansible-playbook"); err != nil {
			return opts.fail(MsgNoAnsibleMembers, HintAnsibleMembers)
		}
	}
	if !opts.NoProvision && len(withRoles) > 0 {
		if _, err := opts.LookPath("ansible-playbook"); err != nil {
			return opts.fail(fmt.Sprintf(MsgNoAnsible, plural.N(len(withRoles), "machine")), HintAnsible)
		}
	}

	// Step 3: lock, observe, plan.
	srv, err := opts.Connect(ctx, remote)
	if err != nil {
		return err
	}
	lopts := lock.Options{Server: srv, Command: "apply", Warn: opts.IO.ErrOut}
	if opts.Lock != nil {
		opts.Lock(&lopts)
	}
	lk, err := lock.Acquire(ctx, lopts)
	if err != nil {
		return err
	}
	result, err := opts.locked(ctx, srv, m, hopts, base, treePlan, scope, withRoles)
	if rerr := lk.Release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
		fmt.Fprintf(opts.IO.ErrOut, "warning: releasing the lock: %s\n", rerr)
	}
	if err != nil {
		return err
	}
	// Step 12: summary.
	result.Report(opts.IO.Out, opts.IO.ErrOut)
	if !result.OK() {
		return cmdutil.ErrSilent
	}
	if len(result.Unknown) > 0 {
		// Everything that could be read was applied; the domains on an
		// offline cluster member are still pending.
		return &cmdutil.ExitError{Code: cmdutil.ExitPending}
	}
	if opts.Verify && opts.VerifyRun != nil {
		return opts.VerifyRun(ctx, m)
	}
	return nil
}

// locked runs steps 3–11 while the lock is held.
func (opts *Options) locked(ctx context.Context, srv incusx.Server, m *model.Infra, hopts host.Options,
	base string, treePlan *tree.Plan, scope []*model.Domain, withRoles []*model.Machine) (*applyx.Result, error) {
	remote := opts.Remote()
	want := incus.Desired(m)
	if err := settle(ctx, srv, want, opts.IO.ErrOut); err != nil {
		return nil, err
	}
	obs, err := reconcile.Observe(ctx, srv, reconcile.ObserveOptions{Pools: pools(want),
		MetadataCache: opts.MetadataCache})
	if err != nil {
		return nil, err
	}
	// Keep the AI access holder recorded by `anklume ai switch`: its
	// projects' key and its nftables rules (aiaccess).
	m, aiWarn := aiaccess.Live(m, obs.Projects)
	if aiWarn != "" {
		opts.fail2("warning", aiWarn, "")
	}
	want = incus.Desired(m)
	dopts := reconcile.Options{
		Limit: opts.Limit, Adopt: opts.Adopt, AllowEmpty: opts.AllowEmpty, PruneVolumes: opts.PruneVolumes,
		Force: opts.Force, Remote: remote != "", ResolveImage: srv.ResolveImage, Model: m,
	}
	if remote == "" {
		dopts.DirExists = dirExists
		dopts.LegacyDir = hostdirs.Legacy
		dopts.EmptyDir = hostdirs.EmptyOrMissing
	}
	p, err := reconcile.Diff(want, obs, dopts)
	if p != nil {
		for _, w := range p.Warnings {
			opts.fail2("warning", w.Msg, w.Hint)
		}
	}
	if err != nil {
		for _, e := range reconcile.Errors(err) {
			opts.fail2("error", e.Msg, e.Hint)
		}
		return nil, cmdutil.ErrSilent
	}
	color := opts.Color != nil && opts.Color(opts.IO.OutTTY)
	if err := plan.Render(opts.IO.Out, p, plan.RenderOptions{Color: color}); err != nil {
		return nil, err
	}

	// Step 4: confirmation.
	if p.Destructive() && !opts.Yes {
		if !opts.IO.OutTTY {
			return nil, opts.fail(MsgNeedYes, "")
		}
		fmt.Fprint(opts.IO.Out, Prompt)
		line, _ := bufio.NewReader(opts.IO.In).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return nil, opts.fail(MsgCancelled, "")
		}
	}

	// Step 5: write the tree.
	if treePlan != nil && !opts.NoSync {
		w := io.Discard
		if opts.verbose() {
			w = opts.IO.ErrOut
		}
		// Like sync, keep every replaced file as <file>.bak so a hand edit
		// is never lost; the message shows with -v.
		if err := treePlan.Apply(w, tree.Options{KeepOld: true}); err != nil {
			return nil, err
		}
	}

	// Step 6: nftables, before any Incus change.
	if !opts.NoNftables && len(m.EnabledDomains()) > 0 {
		err := opts.Deploy(ctx, nftsys.DeployOptions{Model: m, Base: base, Remote: remote,
			Out: io.Discard, ErrOut: opts.IO.ErrOut})
		if err != nil {
			var ne *nftsys.Error
			if errors.As(err, &ne) {
				return nil, opts.fail(ne.Msg, ne.Hint)
			}
			return nil, err
		}
	}

	// Step 6 on a cluster: the rules on every member (the members play of
	// site.yml), or a warning that they are only on this host.
	if !opts.NoNftables && len(m.EnabledDomains()) > 0 && obs.Server != nil && obs.Server.Environment.ServerClustered {
		if !opts.DeployMembers {
			opts.fail2("warning", MsgMembersNotLoaded, fmt.Sprintf(HintMembersNotLoaded, base))
		} else if err := opts.Run(ctx, base, opts.IO.Out, opts.IO.ErrOut, "ansible-playbook", "site.yml", "--tags", "members"); err != nil {
			return nil, fmt.Errorf("ansible-playbook site.yml --tags members: %w", err)
		}
	}

	// Steps 7–10: host directories, snapshots, execute, context.
	// The live display on a terminal, plain lines elsewhere (cmdutil.NewProgress).
	display := cmdutil.NewProgress(opts.IO, opts.Globals, opts.Getenv, color)
	defer display.Close()
	eopts := applyx.Options{
		Server: srv, Jobs: opts.Jobs, NoRestart: opts.NoRestart, NoSnapshot: opts.NoSnapshot,
		Out: opts.IO.Out, ErrOut: opts.IO.ErrOut, TTY: opts.IO.OutTTY, Progress: display,
		Nesting: nesting(hopts.Context),
	}
	if remote == "" {
		eopts.HostDirs = hostDirs(m, scope)
	}
	if opts.Exec != nil {
		opts.Exec(&eopts)
	}
	result := applyx.Execute(ctx, p, eopts)
	if opts.RefreshContext {
		opts.refreshContext(ctx, srv, eopts, scope, result.Started)
	}
	display.Close() // ansible-playbook prints its own progress

	// Step 11: provision.
	if !opts.NoProvision && len(withRoles) > 0 {
		if err := opts.provision(ctx, base, remote, p, scope, withRoles); err != nil {
			result.Failed++
			result.Failures = append(result.Failures, applyx.Failure{Err: err})
		}
	}
	return result, nil
}

// fail2 prints `<sev>: msg` and its hint.
func (opts *Options) fail2(sev, msg, hint string) {
	fmt.Fprintf(opts.IO.ErrOut, "%s: %s\n", sev, msg)
	if hint != "" {
		fmt.Fprintf(opts.IO.ErrOut, "  hint: %s\n", hint)
	}
}

// nesting is the host context that the nesting files derive from.
func nesting(c host.Context) *applyx.Nesting {
	n := &applyx.Nesting{Level: c.Level, RelativeLevel: c.RelativeLevel, Yolo: c.Yolo}
	if c.VMNested != nil {
		n.VMNested = *c.VMNested
	}
	return n
}

// refreshContext rewrites the context files in every running in-scope
// instance not already written in this run (--refresh-context).
func (opts *Options) refreshContext(ctx context.Context, srv incusx.Server, eopts applyx.Options, scope []*model.Domain, done []string) {
	insts, err := srv.Instances(ctx)
	if err != nil {
		fmt.Fprintf(opts.IO.ErrOut, "warning: refreshing the nesting context: %s\n", err)
		return
	}
	projects := map[string]bool{}
	for _, d := range scope {
		projects[d.Project] = true
	}
	var targets []applyx.ContextTarget
	for _, i := range insts {
		if !projects[i.Project] || i.Status != "Running" || i.Config[incus.KeyManaged] != "true" ||
			slices.Contains(done, i.Project+"/"+i.Name) {
			continue
		}
		targets = append(targets, applyx.ContextTarget{Project: i.Project, Name: i.Name, VM: i.Type == "virtual-machine"})
	}
	applyx.WriteContext(ctx, eopts, *eopts.Nesting, targets)
}

// provision runs `ansible-playbook site.yml --tags provision` (step 11).
func (opts *Options) provision(ctx context.Context, base, remote string, p *plan.Plan, scope []*model.Domain, withRoles []*model.Machine) error {
	failed := map[string]bool{}
	for _, fd := range p.Failed {
		failed[fd.Domain] = true
	}
	for _, x := range withRoles {
		if !x.Domain.Egress && !failed[x.Domain.Name] && x.State != "stopped" {
			opts.fail2("warning", fmt.Sprintf("domain %q has egress: false; provisioning of %q cannot download packages (the python3 bootstrap and most roles need them)", x.Domain.Name, x.Name), "")
		}
	}
	args := []string{"site.yml", "--tags", "provision"}
	if limit, restricts := provisionLimit(p, scope, len(opts.Limit) > 0); restricts {
		if limit == "" {
			return nil // nothing left to provision
		}
		args = append(args, "--limit", limit)
	}
	if remote != "" {
		args = append(args, "-e", "anklume_remote="+remote)
	}
	// ansible-playbook shows its own progress, task by task; this line
	// says what it is and for how many machines.
	fmt.Fprintf(opts.IO.Out, "Provisioning %s: ansible-playbook %s\n", plural.N(len(withRoles), "machine"), strings.Join(args, " "))
	if err := opts.Run(ctx, base, opts.IO.Out, opts.IO.ErrOut, "ansible-playbook", args...); err != nil {
		return fmt.Errorf("ansible-playbook site.yml --tags provision: %w", err)
	}
	return nil
}

// provisionLimit is the --limit of step 11: the in-scope domains that did
// not fail, and `!<machine>` for every stopped machine. restricts is false
// when it would not restrict anything.
func provisionLimit(p *plan.Plan, scope []*model.Domain, limited bool) (string, bool) {
	failed := map[string]bool{}
	for _, fd := range p.Failed {
		failed[fd.Domain] = true
	}
	for _, u := range p.Unknown {
		failed[u.Domain] = true // on an offline cluster member
	}
	restricts := limited || len(failed) > 0
	var parts, stopped []string
	for _, d := range scope {
		if failed[d.Name] {
			continue
		}
		parts = append(parts, d.Name)
		for _, x := range d.Machines {
			if x.State == "stopped" {
				stopped = append(stopped, "!"+x.Name)
				restricts = true
			}
		}
	}
	if len(parts) == 0 {
		return "", restricts
	}
	return strings.Join(append(parts, stopped...), ","), restricts
}

// inScope returns the enabled domains that --limit selects.
func inScope(m *model.Infra, limit []string) []*model.Domain {
	var out []*model.Domain
	for _, d := range m.EnabledDomains() {
		if len(limit) == 0 || slices.Contains(limit, d.Name) {
			out = append(out, d)
		}
	}
	return out
}

// machinesWithRoles lists the machines of the in-scope domains with roles.
func machinesWithRoles(scope []*model.Domain) []*model.Machine {
	var out []*model.Machine
	for _, d := range scope {
		for _, x := range d.Machines {
			if len(x.Roles) > 0 {
				out = append(out, x)
			}
		}
	}
	return out
}

// SettleTimeout bounds the wait for the operations an earlier run left
// running.
const SettleTimeout = 2 * time.Minute

// settle waits for the asynchronous Incus operations still running in the
// projects of want: a run that was killed, or lost its connection, leaves
// them behind, and observing before they end shows a container frozen by
// its snapshot or still being created. It says so on errOut when it
// waited.
func settle(ctx context.Context, srv incusx.Server, want *incus.State, errOut io.Writer) error {
	w, ok := srv.(incusx.OperationWaiter)
	if !ok {
		return nil
	}
	projects := make([]string, 0, len(want.Projects))
	for _, p := range want.Projects {
		projects = append(projects, p.Name)
	}
	n, err := w.WaitOperations(ctx, projects, SettleTimeout)
	if n > 0 {
		fmt.Fprintf(errOut, "note: waited for %d Incus operation(s) still running in this infrastructure's projects\n", n)
	}
	return err
}

// pools lists the storage pools the desired state names.
func pools(s *incus.State) []string {
	var out []string
	add := func(p string) {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	add(s.StoragePool)
	for _, p := range s.Projects {
		for _, v := range p.StorageVolumes {
			add(v.Pool)
		}
	}
	return out
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// hostDirs lists the host directories of §4.11 that the in-scope machines
// mount: shared-volume sources and persistent-data directories.
func hostDirs(m *model.Infra, scope []*model.Domain) []hostdirs.Dir {
	in := map[*model.Machine]bool{}
	for _, d := range scope {
		for _, x := range d.Machines {
			in[x] = true
		}
	}
	var out []hostdirs.Dir
	add := func(p string, k hostdirs.Kind, chosen bool) {
		if p != "" && !slices.ContainsFunc(out, func(d hostdirs.Dir) bool { return d.Path == p }) {
			out = append(out, hostdirs.Dir{Path: p, Kind: k, Chosen: chosen})
		}
	}
	for _, sv := range m.SharedVolumes {
		for _, mt := range sv.Mounts {
			if in[mt.Machine] {
				add(sv.Source, hostdirs.Shared, sv.Source == m.Global.SharedVolumesBase+"/"+sv.Name)
				break
			}
		}
	}
	for _, x := range m.Machines {
		if in[x] {
			for _, pd := range x.PersistentData {
				add(pd.Source, hostdirs.Persistent, true)
			}
		}
	}
	return out
}

// baseDir returns the absolute base directory (§2.1).
func (opts *Options) baseDir(in compiler.Input) (string, error) {
	return cmdutil.AbsBaseDir(opts.Globals, opts.Getwd, in)
}

// printTreeErrors prints the problems that stopped the tree pre-check.
func (opts *Options) printTreeErrors(err error) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		hint := ""
		var te *tree.Error
		if errors.As(e, &te) {
			hint = te.Hint
		}
		opts.fail2("error", e.Error(), hint)
	}
}
