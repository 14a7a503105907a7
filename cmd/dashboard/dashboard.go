// Package dashboardcmd implements `anklume dashboard [--listen ADDR]
// [--allow-remote]`: the read-only web page of internal/dashboard, on
// 127.0.0.1:8888 by default. The PSOT is read once at start; restart the
// dashboard after editing it.
package dashboardcmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	plancmd "github.com/anklume/anklume/cmd/plan"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	"github.com/anklume/anklume/compiler/emit/nft"
	"github.com/anklume/anklume/internal/aiaccess"
	"github.com/anklume/anklume/internal/dashboard"
	"github.com/anklume/anklume/internal/lifecycle"
	nftsys "github.com/anklume/anklume/internal/nftables"
	"github.com/anklume/anklume/internal/verify"
)

// Options are the inputs of dashboard.
type Options struct {
	*snapshotcmd.Env
	Listen      string
	AllowRemote bool
	// NFTStatus compares the live table with the rendered ruleset
	// (nftables.DefaultSystem().Status); nil skips the check.
	NFTStatus func(ctx context.Context, ruleset []byte) (nftsys.State, []byte, error)
	// Ready, when set, gets the address the server listens on.
	Ready func(addr string)
}

// NewCmdDashboard builds the dashboard command. runF replaces the run
// function in tests; nil runs the real one.
func NewCmdDashboard(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Env: snapshotcmd.NewEnv(f), NFTStatus: nftsys.DefaultSystem().Status}
	cmd := &cobra.Command{
		Use:   "dashboard [--listen ADDR] [--allow-remote]",
		Short: "Serve a read-only web page of the domains, machines and policies",
		Long: "Serve a web page that shows every domain as a card in its trust colour, with its\n" +
			"machines (type, state, IP, CPU time, memory), the network policies as a\n" +
			"graph, and the reachability matrix: for every domain, what it can open towards\n" +
			"every domain, the host and the outside, each cell marked proven (the last\n" +
			"anklume verify on this host probed it and agreed), disagreeing (a live probe\n" +
			"contradicted infra.yml) or computed only. It updates itself every 5 seconds. The page is read-only and works\n" +
			"offline (nothing is loaded from elsewhere). JSON is served too: /api/status\n" +
			"(as status --json, with each running machine's usage), /api/policies and\n" +
			"/api/reach (the expected reachability matrix, as verify --expected --json).\n" +
			"It listens on 127.0.0.1:8888 by default; an address other than loopback is\n" +
			"refused unless you add --allow-remote, since the page shows your whole setup.",
		Example: "  anklume dashboard\n" +
			"  anklume dashboard --listen 127.0.0.1:9000\n" +
			"  curl -s http://127.0.0.1:8888/api/policies",
		Args:              cmdutil.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(c.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Listen, "listen", dashboard.DefaultListen, "address to listen on, host:port")
	fl.BoolVar(&opts.AllowRemote, "allow-remote", false, "allow a listen address other than loopback")
	return cmd
}

// Run is `anklume dashboard`: it serves until ctx is cancelled.
func Run(ctx context.Context, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	loopback, err := dashboard.CheckListen(opts.Listen, opts.AllowRemote)
	if err != nil {
		return cmdutil.FlagErrorf("%s", err)
	}
	m, _, err := opts.Model()
	if err != nil {
		return err
	}
	srv, err := opts.Connect(ctx)
	if err != nil {
		return err
	}
	remote := opts.Remote() != ""
	// The record of the last verify is a fact about this host: with
	// --remote the matrix shows computed cells only.
	var lastVerify func() (verify.Document, bool, error)
	if !remote {
		lastVerify = func() (verify.Document, bool, error) {
			return verify.LoadDocument(os.Getenv("ANKLUME_STATE_DIR"), m.ProjectName)
		}
	}
	h := &dashboard.Server{
		LastVerify: lastVerify,
		Model:      m,
		CheckHost:  loopback,
		Status: func(ctx context.Context) (*lifecycle.Report, error) {
			r, _, err := lifecycle.Status(ctx, srv, m, lifecycle.StatusOptions{
				Observe: plancmd.ObserveOptions(m), Remote: remote, Usage: true,
			})
			if err != nil {
				return nil, err
			}
			if !remote && opts.NFTStatus != nil {
				mm, _ := aiaccess.Overlay(m, r.AIAccessHolder)
				if st, _, err := opts.NFTStatus(ctx, nft.Render(mm)); err == nil {
					v := strings.TrimPrefix(st.String(), "nftables: ")
					r.NFTables = &v
				}
			}
			return r, nil
		},
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", opts.Listen, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	addr := ln.Addr().String()
	if !opts.Quiet() {
		fmt.Fprintf(opts.IO.Out, "dashboard: serving %s on http://%s/ (Ctrl-C to stop)\n", m.ProjectName, addr)
	}
	if opts.Ready != nil {
		opts.Ready(addr)
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serving the dashboard: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
