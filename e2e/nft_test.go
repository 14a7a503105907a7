package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anklume/anklume/examples"
)

// nftEnv is the environment of the §16 preamble for the nft tests.
func nftEnv(t *testing.T) []string {
	t.Helper()
	return append(os.Environ(),
		"ANKLUME_SKIP_HOST_SUBNET_CHECK=1",
		"ANKLUME_CONTEXT_DIR="+publicDir(t),
		"ANKLUME_HOST_RESOURCES=cpu=10,memory=40GiB",
		"ANKLUME_REMOTE=",
		"NO_COLOR=1",
	)
}

// publicDir returns a new directory that every user can read and
// traverse (t.TempDir's parent is private), removed after the test.
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "anklume-nft-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nftPSOT writes psot as infra.yml in a new directory readable by every
// user and returns the directory.
func nftPSOT(t *testing.T, psot string) string {
	t.Helper()
	dir := publicDir(t)
	rewritePSOT(t, dir, psot)
	return dir
}

// nftScript runs the sh script under `unshare <flags>` with args $1…,
// in dir, and returns stdout and stderr.
func nftScript(t *testing.T, dir string, flags []string, script string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	argv := append(append(flags, "sh", "-c", script, "sh"), args...)
	cmd := exec.CommandContext(ctx, "unshare", argv...)
	// The script and the servers it starts share one process group, killed
	// as a whole on timeout; WaitDelay stops waiting for pipes held open by
	// a straggler.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Dir = dir
	cmd.Env = nftEnv(t)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("unshare %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(flags, " "), err, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

// nftDemo is a small infrastructure without warnings.
const nftDemo = `format_version: 1
project_name: e2e-demo
global:
  addressing: {}
domains:
  ops:
    trust_level: admin
    machines:
      ops-1: {}
  lab:
    trust_level: trusted
    machines:
      lab-1: {}
network_policies:
  - {description: "ops to lab ssh", from: ops, to: lab, ports: [22]}
`

// TestNftExamplesLoad: the ruleset of every example passes nft -c -f and
// loads in a throwaway network namespace (§16 #50, issue 4 item 4).
func TestNftExamplesLoad(t *testing.T) {
	needRoot(t, "unshare", "nft")
	bin := binary(t)
	names := examples.Names()
	if len(names) == 0 {
		t.Fatal("no examples found")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), name+".nft")
			cmd := exec.Command(bin, "nftables", "render", "-o", file)
			cmd.Dir = filepath.Join("..", "examples", name)
			cmd.Env = nftEnv(t)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("render: %v\n%s", err, out)
			}
			out, _ := nftScript(t, ".", []string{"-n"},
				`nft -c -f "$1" && nft -f "$1" && nft list tables`, file)
			if out != "table inet anklume\n" {
				t.Errorf("after loading, nft list tables printed %q", out)
			}
		})
	}
}

// overlayPrologue gives the script a private /etc (an overlay whose
// writes land in $T/upper) and a private, empty /run, so deploy writes
// the real paths /etc/nftables.d and /etc/systemd/system without touching
// the host. $T/bin, first in PATH, holds a systemctl that logs its
// arguments to $T/systemctl.log. With SYSTEMD=1 /run/systemd/system exists.
const overlayPrologue = `set -eu
T="$1"; BIN="$2"
mkdir -p "$T/upper" "$T/work" "$T/bin"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/upper,workdir=$T/work" /etc
mount -t tmpfs tmpfs /run
if [ "${SYSTEMD:-0}" = 1 ]; then mkdir -p /run/systemd/system; fi
printf '#!/bin/sh\necho "$*" >> "%s/systemctl.log"\n' "$T" > "$T/bin/systemctl"
chmod 755 "$T/bin/systemctl"
PATH="$T/bin:$PATH"
set +e
`

