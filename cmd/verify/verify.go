// Package verifycmd implements `anklume verify`: the expected
// reachability matrix of the PSOT (--expected), and the live check that
// probes the isolation on this host and compares it with that matrix.
package verifycmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/reach"
	"github.com/anklume/anklume/internal/aiaccess"
	"github.com/anklume/anklume/internal/incusx"
	nftsys "github.com/anklume/anklume/internal/nftables"
	"github.com/anklume/anklume/internal/verify"
)

// Options are the inputs of verify.
type Options struct {
	Env *snapshotcmd.Env

	// Expected prints the matrix computed from the PSOT and probes nothing.
	Expected bool
	JSON     bool

	// Live probing bounds.
	Limit     []string
	Pairs     int
	Timeout   time.Duration
	Budget    time.Duration
	Jobs      int
	NoOutside bool
}

// NewCmdVerify builds the verify command. runF replaces the run function
// in tests; nil runs the real one.
func NewCmdVerify(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Env: snapshotcmd.NewEnv(f)}
	cmd := &cobra.Command{
		Use:   "verify [--expected] [--json] [--limit D]... [--pairs N] [--timeout T] [--budget T] [-j N]",
		Short: "Prove the isolation on this host: probe real connections between the machines",
		Long: "Without --expected (as root, on the Incus host): check that the table inet anklume\n" +
			"is loaded and identical to the PSOT, that bridge netfilter is on, that every nic\n" +
			"has its anti-spoofing filters and that no instance has a nic on another domain's\n" +
			"bridge; then, from inside running containers' network namespaces (entered from\n" +
			"the host: nothing runs in the guests), try TCP, UDP and ICMP connections for a\n" +
			"sample of pairs that covers every rule: every policy, every pair of domains both\n" +
			"ways, same domain, the host and the outside (a throwaway namespace stands for\n" +
			"it, so no probe leaves the machine). A TCP accept or refusal means reachable, a\n" +
			"timeout means dropped. Every result that differs from the expected matrix is\n" +
			"printed with the rule that should have applied; the exit status is then 1.\n" +
			"--json prints the whole run as one JSON document instead (format_version 1:\n" +
			"ok, probes, mismatches, checks[], results[] with from, to, proto, port,\n" +
			"expected, outcome and mismatch for every probe); the exit status is the same.\n" +
			"The last run is recorded for anklume status and the dashboard.\n" +
			"\n" +
			"With --expected, print the reachability matrix computed from infra.yml (and,\n" +
			"with an exclusive AI access, the holder anklume ai switch recorded in Incus):\n" +
			"for every ordered pair of machines, and from every machine to the host (its\n" +
			"bridge gateway) and to the outside, which new connections the isolation rules\n" +
			"let through (all, none, or protocol/ports) and why: same domain, a named\n" +
			"policy, the AI exclusive policy, the host services, egress. --json prints one\n" +
			"JSON document.",
		Example: "  sudo anklume verify\n" +
			"  sudo anklume verify --limit lab --pairs 20 -v\n" +
			"  sudo anklume verify --json | jq '.results[] | select(.mismatch)'\n" +
			"  anklume verify --expected\n" +
			"  anklume verify --expected --json | jq '.pairs[] | select(.from == \"lab-1\")'",
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
	fl.BoolVar(&opts.Expected, "expected", false, "print the matrix computed from the PSOT; probe nothing")
	fl.BoolVar(&opts.JSON, "json", false, "print one JSON document instead of the report (or, with --expected, of the table)")
	fl.StringArrayVar(&opts.Limit, "limit", nil, "probe only pairs whose source or target is in this domain (repeatable)")
	fl.IntVar(&opts.Pairs, "pairs", 0, "probe at most `N` pairs (0: every sampled pair)")
	fl.DurationVar(&opts.Timeout, "timeout", verify.DefaultTimeout, "time a probe waits before it counts as dropped")
	fl.DurationVar(&opts.Budget, "budget", verify.DefaultBudget, "total time for the probes; the rest is reported as not run")
	fl.IntVarP(&opts.Jobs, "jobs", "j", verify.DefaultJobs, "probes run in parallel")
	fl.BoolVar(&opts.NoOutside, "no-outside", false, "skip the egress probes (they need a throwaway network namespace)")
	return cmd
}

