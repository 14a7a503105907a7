package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The set-up and clean-up steps the live tests share: writing an
// infra.yml, syncing it, and purging the Incus objects of a test's
// domains.

// writePSOT writes src as infra.yml in a new directory and returns it.
func writePSOT(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	rewritePSOT(t, dir, src)
	return dir
}

// rewritePSOT writes src as the infra.yml of dir, replacing it.
func rewritePSOT(t *testing.T, dir, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "infra.yml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// syncPSOT writes src as the infra.yml of dir and runs anklume sync
// there, failing the test when sync fails.
func syncPSOT(t *testing.T, dir, src string) {
	t.Helper()
	rewritePSOT(t, dir, src)
	if out, errOut, code := anklume(t, dir, "sync"); code != 0 {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
	}
}

// cleanupDomains deletes, ignoring what is already gone, the projects and
// bridges of domains (project <d>, bridge net-<d>), whatever they hold:
// each instance with its delete protection lifted, the custom volumes,
// the profiles other than default.
func cleanupDomains(domains []string) {
	for _, p := range domains {
		out, _ := exec.Command("incus", "list", "--project", p, "-c", "n", "-f", "csv").Output()
		for _, n := range strings.Fields(string(out)) {
			_ = exec.Command("incus", "config", "set", n, "security.protection.delete=false", "--project", p).Run()
			_ = exec.Command("incus", "delete", "--force", "--project", p, n).Run()
		}
		out, _ = exec.Command("incus", "storage", "volume", "list", "default", "--project", p, "type=custom", "-c", "n", "-f", "csv").Output()
		for _, n := range strings.Fields(string(out)) {
			_ = exec.Command("incus", "storage", "volume", "delete", "default", n, "--project", p).Run()
		}
		out, _ = exec.Command("incus", "profile", "list", "--project", p, "-c", "n", "-f", "csv").Output()
		for _, n := range strings.Fields(string(out)) {
			if n != "default" {
				_ = exec.Command("incus", "profile", "delete", n, "--project", p).Run()
			}
		}
		_ = exec.Command("incus", "project", "delete", p).Run()
	}
	// The bridges last: a machine moved by hand (or by a test) onto
	// another domain's bridge is gone by now.
	for _, p := range domains {
		_ = exec.Command("incus", "network", "delete", "net-"+p).Run()
	}
}
