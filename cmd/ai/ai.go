// Package aicmd implements `anklume ai switch DOMAIN [--no-flush]
// [--dry-run] [--no-persist]` and `anklume ai status`, for
// global.ai_access_policy: exclusive (see internal/aiaccess for where the
// holder is recorded and how the other commands follow it).
//
// A switch, under the Incus lock that apply takes:
//  1. stops the running GPU instances of ai-tools (the machines with GPU
//     access), so that nothing the previous holder started keeps running
//     on the GPU;
//  2. records the new holder on every project of the infrastructure
//     (user.anklume.ai_access_holder, and user.anklume.policies where
//     the automatic policy moves), each with its ETag;
//  3. renders the nftables ruleset with the automatic policy from the new
//     holder and loads it in one nft transaction (as nftables deploy,
//     persisted for the next boot unless --no-persist; not with --remote,
//     where the rules live on the Incus host);
//  4. flushes GPU memory with `nvidia-smi --gpu-reset` when nvidia-smi is
//     installed, ai_vram_flush is true and --no-flush is not given (a note
//     says so when nvidia-smi is missing; a failed reset is a warning);
//  5. starts the instances of step 1 again.
//
// If it stops half-way, running it again finishes the job: steps 2 and 3
// are idempotent, and `anklume nftables status` shows a ruleset that does
// not match the recorded holder as drift.
package aicmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/lxc/incus/v6/shared/api"
	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	"github.com/anklume/anklume/compiler/emit"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/internal/aiaccess"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/lock"
	nftsys "github.com/anklume/anklume/internal/nftables"
)

// Options are the inputs of the ai subcommands.
type Options struct {
	*snapshotcmd.Env
	Domain    string
	NoFlush   bool
	DryRun    bool
	NoPersist bool
	// Deploy loads the rules (nftables.DefaultSystem().Deploy).
	Deploy func(ctx context.Context, o nftsys.DeployOptions) error
	// LookPath finds nvidia-smi (exec.LookPath); Flush runs it.
	LookPath func(string) (string, error)
	Flush    func(ctx context.Context, nvidiaSMI string) error
	// Lock adjusts the lock options (tests).
	Lock func(*lock.Options)
}

// NewCmdAI builds `anklume ai` and its subcommands. runF replaces the run
// function in tests; nil runs the real one.
func NewCmdAI(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	newOpts := func() *Options {
		return &Options{Env: snapshotcmd.NewEnv(f), Deploy: nftsys.DefaultSystem().Deploy, LookPath: exec.LookPath, Flush: flush}
	}
	cmd := &cobra.Command{
		Use:   "ai <command>",
		Short: "Move or show the exclusive access to the ai-tools domain",
		Long: "With ai_access_policy: exclusive, one domain at a time may reach the ai-tools\n" +
			"domain (ai_access_default at first). \"ai switch\" gives that access to another\n" +
			"domain; \"ai status\" shows who has it.",
		Example: "  anklume ai status\n  anklume ai switch pro",
		Args:    cobra.NoArgs,
		RunE:    func(c *cobra.Command, args []string) error { return c.Help() },
	}
	so := newOpts()
	switchCmd := &cobra.Command{
		Use:   "switch DOMAIN [--no-flush] [--dry-run] [--no-persist]",
		Short: "Give the exclusive access to ai-tools to another domain",
		Long: "Stop the GPU machines of ai-tools, record DOMAIN as the holder on the Incus\n" +
			"projects, load the nftables rules that let DOMAIN, and no other domain, open\n" +
			"connections into ai-tools, rewrite the generated tree (when sync made one),\n" +
			"flush GPU memory with nvidia-smi (when installed), and start the GPU machines\n" +
			"again. plan, apply, status, nftables render and deploy, and sync (so\n" +
			"ansible-playbook site.yml too) keep the new holder until the next switch.\n" +
			"Needs root for the nftables rules.",
		Example: "  anklume ai switch pro --dry-run\n  anklume ai switch pro\n  anklume ai switch perso --no-flush",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cmdutil.FlagErrorf("ai switch needs one domain: anklume ai switch DOMAIN")
			}
			so.Domain = args[0]
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(so)
			}
			return Switch(c.Context(), so)
		},
	}
	fl := switchCmd.Flags()
	fl.BoolVar(&so.NoFlush, "no-flush", false, "do not flush GPU memory")
	fl.BoolVar(&so.DryRun, "dry-run", false, "print what would be done; change nothing")
	fl.BoolVar(&so.NoPersist, "no-persist", false, "load the rules now only; do not install them for the next boot")
	sto := newOpts()
	statusCmd := &cobra.Command{
		Use:   "status",
		Short: "Show which domain holds the access to ai-tools",
		Long: "Print the AI access policy, the domain that may reach ai-tools now (read from\n" +
			"Incus: ai_access_default, or the domain of the last ai switch) and the GPU\n" +
			"machines of ai-tools.",
		Example: "  anklume ai status",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(sto)
			}
			return Status(c.Context(), sto)
		},
	}
	cmd.AddCommand(switchCmd, statusCmd)
	return cmd
}

