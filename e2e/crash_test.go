package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/lock"
)

// The crash-consistency tests (issue 10, deliver 3) use their own
// namespace: projects cr-a and cr-b, bridges net-cr-a (10.200.62.0/24) and
// net-cr-b (10.210.63.0/24), infrastructures cr-<random>. Every step
// starts from crV1 applied (one domain, one running container) and applies
// crV2, which updates that container in place (so apply takes its
// pre-apply snapshot), adds a second domain with a storage volume, a
// shared volume for both domains and a network policy between them. The
// nftables step is off (--no-nftables): it is no Incus request, and the
// host's ruleset is shared.

// crPSOT is the crash test infrastructure, version 1 or 2; share is the
// shared volume's host directory.
func crPSOT(infra, share string, v2 bool) string {
	s := `format_version: 1
project_name: ` + infra + `
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: anklume-test
domains:
  cr-a:
    trust_level: admin
    subnet_id: 62
    egress: false
    ephemeral: true
    machines:
      cr-a-1:
        ip: 10.200.62.11
`
	if !v2 {
		return s
	}
	return s + `        description: updated by version 2
  cr-b:
    trust_level: trusted
    subnet_id: 63
    egress: false
    ephemeral: true
    machines:
      cr-b-1:
        ip: 10.210.63.11
        storage_volumes: {cr-data: {path: /data}}
shared_volumes:
  cr-share:
    source: ` + share + `
    consumers: {cr-a: rw, cr-b: ro}
network_policies:
  - description: cr web
    from: cr-a-1
    to: cr-b-1
    ports: [8080]
`
}

// crCleanup deletes everything of the cr- namespace.
func crCleanup() {
	cleanupDomains([]string{"cr-a", "cr-b"})
	deleteLockTombstones()
}

// deleteLockTombstones deletes the tombstones of removed locks
// (anklume-lock-<id> with user.anklume.lock.removed) that the crash
// tests' takeovers leave: anklume keeps each one for twenty minutes and
// collects it at a later takeover only, and every project, even an empty
// one, costs each all-projects list of the later tests about a
// millisecond of the daemon's time (26 of them made a plan of 30
// containers 30 ms slower).
func deleteLockTombstones() {
	out, err := exec.Command("incus", "project", "list", "-f", "json").Output()
	if err != nil {
		return
	}
	var ps []api.Project
	if json.Unmarshal(out, &ps) != nil {
		return
	}
	for _, p := range ps {
		if strings.HasPrefix(p.Name, lock.Project+"-") && p.Config[lock.KeyRemoved] != "" {
			_ = exec.Command("incus", "project", "delete", p.Name).Run()
		}
	}
}

// crEnv is one crash test: the two versions' directories.
type crEnv struct {
	infra      string
	v1, v2     string
	crashLines []string
}

// crSetup cleans the namespace and writes both versions.
func crSetup(t *testing.T) *crEnv {
	t.Helper()
	needIncus(t)
	crCleanup()
	t.Cleanup(crCleanup)
	infra := scName(t, "cr")
	share := filepath.Join(t.TempDir(), "share")
	return &crEnv{infra: infra,
		v1: writePSOT(t, crPSOT(infra, share, false)), v2: writePSOT(t, crPSOT(infra, share, true))}
}

// crApplyArgs are the arguments of every apply of the crash tests: the
// pre-apply snapshots stay on.
var crApplyArgs = []string{"apply", "--yes", "--no-provision", "--no-nftables"}

// reset brings Incus back to version 1 with no pre-apply snapshot, so
// that every step makes the same requests: the snapshots are deleted by
// hand (a reset is no step under test) and version 1 is applied.
func (e *crEnv) reset(t *testing.T) {
	t.Helper()
	out, _ := exec.Command("incus", "snapshot", "list", "--project", "cr-a", "cr-a-1", "-c", "n", "-f", "csv").Output()
	for _, s := range strings.Fields(string(out)) {
		_ = exec.Command("incus", "snapshot", "delete", "--project", "cr-a", "cr-a-1", s).Run()
	}
	args := append(append([]string{}, crApplyArgs...), "--no-snapshot", "--prune-volumes")
	if out, errOut, code := runAnklume(t, binary(t), e.v1, nil, args...); code != 0 {
		t.Fatalf("reset to version 1: exit %d\n%s\n%s", code, out, errOut)
	}
}

