// Package snapshotcmd implements `anklume snapshot
// create|restore|list|delete|rollback` (SPEC.md §12.4). It also holds Env,
// which the other lifecycle commands (disp, golden, backup) share to read
// the PSOT and connect to Incus.
package snapshotcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/internal/lock"
	"github.com/anklume/anklume/internal/progress"
	"github.com/anklume/anklume/internal/snapshots"
)

// Options are the inputs of every snapshot subcommand.
type Options struct {
	*Env
	// Lock tweaks the lock options of rollback (tests).
	Lock func(*lock.Options)

	Targets []string
	Name    string
	Expiry  string
	JSON    bool
	// Timestamp is the rollback TIMESTAMP ("" for the latest).
	Timestamp string
	Limit     []string
}

// NewCmdSnapshot builds `snapshot` and its subcommands. runF replaces the
// run function of every subcommand in tests (its first argument is the
// subcommand name); nil runs the real one.
func NewCmdSnapshot(f *cmdutil.Factory, runF func(string, *Options) error) *cobra.Command {
	cmd := &cobra.Command{
		Use: "snapshot",
		Example: "  anklume snapshot create\n" +
			"  anklume snapshot list\n" +
			"  anklume snapshot restore web --name before-upgrade",
		Short: "Create, restore, list and delete instance snapshots",
		Long: "Snapshots of the machines of infra.yml. Every snapshot anklume creates carries\n" +
			"an explicit expiry (never by default), so Incus never applies the instance's\n" +
			"snapshots.expiry to it.",
	}
	run := func(name string, opts *Options) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(name, opts)
			}
			return Run(c.Context(), name, opts)
		}
	}
	newOpts := func() *Options { return &Options{Env: NewEnv(f)} }

	o := newOpts()
	create := &cobra.Command{
		Use: "create [TARGET...]",
		Long: "Snapshot the named machines, or every machine of the named domains, or every\n" +
			"machine of infra.yml when no TARGET is given. The snapshot never expires\n" +
			"unless --expiry says when.",
		Example: "  anklume snapshot create\n" +
			"  anklume snapshot create web db --name before-upgrade\n" +
			"  anklume snapshot create lab --expiry 30d",
		Short: "Snapshot machines or whole domains (default: every machine)",
		Args: func(c *cobra.Command, args []string) error {
			o.Targets = args
			if _, err := snapshots.ParseExpiry(o.Expiry); err != nil {
				return cmdutil.FlagErrorf("--expiry: %v", err)
			}
			return nil
		},
		RunE: run("create", o),
	}
	create.Flags().StringVar(&o.Name, "name", "", "snapshot name (default anklume-snap-YYYYMMDD-HHMMSS, UTC)")
	create.Flags().StringVar(&o.Expiry, "expiry", snapshots.Never, "expiry such as 30d or \"1y 6m\", or never")

	o2 := newOpts()
	restore := &cobra.Command{
		Use: "restore TARGET --name N",
		Long: "Restore the snapshot --name of TARGET (a machine, or every machine of a\n" +
			"domain). A running instance is stopped, restored and started again.",
		Example: "  anklume snapshot restore web --name before-upgrade\n" +
			"  anklume snapshot restore lab --name anklume-snap-20260101-120000",
		Short: "Restore a snapshot (stops and restarts a running instance)",
		Args:  targetAndName(o2),
		RunE:  run("restore", o2),
	}
	restore.Flags().StringVar(&o2.Name, "name", "", "snapshot name (required)")

	o3 := newOpts()
	list := &cobra.Command{
		Use: "list [TARGET...]",
		Long: "List the snapshots of the named machines or domains (default: every machine),\n" +
			"with their creation and expiry times.",
		Example: "  anklume snapshot list\n" +
			"  anklume snapshot list web\n" +
			"  anklume snapshot list --json",
		Short: "List snapshots: INSTANCE SNAPSHOT CREATED EXPIRES",
		Args:  func(c *cobra.Command, args []string) error { o3.Targets = args; return nil },
		RunE:  run("list", o3),
	}
	list.Flags().BoolVar(&o3.JSON, "json", false, "print JSON")

	o4 := newOpts()
	del := &cobra.Command{
		Use: "delete TARGET --name N",
		Long: "Delete the snapshot --name of TARGET (a machine, or every machine of a\n" +
			"domain). A snapshot that does not exist is not an error.",
		Example: "  anklume snapshot delete web --name before-upgrade",
		Short:   "Delete a snapshot (nothing happens when it is absent)",
		Args:    targetAndName(o4),
		RunE:    run("delete", o4),
	}
	del.Flags().StringVar(&o4.Name, "name", "", "snapshot name (required)")

	o5 := newOpts()
	rollback := &cobra.Command{
		Use: "rollback [TIMESTAMP]",
		Long: "apply takes a snapshot anklume-pre-<TIMESTAMP> of every instance it changes.\n" +
			"rollback restores those of the given TIMESTAMP, or the latest ones.",
		Example: "  anklume snapshot rollback\n" +
			"  anklume snapshot rollback 20260101-120000 --limit work",
		Short: "Restore the pre-apply snapshots anklume-pre-<TIMESTAMP or latest>",
		Args: func(c *cobra.Command, args []string) error {
			if err := cmdutil.MaxArgs("TIMESTAMP")(c, args); err != nil {
				return err
			}
			if len(args) == 1 {
				o5.Timestamp = args[0]
			}
			return nil
		},
		RunE: run("rollback", o5),
	}
	rollback.Flags().StringArrayVar(&o5.Limit, "limit", nil, "roll back only this domain (repeatable)")

	cmd.AddCommand(create, restore, list, del, rollback)
	return cmd
}

