package root

import (
	"context"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	rolescmd "github.com/anklume/anklume/cmd/roles"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/examples"
	"github.com/anklume/anklume/internal/snapshots"
)

// completionTimeout bounds what a completion may wait for the Incus
// server: a slow or absent server gives no snapshot names, never a hung
// shell.
const completionTimeout = 2 * time.Second

// Shell completion of names, wired here for the whole tree so that every
// command completes the same flags the same way:
//
//   - --limit and --domain: the domains of the PSOT;
//   - the MACHINE argument (shell, golden, backup create) and the TARGET
//     arguments of snapshot (a machine or a domain): the PSOT's names;
//   - --name of snapshot restore and delete: the snapshots of the TARGET
//     machine, read from Incus with a timeout of completionTimeout;
//   - --example of init: the embedded examples;
//   - --remote: the remotes of the Incus client configuration;
//   - the ROLE argument of roles: the built-in provisioning roles and
//     those of roles_custom/ and roles_vendor/ (cmd/roles.List).
//
// Names come from the PSOT that -f (or the current directory) selects; a
// PSOT that does not compile gives no names (the shell then falls back to
// nothing rather than to file names); role names are completed even
// then, from the built-in roles.

// argKinds maps a command path to what its positional arguments complete
// to: "machine" for the first argument only, "targets" for every argument.
var argKinds = map[string]string{
	"shell":            "machine",
	"golden create":    "machine",
	"golden derive":    "machine",
	"golden publish":   "machine",
	"backup create":    "machine",
	"snapshot create":  "targets",
	"snapshot list":    "targets",
	"snapshot restore": "target",
	"snapshot delete":  "target",
}

// registerCompletions walks the tree from c and registers the completion
// functions of its flags and arguments.
func registerCompletions(c *cobra.Command, f *cmdutil.Factory) {
	path := strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), c.Root().Name()), " ")
	names := func(list func(*model.Infra) []string) cobra.CompletionFunc {
		return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			m := completionModel(cmd, f)
			if m == nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return filterPrefix(list(m), toComplete), cobra.ShellCompDirectiveNoFileComp
		}
	}
	// Flags, not LocalFlags: the root's persistent flags (the only ones)
	// name neither, and LocalFlags merges and sorts every flag set on the
	// way up, for every command, on every run (1.5% of a no-op plan's CPU).
	for _, flag := range []string{"limit", "domain"} {
		if c.Flags().Lookup(flag) != nil {
			_ = c.RegisterFlagCompletionFunc(flag, names(domainNames))
		}
	}
	if path == "init" && c.Flags().Lookup("example") != nil {
		_ = c.RegisterFlagCompletionFunc("example", fixed(examples.Names))
	}
	if c.Parent() == nil && f.Remotes != nil {
		_ = c.RegisterFlagCompletionFunc("remote", fixed(f.Remotes))
	}
	if (path == "snapshot restore" || path == "snapshot delete") && c.Flags().Lookup("name") != nil {
		_ = c.RegisterFlagCompletionFunc("name", func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return filterPrefix(snapshotNames(cmd, f, args), toComplete), cobra.ShellCompDirectiveNoFileComp
		})
	}
	if path == "roles" {
		c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return filterPrefix(roleNames(cmd, f), toComplete), cobra.ShellCompDirectiveNoFileComp
		}
	}
	if kind, ok := argKinds[path]; ok {
		c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if kind != "targets" && len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			list := machineNames
			if kind != "machine" {
				list = targetNames
			}
			return names(list)(cmd, args, toComplete)
		}
	}
	for _, sub := range c.Commands() {
		registerCompletions(sub, f)
	}
}

func fixed(list func() []string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return filterPrefix(list(), toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// completionModel compiles the selected PSOT quietly; nil when it cannot.
// The persistent pre-run does not run during completion, so whether -f was
// given is read from the flags here.
func completionModel(cmd *cobra.Command, f *cmdutil.Factory) *model.Infra {
	if f.Globals != nil {
		f.Globals.FileSet = cmd.Flags().Changed("file")
	}
	fsys, in, _, err := f.Source()
	if err != nil || f.Host == nil {
		return nil
	}
	hopts, err := f.Host(f.Remote() != "")
	if err != nil {
		return nil
	}
	res, _, err := compiler.Compile(fsys, in, hopts)
	if err != nil || res == nil {
		return nil
	}
	return res.Model
}

// roleNames lists the roles `anklume roles` knows, for the PSOT that -f
// selects (its roles_custom/ and roles_vendor/).
func roleNames(cmd *cobra.Command, f *cmdutil.Factory) []string {
	if f.Globals != nil {
		f.Globals.FileSet = cmd.Flags().Changed("file")
	}
	opts := &rolescmd.Options{IO: f.IO, Globals: f.Globals, Source: f.Source, Host: f.Host, Getwd: f.Getwd, FS: f.FS}
	var m *model.Infra
	var base fs.FS
	if f.Host != nil {
		m, base, _ = rolescmd.Load(opts, false)
	}
	return rolescmd.Names(rolescmd.List(m, base))
}

func domainNames(m *model.Infra) []string {
	var out []string
	for _, d := range m.Domains {
		out = append(out, d.Name)
	}
	return out
}

func machineNames(m *model.Infra) []string {
	var out []string
	for _, d := range m.Domains {
		for _, x := range d.Machines {
			out = append(out, x.Name)
		}
	}
	return out
}

func targetNames(m *model.Infra) []string {
	return append(machineNames(m), domainNames(m)...)
}

// snapshotNames lists the snapshots of the machine named by args[0], from
// Incus, within completionTimeout.
func snapshotNames(cmd *cobra.Command, f *cmdutil.Factory, args []string) []string {
	if len(args) == 0 || f.Incus == nil {
		return nil
	}
	m := completionModel(cmd, f)
	if m == nil {
		return nil
	}
	t, err := snapshots.Machine(m, args[0])
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	srv, err := f.Incus(ctx, f.Remote())
	if err != nil {
		return nil
	}
	snaps, err := srv.Snapshots(ctx, t.Project, t.Instance)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range snaps {
		name := s.Name
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			name = name[i+1:]
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// filterPrefix keeps the names that start with prefix, without duplicates.
func filterPrefix(names []string, prefix string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
