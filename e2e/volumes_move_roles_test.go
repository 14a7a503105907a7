//go:build pendinglive

// Pending live: run once on the shared daemon at the end of a session, it
// FAILS: ansible-playbook site.yml updates project pr-a (incus_projects,
// whose new restricted.devices.disk.paths no longer holds the moving
// machine's persistent data path) before incus_instances releases the
// machine, and Incus refuses the update ("Attaching disks not backed by a
// pool is forbidden" for pd-keep). Nothing is moved or lost; the run stops.
// Next step: the projects role keeps the union of the current and desired
// disk paths while a move is pending and narrows them after the instances
// play (apply already releases before it moves).

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRolesVolumesMoveLive: the same move from the plain Ansible path
// (anklume sync, ansible-playbook site.yml), on domains pr-a and pr-b
// (subnets 10.200.82–83): the file written in the machine's persistent
// data is read in the moved container and on the host at the new domain's
// path only, and anklume plan then has no changes.
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
	run := func(domain string) {
		t.Helper()
		y := strings.Replace(src, "      "+domain+"1: {roles: []}\n", "      "+domain+"1: {roles: []}\n"+machine, 1)
		if err := os.WriteFile(filepath.Join(dir, "infra.yml"), []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, errOut, code := anklume(t, dir, "sync"); code != 0 {
			t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
		}
		playbook(t, dir)
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
	planEmpty(t, dir, "after the move")
}
