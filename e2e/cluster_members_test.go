package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The members play of site.yml (`anklume apply --deploy-members`) reaches
// every cluster member over SSH at the address the cluster lists for it,
// as on real machines. On the test cluster each member gets, for one test,
// an sshd of its own (memberHosts):
//   - in the member's network namespace, listening only on its underlay
//     address (198.18.116.1N:22): the host's namespace has no route there,
//     so nothing but the other members' namespaces reaches it, and no
//     packet leaves the machine;
//   - in a mount namespace of its own, with a private /etc (an overlay
//     whose writes land in <dir>/<member>/upper) and an empty /run: what
//     the members play persists on a "member" (/etc/nftables.d, the file it
//     copies to /run) stays that member's and never touches this machine's
//     /etc; there is no /run/systemd/system, so no unit is enabled;
//   - root login with a throwaway key made for the test, host keys made for
//     the test, no password, no PAM.
// The controller (anklume apply and the ansible-playbook it runs) runs the
// same way in m1's network namespace, as on a member of the cluster, with
// its own private /etc and /run.

// memberHosts is the SSH side of the test cluster for one test.
type memberHosts struct {
	dir string   // the key, the sshd configs and each member's /etc upper dir
	env []string // ansible's connection settings for the members
}

// startMemberHosts starts an sshd in each member's namespaces and stops
// them when the test ends.
func startMemberHosts(t *testing.T) *memberHosts {
	t.Helper()
	needRoot(t, "ssh", "ssh-keygen", "/usr/sbin/sshd", "unshare", "nsenter", "mount")
	h := &memberHosts{dir: t.TempDir()}
	key := filepath.Join(h.dir, "key")
	mustRun(t, "", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "anklume-e2e", "-f", key)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, m := range []string{"m1", "m2", "m3"} {
		pid, err := memberNetns(m)
		if err != nil {
			t.Fatal(err)
		}
		md := filepath.Join(h.dir, m)
		for _, d := range []string{"upper", "work"} {
			if err := os.MkdirAll(filepath.Join(md, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		mustRun(t, "", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", m, "-f", filepath.Join(md, "host_key"))
		cfg := strings.Join([]string{
			"ListenAddress " + memberAddr(i) + ":22",
			"HostKey " + filepath.Join(md, "host_key"),
			"AuthorizedKeysFile " + filepath.Join(h.dir, "authorized_keys"),
			"PermitRootLogin prohibit-password",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"UsePAM no",
			"StrictModes no", // the key lives under /tmp, which is world-writable
			"PidFile none",
			"Subsystem sftp internal-sftp",
		}, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(md, "sshd_config"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("nsenter", "-n", "-m", "-t", pid, "unshare", "-m", "--propagation", "private",
			"sh", "-ec", privateEtcRun+`exec /usr/sbin/sshd -D -e -f "$1/sshd_config"`, "sh", md)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		log, err := os.Create(filepath.Join(md, "sshd.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			_ = cmd.Wait()
			log.Close()
		})
		// Wait until it listens.
		deadline := time.Now().Add(20 * time.Second)
		for {
			b, _ := os.ReadFile(filepath.Join(md, "sshd.log"))
			if strings.Contains(string(b), "Server listening on") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sshd of %s does not listen:\n%s", m, b)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	h.env = []string{
		"ANSIBLE_REMOTE_USER=root",
		"ANSIBLE_PRIVATE_KEY_FILE=" + key,
		// One shared connection per member (Ansible's usual setting; the
		// masters end with the sshds when the test ends) and pipelining:
		// without them every task opens a new SSH session, minutes on a
		// loaded machine. The host keys made for this test are not kept.
		"ANSIBLE_SSH_ARGS=-C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=10",
		"ANSIBLE_PIPELINING=True",
		"ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3",
	}
	return h
}

// privateEtcRun gives the shell it starts a private /etc (an overlay
// whose writes land in $1/upper) and an empty /run.
const privateEtcRun = `mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/upper,workdir=$1/work" /etc
mount -t tmpfs tmpfs /run
mkdir -m 0755 /run/sshd
`

// memberAddr is the underlay address of member i (0-based: m1 is .11),
// as scripts/cluster-lib.sh gives it.
func memberAddr(i int) string {
	underlay := os.Getenv("ANKLUME_CLUSTER_UNDERLAY")
	if underlay == "" {
		underlay = "198.18.116"
	}
	return fmt.Sprintf("%s.1%d", underlay, i+1)
}

// controller runs anklume args in m1's network namespace with a private
// /etc and /run (below dir/controller), in base directory base, with the
// members' SSH settings, and returns its combined output and exit code.
func (h *memberHosts) controller(t *testing.T, base string, args ...string) (string, int) {
	t.Helper()
	pid, err := memberNetns("m1")
	if err != nil {
		t.Fatal(err)
	}
	cd := filepath.Join(h.dir, "controller")
	for _, d := range []string{"upper", "work"} {
		if err := os.MkdirAll(filepath.Join(cd, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	argv := append([]string{"-n", "-t", pid, "unshare", "-m", "--propagation", "private",
		"sh", "-ec", privateEtcRun + `shift; exec "$@"`, "sh", cd, binary(t)}, args...)
	cmd := exec.Command("nsenter", argv...)
	cmd.Dir = base
	cmd.Env = append(ansibleEnv(base), "ANKLUME_IMAGE_MAP=images:debian/13="+testImage,
		"ANKLUME_CONTEXT_DIR="+t.TempDir(), "ANKLUME_HOST_RESOURCES=cpu=10,memory=40GiB",
		"ANKLUME_SKIP_HOST_SUBNET_CHECK=1")
	cmd.Env = append(cmd.Env, h.env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// clusterMembersPSOT: one domain on m1 by name, one through the group
// lab; names start with "cl" (LXC cgroups are named host-wide).
const clusterMembersPSOT = `format_version: 1
project_name: e2e-cluster-members
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: images:debian/13
domains:
  cld-a:
    trust_level: trusted
    subnet_id: 88
    egress: false
    ephemeral: true
    target: m1
    machines:
      cld-a1: {}
  cld-b:
    trust_level: trusted
    subnet_id: 89
    egress: false
    ephemeral: true
    target: "@lab"
    machines:
      cld-b1: {}
`

var clusterMembersDomains = []string{"cld-a", "cld-b"}

// stopSSHMasters ends the shared SSH connections Ansible left open
// (ControlPersist) under base's ~/.ansible/cp (HOME is base).
func stopSSHMasters(base string) {
	socks, _ := filepath.Glob(filepath.Join(base, ".ansible", "cp", "*"))
	for _, s := range socks {
		_ = exec.Command("ssh", "-o", "ControlPath="+s, "-O", "exit", "member").Run()
	}
}

// memberRecap matches the PLAY RECAP line of one host.
func memberRecap(host string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + host + `\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)
}

// memberTable lists table inet anklume in member m's network namespace,
// with -a (rule handles: a reload changes them) when handles is true.
func memberTable(t *testing.T, m string, handles bool) string {
	t.Helper()
	pid, err := memberNetns(m)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-n", "-t", pid, "nft", "list", "table", "inet", "anklume"}
	if handles {
		args = []string{"-n", "-t", pid, "nft", "-a", "list", "table", "inet", "anklume"}
	}
	out, err := exec.Command("nsenter", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table inet anklume in %s's namespace: %v\n%s", m, err, out)
	}
	return string(out)
}

// TestClusterDeployMembersLive runs `anklume apply --deploy-members` on a
// member of the real 3-member cluster (m1's namespace), the members
// reached over SSH at the addresses the cluster lists: the members play
// runs on every member (m1, m2, m3, none unreachable or failed) and loads
// in each member's network namespace exactly the table the generated
// ruleset gives when loaded alone, and persists the ruleset on each member
// (in that member's private /etc); a second apply --deploy-members: the
// members play changes nothing on any member (changed=0) and m2's and
// m3's tables keep their rule handles (not reloaded); m1's, reloaded by
// apply's own nftables step, has the same content.
func TestClusterDeployMembersLive(t *testing.T) {
	useCluster(t)
	needTools(t, "ansible-playbook", "nft")
	members := []string{"m1", "m2", "m3"}
	dropTables := func() {
		for _, m := range members {
			if pid, err := memberNetns(m); err == nil {
				_ = exec.Command("nsenter", "-n", "-t", pid, "nft", "delete", "table", "inet", "anklume").Run()
			}
		}
	}
	cleanupDomains(clusterMembersDomains)
	dropTables()
	t.Cleanup(func() {
		cleanupDomains(clusterMembersDomains)
		dropTables()
	})
	h := startMemberHosts(t)
	dir := t.TempDir()
	t.Cleanup(func() { stopSSHMasters(dir) })
	if err := os.WriteFile(filepath.Join(dir, "infra.yml"), []byte(clusterMembersPSOT), 0o644); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	out, code := h.controller(t, dir, "apply", "--yes", "--deploy-members", "--no-provision")
	took := time.Since(start)
	if code != 0 {
		t.Fatalf("apply --deploy-members: exit %d\n%s", code, out)
	}
	t.Logf("apply --deploy-members on the cluster (2 domains, 2 instances, ruleset on 3 members): %s", took.Round(10*time.Millisecond))
	for _, m := range members {
		r := memberRecap(m).FindStringSubmatch(out)
		if r == nil || r[3] != "0" || r[4] != "0" {
			t.Errorf("members play on %s: recap %q\n%s", m, r, out)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The table the ruleset gives alone, in a throwaway namespace.
	file := filepath.Join(dir, "nftables", "anklume-isolation.nft")
	want, err := exec.Command("unshare", "-n", "sh", "-ec", `nft -f "$1"; nft list table inet anklume`, "sh", file).CombinedOutput()
	if err != nil {
		t.Fatalf("loading the ruleset alone: %v\n%s", err, want)
	}
	if !strings.Contains(string(want), `comment "anklume infra=e2e-cluster-members"`) {
		t.Fatalf("the reference table is not this infrastructure's:\n%s", want)
	}
	rendered, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	handles := map[string]string{}
	for _, m := range members {
		if got := memberTable(t, m, false); got != string(want) {
			t.Errorf("table inet anklume in %s's namespace:\n%s\nwant (the ruleset loaded alone):\n%s", m, got, want)
		}
		handles[m] = memberTable(t, m, true)
		persisted, err := os.ReadFile(filepath.Join(h.dir, m, "upper", "nftables.d", "anklume-isolation.nft"))
		if err != nil || string(persisted) != string(rendered) {
			t.Errorf("ruleset persisted on %s (its private /etc): %v\n%s", m, err, persisted)
		}
	}
	if _, err := os.Stat("/etc/nftables.d/anklume-isolation.nft"); err == nil {
		if b, _ := os.ReadFile("/etc/nftables.d/anklume-isolation.nft"); strings.Contains(string(b), "e2e-cluster-members") {
			t.Errorf("the ruleset was persisted in this machine's /etc")
		}
	}

	// A second run: the members play changes nothing on any member and
	// reloads no table. On m1, where apply runs, apply's own nftables
	// step (nftables deploy, which always loads the file as one
	// transaction) loads the same table again: same content, new handles.
	start = time.Now()
	out, code = h.controller(t, dir, "apply", "--yes", "--deploy-members", "--no-provision")
	if code != 0 {
		t.Fatalf("second apply --deploy-members: exit %d\n%s", code, out)
	}
	t.Logf("second apply --deploy-members (nothing to change): %s", time.Since(start).Round(10*time.Millisecond))
	for _, m := range members {
		r := memberRecap(m).FindStringSubmatch(out)
		if r == nil || r[2] != "0" || r[3] != "0" || r[4] != "0" {
			t.Errorf("second members play on %s: recap %q, want changed=0\n%s", m, r, out)
		}
		if m == "m1" {
			if got := memberTable(t, m, false); got != string(want) {
				t.Errorf("after the second run, table inet anklume in m1's namespace:\n%s\nwant:\n%s", got, want)
			}
		} else if got := memberTable(t, m, true); got != handles[m] {
			t.Errorf("the second run reloaded the table in %s's namespace:\n%s\nbefore:\n%s", m, got, handles[m])
		}
	}
}
