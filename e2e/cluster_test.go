package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The cluster tests run on the real 3-member Incus cluster of
// scripts/cluster-up.sh (members m1, m2, m3; cluster group lab = m2, m3),
// which lives beside the host's daemon without touching it. They bring it
// up themselves, once per test run (`go test ./e2e -run Cluster`, and CI's
// `make test`), and the run removes it at its end (scripts/cluster-down.sh)
// unless it was already up before the run (`make cluster-up`: it is then
// left as it was found) or ANKLUME_CLUSTER_KEEP=1 is set. Their projects
// and instances are prefixed "cl": LXC names its cgroups
// lxc.payload.<project>_<instance> host-wide, so they must not meet the
// names of the tests that use the host's daemon.

// clusterKeepEnv, when set, leaves the test cluster up after the run.
const clusterKeepEnv = "ANKLUME_CLUSTER_KEEP"

var (
	clusterOnce    sync.Once
	clusterEnv     map[string]string // the export lines cluster-up printed
	clusterErr     error
	clusterStarted bool // this run brought the cluster up
)

// TestMain removes the test cluster after the run when the run brought it
// up.
func TestMain(m *testing.M) {
	code := m.Run()
	if clusterStarted && os.Getenv(clusterKeepEnv) == "" {
		if out, err := exec.Command("bash", "../scripts/cluster-down.sh").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "cluster-down: %v\n%s", err, out)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// clusterDir is where scripts/cluster-lib.sh keeps the cluster.
func clusterDir() string {
	if d := os.Getenv("ANKLUME_CLUSTER_DIR"); d != "" {
		return d
	}
	return "/var/lib/anklume-cluster"
}

// useCluster brings the test cluster up (once per run) and points the
// incus client and anklume of this test at it, with the lines cluster-up
// printed (t.Setenv: restored when the test ends, so the tests that use
// the host's daemon are not affected).
func useCluster(t *testing.T) {
	t.Helper()
	needRoot(t, "incus", "unshare", "nsenter", "ip", "flock")
	if _, err := os.Stat("/usr/libexec/incus/incusd"); err != nil {
		skip(t, "incusd is not installed (run scripts/incus-test-env.sh)")
	}
	if err := startCluster(); err != nil {
		t.Fatal(err)
	}
	for k, v := range clusterEnv {
		t.Setenv(k, v)
	}
}

// startCluster runs scripts/cluster-up.sh once per test run and keeps the
// export lines it printed in clusterEnv.
func startCluster() error {
	clusterOnce.Do(func() {
		probe := exec.Command("incus", "info")
		probe.Env = append(os.Environ(), "INCUS_SOCKET="+filepath.Join(clusterDir(), "m1", "unix.socket"))
		wasUp := probe.Run() == nil
		cmd := exec.Command("bash", "../scripts/cluster-up.sh")
		var errOut strings.Builder
		cmd.Stderr = &errOut
		out, err := cmd.Output()
		if !wasUp {
			clusterStarted = true // even half up: TestMain removes it
		}
		if err != nil {
			clusterErr = fmt.Errorf("scripts/cluster-up.sh: %v\n%s", err, errOut.String())
			return
		}
		fmt.Fprint(os.Stderr, errOut.String())
		clusterEnv = map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
			if !ok || !strings.HasPrefix(sc.Text(), "export ") {
				clusterErr = fmt.Errorf("scripts/cluster-up.sh printed %q on stdout, not an export line", sc.Text())
				return
			}
			clusterEnv[k] = v
		}
		if len(clusterEnv) == 0 {
			clusterErr = fmt.Errorf("scripts/cluster-up.sh printed no export line")
		}
	})
	return clusterErr
}

// clusterMember runs scripts/cluster-member.sh stop|start on member m.
func clusterMember(t *testing.T, action, m string) {
	t.Helper()
	if out, err := exec.Command("bash", "../scripts/cluster-member.sh", action, m).CombinedOutput(); err != nil {
		t.Fatalf("cluster-member.sh %s %s: %v\n%s", action, m, err, out)
	}
}

// TestClusterHarnessLive: cluster-up prints only export lines; they point
// the plain incus client at a 3-member cluster whose members are all
// online, with the group lab = m2, m3; the busybox test image, imported
// once, launches on m2 with --target in a project without its own images
// (as anklume's projects are); and the host's own daemon never sees it.
func TestClusterHarnessLive(t *testing.T) {
	useCluster(t)
	sock := os.Getenv("INCUS_SOCKET")
	if want := filepath.Join(clusterDir(), "m1", "unix.socket"); sock != want {
		t.Fatalf("cluster-up pointed INCUS_SOCKET at %q, want %q", sock, want)
	}
	if got := mustRun(t, "", "incus", "cluster", "list", "-f", "csv", "-c", "n,s"); got != "m1,ONLINE\nm2,ONLINE\nm3,ONLINE\n" {
		t.Fatalf("cluster members:\n%s", got)
	}
	if got := mustRun(t, "", "incus", "cluster", "group", "show", "lab"); !strings.Contains(got, "members:\n- m2\n- m3\n") {
		t.Fatalf("group lab:\n%s", got)
	}

	const project, name = "cl-smoke", "cl-smoke-c1"
	cleanup := func() {
		_ = exec.Command("incus", "delete", "--force", "--project", project, name).Run()
		_ = exec.Command("incus", "project", "delete", project).Run()
	}
	cleanup()
	t.Cleanup(cleanup)
	mustRun(t, "", "incus", "project", "create", project, "-c", "features.images=false", "-c", "features.profiles=false")
	mustRun(t, "", "incus", "launch", testImage, name, "--target", "m2", "--project", project, "--quiet")
	if got := mustRun(t, "", "incus", "list", name, "--project", project, "-f", "csv", "-c", "n,s,L"); got != name+",RUNNING,m2\n" {
		t.Fatalf("after launch --target m2: %q", got)
	}
	if got := mustRun(t, "", "incus", "exec", name, "--project", project, "--", "cat", "/etc/hostname"); got != "anklume-test\n" {
		t.Fatalf("exec in %s: %q", name, got)
	}

	// The host's daemon, on its own socket, knows nothing of it.
	host := exec.Command("incus", "project", "list", "-f", "csv", "-c", "n")
	host.Env = withoutEnv(os.Environ(), "INCUS_SOCKET")
	out, err := host.CombinedOutput()
	if err != nil {
		t.Fatalf("the host's daemon: %v\n%s", err, out)
	}
	if strings.Contains("\n"+string(out), "\n"+project+"\n") {
		t.Errorf("the host's daemon has project %s:\n%s", project, out)
	}
}

// withoutEnv returns env without the variable key.
func withoutEnv(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}