// TestNftDeployStatus: in a private netns, deploy loads the table and
// persists it with the systemd unit; status is in sync (0), then drift
// with a diff (2) after one rule is deleted by handle, then not loaded (2)
// after the table is deleted (§16 #52, #85).
func TestNftDeployStatus(t *testing.T) {
	needRoot(t, "unshare", "nft", "mount")
	bin := binary(t)
	dir := nftPSOT(t, nftDemo)
	tmp := t.TempDir()
	script := overlayPrologue + `
"$BIN" nftables deploy; echo "deploy=$?"
"$BIN" nftables status; echo "status=$?"
h=$(nft -a list chain inet anklume isolation | sed -n 's/.*ct state invalid drop # handle \([0-9]*\)$/\1/p')
nft delete rule inet anklume isolation handle "$h"
"$BIN" nftables status; echo "status=$?"
nft delete table inet anklume
"$BIN" nftables status; echo "status=$?"
`
	t.Setenv("SYSTEMD", "1")
	out, errOut := nftScript(t, dir, []string{"-mn"}, script, tmp, bin)
	persisted := filepath.Join(tmp, "upper", "nftables.d", "anklume-isolation.nft")
	want := "created: nftables/anklume-isolation.nft\n" +
		"loaded: table inet anklume (anklume infra=e2e-demo)\n" +
		"persisted: /etc/nftables.d/anklume-isolation.nft\n" +
		"enabled: anklume-nftables.service\n" +
		"deploy=0\n" +
		"nftables: in sync\nstatus=0\n" +
		"nftables: drift\n" +
		"--- live table inet anklume\n+++ rendered from the PSOT\n"
	if !strings.HasPrefix(out, want) {
		t.Fatalf("stdout:\n%s\nwant it to start with:\n%s\nstderr:\n%s", out, want, errOut)
	}
	rest := out[len(want):]
	if !regexp.MustCompile(`(?m)^\+\t\tct state invalid drop$`).MatchString(rest) {
		t.Errorf("the diff does not restore the deleted rule:\n%s", rest)
	}
	if !strings.HasSuffix(rest, "status=2\nnftables: not loaded\nstatus=2\n") {
		t.Errorf("stdout ends with:\n%s", rest)
	}
	if strings.Contains(errOut, "error:") {
		t.Errorf("stderr:\n%s", errOut)
	}

	data, err := os.ReadFile(persisted)
	if err != nil {
		t.Fatalf("persisted file: %v", err)
	}
	base, err := os.ReadFile(filepath.Join(dir, "nftables", "anklume-isolation.nft"))
	if err != nil || string(base) != string(data) {
		t.Errorf("persisted file differs from nftables/anklume-isolation.nft (%v)", err)
	}
	nftPath, _ := exec.LookPath("nft")
	unit, err := os.ReadFile(filepath.Join(tmp, "upper", "systemd", "system", "anklume-nftables.service"))
	if err != nil || !strings.Contains(string(unit), "\nExecStart="+nftPath+" -f /etc/nftables.d/anklume-isolation.nft\n") ||
		!strings.HasPrefix(string(unit), "# written by anklume nftables deploy; removed by anklume flush\n[Unit]\n") {
		t.Errorf("unit (%v):\n%s", err, unit)
	}
	for _, p := range []string{persisted, filepath.Join(tmp, "upper", "systemd", "system", "anklume-nftables.service")} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v (%v)", p, fi.Mode(), err)
		}
	}
	log, err := os.ReadFile(filepath.Join(tmp, "systemctl.log"))
	if err != nil || string(log) != "daemon-reload\nenable anklume-nftables.service\n" {
		t.Errorf("systemctl calls (%v): %q", err, log)
	}
}

