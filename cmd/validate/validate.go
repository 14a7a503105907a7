// Package validate implements `anklume validate [--json]` (SPEC.md §3.2).
package validate

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/plural"
)

// Options are the inputs of validate.
type Options struct {
	IO      *cmdutil.IOStreams
	Globals *cmdutil.GlobalOptions
	// Source picks the PSOT (§2.1).
	Source func() (fs.FS, compiler.Input, []string, error)
	// Host gathers the host context (§2.14).
	Host   func(remote bool) (host.Options, error)
	Remote func() string
	// Incus connects to the server: with --remote, a resource_policy
	// reads its resources (cmdutil.CompileForRemote).
	Incus func(ctx context.Context, remote string) (incusx.Server, error)

	JSON bool
}

// NewCmdValidate builds the validate command. runF replaces the run
// function in tests; nil runs the real one.
func NewCmdValidate(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{
		IO:      f.IO,
		Globals: f.Globals,
		Source:  f.Source,
		Host:    f.Host,
		Remote:  f.Remote,
		Incus:   f.Incus,
	}
	cmd := &cobra.Command{
		Use: "validate",
		Example: "  anklume validate\n" +
			"  anklume validate -f infra/\n" +
			"  anklume validate --json",
		Short: "Check the PSOT and print every diagnostic",
		Long: "Load, validate and resolve infra.yml (or infra/), print every warning and error\n" +
			"sorted by position, and exit 1 when there is an error.",
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the diagnostics as one JSON document on stdout")
	return cmd
}

// Run validates the PSOT.
func Run(opts *Options) error {
	fsys, in, warnings, err := opts.Source()
	if err != nil {
		return opts.fatal(nil, err)
	}
	var dl diag.List
	for _, w := range warnings {
		dl.Add(diag.Diagnostic{Severity: diag.Warning, Msg: w})
	}
	remote := opts.Remote()
	hopts, err := opts.Host(remote != "")
	if err != nil {
		return opts.fatal(dl, err)
	}
	res, cl, err := cmdutil.CompileForRemote(context.Background(), fsys, in, hopts, remote, opts.Incus)
	dl.Add(cl...)
	if err != nil {
		return opts.fatal(dl, err)
	}
	if opts.JSON {
		if _, werr := opts.IO.Out.Write(dl.MarshalReport()); werr != nil {
			return fmt.Errorf("writing the report: %w", werr)
		}
		if dl.HasErrors() || res == nil {
			return cmdutil.ErrSilent
		}
		return nil
	}
	opts.printDiagnostics(dl)
	if dl.HasErrors() || res == nil {
		return cmdutil.ErrSilent
	}
	if opts.Globals != nil && opts.Globals.Verbose {
		for _, file := range res.Files {
			fmt.Fprintf(opts.IO.ErrOut, "info: read %s\n", file)
		}
	}
	if opts.Globals != nil && opts.Globals.Quiet {
		return nil
	}
	var d, m, p int
	if res.Model != nil {
		d, m, p = res.Model.Summary()
	}
	fmt.Fprintf(opts.IO.Out, "ok: %s is valid (%s, %s, %s)\n", in.Display,
		plural.N(d, "domain"), plural.N(m, "machine"), plural.N(p, "policy", "policies"))
	return nil
}

// printDiagnostics prints dl on stderr; with --quiet only the errors.
func (opts *Options) printDiagnostics(dl diag.List) {
	cmdutil.PrintDiagnostics(opts.IO.ErrOut, opts.Globals, dl)
}

// fatal reports a non-positional fatal error. The diagnostics gathered so
// far are printed first; with --json stdout still holds one document.
func (opts *Options) fatal(dl diag.List, err error) error {
	if opts.JSON {
		dl = append(dl, diag.Diagnostic{Severity: diag.Error, Msg: err.Error()})
		if _, werr := opts.IO.Out.Write(dl.MarshalReport()); werr != nil {
			return fmt.Errorf("writing the report: %w", werr)
		}
		return err
	}
	// The fatal error itself is printed by Main as "error: MSG".
	opts.printDiagnostics(dl)
	return err
}
