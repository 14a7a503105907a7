// Package dispcmd implements `anklume disp [--domain D] [--image REF]
// [--vm] [-- CMD ARGS...]` (SPEC.md §12.5): a command run in a fresh
// ephemeral instance of a disposable domain, whose exit status becomes
// anklume's.
package dispcmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	"github.com/anklume/anklume/internal/disp"
	"github.com/anklume/anklume/internal/incusx"
)

// Options are the inputs of disp.
type Options struct {
	*snapshotcmd.Env
	Domain string
	Image  string
	VM     bool
	// Argv is everything after `--`; empty attaches a shell.
	Argv []string
}

// NewCmdDisp builds the disp command. runF replaces the run function in
// tests; nil runs the real one.
func NewCmdDisp(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Env: snapshotcmd.NewEnv(f)}
	cmd := &cobra.Command{
		Use: "disp [--domain D] [--image REF] [--vm] [-- CMD ARGS...]",
		Example: "  anklume disp\n" +
			"  anklume disp -- uname -a\n" +
			"  anklume disp --vm --domain sandbox -- cat /etc/os-release",
		Short: "Run a command in a throwaway instance of a disposable domain",
		Long: "Create an ephemeral instance <prefix>disp-YYYYMMDD-HHMMSS in the first domain with\n" +
			"trust_level: disposable (or --domain), run CMD ARGS in it as an argument vector\n" +
			"(never through a shell), stop it (Incus deletes it) and exit with CMD's status.\n" +
			"Without -- CMD, an interactive shell is attached.",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 && c.ArgsLenAtDash() != 0 {
				return cmdutil.FlagErrorf("put the command after --: anklume disp -- CMD ARGS...")
			}
			opts.Argv = args
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(c.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Domain, "domain", "", "domain to run in (default: the first disposable domain)")
	fl.StringVar(&opts.Image, "image", "", "image reference (default: default_os_image)")
	fl.BoolVar(&opts.VM, "vm", false, "make a virtual machine instead of a container")
	return cmd
}

// Run is `anklume disp`.
func Run(ctx context.Context, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m, _, err := opts.Model()
	if err != nil {
		return err
	}
	d, err := disp.Domain(m, opts.Domain)
	if err != nil {
		return err
	}
	image := opts.Image
	if image == "" {
		image = m.Global.DefaultOSImage
		for _, mp := range m.ImageMappings {
			if mp.From == image {
				image = mp.To
			}
		}
	}
	srv, err := opts.Ops(ctx)
	if err != nil {
		return err
	}
	req := disp.Request{
		Infra: m.ProjectName, Domain: d, Name: disp.Name(m.Prefix, opts.Now()), Image: image, VM: opts.VM,
		Argv: opts.Argv,
		IO:   incusx.ExecIO{Stdin: opts.IO.In, Stdout: opts.IO.Out, Stderr: opts.IO.ErrOut},
	}
	code, err := disp.Run(ctx, srv, req)
	if err != nil {
		return err
	}
	if code != 0 {
		return &cmdutil.ExitError{Code: cmdutil.ExitCode(code)}
	}
	return nil
}
