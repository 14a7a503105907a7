package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/internal/incusx"
)

// clusterPSOT is the live cluster scenario: one domain per member, cl-a by
// member name (m1), cl-b and cl-c through the cluster group lab (m2, m3:
// anklume picks the member with the fewest instances, so they land on
// different members), and cl-d, also on m1, beside cl-a for the isolation
// between two domains on one member. Egress off (no NAT), ephemeral (not
// protected), subnets pinned; the names start with "cl" (LXC cgroups are
// named host-wide).
const clusterPSOT = `format_version: 1
project_name: e2e-cluster
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: images:debian/13
domains:
  cl-a:
    trust_level: trusted
    subnet_id: 81
    egress: false
    ephemeral: true
    target: m1
    machines:
      cl-a1: {}
      cl-a2: {}
  cl-b:
    trust_level: trusted
    subnet_id: 82
    egress: false
    ephemeral: true
    target: "@lab"
    machines:
      cl-b1: {}
      cl-b2: {}
  cl-c:
    trust_level: trusted
    subnet_id: 83
    egress: false
    ephemeral: true
    target: "@lab"
    machines:
      cl-c1: {}
      cl-c2: {}
  cl-d:
    trust_level: trusted
    subnet_id: 84
    egress: false
    ephemeral: true
    target: m1
    machines:
      cl-d1: {}
`

var clusterDomains = []string{"cl-a", "cl-b", "cl-c", "cl-d"}

// cleanupClusterInfra removes what the cluster scenario may have created,
// through the member INCUS_SOCKET points at, and the ruleset from the
// members' namespaces.
func cleanupClusterInfra() {
	cleanupDomains(clusterDomains)
	for _, m := range []string{"m1", "m2", "m3"} {
		if pid, err := memberNetns(m); err == nil {
			_ = exec.Command("nsenter", "-n", "-t", pid, "nft", "delete", "table", "inet", "anklume").Run()
		}
	}
}

// memberNetns returns the pid of the process holding member m's network
// namespace (scripts/cluster-lib.sh).
func memberNetns(m string) (string, error) {
	b, err := os.ReadFile(filepath.Join(clusterDir(), "ns", m, "pid"))
	return strings.TrimSpace(string(b)), err
}

// anklumeInNetns runs anklume as anklume() does, inside member m's network
// namespace (nsenter -n), where `nftables deploy` loads the ruleset.
func anklumeInNetns(t *testing.T, m, dir string, args ...string) (string, int) {
	t.Helper()
	pid, err := memberNetns(m)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", append([]string{"-n", "-t", pid, binary(t)}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ANKLUME_IMAGE_MAP=images:debian/13="+testImage,
		"ANKLUME_CONTEXT_DIR="+t.TempDir(), "ANKLUME_HOST_RESOURCES=cpu=10,memory=40GiB",
		"ANKLUME_SKIP_HOST_SUBNET_CHECK=1", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// locations returns instance -> cluster member for project p.
func locations(t *testing.T, p string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(mustRun(t, "", "incus", "list", "--project", p, "-f", "csv", "-c", "n,L")), "\n") {
		if n, m, ok := strings.Cut(line, ","); ok {
			out[n] = m
		}
	}
	return out
}

// pings reports whether instance from (in project p) gets an answer from
// ip: one echo, two seconds.
func pings(p, from, ip string) bool {
	return exec.Command("incus", "exec", "--project", p, from, "--", "ping", "-c", "1", "-W", "2", ip).Run() == nil
}

