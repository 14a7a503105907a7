// Package roles implements `anklume roles [ROLE]`: the provisioning roles a
// machine may list in its roles: (the built-in ones and those of the base
// directory's roles_custom/ and roles_vendor/), with the machines of the
// PSOT that use each; with ROLE, that role's documentation (its
// README.md) and the machines that use it. It is the command that takes a
// role name, so the shell completes role names there (cmd/root).
//
// Choices: the infra roles (incus_*) and the shared task files (_shared)
// are left out, since a machine never lists them; outside a project (no
// PSOT found) the built-in roles are listed without machines; a PSOT that
// does not compile is an error, as for every command that reads it.
package roles

import (
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/suggest"
	builtin "github.com/anklume/anklume/roles"
)

// Sources of a role.
const (
	BuiltIn = "built-in"
)

// Role is one role a machine may list.
type Role struct {
	Name string
	// Source is BuiltIn, compiler.RolesCustomDir or compiler.RolesVendorDir.
	Source string
	// Machines are the machines of enabled domains that list the role.
	Machines []string
}

// Options are the inputs of roles.
type Options struct {
	IO      *cmdutil.IOStreams
	Globals *cmdutil.GlobalOptions
	Source  func() (fs.FS, compiler.Input, []string, error)
	Host    func(remote bool) (host.Options, error)
	Getwd   func() (string, error)
	// FS opens a directory (os.DirFS): the base directory's roles.
	FS   func(dir string) fs.FS
	Role string
}

// NewCmdRoles builds the roles command. runF replaces the run function in
// tests; nil runs the real one.
func NewCmdRoles(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Globals: f.Globals, Source: f.Source, Host: f.Host, Getwd: f.Getwd, FS: f.FS}
	cmd := &cobra.Command{
		Use:   "roles [ROLE]",
		Short: "List the provisioning roles, or show one",
		Long: "List the roles a machine may name in its roles: list, the built-in ones and those\n" +
			"of roles_custom/ and roles_vendor/ next to infra.yml, with the machines that use\n" +
			"each. With ROLE, print that role's documentation (what it installs and the\n" +
			"variables it takes) and the machines that use it.",
		Example: "  anklume roles\n" +
			"  anklume roles firewall_router",
		Args: cmdutil.MaxArgs("ROLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Role = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	return cmd
}

// Run is `anklume roles [ROLE]`.
func Run(opts *Options) error {
	m, base, err := Load(opts, true)
	if err != nil {
		return err
	}
	list := List(m, base)
	if opts.Role == "" {
		w := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "ROLE\tSOURCE\tMACHINES")
		for _, r := range list {
			machines := strings.Join(r.Machines, ", ")
			if machines == "" {
				machines = "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.Name, r.Source, machines)
		}
		return w.Flush()
	}
	i := slices.IndexFunc(list, func(r Role) bool { return r.Name == opts.Role })
	if i < 0 {
		return fmt.Errorf("unknown role %q%s (anklume roles lists them)", opts.Role, suggest.Hint(opts.Role, Names(list)))
	}
	r := list[i]
	fmt.Fprintf(opts.IO.Out, "role %s (%s)\n", r.Name, r.Source)
	if len(r.Machines) > 0 {
		fmt.Fprintf(opts.IO.Out, "machines: %s\n", strings.Join(r.Machines, ", "))
	} else {
		fmt.Fprintln(opts.IO.Out, "machines: none")
	}
	if doc := readme(r, base); doc != "" {
		fmt.Fprintf(opts.IO.Out, "\n%s", doc)
		if !strings.HasSuffix(doc, "\n") {
			fmt.Fprintln(opts.IO.Out)
		}
	}
	return nil
}

// Load compiles the selected PSOT and returns its model (nil when there
// is none) and the base directory as an fs.FS (nil likewise). report
// prints the diagnostics; without it (completion) a PSOT that does not
// compile gives a nil model and no error.
func Load(opts *Options, report bool) (*model.Infra, fs.FS, error) {
	if opts.Globals == nil || !opts.Globals.FileSet {
		// No PSOT in the current directory: the built-in roles only.
		if wd, err := opts.Getwd(); err == nil && opts.FS != nil {
			cur := opts.FS(wd)
			_, ferr := fs.Stat(cur, compiler.DefaultFile)
			_, derr := fs.Stat(cur, compiler.DefaultDir)
			if ferr != nil && derr != nil {
				return nil, nil, nil
			}
		}
	}
	fsys, in, _, err := opts.Source()
	if err != nil {
		return nil, nil, err
	}
	hopts, err := opts.Host(false)
	if err != nil {
		return nil, nil, err
	}
	res, dl, err := compiler.Compile(fsys, in, hopts)
	if report {
		cmdutil.PrintDiagnostics(opts.IO.ErrOut, opts.Globals, dl.Filter(diag.Error))
	}
	if err != nil {
		return nil, nil, err
	}
	if dl.HasErrors() || res == nil || res.Model == nil {
		if report {
			return nil, nil, cmdutil.ErrSilent
		}
		return nil, nil, nil
	}
	var base fs.FS
	if dir, err := cmdutil.AbsBaseDir(opts.Globals, opts.Getwd, in); err == nil && opts.FS != nil {
		base = opts.FS(dir)
	}
	return res.Model, base, nil
}

// List returns the roles a machine may list, sorted by name: the built-in
// provisioning roles, then those of roles_custom/ and roles_vendor/ in
// base (nil: none), a name found twice kept where Ansible finds it first
// (roles_custom, the built-in roles, roles_vendor: ansible.cfg's
// roles_path). Machines come from m (nil: none).
func List(m *model.Infra, base fs.FS) []Role {
	found := map[string]string{}
	add := func(name, source string) {
		if _, ok := found[name]; !ok {
			found[name] = source
		}
	}
	for _, n := range dirNames(base, compiler.RolesCustomDir) {
		add(n, compiler.RolesCustomDir)
	}
	for _, n := range builtin.Names() {
		if !strings.HasPrefix(n, "_") && !strings.HasPrefix(n, "incus_") {
			add(n, BuiltIn)
		}
	}
	for _, n := range dirNames(base, compiler.RolesVendorDir) {
		add(n, compiler.RolesVendorDir)
	}
	users := map[string][]string{}
	if m != nil {
		for _, d := range m.EnabledDomains() {
			for _, x := range d.Machines {
				for _, r := range x.Roles {
					if !slices.Contains(users[r], x.Name) {
						users[r] = append(users[r], x.Name)
					}
				}
			}
		}
	}
	var out []Role
	for name, src := range found {
		out = append(out, Role{Name: name, Source: src, Machines: users[name]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns the names of list.
func Names(list []Role) []string {
	out := make([]string, 0, len(list))
	for _, r := range list {
		out = append(out, r.Name)
	}
	return out
}

// dirNames lists the directories of dir in base (none when base is nil or
// dir is missing).
func dirNames(base fs.FS, dir string) []string {
	if base == nil {
		return nil
	}
	entries, err := fs.ReadDir(base, dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// readme returns the README.md of r, or "".
func readme(r Role, base fs.FS) string {
	if r.Source == BuiltIn {
		for _, f := range builtin.Files() {
			if f.Path == r.Name+"/README.md" {
				return string(f.Content)
			}
		}
		return ""
	}
	if base == nil {
		return ""
	}
	b, err := fs.ReadFile(base, r.Source+"/"+r.Name+"/README.md")
	if err != nil {
		return ""
	}
	return string(b)
}
