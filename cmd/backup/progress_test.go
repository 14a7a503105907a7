package backupcmd_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/internal/progress/ptytest"
	"github.com/anklume/anklume/internal/progress/vtscreen"
)

// TestBackupProgressTerminal: backup create and restore on a terminal
// show a live line with the phase and what the daemon reports, and leave
// only their final line on the screen.
func TestBackupProgressTerminal(t *testing.T) {
	e := newEnv(t)
	e.fake.SetProgress("ExportInstance", "work/web", 400*time.Millisecond, "Backing up instance: 40%", "Backing up instance: 90%")
	run := func(args ...string) (cmdutil.ExitCode, string, string) {
		tty, collect := ptytest.Open(t)
		var errOut strings.Builder
		code := e.runIO(&cmdutil.IOStreams{In: strings.NewReader(""), Out: tty, ErrOut: &errOut,
			OutTTY: ptytest.IsTerminal(tty), OutWidth: ptytest.Width(tty)}, args...)
		return code, collect(), errOut.String()
	}
	screen := func(raw string) string {
		t.Helper()
		s, err := vtscreen.Replay(raw)
		if err != nil {
			t.Fatalf("%v in %q", err, raw)
		}
		return strings.TrimRight(strings.Join(s.Lines(), "\n"), "\n")
	}

	code, raw, errOut := run("backup", "create", "web")
	if code != 0 {
		t.Fatalf("backup create: exit %d\n%q\n%s", code, raw, errOut)
	}
	live := regexp.MustCompile(`[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] backup work/web: exporting \(Backing up instance: (40|90)%\)  \d+s`)
	if !live.MatchString(raw) {
		t.Errorf("no live line with the daemon's progress in %q", raw)
	}
	m := regexp.MustCompile(`^backup: (\S+web-\d{8}-\d{6}\.tar\.gz)$`).FindStringSubmatch(screen(raw))
	if m == nil {
		t.Fatalf("screen after backup create:\n%s", screen(raw))
	}

	code, raw, errOut = run("backup", "restore", m[1], "--name", "web2", "--domain", "work")
	if code != 0 {
		t.Fatalf("backup restore: exit %d\n%q\n%s", code, raw, errOut)
	}
	if !regexp.MustCompile(`restore work/web2: (uploading|importing|starting)`).MatchString(raw) {
		t.Errorf("no live line for the restore in %q", raw)
	}
	if got, want := screen(raw), "restored: work/web2"; got != want {
		t.Errorf("screen after backup restore:\n%s\nwant %s", got, want)
	}
	if filepath.Dir(m[1]) != filepath.Join(e.dir, "backups") {
		t.Errorf("backup in %s", m[1])
	}
}
