package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The live verify test uses its own namespace: projects vf-a, vf-b and
// vf-c, bridges net-vf-a (10.200.70.0/24), net-vf-b (10.210.71.0/24) and
// net-vf-c (10.250.72.0/24, air-gapped), infrastructures named
// vf-<random>.

// vfPSOT: three domains of two busybox containers, a domain policy on
// TCP, a machine policy on UDP, a bidirectional policy and one to the
// host.
func vfPSOT(infra string) string {
	return `format_version: 1
project_name: ` + infra + `
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: images:debian/13
domains:
  vf-a:
    trust_level: admin
    subnet_id: 70
    machines:
      vf-a-1: {ip: 10.200.70.11}
      vf-a-2: {ip: 10.200.70.12}
  vf-b:
    trust_level: trusted
    subnet_id: 71
    egress: false
    machines:
      vf-b-1: {ip: 10.210.71.11}
      vf-b-2: {ip: 10.210.71.12}
  vf-c:
    trust_level: disposable
    subnet_id: 72
    egress: false
    machines:
      vf-c-1: {ip: 10.250.72.11}
      vf-c-2: {ip: 10.250.72.12}
network_policies:
  - {description: "a to b web", from: vf-a, to: vf-b, ports: [8080]}
  - {description: "a-1 to c-1 mdns", from: vf-a-1, to: vf-c-1, protocol: udp, ports: [5353]}
  - {description: "b and c talk", from: vf-b-2, to: vf-c-2, ports: [9000], bidirectional: true}
  - {description: "c-2 apt cache", from: vf-c-2, to: host, ports: [3142]}
`
}

// vfLeftover matches the table comment of any verify test infrastructure.
var vfLeftover = regexp.MustCompile(`anklume infra=vf-[0-9a-f]{8}"`)

// vfCleanup deletes the vf- projects, instances and bridges, and the host
// table when it belongs to infra (any vf- infrastructure with infra "").
func vfCleanup(infra string) {
	cleanupDomains([]string{"vf-a", "vf-b", "vf-c"})
	dropHostTable(tableOf(infra, vfLeftover))
}

// vfVerify runs anklume verify and returns stdout, stderr and the exit
// code.
func vfVerify(t *testing.T, dir, stateDir string, args ...string) (string, string, int) {
	t.Helper()
	return runAnklume(t, binary(t), dir, []string{"ANKLUME_STATE_DIR=" + stateDir}, append([]string{"verify"}, args...)...)
}

// needBridgeNetfilter skips t unless bridge netfilter is on: without it
// the forward chain never sees bridged traffic, and verify rightly fails.
func needBridgeNetfilter(t *testing.T) {
	t.Helper()
	const nfIPT = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	if b, err := os.ReadFile(nfIPT); err != nil || strings.TrimSpace(string(b)) != "1" {
		skip(t, "bridge netfilter is not on (modprobe br_netfilter; sysctl -w net.bridge.bridge-nf-call-iptables=1; .ci/run does it)")
	}
}

// refuseForeignTable fails t when the host's table inet anklume belongs
// to an infrastructure that leftover (the test's own earlier runs) does
// not match: a live test never replaces another one's table.
func refuseForeignTable(t *testing.T, leftover *regexp.Regexp) {
	t.Helper()
	if out, err := exec.Command("nft", "list", "table", "inet", "anklume").CombinedOutput(); err == nil && !leftover.Match(out) {
		t.Fatalf("a table inet anklume of another infrastructure is loaded on this host; refusing to replace it:\n%s", firstLine(out))
	}
}

// nftHandle returns the handle of the first rule of chain whose text
// contains frag.
func nftHandle(t *testing.T, chain, frag string) string {
	t.Helper()
	out := mustRun(t, "", "nft", "-a", "list", "chain", "inet", "anklume", chain)
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, frag) {
			if i := strings.LastIndex(l, "# handle "); i >= 0 {
				return strings.TrimSpace(l[i+len("# handle "):])
			}
		}
	}
	t.Fatalf("no rule with %q in chain %s:\n%s", frag, chain, out)
	return ""
}

