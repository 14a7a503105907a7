package goldencmd_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
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
	"github.com/anklume/anklume/internal/reconcile"
)

// psot: web has a static IP and sets snapshots_expiry; db is stopped; lab
// is protected (not ephemeral).
const psot = `format_version: 1
project_name: h19-golden
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
    machines:
      lab-1: {}
`

type env struct {
	dir  string
	fake *incusx.Fake
}

func hostOpts() host.Options {
	return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
}

// newEnv writes psot and applies it to a new fake.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), fake: incusx.NewFake()}
	if err := os.WriteFile(filepath.Join(e.dir, "infra.yml"), []byte(psot), 0o644); err != nil {
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

// run runs `anklume args…` through the root command.
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
		Incus:     func(context.Context, string) (incusx.Server, error) { return e.fake, nil },
	}
	return root.Main(f, args)
}

func (e *env) instance(t *testing.T, project, name string) *api.Instance {
	t.Helper()
	inst, _, err := e.fake.Instance(context.Background(), project, name)
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func (e *env) snapshots(t *testing.T, project, name string) []api.InstanceSnapshot {
	t.Helper()
	snaps, err := e.fake.Snapshots(context.Background(), project, name)
	if err != nil {
		t.Fatal(err)
	}
	return snaps
}

// TestGoldenCreate: create stops the instance, replaces pristine (which
// never expires, even with snapshots_expiry) and restores the running
// state; a stopped machine stays stopped (SPEC.md §12.6, §16 #94).
func TestGoldenCreate(t *testing.T) {
	e := newEnv(t)
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	e.fake.SetClock(func() time.Time { return t0 })
	if got := e.run("golden", "create", "web"); got != (result{0, "created: work/web/pristine\n", ""}) {
		t.Fatalf("golden create web: %+v", got)
	}
	e.fake.SetClock(func() time.Time { return t0.Add(time.Hour) })
	e.fake.Log().Reset()
	if got := e.run("golden", "create", "web"); got != (result{0, "created: work/web/pristine\n", ""}) {
		t.Fatalf("second golden create web: %+v", got)
	}
	snaps := e.snapshots(t, "work", "web")
	if len(snaps) != 1 || snaps[0].Name != "pristine" || !snaps[0].CreatedAt.Equal(t0.Add(time.Hour)) || !snaps[0].ExpiresAt.IsZero() {
		t.Errorf("web snapshots after two creates: %+v", snaps)
	}
	if st := e.instance(t, "work", "web").Status; st != "Running" {
		t.Errorf("web is %s after golden create", st)
	}
	var seq []string
	for _, r := range e.fake.Log().Strings() {
		switch {
		case strings.HasPrefix(r, "PUT /1.0/instances/web/state"):
			seq = append(seq, "state")
		case strings.HasPrefix(r, "DELETE /1.0/instances/web/snapshots/pristine"):
			seq = append(seq, "delete")
		case strings.HasPrefix(r, "POST /1.0/instances/web/snapshots"):
			seq = append(seq, "snapshot")
		}
	}
	if strings.Join(seq, " ") != "state delete snapshot state" {
		t.Errorf("want stop, delete, snapshot, start; got %v", seq)
	}

	e.fake.Log().Reset()
	if got := e.run("golden", "create", "db"); got != (result{0, "created: work/db/pristine\n", ""}) {
		t.Errorf("golden create db: %+v", got)
	}
	if st := e.instance(t, "work", "db").Status; st != "Stopped" {
		t.Errorf("db is %s after golden create", st)
	}
	for _, r := range e.fake.Log().Strings() {
		if strings.Contains(r, "/state") && !strings.HasPrefix(r, "GET ") {
			t.Errorf("stopped db: %s", r)
		}
	}

	tests := []struct {
		args []string
		want result
	}{
		{[]string{"golden", "create", "nope"}, result{1, "", "error: unknown machine \"nope\"\n"}},
		{[]string{"golden", "create", "work"}, result{1, "", "error: unknown machine \"work\"\n"}},
	}
	for _, tc := range tests {
		if got := e.run(tc.args...); got != tc.want {
			t.Errorf("%v:\n got %+v\nwant %+v", tc.args, got, tc.want)
		}
	}
	got := e.run("golden", "create")
	if got.code != 1 || got.stderr != "error: golden create: expected 1 argument (MACHINE), got 0\nRun 'anklume golden create --help' for usage.\n" {
		t.Errorf("golden create without MACHINE: %+v", got)
	}
}

// TestGoldenList: the machines with a pristine snapshot, as text and JSON
// (SPEC.md §12.6).
func TestGoldenList(t *testing.T) {
	e := newEnv(t)
	if got := e.run("golden", "list"); got != (result{0, "INSTANCE  PROJECT  CREATED\n", ""}) {
		t.Errorf("empty list: %+v", got)
	}
	if got := e.run("golden", "list", "--json"); got != (result{0, `{"format_version":1,"golden":[]}` + "\n", ""}) {
		t.Errorf("empty list --json: %+v", got)
	}
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	e.fake.SetClock(func() time.Time { return t0 })
	if got := e.run("golden", "create", "lab-1"); got.code != 0 {
		t.Fatalf("golden create lab-1: %+v", got)
	}
	e.fake.SetClock(func() time.Time { return t0.Add(90 * time.Second) })
	if got := e.run("golden", "create", "web"); got.code != 0 {
		t.Fatalf("golden create web: %+v", got)
	}
	// Another snapshot is not golden.
	exp := time.Time{}
	if err := e.fake.CreateSnapshot(context.Background(), "work", "db", api.InstanceSnapshotsPost{Name: "other", ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
	want := "INSTANCE  PROJECT  CREATED\n" +
		"web       work     2026-03-04T05:07:37Z\n" +
		"lab-1     lab      2026-03-04T05:06:07Z\n"
	if got := e.run("golden", "list"); got != (result{0, want, ""}) {
		t.Errorf("list:\n%s%s\nwant:\n%s", got.stdout, got.stderr, want)
	}
	want = `{"format_version":1,"golden":[` +
		`{"instance":"web","project":"work","machine":"web","domain":"work","created":"2026-03-04T05:07:37Z"},` +
		`{"instance":"lab-1","project":"lab","machine":"lab-1","domain":"lab","created":"2026-03-04T05:06:07Z"}]}` + "\n"
	if got := e.run("golden", "list", "--json"); got != (result{0, want, ""}) {
		t.Errorf("list --json:\n%s%s\nwant:\n%s", got.stdout, got.stderr, want)
	}
	got := e.run("golden", "list", "web")
	if got.code != 1 || got.stderr != "error: golden list: expected no arguments, got 1 (\"web\")\nRun 'anklume golden list --help' for usage.\n" {
		t.Errorf("golden list web: %+v", got)
	}
}

// TestGoldenDerive is §16 #71: derive copies pristine and strips the
// ownership keys, the static IP (instance-level eth0) and the protection,
// then prints the hint; --domain moves the copy (SPEC.md §12.6).
func TestGoldenDerive(t *testing.T) {
	e := newEnv(t)
	web := e.instance(t, "work", "web")
	lab := e.instance(t, "lab", "lab-1")
	if web.Devices["eth0"]["ipv4.address"] != "10.210.0.11" || web.Config["user.anklume.managed"] == "" ||
		lab.Config["security.protection.delete"] != "true" {
		t.Fatalf("fixture: web %v %v, lab-1 %v", web.Devices, web.Config, lab.Config)
	}

	if got := e.run("golden", "derive", "web", "web2"); got != (result{1, "",
		"error: instance work/web has no pristine snapshot; run anklume golden create web first\n"}) {
		t.Errorf("derive without pristine: %+v", got)
	}
	for _, m := range []string{"web", "lab-1"} {
		if got := e.run("golden", "create", m); got.code != 0 {
			t.Fatalf("golden create %s: %+v", m, got)
		}
	}

	tests := []struct {
		args          []string
		want          result
		project, name string
	}{
		{[]string{"golden", "derive", "web", "web2"}, result{0,
			"derived: work/web2 from work/web/pristine\n", "hint: add web2 to infra.yml to manage it\n"}, "work", "web2"},
		{[]string{"golden", "derive", "lab-1", "lab-2"}, result{0,
			"derived: lab/lab-2 from lab/lab-1/pristine\n", "hint: add lab-2 to infra.yml to manage it\n"}, "lab", "lab-2"},
		{[]string{"golden", "derive", "web", "web3", "--domain", "lab"}, result{0,
			"derived: lab/web3 from work/web/pristine\n", "hint: add web3 to infra.yml to manage it\n"}, "lab", "web3"},
	}
	for _, tc := range tests {
		if got := e.run(tc.args...); got != tc.want {
			t.Errorf("%v:\n got %+v\nwant %+v", tc.args, got, tc.want)
			continue
		}
		inst := e.instance(t, tc.project, tc.name)
		for k, v := range inst.Config {
			if strings.HasPrefix(k, "user.anklume.") || k == "security.protection.delete" {
				t.Errorf("%s/%s keeps %s=%s", tc.project, tc.name, k, v)
			}
		}
		if _, ok := inst.Devices["eth0"]; ok {
			t.Errorf("%s/%s keeps eth0 %v", tc.project, tc.name, inst.Devices["eth0"])
		}
		if inst.Status != "Stopped" {
			t.Errorf("%s/%s is %s", tc.project, tc.name, inst.Status)
		}
	}
	if _, _, err := e.fake.Instance(context.Background(), "work", "web3"); !incusx.IsNotFound(err) {
		t.Errorf("web3 left in work: %v", err)
	}
	// The source keeps its keys.
	if web := e.instance(t, "work", "web"); web.Devices["eth0"]["ipv4.address"] != "10.210.0.11" || web.Config["user.anklume.managed"] == "" {
		t.Errorf("web changed: %v %v", web.Devices, web.Config)
	}

	errs := []struct {
		args []string
		want result
	}{
		{[]string{"golden", "derive", "web", "web2"}, result{1, "", "error: instance work/web2 already exists\n"}},
		{[]string{"golden", "derive", "web", "x", "--domain", "nope"}, result{1, "", "error: --domain: unknown domain \"nope\"\n"}},
		{[]string{"golden", "derive", "nope", "x"}, result{1, "", "error: unknown machine \"nope\"\n"}},
	}
	for _, tc := range errs {
		if got := e.run(tc.args...); got != tc.want {
			t.Errorf("%v:\n got %+v\nwant %+v", tc.args, got, tc.want)
		}
	}
	got := e.run("golden", "derive", "web")
	if got.code != 1 || got.stderr != "error: golden derive: expected 2 arguments (MACHINE NEW), got 1\nRun 'anklume golden derive --help' for usage.\n" {
		t.Errorf("derive web: %+v", got)
	}
}

// TestGoldenPublish: publish makes an image alias from pristine (SPEC.md
// §12.6).
func TestGoldenPublish(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if got := e.run("golden", "publish", "web", "web-golden"); got != (result{1, "",
		"error: instance work/web has no pristine snapshot; run anklume golden create web first\n"}) {
		t.Errorf("publish without pristine: %+v", got)
	}
	if got := e.run("golden", "create", "web"); got.code != 0 {
		t.Fatalf("golden create: %+v", got)
	}
	e.fake.Log().Reset()
	if got := e.run("golden", "publish", "web", "web-golden"); got != (result{0, "published: work/web/pristine as image web-golden\n", ""}) {
		t.Errorf("publish: %+v", got)
	}
	aliases, err := e.fake.ImageAliases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range aliases {
		found = found || a.Name == "web-golden"
	}
	if !found {
		t.Errorf("alias web-golden not published: %v", aliases)
	}
	var posts []string
	for _, r := range e.fake.Log().Strings() {
		if strings.HasPrefix(r, "POST ") {
			posts = append(posts, r)
		}
	}
	if len(posts) != 1 || !strings.HasPrefix(posts[0], "POST /1.0/images?project=work") {
		t.Errorf("publish requests %v", posts)
	}
	got := e.run("golden", "publish", "web", "web-golden")
	if got.code != 1 || got.stdout != "" || !strings.HasPrefix(got.stderr, "error: ") || !strings.HasSuffix(got.stderr, "Alias already exists\n") {
		t.Errorf("second publish: %+v", got)
	}
	got = e.run("golden", "publish", "web")
	if got.code != 1 || got.stderr != "error: golden publish: expected 2 arguments (MACHINE ALIAS), got 1\nRun 'anklume golden publish --help' for usage.\n" {
		t.Errorf("publish web: %+v", got)
	}
}
