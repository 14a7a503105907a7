package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// debianImage is the local image scripts/debian-test-image.sh imports: a
// debootstrap Debian 12 with python3 and the packages of the live-tested
// roles.
const debianImage = "anklume-debian"

// provisionPSOT is the live provisioning scenario: one air-gapped domain
// (egress false, so no NAT) on subnet 10.200.97.0/24 with one container
// from the Debian image that lists base_system and print_server. The
// project name is random; %s is replaced by it.
const provisionPSOT = `format_version: 1
project_name: %s
global:
  addressing: {base_octet: 10, zone_base: 200}
domains:
  pv-a:
    trust_level: admin
    subnet_id: 97
    egress: false
    ephemeral: true
    machines:
      pv-a1:
        os_image: ` + debianImage + `
        roles: [base_system, print_server]
`

// provisionHostVars are appended after the managed section of
// host_vars/pv-a1.yml: sync keeps them.
const provisionHostVars = `base_system_timezone: Europe/Brussels
print_server_printers:
  - name: pv-office
    uri: socket://10.200.97.250:9100
    driver: raw
    description: Office printer
    default: true
`

// needDebianImage skips t unless the Debian image is imported.
func needDebianImage(t *testing.T) {
	t.Helper()
	if err := exec.Command("incus", "image", "info", debianImage).Run(); err != nil {
		skip(t, "image %q is missing (run scripts/debian-test-image.sh)", debianImage)
	}
}

// cleanupProvision removes what the scenario may have created.
func cleanupProvision() {
	cleanupDomains([]string{"pv-a"})
}

// recapRe matches the PLAY RECAP line of a host.
func recap(out, host string) string {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(host) + `\s+:.*$`)
	return re.FindString(out)
}

// TestProvisionRolesLive applies a one-container infra with anklume apply,
// then provisions it through the generated tree with `ansible-playbook
// site.yml --tags provision` and the bundled anklume_incus connection
// (SPEC.md §10.2, §16 #67): base_system and print_server run for real in a
// Debian container with no network access, the second run reports
// changed=0, and the container holds what the roles configured. Then every
// other provisioning role runs in check mode against the same container,
// as far as it can without downloading anything.
func TestProvisionRolesLive(t *testing.T) {
	needIncus(t)
	needDebianImage(t)
	needTools(t, "ansible-playbook")
	cleanupProvision()
	t.Cleanup(cleanupProvision)

	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	project := "pv-" + hex.EncodeToString(b[:])
	dir := t.TempDir()
	syncPSOT(t, dir, strings.Replace(provisionPSOT, "%s", project, 1))
	hv := filepath.Join(dir, "host_vars", "pv-a1.yml")
	old, err := os.ReadFile(hv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hv, append(old, provisionHostVars...), 0o644); err != nil {
		t.Fatal(err)
	}
	// Other tests share the daemon: wait while another run holds the lock.
	for try := 0; ; try++ {
		out, errOut, code := anklume(t, dir, "apply", "--yes", "--no-nftables", "--no-provision")
		if code == 0 {
			break
		}
		if !strings.Contains(errOut, "holds the lock") || try == 60 {
			t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
		}
		time.Sleep(2 * time.Second)
	}
	if ip := eth0IPv4(t, "pv-a", "pv-a1"); ip != "10.200.97.1" {
		t.Fatalf("pv-a1 leased %s, want 10.200.97.1", ip)
	}

	playbook := func(step string, args ...string) string {
		t.Helper()
		out, err := run(t, dir, "ansible-playbook", args...)
		if err != nil {
			t.Fatalf("%s: ansible-playbook %v: %v\n%s", step, args, err, out)
		}
		line := recap(out, "pv-a1")
		if line == "" || !strings.Contains(line, "failed=0") || !strings.Contains(line, "unreachable=0") {
			t.Fatalf("%s: recap %q\n%s", step, line, out)
		}
		return out
	}
	first := playbook("first run", "site.yml", "--tags", "provision")
	if line := recap(first, "pv-a1"); strings.Contains(line, "changed=0 ") {
		t.Errorf("first run changed nothing: %s", line)
	}
	second := playbook("second run", "site.yml", "--tags", "provision")
	if line := recap(second, "pv-a1"); !strings.Contains(line, "changed=0 ") {
		t.Errorf("second run is not idempotent: %s\n%s", line, second)
	}

	exec := func(args ...string) string {
		t.Helper()
		return mustRun(t, "", append([]string{"incus", "exec", "--project", "pv-a", "pv-a1", "--"}, args...)...)
	}
	for _, c := range []struct{ what, got, want string }{
		{"/etc/timezone", exec("cat", "/etc/timezone"), "Europe/Brussels\n"},
		{"/etc/localtime", exec("readlink", "/etc/localtime"), "/usr/share/zoneinfo/Europe/Brussels\n"},
		{"/etc/default/locale", exec("cat", "/etc/default/locale"), "LANG=en_US.UTF-8\n"},
		{"lpstat -v", exec("lpstat", "-v"), "device for pv-office: socket://10.200.97.250:9100\n"},
		{"lpstat -d", exec("lpstat", "-d"), "system default destination: pv-office\n"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if got := exec("locale", "-a"); !strings.Contains(got, "en_US.utf8") {
		t.Errorf("locale -a lacks en_US.utf8:\n%s", got)
	}
	if got := exec("grep", "-c", "^Listen 0.0.0.0:631$", "/etc/cups/cupsd.conf"); got != "1\n" {
		t.Errorf("cupsd.conf does not listen on 0.0.0.0:631 (%q)", got)
	}

	// Check mode of the roles that need downloads or are not in the image:
	// they must get as far as they can without the network and fail on
	// nothing.
	check := `- name: Check mode of the provisioning roles
  hosts: pv-a1
  gather_facts: true
  vars:
    ansible_connection: anklume_incus
    ansible_incus_project: '{{ incus_project }}'
    ansible_host: '{{ instance_name }}'
    ansible_user: root
    ansible_python_interpreter: /usr/bin/python3
    domain_ai_provider: cloud
    domain_ai_sanitize: true
  tasks:
    - name: Run the role in check mode
      ansible.builtin.include_role:
        name: '{{ item }}'
      loop:
` + "        - " + strings.Join(checkRoles, "\n        - ") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "check.yml"), []byte(check), 0o644); err != nil {
		t.Fatal(err)
	}
	out := playbook("check mode", "check.yml", "--check")
	for _, r := range checkRoles {
		if !strings.Contains(out, "Check the input of "+r) {
			t.Errorf("check mode did not run %s:\n%s", r, out)
		}
	}
}

// checkRoles are the provisioning roles run in check mode only.
var checkRoles = []string{
	"admin_bootstrap", "ollama_server", "open_webui", "stt_server", "lobechat", "opencode_server",
	"code_sandbox", "openclaw_server", "llm_sanitizer", "firewall_router", "tor_gateway",
	"dev_test_runner", "dev_agent_runner",
}
