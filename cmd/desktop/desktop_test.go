package desktopcmd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anklume/anklume/internal/desktest"
	"github.com/anklume/anklume/internal/desktop"
	_ "github.com/anklume/anklume/internal/goldenflag" // accept go test ./... -update
)

const psot = `format_version: 1
project_name: i14-desktop
global:
  addressing: {}
domains:
  work:
    trust_level: trusted
    machines:
      web: {}
`

// TestDesktop: printing, --install into the default include file under
// XDG_CONFIG_HOME (then unchanged on a second run), --config, and bad
// arguments.
func TestDesktop(t *testing.T) {
	e := desktest.New(t, psot)
	got := e.Run(nil, "desktop", "sway")
	if got.Code != 0 || !strings.Contains(got.Stdout, `for_window [app_id="^anklume\.work(\..+)?$"]`) {
		t.Errorf("desktop sway: %+v", got)
	}
	cfg := t.TempDir()
	e.Environ["XDG_CONFIG_HOME"] = cfg
	path := filepath.Join(cfg, "sway", "config.d", "anklume.conf")
	got = e.Run(nil, "desktop", "sway", "--install")
	if got.Code != 0 || got.Stdout != "desktop: written "+path+"\nmake sure your sway configuration has: include "+path+"\n" {
		t.Errorf("--install: %+v", got)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(b), desktop.Begin+"\n# anklume trust colours") {
		t.Errorf("installed file: %v\n%s", err, b)
	}
	if got = e.Run(nil, "desktop", "sway", "--install"); got.Code != 0 || !strings.HasPrefix(got.Stdout, "desktop: unchanged ") {
		t.Errorf("second --install: %+v", got)
	}
	other := filepath.Join(t.TempDir(), "tmux.conf")
	if got = e.Run(nil, "desktop", "tmux", "--install", "--config", other, "-q"); got.Code != 0 || got.Stdout != "" {
		t.Errorf("tmux --install --config: %+v", got)
	}
	if b, _ := os.ReadFile(other); !strings.Contains(string(b), `set -g @anklume-domain-work "trusted"`) {
		t.Errorf("tmux file:\n%s", b)
	}
	for _, args := range [][]string{{"desktop"}, {"desktop", "kde"}, {"desktop", "sway", "i3"}} {
		if got := e.Run(nil, args...); got.Code != 1 || !strings.HasPrefix(got.Stderr, "error: ") {
			t.Errorf("%v: %+v", args, got)
		}
	}
}
