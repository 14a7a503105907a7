// Package nftables deploys the isolation ruleset rendered by
// compiler/emit/nft on this host and compares it with the live table
// (SPEC.md §7.7, §7.8). It runs the nft binary; every path and command it
// touches is a field of System, so tests run it in a temporary directory
// with a fake nft.
//
// Why `nft -f` rather than netlink (github.com/google/nftables): SPEC §1.4
// makes the nft binary the only deploy back end, and it is the better one
// here. The file that deploy loads is the very file that is persisted and
// that the boot unit loads again with `nft -f`, so what was checked
// (`nft -c -f`) is byte for byte what runs at boot; `nft -f` applies the
// declare/delete/define file as one kernel transaction, so a failure
// leaves the old table in place; and nft's own parser and error messages
// (with line and column) are what the user sees, instead of a second
// translation of the ruleset into netlink expressions that could drift
// from the text. Status reads the live table with `nft -s list table` for
// the same reason: both sides of the comparison come out of one printer.
package nftables

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Messages of §7.7 (printed after `error: ` or `warning: `).
const (
	MsgRemote  = "--remote: the nftables rules would be loaded on this machine, not on the Incus host; run anklume nftables deploy on the Incus host"
	MsgNotRoot = "nftables deploy needs root (CAP_NET_ADMIN)"
	// HintNotRoot says what to run instead.
	HintNotRoot      = "run it as root: sudo anklume nftables deploy"
	MsgNoNFT         = "nft not found in PATH"
	HintNoNFT        = "install nftables"
	MsgBridgeNF      = "bridge netfilter is off; rules inside one domain bridge are not enforced"
	HintBridgeNF     = "modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1 (persist in /etc/modules-load.d/ and /etc/sysctl.d/)"
	HintOwner        = "if that infrastructure is gone, remove its table with nft delete table inet anklume"
	MsgNoSystemdTmpl = "systemd is not running; %s is written but nothing loads it at boot, so the isolation rules will not survive a reboot"
)

// Default locations on the host (§7.7 step 7).
const (
	DefaultBridgeNFPath = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	DefaultPersistDir   = "/etc/nftables.d"
	DefaultUnitDir      = "/etc/systemd/system"
	DefaultSystemdDir   = "/run/systemd/system"
	// PersistName is the file name under the persist directory.
	PersistName = "anklume-isolation.nft"
	// UnitName is the systemd unit that loads the rules at boot.
	UnitName = "anklume-nftables.service"
)

// Error is a failure with an optional hint; the command prints
// `error: <Msg>` and, below it, `  hint: <Hint>`.
type Error struct {
	Msg  string
	Hint string
}

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// System is the host as deploy and status see it. DefaultSystem returns
// the real one; tests replace fields.
type System struct {
	// NFT is the nft binary, a name looked up in PATH or a path.
	NFT string
	// LookPath resolves NFT to an absolute path (exec.LookPath).
	LookPath func(file string) (string, error)
	// Run runs a command and returns its stdout and stderr; err is non-nil
	// when it could not start or exited non-zero.
	Run func(ctx context.Context, name string, args ...string) (stdout, stderr []byte, err error)
	// Privileged reports whether the process may change the host's
	// nftables (root or CAP_NET_ADMIN).
	Privileged func() bool
	// BridgeNFPath is the br_netfilter switch read by the preflight.
	BridgeNFPath string
	// PersistDir receives anklume-isolation.nft; UnitDir the systemd unit.
	PersistDir string
	UnitDir    string
	// SystemdDir exists when systemd is PID 1.
	SystemdDir string
	// TempDir holds the private copies that nft checks and loads ("":
	// os.TempDir()).
	TempDir string
}

