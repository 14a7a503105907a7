package apply

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/reconcile"
)

// clusterDomains places a on m1 and b through group lab.
var clusterDomains = strings.Replace(strings.Replace(twoDomains,
	"    ephemeral: true\n", "    ephemeral: true\n    target: m1\n", 1),
	"    trust_level: trusted\n", "    trust_level: trusted\n    target: \"@lab\"\n", 1)

func newCluster() *incusx.Fake {
	f := incusx.NewFake()
	for _, m := range []string{"m1", "m2", "m3"} {
		f.AddClusterMember(m)
	}
	f.AddClusterGroup("lab", "m2", "m3")
	return f
}

// TestApplyCluster: on a cluster every bridge is created pending on each
// member, then globally, before the instances, which are created on their
// domain's member; a run cut between the per-member creates is finished
// by the next one; a domain on an offline member is left alone and
// reported, and the run says it is incomplete.
func TestApplyCluster(t *testing.T) {
	f := newCluster()
	s := desired(t, clusterDomains)
	f.Fail("CreateNetworkOn", "net-b", errors.New("connection lost"))
	r, out, errOut := run(t, f, planFor(t, f, s, reconcile.Options{}), nil)
	if r.OK() {
		t.Fatalf("the cut run succeeded:\n%s", out)
	}
	f.Fail("CreateNetworkOn", "net-b", nil)
	f.Log().Reset()
	s = desired(t, clusterDomains)
	reapply(t, f, s, "+ network net-b", "+ instance b/b1")
	reqs := writes(f)
	want := []string{"POST /1.0/networks?target=m1", "POST /1.0/networks?target=m2", "POST /1.0/networks?target=m3", "POST /1.0/networks",
		"POST /1.0/instances?project=b&target=m2"}
	for i := 1; i < len(want); i++ {
		if a, b := slices.Index(reqs, want[i-1]), slices.Index(reqs, want[i]); a < 0 || b < 0 || a > b {
			t.Errorf("%q (at %d) must come before %q (at %d):\n%s\n%s", want[i-1], a, want[i], b, strings.Join(reqs, "\n"), errOut)
		}
	}
	for name, member := range map[string]string{"a/a1": "m1", "a/a2": "m1", "b/b1": "m2"} {
		p, n, _ := strings.Cut(name, "/")
		if live := liveInst(t, f, p, n); live.Location != member {
			t.Errorf("%s on %q, want %q", name, live.Location, member)
		}
	}

	f.SetMemberStatus("m2", "Offline")
	f.Log().Reset()
	s = desired(t, strings.Replace(clusterDomains, "      a2: {ip: 10.200.0.12}\n", "", 1))
	p := planFor(t, f, s, reconcile.Options{})
	r, out, errOut = run(t, f, p, nil)
	if !r.OK() || r.Deleted != 1 || len(r.Unknown) != 1 || r.Unknown[0].Domain != "b" {
		t.Fatalf("apply with m2 offline: %+v\n%s\n%s", r, out, errOut)
	}
	if got := r.Summary(); got != "Apply incomplete: 0 created, 0 updated, 1 deleted, 1 domain unknown (cluster member offline)." {
		t.Errorf("summary %q", got)
	}
	var rep, repErr strings.Builder
	r.Report(&rep, &repErr)
	if !strings.Contains(repErr.String(), "warning: domain b: not applied: cluster member m2 is offline") {
		t.Errorf("report: %s", repErr.String())
	}
	if slices.ContainsFunc(writes(f), func(r string) bool { return strings.Contains(r, "project=b") }) {
		t.Errorf("a request touched the unknown domain:\n%s", strings.Join(writes(f), "\n"))
	}
}
