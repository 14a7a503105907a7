package dispcmd_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/root"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/apply"
	_ "github.com/anklume/anklume/internal/goldenflag" // accept go test ./... -update
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/plan"
	"github.com/anklume/anklume/internal/reconcile"
)

// psot has two disposable domains after a trusted one: disp picks the
// first disposable one in declaration order.
const psot = `format_version: 1
project_name: h19-disp
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: anklume-test
domains:
  work:
    trust_level: trusted
    egress: false
    ephemeral: true
    machines:
      web: {}
  throw:
    trust_level: disposable
    egress: false
    ephemeral: true
    machines:
      t1: {}
  throw2:
    trust_level: disposable
    egress: false
    ephemeral: true
    machines:
      t2: {}
`

// noDisp has no disposable domain.
const noDisp = `format_version: 1
project_name: h19-disp
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: anklume-test
domains:
  work:
    trust_level: trusted
    egress: false
    ephemeral: true
    machines:
      web: {}
`

type env struct {
	dir      string
	fake     *incusx.Fake
	model    *model.Infra
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
	e.model = res.Model
	p, err := e.plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r := apply.Execute(context.Background(), p, apply.Options{Server: e.fake, NoSnapshot: true}); !r.OK() {
		t.Fatalf("apply: %+v", r)
	}
	e.fake.Log().Reset()
	return e
}

// plan is the plan of apply against the fake.
func (e *env) plan(ctx context.Context) (*plan.Plan, error) {
	obs, err := reconcile.Observe(ctx, e.fake, reconcile.ObserveOptions{Pools: []string{"default"}})
	if err != nil {
		return nil, err
	}
	return reconcile.Diff(incus.Desired(e.model), obs, reconcile.Options{Model: e.model, ResolveImage: e.fake.ResolveImage})
}

type result struct {
	code           cmdutil.ExitCode
	stdout, stderr string
}

// run runs `anklume args…` through the root command with stdin in.
func (e *env) run(in io.Reader, args ...string) result {
	var out, errOut bytes.Buffer
	f := &cmdutil.Factory{
		IO:        &cmdutil.IOStreams{In: in, Out: &out, ErrOut: &errOut},
		Getenv:    func(string) string { return "" },
		LookupEnv: func(string) (string, bool) { return "", false },
		Getwd:     func() (string, error) { return e.dir, nil },
		FS:        func(d string) fs.FS { return os.DirFS(d) },
		Host:      func(bool) (host.Options, error) { return hostOpts(), nil },
		Globals:   &cmdutil.GlobalOptions{},
		Incus:     func(context.Context, string) (incusx.Server, error) { e.connects++; return e.fake, nil },
	}
	code := root.Main(f, args)
	return result{code, out.String(), errOut.String()}
}

func (e *env) instances(t *testing.T) []string {
	t.Helper()
	insts, err := e.fake.Instances(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range insts {
		out = append(out, i.Project+"/"+i.Name)
	}
	return out
}

// probe is a stdin that, when the command in the instance first reads
// it, records the instances and the plan of apply at that moment.
type probe struct {
	e     *env
	data  string
	read  bool
	seen  []api.Instance
	plan  *plan.Plan
	perrs error
}

func (p *probe) Read(b []byte) (int, error) {
	if p.read {
		return 0, io.EOF
	}
	p.read = true
	ctx := context.Background()
	p.seen, _ = p.e.fake.Instances(ctx)
	p.plan, p.perrs = p.e.plan(ctx)
	return copy(b, p.data), nil
}

var dispName = regexp.MustCompile(`^disp-(\d{8}-\d{6})$`)

// TestDispExitStatus is §16 #71: `disp -- sh -c 'exit 3'` exits 3 with
// nothing printed, and the instance is gone afterwards (SPEC.md §12.5,
// §13).
func TestDispExitStatus(t *testing.T) {
	e := newEnv(t, psot)
	before := e.instances(t)
	got := e.run(strings.NewReader(""), "disp", "--", "sh", "-c", "exit 3")
	if got != (result{3, "", ""}) {
		t.Errorf("disp -- sh -c 'exit 3': %+v", got)
	}
	if after := e.instances(t); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("instances %v after disp, want %v", after, before)
	}
	var posts []string
	for _, r := range e.fake.Log().Strings() {
		if strings.HasPrefix(r, "POST /1.0/instances?") || strings.HasPrefix(r, "POST /1.0/instances/") {
			posts = append(posts, r)
		}
	}
	if len(posts) != 2 || !strings.Contains(posts[0], "project=throw") || !strings.Contains(posts[1], "/exec") {
		t.Errorf("want a create and an exec in project throw: %v", posts)
	}
}

