package incusx

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ConnectError is a failure to reach the Incus daemon, with what to do
// about it. Its text is the problem, a newline and "  hint: …", the form
// every anklume error with a hint takes.
type ConnectError struct {
	Msg  string
	Hint string
	Err  error
}

func (e *ConnectError) Error() string {
	if e.Hint == "" {
		return e.Msg
	}
	return e.Msg + "\n  hint: " + e.Hint
}

func (e *ConnectError) Unwrap() error { return e.Err }

// localSocket returns the path of the local Incus socket as the Incus
// client picks it: socket when given, else $INCUS_SOCKET, else
// unix.socket in $INCUS_DIR, /run/incus when it exists, or /var/lib/incus.
func localSocket(socket string) string {
	if socket != "" {
		return socket
	}
	if p := os.Getenv("INCUS_SOCKET"); p != "" {
		return p
	}
	dir := os.Getenv("INCUS_DIR")
	if dir == "" {
		dir = "/var/lib/incus"
		if _, err := os.Lstat("/run/incus/unix.socket"); err == nil {
			dir = "/run/incus"
		}
	}
	return filepath.Join(dir, "unix.socket")
}

// probeSocket dials the local socket once (no request is sent) so that a
// daemon that is not running or a socket the user may not open is
// reported plainly instead of as the error of the first API call. A user
// without access to unix.socket who may open unix.socket.user (the
// restricted per-user socket of incus-user) passes.
func probeSocket(ctx context.Context, path string) error {
	err := dial(ctx, path)
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		if dial(ctx, path+".user") == nil {
			return nil
		}
	}
	return socketError(path, err)
}

func dial(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return err
	}
	return c.Close()
}

// socketError explains a failed dial of the local socket at path.
func socketError(path string, err error) error {
	remote := "or use --remote NAME (or ANKLUME_REMOTE) to reach another Incus server"
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return &ConnectError{
			Msg:  "the Incus daemon is not running (nothing listens on " + path + ")",
			Hint: "start it (sudo systemctl start incus, or incusd as root), " + remote,
			Err:  err,
		}
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return &ConnectError{
			Msg: "permission denied on the Incus socket " + path,
			Hint: "join the incus-admin group (sudo usermod -aG incus-admin $USER, then log in again), " +
				"run anklume as root, " + remote,
			Err: err,
		}
	}
	return &ConnectError{Msg: "connecting to the local Incus socket " + path + ": " + err.Error(), Hint: remote, Err: err}
}
