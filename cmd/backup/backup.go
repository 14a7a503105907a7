// Package backupcmd implements `anklume backup create|restore` (SPEC.md
// §12.7).
package backupcmd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	"github.com/anklume/anklume/internal/backup"
	"github.com/anklume/anklume/internal/progress"
	"github.com/anklume/anklume/internal/snapshots"
	"github.com/anklume/anklume/internal/suggest"
)

// DefaultDir is the backup directory under the base directory.
const DefaultDir = "backups"

// Options are the inputs of backup create and restore.
type Options struct {
	*snapshotcmd.Env
	// Arg is MACHINE (create) or FILE (restore).
	Arg string

	Output         string
	Recipients     []string
	RecipientsFile string
	Force          bool

	Name     string
	Domain   string
	Identity string
}

// NewCmdBackup builds `backup` and its subcommands. runF replaces the run
// function in tests; nil runs the real one.
func NewCmdBackup(f *cmdutil.Factory, runF func(string, *Options) error) *cobra.Command {
	cmd := &cobra.Command{
		Use: "backup",
		Long: "Export an instance with its snapshots to a file, optionally encrypted with age,\n" +
			"and import such a file back as a new instance.",
		Example: "  anklume backup create web\n" +
			"  anklume backup create web --recipient age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq\n" +
			"  anklume backup restore backups/web-20260101-120000.tar.gz --name web-restored",
		Short: "Export an instance to a file (optionally age-encrypted) and import it back",
	}
	run := func(name string, o *Options) func(*cobra.Command, []string) error {
		return func(c *cobra.Command, args []string) error {
			o.Arg = args[0]
			if runF != nil {
				return runF(name, o)
			}
			return Run(c.Context(), name, o)
		}
	}
	oc := &Options{Env: snapshotcmd.NewEnv(f)}
	create := &cobra.Command{
		Use: "create MACHINE",
		Long: "Export MACHINE (its instance and snapshots) to <DIR>/<machine>-YYYYMMDD-HHMMSS.tar.gz,\n" +
			"mode 0600, or to a .tar.gz.age file encrypted to every --recipient.",
		Example: "  anklume backup create web\n" +
			"  anklume backup create web --output /srv/backups --recipients-file ~/.ssh/authorized_keys",
		Short: "Write <DIR>/<machine>-YYYYMMDD-HHMMSS.tar.gz[.age], mode 0600",
		Args:  cmdutil.ExactArgs("MACHINE"),
		RunE:  run("create", oc),
	}
	fl := create.Flags()
	fl.StringVar(&oc.Output, "output", "", "output directory (default: backups/ under the base directory)")
	fl.StringArrayVar(&oc.Recipients, "recipient", nil, "encrypt to this age (age1…) or SSH public key (repeatable)")
	fl.StringVar(&oc.RecipientsFile, "recipients-file", "", "encrypt to the recipients in this file, one per line")
	fl.BoolVar(&oc.Force, "force", false, "overwrite an existing backup file")

	or := &Options{Env: snapshotcmd.NewEnv(f)}
	restore := &cobra.Command{
		Use: "restore FILE",
		Long: "Import a backup file written by backup create as a new instance, in the\n" +
			"machine's domain (or --domain), under the machine's name (or --name).",
		Example: "  anklume backup restore backups/web-20260101-120000.tar.gz\n" +
			"  anklume backup restore web.tar.gz.age --identity ~/.config/age/key.txt --name web2",
		Short: "Import a backup as a new instance",
		Args:  cmdutil.ExactArgs("FILE"),
		RunE:  run("restore", or),
	}
	fl = restore.Flags()
	fl.StringVar(&or.Name, "name", "", "machine name of the restored instance (default: from the file name)")
	fl.StringVar(&or.Domain, "domain", "", "domain to restore into (default: the machine's domain in infra.yml)")
	fl.StringVar(&or.Identity, "identity", "", "age identity file or SSH private key, for a .age backup")
	cmd.AddCommand(create, restore)
	return cmd
}

// Run runs one subcommand.
func Run(ctx context.Context, sub string, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	switch sub {
	case "create":
		return create(ctx, opts)
	case "restore":
		return restore(ctx, opts)
	}
	return fmt.Errorf("unknown backup subcommand %q", sub)
}

