// Package ptytest gives the progress tests of the commands a real
// pseudo-terminal (github.com/creack/pty): the command writes to its
// terminal side, detects it with golang.org/x/term as the real factory
// does, and the test reads back every byte the terminal received, to
// replay with vtscreen.
package ptytest

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// Open opens a pseudo-terminal of 100 columns and 40 rows and collects
// what its terminal side receives; collect closes the terminal and
// returns everything written to it.
func Open(t testing.TB) (tty *os.File, collect func() string) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("opening a pseudo-terminal: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(&buf, ptmx) // ends with EIO once tty is closed
		close(done)
	}()
	return tty, func() string {
		_ = tty.Close()
		<-done
		_ = ptmx.Close()
		return buf.String()
	}
}

// IsTerminal tells whether f is a terminal, as golang.org/x/term sees it.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Width returns the width of the terminal f, 0 when unknown, as the real
// factory measures it.
func Width(f *os.File) func() int {
	return func() int {
		w, _, err := term.GetSize(int(f.Fd()))
		if err != nil {
			return 0
		}
		return w
	}
}
