package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// applyPSOT is the live apply scenario: two domains prefixed ap- (the plan
// tests use pl-), subnets pinned with subnet_id so that they do not meet
// other tests' bridges, egress off (no NAT) and ephemeral (not protected).
const applyPSOT = `format_version: 1
project_name: e2e-apply
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: images:debian/13
domains:
  ap-admin:
    trust_level: admin
    subnet_id: 37
    egress: false
    ephemeral: true
    machines:
      ap-a1:
        ip: 10.200.37.11
        config: {limits.memory: 512MiB}
      ap-a2: {}
  ap-work:
    trust_level: trusted
    subnet_id: 38
    egress: false
    ephemeral: true
    machines:
      ap-w1: {}
`

// anklume runs the binary in dir and returns stdout, stderr and the exit
// code.
func anklume(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ANKLUME_IMAGE_MAP=images:debian/13="+testImage,
		"ANKLUME_CONTEXT_DIR="+t.TempDir(), "ANKLUME_HOST_RESOURCES=cpu=10,memory=40GiB",
		"ANKLUME_SKIP_HOST_SUBNET_CHECK=1", "NO_COLOR=1")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running anklume %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// cleanupApply removes everything the scenario may have created.
func cleanupApply() {
	cleanupDomains([]string{"ap-admin", "ap-work"})
}

type liveInstance struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Status      string            `json:"status"`
	Config      map[string]string `json:"config"`
	State       *struct {
		Network map[string]struct {
			Addresses []struct {
				Family  string `json:"family"`
				Address string `json:"address"`
			} `json:"addresses"`
		} `json:"network"`
	} `json:"state"`
}

func instances(t *testing.T, project string) map[string]liveInstance {
	t.Helper()
	var list []liveInstance
	if err := json.Unmarshal([]byte(mustRun(t, "", "incus", "list", "--project", project, "-f", "json")), &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]liveInstance{}
	for _, i := range list {
		out[i.Name] = i
	}
	return out
}