func targetAndName(o *Options) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := cmdutil.ExactArgs("TARGET")(c, args); err != nil {
			return err
		}
		if o.Name == "" {
			return cmdutil.FlagErrorf("--name is required")
		}
		o.Targets = args
		return nil
	}
}

// Run runs one subcommand.
func Run(ctx context.Context, sub string, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m, _, err := opts.Model()
	if err != nil {
		return err
	}
	targets, err := snapshots.Resolve(m, opts.Targets, opts.Limit)
	if err != nil {
		return err
	}
	srv, err := opts.Connect(ctx)
	if err != nil {
		return err
	}
	warn := opts.IO.ErrOut
	// create, restore and rollback show each instance's work: live on a
	// terminal (the step, the daemon's progress, the elapsed time), and
	// each finished instance's line as soon as it is done.
	var pr *progress.Display
	if sub == "create" || sub == "restore" || sub == "rollback" {
		pr = opts.Progress()
		defer pr.Close()
		warn = pr.Wrap(warn)
	}
	track := func(done string) snapshots.Progress {
		return snapshots.Progress{
			Step: func(t snapshots.Target, step string) {
				pr.Start(t.String(), t.String())
				pr.Step(t.String(), step)
			},
			Detail: func(t snapshots.Target, text string) { pr.Detail(t.String(), text) },
			Done: func(t snapshots.Target, snapshot string, err error) {
				line := ""
				if err == nil {
					line = done + ": " + t.String() + "/" + snapshot
				}
				pr.End(t.String(), line)
			},
		}
	}
	switch sub {
	case "create":
		expiry, err := snapshots.ParseExpiry(opts.Expiry)
		if err != nil {
			return err
		}
		now := opts.Now()
		name := opts.Name
		if name == "" {
			name = snapshots.DefaultName(now)
		}
		expires, err := snapshots.ExpiresAt(now, expiry)
		if err != nil {
			return err
		}
		_, err = snapshots.Create(ctx, srv, targets, name, expires, warn, track("created"))
		return err
	case "restore":
		return snapshots.Restore(ctx, srv, targets[0], opts.Name, track("restored"))
	case "delete":
		deleted, err := snapshots.Delete(ctx, srv, targets[0], opts.Name)
		if err != nil {
			return err
		}
		if deleted {
			opts.Printf("deleted: %s/%s\n", targets[0], opts.Name)
		}
		return nil
	case "list":
		entries, err := snapshots.List(ctx, srv, targets, warn)
		if err != nil {
			return err
		}
		if opts.JSON {
			return writeJSON(opts, entries)
		}
		return writeTable(opts, entries)
	case "rollback":
		lopts := lock.Options{Server: srv, Command: "snapshot rollback", Warn: warn}
		if opts.Lock != nil {
			opts.Lock(&lopts)
		}
		lk, err := lock.Acquire(ctx, lopts)
		if err != nil {
			return err
		}
		_, _, err = snapshots.Rollback(ctx, srv, targets, opts.Timestamp, warn, track("restored"))
		if rerr := lk.Release(context.WithoutCancel(ctx)); rerr != nil {
			fmt.Fprintf(warn, "warning: releasing the lock: %s\n", rerr)
		}
		return err
	}
	return fmt.Errorf("unknown snapshot subcommand %q", sub)
}

// stamp formats a time as RFC 3339 UTC, or "never".
func stamp(t time.Time, never bool) string {
	if never {
		return snapshots.Never
	}
	return t.UTC().Format(time.RFC3339)
}

func writeTable(opts *Options, entries []snapshots.Entry) error {
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tSNAPSHOT\tCREATED\tEXPIRES")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Instance, e.Name, stamp(e.Created, false), stamp(e.Expires, e.Never()))
	}
	return tw.Flush()
}

// jsonEntry is one snapshot of `snapshot list --json`.
type jsonEntry struct {
	Instance string  `json:"instance"`
	Project  string  `json:"project"`
	Machine  string  `json:"machine"`
	Domain   string  `json:"domain"`
	Snapshot string  `json:"snapshot"`
	Created  string  `json:"created"`
	Expires  *string `json:"expires"`
}

func writeJSON(opts *Options, entries []snapshots.Entry) error {
	doc := struct {
		FormatVersion int         `json:"format_version"`
		Snapshots     []jsonEntry `json:"snapshots"`
	}{FormatVersion: 1, Snapshots: []jsonEntry{}}
	for _, e := range entries {
		j := jsonEntry{Instance: e.Instance, Project: e.Project, Machine: e.Machine, Domain: e.Domain,
			Snapshot: e.Name, Created: stamp(e.Created, false)}
		if !e.Never() {
			s := stamp(e.Expires, false)
			j.Expires = &s
		}
		doc.Snapshots = append(doc.Snapshots, j)
	}
	enc := json.NewEncoder(opts.IO.Out)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}
