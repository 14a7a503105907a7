package apply

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/internal/hostdirs"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/plan"
	"github.com/anklume/anklume/internal/reconcile"
)

// TestCreateOrder: on an empty server every object is created in priority
// order (projects, networks, profiles, instances), instances are created
// with every owned key and then started, each right after its own
// creation, and each change prints one progress line (SPEC.md §9.5 step 9,
// §16 #56).
func TestCreateOrder(t *testing.T) {
	s := desired(t, twoDomains)
	f := incusx.NewFake()
	p := createPlan(s)
	r, out, errOut := run(t, f, p, func(o *Options) { o.TTY = true })
	if !r.OK() || errOut != "" {
		t.Fatalf("apply failed:\n%s\n%s", out, errOut)
	}
	if got := r.Summary(); got != fmt.Sprintf("Apply complete: %d created, 0 updated, 0 deleted.", len(p.Changes)) {
		t.Errorf("summary %q", got)
	}
	reqs := writes(f)
	order := []struct{ first, last string }{
		{"POST /1.0/projects", "POST /1.0/projects"},
		{"POST /1.0/networks", "POST /1.0/networks"},
		{"PUT /1.0/profiles/default?project=", "PUT /1.0/profiles/default?project="},
		{"POST /1.0/instances?project=", "POST /1.0/instances?project="},
	}
	for i := 1; i < len(order); i++ {
		if a, b := lastIndex(reqs, order[i-1].last), index(reqs, order[i].first); a < 0 || b < 0 || a > b {
			t.Errorf("%q (last at %d) must come before %q (first at %d):\n%s", order[i-1].last, a, order[i].first, b, strings.Join(reqs, "\n"))
		}
	}
	for _, pr := range s.Projects {
		for _, d := range pr.Instances {
			st := index(reqs, "PUT /1.0/instances/"+d.Name+"/state?project="+d.Project)
			if st < 0 || st < index(reqs, "POST /1.0/instances?project="+d.Project) {
				t.Errorf("%s: start at %d, not after a creation in its project:\n%s", d.Name, st, strings.Join(reqs, "\n"))
			}
		}
	}
	for _, pr := range s.Projects {
		for _, d := range pr.Instances {
			live := liveInst(t, f, d.Project, d.Name)
			if live.Status != "Running" {
				t.Errorf("%s: %s", d.Name, live.Status)
			}
			for k, v := range d.Config {
				if live.Config[k] != v {
					t.Errorf("%s: config %s = %q, want %q", d.Name, k, live.Config[k], v)
				}
			}
			if live.Devices["eth0"]["ipv4.address"] != d.Devices["eth0"]["ipv4.address"] {
				t.Errorf("%s: eth0 %v", d.Name, live.Devices["eth0"])
			}
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(p.Changes) {
		t.Fatalf("%d progress lines for %d changes:\n%s", len(lines), len(p.Changes), out)
	}
	if !strings.HasPrefix(lines[0], "[1/") || !strings.Contains(out, "+ instance a/a1: done (") {
		t.Errorf("progress lines:\n%s", out)
	}
	if !strings.HasPrefix(lines[len(lines)-1], fmt.Sprintf("[%d/%d] ", len(lines), len(lines))) {
		t.Errorf("last line %q", lines[len(lines)-1])
	}
}

// TestParallelBound: at most -j actions run at once inside a phase, and
// more than one does.
func TestParallelBound(t *testing.T) {
	y := twoDomains + "      b2: {}\n      b3: {}\n      b4: {}\n      b5: {}\n"
	s := desired(t, y)
	for _, jobs := range []int{1, 2, 4} {
		t.Run(fmt.Sprint(jobs), func(t *testing.T) {
			g := &gate{Server: incusx.NewFake()}
			r, out, errOut := run(t, g, createPlan(s), func(o *Options) { o.Jobs = jobs })
			if !r.OK() {
				t.Fatalf("%s\n%s", out, errOut)
			}
			if g.max != jobs {
				t.Errorf("max concurrent creations %d, want %d", g.max, jobs)
			}
		})
	}
}

// TestFailureOtherDomainContinues: domain a's bridge fails; its profiles
// and instances are skipped naming the failed bridge, domain b is created
// fully, and the summary and error lines report it (SPEC.md §16 #62).
func TestFailureOtherDomainContinues(t *testing.T) {
	s := desired(t, twoDomains)
	f := incusx.NewFake()
	f.Fail("CreateNetwork", "net-a", api.StatusErrorf(http.StatusInternalServerError, "boom"))
	p := createPlan(s)
	p.Failed = []plan.FailedDomain{{Domain: "c", Message: `image alias "x" not found on the Incus server`}}
	r, out, _ := run(t, f, p, nil)
	if r.OK() {
		t.Fatal("apply succeeded")
	}
	for _, want := range []string{
		"+ network net-a: failed: boom\n",
		"+ profile a/default: skipped (depends on failed network net-a)\n",
		"+ instance a/a1: skipped (depends on failed network net-a)\n",
		"+ instance a/a2: skipped (depends on failed network net-a)\n",
		"+ instance b/b1: done (",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if got, want := r.Summary(), "Apply failed: 5 created, 0 updated, 0 deleted, 2 failed, 3 skipped."; got != want {
		t.Errorf("summary\n got %s\nwant %s", got, want)
	}
	var lines []string
	for _, fl := range r.Failures {
		lines = append(lines, fl.Line())
	}
	want := []string{`error: domain c: image alias "x" not found on the Incus server`, "error: network net-a: create: boom"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("error lines\n got %q\nwant %q", lines, want)
	}
	if liveInst(t, f, "b", "b1").Status != "Running" {
		t.Error("b1 not running")
	}
	if _, _, err := f.Instance(context.Background(), "a", "a1"); !incusx.IsNotFound(err) {
		t.Errorf("a1 created anyway: %v", err)
	}
}

// addrGuard refuses an instance update that gives eth0 an address another
// instance on the same network holds, as Incus does.
type addrGuard struct{ *incusx.Fake }

func (g addrGuard) UpdateInstance(ctx context.Context, project, name string, put api.InstancePut, etag string) error {
	if ip := put.Devices["eth0"]["ipv4.address"]; ip != "" {
		all, err := g.Fake.Instances(ctx)
		if err != nil {
			return err
		}
		for _, i := range all {
			if (i.Project != project || i.Name != name) && i.Devices["eth0"]["ipv4.address"] == ip {
				return api.StatusErrorf(http.StatusBadRequest, "IP address %q already defined on another NIC", ip)
			}
		}
	}
	return g.Fake.UpdateInstance(ctx, project, name, put, etag)
}

// TestSwapAddresses: two machines swap their IPs in one apply: phase 1
// releases both addresses, phase 3 claims the new ones, and both running
// instances are restarted (SPEC.md §9.5, §16 #86).
func TestSwapAddresses(t *testing.T) {
	s := desired(t, twoDomains)
	f := applied(t, s)
	s2 := desired(t, strings.Replace(strings.Replace(twoDomains, "a1: {ip: 10.200.0.11}", "a1: {ip: 10.200.0.12}", 1), "a2: {ip: 10.200.0.12}", "a2: {ip: 10.200.0.11}", 1))
	a := s2.Project("a")
	p := &plan.Plan{Changes: []plan.Change{
		instChange(t, f, plan.Renumber, a.Instance("a1")),
		instChange(t, f, plan.Renumber, a.Instance("a2")),
	}}
	f.Log().Reset()
	r, out, errOut := run(t, addrGuard{f}, p, func(o *Options) { o.NoSnapshot = true })
	if !r.OK() {
		t.Fatalf("swap failed:\n%s\n%s", out, errOut)
	}
	if got := liveInst(t, f, "a", "a1").Devices["eth0"]["ipv4.address"]; got != "10.200.0.12" {
		t.Errorf("a1 has %q", got)
	}
	if got := liveInst(t, f, "a", "a2").Devices["eth0"]["ipv4.address"]; got != "10.200.0.11" {
		t.Errorf("a2 has %q", got)
	}
	if n := strings.Count(strings.Join(writes(f), "\n"), "/state"); n != 2 {
		t.Errorf("%d state requests, want 2 restarts:\n%s", n, strings.Join(writes(f), "\n"))
	}
	if !strings.Contains(out, "~ instance a/a1: done (") {
		t.Errorf("progress:\n%s", out)
	}
}

// TestNoRestart: --no-restart leaves a restart-needed instance running and
// warns.
func TestNoRestart(t *testing.T) {
	s := desired(t, twoDomains)
	f := applied(t, s)
	d := s.Project("a").Instance("a1")
	d.Config["security.nesting"] = "true"
	ch := instChange(t, f, plan.Update, d)
	ch.Restart, ch.Reason = true, "restart"
	f.Log().Reset()
	r, _, errOut := run(t, f, &plan.Plan{Changes: []plan.Change{ch}}, func(o *Options) { o.NoRestart = true; o.NoSnapshot = true })
	if !r.OK() || r.Updated != 1 {
		t.Fatalf("%+v %s", r, errOut)
	}
	if errOut != "warning: instance a/a1: restart required to apply the change\n" {
		t.Errorf("stderr %q", errOut)
	}
	if strings.Contains(strings.Join(writes(f), "\n"), "/state") {
		t.Error("instance restarted despite --no-restart")
	}
	if liveInst(t, f, "a", "a1").Config["security.nesting"] != "true" {
		t.Error("config not updated")
	}
}

// TestStateStopped: a machine with state stopped is created stopped and
// never started; switching it to running starts it (SPEC.md §16 #90).
func TestStateStopped(t *testing.T) {
	y := strings.Replace(twoDomains, "b1: {}", "b1: {state: stopped}", 1)
	s := desired(t, y)
	f := applied(t, s)
	if st := liveInst(t, f, "b", "b1").Status; st != "Stopped" {
		t.Fatalf("b1 is %s", st)
	}
	for _, r := range writes(f) {
		if strings.HasPrefix(r, "PUT /1.0/instances/b1/state") {
			t.Errorf("b1 state changed: %s", r)
		}
	}
	// An update of the stopped machine that needs a restart does not start it.
	d := s.Project("b").Instance("b1")
	d.Config["security.nesting"] = "true"
	ch := instChange(t, f, plan.Update, d)
	ch.Restart = true
	if r, out, errOut := run(t, f, &plan.Plan{Changes: []plan.Change{ch}}, nil); !r.OK() {
		t.Fatalf("%s %s", out, errOut)
	}
	if st := liveInst(t, f, "b", "b1").Status; st != "Stopped" {
		t.Fatalf("b1 started by an update: %s", st)
	}
	s2 := desired(t, twoDomains)
	ch = instChange(t, f, plan.Start, s2.Project("b").Instance("b1"))
	if r, out, errOut := run(t, f, &plan.Plan{Changes: []plan.Change{ch}}, nil); !r.OK() || r.Updated != 1 {
		t.Fatalf("%s %s", out, errOut)
	}
	if st := liveInst(t, f, "b", "b1").Status; st != "Running" {
		t.Fatalf("b1 not started: %s", st)
	}
}

// TestSnapshots: pre-apply snapshots are taken only of instances the plan
// updates, are named anklume-pre-YYYYMMDD-HHMMSS (UTC), never expire even
// with snapshots.expiry set, and only the 3 newest are kept (SPEC.md §16
// #65).
func TestSnapshots(t *testing.T) {
	y := strings.Replace(twoDomains, "a1: {ip: 10.200.0.11}", "a1: {ip: 10.200.0.11, snapshots_expiry: 2d}", 1)
	s := desired(t, y)
	f := applied(t, s)
	d := s.Project("a").Instance("a1")
	base := time.Date(2026, 11, 29, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	for i := range 5 {
		now := base.Add(time.Duration(i) * time.Minute)
		f.SetClock(func() time.Time { return now })
		d.Config["limits.cpu"] = fmt.Sprint(i + 1)
		up := instChange(t, f, plan.Update, d)
		start := instChange(t, f, plan.Stop, s.Project("a").Instance("a2"))
		r, out, errOut := run(t, f, &plan.Plan{Changes: []plan.Change{up, start}}, func(o *Options) { o.Now = func() time.Time { return now } })
		if !r.OK() {
			t.Fatalf("%s %s", out, errOut)
		}
		_ = start
		// put a2 back to running for the next round
		_ = f.UpdateInstanceState(context.Background(), "a", "a2", api.InstanceStatePut{Action: "start"})
	}
	snaps, err := f.Snapshots(context.Background(), "a", "a1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sn := range snaps {
		names = append(names, sn.Name)
		if !sn.ExpiresAt.IsZero() {
			t.Errorf("%s expires at %s", sn.Name, sn.ExpiresAt)
		}
	}
	want := []string{"anklume-pre-20261129-090200", "anklume-pre-20261129-090300", "anklume-pre-20261129-090400"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("snapshots %v, want %v", names, want)
	}
	if other, _ := f.Snapshots(context.Background(), "a", "a2"); len(other) != 0 {
		t.Errorf("a2 (only stopped) has snapshots %v", other)
	}
	// --no-snapshot takes none.
	d.Config["limits.cpu"] = "9"
	if r, _, _ := run(t, f, &plan.Plan{Changes: []plan.Change{instChange(t, f, plan.Update, d)}},
		func(o *Options) { o.NoSnapshot = true; o.Now = func() time.Time { return base.Add(time.Hour) } }); !r.OK() {
		t.Fatal("update failed")
	}
	if snaps, _ := f.Snapshots(context.Background(), "a", "a1"); len(snaps) != 3 {
		t.Errorf("--no-snapshot took a snapshot: %d", len(snaps))
	}
}

// TestHostDirs: missing host directories are created, with the mode of
// their kind, before any instance; a failure is reported (SPEC.md §16 #89).
func TestHostDirs(t *testing.T) {
	dir := t.TempDir()
	want := filepath.Join(dir, "pd", "a", "a1", "data")
	s := desired(t, twoDomains)
	f := incusx.NewFake()
	var created []string
	r, out, errOut := run(t, f, createPlan(s), func(o *Options) {
		o.HostDirs = []hostdirs.Dir{{Path: want, Kind: hostdirs.Persistent}, {Path: "/proc/forbidden/x", Kind: hostdirs.Shared}}
		o.MakeDir = func(d hostdirs.Dir) (string, error) {
			if f.Log().Len() != 0 {
				t.Errorf("directory %s created after %d requests", d.Path, f.Log().Len())
			}
			created = append(created, d.Path)
			return "", hostdirs.Create(d, hostdirs.Owner{UID: os.Getuid(), GID: os.Getgid()})
		}
	})
	if len(created) != 2 {
		t.Fatalf("created %v", created)
	}
	st, err := os.Stat(want)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	if r.Failed != 1 || !strings.HasPrefix(r.Failures[0].Line(), "error: directory /proc/forbidden/x: create: ") {
		t.Errorf("failures %+v\n%s\n%s", r.Failures, out, errOut)
	}
}

// TestContextFiles: a new running instance gets the four §9.9 files with
// the right values; a stopped one does not (SPEC.md §16 #66).
func TestContextFiles(t *testing.T) {
	y := strings.Replace(twoDomains, "b1: {}", "b1: {state: stopped}", 1)
	s := desired(t, y)
	f := incusx.NewFake()
	r, out, errOut := run(t, f, createPlan(s), func(o *Options) {
		o.Nesting = &Nesting{Level: 1, RelativeLevel: 1, VMNested: false, Yolo: true}
	})
	if !r.OK() || errOut != "" {
		t.Fatalf("%s\n%s", out, errOut)
	}
	want := map[string]string{"absolute_level": "2\n", "relative_level": "2\n", "vm_nested": "false\n", "yolo": "true\n"}
	for name, v := range want {
		file, ok := f.InstanceFile("a", "a1", "/etc/anklume/"+name)
		if !ok || string(file.Content) != v || file.Mode != 0o644 {
			t.Errorf("%s: %+v %v, want %q", name, file, ok, v)
		}
	}
	if dir, ok := f.InstanceFile("a", "a1", "/etc/anklume"); !ok || !dir.Dir || dir.Mode != 0o755 {
		t.Errorf("/etc/anklume: %+v", dir)
	}
	if _, ok := f.InstanceFile("b", "b1", "/etc/anklume/yolo"); ok {
		t.Error("stopped b1 got context files")
	}
	if strings.Join(r.Started, ",") != "a/a1,a/a2" {
		t.Errorf("started %v", r.Started)
	}
	vm := ContextFiles(Nesting{Level: 0, RelativeLevel: 3}, true)
	if vm[0].Value != "1" || vm[1].Value != "0" || vm[2].Value != "true" || vm[3].Value != "false" {
		t.Errorf("vm context %+v", vm)
	}
}

// TestContextInStartWorker: a container's context files are prepared by
// the worker that starts it, just before its start, as templates Incus
// renders inside the start (with one job the log alternates the metadata
// PATCH and the start), and no file request is made: the files are there
// once each container runs.
func TestContextInStartWorker(t *testing.T) {
	s := desired(t, twoDomains)
	f := incusx.NewFake()
	r, out, errOut := run(t, f, createPlan(s), func(o *Options) { o.Nesting = &Nesting{}; o.Jobs = 1 })
	if !r.OK() || errOut != "" {
		t.Fatalf("%s\n%s", out, errOut)
	}
	var seq []string
	for _, q := range f.Log().Strings() {
		switch {
		case strings.HasPrefix(q, "PUT ") && strings.Contains(q, "/state"):
			seq = append(seq, "start")
		case strings.HasPrefix(q, "PATCH ") && strings.Contains(q, "/metadata"):
			seq = append(seq, "templates")
		case strings.Contains(q, "/files?"):
			seq = append(seq, "file request")
		}
	}
	want := []string{"templates", "start", "templates", "start", "templates", "start"}
	if !slices.Equal(seq, want) {
		t.Errorf("order %q, want %q", seq, want)
	}
	for _, n := range []string{"a/a1", "a/a2", "b/b1"} {
		p, i, _ := strings.Cut(n, "/")
		if file, ok := f.InstanceFile(p, i, ContextDir+"/absolute_level"); !ok || string(file.Content) != "1\n" || file.Mode != 0o644 {
			t.Errorf("%s: absolute_level %+v %v", n, file, ok)
		}
	}
}

// TestContextTemplatesFallBack: a connection whose templates fail gets
// the files through the file API before the start; a start that fails
// with the templates in place (Incus cannot render a file under a
// regular file /etc/anklume) is tried again without them, the files by
// the file API, whose failure is only a warning.
func TestContextTemplatesFallBack(t *testing.T) {
	s := desired(t, twoDomains)
	f := incusx.NewFake()
	f.Fail("UpdateInstanceMetadata", "a/a1", errors.New("no templates here"))
	r, out, errOut := run(t, blockContextDir{f, "b/b1"}, createPlan(s), func(o *Options) { o.Nesting = &Nesting{} })
	if !r.OK() {
		t.Fatalf("%+v\n%s\n%s", r.Failures, out, errOut)
	}
	if file, ok := f.InstanceFile("a", "a1", ContextDir+"/yolo"); !ok || string(file.Content) != "false\n" {
		t.Errorf("a1 without templates: yolo %+v %v", file, ok)
	}
	if live := liveInst(t, f, "b", "b1"); live.Status != "Running" {
		t.Errorf("b1 is %s", live.Status)
	}
	if !strings.Contains(errOut, "warning: instance b/b1: writing the nesting context: ") || strings.Count(errOut, "warning:") != 1 {
		t.Errorf("stderr %q", errOut)
	}
	var starts int
	for _, q := range writes(f) {
		if strings.Contains(q, "/instances/b1/state") {
			starts++
		}
	}
	if starts != 2 {
		t.Errorf("b1 started %d times, want 2 (with the templates, then without)", starts)
	}
}

// blockContextDir puts a regular file at /etc/anklume into one stopped
// container before its first start, as an image could.
type blockContextDir struct {
	*incusx.Fake
	inst string
}

func (b blockContextDir) UpdateInstanceState(ctx context.Context, project, name string, put api.InstanceStatePut) error {
	if project+"/"+name == b.inst && put.Action == incusx.ActionStart {
		if _, ok := b.InstanceFile(project, name, ContextDir); !ok {
			if err := b.WriteInstanceFile(ctx, project, name, ContextDir, []byte("x"), 0o644); err != nil {
				return err
			}
		}
	}
	return b.Fake.UpdateInstanceState(ctx, project, name, put)
}

// TestContextCutBeforeStart: a run whose starts fail after the templates
// were added leaves the containers never started; the next run, which
// starts them, gives each the files of its own nesting level (the cut
// run's level was another).
func TestContextCutBeforeStart(t *testing.T) {
	s := desired(t, twoDomains)
	f := incusx.NewFake()
	f.Fail("UpdateInstanceState", "", errors.New("connection lost"))
	if r, _, _ := run(t, f, planFor(t, f, s, reconcile.Options{}), func(o *Options) { o.Nesting = &Nesting{Level: 7} }); r.OK() {
		t.Fatal("the cut apply succeeded")
	}
	f.Fail("UpdateInstanceState", "", nil)
	nest := func(o *Options) { o.Nesting = &Nesting{Level: 2} }
	if r, out, errOut := run(t, f, planFor(t, f, s, reconcile.Options{}), nest); !r.OK() || errOut != "" {
		t.Fatalf("re-run: %s\n%s", out, errOut)
	}
	for _, n := range []string{"a/a1", "a/a2", "b/b1"} {
		p, i, _ := strings.Cut(n, "/")
		if file, ok := f.InstanceFile(p, i, ContextDir+"/absolute_level"); !ok || string(file.Content) != "3\n" {
			t.Errorf("%s: absolute_level %+v %v", n, file, ok)
		}
	}
}

// TestCreateStartPipelined: with one job, each new instance is started by
// the worker that created it, before the next creation (no barrier
// between the creations and the starts: creation runs at the Incus API's
// pace); a start that fails is reported as the start of that instance, and
// the other instances are still created and started.
func TestCreateStartPipelined(t *testing.T) {
	s := desired(t, twoDomains)
	f := incusx.NewFake()
	f.Fail("UpdateInstanceState", "a/a1", api.StatusErrorf(http.StatusInternalServerError, "no init"))
	r, out, errOut := run(t, f, createPlan(s), func(o *Options) { o.Jobs = 1 })
	var seq []string
	for _, q := range writes(f) {
		switch {
		case strings.HasPrefix(q, "POST /1.0/instances?"):
			seq = append(seq, "create")
		case strings.HasPrefix(q, "PUT /1.0/instances/") && strings.Contains(q, "/state?"):
			seq = append(seq, "start")
		}
	}
	if want := []string{"create", "start", "create", "start", "create", "start"}; !slices.Equal(seq, want) {
		t.Errorf("order %q, want %q:\n%s", seq, want, strings.Join(writes(f), "\n"))
	}
	if r.Failed != 1 || len(r.Failures) != 1 {
		t.Fatalf("failed %d %+v\n%s\n%s", r.Failed, r.Failures, out, errOut)
	}
	if got := r.Failures[0].Line(); got != "error: instance a/a1: start: no init" {
		t.Errorf("failure line %q", got)
	}
	for _, n := range []string{"a/a2", "b/b1"} {
		p, i, _ := strings.Cut(n, "/")
		if live := liveInst(t, f, p, i); live.Status != "Running" {
			t.Errorf("%s: %s", n, live.Status)
		}
	}
}

// TestContextRetriedAfterStart: a write that fails before the start is
// tried again once the container runs; only a second failure warns.
func TestContextRetriedAfterStart(t *testing.T) {
	s := desired(t, twoDomains)
	f := incusx.NewFake()
	f.Fail("UpdateInstanceMetadata", "b/b1", errors.New("busy"))
	f.Fail("MakeInstanceDir", "b/b1", errors.New("busy"))
	r, out, errOut := run(t, healOnStart{f}, createPlan(s), func(o *Options) { o.Nesting = &Nesting{} })
	if !r.OK() || errOut != "" {
		t.Fatalf("%s\n%s", out, errOut)
	}
	if _, ok := f.InstanceFile("b", "b1", ContextDir+"/yolo"); !ok {
		t.Error("b1 has no context files after the retry")
	}
}

// healOnStart lifts the failure of MakeInstanceDir on an instance when it
// is started.
type healOnStart struct{ *incusx.Fake }

func (h healOnStart) UpdateInstanceState(ctx context.Context, project, name string, put api.InstanceStatePut) error {
	h.Fail("MakeInstanceDir", project+"/"+name, nil)
	return h.Fake.UpdateInstanceState(ctx, project, name, put)
}

// TestContextFailureWarns: a failing file write is a warning, not a
// failure.
func TestContextFailureWarns(t *testing.T) {
	s := desired(t, twoDomains)
	f := incusx.NewFake()
	f.Fail("UpdateInstanceMetadata", "b/b1", errors.New("agent gone"))
	f.Fail("MakeInstanceDir", "b/b1", errors.New("agent gone"))
	r, _, errOut := run(t, f, createPlan(s), func(o *Options) { o.Nesting = &Nesting{} })
	if !r.OK() {
		t.Fatal("context failure failed the apply")
	}
	if !strings.Contains(errOut, `warning: instance b/b1: writing the nesting context: creating directory file "/etc/anklume" in instance "b/b1": agent gone`) {
		t.Errorf("stderr %q", errOut)
	}
}

// TestDeletesReverse: removing a whole domain deletes its instances in
// phase 1 (stopping them first), then profiles, the project and the
// bridge last; a failing instance delete skips the rest of that domain
// (SPEC.md §16 #60).
func TestDeletesReverse(t *testing.T) {
	s := desired(t, twoDomains)
	f := applied(t, s)
	orphan := func(f *incusx.Fake) *plan.Plan {
		p := &plan.Plan{}
		pa := s.Project("a")
		for _, d := range pa.Instances {
			ch := instChange(t, f, plan.Delete, d)
			ch.Desired = nil
			p.Changes = append(p.Changes, ch)
		}
		p.Changes = append(p.Changes,
			plan.Change{Action: plan.Delete, Kind: plan.KindNetwork, Name: "net-a", Domain: "a"},
			plan.Change{Action: plan.Delete, Kind: plan.KindProject, Name: "a", Domain: "a"},
		)
		return p
	}
	f.Log().Reset()
	r, out, errOut := run(t, f, orphan(f), nil)
	if !r.OK() || r.Deleted != 4 {
		t.Fatalf("%s\n%s", out, errOut)
	}
	reqs := writes(f)
	if a, b := lastIndex(reqs, "DELETE /1.0/instances"), index(reqs, "DELETE /1.0/projects/a"); a > b {
		t.Errorf("project deleted before its instances:\n%s", strings.Join(reqs, "\n"))
	}
	if a, b := index(reqs, "DELETE /1.0/projects/a"), index(reqs, "DELETE /1.0/networks/net-a"); a > b || a < 0 {
		t.Errorf("network deleted before the project:\n%s", strings.Join(reqs, "\n"))
	}
	if i := index(reqs, "PUT /1.0/instances/a1/state"); i < 0 || i > index(reqs, "DELETE /1.0/instances/a1") {
		t.Errorf("a1 not stopped before delete:\n%s", strings.Join(reqs, "\n"))
	}

	f2 := applied(t, s)
	f2.Fail("DeleteInstance", "a/a2", api.StatusErrorf(http.StatusBadRequest, "busy"))
	r, out, _ = run(t, f2, orphan(f2), nil)
	for _, want := range []string{"- instance a/a2: failed: busy", "- project a: skipped (depends on failed instance a/a2)",
		"- network net-a: skipped (depends on failed instance a/a2)"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
	if r.Deleted != 1 || r.Failed != 1 || r.Skipped != 2 {
		t.Errorf("%+v", r)
	}
}

// TestMove: a machine that moves to another domain is stopped, loses its
// address and profiles, moves project keeping its root disk, gets the new
// domain's devices and address, and starts again (SPEC.md §16 #90).
func TestMove(t *testing.T) {
	s := desired(t, twoDomains)
	f := applied(t, s)
	y := strings.Replace(strings.Replace(twoDomains, "      a2: {ip: 10.200.0.12}\n", "", 1), "b1: {}", "b1: {}\n      a2: {}", 1)
	s2 := desired(t, y)
	d := s2.Project("b").Instance("a2")
	live := liveInst(t, f, "a", "a2")
	ch := plan.Change{Action: plan.Move, Kind: plan.KindInstance, Name: "b/a2", Project: "b", Domain: "b",
		Desired: d, Live: *live, OldProject: "a", Reason: "move: a -> b"}
	r, out, errOut := run(t, f, &plan.Plan{Changes: []plan.Change{ch}}, nil)
	if !r.OK() {
		t.Fatalf("%s\n%s", out, errOut)
	}
	got := liveInst(t, f, "b", "a2")
	if got.Status != "Running" || got.Devices["eth0"]["ipv4.address"] != d.Devices["eth0"]["ipv4.address"] ||
		got.Devices["eth0"]["network"] != "net-b" || got.Config[incus.KeyDomain] != "b" {
		t.Errorf("moved instance: %s %v %v", got.Status, got.Devices, got.Config)
	}
	if _, ok := got.ExpandedDevices["root"]; !ok {
		t.Error("moved instance lost its root disk")
	}
	if snaps, _ := f.Snapshots(context.Background(), "b", "a2"); len(snaps) != 1 {
		t.Errorf("moved instance has %d pre-apply snapshots", len(snaps))
	}
}

// TestProjectUpdateETag: a project update is a GET and a PUT with the
// ETag, never a PATCH, and keeps the create-only features.
func TestProjectUpdateETag(t *testing.T) {
	s := desired(t, twoDomains)
	f := applied(t, s)
	d := s.Project("a")
	d.Description = "new"
	d.Config["features.images"] = "true" // create-only: never sent
	f.Log().Reset()
	ch := plan.Change{Action: plan.Update, Kind: plan.KindProject, Name: "a", Domain: "a", Desired: d}
	if r, out, errOut := run(t, f, &plan.Plan{Changes: []plan.Change{ch}}, nil); !r.OK() {
		t.Fatalf("%s %s", out, errOut)
	}
	if got := strings.Join(f.Log().Strings(), "\n"); got != "GET /1.0/projects/a\nPUT /1.0/projects/a" {
		t.Errorf("requests:\n%s", got)
	}
	p, _, _ := f.Project(context.Background(), "a")
	if p.Description != "new" || p.Config["features.images"] != "false" {
		t.Errorf("project %q %v", p.Description, p.Config)
	}
}
