package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// rolesPSOT is the plain-Ansible scenario: two domains ro-a and ro-b
// (subnets pinned at 10.200.95.0/24 and 10.200.96.0/24, away from the
// other tests), egress off, ephemeral (not protected), one container each
// and no roles, so play 4 does nothing. %s is the project_name.
const rolesPSOT = `format_version: 1
project_name: %s
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: images:debian/13
domains:
  ro-a:
    trust_level: admin
    subnet_id: 95
    egress: false
    ephemeral: true
    machines:
      ro-a1:
        roles: []
        config: {limits.memory: 256MiB}
  ro-b:
    trust_level: trusted
    subnet_id: 96
    egress: false
    ephemeral: true
    machines:
      ro-b1:
        roles: []
`

// rolesPSOTOneDomain is rolesPSOT without domain ro-b, whose objects
// become orphans.
const rolesPSOTOneDomain = `format_version: 1
project_name: %s
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: images:debian/13
domains:
  ro-a:
    trust_level: admin
    subnet_id: 95
    egress: false
    ephemeral: true
    machines:
      ro-a1:
        roles: []
        config: {limits.memory: 256MiB}
`

// cleanupRoles removes everything the scenario may have created.
func cleanupRoles() {
	cleanupDomains([]string{"ro-a", "ro-b"})
}

// rolesInfra writes the PSOT src (with project_name infra) in a new
// directory and syncs it.
func rolesInfra(t *testing.T, dir, src, infra string) {
	t.Helper()
	syncPSOT(t, dir, strings.Replace(src, "%s", infra, 1))
}

// recapLine matches the PLAY RECAP line of localhost.
var recapLine = regexp.MustCompile(`(?m)^localhost\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

// playbook runs ansible-playbook site.yml in dir, without the nftables
// play (the isolation rules are tested elsewhere, and loading them here
// would touch the host), and returns the number of changed tasks on
// localhost.
func playbook(t *testing.T, dir string) int {
	t.Helper()
	cmd := exec.Command("ansible-playbook", "-i", "inventory", "site.yml", "-e", "anklume_nftables_deploy=false")
	cmd.Dir = dir
	cmd.Env = append(ansibleEnv(dir), "ANKLUME_CONTEXT_DIR="+t.TempDir())
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err != nil {
		t.Fatalf("ansible-playbook site.yml: %v\n%s", err, out)
	}
	m := recapLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no PLAY RECAP line for localhost:\n%s", out)
	}
	if m[2] != "0" || m[3] != "0" {
		t.Fatalf("ansible-playbook: unreachable=%s failed=%s\n%s", m[2], m[3], out)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// planEmpty checks that anklume plan --detailed-exitcode reports no
// change: the two back ends agree (SPEC.md §10, §16 #67).
func planEmpty(t *testing.T, dir, when string) {
	t.Helper()
	out, errOut, code := anklume(t, dir, "plan", "--detailed-exitcode")
	if code != 0 || !strings.Contains(out, "No changes. Incus matches the configuration.") {
		t.Fatalf("plan %s: exit %d\n%s\n%s", when, code, out, errOut)
	}
}

// randomSuffix returns 8 random hex digits.
func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestRolesInfraLive runs play 3 of site.yml (the infra roles) against the
// real daemon (SPEC.md §10.1, §16 #67): on an empty Incus the playbook
// creates both domains and `anklume plan` right after it reports
// `No changes.`; a second run reports changed=0; hand-made changes of owned
// fields are corrected while a key added by hand stays; a domain removed
// from the PSOT is deleted as an orphan domain. The reverse order holds
// too: after `anklume apply`, the playbook changes nothing.
func TestRolesInfraLive(t *testing.T) {
	needIncus(t)
	needTools(t, "ansible-playbook")
	cleanupRoles()
	t.Cleanup(cleanupRoles)
	infra := "ro-" + randomSuffix(t)

	t.Run("playbook then plan", func(t *testing.T) {
		dir := t.TempDir()
		rolesInfra(t, dir, rolesPSOT, infra)
		if n := playbook(t, dir); n == 0 {
			t.Fatal("first playbook run on an empty Incus changed nothing")
		}
		for p, n := range map[string]string{"ro-a": "ro-a1", "ro-b": "ro-b1"} {
			live := instances(t, p)[n]
			if live.Status != "Running" || live.Config["user.anklume.infra"] != infra {
				t.Errorf("%s/%s: status %q, config %v", p, n, live.Status, live.Config)
			}
		}
		planEmpty(t, dir, "after the playbook")
		if n := playbook(t, dir); n != 0 {
			t.Errorf("second playbook run: changed=%d, want 0", n)
		}

		// Drift (§9.6): owned fields changed by hand are corrected; a key
		// anklume never set is kept.
		mustRun(t, "", "incus", "config", "set", "--project", "ro-a", "ro-a1", "limits.memory=512MiB", "user.by-hand=kept")
		mustRun(t, "", "incus", "profile", "device", "set", "--project", "ro-b", "default", "eth0", "security.ipv4_filtering=false")
		mustRun(t, "", "incus", "network", "set", "net-ro-a", "ipv4.nat=true")
		mustRun(t, "", "incus", "project", "set", "ro-b", "restricted.devices.usb=allow")
		if n := playbook(t, dir); n != 4 {
			t.Errorf("playbook after drift: changed=%d, want 4 (project, network, profile, instance)", n)
		}
		planEmpty(t, dir, "after the drift was corrected")
		if got := instances(t, "ro-a")["ro-a1"].Config["user.by-hand"]; got != "kept" {
			t.Errorf("user.by-hand = %q, want kept", got)
		}

		// Orphan domain (§9.2): ro-b leaves the PSOT; its instance,
		// project and bridge are deleted.
		rolesInfra(t, dir, rolesPSOTOneDomain, infra)
		if n := playbook(t, dir); n != 3 {
			t.Errorf("playbook after removing ro-b: changed=%d, want 3 (instance, project, bridge)", n)
		}
		if err := exec.Command("incus", "project", "show", "ro-b").Run(); err == nil {
			t.Error("project ro-b still exists")
		}
		if err := exec.Command("incus", "network", "show", "net-ro-b").Run(); err == nil {
			t.Error("network net-ro-b still exists")
		}
		planEmpty(t, dir, "after the orphan domain was deleted")
		if n := playbook(t, dir); n != 0 {
			t.Errorf("playbook run after the cleanup: changed=%d, want 0", n)
		}
	})
	cleanupRoles()

	t.Run("apply then playbook", func(t *testing.T) {
		dir := t.TempDir()
		rolesInfra(t, dir, rolesPSOT, infra)
		if out, errOut, code := anklume(t, dir, "apply", "--yes", "--no-nftables", "--no-provision"); code != 0 {
			t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
		}
		if n := playbook(t, dir); n != 0 {
			t.Errorf("playbook after apply: changed=%d, want 0", n)
		}
		planEmpty(t, dir, "after apply and the playbook")
	})
}
