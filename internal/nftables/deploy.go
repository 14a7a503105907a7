package nftables

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/anklume/anklume/compiler/emit/nft"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
)

// DeployOptions are the inputs of Deploy.
type DeployOptions struct {
	// Model is the resolved model to render.
	Model *model.Infra
	// Base is the base directory holding nftables/anklume-isolation.nft.
	Base string
	// Remote is the --remote value; deploy refuses when it is set.
	Remote        string
	DryRun        bool
	NoPersist     bool
	SkipPreflight bool
	// Out receives the requested output (the file with DryRun, the
	// progress lines); ErrOut the warnings.
	Out    io.Writer
	ErrOut io.Writer
}

// Unit returns the systemd unit of §7.7 step 7 for the nft binary at
// nftPath and the persisted file at persisted.
func Unit(nftPath, persisted string) []byte {
	return []byte(`# written by anklume nftables deploy; removed by anklume flush
[Unit]
Description=anklume isolation rules (table inet anklume)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target incus.service incus-startup.service shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + nftPath + ` -f ` + persisted + `

[Install]
WantedBy=sysinit.target
`)
}

// Deploy runs the steps of §7.7 in order; any failure stops it before the
// host changes. The managed block is refreshed in memory (step 1) and the
// resulting bytes are guarded (2), preflighted (3), checked for ownership
// (4) and checked by `nft -c -f` (5) before anything is written. Then the
// refreshed file is written under Base as sync would, the same bytes are
// loaded with `nft -f` (6) and persisted (7). nft reads a private copy of
// the checked bytes, so a base directory writable by someone else cannot
// swap the file between the guard and the load. With DryRun, steps 1–5 run
// and the file is printed; nothing is written or loaded.
func (s System) Deploy(ctx context.Context, opts DeployOptions) error {
	out, errOut := opts.Out, opts.ErrOut
	if out == nil {
		out = io.Discard
	}
	// Step 1: the refreshed file, in memory.
	plan, err := tree.NewPlan(opts.Base, []tree.File{nft.File(opts.Model)}, false)
	if err != nil {
		var te *tree.Error
		if errors.As(err, &te) {
			return &Error{Msg: te.Msg, Hint: te.Hint}
		}
		return err
	}
	text := plan.Changes[0].New

	// Step 2: the content guard.
	if err := Guard(nft.Path, text); err != nil {
		return err
	}

	// Step 3: preflight. --remote is refused even with --skip-preflight,
	// and the nft binary is always needed.
	if opts.Remote != "" {
		return &Error{Msg: MsgRemote}
	}
	if !opts.SkipPreflight && !s.Privileged() {
		return &Error{Msg: MsgNotRoot, Hint: HintNotRoot}
	}
	nftBin, err := s.nftPath()
	if err != nil {
		return err
	}
	if !opts.SkipPreflight && !s.bridgeNFOn() {
		warn(errOut, MsgBridgeNF, HintBridgeNF)
	}

	// Step 4: ownership.
	listing, loaded, err := s.loadedTable(ctx, nftBin)
	if err != nil {
		return err
	}
	if loaded {
		want := nft.TableComment(opts.Model.ProjectName)
		if c, ok := tableComment(listing); ok && strings.HasPrefix(c, nft.CommentPrefix) && c != want {
			return &Error{
				Msg:  fmt.Sprintf("table inet anklume on this host belongs to infrastructure %q; refusing to replace it", strings.TrimPrefix(c, nft.CommentPrefix)),
				Hint: HintOwner,
			}
		}
	}

	// Step 5: check.
	copyPath, cleanup, err := s.privateCopy(text)
	if err != nil {
		return err
	}
	defer cleanup()
	if _, stderr, err := s.Run(ctx, nftBin, "-c", "-f", copyPath); err != nil {
		msg := strings.ReplaceAll(nftOutput(err, stderr), copyPath, nft.Path)
		return fmt.Errorf("nft -c -f %s failed:\n%s", nft.Path, msg)
	}
	if opts.DryRun {
		if _, err := out.Write(text); err != nil {
			return fmt.Errorf("printing %s: %w", nft.Path, err)
		}
		return nil
	}

	// Step 1's write, now that the bytes passed every check.
	if err := plan.Apply(io.Discard, tree.Options{}); err != nil {
		return err
	}
	if c := plan.Changes[0]; c.Action != tree.Unchanged {
		verb := "created"
		if c.Action == tree.Update {
			verb = "updated"
		}
		fmt.Fprintf(out, "%s: %s\n", verb, nft.Path)
	}

	// Step 6: apply.
	if _, stderr, err := s.Run(ctx, nftBin, "-f", copyPath); err != nil {
		msg := strings.ReplaceAll(nftOutput(err, stderr), copyPath, nft.Path)
		return fmt.Errorf("nft -f %s failed:\n%s", nft.Path, msg)
	}
	fmt.Fprintf(out, "loaded: table inet anklume (%s)\n", nft.TableComment(opts.Model.ProjectName))

	// Step 7: persist.
	if opts.NoPersist {
		return nil
	}
	return s.persist(ctx, nftBin, text, out, errOut)
}

// persist copies the file to the persist directory and, under systemd,
// installs and enables the boot unit (§7.7 step 7).
func (s System) persist(ctx context.Context, nftBin string, text []byte, out, errOut io.Writer) error {
	persisted := filepath.Join(s.PersistDir, PersistName)
	if err := writeFileAtomic(persisted, text, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "persisted: %s\n", persisted)
	if !s.systemdRunning() {
		warn(errOut, fmt.Sprintf(MsgNoSystemdTmpl, persisted), "")
		return nil
	}
	unit := filepath.Join(s.UnitDir, UnitName)
	if err := writeFileAtomic(unit, Unit(nftBin, persisted), 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{{"daemon-reload"}, {"enable", UnitName}} {
		if _, stderr, err := s.Run(ctx, "systemctl", args...); err != nil {
			return fmt.Errorf("systemctl %s: %s", strings.Join(args, " "), nftOutput(err, stderr))
		}
	}
	fmt.Fprintf(out, "enabled: %s\n", UnitName)
	return nil
}
