package goldencmd_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/internal/progress/ptytest"
	"github.com/anklume/anklume/internal/progress/vtscreen"
)

// TestGoldenProgressTerminal: golden publish on a terminal shows a live
// line with what the daemon reports while it packs the image, and leaves
// only the final line on the screen.
func TestGoldenProgressTerminal(t *testing.T) {
	e := newEnv(t)
	if got := e.run("golden", "create", "web"); got.code != 0 {
		t.Fatalf("golden create: %+v", got)
	}
	e.fake.SetProgress("PublishSnapshot", "work/web", 400*time.Millisecond, "Image pack: 40%", "Image pack: 90%")
	tty, collect := ptytest.Open(t)
	var errOut strings.Builder
	code := e.runIO(&cmdutil.IOStreams{In: strings.NewReader(""), Out: tty, ErrOut: &errOut,
		OutTTY: ptytest.IsTerminal(tty), OutWidth: ptytest.Width(tty)}, "golden", "publish", "web", "web-golden")
	raw := collect()
	if code != 0 {
		t.Fatalf("golden publish: exit %d\n%q\n%s", code, raw, errOut.String())
	}
	live := regexp.MustCompile(`[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] work/web: publishing as web-golden \(Image pack: (40|90)%\)  \d+s`)
	if !live.MatchString(raw) {
		t.Errorf("no live line with the daemon's progress in %q", raw)
	}
	s, err := vtscreen.Replay(raw)
	if err != nil {
		t.Fatalf("%v in %q", err, raw)
	}
	if got, want := strings.TrimRight(strings.Join(s.Lines(), "\n"), "\n"), "published: work/web/pristine as image web-golden"; got != want {
		t.Errorf("screen:\n%s\nwant %s", got, want)
	}
}
