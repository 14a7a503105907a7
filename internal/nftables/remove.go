package nftables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/anklume/anklume/compiler/emit/nft"
)

// RemoveOptions are the inputs of Remove.
type RemoveOptions struct {
	// Infra is project_name: a table, file or unit that names another
	// infrastructure is left in place.
	Infra string
	// Out receives one line per removed part; ErrOut the warnings.
	Out    io.Writer
	ErrOut io.Writer
}

// Remove undoes deploy for `anklume flush` (SPEC.md §12.2 step 8): it
// deletes table inet anklume when its comment names this infrastructure
// or it has none, removes the persisted file, and disables and removes
// the systemd unit, so the rules do not come back at boot. A persisted
// file that names another infrastructure is kept, and so is the unit that
// loads it. Every part that fails gives a warning (for example when not
// root) and the others still run: Remove never fails.
func (s System) Remove(ctx context.Context, opts RemoveOptions) {
	out, errOut := opts.Out, opts.ErrOut
	if out == nil {
		out = io.Discard
	}
	s.removeTable(ctx, opts.Infra, out, errOut)
	if s.removeFile(opts.Infra, out, errOut) {
		s.removeUnit(ctx, out, errOut)
	}
}

// otherInfra returns the infrastructure a table comment names when it is
// not infra.
func otherInfra(comment, infra string) (string, bool) {
	if !strings.HasPrefix(comment, nft.CommentPrefix) || comment == nft.TableComment(infra) {
		return "", false
	}
	return strings.TrimPrefix(comment, nft.CommentPrefix), true
}

// removeTable deletes the loaded table when it is this infrastructure's.
func (s System) removeTable(ctx context.Context, infra string, out, errOut io.Writer) {
	if !s.Privileged() {
		warn(errOut, "not removing table inet anklume: "+MsgNotRoot, "")
		return
	}
	nftBin, err := s.nftPath()
	if err != nil {
		warn(errOut, "not removing table inet anklume: "+MsgNoNFT, HintNoNFT)
		return
	}
	listing, loaded, err := s.loadedTable(ctx, nftBin)
	if err != nil {
		warn(errOut, "not removing table inet anklume: "+err.Error(), "")
		return
	}
	if !loaded {
		return
	}
	if c, ok := tableComment(listing); ok {
		if other, isOther := otherInfra(c, infra); isOther {
			warn(errOut, fmt.Sprintf("not removing table inet anklume: it belongs to infrastructure %q", other), "")
			return
		}
	}
	if _, stderr, err := s.Run(ctx, nftBin, "delete", "table", "inet", "anklume"); err != nil {
		warn(errOut, "removing table inet anklume: "+nftOutput(err, stderr), "")
		return
	}
	fmt.Fprintln(out, "removed: table inet anklume")
}

// fileInfra returns the infrastructure named by the table comment of a
// ruleset file, "" when it has none.
func fileInfra(data []byte) string {
	for _, l := range bytes.Split(data, []byte("\n")) {
		t := strings.TrimSpace(string(l))
		v, ok := strings.CutPrefix(t, "comment ")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(strings.TrimSuffix(v, ";")); err == nil {
			v = uq
		}
		if c := strings.Trim(v, `"`); strings.HasPrefix(c, nft.CommentPrefix) {
			return c
		}
	}
	return ""
}

// removeFile removes the persisted ruleset. It returns false when the
// file belongs to another infrastructure (and was kept).
func (s System) removeFile(infra string, out, errOut io.Writer) bool {
	p := filepath.Join(s.PersistDir, PersistName)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		warn(errOut, fmt.Sprintf("removing %s: %s", p, err), "")
		return true
	}
	if other, isOther := otherInfra(fileInfra(data), infra); isOther {
		warn(errOut, fmt.Sprintf("not removing %s: it belongs to infrastructure %q", p, other), "")
		return false
	}
	if err := os.Remove(p); err != nil {
		warn(errOut, fmt.Sprintf("removing %s: %s", p, err), "")
		return true
	}
	fmt.Fprintf(out, "removed: %s\n", p)
	return true
}

// removeUnit disables and removes anklume-nftables.service.
func (s System) removeUnit(ctx context.Context, out, errOut io.Writer) {
	unit := filepath.Join(s.UnitDir, UnitName)
	if _, err := os.Lstat(unit); errors.Is(err, fs.ErrNotExist) {
		return
	}
	systemd := s.systemdRunning()
	if systemd {
		if _, stderr, err := s.Run(ctx, "systemctl", "disable", UnitName); err != nil {
			warn(errOut, "systemctl disable "+UnitName+": "+nftOutput(err, stderr), "")
		} else {
			fmt.Fprintf(out, "disabled: %s\n", UnitName)
		}
	}
	if err := os.Remove(unit); err != nil {
		warn(errOut, fmt.Sprintf("removing %s: %s", unit, err), "")
		return
	}
	fmt.Fprintf(out, "removed: %s\n", unit)
	if systemd {
		if _, stderr, err := s.Run(ctx, "systemctl", "daemon-reload"); err != nil {
			warn(errOut, "systemctl daemon-reload: "+nftOutput(err, stderr), "")
		}
	}
}