// converge runs a plain apply of version 2, then checks that the plan is
// empty and that both machines run. what says which crash came before.
func (e *crEnv) converge(t *testing.T, what string) {
	t.Helper()
	out, errOut, code := runAnklume(t, binary(t), e.v2, nil, crApplyArgs...)
	if code != 0 {
		t.Fatalf("%s: the plain re-run failed: exit %d\n%s\n%s", what, code, out, errOut)
	}
	pout, perr, pcode := runAnklume(t, binary(t), e.v2, nil, "plan", "--detailed-exitcode")
	if pcode != 0 {
		t.Fatalf("%s: the plan after the re-run is not empty (exit %d):\n%s\n%s\nre-run output:\n%s", what, pcode, pout, perr, out)
	}
	for _, m := range []struct{ project, name string }{{"cr-a", "cr-a-1"}, {"cr-b", "cr-b-1"}} {
		if i := instances(t, m.project)[m.name]; i.Status != "Running" || i.Config["user.anklume.infra"] != e.infra {
			t.Errorf("%s: %s/%s is %q, infra %q", what, m.project, m.name, i.Status, i.Config["user.anklume.infra"])
		}
	}
	e.checkContext(t, what)
	if strings.Contains(out, "repair: ") || strings.Contains(errOut, "taking over stale lock") {
		e.crashLines = append(e.crashLines, what+": "+firstLines(out+errOut, "repair: ", "taking over"))
	}
}

// crContext is what the nesting context files of a container created at
// level 0 hold, each with its owner (root inside the container) and mode.
const crContext = `/etc/anklume 0 0 755
/etc/anklume/absolute_level 0 0 644
1
/etc/anklume/relative_level 0 0 644
1
/etc/anklume/vm_nested 0 0 644
false
/etc/anklume/yolo 0 0 644
false
`

// checkContext checks, from inside cr-b-1 (the container version 2
// creates, so the cut run was its first start), that its nesting context
// files are there with their values, owner and mode: a cut between its
// first start and the files used to lose them for good.
func (e *crEnv) checkContext(t *testing.T, what string) {
	t.Helper()
	script := `stat -c '%n %u %g %a' /etc/anklume; for f in absolute_level relative_level vm_nested yolo; do ` +
		`stat -c '%n %u %g %a' /etc/anklume/$f && cat /etc/anklume/$f; done`
	out, err := exec.Command("incus", "exec", "--project", "cr-b", "cr-b-1", "--", "sh", "-c", script).CombinedOutput()
	if err != nil || string(out) != crContext {
		t.Errorf("%s: the nesting context of cr-b-1 (%v):\n%s\nwant:\n%s", what, err, out, crContext)
	}
}

// firstLines returns the lines of text that contain one of subs, joined.
func firstLines(text string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, s := range subs {
			if strings.Contains(l, s) {
				out = append(out, strings.TrimSpace(l))
				break
			}
		}
	}
	return strings.Join(out, " | ")
}

