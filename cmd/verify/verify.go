// Package verifycmd implements `anklume verify`: the expected
// reachability matrix of the PSOT (--expected), and the live check that
// probes the isolation on this host and compares it with that matrix.
package verifycmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	"github.com/anklume/anklume/compiler/reach"
)

// Options are the inputs of verify.
type Options struct {
	Env *snapshotcmd.Env

	// Expected prints the matrix computed from the PSOT and probes nothing.
	Expected bool
	JSON     bool
}

// NewCmdVerify builds the verify command. runF replaces the run function
// in tests; nil runs the real one.
func NewCmdVerify(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Env: snapshotcmd.NewEnv(f)}
	cmd := &cobra.Command{
		Use:   "verify --expected [--json]",
		Short: "Show which machine may reach which, and why",
		Long: "With --expected, print the reachability matrix computed from infra.yml alone:\n" +
			"for every ordered pair of machines, and from every machine to the host (its\n" +
			"bridge gateway) and to the outside, which new connections the isolation rules\n" +
			"let through (all, none, or protocol/ports) and why: same domain, a named\n" +
			"policy, the AI exclusive policy, the host services, egress. Review it before an\n" +
			"apply to see what a policy change opens. --json prints one JSON document.",
		Example: "  anklume verify --expected\n" +
			"  anklume verify --expected --json | jq '.pairs[] | select(.from == \"lab-1\")'",
		Args:              cobra.NoArgs,
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
	fl.BoolVar(&opts.JSON, "json", false, "print JSON instead of a table")
	return cmd
}

// Run is `anklume verify`.
func Run(ctx context.Context, opts *Options) error {
	if !opts.Expected {
		return cmdutil.FlagErrorf("live probing is not available yet; use --expected")
	}
	m, _, err := opts.Env.Model()
	if err != nil {
		return err
	}
	mx := reach.Compute(m)
	if opts.JSON {
		return mx.WriteJSON(opts.Env.IO.Out)
	}
	return mx.WriteTable(opts.Env.IO.Out)
}
