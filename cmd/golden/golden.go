// Package goldencmd implements `anklume golden create|derive|publish|list`
// (SPEC.md §12.6).
package goldencmd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	"github.com/anklume/anklume/internal/golden"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/progress"
	"github.com/anklume/anklume/internal/snapshots"
	"github.com/anklume/anklume/internal/suggest"
)

// Options are the inputs of every golden subcommand.
type Options struct {
	*snapshotcmd.Env
	Args   []string
	Domain string
	JSON   bool
}

// NewCmdGolden builds `golden` and its subcommands. runF replaces the run
// function of every subcommand in tests; nil runs the real one.
func NewCmdGolden(f *cmdutil.Factory, runF func(string, *Options) error) *cobra.Command {
	cmd := &cobra.Command{
		Use: "golden",
		Long: "A golden machine is one whose pristine snapshot serves as a template: create\n" +
			"takes that snapshot, derive copies it to a new instance, publish turns it into\n" +
			"an image, list shows the machines that have one.",
		Example: "  anklume golden create web\n" +
			"  anklume golden derive web web2\n" +
			"  anklume golden publish web web-golden\n" +
			"  anklume golden list",
		Short: "Golden images: a machine's pristine snapshot, derived instances, published images",
	}
	sub := func(use, short string, nargs int, setup func(*cobra.Command, *Options)) *cobra.Command {
		o := &Options{Env: snapshotcmd.NewEnv(f)}
		name := use
		for i, c := range use {
			if c == ' ' {
				name = use[:i]
				break
			}
		}
		c := &cobra.Command{
			Use: use, Short: short, Long: help[name].long, Example: help[name].example,
			Args: func(c *cobra.Command, args []string) error {
				if err := cmdutil.ExactArgs(strings.Fields(use)[1:]...)(c, args); err != nil {
					return err
				}
				o.Args = args
				return nil
			},
			RunE: func(c *cobra.Command, args []string) error {
				if runF != nil {
					return runF(name, o)
				}
				return Run(c.Context(), name, o)
			},
		}
		if setup != nil {
			setup(c, o)
		}
		return c
	}
	cmd.AddCommand(
		sub("create MACHINE", "Stop the machine, replace its pristine snapshot, restore its running state", 1, nil),
		sub("derive MACHINE NEW", "Copy MACHINE/pristine to a new instance, without ownership, static IP or protection", 2,
			func(c *cobra.Command, o *Options) {
				c.Flags().StringVar(&o.Domain, "domain", "", "domain of the new instance (default: MACHINE's)")
			}),
		sub("publish MACHINE ALIAS", "Publish MACHINE/pristine as an image with ALIAS", 2, nil),
		sub("list", "List the machines that have a pristine snapshot", 0, func(c *cobra.Command, o *Options) {
			c.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
		}),
	)
	return cmd
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
	var t snapshots.Target
	if len(opts.Args) > 0 {
		if t, err = snapshots.Machine(m, opts.Args[0]); err != nil {
			return err
		}
	}
	srv, err := opts.Ops(ctx)
	if err != nil {
		return err
	}
	// create, derive and publish are one Incus operation each: on a
	// terminal a live line shows it with what the daemon reports (a
	// publish packs the whole root file system) and the elapsed time.
	var pr *progress.Display
	if sub == "create" || sub == "derive" || sub == "publish" {
		pr = opts.Progress()
		defer pr.Close()
	}
	task := func(step string) context.Context {
		pr.Start("golden", t.String())
		pr.Step("golden", step)
		return incusx.WithProgress(ctx, func(s string) { pr.Detail("golden", s) })
	}
	switch sub {
	case "create":
		if err := golden.Create(task("snapshotting"), srv, t); err != nil {
			return err
		}
		pr.End("golden", fmt.Sprintf("created: %s/%s", t, golden.Snapshot))
		return nil
	case "derive":
		newName := opts.Args[1]
		project := t.Project
		if opts.Domain != "" {
			d := m.Domain(opts.Domain)
			if d == nil || !d.Enabled {
				return fmt.Errorf("--domain: unknown domain %q%s", opts.Domain, suggest.Hint(opts.Domain, m.DomainNames()))
			}
			project = d.Project
		}
		inst := m.Prefix + newName
		if err := golden.Derive(task("copying to "+project+"/"+inst), srv, t, inst, project); err != nil {
			return err
		}
		pr.End("golden", fmt.Sprintf("derived: %s/%s from %s/%s", project, inst, t, golden.Snapshot))
		fmt.Fprintf(opts.IO.ErrOut, "hint: add %s to infra.yml to manage it\n", newName)
		return nil
	case "publish":
		alias := opts.Args[1]
		if err := golden.Publish(task("publishing as "+alias), srv, t, alias); err != nil {
			return err
		}
		pr.End("golden", fmt.Sprintf("published: %s/%s as image %s", t, golden.Snapshot, alias))
		return nil
	case "list":
		targets, err := snapshots.Resolve(m, nil, nil)
		if err != nil {
			return err
		}
		entries, err := golden.List(ctx, srv, targets)
		if err != nil {
			return err
		}
		if opts.JSON {
			return writeJSON(opts, entries)
		}
		tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "INSTANCE\tPROJECT\tCREATED")
		for _, e := range entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Instance, e.Project, e.Created.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	}
	return fmt.Errorf("unknown golden subcommand %q", sub)
}

func writeJSON(opts *Options, entries []golden.Entry) error {
	type entry struct {
		Instance string `json:"instance"`
		Project  string `json:"project"`
		Machine  string `json:"machine"`
		Domain   string `json:"domain"`
		Created  string `json:"created"`
	}
	doc := struct {
		FormatVersion int     `json:"format_version"`
		Golden        []entry `json:"golden"`
	}{FormatVersion: 1, Golden: []entry{}}
	for _, e := range entries {
		doc.Golden = append(doc.Golden, entry{Instance: e.Instance, Project: e.Project, Machine: e.Machine,
			Domain: e.Domain, Created: e.Created.UTC().Format(time.RFC3339)})
	}
	if err := json.NewEncoder(opts.IO.Out).Encode(doc); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

// help holds the long description and examples of each golden subcommand.
var help = map[string]struct{ long, example string }{
	"create": {
		long: "Stop MACHINE, replace its snapshot pristine with a new one, and start it again\n" +
			"if it was running. pristine never expires.",
		example: "  anklume golden create web",
	},
	"derive": {
		long: "Copy MACHINE's pristine snapshot to a new stopped instance NEW, without\n" +
			"anklume's ownership keys, static IP or delete protection (add NEW to infra.yml\n" +
			"to manage it).",
		example: "  anklume golden derive web web2\n" +
			"  anklume golden derive web web3 --domain lab",
	},
	"publish": {
		long: "Publish MACHINE's pristine snapshot as an image with alias ALIAS, usable as\n" +
			"os_image in infra.yml.",
		example: "  anklume golden publish web web-golden",
	},
	"list": {
		long: "List the machines of infra.yml that have a pristine snapshot.",
		example: "  anklume golden list\n" +
			"  anklume golden list --json",
	},
}