// flush resets the GPUs.
func flush(ctx context.Context, nvidiaSMI string) error {
	out, err := exec.CommandContext(ctx, nvidiaSMI, "--gpu-reset").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --gpu-reset: %w: %s", nvidiaSMI, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Status is `anklume ai status`.
func Status(ctx context.Context, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m, _, err := opts.Model()
	if err != nil {
		return err
	}
	if !aiaccess.Exclusive(m) {
		opts.Printf("AI access: %s (every domain a network policy allows may reach ai-tools)\n", policyName(m))
		return nil
	}
	srv, err := opts.Connect(ctx)
	if err != nil {
		return err
	}
	cur, warn, err := aiaccess.FromServer(ctx, srv, m)
	if err != nil {
		return err
	}
	if warn != "" {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s\n", warn)
	}
	h := aiaccess.Holder(cur)
	how := "ai_access_default"
	if cur.Global.AIAccessHolder != "" {
		how = "moved by anklume ai switch; ai_access_default is " + m.Global.AIAccessDefault
	}
	opts.Printf("AI access: exclusive\nholder: %s (%s)\n", h, how)
	opts.Printf("ai-tools GPU machines: %s\n", names(gpuMachines(cur)))
	return nil
}

func policyName(m *model.Infra) string {
	if m.Global.AIAccessPolicy == "" {
		return "open"
	}
	return m.Global.AIAccessPolicy
}

func names(ms []*model.Machine) string {
	if len(ms) == 0 {
		return "none"
	}
	var out []string
	for _, mc := range ms {
		out = append(out, mc.Name)
	}
	return strings.Join(out, ", ")
}

// gpuMachines are the machines of ai-tools with GPU access.
func gpuMachines(m *model.Infra) []*model.Machine {
	var out []*model.Machine
	for _, d := range m.Domains {
		if d.Name != aiaccess.AITools || !d.Enabled {
			continue
		}
		for _, mc := range d.Machines {
			if mc.GPUAccess {
				out = append(out, mc)
			}
		}
	}
	return out
}

// Switch is `anklume ai switch DOMAIN`.
func Switch(ctx context.Context, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m, in, err := opts.Model()
	if err != nil {
		return err
	}
	if err := aiaccess.Check(m, opts.Domain); err != nil {
		return err
	}
	target, err := aiaccess.Overlay(m, opts.Domain)
	if err != nil {
		return err
	}
	base, err := opts.BaseDir(in)
	if err != nil {
		return err
	}
	remote := opts.Remote()
	srv, err := opts.Connect(ctx)
	if err != nil {
		return err
	}
	lopts := lock.Options{Server: srv, Command: "ai switch", Warn: opts.IO.ErrOut}
	if opts.Lock != nil {
		opts.Lock(&lopts)
	}
	lk, err := lock.Acquire(ctx, lopts)
	if err != nil {
		return err
	}
	err = opts.locked(ctx, srv, m, target, base, remote)
	if rerr := lk.Release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
		fmt.Fprintf(opts.IO.ErrOut, "warning: releasing the lock: %s\n", rerr)
	}
	return err
}

func (opts *Options) locked(ctx context.Context, srv incusx.Server, m, target *model.Infra, base, remote string) error {
	projects, err := srv.Projects(ctx)
	if err != nil {
		return err
	}
	cur, warn := aiaccess.Live(m, projects)
	if warn != "" {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s\n", warn)
	}
	from := aiaccess.Holder(cur)
	insts, err := srv.Instances(ctx)
	if err != nil {
		return err
	}
	running := map[string]bool{}
	for _, i := range insts {
		if i.StatusCode == api.Running {
			running[i.Project+"/"+i.Name] = true
		}
	}
	var gpu []*model.Machine
	for _, mc := range gpuMachines(m) {
		if running[mc.Domain.Project+"/"+mc.Instance] {
			gpu = append(gpu, mc)
		}
	}
	nvidia, nvErr := opts.LookPath("nvidia-smi")
	doFlush := !opts.NoFlush && m.Global.AIVRAMFlush
	if opts.DryRun {
		opts.Printf("ai switch (dry run): the access to ai-tools would move from %s to %s\n", from, opts.Domain)
		opts.Printf("  stop and start again: %s\n", names(gpu))
		opts.Printf("  record the holder on the projects of %s\n", m.ProjectName)
		if remote == "" {
			opts.Printf("  load the nftables rules with %s -> ai-tools\n", opts.Domain)
		}
		switch {
		case !doFlush:
			opts.Printf("  no GPU memory flush\n")
		case nvErr != nil:
			opts.Printf("  no GPU memory flush (nvidia-smi is not installed)\n")
		default:
			opts.Printf("  flush GPU memory with %s --gpu-reset\n", nvidia)
		}
		return nil
	}
	if from == opts.Domain {
		opts.Printf("ai switch: %s already holds the access to ai-tools\n", from)
		return nil
	}
	// Step 1: stop the GPU instances.
	for _, mc := range gpu {
		if err := stop(ctx, srv, mc); err != nil {
			return err
		}
	}
	// Steps 2-4; the instances start again whatever happens.
	err = opts.move(ctx, srv, projects, target, base, remote, doFlush, nvidia, nvErr)
	for _, mc := range gpu {
		if serr := srv.UpdateInstanceState(context.WithoutCancel(ctx), mc.Domain.Project, mc.Instance,
			api.InstanceStatePut{Action: incusx.ActionStart, Timeout: -1}); serr != nil && err == nil {
			err = serr
		}
	}
	if err != nil {
		return err
	}
	if !opts.Quiet() {
		opts.Printf("ai switch: the access to ai-tools moved from %s to %s (%d GPU instances restarted)\n", from, opts.Domain, len(gpu))
	}
	return nil
}

