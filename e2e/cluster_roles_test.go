package e2e

import (
	"strings"
	"testing"
	"time"
)

// clusterRolesPSOT is the plain Ansible path's cluster scenario: clr-a on
// m1 by name, clr-b (two machines) and clr-c through the group lab.
// Egress off, ephemeral, subnets pinned; names start with "cl" (LXC
// cgroups are named host-wide).
const clusterRolesPSOT = `format_version: 1
project_name: e2e-cluster-roles
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: images:debian/13
domains:
  clr-a:
    trust_level: trusted
    subnet_id: 85
    egress: false
    ephemeral: true
    target: m1
    machines:
      clr-a1: {}
  clr-b:
    trust_level: trusted
    subnet_id: 86
    egress: false
    ephemeral: true
    target: "@lab"
    machines:
      clr-b1: {}
      clr-b2: {}
  clr-c:
    trust_level: trusted
    subnet_id: 87
    egress: false
    ephemeral: true
    target: "@lab"
    machines:
      clr-c1: {}
`

var clusterRolesDomains = []string{"clr-a", "clr-b", "clr-c"}

// TestClusterRolesLive runs the plain Ansible path (ansible-playbook
// site.yml, no anklume apply) against the real 3-member cluster: each
// domain's instances all run on one member, the member its target names
// or, for the group lab, the one with the fewest anklume instances (clr-b
// and clr-c on different members of lab), and that member is recorded on
// the domain's project as apply records it; anklume plan right after is
// empty (apply keeps the placement the roles chose), and a second run of
// the playbook changes nothing.
func TestClusterRolesLive(t *testing.T) {
	useCluster(t)
	needTools(t, "ansible-playbook")
	cleanupDomains(clusterRolesDomains)
	t.Cleanup(func() { cleanupDomains(clusterRolesDomains) })
	dir := t.TempDir()
	syncPSOT(t, dir, clusterRolesPSOT)

	start := time.Now()
	if n := playbook(t, dir); n == 0 {
		t.Fatal("the first playbook run on the cluster changed nothing")
	}
	t.Logf("site.yml on the cluster, 3 domains, 4 instances, 3 bridges: %s", time.Since(start).Round(10*time.Millisecond))

	member := map[string]string{}
	for _, p := range clusterRolesDomains {
		for n, m := range locations(t, p) {
			if member[p] == "" {
				member[p] = m
			}
			if m != member[p] {
				t.Errorf("domain %s spans members: %s on %s, others on %s", p, n, m, member[p])
			}
		}
		if got := strings.TrimSpace(mustRun(t, "", "incus", "project", "get", p, "user.anklume.member")); got != member[p] || got == "" {
			t.Errorf("project %s records member %q, its instances are on %q", p, got, member[p])
		}
	}
	if member["clr-a"] != "m1" {
		t.Errorf("clr-a on %q, want m1 (its target)", member["clr-a"])
	}
	if b, c := member["clr-b"], member["clr-c"]; !(b == "m2" && c == "m3" || b == "m3" && c == "m2") {
		t.Errorf("clr-b on %q and clr-c on %q, want m2 and m3 (group lab, fewest instances first)", b, c)
	}
	planEmpty(t, dir, "after site.yml on the cluster")
	if n := playbook(t, dir); n != 0 {
		t.Errorf("second playbook run on the cluster: changed=%d, want 0", n)
	}
}
