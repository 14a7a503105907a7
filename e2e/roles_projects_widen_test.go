package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// widenPlay runs the two passes of incus_projects as play 3 does: the
// role (widening), then tasks_from: restrict (exact).
const widenPlay = `---
- name: Projects, both passes
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - incus_projects
  post_tasks:
    - name: Restrict the projects exactly
      ansible.builtin.include_role:
        name: incus_projects
        tasks_from: restrict
`

// widenPSOT: domain pw-a, whose machine has persistent data, so its
// project allows a data directory in restricted.devices.disk.paths.
const widenPSOT = `format_version: 1
project_name: pl-infra
global:
  addressing: {base_octet: 10, zone_base: 200}
  persistent_data_base: /srv/pw-data
domains:
  pw-a:
    trust_level: trusted
    machines:
      pw-a1:
        persistent_data:
          keep: {path: /keep}
`

// TestRolesProjectsWiden runs incus_projects against a fake incus client
// whose project pw-a allows a host path the configuration no longer
// lists (/old/pw-m, the data of a machine that is leaving it) and has a
// restriction set by hand (restricted.devices.usb): the first pass keeps
// both, adding the desired paths to the live ones (Incus would refuse a
// restriction that a machine still in the project breaks); the restrict
// pass, run after the instances, sets the desired restrictions exactly.
func TestRolesProjectsWiden(t *testing.T) {
	needTools(t, "ansible-playbook", "python3")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "infra.yml"), []byte(widenPSOT), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := anklume(t, dir, "sync"); code != 0 {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
	}
	if err := os.WriteFile(filepath.Join(dir, "widen.yml"), []byte(widenPlay), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "incus"), []byte(fakeIncusQuery), 0o755); err != nil {
		t.Fatal(err)
	}
	const old, paths, usb = "/old/pw-m", "restricted.devices.disk.paths", "restricted.devices.usb"
	out, calls, err := fakeIncusPlay(t, dir, bin, map[string]any{
		"/1.0/cluster": map[string]any{"enabled": false},
		"/1.0/projects?recursion=1": []any{ownedProject("pw-a", map[string]string{
			"restricted": "true", paths: old, usb: "allow"})},
	}, "widen.yml")
	if err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", err, out)
	}
	if len(calls) == 0 {
		t.Fatalf("no call to Incus:\n%s", out)
	}
	var puts []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(string(calls)), "\n") {
		var call struct {
			Method, Path string
			Data         struct {
				Config map[string]string `json:"config"`
			}
		}
		if err := json.Unmarshal([]byte(line), &call); err != nil {
			t.Fatal(err)
		}
		if call.Method != "PUT" || call.Path != "/1.0/projects/pw-a" {
			t.Fatalf("unexpected call %s %s\n%s", call.Method, call.Path, calls)
		}
		puts = append(puts, call.Data.Config)
	}
	if len(puts) != 2 {
		t.Fatalf("%d PUTs of pw-a, want 2 (widen, restrict):\n%s", len(puts), calls)
	}
	wide, exact := puts[0], puts[1]
	want := strings.Split(exact[paths], ",")
	if !slices.Contains(want, "/srv/pw-data/pw-a") || slices.Contains(want, old) {
		t.Errorf("restrict pass: %s = %q, want the domain's data directory only", paths, exact[paths])
	}
	want = append(want, old)
	slices.Sort(want)
	if got := wide[paths]; got != strings.Join(want, ",") {
		t.Errorf("widening pass: %s = %q, want %q", paths, got, strings.Join(want, ","))
	}
	if wide[usb] != "allow" {
		t.Errorf("widening pass: %s = %q, want the live allow kept", usb, wide[usb])
	}
	if v, ok := exact[usb]; ok {
		t.Errorf("restrict pass: %s = %q, want it unset", usb, v)
	}
}