// TestClusterApplyLive runs anklume against the real 3-member cluster:
// one apply places each domain on one member (by name, or through the
// group lab, the choice recorded on its project) and converges (the plan
// after it is empty; the plan shows each domain's member, status too);
// machines of a domain reach each other, and with the ruleset loaded in
// each member's network namespace (by nftables deploy, and on one member
// by the members play of site.yml, which loads the same table) two
// domains on the same member no longer do; import keeps each domain's
// member and its plan is empty; with the member of one domain stopped, plan and apply say that domain is
// unknown, plan nothing for it and delete nothing, while a change in
// another domain is applied; with the member back the plan is empty.
func TestClusterApplyLive(t *testing.T) {
	useCluster(t)
	cleanupClusterInfra()
	t.Cleanup(cleanupClusterInfra)
	dir := t.TempDir()
	psot := filepath.Join(dir, "infra.yml")
	if err := os.WriteFile(psot, []byte(clusterPSOT), 0o644); err != nil {
		t.Fatal(err)
	}
	applyArgs := []string{"apply", "--yes", "--no-nftables", "--no-provision"}

	// The plan shows where each domain goes.
	out, errOut, code := anklume(t, dir, "plan")
	for _, m := range []string{"member m1", "member m2", "member m3"} {
		if code != 0 || !strings.Contains(out, m) {
			t.Errorf("first plan: exit %d, no %q\n%s\n%s", code, m, out, errOut)
		}
	}

	start := time.Now()
	out, errOut, code = anklume(t, dir, applyArgs...)
	took := time.Since(start)
	if code != 0 || !strings.Contains(out, "Apply complete: ") {
		t.Fatalf("first apply: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("cluster apply of 4 domains, 7 instances, 4 bridges on 3 members: %s", took.Round(10*time.Millisecond))

	// Placement: one member per domain, recorded on its project.
	member := map[string]string{}
	for _, p := range clusterDomains {
		locs := locations(t, p)
		for n, m := range locs {
			if member[p] == "" {
				member[p] = m
			}
			if m != member[p] {
				t.Errorf("domain %s spans members: %s on %s, others on %s", p, n, m, member[p])
			}
		}
		if got := strings.TrimSpace(mustRun(t, "", "incus", "project", "get", p, "user.anklume.member")); got != member[p] {
			t.Errorf("project %s records member %q, its instances are on %q", p, got, member[p])
		}
	}
	if member["cl-a"] != "m1" || member["cl-d"] != "m1" {
		t.Errorf("cl-a on %q and cl-d on %q, want m1 (their target)", member["cl-a"], member["cl-d"])
	}
	if b, c := member["cl-b"], member["cl-c"]; !(b == "m2" && c == "m3" || b == "m3" && c == "m2") {
		t.Errorf("cl-b on %q and cl-c on %q, want m2 and m3 (group lab, fewest instances first)", b, c)
	}
	if t.Failed() {
		t.FailNow()
	}

	planEmpty := func(step string) {
		t.Helper()
		out, errOut, code := anklume(t, dir, "plan", "--detailed-exitcode")
		if code != 0 || !strings.HasSuffix(out, "No changes. Incus matches the configuration.\n") {
			t.Errorf("%s: plan exit %d\n%s\n%s", step, code, out, errOut)
		}
	}
	planEmpty("after the first apply")
	sameAsDatabase(t)
	statusShows(t, dir, map[string]string{"cl-a": "m1: online", "cl-b": member["cl-b"] + ": online",
		"cl-c": member["cl-c"] + ": online", "cl-d": "m1: online"})

	// Traffic inside each domain, and between the two domains on m1
	// before the ruleset (so that the isolation checked below is the
	// ruleset's, not a network that routes nothing).
	ip := map[string]string{}
	for p, names := range map[string][]string{"cl-a": {"cl-a1", "cl-a2"}, "cl-b": {"cl-b1", "cl-b2"}, "cl-c": {"cl-c1", "cl-c2"}, "cl-d": {"cl-d1"}} {
		for _, n := range names {
			ip[n] = eth0IPv4(t, p, n)
		}
	}
	intra := func(step string) {
		t.Helper()
		for _, c := range [][3]string{{"cl-a", "cl-a1", "cl-a2"}, {"cl-b", "cl-b1", "cl-b2"}, {"cl-c", "cl-c1", "cl-c2"}} {
			if !pings(c[0], c[1], ip[c[2]]) {
				t.Errorf("%s: %s (on %s) does not reach %s in its domain", step, c[1], member[c[0]], c[2])
			}
		}
	}
	intra("before the ruleset")
	if !pings("cl-a", "cl-a1", ip["cl-d1"]) {
		t.Fatalf("before the ruleset, cl-a1 does not reach cl-d1 on the same member: the isolation check would prove nothing")
	}

	// The ruleset, loaded in each member's network namespace: on m1 and
	// on cl-c's member by anklume nftables deploy, on cl-b's member by
	// the members play of the generated site.yml (ansible-playbook run in
	// that namespace, the member its incus_hosts inventory, connection
	// local, nothing persisted on this machine).
	viaPlay := member["cl-b"]
	for _, m := range []string{"m1", member["cl-c"]} {
		if out, code := anklumeInNetns(t, m, dir, "nftables", "deploy", "--no-persist"); code != 0 {
			t.Fatalf("nftables deploy in %s's namespace: exit %d\n%s", m, code, out)
		}
	}
	inv := filepath.Join(dir, "members-inventory")
	if err := os.MkdirAll(inv, 0o755); err != nil {
		t.Fatal(err)
	}
	hosts := "incus_hosts:\n  hosts:\n    " + viaPlay + ":\n      ansible_connection: local\n      ansible_python_interpreter: /usr/bin/python3\n"
	if err := os.WriteFile(filepath.Join(inv, "members.yml"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	pid, err := memberNetns(viaPlay)
	if err != nil {
		t.Fatal(err)
	}
	needTools(t, "ansible-playbook")
	if out, errOut, code := anklume(t, dir, "sync"); code != 0 {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
	}
	play := exec.Command("nsenter", "-n", "-t", pid, "ansible-playbook", "-i", "inventory", "-i", inv, "site.yml",
		"--tags", "members", "-e", "incus_nftables_persist=false")
	play.Dir, play.Env = dir, ansibleEnv(dir)
	if out, err := play.CombinedOutput(); err != nil {
		t.Fatalf("site.yml --tags members in %s's namespace: %v\n%s", viaPlay, err, out)
	}
	table := func(m string) string {
		pid, err := memberNetns(m)
		if err != nil {
			t.Fatal(err)
		}
		return mustRun(t, "", "nsenter", "-n", "-t", pid, "nft", "list", "table", "inet", "anklume")
	}
	if a, b := table("m1"), table(viaPlay); a != b {
		t.Errorf("the members play loaded on %s another table than nftables deploy on m1:\n%s\nvs\n%s", viaPlay, b, a)
	}
	intra("with the ruleset")
	if pings("cl-a", "cl-a1", ip["cl-d1"]) || pings("cl-d", "cl-d1", ip["cl-a1"]) {
		t.Errorf("with the ruleset loaded on m1, cl-a and cl-d (both on m1) still reach each other")
	}

	// Import round trip: the imported PSOT keeps each domain's member and
	// plans nothing.
	out, errOut, code = anklume(t, dir, "import", "--infra", "e2e-cluster", "--only-anklume", "-o", "imported.yml")
	if code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	imported, err := os.ReadFile(filepath.Join(dir, "imported.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range clusterDomains {
		if !keepsMember(domainBlock(string(imported), p), member[p], p == "cl-b" || p == "cl-c") {
			t.Errorf("imported domain %s does not keep member %s:\n%s", p, member[p], domainBlock(string(imported), p))
		}
	}
	if out, errOut, code := anklume(t, dir, "-f", "imported.yml", "plan", "--detailed-exitcode"); code != 0 {
		t.Errorf("plan of the imported PSOT: exit %d\n%s\n%s", code, out, errOut)
	}

	// One member stopped: the member of cl-c.
	off := member["cl-c"]
	stopped := true
	clusterMember(t, "stop", off)
	t.Cleanup(func() {
		if stopped {
			clusterMember(t, "start", off)
		}
	})
	before := map[string]map[string]string{}
	for _, p := range clusterDomains {
		before[p] = locations(t, p)
	}
	psot2 := strings.Replace(clusterPSOT, "      cl-d1: {}\n", "      cl-d1: {}\n      cl-d2: {}\n", 1)
	if err := os.WriteFile(psot, []byte(psot2), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = anklume(t, dir, "plan", "--detailed-exitcode")
	if code != 2 || !strings.Contains(out+errOut, "domain cl-c: unknown") || !strings.Contains(out, "+ instance cl-d/cl-d2") {
		t.Errorf("plan with %s stopped: exit %d, want 2, cl-c unknown and cl-d2 to create\n%s\n%s", off, code, out, errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "- ") || strings.HasPrefix(strings.TrimSpace(line), "-/+ ") || strings.Contains(line, "cl-c/") {
			t.Errorf("plan with %s stopped plans %q", off, line)
		}
	}
	statusShows(t, dir, map[string]string{"cl-c": off + ": offline, state unknown", "cl-a": "m1: online"})
	out, errOut, code = anklume(t, dir, applyArgs...)
	if code == 0 || !strings.Contains(out+errOut, "cl-c") || !strings.Contains(out, "unknown") {
		t.Errorf("apply with %s stopped: exit %d, want non-zero and cl-c reported unknown\n%s\n%s", off, code, out, errOut)
	}
	if live := instances(t, "cl-d")["cl-d2"]; live.Status != "Running" {
		t.Errorf("cl-d2, in a domain on an online member, was not created and started: %q", live.Status)
	}
	for _, p := range clusterDomains {
		for n, m := range before[p] {
			if got, ok := locations(t, p)[n]; !ok || got != m {
				t.Errorf("with %s stopped, %s/%s on %s is now %q (present %v)", off, p, n, m, got, ok)
			}
		}
	}

	// The member back: everything converged, cl-c's machines running.
	clusterMember(t, "start", off)
	stopped = false
	planEmpty("with " + off + " back")
	for _, n := range []string{"cl-c1", "cl-c2"} {
		deadline := time.Now().Add(60 * time.Second)
		for instances(t, "cl-c")[n].Status != "Running" {
			if time.Now().After(deadline) {
				t.Errorf("%s not running again on %s: %q", n, off, instances(t, "cl-c")[n].Status)
				break
			}
			time.Sleep(time.Second)
		}
	}
}

// statusShows checks that anklume status shows each domain of want with
// its member line ("m1: online").
func statusShows(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	out, errOut, _ := anklume(t, dir, "status")
	for d, m := range want {
		_, block, _ := strings.Cut(out, "Domain "+d+" (")
		block, _, _ = strings.Cut(block, "\nDomain ")
		if !strings.Contains(block, "\n  member "+m+"\n") {
			t.Errorf("status does not show domain %s on member %s:\n%s\n%s", d, m, out, errOut)
		}
	}
}

// keepsMember reports whether an imported domain block places the domain
// on member: a domain target naming it (or the group lab, for a domain
// placed through it: the member is then the one recorded on the project),
// or, when the domain has none, every machine's target naming it.
func keepsMember(block, member string, inLab bool) bool {
	lines := strings.Split(block, "\n")
	machines, onMember := 0, 0
	for _, l := range lines {
		switch {
		case l == "    target: "+member:
			return true
		case inLab && (l == "    target: '@lab'" || l == "    target: \"@lab\""):
			return true
		case strings.HasPrefix(l, "      ") && !strings.HasPrefix(l, "       ") && strings.HasSuffix(l, ":"):
			machines++
		case l == "        target: "+member:
			onMember++
		}
	}
	return machines > 0 && onMember == machines
}

// domainBlock returns the lines of domain d in a PSOT (from its key to the
// next domain key).
func domainBlock(psot, d string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(psot, "\n") {
		if m := domainLine.FindStringSubmatch(line); m != nil {
			in = m[1] == d
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// sameAsDatabase checks, on the daemon INCUS_SOCKET points at, that the
// database reads a plan uses on the local socket (incusx.DatabaseReader)
// return what GET /1.0/networks?recursion=1 returns for every managed
// network (on a cluster, the member-specific keys of the member asked and
// every member in locations, in any order) and what GET /1.0/projects?recursion=1
// returns, used_by aside.
func sameAsDatabase(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	c, err := incusx.Connect(ctx, incusx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.ServerInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	public, err := c.Networks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fromDB, err := c.NetworksFromDatabase(ctx, info.Environment.ServerName, info.Environment.ServerClustered)
	if err != nil {
		t.Fatal(err)
	}
	var managed []api.Network
	for _, n := range public {
		if n.Managed {
			n.UsedBy = nil
			slices.Sort(n.Locations) // Incus lists them in map order
			managed = append(managed, n)
		}
	}
	if len(managed) == 0 || !reflect.DeepEqual(fromDB, managed) {
		t.Errorf("bridges read from the database on %s differ from the public list:\n db:  %+v\n api: %+v",
			info.Environment.ServerName, fromDB, managed)
	}
	projects, err := c.Projects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range projects {
		projects[i].UsedBy = nil
	}
	projectsDB, err := c.ProjectsFromDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(projectsDB, projects) {
		t.Errorf("projects read from the database differ from the public list:\n db:  %+v\n api: %+v", projectsDB, projects)
	}
}
