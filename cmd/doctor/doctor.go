// Package doctor implements `anklume doctor [--json]` (SPEC.md §12.8): the
// host checks of internal/doctor, printed as `[ok|warn|fail] <id>: <text>`
// or as one JSON document. The exit status is 1 if any check fails.
package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	plancmd "github.com/anklume/anklume/cmd/plan"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/emit"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/internal/doctor"
	"github.com/anklume/anklume/internal/incusx"
	nftsys "github.com/anklume/anklume/internal/nftables"
)

// subnetConflict starts the message of rule V31.
const subnetConflict = "subnet conflict: "

// Options are the inputs of doctor. The host functions default to the
// real host when nil.
type Options struct {
	IO      *cmdutil.IOStreams
	Globals *cmdutil.GlobalOptions
	Source  func() (fs.FS, compiler.Input, []string, error)
	Host    func(remote bool) (host.Options, error)
	Remote  func() string
	Getwd   func() (string, error)
	Incus   func(ctx context.Context, remote string) (incusx.Server, error)

	// Sys is the host for the checks that do not go through Incus or the
	// PSOT; nil fields are filled by DefaultSys.
	Sys doctor.Env

	JSON bool

	// input is the PSOT selection loadModel found.
	input compiler.Input
}

// NewCmdDoctor builds the doctor command. runF replaces the run function
// in tests; nil runs the real one.
func NewCmdDoctor(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Globals: f.Globals, Source: f.Source, Host: f.Host, Remote: f.Remote, Getwd: f.Getwd, Incus: f.Incus}
	cmd := &cobra.Command{
		Use: "doctor",
		Example: "  anklume doctor\n" +
			"  anklume doctor --json",
		Short: "Check the host: Incus, nftables, Ansible, the lock, the generated tree and orphans",
		Long: "Run the checks of the host anklume needs, each printed as [ok], [warn] or [fail]\n" +
			"followed by <id>: <text>. The exit status is 1 if any check fails.",
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document")
	return cmd
}

// DefaultSys returns the real host for the checks: PATH lookups, the
// br_netfilter switch, systemd, systemctl, nft and ansible-doc.
func DefaultSys() doctor.Env {
	sys := nftsys.DefaultSystem()
	return doctor.Env{
		LookPath: exec.LookPath,
		BridgeNF: func() ([]byte, error) { return os.ReadFile(nftsys.DefaultBridgeNFPath) },
		Systemd: func() bool {
			fi, err := os.Stat(nftsys.DefaultSystemdDir)
			return err == nil && fi.IsDir()
		},
		UnitEnabled: func(ctx context.Context) (bool, error) {
			out, err := exec.CommandContext(ctx, "systemctl", "is-enabled", nftsys.UnitName).Output()
			state := strings.TrimSpace(string(out))
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				return false, fmt.Errorf("running systemctl: %w", err)
			}
			return state == "enabled", nil
		},
		NFT: sys.Status,
		ConnectionPlugins: func(ctx context.Context) ([]string, error) {
			out, err := exec.CommandContext(ctx, "ansible-doc", "-t", "connection", "-l").Output()
			if err != nil {
				return nil, fmt.Errorf("running ansible-doc: %w", err)
			}
			var names []string
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) > 0 {
					names = append(names, f[0])
				}
			}
			return names, nil
		},
	}
}

// Run is `anklume doctor`.
func Run(ctx context.Context, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	env := opts.Sys
	def := DefaultSys()
	if env.LookPath == nil {
		env.LookPath = def.LookPath
	}
	if env.BridgeNF == nil {
		env.BridgeNF = def.BridgeNF
	}
	if env.Systemd == nil {
		env.Systemd = def.Systemd
	}
	if env.UnitEnabled == nil {
		env.UnitEnabled = def.UnitEnabled
	}
	if env.NFT == nil {
		env.NFT = def.NFT
	}
	if env.ConnectionPlugins == nil {
		env.ConnectionPlugins = def.ConnectionPlugins
	}
	env.Remote = opts.Remote()
	env.ObserveOptions = plancmd.ObserveOptions

	opts.loadModel(&env)
	if env.Model != nil {
		in := opts.input
		env.Tree = func(m *model.Infra) (*tree.Plan, error) {
			base, err := cmdutil.AbsBaseDir(opts.Globals, opts.Getwd, in)
			if err != nil {
				return nil, err
			}
			return tree.NewPlan(base, emit.Tree(m), false)
		}
	}
	srv, err := opts.Incus(ctx, env.Remote)
	if err != nil {
		env.ConnErr = err
	} else {
		env.Server = srv
	}

	r := doctor.Run(ctx, env)
	if opts.JSON {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encoding the report: %w", err)
		}
		if _, err := fmt.Fprintf(opts.IO.Out, "%s\n", b); err != nil {
			return fmt.Errorf("printing the report: %w", err)
		}
	} else {
		for _, c := range r.Checks {
			if _, err := fmt.Fprintf(opts.IO.Out, "[%s] %s: %s\n", c.Status, c.ID, c.Text); err != nil {
				return fmt.Errorf("printing the report: %w", err)
			}
		}
	}
	if r.Failed > 0 {
		return &cmdutil.ExitError{Code: cmdutil.ExitFailure}
	}
	return nil
}

// loadModel compiles the PSOT twice: without V31 for the model the other
// checks use, and with the host interfaces for host.subnets. Diagnostics
// of the first compile go to stderr (errors only, as the checks report
// what they could not do).
func (opts *Options) loadModel(env *doctor.Env) {
	fsys, in, _, err := opts.Source()
	if err != nil {
		env.ModelErr = "no valid PSOT (" + err.Error() + ")"
		return
	}
	opts.input = in
	hopts, err := opts.Host(env.Remote != "")
	if err != nil {
		env.ModelErr = "no valid PSOT (" + err.Error() + ")"
		return
	}
	env.SubnetSkipped = hopts.SkipHostSubnetCheck
	skip := hopts
	skip.SkipHostSubnetCheck = true
	res, dl, err := compiler.Compile(fsys, in, skip)
	if err != nil || dl.HasErrors() || res == nil || res.Model == nil {
		dl.Filter(diag.Error).Print(opts.IO.ErrOut)
		env.ModelErr = "the PSOT does not validate (run anklume validate)"
		if err != nil {
			env.ModelErr = "no valid PSOT (" + err.Error() + ")"
		}
		return
	}
	env.Model = res.Model
	if hopts.SkipHostSubnetCheck || hopts.Remote {
		return
	}
	_, dl, _ = compiler.Compile(fsys, in, hopts)
	for _, d := range dl {
		if d.Severity == diag.Error && strings.HasPrefix(d.Msg, subnetConflict) {
			env.SubnetConflicts = append(env.SubnetConflicts, d.Msg)
		}
	}
}
