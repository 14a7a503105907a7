package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNeverTemplated: strings from infra.yml reach Ansible as data, never
// as templates. Every user string of the infra holds a Jinja payload that
// would create a marker file when evaluated; after `anklume sync`, a
// playbook (testdata/unsafe/probe.yml) templates every variable of every
// host (hostvars), of every group_vars and host_vars file (groups without
// hosts included) and of incus/desired-state.yml. No marker may exist
// afterwards, and every payload must come out literally.
func TestNeverTemplated(t *testing.T) {
	needTools(t, "ansible-playbook")
	dir := t.TempDir()
	mark := filepath.Join(dir, "MARK")
	payloads := map[string]string{}
	p := func(what string) string {
		s := "{{ lookup('pipe','touch " + mark + "-" + what + "') }}"
		payloads[what] = s
		return s
	}
	stmt := "{% if lookup('pipe','touch " + mark + "-stmt') %}{% endif %}"
	payloads["stmt"] = stmt
	// A disk source may not hold a comma (it is joined into a comma-separated
	// Incus list), so its payload is a comma-free expression: templated, it
	// would come out as 1337 instead of literally.
	src := "{{ 7 * 191 }}"
	payloads["src"] = src
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	infra := `project_name: evil
global:
  addressing: {}
  default_connection: ` + q(p("conn")) + `
  default_user: ` + q(p("user")) + `
  default_os_image: ` + q("images:x"+p("img")) + `
domains:
  lab:
    description: ` + q(p("dom")) + `
    profiles:
      p1:
        description: ` + q(stmt) + `
        config: {user.p: ` + q(p("pcfg")) + `}
    machines:
      lab-a:
        description: ` + q(p("mach")) + `
        os_image: ` + q("images:"+p("os")) + `
        config: {user.note: ` + q(p("cfg")) + `}
        profiles: [default, p1]
        devices:
          data: {type: disk, path: /data, source: ` + q("/srv/"+src) + `}
  empty:
    description: ` + q(p("empty")) + `
network_policies:
  - description: ` + q(p("pol")) + `
    from: lab
    to: host
    ports: [22]
`
	rewritePSOT(t, dir, infra)
	cmd := exec.Command(binary(t), "sync")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ANKLUME_HOST_RESOURCES=none")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("anklume sync: %v\n%s", err, out)
	}
	for _, f := range []string{"probe.yml", "probe-file.yml"} {
		data, err := os.ReadFile(filepath.Join("testdata", "unsafe", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, dir, "ansible-playbook", "-i", "inventory", "probe.yml")
	markers, _ := filepath.Glob(mark + "*")
	if len(markers) > 0 {
		t.Fatalf("Ansible evaluated strings from infra.yml: %v\n%s", markers, out)
	}
	if err != nil {
		t.Fatalf("ansible-playbook probe.yml: %v\n%s", err, out)
	}
	// Every payload comes out literally in some templated output, and
	// desired-state.yml keeps each one it holds.
	dumps, _ := filepath.Glob(filepath.Join(dir, "out", "*.json"))
	if len(dumps) < 6 {
		t.Fatalf("only %d dumps: %v\n%s", len(dumps), dumps, out)
	}
	all := map[string][]string{}
	for _, f := range dumps {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		all[filepath.Base(f)] = strs(v, nil)
	}
	contains := func(file, s string) bool {
		for _, x := range all[file] {
			if strings.Contains(x, s) {
				return true
			}
		}
		return false
	}
	for what, s := range payloads {
		found := false
		for f := range all {
			found = found || contains(f, s)
		}
		if !found {
			t.Errorf("payload %s never came out literally", what)
		}
	}
	for _, what := range []string{"dom", "stmt", "pcfg", "mach", "os", "cfg", "pol", "empty"} {
		if !contains("desired.json", payloads[what]) {
			t.Errorf("desired-state.yml: payload %s did not come out literally", what)
		}
	}
	for _, what := range []string{"conn", "user", "dom", "mach", "cfg"} {
		if !contains("host-lab-a.json", payloads[what]) {
			t.Errorf("hostvars of lab-a: payload %s did not come out literally", what)
		}
	}
	if !contains("group_vars-empty.yml.json", payloads["empty"]) {
		t.Errorf("group_vars/empty.yml: payload did not come out literally")
	}
}

// strs appends every string of a decoded JSON value to out.
func strs(v any, out []string) []string {
	switch x := v.(type) {
	case string:
		out = append(out, x)
	case []any:
		for _, it := range x {
			out = strs(it, out)
		}
	case map[string]any:
		for k, it := range x {
			out = strs(it, append(out, k))
		}
	}
	return out
}