// Run is `anklume verify`.
func Run(ctx context.Context, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m, _, err := opts.Env.Model()
	if err != nil {
		return err
	}
	if opts.Expected {
		// The matrix follows the AI access holder that ai switch recorded
		// in Incus, as nftables render and deploy do: it describes the
		// rules this host loads. Without Incus (or with no exclusive AI
		// access, where no request is made) it is the PSOT's alone, and a
		// warning says ai_access_default was used.
		m = expectedModel(ctx, opts.Env, m)
		mx := reach.Compute(m)
		if opts.JSON {
			return mx.WriteJSON(opts.Env.IO.Out)
		}
		return mx.WriteTable(opts.Env.IO.Out)
	}
	return Live(ctx, opts, m)
}

// Live probes the isolation of m on this host, prints the report, records
// the result for status and returns an exit error 1 on any mismatch. apply
// --verify calls it after an apply.
func Live(ctx context.Context, opts *Options, m *model.Infra) error {
	e := opts.Env
	if e.Remote() != "" {
		return errors.New("--remote: verify probes the machines of this host; run anklume verify on the Incus host")
	}
	if os.Geteuid() != 0 {
		return errors.New("verify needs root: it enters the machines' network namespaces and reads the nftables table")
	}
	srv, err := e.Connect(ctx)
	if err != nil {
		return err
	}
	// The AI exclusive access follows its holder recorded in Incus (ai
	// switch moves it and reloads the table): the expectations and the
	// table comparison use the holder, as nftables status does.
	m, warn, err := aiaccess.FromServer(ctx, srv, m)
	if err != nil {
		return err
	}
	if warn != "" && !e.Quiet() {
		fmt.Fprintf(e.IO.ErrOut, "warning: %s\n", warn)
	}
	sl, ok := srv.(incusx.StateLister)
	if !ok {
		return errors.New("this Incus connection cannot list instance states")
	}
	rep, err := verify.Run(ctx, verify.Options{
		Model:     m,
		Instances: sl.InstancesWithState,
		NFTStatus: nftsys.DefaultSystem().Status,
		Domains:   opts.Limit,
		MaxPairs:  opts.Pairs,
		Timeout:   opts.Timeout,
		Budget:    opts.Budget,
		Jobs:      opts.Jobs,
		NoOutside: opts.NoOutside,
		Progress:  progressWriter(e),
		TTY:       e.IO.ErrTTY,
	})
	if err != nil {
		return err
	}
	doc := rep.Document(m.ProjectName, time.Now())
	if opts.JSON {
		if err := doc.WriteJSON(e.IO.Out); err != nil {
			return err
		}
	} else {
		rep.Write(e.IO.Out, e.Globals != nil && e.Globals.Verbose)
	}
	if err := verify.Save(os.Getenv("ANKLUME_STATE_DIR"), doc); err != nil {
		fmt.Fprintf(e.IO.ErrOut, "warning: %v\n", err)
	}
	if !doc.OK {
		return &cmdutil.ExitError{Code: cmdutil.ExitFailure}
	}
	return nil
}

// expectedModel is m with the AI access holder recorded in Incus, when m
// has an exclusive AI access; a warning on stderr (unless --quiet) when
// Incus cannot be read.
func expectedModel(ctx context.Context, e *snapshotcmd.Env, m *model.Infra) *model.Infra {
	o, warn := aiaccess.Resolve(ctx, e.Incus, e.Remote(), m)
	if warn != "" && !e.Quiet() {
		fmt.Fprintf(e.IO.ErrOut, "warning: %s\n", warn)
	}
	return o
}

// progressWriter is stderr, or nothing with --quiet.
func progressWriter(e *snapshotcmd.Env) io.Writer {
	if e.Quiet() {
		return nil
	}
	return e.IO.ErrOut
}
