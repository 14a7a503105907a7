package copycmd_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anklume/anklume/internal/desktest"
	_ "github.com/anklume/anklume/internal/goldenflag" // accept go test ./... -update
	"github.com/anklume/anklume/internal/transfer"
)

const psot = `format_version: 1
project_name: i14-copy
global:
  addressing: {}
domains:
  a:
    trust_level: admin
    machines:
      a1: {}
      a2: {}
  b:
    trust_level: trusted
    machines:
      b1: {}
  inbox:
    trust_level: untrusted
    file_portal: {allowed_paths: [/srv/in], read_only: true}
    machines:
      c1: {}
  share:
    trust_level: untrusted
    file_portal: {allowed_paths: [/srv/out]}
    machines:
      d1: {}
network_policies:
  - {from: a, to: b1, ports: [22]}
`

// setup writes the source files into the fake instances.
func setup(t *testing.T) *desktest.Env {
	t.Helper()
	e := desktest.New(t, psot)
	ctx := context.Background()
	for _, f := range []struct{ project, inst, path, content string }{
		{"a", "a1", "/etc/f", "from a1\n"},
		{"b", "b1", "/etc/f", "from b1\n"},
		{"share", "d1", "/srv/out/f", "from d1\n"},
		{"inbox", "c1", "/srv/in/f", "from c1\n"},
	} {
		for _, d := range []string{"/srv", path(f.path)} {
			if err := e.Fake.MakeInstanceDir(ctx, f.project, f.inst, d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Fake.WriteInstanceFile(ctx, f.project, f.inst, f.path, []byte(f.content), 0o4755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range [][3]string{{"inbox", "c1", "/srv"}, {"inbox", "c1", "/srv/in"}, {"share", "d1", "/srv"}, {"share", "d1", "/srv/out"}} {
		_ = e.Fake.MakeInstanceDir(ctx, d[0], d[1], d[2], 0o755)
	}
	return e
}

func path(p string) string { return filepath.Dir(p) }

// TestCopy: what is allowed (same domain, a policy in its direction, two
// agreeing portals), what is refused (against the policy, out of an inbox,
// a path escaping the portal), that a refused copy writes nothing and
// that every attempt is logged.
func TestCopy(t *testing.T) {
	e := setup(t)
	for _, tc := range []struct {
		name     string
		src, dst string
		proj     string
		dstPath  string
		content  string
		errSub   string
	}{
		{"same domain", "a1:/etc/f", "a2:/etc/g", "a", "/etc/g", "from a1\n", ""},
		{"policy direction", "a1:/etc/f", "b1:/etc/", "b", "/etc/f", "from a1\n", ""},
		{"against the policy", "b1:/etc/f", "a1:/etc/h", "a", "/etc/h", "",
			"copy refused: no network policy from b1 (domain b) to a1 (domain a) and no file_portal allows it (/etc/h is not in a file_portal of domain a)"},
		{"portal to inbox", "d1:/srv/out/f", "c1:/srv/in/x", "inbox", "/srv/in/x", "from d1\n", ""},
		{"out of an inbox", "c1:/srv/in/f", "d1:/srv/out/y", "share", "/srv/out/y", "",
			"(the file_portal of domain inbox is read_only: files enter it, never leave)"},
		{"no source portal", "a1:/etc/f", "c1:/srv/in/z", "inbox", "/srv/in/z", "", "(/etc/f is not in a file_portal of domain a)"},
		{"escaping the portal", "d1:/srv/out/../../etc/f", "c1:/srv/in/w", "inbox", "/srv/in/w", "", "(/etc/f is not in a file_portal of domain share)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.Run(nil, "copy", tc.src, tc.dst)
			inst := strings.Split(tc.dst, ":")[0]
			f, ok := e.Fake.InstanceFile(tc.proj, inst, tc.dstPath)
			if tc.errSub == "" {
				if got.Code != 0 || !ok || string(f.Content) != tc.content || f.Mode != 0o755 {
					t.Errorf("copy %s %s: %+v; file %v %q %o", tc.src, tc.dst, got, ok, f.Content, f.Mode)
				}
				return
			}
			if got.Code != 1 || !strings.Contains(got.Stderr, tc.errSub) || ok {
				t.Errorf("copy %s %s: %+v (written: %v)", tc.src, tc.dst, got, ok)
			}
		})
	}
	b, err := os.ReadFile(transfer.LogPath(e.Dir))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d log lines, want 7:\n%s", len(lines), b)
	}
	var first, third transfer.Entry
	_ = json.Unmarshal([]byte(lines[0]), &first)
	_ = json.Unmarshal([]byte(lines[2]), &third)
	if !first.Allowed || first.From != "a/a1:/etc/f" || first.To != "a/a2:/etc/g" || first.Reason != "same domain" ||
		first.Bytes == nil || *first.Bytes != 8 || len(first.SHA256) != 64 {
		t.Errorf("first log line: %s", lines[0])
	}
	if third.Allowed || third.Bytes != nil || !strings.HasPrefix(third.Reason, "no network policy") {
		t.Errorf("third log line: %s", lines[2])
	}
	if fi, _ := os.Stat(transfer.LogPath(e.Dir)); fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v", fi.Mode())
	}
	for _, args := range [][]string{{"copy", "a1:/etc/f"}, {"copy", "a1:etc/f", "a2:/x"}, {"copy", "nope:/x", "a2:/x"}} {
		if got := e.Run(nil, args...); got.Code != 1 {
			t.Errorf("%v: %+v", args, got)
		}
	}
}