// TestVerifyLive: on an applied three-domain infrastructure with policies
// and listeners on the policy ports, verify reports no mismatch and
// records its result for status; then each break of the isolation makes
// it name the break and exit 1, and the host is restored after each one.
func TestVerifyLive(t *testing.T) {
	needIncus(t)
	needRoot(t, "nft", "ip", "sysctl")
	needBridgeNetfilter(t)
	refuseForeignTable(t, vfLeftover)
	infra := scName(t, "vf")
	vfCleanup("")
	t.Cleanup(func() { vfCleanup(infra) })
	dir := writePSOT(t, vfPSOT(infra))
	state := t.TempDir()

	out, errOut, code := scApply(t, dir)
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, m := range []struct{ project, name string }{
		{"vf-a", "vf-a-1"}, {"vf-a", "vf-a-2"}, {"vf-b", "vf-b-1"}, {"vf-b", "vf-b-2"}, {"vf-c", "vf-c-1"}, {"vf-c", "vf-c-2"},
	} {
		eth0IPv4(t, m.project, m.name)
	}
	// Listeners on the TCP policy ports (a refusal counts as reachable
	// too; these make the probes see an accept).
	for _, l := range []struct{ project, name, port string }{
		{"vf-b", "vf-b-1", "8080"}, {"vf-b", "vf-b-2", "8080"}, {"vf-c", "vf-c-2", "9000"}, {"vf-b", "vf-b-2", "9000"},
	} {
		mustRun(t, "", "incus", "exec", "--project", l.project, l.name, "--", "sh", "-c",
			"nohup nc -lk -p "+l.port+" </dev/null >/dev/null 2>&1 &")
	}

	// Nothing a probe sends leaves this machine: a counter on the host's
	// postrouting hook counts every packet from the test subnets that
	// goes out on an interface other than the three bridges and the
	// outside namespace's veth (ankv*), for the whole intact run.
	const leak = "vftest_leak"
	_ = exec.Command("nft", "delete", "table", "ip", leak).Run()
	mustRun(t, "table ip "+leak+` {
	chain post {
		type filter hook postrouting priority 0; policy accept;
		ip saddr { 10.200.70.0/24, 10.210.71.0/24, 10.250.72.0/24 } oifname != { "net-vf-a", "net-vf-b", "net-vf-c" } oifname != "ankv*" counter
	}
}`, "nft", "-f", "-")
	t.Cleanup(func() { _ = exec.Command("nft", "delete", "table", "ip", leak).Run() })

	start := time.Now()
	out, errOut, code = vfVerify(t, dir, state, "-v")
	t.Logf("verify of 6 machines: %s\n%s", time.Since(start).Round(time.Millisecond), lastLine(out))
	if code != 0 || !strings.Contains(out, " 0 mismatches") || strings.Contains(out, "MISMATCH") || strings.Contains(out, "FAIL") {
		t.Fatalf("verify on the intact infrastructure: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"ok       vf-a-1 -> vf-b-1 (10.210.71.11) tcp/8080: expected allow by policy #1",
		"ok       vf-a-1 -> vf-c-1 (10.250.72.11) udp/5353: expected allow by policy #2",
		"ok       vf-c-2 -> vf-b-2 (10.210.71.12) tcp/9000: expected allow by policy #3",
		"ok       vf-c-2 -> host (10.250.72.254) tcp/3142: expected allow by policy #4",
		"ok       vf-b-1 -> vf-a-1 (10.200.70.11) tcp/9: expected deny by cross-domain drop",
		"-> outside tcp/9: expected deny by domain vf-c is air-gapped",
		"-> outside tcp/9: expected allow by domain vf-a has egress",
		"icmp: expected allow by same domain",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify -v lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("verify -v:\n%s", out)
	}
	// verify --json: the same run as one document a program can read.
	doc := vfJSON(t, dir, state, 0)
	if !doc.OK || doc.Mismatches != 0 || doc.Probes == 0 || doc.Probes != len(doc.Results) || doc.Infra != infra || len(doc.Checks) < 4 {
		t.Errorf("verify --json on the intact infrastructure: %+v", doc)
	}
	seen := map[string]bool{}
	for _, r := range doc.Results {
		if r.Mismatch || !(r.Outcome == "accepted" || r.Outcome == "refused" || r.Outcome == "timeout" || r.Outcome == "unreachable") {
			t.Errorf("result %+v", r)
		}
		seen[r.FromDomain+">"+r.ToDomain+" "+r.Expected.Verdict] = true
		if r.From == "vf-a-1" && r.To == "vf-c-1" && r.Proto == "udp" && r.Port == 5353 {
			seen["policy 2"] = r.Expected.Reason.Policy == 2 && r.Expected.Reason.Kind == "policy" && (r.Outcome == "accepted" || r.Outcome == "refused")
		}
	}
	for _, want := range []string{"vf-a>vf-a allow", "vf-b>vf-a deny", "vf-a>vf-b allow", "vf-c>outside deny", "vf-a>outside allow", "vf-c>host allow", "policy 2"} {
		if !seen[want] {
			t.Errorf("verify --json has no result %q: %v", want, seen)
		}
	}

	// The dashboard draws the matrix with the cells this run proved.
	dom, _ := vfDashboard(t, dir, state, "")
	for _, want := range []string{
		`data-from="vf-a" data-to="vf-a" data-verdict="allow" data-proof="proven"`,
		`data-from="vf-a" data-to="vf-b" data-verdict="partial" data-proof="proven"`,
		`data-from="vf-b" data-to="vf-a" data-verdict="deny" data-proof="proven"`,
		`data-from="vf-c" data-to="outside" data-verdict="deny" data-proof="proven"`,
		`data-from="vf-a" data-to="outside" data-verdict="allow" data-proof="proven"`,
		`class="verify verify-ok" id="verify-summary">last verify on this host at `,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("dashboard DOM lacks %s", want)
		}
	}
	if strings.Contains(dom, `data-proof="mismatch"`) || strings.Count(dom, `<td class="cell `) != 3*5 {
		t.Errorf("dashboard matrix after a clean verify:\n%s", dom)
	}

	if o := mustRun(t, "", "nft", "list", "table", "ip", leak); !strings.Contains(o, "counter packets 0 bytes 0") {
		t.Errorf("probes left the machine:\n%s", o)
	}
	_ = exec.Command("nft", "delete", "table", "ip", leak).Run()

	// The bounds: stderr showed the progress; --limit keeps the pairs
	// that touch vf-c and --pairs cuts the sample; one probe at a time
	// under a budget that is over at once leaves probes not run, which
	// the summary counts apart from the mismatches.
	if !regexp.MustCompile(`(?m)^verify: (\d+)/(\d+) probes$`).MatchString(errOut) {
		t.Errorf("verify printed no progress on stderr: %q", errOut)
	}
	lim := vfJSON(t, dir, state, 0, "--limit", "vf-c", "--pairs", "4")
	if lim.Pairs != 4 || len(lim.Results) == 0 {
		t.Errorf("--limit vf-c --pairs 4: %d pairs, %d results", lim.Pairs, len(lim.Results))
	}
	for _, r := range lim.Results {
		if r.FromDomain != "vf-c" && r.ToDomain != "vf-c" {
			t.Errorf("--limit vf-c probed %s -> %s", r.From, r.To)
		}
	}
	out, errOut, code = vfVerify(t, dir, state, "-j", "1", "--budget", "1ns")
	if code != 0 || !regexp.MustCompile(`, 0 mismatches, [1-9]\d* not run \(time budget\) in `).MatchString(out) {
		t.Errorf("verify with no time budget: exit %d\n%s\n%s", code, out, errOut)
	}

	st, _, _ := runAnklume(t, binary(t), dir, []string{"ANKLUME_STATE_DIR=" + state}, "status")
	if !regexp.MustCompile(`(?m)^verify: ok \(\d+ probes\) at 20\d\d-`).MatchString(st) {
		t.Errorf("status does not show the last verify:\n%s", st)
	}

	redeploy := func(t *testing.T) {
		t.Helper()
		if o, e, c := runAnklume(t, binary(t), dir, nil, "nftables", "deploy", "--no-persist"); c != 0 {
			t.Fatalf("restoring the table: exit %d\n%s\n%s", c, o, e)
		}
	}
	breaks := []struct {
		name    string
		brk     func(t *testing.T)
		restore func(t *testing.T)
		want    []string
	}{
		{
			name:    "table deleted",
			brk:     func(t *testing.T) { mustRun(t, "", "nft", "delete", "table", "inet", "anklume") },
			restore: redeploy,
			want: []string{"FAIL table inet anklume loaded and identical to the PSOT: nftables: not loaded",
				"MISMATCH vf-b-1 -> vf-a-1 (10.200.70.11) tcp/9: expected deny by cross-domain drop"},
		},
		{
			name: "policy rule removed",
			brk: func(t *testing.T) {
				mustRun(t, "", "nft", "delete", "rule", "inet", "anklume", "isolation", "handle", nftHandle(t, "isolation", "tcp dport 8080 accept"))
			},
			restore: redeploy,
			want: []string{"FAIL table inet anklume loaded and identical to the PSOT: nftables: drift",
				`MISMATCH vf-a-1 -> vf-b-1 (10.210.71.11) tcp/8080: expected allow by policy #1 (vf-a -> vf-b) "a to b web" at infra.yml:`},
		},
		{
			name:    "bridge netfilter off",
			brk:     func(t *testing.T) { mustRun(t, "", "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0") },
			restore: func(t *testing.T) { mustRun(t, "", "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1") },
			want:    []string{"FAIL net.bridge.bridge-nf-call-iptables = 1: is 0"},
		},
		{
			name: "extra accept rule",
			brk: func(t *testing.T) {
				mustRun(t, "", "nft", "insert", "rule", "inet", "anklume", "isolation", `iifname "net-vf-c" oifname "net-vf-a" accept`)
			},
			restore: redeploy,
			want: []string{"FAIL table inet anklume loaded and identical to the PSOT: nftables: drift",
				"MISMATCH vf-c-1 -> vf-a-1 (10.200.70.11) tcp/9: expected deny by cross-domain drop: no policy opens vf-c -> vf-a; got refused"},
		},
		{
			name: "nic filter off",
			brk: func(t *testing.T) {
				mustRun(t, "", "incus", "config", "device", "set", "--project", "vf-a", "vf-a-2", "eth0", "security.ipv4_filtering=false")
			},
			restore: func(t *testing.T) {
				mustRun(t, "", "incus", "config", "device", "set", "--project", "vf-a", "vf-a-2", "eth0", "security.ipv4_filtering=true")
			},
			want: []string{"FAIL anti-spoofing filters on every nic: vf-a/vf-a-2 eth0 lacks security.ipv4_filtering"},
		},
		{
			name: "nic moved to another domain's bridge",
			// The project only allows its own bridge: the break lifts
			// that restriction first, as someone doing it by hand would.
			brk: func(t *testing.T) {
				mustRun(t, "", "incus", "project", "set", "vf-b", "restricted.networks.access=net-vf-b,net-vf-c")
				mustRun(t, "", "incus", "config", "device", "set", "--project", "vf-b", "vf-b-1", "eth0", "network=net-vf-c", "ipv4.address=")
			},
			restore: func(t *testing.T) {
				mustRun(t, "", "incus", "config", "device", "set", "--project", "vf-b", "vf-b-1", "eth0", "network=net-vf-b", "ipv4.address=10.210.71.11")
				mustRun(t, "", "incus", "project", "set", "vf-b", "restricted.networks.access=net-vf-b")
				// The guest leased its address on the old nic; a restart
				// leases it again on the restored one.
				mustRun(t, "", "incus", "restart", "--force", "--project", "vf-b", "vf-b-1")
				eth0IPv4(t, "vf-b", "vf-b-1")
			},
			want: []string{"FAIL no nic on another domain's bridge: vf-b/vf-b-1 eth0 is on net-vf-c, the bridge of domain vf-c"},
		},
	}
	for _, b := range breaks {
		t.Run(b.name, func(t *testing.T) {
			b.brk(t)
			defer b.restore(t)
			out, errOut, code := vfVerify(t, dir, state)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, w := range b.want {
				if !strings.Contains(out, w) {
					t.Errorf("verify lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
			}
			if b.name == "policy rule removed" {
				doc := vfJSON(t, dir, state, 1)
				var named bool
				for _, r := range doc.Results {
					named = named || r.Mismatch && r.From == "vf-a-1" && r.To == "vf-b-1" && r.Port == 8080 && r.Outcome == "timeout" &&
						r.Expected.Verdict == "allow" && strings.HasPrefix(r.Expected.Reason.At, "infra.yml:")
				}
				if doc.OK || doc.Mismatches == 0 || !named || doc.Checks[0].OK {
					t.Errorf("verify --json with the policy rule removed: %+v", doc)
				}
				// The dashboard marks the contradicted cell and keeps the
				// others proven.
				dom, shot := vfDashboard(t, dir, state, "anklume-verify-matrix.png")
				for _, want := range []string{
					`data-from="vf-a" data-to="vf-b" data-verdict="partial" data-proof="mismatch"`,
					`data-from="vf-b" data-to="vf-a" data-verdict="deny" data-proof="proven"`,
					`class="verify verify-bad" id="verify-summary">`,
				} {
					if !strings.Contains(dom, want) {
						t.Errorf("dashboard DOM lacks %s", want)
					}
				}
				t.Logf("dashboard screenshot with a mismatch: %s", shot)
			}
		})
	}
	st, _, _ = runAnklume(t, binary(t), dir, []string{"ANKLUME_STATE_DIR=" + state}, "status")
	if !regexp.MustCompile(`(?m)^verify: \d+ mismatches \(\d+ probes\) at 20\d\d-`).MatchString(st) {
		t.Errorf("status does not show the failed verify:\n%s", st)
	}
	if b, err := os.ReadFile(filepath.Join(state, "verify", infra+".json")); err != nil || !strings.Contains(string(b), `"ok":false`) {
		t.Errorf("record: %s (%v)", b, err)
	}
	// Every break was undone: the host is back to the intact state, and
	// apply --verify (nothing to change) proves it.
	out, errOut, code = runAnklume(t, binary(t), dir, []string{"ANKLUME_STATE_DIR=" + state}, scApplyArgs("--verify")...)
	if code != 0 || !strings.Contains(out, "Apply complete: ") || !strings.Contains(out, " 0 mismatches") {
		t.Errorf("apply --verify after the restores: exit %d\n%s\n%s", code, out, errOut)
	}

	// plan compares the new PSOT's matrix with the rules last deployed.
	changed := strings.Replace(vfPSOT(infra), `  - {description: "c-2 apt cache", from: vf-c-2, to: host, ports: [3142]}
`, `  - {description: "b to a ssh", from: vf-b-1, to: vf-a-2, ports: [22]}
`, 1)
	rewritePSOT(t, dir, changed)
	out, errOut, _ = runAnklume(t, binary(t), dir, nil, "plan")
	for _, want := range []string{
		"\nReachability changes (against the rules last deployed on this host):\n",
		"  + vf-b-1 -> vf-a-2 opens tcp/22 (policy #4 (vf-b-1 -> vf-a-2) \"b to a ssh\")\n",
		"  - vf-c-2 -> host closes tcp/3142\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s\n%s", want, out, errOut)
		}
	}
}

