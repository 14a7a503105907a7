package incusx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSocketError: each way the local socket fails says what to run.
func TestSocketError(t *testing.T) {
	tests := []struct {
		err       error
		msg, hint string
	}{
		{fmt.Errorf("dial: %w", syscall.ENOENT), "the Incus daemon is not running (nothing listens on /s)", "sudo systemctl start incus"},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), "the Incus daemon is not running", "--remote NAME"},
		{fmt.Errorf("dial: %w", syscall.EACCES), "permission denied on the Incus socket /s", "join the incus-admin group"},
		{errors.New("odd"), "connecting to the local Incus socket /s: odd", "--remote"},
	}
	for _, tc := range tests {
		err := socketError("/s", tc.err)
		var ce *ConnectError
		if !errors.As(err, &ce) || !strings.HasPrefix(ce.Msg, tc.msg) || !strings.Contains(ce.Hint, tc.hint) {
			t.Errorf("%v: %v", tc.err, err)
		}
		if !strings.Contains(err.Error(), "\n  hint: ") || !errors.Is(err, tc.err) {
			t.Errorf("%v: text %q does not carry the hint or the cause", tc.err, err)
		}
	}
}

// TestProbeSocket dials real unix sockets: a missing one, one nobody
// listens on any more, and a listening one.
func TestProbeSocket(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var ce *ConnectError
	if err := probeSocket(ctx, filepath.Join(dir, "none.socket")); !errors.As(err, &ce) || !strings.Contains(ce.Msg, "not running") {
		t.Errorf("missing socket: %v", err)
	}
	p := filepath.Join(dir, "unix.socket")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	if err := probeSocket(ctx, p); err != nil {
		t.Errorf("listening socket: %v", err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if err := probeSocket(ctx, p); !errors.As(err, &ce) || !strings.Contains(ce.Msg, "not running") {
		t.Errorf("stale socket: %v", err)
	}
}

// TestConnectWithoutDaemon: Connect itself reports the missing daemon.
func TestConnectWithoutDaemon(t *testing.T) {
	_, err := Connect(context.Background(), Options{Socket: filepath.Join(t.TempDir(), "unix.socket"), ConfigDir: t.TempDir()})
	if err == nil || !strings.HasPrefix(err.Error(), "the Incus daemon is not running") || !strings.Contains(err.Error(), "hint: start it") {
		t.Errorf("Connect: %v", err)
	}
}