// DefaultSystem returns the real host.
func DefaultSystem() System {
	return System{
		NFT:          "nft",
		LookPath:     exec.LookPath,
		Run:          runCommand,
		Privileged:   privileged,
		BridgeNFPath: DefaultBridgeNFPath,
		PersistDir:   DefaultPersistDir,
		UnitDir:      DefaultUnitDir,
		SystemdDir:   DefaultSystemdDir,
	}
}

// runCommand runs name with args and captures both streams.
func runCommand(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}

// capNetAdmin is the bit of CAP_NET_ADMIN in the capability sets.
const capNetAdmin = 12

// privileged reports whether the process is root or has CAP_NET_ADMIN in
// its effective set (read from /proc/self/status).
func privileged() bool {
	if os.Geteuid() == 0 {
		return true
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<capNetAdmin) != 0
		}
	}
	return false
}

// nftPath resolves the nft binary to an absolute path.
func (s System) nftPath() (string, error) {
	p, err := s.LookPath(s.NFT)
	if err != nil {
		return "", &Error{Msg: MsgNoNFT, Hint: HintNoNFT}
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return p, nil
}

// bridgeNFOn reports whether bridge-nf-call-iptables is present and 1.
func (s System) bridgeNFOn() bool {
	data, err := os.ReadFile(s.BridgeNFPath)
	return err == nil && strings.TrimSpace(string(data)) == "1"
}

// systemdRunning reports whether systemd is PID 1 (its run directory
// exists).
func (s System) systemdRunning() bool {
	fi, err := os.Stat(s.SystemdDir)
	return err == nil && fi.IsDir()
}

// privateCopy writes data to a new file, readable by the owner only, in a
// new directory of its own, and returns its path and a cleanup function.
// nft checks and loads this copy, never a path others could rewrite
// between the guard and the load.
func (s System) privateCopy(data []byte) (string, func(), error) {
	dir, err := os.MkdirTemp(s.TempDir, "anklume-nft-")
	if err != nil {
		return "", nil, fmt.Errorf("creating a temporary directory: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	p := filepath.Join(dir, PersistName)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("writing %s: %w", p, err)
	}
	return p, cleanup, nil
}

// loadedTable returns the live listing of table inet anklume (`nft -s
// list table inet anklume`); loaded is false when no such table exists.
func (s System) loadedTable(ctx context.Context, nft string) (listing []byte, loaded bool, err error) {
	out, errOut, err := s.Run(ctx, nft, "list", "tables", "inet")
	if err != nil {
		return nil, false, fmt.Errorf("listing the nftables tables: %s", nftOutput(err, errOut))
	}
	found := false
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) == "table inet anklume" {
			found = true
		}
	}
	if !found {
		return nil, false, nil
	}
	out, errOut, err = s.Run(ctx, nft, "-s", "list", "table", "inet", "anklume")
	if err != nil {
		return nil, false, fmt.Errorf("listing table inet anklume: %s", nftOutput(err, errOut))
	}
	return out, true, nil
}

// tableComment returns the comment of a table listing, unquoted, and
// whether it has one.
func tableComment(listing []byte) (string, bool) {
	depth := 0
	for _, l := range strings.Split(string(listing), "\n") {
		t := strings.TrimSpace(l)
		if depth == 1 {
			if v, ok := strings.CutPrefix(t, "comment "); ok {
				if uq, err := strconv.Unquote(v); err == nil {
					return uq, true
				}
				return strings.Trim(v, `"`), true
			}
		}
		depth += strings.Count(t, "{") - strings.Count(t, "}")
	}
	return "", false
}

// nftOutput returns what nft printed on failure, or the error itself when
// it printed nothing.
func nftOutput(err error, stderr []byte) string {
	if msg := strings.TrimSpace(string(stderr)); msg != "" {
		return msg
	}
	return err.Error()
}

// writeFileAtomic writes data to path with mode through a temporary file
// in the same directory and a rename.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// warn prints a warning and its hint on w.
func warn(w io.Writer, msg, hint string) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, "warning: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(w, "  hint: %s\n", hint)
	}
}