// vfDashboard serves the dashboard of dir with the verify record of state,
// opens it in headless Chromium and returns the DOM after the page's
// script ran; with shot != "", it also takes a screenshot of the page,
// tall enough to show the matrix, into the temporary directory and
// returns its path.
func vfDashboard(t *testing.T, dir, state, shot string) (string, string) {
	t.Helper()
	needTools(t, "chromium")
	cmd := scCommand(t, binary(t), dir, []string{"ANKLUME_STATE_DIR=" + state}, "dashboard", "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errBuf strings.Builder
	cmd.Stderr = &errBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	m := regexp.MustCompile(`on (http://127\.0\.0\.1:\d+/) `).FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("dashboard did not start: %q %v %s", line, err, errBuf.String())
	}
	dom := chromium(t, "--virtual-time-budget=5000", "--dump-dom", m[1])
	if shot == "" {
		return dom, ""
	}
	shot = filepath.Join(os.TempDir(), shot)
	chromium(t, "--virtual-time-budget=5000", "--window-size=1400,1500", "--hide-scrollbars", "--screenshot="+shot, m[1])
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10000 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
	return dom, shot
}

// vfDoc is the documented shape of `anklume verify --json`, read as a
// program outside anklume would (its own struct, not the package's).
type vfDoc struct {
	FormatVersion int     `json:"format_version"`
	Infra         string  `json:"infra"`
	Time          string  `json:"time"`
	OK            bool    `json:"ok"`
	Probes        int     `json:"probes"`
	Mismatches    int     `json:"mismatches"`
	Pairs         int     `json:"pairs"`
	NotRun        int     `json:"not_run"`
	Duration      float64 `json:"duration_seconds"`
	Checks        []struct {
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Detail string `json:"detail"`
	} `json:"checks"`
	Results []struct {
		From       string `json:"from"`
		FromDomain string `json:"from_domain"`
		To         string `json:"to"`
		ToDomain   string `json:"to_domain"`
		Kind       string `json:"kind"`
		ToIP       string `json:"to_ip"`
		Proto      string `json:"proto"`
		Port       int    `json:"port"`
		Expected   struct {
			Verdict string `json:"verdict"`
			Reason  struct {
				Kind   string `json:"kind"`
				Text   string `json:"text"`
				Policy int    `json:"policy"`
				At     string `json:"at"`
			} `json:"reason"`
		} `json:"expected"`
		Outcome  string `json:"outcome"`
		Detail   string `json:"detail"`
		Mismatch bool   `json:"mismatch"`
	} `json:"results"`
	NotProbed []struct {
		Machine string `json:"machine"`
		Reason  string `json:"reason"`
	} `json:"not_probed"`
}