// recipients parses every recipient before anything is exported.
func (opts *Options) recipients() ([]age.Recipient, error) {
	var out []age.Recipient
	for _, r := range opts.Recipients {
		rc, err := backup.ParseRecipient(r)
		if err != nil {
			return nil, err
		}
		out = append(out, rc)
	}
	if opts.RecipientsFile != "" {
		f, err := os.Open(opts.RecipientsFile)
		if err != nil {
			return nil, fmt.Errorf("reading recipients file: %w", err)
		}
		defer f.Close()
		rs, err := backup.ReadRecipients(f)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

func create(ctx context.Context, opts *Options) error {
	rcpts, err := opts.recipients()
	if err != nil {
		return err
	}
	m, in, err := opts.Model()
	if err != nil {
		return err
	}
	t, err := snapshots.Machine(m, opts.Arg)
	if err != nil {
		return err
	}
	dir := opts.Output
	if dir == "" {
		base, err := opts.BaseDir(in)
		if err != nil {
			return err
		}
		dir = filepath.Join(base, DefaultDir)
	}
	srv, err := opts.Ops(ctx)
	if err != nil {
		return err
	}
	pr, task := opts.task("backup " + t.Project + "/" + t.Instance)
	defer pr.Close()
	path, err := backup.Create(ctx, srv, backup.CreateOptions{
		Project: t.Project, Instance: t.Instance, Machine: t.Machine, Dir: dir,
		Recipients: rcpts, Force: opts.Force, Now: opts.Now(), Progress: task,
	})
	if err != nil {
		return err
	}
	pr.End("backup", "backup: "+path)
	return nil
}

// task starts the one task of a backup or restore, labelled label, on the
// progress display (live on a terminal: the phase, the MiB or percent
// moved and the elapsed time; nothing but the final line elsewhere) and
// returns the display and the task's Progress.
func (opts *Options) task(label string) (*progress.Display, backup.Progress) {
	pr := opts.Progress()
	pr.Start("backup", label)
	return pr, backup.Progress{
		Step:   func(s string) { pr.Step("backup", s) },
		Detail: func(s string) { pr.Detail("backup", s) },
	}
}

func restore(ctx context.Context, opts *Options) error {
	if backup.Encrypted(opts.Arg) && opts.Identity == "" {
		return &backup.EncryptedError{Path: opts.Arg}
	}
	var ids []age.Identity
	if opts.Identity != "" {
		var err error
		if ids, err = backup.ReadIdentities(opts.Identity); err != nil {
			return err
		}
	}
	m, _, err := opts.Model()
	if err != nil {
		return err
	}
	name := opts.Name
	if name == "" {
		if name = backup.MachineOf(opts.Arg); name == "" {
			return fmt.Errorf("cannot tell the machine name from %s; pass --name", opts.Arg)
		}
	}
	x := m.Machine(name)
	domain := opts.Domain
	if domain == "" {
		// The machine's domain, else the domain of the machine the file
		// was made from.
		from := x
		if from == nil {
			from = m.Machine(backup.MachineOf(opts.Arg))
		}
		if from == nil {
			return fmt.Errorf("%q is not a machine of infra.yml; pass --domain D", name)
		}
		domain = from.Domain.Name
	}
	d := m.Domain(domain)
	if d == nil || !d.Enabled {
		return fmt.Errorf("--domain: unknown domain %q%s", domain, suggest.Hint(domain, m.DomainNames()))
	}
	keep := x != nil && x.Domain == d
	inst := m.Prefix + name
	if keep {
		inst = x.Instance
	}
	srv, err := opts.Ops(ctx)
	if err != nil {
		return err
	}
	pr, task := opts.task("restore " + d.Project + "/" + inst)
	err = backup.Restore(ctx, srv, backup.RestoreOptions{
		Path: opts.Arg, Identities: ids, Project: d.Project, Instance: inst, KeepOwnership: keep, Progress: task,
	})
	pr.Close()
	if err != nil {
		return err
	}
	if !keep {
		fmt.Fprintf(opts.IO.ErrOut, "warning: instance %s/%s is not machine %q of domain %q in infra.yml: its ownership keys and static IP were removed, so apply will not delete it\n",
			d.Project, inst, name, d.Name)
	}
	opts.Printf("restored: %s/%s\n", d.Project, inst)
	return nil
}