// TestNftDeployNoSystemd: without systemd the file is persisted and the
// §7.7 warning is printed; --no-persist writes nothing under /etc
// (§16 #85).
func TestNftDeployNoSystemd(t *testing.T) {
	needRoot(t, "unshare", "nft", "mount")
	bin := binary(t)
	dir := nftPSOT(t, nftDemo)
	tmp := t.TempDir()
	script := overlayPrologue + `
"$BIN" nftables deploy; echo "deploy=$?"
nft list tables
`
	out, errOut := nftScript(t, dir, []string{"-mn"}, script, tmp, bin)
	if !strings.HasSuffix(out, "persisted: /etc/nftables.d/anklume-isolation.nft\ndeploy=0\ntable inet anklume\n") {
		t.Errorf("stdout:\n%s", out)
	}
	warning := "warning: systemd is not running; /etc/nftables.d/anklume-isolation.nft is written but nothing loads it at boot, so the isolation rules will not survive a reboot\n"
	if !strings.Contains(errOut, warning) {
		t.Errorf("stderr lacks the warning:\n%s", errOut)
	}
	if _, err := os.Stat(filepath.Join(tmp, "upper", "nftables.d", "anklume-isolation.nft")); err != nil {
		t.Errorf("not persisted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "systemctl.log")); err == nil {
		t.Error("systemctl ran without systemd")
	}

	tmp2 := t.TempDir()
	script = overlayPrologue + `
"$BIN" nftables deploy --no-persist; echo "deploy=$?"
`
	out, _ = nftScript(t, dir, []string{"-mn"}, script, tmp2, bin)
	if !strings.HasSuffix(out, "loaded: table inet anklume (anklume infra=e2e-demo)\ndeploy=0\n") {
		t.Errorf("--no-persist stdout:\n%s", out)
	}
	if entries, _ := os.ReadDir(filepath.Join(tmp2, "upper")); len(entries) != 0 {
		t.Errorf("--no-persist wrote under /etc: %v", entries)
	}
}

// TestNftOwnership: a loaded table whose comment names another
// infrastructure is not replaced (§16 #85); a table without such a
// comment is.
func TestNftOwnership(t *testing.T) {
	needRoot(t, "unshare", "nft")
	bin := binary(t)
	dir := nftPSOT(t, nftDemo)
	script := `
nft add table inet anklume '{ comment "anklume infra=someone-else"; }'
nft add chain inet anklume keep
"$1" nftables deploy --no-persist; echo "deploy=$?"
nft list chains inet | grep -c 'chain keep'
nft delete table inet anklume
nft add table inet anklume
nft add chain inet anklume keep
"$1" nftables deploy --no-persist >/dev/null; echo "deploy=$?"
nft list chains inet | grep -c 'chain keep' || true
`
	out, errOut := nftScript(t, dir, []string{"-n"}, script, bin)
	if out != "deploy=1\n1\ndeploy=0\n0\n" {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
	want := "error: table inet anklume on this host belongs to infrastructure \"someone-else\"; refusing to replace it\n" +
		"  hint: if that infrastructure is gone, remove its table with nft delete table inet anklume\n"
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, want)
	}
}

// TestNftBridgeNetfilter: with bridge-nf-call-iptables 0 or absent,
// deploy prints the §7.7 warning and still loads the table (§16 #53).
// The switch is per network namespace, so the test sets it in its own.
func TestNftBridgeNetfilter(t *testing.T) {
	needRoot(t, "unshare", "nft", "mount")
	bin := binary(t)
	dir := nftPSOT(t, nftDemo)
	warning := "warning: bridge netfilter is off; rules inside one domain bridge are not enforced\n" +
		"  hint: modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1 (persist in /etc/modules-load.d/ and /etc/sysctl.d/)\n"
	f := "/proc/sys/net/bridge/bridge-nf-call-iptables"
	cases := map[string]string{
		// 0: written in the private netns only.
		"zero": `if [ -e ` + f + ` ]; then echo 0 > ` + f + `; fi`,
		// absent: an empty tmpfs hides the directory in a private mount
		// namespace (it is already absent without br_netfilter).
		"absent": `if [ -d /proc/sys/net/bridge ]; then mount -t tmpfs tmpfs /proc/sys/net/bridge; fi; test ! -e ` + f,
		// 1: no warning.
		"on": `if [ -e ` + f + ` ]; then echo 1 > ` + f + `; else echo skip; exit 0; fi`,
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			script := "set -e\n" + setup + "\n\"$1\" nftables deploy --no-persist >/dev/null\nnft list tables\n"
			out, errOut := nftScript(t, dir, []string{"-mn"}, script, bin)
			if out == "skip\n" {
				skip(t, "br_netfilter is not loaded on this host, so bridge-nf-call-iptables cannot be 1")
			}
			if out != "table inet anklume\n" {
				t.Errorf("table not loaded: %q", out)
			}
			if got := strings.Contains(errOut, warning); got != (name != "on") {
				t.Errorf("warning printed = %v; stderr:\n%s", got, errOut)
			}
		})
	}
}

