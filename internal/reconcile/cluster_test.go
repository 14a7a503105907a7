package reconcile

import (
	"context"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/plan"
)

// clusterFake is a fake cluster: m1, m2, m3, group lab = m2, m3.
func clusterFake() *incusx.Fake {
	f := incusx.NewFake()
	for _, m := range []string{"m1", "m2", "m3"} {
		f.AddClusterMember(m)
	}
	f.AddClusterGroup("lab", "m2", "m3")
	return f
}

// threeDomains has one domain per member: a by name, b and c through the
// group.
const threeDomains = `  a:
    trust_level: admin
    target: m1
    machines:
      a-1: {}
  b:
    trust_level: trusted
    target: "@lab"
    machines:
      b-1: {}
      b-2: {}
  c:
    target: "@lab"
    machines:
      c-1: {}
`

// members returns the member each project records and each instance runs
// on, "project=member" and "project/instance@member", sorted.
func members(t *testing.T, f *incusx.Fake) string {
	t.Helper()
	ctx := context.Background()
	var out []string
	ps, err := f.Projects(ctx)
	must(t, err)
	for _, p := range ps {
		if m := p.Config[incus.KeyMember]; m != "" {
			out = append(out, p.Name+"="+m)
		}
	}
	is, err := f.Instances(ctx)
	must(t, err)
	for _, i := range is {
		out = append(out, i.Project+"/"+i.Name+"@"+i.Location)
	}
	return strings.Join(out, " ")
}

// TestClusterPlacement: a member target is used as is, a group target
// picks the member of the group with the fewest anklume instances (the
// domains placed earlier in the plan count), the choice is shown and
// recorded on the project, bridges are created pending on every member
// first, and the next plan is empty and keeps every domain where it is.
func TestClusterPlacement(t *testing.T) {
	f := clusterFake()
	m, want := compile(t, psot(threeDomains))
	p := mustPlan(t, f, m, want, Options{})
	got := text(t, p)
	contains(t, got,
		"Domain a (project a, network net-a, member m1)",
		"  ! domain a: placed on cluster member m1 (its target)",
		"Domain b (project b, network net-b, member m2)",
		`  ! domain b: placed on cluster member m2 (the online member of group "lab" with the fewest anklume instances)`+"",
		"Domain c (project c, network net-c, member m3)",
	)
	for _, c := range p.Changes {
		if c.Kind == plan.KindNetwork && strings.Join(c.Members, ",") != "m1,m2,m3" {
			t.Errorf("network %s: pending creates on %v, want every member", c.Name, c.Members)
		}
	}
	converge(t, f, p)
	if got, want := members(t, f), "a=m1 b=m2 c=m3 a/a-1@m1 b/b-1@m2 b/b-2@m2 c/c-1@m3"; got != want {
		t.Errorf("placement:\n got %s\nwant %s", got, want)
	}
	// A new run computes the loads again: m3 is now the emptiest member
	// of lab, yet b stays on m2.
	m, want = compile(t, psot(threeDomains))
	assertEmpty(t, f, m, want, Options{})
}

// TestClusterPendingNetwork: a bridge left pending on some members (a run
// that stopped between the per-member creates) is a create to finish,
// not a network that exists.
func TestClusterPendingNetwork(t *testing.T) {
	f := clusterFake()
	must(t, f.CreateNetworkOn(context.Background(), "m2", incusNet("net-a")))
	m, want := compile(t, psot("  a:\n    trust_level: admin\n    target: m1\n    machines:\n      a-1: {}\n"))
	p := mustPlan(t, f, m, want, Options{})
	contains(t, text(t, p), "  + network net-a ("+RepairReason+": pending on m2, not yet on m1, m3)")
	converge(t, f, p)
	assertEmpty(t, f, m, want, Options{})
}

