package e2e

import (
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
	for _, p := range []string{"vf-a", "vf-b", "vf-c"} {
		out, _ := exec.Command("incus", "list", "--project", p, "-c", "n", "-f", "csv").Output()
		for _, n := range strings.Fields(string(out)) {
			_ = exec.Command("incus", "config", "unset", "--project", p, n, "security.protection.delete").Run()
			_ = exec.Command("incus", "delete", "--force", "--project", p, n).Run()
		}
		_ = exec.Command("incus", "project", "delete", p).Run()
	}
	for _, n := range []string{"net-vf-a", "net-vf-b", "net-vf-c"} {
		_ = exec.Command("incus", "network", "delete", n).Run()
	}
	if out, err := exec.Command("nft", "list", "table", "inet", "anklume").Output(); err == nil {
		if (infra == "" && vfLeftover.Match(out)) || (infra != "" && strings.Contains(string(out), `anklume infra=`+infra+`"`)) {
			_ = exec.Command("nft", "delete", "table", "inet", "anklume").Run()
		}
	}
	const persisted = "/etc/nftables.d/anklume-isolation.nft"
	if b, err := os.ReadFile(persisted); err == nil && (vfLeftover.Match(b) || (infra != "" && strings.Contains(string(b), infra))) {
		_ = os.Remove(persisted)
	}
}

// vfVerify runs anklume verify and returns stdout, stderr and the exit
// code.
func vfVerify(t *testing.T, dir, stateDir string, args ...string) (string, string, int) {
	t.Helper()
	return runAnklume(t, binary(t), dir, []string{"ANKLUME_STATE_DIR=" + stateDir}, append([]string{"verify"}, args...)...)
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
	const nfIPT = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	if b, err := os.ReadFile(nfIPT); err != nil || strings.TrimSpace(string(b)) != "1" {
		skip(t, "bridge netfilter is not on (modprobe br_netfilter; sysctl -w net.bridge.bridge-nf-call-iptables=1; .ci/run does it)")
	}
	if out, err := exec.Command("nft", "list", "table", "inet", "anklume").CombinedOutput(); err == nil && !vfLeftover.Match(out) {
		t.Fatalf("a table inet anklume of another infrastructure is loaded on this host; refusing to replace it:\n%s", firstLine(out))
	}
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
	if err := os.WriteFile(filepath.Join(dir, "infra.yml"), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
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
// and times `anklume verify` on them, reporting the probes it ran:
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
	b.ResetTimer()
	for range b.N {
		out, errOut, code = runAnklume(b, bin, dir, []string{"ANKLUME_STATE_DIR=" + state}, "verify")
	}
	b.StopTimer()
	m := regexp.MustCompile(`(\d+) probes over (\d+) pairs, (\d+) mismatches in (\S+)`).FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("verify: exit %d\n%s\n%s", code, out, errOut)
	}
	probes, _ := strconv.Atoi(m[1])
	b.ReportMetric(float64(probes), "probes")
	b.Logf("verify of 30 machines: exit %d, %s", code, lastLine(out))
	if code != 0 {
		b.Logf("%s\n%s", out, errOut)
	}
}