// vfJSON runs verify --json with the result recorded under state, checks
// its exit code, that stdout is one JSON document with every documented
// key (checks, results and not_probed arrays, never null) and returns it
// decoded.
func vfJSON(t *testing.T, dir, state string, wantCode int, args ...string) vfDoc {
	t.Helper()
	return verifyJSON(t, dir, []string{"ANKLUME_STATE_DIR=" + state}, wantCode, args...)
}

// verifyJSON is vfJSON with the environment env added to the test host's.
func verifyJSON(t *testing.T, dir string, env []string, wantCode int, args ...string) vfDoc {
	t.Helper()
	out, errOut, code := runAnklume(t, binary(t), dir, env, append([]string{"verify", "--json"}, args...)...)
	if code != wantCode {
		t.Errorf("verify --json: exit %d, want %d\n%s", code, wantCode, errOut)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("verify --json is not one JSON object: %v\n%s", err, out)
	}
	for _, k := range []string{"format_version", "infra", "time", "ok", "probes", "mismatches", "pairs", "not_run", "duration_seconds", "checks", "results", "not_probed"} {
		if v, ok := raw[k]; !ok || string(v) == "null" {
			t.Errorf("verify --json: key %q is %s", k, v)
		}
	}
	var results []map[string]json.RawMessage
	_ = json.Unmarshal(raw["results"], &results)
	for _, r := range results {
		for _, k := range []string{"from", "from_domain", "to", "to_domain", "kind", "to_ip", "proto", "port", "expected", "outcome", "mismatch"} {
			if _, ok := r[k]; !ok {
				t.Fatalf("verify --json: a result lacks %q: %v", k, r)
			}
		}
	}
	var doc vfDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.FormatVersion != 1 {
		t.Errorf("format_version %d", doc.FormatVersion)
	}
	if _, err := time.Parse(time.RFC3339, doc.Time); err != nil {
		t.Errorf("time %q: %v", doc.Time, err)
	}
	return doc
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

// vfScalePSOT is vfPSOT's three domains with n machines each.
func vfScalePSOT(infra string, n int) string {
	var b strings.Builder
	b.WriteString("format_version: 1\nproject_name: " + infra + "\nglobal:\n  addressing: {base_octet: 10, zone_base: 200}\n  default_os_image: images:debian/13\ndomains:\n")
	for _, d := range []struct{ name, trust, id, net, egress string }{
		{"vf-a", "admin", "70", "10.200.70", ""}, {"vf-b", "trusted", "71", "10.210.71", "    egress: false\n"},
		{"vf-c", "disposable", "72", "10.250.72", "    egress: false\n"},
	} {
		b.WriteString("  " + d.name + ":\n    trust_level: " + d.trust + "\n    subnet_id: " + d.id + "\n" + d.egress + "    machines:\n")
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "      %s-%d: {ip: %s.%d}\n", d.name, i, d.net, 10+i)
		}
	}
	b.WriteString(`network_policies:
  - {description: "a to b web", from: vf-a, to: vf-b, ports: [8080]}
  - {description: "a-1 to c-1 mdns", from: vf-a-1, to: vf-c-1, protocol: udp, ports: [5353]}
  - {description: "b and c talk", from: vf-b-2, to: vf-c-2, ports: [9000], bidirectional: true}
  - {description: "c-2 apt cache", from: vf-c-2, to: host, ports: [3142]}
`)
	return b.String()
}

