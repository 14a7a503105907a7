// Package status implements `anklume status [--json]` (SPEC.md §12.1):
// each domain with its trust level, whether its project and network
// exist, and each machine's type, state, IP and drift marker, then the
// state of the nftables table. The exit status is 0.
package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	plancmd "github.com/anklume/anklume/cmd/plan"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/nft"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/aiaccess"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/lifecycle"
	"github.com/anklume/anklume/internal/metacache"
	nftsys "github.com/anklume/anklume/internal/nftables"
	"github.com/anklume/anklume/internal/verify"
)

// NFTRemote is the nftables line with --remote (§12.1).
const NFTRemote = "nftables: not checked (remote)"

// Options are the inputs of status.
type Options struct {
	// MetadataCache keeps the server's configuration metadata on disk
	// ($XDG_CACHE_HOME/anklume); the zero value fetches it every run.
	MetadataCache metacache.Cache
	IO            *cmdutil.IOStreams
	Globals       *cmdutil.GlobalOptions
	Source        func() (fs.FS, compiler.Input, []string, error)
	Host          func(remote bool) (host.Options, error)
	Remote        func() string
	// Incus connects to the server (the Fake in tests).
	Incus func(ctx context.Context, remote string) (incusx.Server, error)
	// NFTStatus compares the live table with the rendered ruleset
	// (nftables.DefaultSystem().Status).
	NFTStatus func(ctx context.Context, ruleset []byte) (nftsys.State, []byte, error)

	// LastVerify returns the line about the last verify of an
	// infrastructure on this host and its record, nil when there is none
	// (verifyLine); a nil LastVerify prints no line.
	LastVerify func(infra string) (string, *verify.Record)

	JSON bool
}

// NewCmdStatus builds the status command. runF replaces the run function
// in tests; nil runs the real one.
func NewCmdStatus(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Globals: f.Globals, Source: f.Source, Host: f.Host, Remote: f.Remote, Incus: f.Incus,
		MetadataCache: metacache.Default(f.Getenv), LastVerify: verifyLine}
	cmd := &cobra.Command{
		Use: "status",
		Example: "  anklume status\n" +
			"  anklume status --json",
		Short: "Show the declared and actual state of every domain and machine",
		Long: "For each domain: its trust level and whether its project and network exist; for\n" +
			"each machine: type, state (Running, Stopped or Absent), IP and a * when the plan\n" +
			"has changes for it. Then the time and result of the last anklume verify on this\n" +
			"host, and last the state of the nftables table.",
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document")
	return cmd
}

// Run is `anklume status`.
//
// Requests to Incus: the reads of SPEC.md §9.1 plus one
// GET /1.0/instances?all-projects=true&recursion=2 for the live states
// and addresses; never one request per instance or per project.
func Run(ctx context.Context, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	remote := opts.Remote()
	l, err := cmdutil.Load(ctx, cmdutil.LoadOptions{Source: opts.Source, Host: opts.Host, Remote: remote,
		ErrOut: opts.IO.ErrOut, Globals: opts.Globals})
	if err != nil {
		return err
	}
	m := l.Model
	srv, err := opts.Incus(ctx, remote)
	if err != nil {
		return err
	}
	oo := plancmd.ObserveOptions(m)
	oo.MetadataCache = opts.MetadataCache
	r, pw, err := lifecycle.Status(ctx, srv, m, lifecycle.StatusOptions{Observe: oo, Remote: remote != ""})
	if err != nil {
		return err
	}
	quiet := opts.Globals != nil && opts.Globals.Quiet
	for _, w := range pw {
		if quiet {
			break
		}
		fmt.Fprintf(opts.IO.ErrOut, "warning: %s\n", w.Msg)
		if w.Hint != "" {
			fmt.Fprintf(opts.IO.ErrOut, "  hint: %s\n", w.Hint)
		}
	}

	line := NFTRemote
	if remote == "" {
		mm, _ := aiaccess.Overlay(m, r.AIAccessHolder) // Status checked the holder
		line = opts.nftLine(ctx, nft.Render(mm), r)
	}
	vline, vrec := "", (*verify.Record)(nil)
	if remote == "" && opts.LastVerify != nil {
		vline, vrec = opts.LastVerify(m.ProjectName)
	}
	if opts.JSON {
		// "verify" (the last verify on this host) is added only when
		// there is one.
		b, err := json.Marshal(struct {
			*lifecycle.Report
			Verify *verify.Record `json:"verify,omitempty"`
		}{r, vrec})
		if err != nil {
			return fmt.Errorf("encoding the status: %w", err)
		}
		if _, err := fmt.Fprintf(opts.IO.Out, "%s\n", b); err != nil {
			return fmt.Errorf("printing the status: %w", err)
		}
		return nil
	}
	// The nftables line stays the last one; the verify line comes
	// just before it.
	if vline != "" {
		line = vline + "\n" + line
	}
	return lifecycle.RenderStatus(opts.IO.Out, r, line)
}

// verifyLine returns the line about the last `anklume verify` on this
// host, read from the record verify keeps in the state directory
// ($ANKLUME_STATE_DIR, default /var/lib/anklume).
func verifyLine(infra string) (string, *verify.Record) {
	rec, ok, err := verify.Load(os.Getenv("ANKLUME_STATE_DIR"), infra)
	switch {
	case err != nil:
		return "verify: unknown (" + err.Error() + ")", nil
	case !ok:
		return "verify: never run on this host", nil
	case rec.OK:
		return fmt.Sprintf("verify: ok (%d probes) at %s", rec.Probes, rec.Time.Format(time.RFC3339)), &rec
	}
	return fmt.Sprintf("verify: %d mismatches (%d probes) at %s", rec.Mismatches, rec.Probes, rec.Time.Format(time.RFC3339)), &rec
}

// nftLine checks the isolation table (§7.8) and returns the last line,
// setting r.NFTables. A check that cannot run (not root, no nft) gives
// `nftables: not checked (<reason>)`, null in JSON, and a warning.
func (opts *Options) nftLine(ctx context.Context, ruleset []byte, r *lifecycle.Report) string {
	check := opts.NFTStatus
	if check == nil {
		check = nftsys.DefaultSystem().Status
	}
	st, _, err := check(ctx, ruleset)
	if err != nil {
		fmt.Fprintf(opts.IO.ErrOut, "warning: checking the nftables table: %s\n", err)
		return "nftables: not checked (" + strings.SplitN(err.Error(), "\n", 2)[0] + ")"
	}
	line := st.String()
	v := strings.TrimPrefix(line, "nftables: ")
	r.NFTables = &v
	return line
}