// TestNftNotRoot: without root, deploy fails with the §7.7 message and
// exit 1, before nft runs (§16 #53, #87).
func TestNftNotRoot(t *testing.T) {
	needRoot(t, "unshare", "nft", "setpriv")
	bin := binary(t)
	dir := nftPSOT(t, nftDemo)
	binDir := publicDir(t)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	nobodyBin := filepath.Join(binDir, "anklume")
	if err := os.WriteFile(nobodyBin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$1" nftables deploy; echo "deploy=$?"; nft list tables`
	out, errOut := nftScript(t, dir, []string{"-n"}, script, nobodyBin)
	if out != "deploy=1\n" {
		t.Errorf("stdout %q (a table must not be loaded)", out)
	}
	if !strings.HasSuffix(errOut, "error: nftables deploy needs root (CAP_NET_ADMIN)\n  hint: run it as root: sudo anklume nftables deploy\n") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "nftables")); err == nil {
		t.Error("a failed deploy wrote nftables/")
	}
}

// TestNftGuard: the content guard refuses flush ruleset and statements
// outside the block before nft runs, and accepts comments; --dry-run
// loads and installs nothing (§16 #51).
func TestNftGuard(t *testing.T) {
	needRoot(t, "unshare", "nft", "mount")
	bin := binary(t)
	tests := []struct {
		name, existing, wantErr string
	}{
		{"flush ruleset", "flush ruleset\n", "refusing to deploy: flush ruleset is not allowed"},
		{"table inet anklume outside", "table inet anklume {\n}\n", "refusing to deploy: only comments may appear outside the managed section"},
		{"table inet filter outside", "# mine\ntable inet filter {\n}\n", "refusing to deploy: only comments may appear outside the managed section"},
		{"add rule outside", "add rule inet anklume isolation accept\n", "refusing to deploy: only comments may appear outside the managed section"},
		{"comments accepted", "# my own notes\n\n# more\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := nftPSOT(t, nftDemo)
			target := filepath.Join(dir, "nftables", "anklume-isolation.nft")
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(target, []byte(tt.existing), 0o644); err != nil {
				t.Fatal(err)
			}
			out, errOut := nftScript(t, dir, []string{"-n"}, `"$1" nftables deploy --no-persist >/dev/null; echo "deploy=$?"; nft list tables`, bin)
			if tt.wantErr == "" {
				if out != "deploy=0\ntable inet anklume\n" {
					t.Errorf("stdout %q stderr %q", out, errOut)
				}
				data, _ := os.ReadFile(target)
				if !strings.HasSuffix(string(data), "\n\n"+tt.existing) {
					t.Errorf("comments not kept:\n%s", data)
				}
				return
			}
			if out != "deploy=1\n" {
				t.Errorf("stdout %q: the table must not be loaded", out)
			}
			if !regexp.MustCompile(`(?m)^error: nftables/anklume-isolation\.nft:[0-9]+: ` + regexp.QuoteMeta(tt.wantErr) + `$`).MatchString(errOut) {
				t.Errorf("stderr:\n%s\nwant %s", errOut, tt.wantErr)
			}
			if data, _ := os.ReadFile(target); string(data) != tt.existing {
				t.Errorf("a refused deploy changed the file:\n%s", data)
			}
		})
	}

	t.Run("dry run", func(t *testing.T) {
		dir := nftPSOT(t, nftDemo)
		tmp := t.TempDir()
		script := overlayPrologue + `"$BIN" nftables deploy --dry-run > "$T/out"; echo "deploy=$?"; nft list tables`
		out, _ := nftScript(t, dir, []string{"-mn"}, script, tmp, bin)
		if out != "deploy=0\n" {
			t.Errorf("stdout %q: dry run loaded the table", out)
		}
		printed, _ := os.ReadFile(filepath.Join(tmp, "out"))
		if !strings.HasPrefix(string(printed), "# === MANAGED BY infra.yml ===\n") {
			t.Errorf("dry run printed:\n%s", printed)
		}
		if entries, _ := os.ReadDir(filepath.Join(tmp, "upper")); len(entries) != 0 {
			t.Errorf("dry run installed %v", entries)
		}
		if _, err := os.Stat(filepath.Join(dir, "nftables")); err == nil {
			t.Error("dry run wrote nftables/")
		}
	})
}

// nftHelperEnv selects the helper mode of TestNftTrafficHelper.
const nftHelperEnv = "ANKLUME_NFT_HELPER"

// TestNftTrafficHelper is not a test of its own: TestNftTraffic runs this
// test binary inside its network namespaces with ANKLUME_NFT_HELPER set,
// as a TCP server or client. Without the variable it does nothing.
//
//	serve <ready-file> <name> <addr>...  answer "hello from <name>" on each addr
//	dial <addr>                            print the answer; exit 1 when none comes
func TestNftTrafficHelper(t *testing.T) {
	mode := os.Getenv(nftHelperEnv)
	if mode == "" {
		return
	}
	os.Exit(nftHelper(strings.Fields(mode)))
}

