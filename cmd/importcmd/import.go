// Package importcmd implements `anklume import [-o FILE] [--force]
// [--infra NAME] [--project P]… [--only-anklume] [--remote R]` (SPEC.md
// §11): it reads Incus with GET requests only and writes the PSOT that
// describes what it found.
package importcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/initcmd"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/internal/importer"
	"github.com/anklume/anklume/internal/incusx"
)

// Options are the inputs of import.
type Options struct {
	IO      *cmdutil.IOStreams
	Globals *cmdutil.GlobalOptions
	// Host gathers the host context (§2.14): the nesting level gives the
	// prefix that owned names are expected to carry.
	Host   func(remote bool) (host.Options, error)
	Remote func() string
	Getwd  func() (string, error)
	// Incus connects to the server (the Fake in tests).
	Incus func(ctx context.Context, remote string) (incusx.Server, error)
	// Stat and WriteFile touch the output file (os.Stat, os.WriteFile).
	Stat      func(name string) (fs.FileInfo, error)
	WriteFile func(name string, data []byte, perm fs.FileMode) error
	// Schema returns the embedded JSON Schema, written next to the output
	// file where the file's modeline points.
	Schema func() []byte

	Output      string
	Force       bool
	Infra       string
	Projects    []string
	OnlyAnklume bool
}

// NewCmdImport builds the import command. runF replaces the run function
// in tests; nil runs the real one.
func NewCmdImport(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{
		IO: f.IO, Globals: f.Globals, Host: f.Host, Remote: f.Remote, Getwd: f.Getwd, Incus: f.Incus,
		Stat: os.Stat, WriteFile: os.WriteFile, Schema: f.Schema,
	}
	cmd := &cobra.Command{
		Use: "import",
		Example: "  anklume import\n" +
			"  anklume import -o - --only-anklume\n" +
			"  anklume import --project default -o infra.yml --force",
		Short: "Write the infra.yml that describes what Incus holds",
		Long: "Read the Incus server (GET requests only: nothing is changed) and write a PSOT:\n" +
			"the anklume-owned projects, bridges, profiles, volumes and instances become domains\n" +
			"and machines, network policies come back from the projects, and projects anklume\n" +
			"does not own become semi-trusted domains on a best-effort basis.",
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Output, "output", "o", importer.DefaultOutput, `file to write, or "-" for stdout`)
	fl.BoolVar(&opts.Force, "force", false, "overwrite an existing output file")
	fl.StringVar(&opts.Infra, "infra", "", "the infrastructure (project_name) to import when Incus holds several")
	fl.StringArrayVar(&opts.Projects, "project", nil, "import only this Incus project, owned or not (repeatable)")
	fl.BoolVar(&opts.OnlyAnklume, "only-anklume", false, "skip the projects anklume does not own")
	return cmd
}

// Run reads Incus, imports and writes the file.
func Run(opts *Options) error {
	path := ""
	if opts.Output != "-" {
		if opts.Output == "" {
			return cmdutil.FlagErrorf("-o needs a file name, or - for stdout")
		}
		path = opts.Output
		if !filepath.IsAbs(path) {
			wd, err := opts.Getwd()
			if err != nil {
				return fmt.Errorf("reading the current directory: %w", err)
			}
			path = filepath.Join(wd, path)
		}
		if _, err := opts.Stat(path); err == nil && !opts.Force {
			return fmt.Errorf("%s exists; use --force or -o", opts.Output)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("checking %s: %w", opts.Output, err)
		}
	}
	remote := opts.Remote()
	hopts, err := opts.Host(remote != "")
	if err != nil {
		return err
	}
	iopts := importer.Options{Infra: opts.Infra, Projects: opts.Projects, OnlyAnklume: opts.OnlyAnklume}
	if lvl := hopts.Context.Level; lvl > 0 {
		iopts.Prefix = fmt.Sprintf("%03d-", lvl)
	}

	ctx := context.Background()
	srv, err := opts.Incus(ctx, remote)
	if err != nil {
		return err
	}
	st, err := importer.Read(ctx, srv)
	if err != nil {
		return err
	}
	res, err := importer.Import(st, iopts)
	if err != nil {
		return err
	}
	quiet := opts.Globals != nil && opts.Globals.Quiet
	if !quiet {
		for _, w := range res.Warnings {
			fmt.Fprintf(opts.IO.ErrOut, "warning: %s\n", w)
		}
	}
	data := res.YAML()
	if path == "" {
		_, err := opts.IO.Out.Write(data)
		return err
	}
	// The file's first line is the modeline "$schema=.anklume/infra.schema.json":
	// the schema goes there, next to the file, as init does. A schema file
	// anklume did not write is kept unless --force (then saved as .bak);
	// that check happens before anything is written.
	var schemaPlan *tree.Plan
	if opts.Schema != nil {
		schemaPlan, err = tree.NewPlan(filepath.Dir(path), []tree.File{{Path: initcmd.SchemaPath, Content: opts.Schema(), Class: tree.Framework}}, opts.Force)
		if err != nil {
			return err
		}
	}
	if err := opts.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", opts.Output, err)
	}
	if schemaPlan != nil {
		if err := schemaPlan.Apply(io.Discard, tree.Options{}); err != nil {
			return err
		}
	}
	if !quiet {
		fmt.Fprintln(opts.IO.ErrOut, res.Summary(opts.Output))
	}
	return nil
}