// TestClusterOfflineMember: the domains placed on an offline member are
// unknown: nothing is planned for them, even when they were removed from
// the configuration, and the others are planned; with the member back the
// plan is empty.
func TestClusterOfflineMember(t *testing.T) {
	f := clusterFake()
	m, want := compile(t, psot(threeDomains))
	converge(t, f, mustPlan(t, f, m, want, Options{}))
	f.SetMemberStatus("m3", "Offline")

	// c (on m3) is removed from the configuration and a gets a machine.
	src := strings.Replace(threeDomains, "      a-1: {}\n", "      a-1: {}\n      a-2: {}\n", 1)
	src = src[:strings.Index(src, "  c:\n")]
	m, want = compile(t, psot(src))
	p := mustPlan(t, f, m, want, Options{})
	got := text(t, p)
	contains(t, got,
		"  + instance a/a-2 (lxc, anklume-test, 10.200.0.2)",
		"Domain c (project c)\n  ! domain c: unknown: cluster member m3 is offline; nothing is planned for this domain (nothing is deleted or re-created elsewhere)",
		"Plan: 1 to create, 0 to update, 0 to delete.\n1 domain is unknown (cluster member offline): nothing is planned for it.",
	)
	for _, c := range p.Changes {
		if c.Domain == "c" {
			t.Errorf("change planned for the unknown domain: %s %s", c.Action, c.Name)
		}
	}
	if len(p.Unknown) != 1 || p.Unknown[0].Member != "m3" {
		t.Errorf("unknown = %+v", p.Unknown)
	}
	converge(t, f, p)

	// The full configuration: c is unknown, the rest matches.
	m, want = compile(t, psot(strings.Replace(threeDomains, "      a-1: {}\n", "      a-1: {}\n      a-2: {}\n", 1)))
	p = mustPlan(t, f, m, want, Options{})
	if !p.Empty() || len(p.Unknown) != 1 {
		t.Fatalf("plan with m3 offline:\n%s", text(t, p))
	}
	contains(t, text(t, p), "No changes for the domains that could be read; 1 domain is unknown (cluster member offline).")

	// A new domain needs its bridge on every member.
	m2, want2 := compile(t, psot(strings.Replace(threeDomains, "      a-1: {}\n", "      a-1: {}\n      a-2: {}\n", 1)+"  d:\n    target: m1\n"))
	p = mustPlan(t, f, m2, want2, Options{})
	if len(p.Failed) != 1 || p.Failed[0].Message != "its bridge net-d must be created, which needs every cluster member online; m3 is offline" {
		t.Errorf("failed = %+v", p.Failed)
	}

	f.SetMemberStatus("m3", "Online")
	assertEmpty(t, f, m, want, Options{})
}

// TestClusterMove: a domain moves only when its target changes, and then
// the plan says so: its instances are replaced on the new member.
func TestClusterMove(t *testing.T) {
	f := clusterFake()
	m, want := compile(t, psot(threeDomains))
	converge(t, f, mustPlan(t, f, m, want, Options{}))

	// b on m2 may stay when its target names m2 itself.
	m, want = compile(t, psot(strings.Replace(threeDomains, "target: \"@lab\"\n    machines:\n      b-1", "target: m2\n    machines:\n      b-1", 1)))
	assertEmpty(t, f, m, want, Options{})

	// a moves from m1 to the group: refused while its instance is
	// protected, replaced on the new member once it is ephemeral.
	m, want = compile(t, psot(strings.Replace(threeDomains, "target: m1", `target: "@lab"`, 1)))
	if _, err := planOn(t, f, m, want, Options{}); err == nil ||
		err.Error() != "cannot move protected instance a/a-1 to cluster member m3 (security.protection.delete=true); set ephemeral: true first" {
		t.Errorf("move of a protected instance: %v", err)
	}
	src := strings.Replace(threeDomains, "    target: m1\n", "    ephemeral: true\n    target: m1\n", 1)
	m, want = compile(t, psot(src))
	converge(t, f, mustPlan(t, f, m, want, Options{}))
	m, want = compile(t, psot(strings.Replace(src, "target: m1", `target: "@lab"`, 1)))
	p := mustPlan(t, f, m, want, Options{})
	got := text(t, p)
	contains(t, got,
		"  ! domain a: moves from cluster member m1 to m3 (its target is now @lab); its instances are re-created there",
		"  -/+ instance a/a-1 (replace: cluster member m1 -> m3)",
		`      ~ config["user.anklume.member"]: "m1" -> "m3"`,
	)
	converge(t, f, p)
	if got := members(t, f); !strings.Contains(got, "a=m3") || !strings.Contains(got, "a/a-1@m3") {
		t.Errorf("after the move: %s", got)
	}
	assertEmpty(t, f, m, want, Options{})
}

