package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// aiPSOT is the live AI switch scenario: ai-a (10.210.52), ai-b
// (10.210.53) and ai-tools (10.220.54), one container each, exclusive AI
// access held by ai-a at first. Projects ai-a, ai-b and ai-tools, bridges
// net-ai-a, net-ai-b and net-ai-tools; egress off.
func aiPSOT(infra string) string {
	return `format_version: 1
project_name: ` + infra + `
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: images:debian/13
  ai_access_policy: exclusive
  ai_access_default: ai-a
domains:
  ai-a:
    trust_level: trusted
    subnet_id: 52
    egress: false
    ephemeral: true
    machines:
      ai-a1: {}
  ai-b:
    trust_level: trusted
    subnet_id: 53
    egress: false
    ephemeral: true
    machines:
      ai-b1: {}
  ai-tools:
    trust_level: semi-trusted
    subnet_id: 54
    egress: false
    ephemeral: true
    machines:
      ai-t1: {}
`
}

func aiCleanup() {
	cleanupDomains([]string{"ai-a", "ai-b", "ai-tools"})
}

// aiSwitchScript mirrors the three domains in the private network
// namespace unshare made (bridges as anklume names and addresses them, a
// netns per machine), loads the rules with nftables deploy, checks who
// reaches ai-tools, runs `ai switch ai-b` (which talks to the live Incus
// through its unix socket and loads the rules here), and checks again.
const aiSwitchScript = `set -eu
T="$1"; BIN="$2"; HELPER="$3"
mount -t tmpfs tmpfs /run
ip link set lo up
echo 1 > /proc/sys/net/ipv4/ip_forward
mkbridge() { ip link add "$1" type bridge; ip addr add "$2" dev "$1"; ip link set "$1" up; }
mkbridge net-ai-a 10.210.52.254/24
mkbridge net-ai-b 10.210.53.254/24
mkbridge net-ai-tools 10.220.54.254/24
n=0
machine() {
	n=$((n+1))
	ip netns add "$1"
	ip link add "port$n" type veth peer name eth0 netns "$1"
	ip link set "port$n" master "$2" up
	ip -n "$1" link set lo up
	ip -n "$1" addr add "$3/24" dev eth0
	ip -n "$1" link set eth0 up
	ip -n "$1" route add default via "$4"
}
machine ai-a1 net-ai-a 10.210.52.1 10.210.52.254
machine ai-b1 net-ai-b 10.210.53.1 10.210.53.254
machine ai-t1 net-ai-tools 10.220.54.1 10.220.54.254
pids=""
stop() {
	set +e # a namespace without processes makes kill fail; that is no error
	kill $pids 2>/dev/null
	for ns in $(ip netns list | cut -d' ' -f1); do kill $(ip netns pids "$ns") 2>/dev/null; done
	true
}
trap stop EXIT
run() { ANKLUME_NFT_HELPER="$2" exec ip netns exec "$1" "$HELPER" -test.run='^TestNftTrafficHelper$'; }
(run ai-t1 "serve $T/ready ai-t1 0.0.0.0:80") & pids="$pids $!"
i=0
while [ ! -e "$T/ready" ]; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done
check() {
	if out=$(run "$2" "dial 10.220.54.1:80" 2>&1); then echo "$1 ok $out"; else echo "$1 blocked $out"; fi
}
"$BIN" nftables deploy --no-persist >/dev/null
check before-a ai-a1
check before-b ai-b1
"$BIN" ai switch ai-b --no-persist
check after-a ai-a1
check after-b ai-b1
`

// TestAISwitchLive: the switch on the live daemon and real packets: before
// it ai-a reaches ai-tools and ai-b does not, after it the reverse; plan
// is then empty; the switch rewrote the synced tree, so
// ansible-playbook site.yml keeps ai-b on the projects and plan stays
// empty; import round-trips (plan of the imported file is empty) and ai
// status names ai-b.
func TestAISwitchLive(t *testing.T) {
	needIncus(t)
	needRoot(t, "unshare", "nft", "ip", "mount")
	needTools(t, "ansible-playbook")
	aiCleanup()
	t.Cleanup(aiCleanup)
	infra := scName(t, "ai")
	dir := nftPSOT(t, aiPSOT(infra))
	bin := binary(t)
	out, errOut, code := scApply(t, dir, "--no-nftables") // retries while another run holds the Incus lock
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code = runAnklume(t, bin, dir, nil, "sync"); code != 0 {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
	}
	helper, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, errOut = nftScript(t, dir, []string{"-mn"}, aiSwitchScript, t.TempDir(), bin, helper)
	for _, want := range []string{
		"before-a ok hello from ai-t1", "ai switch: the access to ai-tools moved from ai-a to ai-b (0 GPU instances restarted)",
		"after-b ok hello from ai-t1",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in:\n%s\n%s", want, out, errOut)
		}
	}
	for _, blocked := range []string{"before-b", "after-a"} {
		if !strings.Contains(out, blocked+" blocked ") || !strings.Contains(out[strings.Index(out, blocked):], "timeout") {
			t.Errorf("%s: want a drop (timeout):\n%s", blocked, out)
		}
	}
	scPlanEmpty(t, dir, "after ai switch")
	// The switch rewrote the tree: ansible-playbook site.yml keeps it.
	rs, _ := os.ReadFile(filepath.Join(dir, "nftables", "anklume-isolation.nft"))
	desired, _ := os.ReadFile(filepath.Join(dir, "incus", "desired-state.yml"))
	if !strings.Contains(string(rs), "AI access: ai-b -> ai-tools") || strings.Contains(string(rs), "AI access: ai-a -> ai-tools") ||
		strings.Count(string(desired), "user.anklume.ai_access_holder: ai-b") != 3 {
		t.Errorf("tree after the switch:\n%s\n%s", rs, desired)
	}
	playbook(t, dir)
	for _, p := range []string{"ai-a", "ai-b", "ai-tools"} {
		if h := strings.TrimSpace(mustRun(t, "", "incus", "project", "get", p, "user.anklume.ai_access_holder")); h != "ai-b" {
			t.Errorf("project %s after ansible-playbook: holder %q, want ai-b", p, h)
		}
	}
	scPlanEmpty(t, dir, "after ansible-playbook")
	out, errOut, code = runAnklume(t, bin, dir, nil, "ai", "status")
	if code != 0 || !strings.Contains(out, "holder: ai-b (moved by anklume ai switch; ai_access_default is ai-a)") {
		t.Errorf("ai status: exit %d %q %q", code, out, errOut)
	}
	imported := filepath.Join(t.TempDir(), "imported.yml")
	if out, errOut, code = runAnklume(t, bin, dir, nil, "import", "-o", imported); code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = runAnklume(t, bin, dir, nil, "-f", imported, "plan", "--detailed-exitcode")
	if code != 0 || !strings.HasSuffix(out, "No changes. Incus matches the configuration.\n") {
		t.Errorf("plan of the imported file: exit %d\n%s\n%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(imported); !strings.Contains(string(b), "ai_access_default: ai-a") {
		t.Errorf("imported file lacks the AI settings:\n%s", b)
	}
}
