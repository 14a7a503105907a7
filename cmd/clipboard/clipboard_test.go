package clipboardcmd_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anklume/anklume/internal/desktest"
	_ "github.com/anklume/anklume/internal/goldenflag" // accept go test ./... -update
	"github.com/anklume/anklume/internal/transfer"
)

const psot = `format_version: 1
project_name: i14-clip
global:
  addressing: {}
domains:
  work:
    trust_level: trusted
    machines:
      w1: {}
  risky:
    trust_level: untrusted
    file_portal: {allowed_paths: [/etc/portal]}
    machines:
      r1: {}
network_policies:
  - {from: host, to: w1, ports: [22]}
`

// fakeTools puts wl-paste and wl-copy scripts first on PATH: wl-paste
// prints the file clip, wl-copy stores its input there.
func fakeTools(t *testing.T, tools ...string) string {
	t.Helper()
	dir := t.TempDir()
	clip := filepath.Join(dir, "clip")
	scripts := map[string]string{
		"wl-paste": "#!/bin/sh\n[ \"$1\" = --no-newline ] || exit 9\n/bin/cat " + clip + "\n",
		"wl-copy":  "#!/bin/sh\n/bin/cat > " + clip + "\n",
		"xclip":    "#!/bin/sh\n[ \"$1 $2\" = \"-selection clipboard\" ] || exit 9\nif [ \"$3\" = -o ]; then /bin/cat " + clip + "; else /bin/cat > " + clip + "; fi\n",
	}
	for _, name := range tools {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(scripts[name]), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	return clip
}

// TestClipboard: to and from a machine a policy allows, through the
// Wayland tools or xclip; refused without a policy or portal, with
// nothing written; allowed through the portal path.
func TestClipboard(t *testing.T) {
	for _, tools := range [][]string{{"wl-paste", "wl-copy"}, {"xclip"}} {
		t.Run(tools[0], func(t *testing.T) {
			e := desktest.New(t, psot)
			clip := fakeTools(t, tools...)
			ctx := context.Background()
			if err := e.Fake.MakeInstanceDir(ctx, "work", "w1", "/tmp", 0o1777); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(clip, []byte("secret\x00 bytes $(reboot)"), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := e.Run(nil, "clipboard", "to", "w1"); got.Code != 0 {
				t.Fatalf("clipboard to w1: %+v", got)
			}
			f, ok := e.Fake.InstanceFile("work", "w1", "/tmp/anklume-clipboard")
			if !ok || string(f.Content) != "secret\x00 bytes $(reboot)" || f.Mode != 0o600 {
				t.Errorf("guest clipboard: %v %q %o", ok, f.Content, f.Mode)
			}
			// from w1 needs w1 -> host: refused, the host clipboard kept.
			got := e.Run(nil, "clipboard", "from", "w1")
			if got.Code != 1 || !strings.Contains(got.Stderr, "error: clipboard-from refused: no network policy from w1 (domain work) to the host") {
				t.Errorf("clipboard from w1: %+v", got)
			}
			// risky: /tmp is refused both ways, its portal path is allowed.
			if got := e.Run(nil, "clipboard", "to", "r1"); got.Code != 1 || !strings.Contains(got.Stderr, "/tmp/anklume-clipboard is not in a file_portal of domain risky") {
				t.Errorf("clipboard to r1: %+v", got)
			}
			if _, ok := e.Fake.InstanceFile("risky", "r1", "/tmp/anklume-clipboard"); ok {
				t.Error("a refused clipboard was written")
			}
			if err := e.Fake.MakeInstanceDir(ctx, "risky", "r1", "/etc/portal", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := e.Fake.WriteInstanceFile(ctx, "risky", "r1", "/etc/portal/clip", []byte("from r1"), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := e.Run(nil, "clipboard", "from", "r1", "--path", "/etc/portal/clip"); got.Code != 0 {
				t.Errorf("clipboard from r1 --path portal: %+v", got)
			}
			if b, _ := os.ReadFile(clip); string(b) != "from r1" {
				t.Errorf("host clipboard %q", b)
			}
			log, _ := os.ReadFile(transfer.LogPath(e.Dir))
			if n := strings.Count(string(log), "\n"); n != 4 || !strings.Contains(string(log), `"op":"clipboard-from","from":"risky/r1:/etc/portal/clip","to":"host:clipboard","allowed":true,"reason":"file_portal","bytes":7`) {
				t.Errorf("log (%d lines):\n%s", n, log)
			}
		})
	}
	t.Run("no tool", func(t *testing.T) {
		e := desktest.New(t, psot)
		fakeTools(t)
		if got := e.Run(nil, "clipboard", "to", "w1"); got.Code != 1 || !strings.Contains(got.Stderr, "install wl-clipboard (Wayland) or xclip (X11)") {
			t.Errorf("no tool: %+v", got)
		}
	})
}