// TestClusterSingleServer: on a single server no target is sent and no
// member is recorded, and a target is a plan-time failure.
func TestClusterSingleServer(t *testing.T) {
	f := incusx.NewFake()
	m, want := compile(t, psot("  a:\n    trust_level: admin\n    machines:\n      a-1: {}\n"))
	p := mustPlan(t, f, m, want, Options{})
	converge(t, f, p)
	if got := members(t, f); got != "a/a-1@none" {
		t.Errorf("single server: %s", got)
	}
	for _, r := range f.Log().Strings() {
		if strings.Contains(r, "target=") || strings.Contains(r, "cluster") {
			t.Errorf("cluster request on a single server: %s", r)
		}
	}
	m, want = compile(t, psot("  a:\n    trust_level: admin\n    target: m1\n"))
	p = mustPlan(t, f, m, want, Options{})
	if len(p.Failed) != 1 || p.Failed[0].Message != `target "m1" is set but the Incus server is not clustered` {
		t.Errorf("failed = %+v", p.Failed)
	}
}

// incusNet is the per-member create request of a bridge.
func incusNet(name string) api.NetworksPost {
	return api.NetworksPost{Name: name, Type: "bridge"}
}

// TestClusterPolicyPlacement: a domain free to go anywhere joins the
// domain a network policy links it to; two domains placed apart before a
// policy linked them fail their plan-time checks.
func TestClusterPolicyPlacement(t *testing.T) {
	f := clusterFake()
	const two = "  a:\n    trust_level: admin\n    machines:\n      a-1: {}\n  b:\n    trust_level: trusted\n    machines:\n      b-1: {}\n"
	const policy = "network_policies:\n  - {from: a, to: b, ports: [22]}\n"
	m, want := compile(t, psot(two+policy))
	p := mustPlan(t, f, m, want, Options{})
	contains(t, text(t, p), "  ! domain b: placed on cluster member m1 (a network policy links it to a domain placed there)")

	f = clusterFake()
	m, want = compile(t, psot(two))
	converge(t, f, mustPlan(t, f, m, want, Options{}))
	if got := members(t, f); got != "a=m1 b=m2 a/a-1@m1 b/b-1@m2" {
		t.Fatalf("placement without a policy: %s", got)
	}
	m, want = compile(t, psot(two+policy))
	p = mustPlan(t, f, m, want, Options{})
	if len(p.Failed) != 2 || p.Failed[0].Message != "a network policy links it to domain b, on cluster member m2, but it is on m1; anklume does not route between cluster members: give both domains the same member as target" {
		t.Errorf("failed = %+v", p.Failed)
	}
}

// TestClusterEvacuated: an instance that Incus moved away from its
// evacuated member is left where it is, with a note.
func TestClusterEvacuated(t *testing.T) {
	f := clusterFake()
	src := strings.Replace(threeDomains, "    target: m1\n", "    ephemeral: true\n    target: m1\n", 1)
	m, want := compile(t, psot(src))
	converge(t, f, mustPlan(t, f, m, want, Options{}))
	ctx := context.Background()
	must(t, f.UpdateInstanceState(ctx, "a", "a-1", api.InstanceStatePut{Action: incusx.ActionStop, Force: true}))
	must(t, f.DeleteInstance(ctx, "a", "a-1"))
	x := want.Instance("a", "a-1")
	must(t, f.CreateInstanceOn(ctx, "a", "m2", x.InstancesPost)) // where an evacuation took it
	f.SetMemberStatus("m1", "Evacuated")
	m, want = compile(t, psot(src))
	p := mustPlan(t, f, m, want, Options{})
	if !p.Empty() {
		t.Fatalf("plan with m1 evacuated:\n%s", text(t, p))
	}
	contains(t, text(t, p), "  ! instance a/a-1: runs on cluster member m2 while m1 is evacuated")
}