// TestDispInstance: the instance is an ephemeral container named
// disp-YYYYMMDD-HHMMSS (UTC) in the first disposable domain, carrying
// user.anklume.disp, infra and domain and no managed key; stdin and
// stdout are attached; apply ignores it (SPEC.md §12.5, §16 #71).
func TestDispInstance(t *testing.T) {
	e := newEnv(t, psot)
	p := &probe{e: e, data: "hello\n"}
	start := time.Now()
	got := e.run(p, "disp", "--", "cat")
	end := time.Now()
	if got != (result{0, "hello\n", ""}) {
		t.Errorf("disp -- cat: %+v", got)
	}
	var d *api.Instance
	for i, inst := range p.seen {
		if strings.HasPrefix(inst.Name, "disp-") {
			if d != nil {
				t.Errorf("two disposable instances: %s, %s", d.Name, inst.Name)
			}
			d = &p.seen[i]
		}
	}
	if d == nil {
		t.Fatalf("no disposable instance while the command ran: %v", p.seen)
	}
	m := dispName.FindStringSubmatch(d.Name)
	if m == nil {
		t.Fatalf("instance name %q", d.Name)
	}
	ts, err := time.Parse("20060102-150405", m[1])
	if err != nil || ts.Before(start.UTC().Truncate(time.Second)) || ts.After(end.UTC()) {
		t.Errorf("name stamp %s not between %s and %s (%v)", m[1], start.UTC(), end.UTC(), err)
	}
	if d.Project != "throw" || !d.Ephemeral || d.Type != "container" || d.Status != "Running" {
		t.Errorf("instance %s/%s: ephemeral %v, type %s, status %s", d.Project, d.Name, d.Ephemeral, d.Type, d.Status)
	}
	wantKeys := map[string]string{"user.anklume.disp": "true", "user.anklume.infra": "h19-disp", "user.anklume.domain": "throw"}
	for k, v := range d.Config {
		if strings.HasPrefix(k, "user.anklume.") && wantKeys[k] != v {
			t.Errorf("config %s=%q", k, v)
		}
	}
	for k, v := range wantKeys {
		if d.Config[k] != v {
			t.Errorf("config %s=%q, want %q", k, d.Config[k], v)
		}
	}
	if p.perrs != nil || p.plan == nil || !p.plan.Empty() {
		t.Errorf("apply does not ignore the disposable instance: %v %+v", p.perrs, p.plan)
	}
	if insts := e.instances(t); strings.Contains(strings.Join(insts, " "), "disp-") {
		t.Errorf("disposable instance left: %v", insts)
	}
}

// TestDisp: the argument vector is passed as is, never through a shell;
// --domain and --image are honoured; errors are exact (SPEC.md §12.5).
func TestDisp(t *testing.T) {
	tests := []struct {
		name    string
		psot    string
		args    []string
		want    result
		project string // where the instance was created ("" for none)
	}{
		{"argument vector", psot, []string{"disp", "--", "echo", "a  b", "*", "$HOME"}, result{0, "a  b * $HOME\n", ""}, "throw"},
		{"command status", psot, []string{"disp", "--", "false"}, result{1, "", ""}, "throw"},
		{"command not found", psot, []string{"disp", "--", "no-such-cmd"}, result{127, "", "no-such-cmd: not found\n"}, "throw"},
		{"interactive shell without --", psot, []string{"disp"}, result{127, "", "/bin/sh: not found\n"}, "throw"},
		{"--domain", psot, []string{"disp", "--domain", "work", "--image", "anklume-test", "--", "true"}, result{}, "work"},
		{"--domain of a non-disposable PSOT", noDisp, []string{"disp", "--domain", "work", "--", "true"}, result{}, "work"},
		{"no disposable domain", noDisp, []string{"disp", "--", "true"},
			result{1, "", "error: no disposable domain; pass --domain\n"}, ""},
		{"unknown domain", psot, []string{"disp", "--domain", "nope", "--", "true"},
			result{1, "", "error: --domain: unknown domain \"nope\"\n"}, ""},
		{"unknown image remote", psot, []string{"disp", "--image", "nope:x", "--", "true"},
			result{1, "", "error: unknown image remote \"nope\" in \"nope:x\"\n"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.psot)
			before := e.instances(t)
			got := e.run(strings.NewReader(""), tc.args...)
			if got != tc.want {
				t.Errorf("%v:\n got %+v\nwant %+v", tc.args, got, tc.want)
			}
			created := ""
			for _, r := range e.fake.Log().Strings() {
				if strings.HasPrefix(r, "POST /1.0/instances?") {
					created = r
				}
			}
			switch {
			case tc.project == "" && created != "":
				t.Errorf("instance created: %s", created)
			case tc.project != "" && !strings.Contains(created, "project="+tc.project):
				t.Errorf("create request %q, want one in project %s", created, tc.project)
			}
			if after := e.instances(t); strings.Join(after, " ") != strings.Join(before, " ") {
				t.Errorf("instances %v after disp, want %v", after, before)
			}
		})
	}
}

// TestDispUsage: a command must follow `--`; the usage is printed and
// Incus is not contacted (SPEC.md §12.5, §13).
func TestDispUsage(t *testing.T) {
	e := newEnv(t, psot)
	got := e.run(strings.NewReader(""), "disp", "echo", "hi")
	want := "error: put the command after --: anklume disp -- CMD ARGS...\nRun 'anklume disp --help' for usage.\n"
	if got.code != 1 || got.stdout != "" || !strings.HasPrefix(got.stderr, want) {
		t.Errorf("disp echo hi: %+v", got)
	}
	if e.connects != 0 {
		t.Errorf("Incus contacted %d times", e.connects)
	}
}
