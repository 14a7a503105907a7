package apply

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/internal/hostdirs"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/plan"
	"github.com/anklume/anklume/internal/reconcile"
)

// planFor observes f and plans s on it, as `anklume plan` does.
func planFor(t *testing.T, f incusx.Server, s *incus.State, opts reconcile.Options) *plan.Plan {
	t.Helper()
	obs, err := reconcile.Observe(context.Background(), f, reconcile.ObserveOptions{Pools: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := reconcile.Diff(s, obs, opts)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

// planText renders p without colour.
func planText(p *plan.Plan) string {
	var b strings.Builder
	_ = plan.Render(&b, p, plan.RenderOptions{})
	return b.String()
}

// reapply plans s on f, checks the plan holds each of want, applies it,
// and checks that it succeeds and that the next plan is empty.
func reapply(t *testing.T, f *incusx.Fake, s *incus.State, want ...string) {
	t.Helper()
	p := planFor(t, f, s, reconcile.Options{})
	text := planText(p)
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("plan lacks %q:\n%s", w, text)
		}
	}
	r, out, errOut := run(t, f, p, nil)
	if !r.OK() {
		t.Fatalf("repair apply failed: %s\n%s\n%s", r.Summary(), out, errOut)
	}
	if p := planFor(t, f, s, reconcile.Options{}); len(p.Changes) > 0 {
		t.Errorf("plan after the repair is not empty:\n%s", planText(p))
	}
}

// TestRepairPendingNetwork: an apply whose connection drops while Incus
// creates a bridge leaves the network in status Pending, and every
// instance on it fails to be created. The next plan replaces the bridge
// with a reason that says so, and the apply converges.
func TestRepairPendingNetwork(t *testing.T) {
	s := desired(t, twoDomains)
	f := incusx.NewFake()
	f.InterruptCreateNetwork("net-a")
	r, _, _ := run(t, f, planFor(t, f, s, reconcile.Options{}), nil)
	if r.OK() {
		t.Fatal("the interrupted apply succeeded")
	}
	n, _, err := f.Network(context.Background(), "net-a")
	if err != nil || n.Status != "Pending" {
		t.Fatalf("net-a after the interrupted create: %v, %v", n, err)
	}
	reapply(t, f, s, "-/+ network net-a (repair: an earlier run did not finish: status Pending)")
	for _, name := range []string{"a1", "a2"} {
		if x := liveInst(t, f, "a", name); x.Status != "Running" {
			t.Errorf("a/%s is %s", name, x.Status)
		}
	}
}

// TestRepairNetworkInUse: a half-made network that a profile already uses
// (an older anklume carried on past it) is taken off the profile, created
// again, and put back.
func TestRepairNetworkInUse(t *testing.T) {
	const empty = "format_version: 1\nproject_name: t\nglobal:\n  addressing: {base_octet: 10, zone_base: 200}\ndomains:\n  a:\n    trust_level: admin\n    egress: false\n"
	s := desired(t, empty)
	f := applied(t, s)
	f.SetNetworkStatus("net-a", "Errored")
	n, _, _ := f.Network(context.Background(), "net-a")
	if len(n.UsedBy) == 0 {
		t.Fatal("net-a is used by no profile; the test proves nothing")
	}
	reapply(t, f, s, "-/+ network net-a (repair: an earlier run did not finish: status Errored)")
	n, _, _ = f.Network(context.Background(), "net-a")
	if n.Status != "Created" || len(n.UsedBy) == 0 {
		t.Errorf("net-a after the repair: status %s, used by %v", n.Status, n.UsedBy)
	}
}

// TestRepairUnownedNetworkUntouched: a half-made network that anklume
// does not own is reported and left alone, even with --adopt.
func TestRepairUnownedNetworkUntouched(t *testing.T) {
	s := desired(t, twoDomains)
	f := incusx.NewFake()
	if err := f.CreateNetwork(context.Background(), api.NetworksPost{Name: "net-a", Type: "bridge"}); err != nil {
		t.Fatal(err)
	}
	f.SetNetworkStatus("net-a", "Pending")
	p := planFor(t, f, s, reconcile.Options{Adopt: true})
	for _, c := range p.Changes {
		if c.Kind == plan.KindNetwork && c.Name == "net-a" {
			t.Errorf("unowned network planned: %+v", c)
		}
	}
	found := false
	for _, w := range p.Warnings {
		found = found || w.Msg == "network net-a is in status Pending and not owned by anklume; it is left as it is"
	}
	if !found {
		t.Errorf("no warning: %+v", p.Warnings)
	}
}

// TestRepairNeverStarted: a run that created the instances and stopped
// before its state phase leaves them stopped; the next plan starts them
// and says why.
func TestRepairNeverStarted(t *testing.T) {
	s := desired(t, twoDomains)
	f := incusx.NewFake()
	f.Fail("UpdateInstanceState", "", errors.New("connection lost"))
	if r, _, _ := run(t, f, planFor(t, f, s, reconcile.Options{}), nil); r.OK() {
		t.Fatal("the interrupted apply succeeded")
	}
	f.Fail("UpdateInstanceState", "", nil)
	p := planFor(t, f, s, reconcile.Options{})
	if !strings.Contains(planText(p), "~ instance a/a1 (start, repair: never started since an earlier run created it)") {
		t.Errorf("plan:\n%s", planText(p))
	}
	r, out, errOut := run(t, f, p, func(o *Options) { o.Nesting = &Nesting{Level: 0} })
	if !r.OK() {
		t.Fatalf("%s\n%s", out, errOut)
	}
	// The first start is this run's: the context files come with it.
	if got, ok := f.InstanceFile("a", "a1", ContextDir+"/absolute_level"); !ok || string(got.Content) != "1\n" {
		t.Errorf("context file after the repair: %q, %v", got.Content, ok)
	}
	if p := planFor(t, f, s, reconcile.Options{}); len(p.Changes) > 0 {
		t.Errorf("plan not empty:\n%s", planText(p))
	}
}

// TestRepairDefaultProfile: a run that created a project and stopped
// before it wrote the project's default profile leaves the profile as
// Incus made it; the next plan completes it as a repair.
func TestRepairDefaultProfile(t *testing.T) {
	s := desired(t, twoDomains)
	f := incusx.NewFake()
	f.Fail("UpdateProfile", "a/default", errors.New("connection lost"))
	if r, _, _ := run(t, f, planFor(t, f, s, reconcile.Options{}), nil); r.OK() {
		t.Fatal("the interrupted apply succeeded")
	}
	f.Fail("UpdateProfile", "a/default", nil)
	reapply(t, f, s, "~ profile a/default (repair: an earlier run did not finish)")
}

// TestProjectRestrictedAfterInstances: when a shared volume goes away,
// the project's disk restrictions are tightened only after the instance
// lost its device (Incus refuses a restriction that an instance breaks):
// the first project update keeps them, so it sends nothing here.
func TestProjectRestrictedAfterInstances(t *testing.T) {
	const base = "format_version: 1\nproject_name: t\nglobal:\n  addressing: {base_octet: 10, zone_base: 200}\n  default_os_image: anklume-test\ndomains:\n  a:\n    trust_level: admin\n    egress: false\n    ephemeral: true\n    machines:\n      a1: {ip: 10.200.0.11, description: x}\n"
	const shared = "shared_volumes:\n  share:\n    source: /srv/share\n    consumers: {a: rw}\n"
	f := incusx.NewFake()
	s := desired(t, base+shared)
	if r, out, errOut := run(t, f, planFor(t, f, s, reconcile.Options{}), func(o *Options) { o.MakeDir = noMkdir }); !r.OK() {
		t.Fatalf("%s\n%s", out, errOut)
	}
	s = desired(t, base)
	p := planFor(t, f, s, reconcile.Options{})
	f.Log().Reset()
	if r, out, errOut := run(t, f, p, nil); !r.OK() {
		t.Fatalf("%s\n%s", out, errOut)
	}
	w := writes(f)
	first, inst, last := index(w, "PUT /1.0/projects/a"), index(w, "PUT /1.0/instances/a1"), lastIndex(w, "PUT /1.0/projects/a")
	if inst < 0 || first != last || last < inst {
		t.Fatalf("want the instance updated, then the project restricted (and no project update before); got %q", w)
	}
	pr, _, _ := f.Project(context.Background(), "a")
	if _, ok := pr.Config["restricted.devices.disk.paths"]; ok {
		t.Errorf("the disk path restriction is still there: %v", pr.Config)
	}
	if p := planFor(t, f, s, reconcile.Options{}); len(p.Changes) > 0 {
		t.Errorf("plan not empty:\n%s", planText(p))
	}
}

func noMkdir(hostdirs.Dir) (string, error) { return "", nil }

// TestRepairRestoreLeftovers: a backup restore imports into the default
// project under a temporary name, then moves and renames; one that
// stopped on the way leaves a copy of a machine (ownership keys, static
// address, protection) under that name. The plan deletes the copies this
// infrastructure owns, with a reason that says why, lifting their
// protection; a copy it does not own is only reported.
func TestRepairRestoreLeftovers(t *testing.T) {
	ctx := context.Background()
	s := desired(t, twoDomains)
	f := applied(t, s)
	b1 := liveInst(t, f, "b", "b1") // b is not ephemeral: protected
	if b1.Config["security.protection.delete"] != "true" {
		t.Fatalf("b1 is not protected: %v", b1.Config)
	}
	leftover := func(project, name string, cfg map[string]string) {
		t.Helper()
		req := api.InstancesPost{Name: name, Source: api.InstanceSource{Type: "image", Alias: "anklume-test"},
			InstancePut: api.InstancePut{Config: cfg, Devices: b1.Devices}}
		if err := f.CreateInstance(ctx, project, req); err != nil {
			t.Fatal(err)
		}
	}
	leftover("default", "anklume-restore-1764950000000000001", b1.Config)
	leftover("b", "anklume-restore-1764950000000000002", b1.Config)
	foreign := map[string]string{"security.protection.delete": "true"}
	leftover("default", "anklume-restore-1764950000000000003", foreign)

	p := planFor(t, f, s, reconcile.Options{})
	text := planText(p)
	for _, w := range []string{
		"- instance default/anklume-restore-1764950000000000001 (repair: an earlier restore did not finish; temporary import)",
		"- instance b/anklume-restore-1764950000000000002 (repair: an earlier restore did not finish; temporary import)",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("plan lacks %q:\n%s", w, text)
		}
	}
	if strings.Contains(text, "000003") {
		t.Errorf("an unowned copy is planned:\n%s", text)
	}
	if r, out, errOut := run(t, f, p, nil); !r.OK() {
		t.Fatalf("%s\n%s", out, errOut)
	}
	if p := planFor(t, f, s, reconcile.Options{}); len(p.Changes) > 0 {
		t.Errorf("plan not empty:\n%s", planText(p))
	}
	if _, _, err := f.Instance(ctx, "default", "anklume-restore-1764950000000000003"); err != nil {
		t.Errorf("the unowned copy was touched: %v", err)
	}
	if _, _, err := f.Instance(ctx, "b", "b1"); err != nil {
		t.Errorf("the machine itself is gone: %v", err)
	}
}