// nftHelper runs one helper mode and returns the exit status.
func nftHelper(args []string) int {
	switch {
	case len(args) >= 4 && args[0] == "serve":
		for _, addr := range args[3:] {
			ln, err := net.Listen("tcp4", addr)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					fmt.Fprintf(c, "hello from %s\n", args[2])
					c.Close()
				}
			}()
		}
		if err := os.WriteFile(args[1], nil, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		select {}
	case len(args) == 2 && args[0] == "dial":
		c, err := net.DialTimeout("tcp4", args[1], 1500*time.Millisecond)
		if err != nil {
			fmt.Println(err)
			return 1
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(1500 * time.Millisecond))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			fmt.Println(err)
			return 1
		}
		fmt.Print(line)
		return 0
	}
	fmt.Fprintln(os.Stderr, "usage: serve FILE NAME ADDR... | dial ADDR")
	return 2
}

// nftTrafficPSOT: four domains, one air-gapped, a machine-to-machine
// policy on one port, and the AI exclusive auto-policy lab → ai-tools.
const nftTrafficPSOT = `format_version: 1
project_name: traffic
global:
  addressing: {}
  ai_access_policy: exclusive
  ai_access_default: lab
domains:
  lab:
    trust_level: trusted
    machines:
      lab-1: {}
      lab-2: {}
  work:
    trust_level: trusted
    machines:
      work-1: {}
      work-2: {}
  ai-tools:
    trust_level: semi-trusted
    machines:
      ai-1: {}
  vault:
    trust_level: disposable
    egress: false
    machines:
      vault-1: {}
network_policies:
  - description: "lab-1 reaches work-1 on 8080"
    from: lab-1
    to: work-1
    ports: [8080]
`

// nftTrafficScript builds the topology in the private network namespace
// unshare created, which plays the Incus host ("router"): one bridge per
// domain, named and addressed as anklume would (gateway .254), one netns
// per machine attached by a veth pair, and a netns "outside" reached
// through the veth "uplink" (192.0.2.0/24) with a route to 10.0.0.0/8.
// The ruleset is loaded with `anklume nftables deploy`, every machine and
// the outside answer on :80 and :8080, the router on :53 and :80; then
// each `check` dials once and prints "<name> ok|blocked <detail>".
const nftTrafficScript = `set -eu
T="$1"; BIN="$2"; HELPER="$3"
mount -t tmpfs tmpfs /run
ip link set lo up
echo 1 > /proc/sys/net/ipv4/ip_forward
mkbridge() { ip link add "$1" type bridge; ip addr add "$2" dev "$1"; ip link set "$1" up; }
mkbridge net-lab 10.110.0.254/24
mkbridge net-work 10.110.1.254/24
mkbridge net-ai-tools 10.120.0.254/24
mkbridge net-vault 10.150.0.254/24
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
machine lab-1 net-lab 10.110.0.1 10.110.0.254
machine lab-2 net-lab 10.110.0.2 10.110.0.254
machine work-1 net-work 10.110.1.1 10.110.1.254
machine work-2 net-work 10.110.1.2 10.110.1.254
machine ai-1 net-ai-tools 10.120.0.1 10.120.0.254
machine vault-1 net-vault 10.150.0.1 10.150.0.254
ip netns add outside
ip link add uplink type veth peer name eth0 netns outside
ip addr add 192.0.2.1/24 dev uplink
ip link set uplink up
ip -n outside link set lo up
ip -n outside addr add 192.0.2.2/24 dev eth0
ip -n outside link set eth0 up
ip -n outside route add 10.0.0.0/8 via 192.0.2.1

"$BIN" nftables deploy --no-persist >/dev/null

pids=""
stop() {
	kill $pids 2>/dev/null
	for ns in $(ip netns list | cut -d' ' -f1); do kill $(ip netns pids "$ns") 2>/dev/null; done
	true
}
trap stop EXIT
run() { ANKLUME_NFT_HELPER="$2" exec ip netns exec "$1" "$HELPER" -test.run='^TestNftTrafficHelper$'; }
for ns in lab-1 lab-2 work-1 work-2 ai-1 vault-1 outside; do
	(run "$ns" "serve $T/ready-$ns $ns 0.0.0.0:80 0.0.0.0:8080") & pids="$pids $!"
done
ANKLUME_NFT_HELPER="serve $T/ready-router router 0.0.0.0:53 0.0.0.0:80" "$HELPER" -test.run='^TestNftTrafficHelper$' & pids="$pids $!"
for ns in lab-1 lab-2 work-1 work-2 ai-1 vault-1 outside router; do
	i=0
	while [ ! -e "$T/ready-$ns" ]; do
		i=$((i+1)); [ $i -lt 100 ] || { echo "server $ns did not start" >&2; exit 1; }
		sleep 0.1
	done
done

set +e
# Every check runs in parallel (a drop costs the dial timeout); the
# results are printed in order once all are done.
names=""; cpids=""
check() {
	names="$names $1"
	(if out=$(run "$2" "dial $3" 2>&1); then echo "$1 ok $out"; else echo "$1 blocked $out"; fi) > "$T/res-$1" &
	cpids="$cpids $!"
}
check same-domain lab-1 10.110.0.2:80
check cross-domain lab-2 10.110.1.1:80
check cross-domain-reverse work-1 10.110.0.1:80
check policy-port lab-1 10.110.1.1:8080
check policy-other-source lab-2 10.110.1.1:8080
check policy-other-target lab-1 10.110.1.2:8080
check policy-other-port lab-1 10.110.1.1:80
check policy-one-way work-1 10.110.0.1:8080
check ai-default-to-ai lab-2 10.120.0.1:80
check ai-to-default ai-1 10.110.0.1:80
check egress-out lab-1 192.0.2.2:80
check outside-in outside 10.110.0.1:80
check outside-in-ai outside 10.120.0.1:8080
check airgap-out vault-1 192.0.2.2:80
check airgap-in outside 10.150.0.1:80
check airgap-to-domain vault-1 10.110.0.1:80
check dns-gateway lab-1 10.110.0.254:53
check dns-other-host-address lab-1 10.110.1.254:53
check host-other-port lab-1 10.110.0.254:80
check airgap-dns vault-1 10.150.0.254:53
wait $cpids
for name in $names; do cat "$T/res-$name"; done
exit 0
`

