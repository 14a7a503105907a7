package apply

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/anklume/anklume/internal/progress/ptytest"
	"github.com/anklume/anklume/internal/progress/vtscreen"
)

// openPTY opens a pseudo-terminal of 100 columns (ptytest.Open).
func openPTY(t *testing.T) (*os.File, func() string) { return ptytest.Open(t) }

// onTerminal points opts' stdout at f, with the terminal detection and
// width the real factory uses (golang.org/x/term).
func onTerminal(o *Options, f *os.File) {
	o.IO.Out = f
	o.IO.OutTTY = ptytest.IsTerminal(f)
	o.IO.OutWidth = ptytest.Width(f)
}

// TestApplyProgressTerminal: apply on a pseudo-terminal shows a live line
// per running change, with the daemon's image download percent and the
// elapsed time, redrawn in place; when apply ends the screen holds the
// plan, one finished line per change and the summary, and no live line.
func TestApplyProgressTerminal(t *testing.T) {
	e := newEnv(t, psot)
	e.fake.SetProgress("CreateInstance", "work/work-a", 400*time.Millisecond,
		"rootfs: 50% (1.00MB/s)", "rootfs: 100% (1.00MB/s)")
	tty, collect := openPTY(t)
	o := e.opts(func(o *Options) { o.NoProvision = true })
	onTerminal(o, tty)
	if !o.IO.OutTTY {
		t.Fatal("golang.org/x/term does not see the pseudo-terminal as a terminal")
	}
	o.Color = func(tty bool) bool { return tty }
	err := Run(context.Background(), o)
	raw := collect()
	if err != nil {
		t.Fatalf("apply: %v\n%s\n%s", err, raw, e.err.String())
	}
	live := regexp.MustCompile(`[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] \+ instance work/work-a: creating \(rootfs: (50|100)% \(1\.00MB/s\)\)  (\x1b\[2m)?\d+s`)
	if !live.MatchString(raw) {
		t.Errorf("no live line with the download percent and elapsed time in:\n%q", raw)
	}
	if !strings.Contains(raw, "\x1b[J") || !regexp.MustCompile(`\x1b\[\d+A`).MatchString(raw) {
		t.Errorf("no in-place redraw (cursor up, erase below) in:\n%q", raw)
	}
	scr, err := vtscreen.Replay(raw)
	if err != nil {
		t.Fatalf("the terminal output: %v", err)
	}
	lines := scr.Lines()
	var finished int
	for _, l := range lines {
		if strings.ContainsAny(l, "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏") {
			t.Errorf("live line left on screen: %q", l)
		}
		if regexp.MustCompile(`^\[\d/9\] \+ \S+ \S+: done \(\d+\.\ds\)$`).MatchString(l) {
			finished++
		}
	}
	if finished != 9 {
		t.Errorf("%d finished lines on screen, want 9:\n%s", finished, strings.Join(lines, "\n"))
	}
	if len(lines) == 0 || lines[len(lines)-1] != "Apply complete: 9 created, 0 updated, 0 deleted." {
		t.Errorf("screen does not end with the summary:\n%s", strings.Join(lines, "\n"))
	}
}

// TestApplyProgressPlain: off a terminal (a pipe), with --quiet on a
// terminal, and with TERM=dumb, apply prints plain lines: one finished
// line per change and the summary, with no escape code and no live line.
func TestApplyProgressPlain(t *testing.T) {
	for _, c := range []struct {
		name  string
		pty   bool
		quiet bool
		term  string
	}{
		{name: "pipe"},
		{name: "quiet terminal", pty: true, quiet: true},
		{name: "dumb terminal", pty: true, term: "dumb"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, psot)
			e.fake.SetProgress("CreateInstance", "work/work-a", 200*time.Millisecond, "rootfs: 50% (1.00MB/s)")
			o := e.opts(func(o *Options) { o.NoProvision = true })
			var collect func() string
			if c.pty {
				var tty *os.File
				tty, collect = openPTY(t)
				onTerminal(o, tty)
			} else {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				done := make(chan struct{})
				go func() { _, _ = io.Copy(&buf, r); close(done) }()
				onTerminal(o, w)
				collect = func() string { _ = w.Close(); <-done; return buf.String() }
			}
			o.Globals.Quiet = c.quiet
			o.Getenv = func(k string) string {
				if k == "TERM" {
					return c.term
				}
				return ""
			}
			err := Run(context.Background(), o)
			out := collect()
			if err != nil {
				t.Fatalf("apply: %v\n%s\n%s", err, out, e.err.String())
			}
			if strings.Contains(out, "\x1b") {
				t.Errorf("escape code in plain output:\n%q", out)
			}
			if strings.Contains(out, "creating") || strings.ContainsAny(out, "⠋⠙") {
				t.Errorf("live line in plain output:\n%s", out)
			}
			out = strings.ReplaceAll(out, "\r\n", "\n")
			if n := len(regexp.MustCompile(`(?m)^(\[\d/9\] )?\+ \S+ \S+: done \(\d+\.\ds\)$`).FindAllString(out, -1)); n != 9 {
				t.Errorf("%d finished lines, want 9:\n%s", n, out)
			}
			if !strings.HasSuffix(out, "Apply complete: 9 created, 0 updated, 0 deleted.\n") {
				t.Errorf("no summary at the end:\n%s", out)
			}
		})
	}
}
