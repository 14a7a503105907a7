package roles

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler/host"
)

const psot = `format_version: 1
project_name: rl
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: images:debian/13
domains:
  work:
    trust_level: trusted
    machines:
      web: {roles: [base_system, my_role]}
      db: {roles: [base_system]}
  off:
    trust_level: trusted
    enabled: false
    machines:
      old: {roles: [tor_gateway]}
`

// run runs roles with args over files (nil: no PSOT in the directory).
func run(t *testing.T, files fstest.MapFS, role string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	g := &cmdutil.GlobalOptions{}
	f := &cmdutil.Factory{
		IO:      &cmdutil.IOStreams{Out: &out, ErrOut: &errOut},
		Getwd:   func() (string, error) { return "/p", nil },
		FS:      func(string) fs.FS { return files },
		Globals: g,
	}
	opts := &Options{IO: f.IO, Globals: g, Source: f.Source, Getwd: f.Getwd, FS: f.FS, Role: role,
		Host: func(bool) (host.Options, error) {
			return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}, nil
		}}
	err := Run(opts)
	return out.String(), errOut.String(), err
}

func TestRoles(t *testing.T) {
	project := fstest.MapFS{
		"infra.yml":                            {Data: []byte(psot)},
		"roles_custom/my_role/README.md":       {Data: []byte("# my_role\n\nMine.\n")},
		"roles_custom/base_system/tasks/x.yml": {Data: []byte("---\n")},
		"roles_vendor/v.r/tasks/main.yml":      {Data: []byte("---\n")},
	}
	for _, c := range []struct {
		name    string
		files   fstest.MapFS
		role    string
		want    []string // lines of stdout, in order
		notWant []string
		wantErr string
	}{
		{name: "built-ins outside a project", files: fstest.MapFS{}, want: []string{
			"ROLE  ", "base_system  ", "built-in", "firewall_router", "tor_gateway"},
			notWant: []string{"incus_", "_shared"}},
		{name: "with the machines of enabled domains", files: project, want: []string{
			"base_system       roles_custom  web, db\n", // roles_custom comes first on roles_path
			"my_role           roles_custom  web\n",
			"tor_gateway       built-in      -\n", // its machine is in a disabled domain
			"v.r               roles_vendor  -\n"}},
		{name: "one built-in role", files: project, role: "firewall_router", want: []string{
			"role firewall_router (built-in)\nmachines: none\n\n# firewall_router\n"}},
		{name: "one custom role", files: project, role: "my_role", want: []string{
			"role my_role (roles_custom)\nmachines: web\n\n# my_role\n\nMine.\n"}},
		{name: "unknown role", files: project, role: "firewal_router",
			wantErr: `unknown role "firewal_router"; did you mean "firewall_router"? (anklume roles lists them)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, err := run(t, c.files, c.role)
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			rest := out
			for _, w := range c.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("%q missing (or out of order) in:\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range c.notWant {
				if strings.Contains(out, w) {
					t.Errorf("%q in:\n%s", w, out)
				}
			}
		})
	}
}

// TestRolesBadPSOT: a PSOT that does not validate is reported, exit 1.
func TestRolesBadPSOT(t *testing.T) {
	_, errOut, err := run(t, fstest.MapFS{"infra.yml": {Data: []byte("format_version: 1\nproject_name: x\ndomains: {a: {trust_level: nope}}\n")}}, "")
	if err != cmdutil.ErrSilent || !strings.Contains(errOut, "infra.yml:3:") {
		t.Errorf("err %v, stderr %q", err, errOut)
	}
}
