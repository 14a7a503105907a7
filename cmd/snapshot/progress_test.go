package snapshotcmd_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/internal/progress/ptytest"
	"github.com/anklume/anklume/internal/progress/vtscreen"
)

// runOnTerminal runs `anklume args…` with stdout on a pseudo-terminal and
// returns the exit code, every byte the terminal received and stderr.
func (e *env) runOnTerminal(t *testing.T, args ...string) (cmdutil.ExitCode, string, string) {
	t.Helper()
	tty, collect := ptytest.Open(t)
	var errOut strings.Builder
	s := &cmdutil.IOStreams{In: strings.NewReader(""), Out: tty, ErrOut: &errOut, OutTTY: ptytest.IsTerminal(tty), OutWidth: ptytest.Width(tty)}
	if !s.OutTTY {
		t.Fatal("golang.org/x/term does not see the pseudo-terminal as a terminal")
	}
	code := e.runIO(s, args...)
	return code, collect(), errOut.String()
}

// TestSnapshotProgressTerminal: snapshot create and rollback on a terminal
// show a live line for the instance at work, with its step, what the
// daemon reports and the elapsed time, and print each instance's line as
// soon as it is done (before the next one starts); at the end the screen
// holds only the finished lines.
func TestSnapshotProgressTerminal(t *testing.T) {
	e := newEnv(t, psot)
	e.fake.SetProgress("CreateSnapshot", "work/web", 400*time.Millisecond, "Snapshot: 40%", "Snapshot: 90%")
	code, raw, errOut := e.runOnTerminal(t, "snapshot", "create", "--name", "s1")
	if code != 0 {
		t.Fatalf("snapshot create: exit %d\n%q\n%s", code, raw, errOut)
	}
	live := regexp.MustCompile(`[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] work/web: snapshotting \(Snapshot: (40|90)%\)  \d+s`)
	if !live.MatchString(raw) {
		t.Errorf("no live line with the daemon's progress for work/web in %q", raw)
	}
	if i, j := strings.Index(raw, "created: work/web/s1"), strings.Index(raw, "work/db: snapshotting"); i < 0 || j >= 0 && j < i {
		t.Errorf("work/web's line is not printed before work/db starts (%d, %d): %q", i, j, raw)
	}
	screen := func(raw string) string {
		t.Helper()
		s, err := vtscreen.Replay(raw)
		if err != nil {
			t.Fatalf("%v in %q", err, raw)
		}
		return strings.TrimRight(strings.Join(s.Lines(), "\n"), "\n")
	}
	if got, want := screen(raw), "created: work/web/s1\ncreated: work/db/s1\ncreated: lab/lab-1/s1"; got != want {
		t.Errorf("screen after snapshot create:\n%s\nwant:\n%s", got, want)
	}

	e.take(t, "work", "web", "anklume-pre-20260101-000000", time.Time{})
	code, raw, errOut = e.runOnTerminal(t, "snapshot", "rollback", "--limit", "work")
	if code != 0 {
		t.Fatalf("snapshot rollback: exit %d\n%q\n%s", code, raw, errOut)
	}
	if !regexp.MustCompile(`work/web: (stopping|restoring|starting)  \d+s`).MatchString(raw) {
		t.Errorf("no live line for the rollback of work/web in %q", raw)
	}
	if got, want := screen(raw), "restored: work/web/anklume-pre-20260101-000000"; got != want {
		t.Errorf("screen after snapshot rollback:\n%s\nwant:\n%s", got, want)
	}
}