// eth0IPv4 waits for the instance's DHCP lease and returns its address.
func eth0IPv4(t *testing.T, project, name string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		i := instances(t, project)[name]
		if i.State != nil {
			for _, a := range i.State.Network["eth0"].Addresses {
				if a.Family == "inet" {
					return a.Address
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s got no IPv4 address (status %s)", project, name, i.Status)
		}
		time.Sleep(time.Second)
	}
}

// TestApplyLive runs anklume apply against the real daemon: an empty
// state converges in one apply and a second plan is empty (§16 #56); the
// reserved IP is leased; the four context files are written (#66); a
// hand-made change of an owned key is corrected (#58); a removed machine
// is deleted (#60); an apply while another run holds the lock fails with
// the lock message (#61).
func TestApplyLive(t *testing.T) {
	needIncus(t)
	cleanupApply()
	t.Cleanup(cleanupApply)
	dir := t.TempDir()
	psot := filepath.Join(dir, "infra.yml")
	if err := os.WriteFile(psot, []byte(applyPSOT), 0o644); err != nil {
		t.Fatal(err)
	}
	applyArgs := []string{"apply", "--yes", "--no-nftables", "--no-provision"}

	out, errOut, code := anklume(t, dir, applyArgs...)
	if code != 0 || !strings.HasSuffix(out, "Apply complete: 9 created, 0 updated, 0 deleted.\n") {
		t.Fatalf("first apply: exit %d\n%s\n%s", code, out, errOut)
	}
	for p, names := range map[string][]string{"ap-admin": {"ap-a1", "ap-a2"}, "ap-work": {"ap-w1"}} {
		live := instances(t, p)
		for _, n := range names {
			if live[n].Status != "Running" || live[n].Config["user.anklume.infra"] != "e2e-apply" {
				t.Errorf("%s/%s: %s %v", p, n, live[n].Status, live[n].Config)
			}
		}
	}
	if ip := eth0IPv4(t, "ap-admin", "ap-a1"); ip != "10.200.37.11" {
		t.Errorf("ap-a1 leased %s, want its reservation 10.200.37.11", ip)
	}
	for file, want := range map[string]string{"absolute_level": "1", "relative_level": "1", "vm_nested": "false", "yolo": "false"} {
		got := mustRun(t, "", "incus", "file", "pull", "--project", "ap-work", "ap-w1/etc/anklume/"+file, "-")
		if got != want+"\n" {
			t.Errorf("/etc/anklume/%s = %q, want %q", file, got, want+"\n")
		}
	}

	noChanges := func(step string) {
		t.Helper()
		if _, _, code := anklume(t, dir, "plan", "--help"); code == 0 {
			out, errOut, code := anklume(t, dir, "plan", "--detailed-exitcode")
			if code != 0 || !strings.HasSuffix(out, "No changes. Incus matches the configuration.\n") {
				t.Errorf("%s: plan exit %d\n%s\n%s", step, code, out, errOut)
			}
			return
		}
		out, errOut, code := anklume(t, dir, applyArgs...)
		if code != 0 || out != "No changes. Incus matches the configuration.\nApply complete: 0 created, 0 updated, 0 deleted.\n" {
			t.Errorf("%s: second apply exit %d\n%s\n%s", step, code, out, errOut)
		}
	}
	noChanges("after the first apply")

	// Drift (#58): limits.memory changed by hand; a hand-added user.foo
	// never appears.
	mustRun(t, "", "incus", "config", "set", "--project", "ap-admin", "ap-a1", "limits.memory=256MiB", "user.foo=bar")
	out, errOut, code = anklume(t, dir, applyArgs...)
	if code != 0 || !strings.Contains(out, "~ instance ap-admin/ap-a1") || strings.Contains(out, "user.foo") {
		t.Errorf("drift apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := instances(t, "ap-admin")["ap-a1"].Config; got["limits.memory"] != "512MiB" || got["user.foo"] != "bar" {
		t.Errorf("after drift apply: limits.memory=%q user.foo=%q", got["limits.memory"], got["user.foo"])
	}
	noChanges("after the drift fix")

	// Drift of a bridge and of a project: a key flipped by hand is seen
	// and put back.
	hand := func(kind, name, key, a, b, want string) {
		t.Helper()
		cur := strings.TrimSpace(mustRun(t, "", "incus", kind, "get", name, key))
		flip := map[string]string{a: b}[cur]
		if flip == "" {
			flip = a
		}
		mustRun(t, "", "incus", kind, "set", name, key+"="+flip)
		out, errOut, code := anklume(t, dir, applyArgs...)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("%s drift apply: exit %d\n%s\n%s", kind, code, out, errOut)
		}
		if got := strings.TrimSpace(mustRun(t, "", "incus", kind, "get", name, key)); got != cur {
			t.Errorf("after %s drift apply: %s=%q, want %q", kind, key, got, cur)
		}
		noChanges("after the " + kind + " drift fix")
	}
	hand("network", "net-ap-admin", "ipv4.nat", "true", "false", "~ network net-ap-admin")
	hand("project", "ap-admin", "restricted.snapshots", "allow", "block", "~ project ap-admin")

	// Orphan (#60): a removed unprotected machine is deleted.
	if err := os.WriteFile(psot, []byte(strings.Replace(applyPSOT, "      ap-a2: {}\n", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = anklume(t, dir, applyArgs...)
	if code != 0 || !strings.Contains(out, "- instance ap-admin/ap-a2: done (") {
		t.Errorf("orphan apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, ok := instances(t, "ap-admin")["ap-a2"]; ok {
		t.Error("ap-a2 not deleted")
	}
	noChanges("after the orphan removal")

	// Lock (#61): a fresh lock of another host makes apply fail at once.
	now := time.Now().UTC().Format(time.RFC3339)
	mustRun(t, "", "incus", "project", "create", "anklume-lock", "-c", "features.profiles=false", "-c", "features.images=false",
		"-c", "user.anklume.lock.id=0123456789abcdef0123456789abcdef", "-c", "user.anklume.lock.owner=bob@elsewhere:42",
		"-c", "user.anklume.lock.command=apply", "-c", "user.anklume.lock.acquired="+now, "-c", "user.anklume.lock.heartbeat="+now)
	out, errOut, code = anklume(t, dir, applyArgs...)
	if got, _ := exec.Command("incus", "project", "get", "anklume-lock", "user.anklume.lock.owner").Output(); strings.TrimSpace(string(got)) != "bob@elsewhere:42" {
		t.Errorf("the held lock was changed: owner %q", got)
	}
	_ = exec.Command("incus", "project", "delete", "anklume-lock").Run()
	want := "error: another anklume run holds the lock on this Incus server (bob@elsewhere:42, apply, since " + now +
		"); retry later, or run anklume unlock if it is stale\n"
	if code != 1 || !strings.HasSuffix(errOut, want) || out != "" {
		t.Errorf("locked apply: exit %d\nstdout %q\nstderr %q\nwant %q", code, out, errOut, want)
	}
}
