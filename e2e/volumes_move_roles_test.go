package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRolesVolumesMoveLive: the persistent-data move of TestVolumesMoveLive
// from the plain Ansible path (anklume sync, ansible-playbook site.yml), on
// domains pr-a and pr-b (subnets 10.200.82–83). The old project keeps the
// machine's data path allowed until the machine has left it (Incus refuses
// a project restriction that one of its instances breaks), and is then
// restricted exactly: the file written in the machine's persistent data is
// read in the moved container and on the host at the new domain's path
// only, pr-a no longer allows the old path, anklume plan has no changes and
// a second playbook run changes nothing.
func TestRolesVolumesMoveLive(t *testing.T) {
	needIncus(t)
	needTools(t, "ansible-playbook")
	if err := exec.Command("incus", "image", "info", testImage).Run(); err != nil {
		skip(t, "image %q is missing (run make e2e-setup)", testImage)
	}
	doms := []string{"pr-a", "pr-b"}
	cleanupDomains(doms)
	t.Cleanup(func() { cleanupDomains(doms) })
	base, dir := t.TempDir(), t.TempDir()
	src := strings.NewReplacer("pm-", "pr-", "subnet_id: 80", "subnet_id: 82", "subnet_id: 81", "subnet_id: 83",
		"project_name: e2e-pmove", "project_name: pr-"+randomSuffix(t)).Replace(fmt.Sprintf(moveDataPSOT, base))
	machine := strings.ReplaceAll(moveDataMachine, "pm-", "pr-")
	run := func(domain string) int {
		t.Helper()
		y := strings.Replace(src, "      "+domain+"1: {roles: []}\n", "      "+domain+"1: {roles: []}\n"+machine, 1)
		syncPSOT(t, dir, y)
		return playbook(t, dir)
	}
	from := filepath.Join(base, "data", "pr-a", "pr-m", "keep")
	to := filepath.Join(base, "data", "pr-b", "pr-m", "keep")

	run("pr-a")
	mustIn(t, "pr-a", "pr-m", false, "echo mine > /keep/data.txt")
	run("pr-b")
	if _, ok := instances(t, "pr-a")["pr-m"]; ok {
		t.Error("pr-m is still in pr-a")
	}
	if got := mustIn(t, "pr-b", "pr-m", false, "cat /keep/data.txt"); got != "mine\n" {
		t.Errorf("moved pr-m reads %q", got)
	}
	if b, err := os.ReadFile(filepath.Join(to, "data.txt")); err != nil || string(b) != "mine\n" {
		t.Errorf("host reads %q, %v at %s", b, err, to)
	}
	if _, err := os.Lstat(from); err == nil {
		t.Errorf("%s still exists after the move", from)
	}
	// allows reports whether the project's restricted.devices.disk.paths
	// lets a disk device use path (an entry is the path or one of its
	// parents: a domain's data directory).
	allows := func(project, path string) bool {
		got := strings.TrimSpace(mustRun(t, "", "incus", "project", "get", project, "restricted.devices.disk.paths"))
		for _, e := range strings.Split(got, ",") {
			if e != "" && (path == e || strings.HasPrefix(path, strings.TrimSuffix(e, "/")+"/")) {
				return true
			}
		}
		return false
	}
	if allows("pr-a", from) {
		t.Errorf("pr-a still allows %s after the move", from)
	}
	if !allows("pr-b", to) {
		t.Errorf("pr-b does not allow %s", to)
	}
	planEmpty(t, dir, "after the move")
	if n := run("pr-b"); n != 0 {
		t.Errorf("second playbook run after the move: changed=%d, want 0", n)
	}
}
