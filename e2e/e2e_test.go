// Package e2e runs the anklume binary against the real host: network
// namespaces, and later the Incus daemon, nft and ansible-playbook. Tests
// that need root or a tool skip with the reason; CI runs them as root with
// every tool installed (.ci/run), so there they run.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// binary builds cmd/anklume once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "anklume-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "anklume")
		cmd := exec.Command("go", "build", "-o", binPath, "../cmd/anklume")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building anklume: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

// requireEnv, when set (CI sets it), turns every e2e skip into a failure,
// so that CI cannot pass without running the e2e tests.
const requireEnv = "ANKLUME_E2E_REQUIRE"

// skip skips t with the reason, or fails it when requireEnv is set.
func skip(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(requireEnv) != "" {
		t.Fatalf("%s (and %s is set)", msg, requireEnv)
	}
	t.Skip("skipped: " + msg)
}

// needRoot skips t, saying why, unless it runs as root with the tools.
func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		skip(t, "needs root (network namespaces, nft, Incus); CI runs it as root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			skip(t, "%s is not installed; .ci/run installs it", tool)
		}
	}
}

// TestHostSubnetConflict: in a private network namespace with a dummy
// interface holding 10.120.0.5/24 (a veth: this kernel has no dummy
// module), a semi-trusted domain fails V31, and
// ANKLUME_SKIP_HOST_SUBNET_CHECK=1 suppresses the check (SPEC.md §16 #19).
func TestHostSubnetConflict(t *testing.T) {
	needRoot(t, "unshare", "ip")
	bin := binary(t)
	dir := t.TempDir()
	psot := `project_name: v31
global:
  addressing: {}
domains:
  lab:
    trust_level: semi-trusted
    machines:
      lab-web: {}
  ops:
    trust_level: admin
    machines:
      ops-web: {}
`
	rewritePSOT(t, dir, psot)
	script := `set -e
ip link add d0 type veth peer name d1
ip addr add 10.120.0.5/24 dev d0
ip link add net-lab type bridge
ip addr add 10.100.0.254/24 dev net-lab
set +e
"$1" validate; echo "exit=$?"
ANKLUME_SKIP_HOST_SUBNET_CHECK=1 "$1" validate; echo "exit=$?"
`
	cmd := exec.Command("unshare", "-n", "sh", "-c", script, "sh", bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ANKLUME_CONTEXT_DIR="+t.TempDir(), "ANKLUME_HOST_RESOURCES=cpu=10,memory=40GiB")
	cmd.Env = append(cmd.Env, "ANKLUME_SKIP_HOST_SUBNET_CHECK=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("unshare: %v\n%s", err, out)
	}
	want := `infra.yml:5:3: domains.lab: subnet conflict: 10.120.0.0/24 overlaps host interface "d0" (10.120.0.5/24)
  hint: choose another global.addressing.zone_base, or set ANKLUME_SKIP_HOST_SUBNET_CHECK=1
validation failed: 1 error
exit=1
ok: infra.yml is valid (2 domains, 2 machines, 0 policies)
exit=0
`
	// net-lab (an anklume bridge name) overlapping ops' subnet is skipped.
	if got := string(out); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(string(out), "net-lab") {
		t.Fatal("an anklume bridge must not count as a conflict")
	}
}