// viaProxy runs apply of version 2 through a socket proxy armed to cut
// after k mutating requests (0: never), aborting the cut request delay
// after it is written, and returns the proxy's count, the cut request and
// the output.
func (e *crEnv) viaProxy(t *testing.T, k int, delay time.Duration) (mutations int, cut, output string, code int) {
	t.Helper()
	var log incusx.RequestLog
	p, err := incusx.NewSocketProxy(incusSocket(), filepath.Join(t.TempDir(), "incus.socket"), &log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.CutAfter(k, delay)
	cmd := scCommand(t, binary(t), e.v2, []string{"INCUS_SOCKET=" + p.Path}, crApplyArgs...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	guard := time.AfterFunc(3*time.Minute, func() { _ = cmd.Process.Kill() })
	defer guard.Stop()
	code = exitCode(t, cmd.Wait(), crApplyArgs)
	if k == 0 {
		var muts []string
		for _, r := range log.Strings() {
			if !strings.HasPrefix(r, "GET ") {
				muts = append(muts, r)
			}
		}
		t.Logf("mutating requests of the apply of version 2 (%d):\n  %s", len(muts), strings.Join(muts, "\n  "))
	}
	return p.Mutations(), p.Cut(), out.String(), code
}

// crOnlyK, when set to a number, limits the sweep to that k (to study one
// cut by hand).
const crOnlyK = "ANKLUME_CRASH_K"

// TestApplyCrashSweep cuts the connection of an apply after its k-th
// mutating request, for every k from 1 to the number of mutating requests
// the apply makes, and checks after each cut that a plain re-run
// converges with no manual step: it succeeds, the plan after it is empty,
// the machines run. It sweeps twice: the cut request aborted as soon as
// it is written (Incus sees its client go away at once), and 300 ms later
// (a quick request ends unseen by the client; a bridge create is cut in
// the middle, which used to leave the network Pending forever). Both
// sweeps cut at every k, none at a sample: 17 mutating requests; on the
// shared test machine (2 cores, other engineers' tests running) the
// immediate sweep took 2m15s, the delayed one 2m22s, the whole test 5m13s
// (each cut followed by its re-run, plan and checks); the delayed cut at
// k=5 (the bridge create) leaves the bridge Pending, repaired by -/+. After each re-run, checkContext reads the new
// container's nesting context files from inside it.
func TestApplyCrashSweep(t *testing.T) {
	e := crSetup(t)
	e.reset(t)
	total, _, out, code := e.viaProxy(t, 0, 0)
	if code != 0 {
		t.Fatalf("the uncut apply of version 2 failed: exit %d\n%s", code, out)
	}
	e.converge(t, "uncut")
	if total < 8 {
		t.Fatalf("the apply of version 2 made only %d mutating requests; the sweep would prove little", total)
	}
	first, last := 1, total
	if v := os.Getenv(crOnlyK); v != "" {
		if _, err := fmt.Sscan(v, &first); err != nil {
			t.Fatalf("%s=%q: %v", crOnlyK, v, err)
		}
		last = first
	}
	for _, mode := range []struct {
		name  string
		delay time.Duration
	}{{"at-once", 0}, {"mid-request", 300 * time.Millisecond}} {
		t.Run(mode.name, func(t *testing.T) {
			e.crashLines = nil
			start := time.Now()
			for k := first; k <= last; k++ {
				e.reset(t)
				_, cut, out, code := e.viaProxy(t, k, mode.delay)
				if cut == "" {
					t.Fatalf("k=%d: the apply made fewer than %d mutating requests (exit %d)\n%s", k, k, code, out)
				}
				// Only the steps whose failure is a warning may be cut
				// with a successful exit: the nesting context files and
				// the lock's release.
				if code == 0 && !strings.Contains(cut, "anklume-lock") && !strings.Contains(cut, "/files?") {
					t.Errorf("k=%d: the apply cut at %s exited 0:\n%s", k, cut, out)
				}
				e.converge(t, fmt.Sprintf("k=%d (%s)", k, cut))
				if t.Failed() {
					t.FailNow()
				}
			}
			t.Logf("sweep %s: %d mutating requests, cuts %d..%d, each followed by a converging re-run, in %s",
				mode.name, total, first, last, time.Since(start).Round(time.Second))
			for _, l := range e.crashLines {
				t.Logf("  %s", l)
			}
		})
	}
}

// applyUntil starts an apply of version 2 and calls at(n) after each of
// its progress lines that ends a change (`done`, n counting from 1); at
// returns true when it has crashed the run. It returns the output and
// whether at crashed it before the apply ended.
func (e *crEnv) applyUntil(t *testing.T, at func(n int, cmd *exec.Cmd) bool) (string, bool) {
	t.Helper()
	cmd := scCommand(t, binary(t), e.v2, nil, crApplyArgs...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	guard := time.AfterFunc(3*time.Minute, func() { _ = cmd.Process.Kill() })
	defer guard.Stop()
	var lines strings.Builder
	crashed := false
	sc := bufio.NewScanner(stdout)
	n := 0
	for sc.Scan() {
		lines.WriteString(sc.Text() + "\n")
		if !crashed && strings.Contains(sc.Text(), ": done (") {
			n++
			crashed = at(n, cmd)
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	_ = cmd.Wait()
	return lines.String() + stderr.String(), crashed
}

// TestApplyCrashKill kills the anklume process with SIGKILL after its
// first, third and sixth finished change, and once the instant its
// pre-apply snapshot is taken; after each, a plain re-run converges.
func TestApplyCrashKill(t *testing.T) {
	e := crSetup(t)
	for _, after := range []int{1, 3, 6} {
		e.reset(t)
		out, killed := e.applyUntil(t, func(n int, cmd *exec.Cmd) bool {
			return n == after && cmd.Process.Kill() == nil
		})
		if !killed {
			t.Fatalf("the apply ended before its change %d:\n%s", after, out)
		}
		e.converge(t, fmt.Sprintf("SIGKILL after change %d", after))
	}
	for _, l := range e.crashLines {
		t.Logf("  %s", l)
	}
}

// TestApplyCrashIncusdRestart restarts incusd itself (stop by its pid,
// start with its command line and environment) while an apply runs,
// after its second finished change; the apply fails, and a plain re-run
// converges. incusd runs again when the test ends, even on failure.
func TestApplyCrashIncusdRestart(t *testing.T) {
	e := crSetup(t)
	d := findIncusd(t)
	t.Cleanup(func() { d.ensureRunning(t) })
	e.reset(t)
	var restartErr error
	out, restarted := e.applyUntil(t, func(n int, _ *exec.Cmd) bool {
		if n != 2 {
			return false
		}
		restartErr = d.restart()
		return true
	})
	if restartErr != nil {
		t.Fatalf("restarting incusd: %v", restartErr)
	}
	if !restarted {
		t.Fatalf("the apply ended before its second change:\n%s", out)
	}
	t.Logf("apply across the incusd restart:\n%s", out)
	e.converge(t, "incusd restart after change 2")
}

// incusd is the running Incus daemon: its command line and environment,
// as scripts/incus-test-env.sh started it.
type incusd struct {
	pid  int
	args []string
	env  []string
}

// findIncusd finds the incusd daemon process and reads how it was
// started. The "[lxc monitor]" processes that incusd forks keep its
// process name and are left out by their command line.
func findIncusd(t *testing.T) *incusd {
	t.Helper()
	// The test cluster's members (scripts/cluster-up.sh) run their own
	// incusd, each with its own INCUS_DIR: only the daemon of the tests'
	// INCUS_DIR is the one to restart.
	want := incusDir(os.Environ())
	out, _ := exec.Command("pgrep", "-x", "incusd").Output()
	var found []*incusd
	for _, pid := range strings.Fields(string(out)) {
		var d incusd
		if _, err := fmt.Sscan(pid, &d.pid); err != nil {
			t.Fatal(err)
		}
		cmdline, err1 := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", d.pid))
		environ, err2 := os.ReadFile(fmt.Sprintf("/proc/%d/environ", d.pid))
		if err1 != nil || err2 != nil {
			continue // gone meanwhile
		}
		d.args = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		d.env = strings.Split(strings.TrimRight(string(environ), "\x00"), "\x00")
		if filepath.Base(d.args[0]) == "incusd" && incusDir(d.env) == want {
			found = append(found, &d)
		}
	}
	if len(found) != 1 {
		skip(t, "expected one incusd daemon with INCUS_DIR %s started by hand (scripts/incus-test-env.sh), found %d", want, len(found))
	}
	return found[0]
}

// incusDir is the INCUS_DIR an environment gives incusd (its default,
// /var/lib/incus, when unset).
func incusDir(env []string) string {
	dir := "/var/lib/incus"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "INCUS_DIR="); ok && v != "" {
			dir = v
		}
	}
	return filepath.Clean(dir)
}

// restart stops incusd by its pid (SIGTERM: Incus's restart signal, which
// keeps the instances running; SIGKILL after a minute) and starts it
// again, detached, with its output appended to /var/log/incus/incusd.out
// as scripts/incus-test-env.sh does, then waits until it answers.
func (d *incusd) restart() error {
	p, err := os.FindProcess(d.pid)
	if err != nil {
		return err
	}
	if err := p.Signal(syscallTERM); err != nil {
		return fmt.Errorf("stopping incusd (pid %d): %w", d.pid, err)
	}
	deadline := time.Now().Add(time.Minute)
	for processAlive(d.pid) {
		if time.Now().After(deadline) {
			_ = p.Kill()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return d.start()
}

// start starts incusd detached and waits until it answers.
func (d *incusd) start() error {
	if err := os.MkdirAll("/var/log/incus", 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile("/var/log/incus/incusd.out", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(d.args[0], d.args[1:]...)
	cmd.Env = d.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = detached()
	keepNoInheritedFDs() // never hand the live lock to the daemon
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting incusd: %w", err)
	}
	d.pid = cmd.Process.Pid
	_ = cmd.Process.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "incus", "admin", "waitready", "--timeout", "60").CombinedOutput(); err != nil {
		return fmt.Errorf("incusd did not come back: %v %s", err, out)
	}
	return nil
}

// ensureRunning starts incusd again when it does not answer.
func (d *incusd) ensureRunning(t *testing.T) {
	if exec.Command("incus", "info").Run() == nil {
		return
	}
	if processAlive(d.pid) {
		if exec.Command("incus", "admin", "waitready", "--timeout", "60").Run() == nil {
			return
		}
	}
	if err := d.start(); err != nil {
		t.Errorf("incusd is not running after the test and could not be started: %v", err)
	}
}

// TestApplyRepairRestoreLeftover: the temporary import that an interrupted
// backup restore leaves in the default project (a copy of a machine,
// ownership keys and protection included, under the staging name) is
// deleted by the next plain apply, with the repair reason; the machine
// itself stays. The leftover is made with a copy (the default project's
// default profile has no root disk, so the copy gets one on the pool, as
// an imported backup has), its address cleared so that it does not clash
// with the machine's.
func TestApplyRepairRestoreLeftover(t *testing.T) {
	e := crSetup(t)
	e.reset(t)
	stage := incusx.RestoreStagePrefix + "1764950000000000001"
	t.Cleanup(func() {
		_ = exec.Command("incus", "config", "unset", stage, "security.protection.delete").Run()
		_ = exec.Command("incus", "delete", "--force", stage).Run()
	})
	mustRun(t, "", "incus", "copy", "--project", "cr-a", "cr-a-1", stage, "--target-project", "default",
		"--storage", "default", "--device", "eth0,ipv4.address=", "--config", "security.protection.delete=true")
	out, errOut, code := runAnklume(t, binary(t), e.v1, nil, crApplyArgs...)
	want := "- instance default/" + stage + " (repair: an earlier restore did not finish; temporary import)"
	if code != 0 || !strings.Contains(out, want) {
		t.Fatalf("apply: exit %d, want %q\n%s\n%s", code, want, out, errOut)
	}
	if err := exec.Command("incus", "info", stage).Run(); err == nil {
		t.Errorf("%s is still there", stage)
	}
	if i := instances(t, "cr-a")["cr-a-1"]; i.Status != "Running" {
		t.Errorf("cr-a-1 is %q", i.Status)
	}
	if _, _, code := runAnklume(t, binary(t), e.v1, nil, "plan", "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after the repair: exit %d", code)
	}
}
