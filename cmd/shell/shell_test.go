package shellcmd_test

import (
	"strings"
	"testing"

	"github.com/anklume/anklume/internal/desktest"
	_ "github.com/anklume/anklume/internal/goldenflag" // accept go test ./... -update
)

const psot = `format_version: 1
project_name: i14-shell
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: anklume-test
domains:
  work:
    trust_level: trusted
    egress: false
    ephemeral: true
    machines:
      web: {}
  off:
    enabled: false
    trust_level: untrusted
    machines:
      gone: {}
`

// TestShell: the command runs in the machine's own project, as an
// argument vector, and its exit status becomes anklume's; names are the
// ones of infra.yml.
func TestShell(t *testing.T) {
	e := desktest.New(t, psot)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		out    string
		errSub string
	}{
		{"echo", []string{"shell", "web", "--", "echo", "a b", "c"}, 0, "a b c\n", ""},
		{"exit status", []string{"shell", "web", "--", "sh", "-c", "exit 3"}, 3, "", ""},
		{"stdin", []string{"shell", "web", "--", "cat"}, 0, "piped\n", ""},
		{"unknown machine", []string{"shell", "wbe", "--", "true"}, 1, "", `error: unknown machine "wbe" (did you mean "web"?)`},
		{"disabled domain", []string{"shell", "gone"}, 1, "", `error: machine "gone" belongs to a disabled domain`},
		{"no machine", []string{"shell"}, 1, "", "error: shell needs a machine name"},
		{"command without --", []string{"shell", "web", "true"}, 1, "", "error: put the command after --"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.Fake.Log().Reset()
			got := e.Run(strings.NewReader("piped\n"), tc.args...)
			if int(got.Code) != tc.code || got.Stdout != tc.out || !strings.Contains(got.Stderr, tc.errSub) {
				t.Errorf("anklume %v = %+v; want code %d, stdout %q, stderr containing %q", tc.args, got, tc.code, tc.out, tc.errSub)
			}
			if tc.code != 1 {
				if log := strings.Join(e.Fake.Log().Strings(), "\n"); !strings.Contains(log, "POST /1.0/instances/web/exec?project=work") {
					t.Errorf("no exec in project work:\n%s", log)
				}
			}
		})
	}
}

// TestShellDefault: without a command, `su -l` is tried and, when the
// guest has no su (the fake has none: 127), `/bin/sh -l`.
func TestShellDefault(t *testing.T) {
	e := desktest.New(t, psot)
	got := e.Run(nil, "shell", "web")
	if got.Code != 127 || strings.Count(got.Stderr, "not found") != 2 ||
		!strings.Contains(got.Stderr, "su: not found") || !strings.Contains(got.Stderr, "/bin/sh: not found") {
		t.Errorf("shell web = %+v", got)
	}
}
