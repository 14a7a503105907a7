package snapshotcmd_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/root"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/apply"
	_ "github.com/anklume/anklume/internal/goldenflag" // accept go test ./... -update
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/lock"
	"github.com/anklume/anklume/internal/reconcile"
)

// psot: web sets snapshots_expiry (which anklume's snapshots must not
// inherit, §16 #94), db is stopped.
const psot = `format_version: 1
project_name: h19-snap
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: anklume-test
domains:
  work:
    trust_level: trusted
    egress: false
    ephemeral: true
    machines:
      web: {ip: 10.210.0.11, snapshots_expiry: 7d}
      db: {state: stopped}
  lab:
    trust_level: semi-trusted
    egress: false
    ephemeral: true
    machines:
      lab-1: {}
`

// env is a directory holding infra.yml and a fake Incus where it was
// applied.
type env struct {
	dir      string
	fake     *incusx.Fake
	connects int
}

func hostOpts() host.Options {
	return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
}

// newEnv writes y as infra.yml and applies it to a new fake.
func newEnv(t *testing.T, y string) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), fake: incusx.NewFake()}
	if err := os.WriteFile(filepath.Join(e.dir, "infra.yml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	res, dl, err := compiler.Compile(os.DirFS(e.dir), compiler.Input{Path: "infra.yml", Display: "infra.yml"}, hostOpts())
	if err != nil || res == nil || res.Model == nil {
		t.Fatalf("compile: %v %v", err, dl)
	}
	ctx := context.Background()
	obs, err := reconcile.Observe(ctx, e.fake, reconcile.ObserveOptions{Pools: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := reconcile.Diff(incus.Desired(res.Model), obs, reconcile.Options{Model: res.Model, ResolveImage: e.fake.ResolveImage})
	if err != nil {
		t.Fatal(err)
	}
	if r := apply.Execute(ctx, p, apply.Options{Server: e.fake, NoSnapshot: true}); !r.OK() {
		t.Fatalf("apply: %+v", r)
	}
	e.fake.Log().Reset()
	return e
}

type result struct {
	code           cmdutil.ExitCode
	stdout, stderr string
}

// run runs `anklume args…` in the env's directory through the root
// command, as the binary does.
func (e *env) run(args ...string) result {
	var out, errOut bytes.Buffer
	code := e.runIO(&cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args...)
	return result{code, out.String(), errOut.String()}
}

// runIO runs `anklume args…` with the streams s and returns the exit
// code.
func (e *env) runIO(s *cmdutil.IOStreams, args ...string) cmdutil.ExitCode {
	f := &cmdutil.Factory{
		IO:        s,
		Getenv:    func(string) string { return "" },
		LookupEnv: func(string) (string, bool) { return "", false },
		Getwd:     func() (string, error) { return e.dir, nil },
		FS:        func(d string) fs.FS { return os.DirFS(d) },
		Host:      func(bool) (host.Options, error) { return hostOpts(), nil },
		Globals:   &cmdutil.GlobalOptions{},
		Incus:     func(context.Context, string) (incusx.Server, error) { e.connects++; return e.fake, nil },
	}
	return root.Main(f, args)
}

// snap returns a snapshot of project/instance, failing the test when it
// is absent.
func (e *env) snap(t *testing.T, project, instance, name string) api.InstanceSnapshot {
	t.Helper()
	snaps, err := e.fake.Snapshots(context.Background(), project, instance)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("%s/%s has no snapshot %q", project, instance, name)
	return api.InstanceSnapshot{}
}

func (e *env) names(t *testing.T, project, instance string) []string {
	t.Helper()
	snaps, err := e.fake.Snapshots(context.Background(), project, instance)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range snaps {
		out = append(out, s.Name)
	}
	return out
}

// take creates a snapshot directly on the fake.
func (e *env) take(t *testing.T, project, instance, name string, expires time.Time) {
	t.Helper()
	if err := e.fake.CreateSnapshot(context.Background(), project, instance,
		api.InstanceSnapshotsPost{Name: name, ExpiresAt: &expires}); err != nil {
		t.Fatal(err)
	}
}

// writes lists the requests of the fake that are not reads.
func writes(f *incusx.Fake) []string {
	var out []string
	for _, r := range f.Log().Strings() {
		if !strings.HasPrefix(r, "GET ") {
			out = append(out, r)
		}
	}
	return out
}

var defaultName = regexp.MustCompile(`anklume-snap-(\d{8}-\d{6})`)

// stampIn checks that a YYYYMMDD-HHMMSS stamp (UTC) lies between before
// and after, to the second.
func stampIn(t *testing.T, stamp string, before, after time.Time) {
	t.Helper()
	ts, err := time.Parse("20060102-150405", stamp)
	if err != nil {
		t.Fatalf("stamp %q: %v", stamp, err)
	}
	if ts.Before(before.UTC().Truncate(time.Second)) || ts.After(after.UTC()) {
		t.Errorf("stamp %s not between %s and %s", stamp, before.UTC(), after.UTC())
	}
}

// TestSnapshotCreateDefault: without arguments every machine gets
// anklume-snap-YYYYMMDD-HHMMSS (UTC), which never expires even though web
// sets snapshots_expiry (SPEC.md §12.4, §16 #94).
func TestSnapshotCreateDefault(t *testing.T) {
	e := newEnv(t, psot)
	before := time.Now()
	got := e.run("snapshot", "create")
	after := time.Now()
	m := defaultName.FindStringSubmatch(got.stdout)
	if got.code != 0 || got.stderr != "" || m == nil {
		t.Fatalf("snapshot create: %+v", got)
	}
	stampIn(t, m[1], before, after)
	name := m[0]
	want := "created: work/web/" + name + "\ncreated: work/db/" + name + "\ncreated: lab/lab-1/" + name + "\n"
	if got.stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got.stdout, want)
	}
	for _, pi := range [][2]string{{"work", "web"}, {"work", "db"}, {"lab", "lab-1"}} {
		if s := e.snap(t, pi[0], pi[1], name); !s.ExpiresAt.IsZero() {
			t.Errorf("%s/%s: snapshot expires at %s, want never", pi[0], pi[1], s.ExpiresAt)
		}
	}
	// The fake does apply snapshots.expiry to a snapshot created without
	// an explicit expiry: the zero expiry above is anklume's doing.
	if err := e.fake.CreateSnapshot(context.Background(), "work", "web", api.InstanceSnapshotsPost{Name: "bare"}); err != nil {
		t.Fatal(err)
	}
	if s := e.snap(t, "work", "web", "bare"); s.ExpiresAt.IsZero() {
		t.Error("the fake ignores snapshots.expiry: the test above proves nothing")
	}
}

// TestSnapshotCreate: --name, --expiry, targets (machine or domain), an
// existing name skipped with a warning, and argument errors (SPEC.md
// §12.4, §16 #94).
func TestSnapshotCreate(t *testing.T) {
	e := newEnv(t, psot)

	before := time.Now()
	got := e.run("snapshot", "create", "web", "--name", "s1", "--expiry", "1d")
	after := time.Now()
	if got.code != 0 || got.stdout != "created: work/web/s1\n" || got.stderr != "" {
		t.Fatalf("create --expiry 1d: %+v", got)
	}
	s := e.snap(t, "work", "web", "s1")
	if s.ExpiresAt.Before(before.Add(24*time.Hour)) || s.ExpiresAt.After(after.Add(24*time.Hour)) {
		t.Errorf("expires at %s, want one day after %s", s.ExpiresAt, before)
	}
	if d := s.ExpiresAt.Sub(s.CreatedAt) - 24*time.Hour; d < -time.Second || d > time.Second {
		t.Errorf("expires %s after it was taken, want 24h", s.ExpiresAt.Sub(s.CreatedAt))
	}

	tests := []struct {
		name string
		args []string
		want result
	}{
		{"existing name skipped", []string{"snapshot", "create", "work", "--name", "s1"}, result{0,
			"created: work/db/s1\n",
			"warning: instance work/web already has snapshot \"s1\"; skipped\n"}},
		{"machine and domain, no duplicates", []string{"snapshot", "create", "lab-1", "lab", "web", "--name", "s2", "--expiry", "never"},
			result{0, "created: lab/lab-1/s2\ncreated: work/web/s2\n", ""}},
		{"every target skipped", []string{"snapshot", "create", "--name", "s2", "lab"}, result{0, "",
			"warning: instance lab/lab-1 already has snapshot \"s2\"; skipped\n"}},
		{"unknown target", []string{"snapshot", "create", "nope"}, result{1, "", "error: unknown machine or domain \"nope\"\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.run(tc.args...); got != tc.want {
				t.Errorf("%v:\n got %+v\nwant %+v", tc.args, got, tc.want)
			}
		})
	}
	if got := e.snap(t, "work", "web", "s2"); !got.ExpiresAt.IsZero() {
		t.Errorf("--expiry never: expires at %s", got.ExpiresAt)
	}
	if got := e.names(t, "work", "web"); strings.Join(got, " ") != "s1 s2" {
		t.Errorf("web snapshots %v", got)
	}

	// A failure is reported (exit 1) and the other targets carry on; a
	// missing instance is skipped with a warning.
	if err := e.fake.UpdateInstanceState(context.Background(), "lab", "lab-1", api.InstanceStatePut{Action: "stop", Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.DeleteInstance(context.Background(), "lab", "lab-1"); err != nil {
		t.Fatal(err)
	}
	e.fake.Fail("CreateSnapshot", "work/web", errors.New("disk full"))
	got = e.run("snapshot", "create", "--name", "s3")
	e.fake.Fail("CreateSnapshot", "work/web", nil)
	if got.code != 1 || got.stdout != "created: work/db/s3\n" ||
		!strings.HasPrefix(got.stderr, "warning: instance lab/lab-1 does not exist; skipped\nerror: ") ||
		!strings.HasSuffix(got.stderr, "disk full\n") || strings.Count(got.stderr, "\n") != 2 {
		t.Errorf("create with a failure and a missing instance: %+v", got)
	}

	// A bad --expiry is a usage error: nothing is read or sent.
	e.fake.Log().Reset()
	got = e.run("snapshot", "create", "--expiry", "1x")
	wantErr := "error: --expiry: invalid expiry \"1x\": use never, or terms such as 30d, 12H or 1y 6m (units M H d w m y)\nRun 'anklume snapshot create --help' for usage.\n"
	if got.code != 1 || got.stdout != "" || !strings.HasPrefix(got.stderr, wantErr) {
		t.Errorf("bad --expiry: %+v", got)
	}
	if e.fake.Log().Len() != 0 {
		t.Errorf("Incus contacted: %v", e.fake.Log().Strings())
	}
}

// TestSnapshotList: the text columns, times in RFC 3339 UTC, "never", the
// JSON document, targets, and a missing instance (SPEC.md §12.4).
func TestSnapshotList(t *testing.T) {
	e := newEnv(t, psot)
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	e.fake.SetClock(func() time.Time { return t0 })
	e.take(t, "work", "web", "s1", time.Time{})
	e.fake.SetClock(func() time.Time { return t0.Add(time.Hour) })
	e.take(t, "work", "web", "anklume-snap-20260304-060607", t0.Add(25*time.Hour))
	e.take(t, "lab", "lab-1", "s1", time.Time{})

	got := e.run("snapshot", "list")
	want := "INSTANCE  SNAPSHOT                      CREATED               EXPIRES\n" +
		"web       s1                            2026-03-04T05:06:07Z  never\n" +
		"web       anklume-snap-20260304-060607  2026-03-04T06:06:07Z  2026-03-05T06:06:07Z\n" +
		"lab-1     s1                            2026-03-04T06:06:07Z  never\n"
	if got.code != 0 || got.stderr != "" || got.stdout != want {
		t.Errorf("list:\n%s%s\nwant:\n%s", got.stdout, got.stderr, want)
	}

	got = e.run("snapshot", "list", "web", "--json")
	want = `{"format_version":1,"snapshots":[` +
		`{"instance":"web","project":"work","machine":"web","domain":"work","snapshot":"s1","created":"2026-03-04T05:06:07Z","expires":null},` +
		`{"instance":"web","project":"work","machine":"web","domain":"work","snapshot":"anklume-snap-20260304-060607","created":"2026-03-04T06:06:07Z","expires":"2026-03-05T06:06:07Z"}]}` + "\n"
	if got.code != 0 || got.stderr != "" || got.stdout != want {
		t.Errorf("list web --json:\n%s%s\nwant:\n%s", got.stdout, got.stderr, want)
	}

	tests := []struct {
		args []string
		want result
	}{
		{[]string{"snapshot", "list", "db"}, result{0, "INSTANCE  SNAPSHOT  CREATED  EXPIRES\n", ""}},
		{[]string{"snapshot", "list", "db", "--json"}, result{0, `{"format_version":1,"snapshots":[]}` + "\n", ""}},
		{[]string{"snapshot", "list", "zz"}, result{1, "", "error: unknown machine or domain \"zz\"\n"}},
	}
	for _, tc := range tests {
		if got := e.run(tc.args...); got != tc.want {
			t.Errorf("%v:\n got %+v\nwant %+v", tc.args, got, tc.want)
		}
	}

	// A machine whose instance is gone is skipped with a warning.
	if err := e.fake.DeleteInstance(context.Background(), "work", "db"); err != nil {
		t.Fatal(err)
	}
	got = e.run("snapshot", "list", "work")
	want = "INSTANCE  SNAPSHOT                      CREATED               EXPIRES\n" +
		"web       s1                            2026-03-04T05:06:07Z  never\n" +
		"web       anklume-snap-20260304-060607  2026-03-04T06:06:07Z  2026-03-05T06:06:07Z\n"
	if got.code != 0 || got.stdout != want || got.stderr != "warning: instance work/db does not exist\n" {
		t.Errorf("list work without db: %+v", got)
	}
}

// TestSnapshotRestore: a missing name lists the available ones; a restore
// stops the running instance, restores and starts it again; a stopped
// instance stays stopped (SPEC.md §12.4).
func TestSnapshotRestore(t *testing.T) {
	e := newEnv(t, psot)
	ctx := context.Background()

	got := e.run("snapshot", "restore", "web", "--name", "s1")
	if want := (result{1, "", "error: instance work/web has no snapshot \"s1\"; available: none\n"}); got != want {
		t.Errorf("restore without snapshots: %+v", got)
	}
	e.take(t, "work", "web", "s1", time.Time{})
	e.take(t, "work", "web", "s2", time.Time{})
	got = e.run("snapshot", "restore", "web", "--name", "s3")
	if want := (result{1, "", "error: instance work/web has no snapshot \"s3\"; did you mean \"s1\"?; available: s1, s2\n"}); got != want {
		t.Errorf("restore of a missing name: %+v", got)
	}
	got = e.run("snapshot", "restore", "web", "--name", "before-upgrade")
	if want := (result{1, "", "error: instance work/web has no snapshot \"before-upgrade\"; available: s1, s2\n"}); got != want {
		t.Errorf("restore of a name close to none: %+v", got)
	}
	got = e.run("snapshot", "restore", "wbe", "--name", "s1")
	if want := (result{1, "", "error: unknown machine or domain \"wbe\"; did you mean \"web\"?\n"}); got != want {
		t.Errorf("restore of a mistyped machine: %+v", got)
	}

	// A change made after s1 is undone by the restore.
	inst, etag, err := e.fake.Instance(ctx, "work", "web")
	if err != nil {
		t.Fatal(err)
	}
	put := inst.Writable()
	put.Config["user.note"] = "after s1"
	if err := e.fake.UpdateInstance(ctx, "work", "web", put, etag); err != nil {
		t.Fatal(err)
	}
	e.fake.Log().Reset()
	got = e.run("snapshot", "restore", "web", "--name", "s1")
	if want := (result{0, "restored: work/web/s1\n", ""}); got != want {
		t.Errorf("restore: %+v", got)
	}
	inst, _, err = e.fake.Instance(ctx, "work", "web")
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != "Running" || inst.Config["user.note"] != "" {
		t.Errorf("after restore: status %s, user.note %q", inst.Status, inst.Config["user.note"])
	}
	w := strings.Join(writes(e.fake), "\n")
	stop, rest, start := strings.Index(w, "PUT /1.0/instances/web/state"), strings.Index(w, "PUT /1.0/instances/web?"), strings.LastIndex(w, "PUT /1.0/instances/web/state")
	if stop < 0 || rest < stop || start < rest {
		t.Errorf("want stop, restore, start; requests:\n%s", w)
	}

	e.take(t, "work", "db", "s1", time.Time{})
	e.fake.Log().Reset()
	if got := e.run("snapshot", "restore", "db", "--name", "s1"); got != (result{0, "restored: work/db/s1\n", ""}) {
		t.Errorf("restore db: %+v", got)
	}
	if w := strings.Join(writes(e.fake), "\n"); strings.Contains(w, "/state") {
		t.Errorf("stopped db was stopped or started:\n%s", w)
	}

	for _, args := range [][]string{
		{"snapshot", "restore", "web"},
		{"snapshot", "restore", "--name", "s1"},
	} {
		got := e.run(args...)
		if got.code != 1 || !strings.HasPrefix(got.stderr, "error: ") || !strings.HasSuffix(got.stderr, "\nRun 'anklume snapshot restore --help' for usage.\n") {
			t.Errorf("%v: %+v", args, got)
		}
	}
}

// TestSnapshotDelete: delete removes the snapshot; an absent one does
// nothing, silently (SPEC.md §12.4).
func TestSnapshotDelete(t *testing.T) {
	e := newEnv(t, psot)
	e.take(t, "lab", "lab-1", "s1", time.Time{})
	e.take(t, "lab", "lab-1", "s2", time.Time{})
	if got := e.run("snapshot", "delete", "lab-1", "--name", "s1"); got != (result{0, "deleted: lab/lab-1/s1\n", ""}) {
		t.Errorf("delete: %+v", got)
	}
	if got := e.names(t, "lab", "lab-1"); strings.Join(got, " ") != "s2" {
		t.Errorf("snapshots left %v", got)
	}
	e.fake.Log().Reset()
	if got := e.run("snapshot", "delete", "lab-1", "--name", "s1"); got != (result{0, "", ""}) {
		t.Errorf("delete of an absent snapshot: %+v", got)
	}
	if w := writes(e.fake); len(w) != 0 {
		t.Errorf("delete of an absent snapshot sent %v", w)
	}
	if got := e.run("snapshot", "delete", "nope", "--name", "s1"); got != (result{1, "", "error: unknown machine or domain \"nope\"\n"}) {
		t.Errorf("delete on an unknown machine: %+v", got)
	}
}

// TestSnapshotRollback: without pre-apply snapshots rollback fails with
// the exact error; with them it restores the latest (or the named)
// timestamp on every in-scope instance that has it, warns for the others,
// honours --limit, and releases the lock (SPEC.md §12.4).
func TestSnapshotRollback(t *testing.T) {
	e := newEnv(t, psot)
	ctx := context.Background()

	tests := []struct {
		args []string
		want result
	}{
		{[]string{"snapshot", "rollback"}, result{1, "",
			"warning: instance work/web has no snapshot anklume-pre-latest\n" +
				"warning: instance work/db has no snapshot anklume-pre-latest\n" +
				"warning: instance lab/lab-1 has no snapshot anklume-pre-latest\n" +
				"error: no instance has snapshot anklume-pre-latest\n"}},
		{[]string{"snapshot", "rollback", "20250101-000000", "--limit", "lab"}, result{1, "",
			"warning: instance lab/lab-1 has no snapshot anklume-pre-20250101-000000\n" +
				"error: no instance has snapshot anklume-pre-20250101-000000\n"}},
	}
	for _, tc := range tests {
		if got := e.run(tc.args...); got != tc.want {
			t.Errorf("%v:\n got %+v\nwant %+v", tc.args, got, tc.want)
		}
	}

	for _, pi := range [][2]string{{"work", "web"}, {"lab", "lab-1"}} {
		e.take(t, pi[0], pi[1], "anklume-pre-20250101-000000", time.Time{})
		e.take(t, pi[0], pi[1], "anklume-pre-20250102-000000", time.Time{})
	}
	e.take(t, "work", "db", "anklume-pre-20250101-000000", time.Time{})

	tests = []struct {
		args []string
		want result
	}{
		{[]string{"snapshot", "rollback"}, result{0,
			"restored: work/web/anklume-pre-20250102-000000\nrestored: lab/lab-1/anklume-pre-20250102-000000\n",
			"warning: instance work/db has no snapshot anklume-pre-20250102-000000\n"}},
		{[]string{"snapshot", "rollback", "20250101-000000", "--limit", "work"}, result{0,
			"restored: work/web/anklume-pre-20250101-000000\nrestored: work/db/anklume-pre-20250101-000000\n", ""}},
		{[]string{"snapshot", "rollback", "--limit", "nope"}, result{1, "", "error: --limit: unknown domain \"nope\"\n"}},
	}
	for _, tc := range tests {
		if got := e.run(tc.args...); got != tc.want {
			t.Errorf("%v:\n got %+v\nwant %+v", tc.args, got, tc.want)
		}
		if p, _, err := e.fake.Project(ctx, lock.Project); err == nil && p.Config[lock.KeyID] != "" {
			t.Errorf("%v: lock not released", tc.args)
		}
	}
	if got := e.run("snapshot", "rollback", "a", "b"); got.code != 1 ||
		got.stderr != "error: snapshot rollback: expected at most 1 argument (TIMESTAMP), got 2\nRun 'anklume snapshot rollback --help' for usage.\n" {
		t.Errorf("rollback a b: %+v", got)
	}
}

// TestSnapshotRollbackLockHeld: rollback takes the lock, so it fails
// while another run holds it and restores nothing (SPEC.md §9.7, §12.4).
func TestSnapshotRollbackLockHeld(t *testing.T) {
	e := newEnv(t, psot)
	ctx := context.Background()
	e.take(t, "work", "web", "anklume-pre-20250101-000000", time.Time{})
	l, err := lock.Acquire(ctx, lock.Options{Server: e.fake, Command: "apply", Owner: "bob@there:7", Host: "there"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	e.fake.Log().Reset()
	got := e.run("snapshot", "rollback")
	if got.code != 1 || got.stdout != "" ||
		!strings.HasPrefix(got.stderr, "error: another anklume run holds the lock on this Incus server (bob@there:7, apply, since ") {
		t.Errorf("rollback while locked: %+v", got)
	}
	// The attempt to create the lock, nothing else.
	if w := writes(e.fake); !slices.Equal(w, []string{"POST /1.0/projects"}) {
		t.Errorf("writes while locked out: %q", w)
	}
}

// TestSnapshotInvalidPSOT: an invalid infra.yml prints its diagnostics and
// exits 1 before Incus is contacted (SPEC.md §12).
func TestSnapshotInvalidPSOT(t *testing.T) {
	e := newEnv(t, psot)
	if err := os.WriteFile(filepath.Join(e.dir, "infra.yml"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.connects = 0
	got := e.run("snapshot", "list")
	if got.code != 1 || got.stdout != "" || !strings.Contains(got.stderr, "infra.yml:1:1: (root): missing required key") || e.connects != 0 {
		t.Errorf("invalid PSOT: %+v, %d connections", got, e.connects)
	}
}