// stop stops one instance: cleanly within 30 s, else forced.
func stop(ctx context.Context, srv incusx.Server, mc *model.Machine) error {
	err := srv.UpdateInstanceState(ctx, mc.Domain.Project, mc.Instance, api.InstanceStatePut{Action: incusx.ActionStop, Timeout: 30})
	if err != nil {
		err = srv.UpdateInstanceState(ctx, mc.Domain.Project, mc.Instance, api.InstanceStatePut{Action: incusx.ActionStop, Force: true, Timeout: -1})
	}
	return err
}

// move records the holder, loads the rules and flushes the GPU.
func (opts *Options) move(ctx context.Context, srv incusx.Server, projects []api.Project, target *model.Infra,
	base, remote string, doFlush bool, nvidia string, nvErr error) error {
	want := map[string]*incus.Project{}
	for _, p := range incus.Desired(target).Projects {
		want[p.Name] = p
	}
	for _, lp := range projects {
		c := lp.Config
		w, ok := want[lp.Name]
		if !ok || c[incus.KeyManaged] != "true" || c[incus.KeyInfra] != target.ProjectName {
			continue
		}
		if err := recordHolder(ctx, srv, lp.Name, w); err != nil {
			return err
		}
	}
	if remote != "" {
		fmt.Fprintf(opts.IO.ErrOut, "warning: with --remote the nftables rules are not loaded here: run anklume nftables deploy on the Incus host\n")
	} else if len(target.EnabledDomains()) > 0 {
		if err := opts.Deploy(ctx, nftsys.DeployOptions{Model: target, Base: base, NoPersist: opts.NoPersist,
			Out: io.Discard, ErrOut: opts.IO.ErrOut}); err != nil {
			if ne, ok := err.(*nftsys.Error); ok {
				return fmt.Errorf("%s", ne.Msg)
			}
			return err
		}
	}
	opts.resync(base, target)
	switch {
	case !doFlush:
	case nvErr != nil:
		if !opts.Quiet() {
			fmt.Fprintf(opts.IO.ErrOut, "info: nvidia-smi is not installed: GPU memory not flushed\n")
		}
	default:
		if err := opts.Flush(ctx, nvidia); err != nil {
			fmt.Fprintf(opts.IO.ErrOut, "warning: flushing GPU memory: %s\n", err)
		}
	}
	return nil
}

// resync rewrites the generated tree in base, when sync made one
// (incus/desired-state.yml exists), from target, as sync would now: the
// desired state records the new holder and its policy, so that
// ansible-playbook site.yml keeps the switch instead of undoing it. A tree
// that cannot be written (a marker broken by hand, say) is left as it is,
// with a warning: the switch itself is done.
func (opts *Options) resync(base string, target *model.Infra) {
	if _, err := os.Stat(filepath.Join(base, "incus", "desired-state.yml")); err != nil {
		return
	}
	plan, err := tree.NewPlan(base, emit.Tree(target), false)
	if err == nil {
		err = plan.Apply(io.Discard, tree.Options{Brief: true, KeepOld: true})
	}
	if err != nil {
		fmt.Fprintf(opts.IO.ErrOut, "warning: the generated tree in %s still gives the access to the old holder (%s): run anklume sync\n", base, err)
	}
}

// recordHolder sets the holder and policies keys of project name to those
// of w, with the project's ETag.
func recordHolder(ctx context.Context, srv incusx.Server, name string, w *incus.Project) error {
	p, etag, err := srv.Project(ctx, name)
	if err != nil {
		return err
	}
	put := p.Writable()
	changed := false
	for _, k := range []string{incus.KeyAIAccessHolder, incus.KeyPolicies} {
		v, ok := w.Config[k]
		if cur, had := put.Config[k]; had == ok && cur == v {
			continue
		}
		if ok {
			put.Config[k] = v
		} else {
			delete(put.Config, k)
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return srv.UpdateProject(ctx, name, put, etag)
}