// TestNftTraffic is §16 #83 and issue 4 item 4: real packets through the
// rendered ruleset in network namespaces.
func TestNftTraffic(t *testing.T) {
	needRoot(t, "unshare", "nft", "ip", "mount")
	bin := binary(t)
	helper, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := nftPSOT(t, nftTrafficPSOT)
	tmp := t.TempDir()
	out, errOut := nftScript(t, dir, []string{"-mn"}, nftTrafficScript, tmp, bin, helper)
	want := []struct{ name, result string }{
		{"same-domain", "ok hello from lab-2"},
		{"cross-domain", "blocked"},
		{"cross-domain-reverse", "blocked"},
		{"policy-port", "ok hello from work-1"},
		{"policy-other-source", "blocked"},
		{"policy-other-target", "blocked"},
		{"policy-other-port", "blocked"},
		{"policy-one-way", "blocked"},
		{"ai-default-to-ai", "ok hello from ai-1"},
		{"ai-to-default", "blocked"},
		{"egress-out", "ok hello from outside"},
		{"outside-in", "blocked"},
		{"outside-in-ai", "blocked"},
		{"airgap-out", "blocked"},
		{"airgap-in", "blocked"},
		{"airgap-to-domain", "blocked"},
		{"dns-gateway", "ok hello from router"},
		{"dns-other-host-address", "blocked"},
		{"host-other-port", "blocked"},
		{"airgap-dns", "blocked"},
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, result, _ := strings.Cut(line, " ")
		got[name] = result
	}
	for _, c := range want {
		name, w := c.name, c.result
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: not run", name)
		case w == "blocked" && (!strings.HasPrefix(g, "blocked") || !strings.Contains(g, "timeout")):
			// A drop shows as a timeout; a refused connection would mean
			// the server is missing, not that the ruleset blocked it.
			t.Errorf("%s: got %q, want it dropped (a timeout)", name, g)
		case w != "blocked" && g != w:
			t.Errorf("%s: got %q, want %q", name, g, w)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
}
