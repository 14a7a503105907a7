// Package flush implements `anklume flush [--force] [--yes]
// [--allow-production] [--files]` (SPEC.md §12.2), and the run shared with
// `anklume destroy --limit D…` (§12.3, cmd/destroy): compile the PSOT to
// learn the infrastructure, check the production guard, confirm, take the
// lock, remove the owned Incus objects in the order of §12.2, remove the
// nftables rules and, with --files, the generated files.
package flush

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/lifecycle"
	"github.com/anklume/anklume/internal/lock"
	nftsys "github.com/anklume/anklume/internal/nftables"
	"github.com/anklume/anklume/internal/suggest"
)

// Messages of SPEC.md §12.2 and §12.3 (printed after `error: `).
const (
	MsgProduction     = "refusing to flush a production host (absolute_level=0); pass --allow-production"
	PromptFlush       = `Type "yes" to destroy all anklume objects of %s: `
	MsgFlushNeedYes   = "flush needs --yes when not run from a terminal"
	PromptDestroy     = `Type "yes" to destroy the anklume objects of %s: `
	MsgDestroyNeedYes = "destroy needs --yes when not run from a terminal"
	MsgNoLimit        = "destroy needs --limit DOMAIN; use flush to remove everything"
	MsgCancelled      = "%s cancelled"
	MsgRemoteNFT      = "--remote: the nftables rules are on the Incus host, not on this machine; they were not removed"
)

// Options are the inputs of flush and destroy.
type Options struct {
	IO      *cmdutil.IOStreams
	Globals *cmdutil.GlobalOptions
	Source  func() (fs.FS, compiler.Input, []string, error)
	Host    func(remote bool) (host.Options, error)
	Remote  func() string
	Getwd   func() (string, error)
	// Incus connects to the server (the Fake in tests).
	Incus func(ctx context.Context, remote string) (incusx.Server, error)
	// RemoveNFT runs step 8 (nftables.DefaultSystem().Remove).
	RemoveNFT func(ctx context.Context, o nftsys.RemoveOptions)
	// Lock tweaks the lock options (tests).
	Lock func(*lock.Options)

	// Destroy selects `destroy`: Limit is required, steps 2, 8 and 9 do
	// not run, and there is no production guard.
	Destroy bool
	Limit   []string

	Force           bool
	Yes             bool
	AllowProduction bool
	Files           bool
}

// NewCmdFlush builds the flush command. runF replaces the run function in
// tests; nil runs the real one.
func NewCmdFlush(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := NewOptions(f)
	cmd := &cobra.Command{
		Use: "flush",
		Example: "  anklume flush\n" +
			"  anklume flush --yes --files",
		Short: "Destroy every Incus object of this infrastructure",
		Long: "Delete the instances, images, profiles, storage volumes, projects and bridges that\n" +
			"anklume owns for this infrastructure, in that order, then remove the nftables rules.\n" +
			"Protected instances, protected volumes and adopted objects are kept unless --force.\n" +
			"On a production host (absolute_level 0) --allow-production is required.",
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Force, "force", false, "also delete protected instances, protected volumes and adopted objects")
	fl.BoolVar(&opts.Yes, "yes", false, "do not ask for confirmation")
	fl.BoolVar(&opts.AllowProduction, "allow-production", false, "allow flushing a production host (absolute_level 0)")
	fl.BoolVar(&opts.Files, "files", false, "also delete inventory/, group_vars/, host_vars/ and nftables/anklume-isolation.nft")
	return cmd
}

// NewOptions returns Options wired to the factory.
func NewOptions(f *cmdutil.Factory) *Options {
	return &Options{IO: f.IO, Globals: f.Globals, Source: f.Source, Host: f.Host, Remote: f.Remote,
		Getwd: f.Getwd, Incus: f.Incus}
}

// fail prints `error: msg` and returns ErrSilent.
func (opts *Options) fail(msg string) error {
	fmt.Fprintf(opts.IO.ErrOut, "error: %s\n", msg)
	return cmdutil.ErrSilent
}

func (opts *Options) name() string {
	if opts.Destroy {
		return "destroy"
	}
	return "flush"
}