// BenchmarkVerify30 applies 30 busybox containers (three domains of ten)
// and times `anklume verify -v` on them with 16 and 64 probes in
// parallel, reporting the probes each run made and logging the time of
// each phase:
//
//	flock /tmp/anklume-live.lock go test ./e2e -run '^$' -bench Verify30 -benchtime 1x
func BenchmarkVerify30(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root and the Incus daemon")
	}
	bin := benchBinary(b)
	infra := scName(b, "vf")
	vfCleanup("")
	b.Cleanup(func() { vfCleanup(infra) })
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "infra.yml"), []byte(vfScalePSOT(infra, 10)), 0o644); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	out, errOut, code := runAnklume(b, bin, dir, nil, scApplyArgs("-j", "4")...)
	if code != 0 {
		b.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	b.Logf("apply of 30 containers: %s", time.Since(start).Round(time.Second))
	time.Sleep(10 * time.Second) // DHCP leases
	state := b.TempDir()
	for _, jobs := range []string{"16", "64"} {
		b.Run("j"+jobs, func(b *testing.B) {
			var out, errOut string
			var code int
			for range b.N {
				out, errOut, code = runAnklume(b, bin, dir, []string{"ANKLUME_STATE_DIR=" + state}, "verify", "-v", "-j", jobs)
			}
			b.StopTimer()
			m := regexp.MustCompile(`(\d+) probes over (\d+) pairs, (\d+) mismatches in (\S+)`).FindStringSubmatch(out)
			if m == nil {
				b.Fatalf("verify: exit %d\n%s\n%s", code, out, errOut)
			}
			probes, _ := strconv.Atoi(m[1])
			b.ReportMetric(float64(probes), "probes")
			b.Logf("verify of 30 machines, -j %s: exit %d, %s\n%s (load %s)", jobs, code, lastLine(out),
				regexp.MustCompile(`(?m)^time: .*$`).FindString(out), loadavg())
			if code != 0 {
				b.Logf("%s\n%s", out, errOut)
			}
		})
	}
}

// loadavg returns the first three fields of /proc/loadavg.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
