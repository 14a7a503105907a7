package e2e

import (
	"strings"
	"testing"
)

// rolesMovePSOT is rolesPSOT with ro-a1 protected (ephemeral: false) and
// %s the domain that holds it.
const rolesMovePSOT = `format_version: 1
project_name: %s
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: images:debian/13
domains:
  ro-a:
    trust_level: admin
    subnet_id: 95
    egress: false
    ephemeral: true
    machines:
      ro-a2: {roles: []}
  ro-b:
    trust_level: trusted
    subnet_id: 96
    egress: false
    ephemeral: true
    machines:
      ro-b1: {roles: []}
`

// TestRolesMoveLive: on the plain Ansible path, a machine that changes
// domain is moved to its new project as apply moves it, never deleted and
// created again; a protected machine is therefore never duplicated, and
// plan is empty afterwards. It checks what a user relies on: the same
// name, the same root filesystem (a file written before the move is read
// back after it), the same config (its own keys, its protection; the keys
// that name its domain now name the new one), its new network, running
// again.
//
// The instance's volatile.uuid is not kept, and the test does not ask for
// it: Incus 6.0 moves a stopped instance to another project (POST
// /1.0/instances/<name> with migration and project, what both `incus move
// --target-project` and apply send) as a copy into the target project
// followed by a delete of the source, and the copy into a restricted
// project (every anklume project) strips the volatile.* keys other than a
// few safe ones (apply_template, base_image, last_state.power, *.hwaddr,
// *.apply_quota), so the copy gets a new volatile.uuid. (Incus sources,
// v6.0.4: cmd/incusd/instance_post.go migrateInstance,
// internal/server/project/permissions.go checkRestrictionsOnVolatileConfig
// with strip for a copy or a migration.)
func TestRolesMoveLive(t *testing.T) {
	needIncus(t)
	needTools(t, "ansible-playbook")
	cleanupRoles()
	t.Cleanup(cleanupRoles)
	infra := "ro-" + randomSuffix(t)
	machine := "      ro-m1: {roles: [], ephemeral: false, description: moved machine, config: {user.note: kept}}\n"
	inA := strings.Replace(rolesMovePSOT, "      ro-a2: {roles: []}\n", "      ro-a2: {roles: []}\n"+machine, 1)
	inB := strings.Replace(rolesMovePSOT, "      ro-b1: {roles: []}\n", "      ro-b1: {roles: []}\n"+machine, 1)

	dir := t.TempDir()
	rolesInfra(t, dir, inA, infra)
	playbook(t, dir)
	before := instances(t, "ro-a")["ro-m1"]
	if before.Status != "Running" || before.Config["security.protection.delete"] != "true" {
		t.Fatalf("ro-a/ro-m1 before the move: status %q, config %v", before.Status, before.Config)
	}
	marker := "written before the move " + randomSuffix(t)
	mustRun(t, "", "incus", "exec", "--project", "ro-a", "ro-m1", "--", "sh", "-c", "echo '"+marker+"' > /move-marker")

	rolesInfra(t, dir, inB, infra)
	playbook(t, dir)
	if _, still := instances(t, "ro-a")["ro-m1"]; still {
		t.Error("ro-m1 is still in project ro-a: duplicated")
	}
	after, ok := instances(t, "ro-b")["ro-m1"]
	if !ok {
		t.Fatal("ro-m1 is not in project ro-b")
	}
	if after.Status != "Running" {
		t.Errorf("ro-m1 after the move: status %q", after.Status)
	}
	if got := mustRun(t, "", "incus", "exec", "--project", "ro-b", "ro-m1", "--", "cat", "/move-marker"); strings.TrimSpace(got) != marker {
		t.Errorf("ro-m1's root filesystem after the move: /move-marker = %q, want %q (created again?)", got, marker)
	}
	// The keys that name the domain follow the move; every other key but
	// the volatile ones stays.
	newDomain := map[string]string{"user.anklume.domain": "ro-b", "user.anklume.trust_level": "trusted"}
	for k, v := range before.Config {
		if want, ok := newDomain[k]; ok {
			v = want
		} else if strings.HasPrefix(k, "volatile.") {
			continue
		}
		if after.Config[k] != v {
			t.Errorf("ro-m1 config %s after the move = %q, want %q", k, after.Config[k], v)
		}
	}
	if after.Config["user.note"] != "kept" || after.Config["security.protection.delete"] != "true" || after.Description != "moved machine" {
		t.Errorf("ro-m1 after the move: description %q, config %v", after.Description, after.Config)
	}
	t.Logf("volatile.uuid %s before the move, %s after it (Incus gives the copy into a restricted project a new one)",
		before.Config["volatile.uuid"], after.Config["volatile.uuid"])
	if got := mustRun(t, "", "incus", "config", "device", "get", "--project", "ro-b", "ro-m1", "eth0", "network"); strings.TrimSpace(got) != "net-ro-b" {
		t.Errorf("ro-m1 eth0 network %q, want net-ro-b", got)
	}
	planEmpty(t, dir, "after the move")
}
