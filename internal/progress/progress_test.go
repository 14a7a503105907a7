package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/anklume/anklume/internal/progress/vtscreen"
)

// clock is a manual clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newLive(out *bytes.Buffer, c *clock, width int) *Display {
	// An hour between ticks: the test decides every redraw.
	return New(Options{Out: out, Live: true, Now: c.now, Interval: time.Hour, Width: func() int { return width }})
}

func screen(t *testing.T, out string) []string {
	t.Helper()
	s, err := vtscreen.Replay(out)
	if err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	return s.Lines()
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// TestPlain: off a terminal only the finished lines and the printed lines
// come out, in order, with no escape code; steps and details print
// nothing.
func TestPlain(t *testing.T) {
	var out, errOut bytes.Buffer
	d := Plain(&out)
	d.Start("1", "+ instance a")
	d.Step("1", "creating")
	d.Detail("1", "rootfs: 45%")
	_, _ = d.Wrap(&errOut).Write([]byte("warning: w\n"))
	d.Println("note")
	d.End("1", "+ instance a: done (1.0s)")
	d.Close()
	if got, want := out.String(), "note\n+ instance a: done (1.0s)\n"; got != want {
		t.Errorf("out %q, want %q", got, want)
	}
	if errOut.String() != "warning: w\n" {
		t.Errorf("errOut %q", errOut.String())
	}
	if strings.Contains(out.String()+errOut.String(), "\x1b") {
		t.Error("escape code off a terminal")
	}
	if d.Live() {
		t.Error("plain display says live")
	}
}

// TestLive: on a terminal the running tasks show below the finished
// lines with their step, the daemon's detail and the elapsed time; a
// finished task leaves its line; after Close only the finished lines
// remain on screen.
func TestLive(t *testing.T) {
	var out bytes.Buffer
	c := &clock{t: time.Date(2026, 12, 5, 20, 0, 0, 0, time.UTC)}
	d := newLive(&out, c, 80)
	d.Start("a", "+ instance a")
	d.Step("a", "creating")
	c.t = c.t.Add(2 * time.Second)
	d.Start("b", "+ instance b")
	c.t = c.t.Add(63 * time.Second)
	d.Detail("a", "rootfs: 45% (3.20MB/s)")
	d.Step("b", "starting") // redraws, showing a's detail too
	equal(t, "screen while running", screen(t, out.String()), []string{
		"⠋ + instance a: creating (rootfs: 45% (3.20MB/s))  1m05s",
		"⠙ + instance b: starting  1m03s",
	})
	d.End("a", "[1/2] + instance a: done (65.0s)")
	equal(t, "screen after a ends", screen(t, out.String()), []string{
		"[1/2] + instance a: done (65.0s)",
		"⠋ + instance b: starting  1m03s",
	})
	d.Println("note: n")
	d.End("b", "[2/2] + instance b: done (63.0s)")
	d.Close()
	equal(t, "screen after Close", screen(t, out.String()), []string{
		"[1/2] + instance a: done (65.0s)",
		"note: n",
		"[2/2] + instance b: done (63.0s)",
	})
	if !strings.Contains(out.String(), "\x1b[2A") {
		t.Errorf("no cursor-up redraw of the two-line block in %q", out.String())
	}
}

// TestLiveWidth: a line longer than the terminal is cut with "…" and
// keeps its elapsed time, so it never wraps (a wrapped line would break
// the next redraw); past MaxLive tasks the rest are counted.
func TestLiveWidth(t *testing.T) {
	var out bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	d := newLive(&out, c, 30)
	for i := range MaxLive + 3 {
		d.Start(string(rune('a'+i)), "+ instance "+strings.Repeat("x", 40))
	}
	lines := screen(t, out.String())
	if len(lines) != MaxLive+1 {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), MaxLive+1, strings.Join(lines, "\n"))
	}
	for _, l := range lines[:MaxLive] {
		if n := utf8.RuneCountInString(l); n > 30 || !strings.HasSuffix(l, "…  0s") {
			t.Errorf("line %q (%d columns)", l, n)
		}
	}
	if lines[MaxLive] != "  … and 3 more" {
		t.Errorf("last line %q", lines[MaxLive])
	}
	d.Close()
	if got := screen(t, out.String()); len(got) != 0 {
		t.Errorf("screen after Close: %q", got)
	}
}

// TestWrap: a warning written on the error stream while the block is on
// screen lands above the block, not inside it.
func TestWrap(t *testing.T) {
	var out bytes.Buffer
	c := &clock{t: time.Unix(0, 0)}
	d := newLive(&out, c, 80)
	d.Start("a", "+ instance a")
	d.Start("b", "+ instance b")
	// The terminal is one screen: stderr writes land in the same stream.
	_, _ = d.Wrap(&out).Write([]byte("warning: restart required\n"))
	equal(t, "screen", screen(t, out.String()), []string{
		"warning: restart required",
		"⠋ + instance a  0s",
		"⠙ + instance b  0s",
	})
	d.Close()
}

// TestColor: the elapsed time is dimmed only with Color.
func TestColor(t *testing.T) {
	for _, color := range []bool{false, true} {
		var out bytes.Buffer
		d := New(Options{Out: &out, Live: true, Color: color, Interval: time.Hour})
		d.Start("a", "x")
		d.Close()
		if got := strings.Contains(out.String(), dim); got != color {
			t.Errorf("Color %v: dim sequence present %v in %q", color, got, out.String())
		}
	}
}

func TestElapsed(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {1400 * time.Millisecond, "1s"}, {59 * time.Second, "59s"},
		{65 * time.Second, "1m05s"}, {3599 * time.Second, "59m59s"}, {3720 * time.Second, "1h02m"},
	} {
		if got := Elapsed(c.d); got != c.want {
			t.Errorf("Elapsed(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}