// Run is `anklume flush` (or `anklume destroy` with Destroy set).
func Run(ctx context.Context, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if opts.Destroy && len(opts.Limit) == 0 {
		return opts.fail(MsgNoLimit)
	}
	m, hopts, base, err := opts.compile()
	if err != nil {
		return err
	}
	for _, l := range opts.Limit {
		if m.Domain(l) == nil {
			return opts.fail(fmt.Sprintf("--limit: unknown domain %q%s", l, suggest.Hint(l, m.DomainNames())))
		}
	}
	if !opts.Destroy && hopts.Context.Level == 0 && !hopts.Context.Yolo && !opts.AllowProduction {
		return opts.fail(MsgProduction)
	}
	if err := opts.confirm(m); err != nil {
		return err
	}

	remote := opts.Remote()
	srv, err := opts.Incus(ctx, remote)
	if err != nil {
		return err
	}
	lopts := lock.Options{Server: srv, Command: opts.name(), Warn: opts.IO.ErrOut}
	if opts.Lock != nil {
		opts.Lock(&lopts)
	}
	lk, err := lock.Acquire(ctx, lopts)
	if err != nil {
		return err
	}
	res, err := lifecycle.Flush(ctx, lifecycle.FlushOptions{Server: srv, Infra: m.ProjectName, Domains: opts.Limit,
		Force: opts.Force, Out: opts.IO.Out, ErrOut: opts.IO.ErrOut})
	if err == nil && !opts.Destroy {
		opts.hostSteps(ctx, m, remote, base, res)
	}
	if rerr := lk.Release(context.WithoutCancel(ctx)); rerr != nil {
		fmt.Fprintf(opts.IO.ErrOut, "warning: releasing the lock: %s\n", rerr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(opts.IO.Out, res.Summary(opts.name()))
	if res.Failed > 0 {
		return cmdutil.ErrSilent
	}
	return nil
}

// hostSteps runs steps 8 (nftables) and 9 (--files).
func (opts *Options) hostSteps(ctx context.Context, m *model.Infra, remote, base string, res *lifecycle.Result) {
	if remote != "" {
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s\n", MsgRemoteNFT)
	} else {
		remove := opts.RemoveNFT
		if remove == nil {
			remove = nftsys.DefaultSystem().Remove
		}
		remove(ctx, nftsys.RemoveOptions{Infra: m.ProjectName, Out: opts.IO.Out, ErrOut: opts.IO.ErrOut})
	}
	if !opts.Files {
		return
	}
	for _, err := range lifecycle.RemoveFiles(base, opts.IO.Out) {
		res.Failed++
		res.Errors = append(res.Errors, err)
		fmt.Fprintf(opts.IO.ErrOut, "error: %s\n", err)
	}
}

// confirm asks the question of §12.2 or §12.3 unless --yes.
func (opts *Options) confirm(m *model.Infra) error {
	if opts.Yes {
		return nil
	}
	prompt, needYes := fmt.Sprintf(PromptFlush, m.ProjectName), MsgFlushNeedYes
	if opts.Destroy {
		prompt, needYes = fmt.Sprintf(PromptDestroy, strings.Join(opts.Limit, ", ")), MsgDestroyNeedYes
	}
	if !opts.IO.OutTTY {
		return opts.fail(needYes)
	}
	fmt.Fprint(opts.IO.Out, prompt)
	line, _ := bufio.NewReader(opts.IO.In).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return opts.fail(fmt.Sprintf(MsgCancelled, opts.name()))
	}
	return nil
}

// compile reads and resolves the PSOT, printing its diagnostics, and
// returns the model, the host options and the absolute base directory.
func (opts *Options) compile() (*model.Infra, host.Options, string, error) {
	l, err := cmdutil.Load(context.Background(), cmdutil.LoadOptions{Source: opts.Source, Host: opts.Host,
		Remote: opts.Remote(), ErrOut: opts.IO.ErrOut, Globals: opts.Globals})
	if err != nil {
		return nil, l.Host, "", err
	}
	in, hopts, res := l.Input, l.Host, l.Result
	override := ""
	if opts.Globals != nil {
		override = filepath.ToSlash(opts.Globals.BaseDir)
	}
	base := filepath.FromSlash(compiler.BaseDir(in, override))
	if !filepath.IsAbs(base) && opts.Getwd != nil {
		wd, err := opts.Getwd()
		if err != nil {
			return nil, hopts, "", fmt.Errorf("reading the current directory: %w", err)
		}
		base = filepath.Join(wd, base)
	}
	return res.Model, hopts, base, nil
}
