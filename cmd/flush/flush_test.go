package flush

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/apply"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/lock"
	nftsys "github.com/anklume/anklume/internal/nftables"
	"github.com/anklume/anklume/internal/reconcile"
)

// psot: work is ephemeral, lab is protected.
const psot = `format_version: 1
project_name: fl
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
  lab:
    trust_level: semi-trusted
    egress: false
    machines:
      lab-1: {}
`

type env struct {
	dir      string
	fake     *incusx.Fake
	out, err bytes.Buffer
	level    int
	yolo     bool
	tty      bool
	in       string
	remote   string
	connects int
	removed  []string // infra names given to RemoveNFT
}

// newEnv writes psot and applies it on a fresh fake.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), fake: incusx.NewFake()}
	if err := os.WriteFile(filepath.Join(e.dir, "infra.yml"), []byte(psot), 0o644); err != nil {
		t.Fatal(err)
	}
	res, _, err := compiler.Compile(os.DirFS(e.dir), compiler.Input{Path: "infra.yml", Display: "infra.yml"}, e.host())
	if err != nil || res == nil || res.Model == nil {
		t.Fatalf("compile: %v", err)
	}
	ctx := context.Background()
	want := incus.Desired(res.Model)
	obs, err := reconcile.Observe(ctx, e.fake, reconcile.ObserveOptions{Pools: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := reconcile.Diff(want, obs, reconcile.Options{Model: res.Model, ResolveImage: e.fake.ResolveImage})
	if err != nil {
		t.Fatal(err)
	}
	if r := apply.Execute(ctx, p, apply.Options{Server: e.fake, NoSnapshot: true}); !r.OK() {
		t.Fatalf("apply: %+v", r)
	}
	return e
}

func (e *env) host() host.Options {
	return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30},
		Context: host.Context{Level: e.level, Yolo: e.yolo}}
}

func (e *env) run(edit func(*Options)) error {
	e.out.Reset()
	e.err.Reset()
	f := &cmdutil.Factory{
		IO:      &cmdutil.IOStreams{In: strings.NewReader(e.in), Out: &e.out, ErrOut: &e.err, OutTTY: e.tty},
		Getenv:  func(string) string { return "" },
		Getwd:   func() (string, error) { return e.dir, nil },
		FS:      func(dir string) fs.FS { return os.DirFS(dir) },
		Globals: &cmdutil.GlobalOptions{},
		Host:    func(bool) (host.Options, error) { return e.host(), nil },
		Incus:   func(context.Context, string) (incusx.Server, error) { e.connects++; return e.fake, nil },
	}
	o := NewOptions(f)
	o.Remote = func() string { return e.remote }
	o.RemoveNFT = func(_ context.Context, r nftsys.RemoveOptions) {
		e.removed = append(e.removed, r.Infra)
		r.Out.Write([]byte("removed: table inet anklume\n"))
	}
	if edit != nil {
		edit(o)
	}
	return Run(context.Background(), o)
}

func instances(t *testing.T, f *incusx.Fake) []string {
	t.Helper()
	insts, err := f.Instances(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range insts {
		out = append(out, i.Project+"/"+i.Name)
	}
	return out
}

// TestFlushRefusals: the production guard, the confirmation (which
// --force does not skip) and destroy's --limit (SPEC.md §12.2, §12.3,
// §16 #70, #71). Nothing is read from Incus before they pass.
func TestFlushRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*env)
		edit  func(*Options)
		want  string
	}{
		{"production guard", nil, func(o *Options) { o.Yes = true },
			"error: refusing to flush a production host (absolute_level=0); pass --allow-production\n"},
		{"no TTY without --yes", nil, func(o *Options) { o.AllowProduction = true },
			"error: flush needs --yes when not run from a terminal\n"},
		{"--force does not skip the question", nil, func(o *Options) { o.AllowProduction, o.Force = true, true },
			"error: flush needs --yes when not run from a terminal\n"},
		{"answer other than yes", func(e *env) { e.tty, e.in = true, "no\n" }, func(o *Options) { o.AllowProduction = true },
			"error: flush cancelled\n"},
		{"destroy without --limit", nil, func(o *Options) { o.Destroy = true; o.Yes = true },
			"error: destroy needs --limit DOMAIN; use flush to remove everything\n"},
		{"destroy of an unknown domain", nil, func(o *Options) { o.Destroy, o.Limit, o.Yes = true, []string{"nope"}, true },
			"error: --limit: unknown domain \"nope\"\n"},
		{"destroy without TTY", nil, func(o *Options) { o.Destroy, o.Limit = true, []string{"work"} },
			"error: destroy needs --yes when not run from a terminal\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			err := e.run(tt.edit)
			if !errors.Is(err, cmdutil.ErrSilent) || e.err.String() != tt.want {
				t.Errorf("err %v, stderr %q, want %q", err, e.err.String(), tt.want)
			}
			if e.connects != 0 || len(instances(t, e.fake)) != 2 {
				t.Errorf("Incus touched: %d connections, %v", e.connects, instances(t, e.fake))
			}
		})
	}
}

// TestFlushRun: with --allow-production --yes and no --force the
// protected instance survives; the nftables step runs; the summary line
// is last; --force then removes the rest; the lock is released.
func TestFlushRun(t *testing.T) {
	e := newEnv(t)
	if err := e.run(func(o *Options) { o.AllowProduction, o.Yes = true, true }); err != nil {
		t.Fatalf("flush: %v\n%s", err, e.err.String())
	}
	out := e.out.String()
	if !strings.HasSuffix(out, "removed: table inet anklume\nflush: 3 destroyed, 4 skipped (protected), 0 failed\n") {
		t.Errorf("output:\n%s", out)
	}
	if got := instances(t, e.fake); !slices.Equal(got, []string{"lab/lab-1"}) || !slices.Equal(e.removed, []string{"fl"}) {
		t.Errorf("left %v, nft removed for %v", got, e.removed)
	}
	if err := e.run(func(o *Options) { o.AllowProduction, o.Yes, o.Force = true, true, true }); err != nil {
		t.Fatalf("flush --force: %v\n%s", err, e.err.String())
	}
	if !strings.HasSuffix(e.out.String(), "flush: 3 destroyed, 0 skipped (protected), 0 failed\n") || len(instances(t, e.fake)) != 0 {
		t.Errorf("flush --force:\n%s", e.out.String())
	}
	if _, _, err := e.fake.Project(context.Background(), lock.Project); !incusx.IsNotFound(err) {
		t.Errorf("lock not released: %v", err)
	}
}

// TestFlushYolo: yolo lifts the guard; a TTY answer "yes" confirms, after
// the exact prompt.
func TestFlushYolo(t *testing.T) {
	e := newEnv(t)
	e.yolo, e.tty, e.in = true, true, "yes\n"
	if err := e.run(nil); err != nil {
		t.Fatalf("%v\n%s", err, e.err.String())
	}
	if !strings.HasPrefix(e.out.String(), `Type "yes" to destroy all anklume objects of fl: `) {
		t.Errorf("prompt:\n%s", e.out.String())
	}
}

// TestFlushFailure: a failed deletion is reported on stderr, the run goes
// on, and the exit status is 1.
func TestFlushFailure(t *testing.T) {
	e := newEnv(t)
	e.fake.Fail("DeleteInstance", "work/web", errors.New("boom"))
	err := e.run(func(o *Options) { o.AllowProduction, o.Yes, o.Force = true, true, true })
	if !errors.Is(err, cmdutil.ErrSilent) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(e.err.String(), `error: instance work/web: deleting instance "work/web": boom`) ||
		!strings.HasSuffix(e.out.String(), "flush: 3 destroyed, 3 skipped (protected), 1 failed\n") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", e.out.String(), e.err.String())
	}
}

// TestFlushFiles: --files deletes the generated paths; --remote skips
// the nftables step with a warning.
func TestFlushFiles(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"inventory/hosts.yml", "group_vars/all.yml", "host_vars/web.yml", "nftables/anklume-isolation.nft", "site.yml"} {
		full := filepath.Join(e.dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.remote = "r"
	if err := e.run(func(o *Options) { o.AllowProduction, o.Yes, o.Files = true, true, true }); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"inventory", "group_vars", "host_vars", "nftables/anklume-isolation.nft"} {
		if _, err := os.Stat(filepath.Join(e.dir, p)); err == nil {
			t.Errorf("%s kept", p)
		}
	}
	if _, err := os.Stat(filepath.Join(e.dir, "site.yml")); err != nil {
		t.Errorf("site.yml removed")
	}
	if len(e.removed) != 0 || !strings.Contains(e.err.String(), "warning: "+MsgRemoteNFT+"\n") {
		t.Errorf("remote: nft removed %v, stderr %q", e.removed, e.err.String())
	}
}

// TestDestroy: destroy --limit work removes only work, asks for no
// --allow-production at level 0, and does not touch nftables.
func TestDestroy(t *testing.T) {
	e := newEnv(t)
	e.tty, e.in = true, "yes\n"
	if err := e.run(func(o *Options) { o.Destroy, o.Limit = true, []string{"work"} }); err != nil {
		t.Fatalf("%v\n%s", err, e.err.String())
	}
	out := e.out.String()
	if !strings.HasPrefix(out, `Type "yes" to destroy the anklume objects of work: `) ||
		!strings.HasSuffix(out, "destroy: 3 destroyed, 0 skipped (protected), 0 failed\n") {
		t.Errorf("output:\n%s", out)
	}
	if got := instances(t, e.fake); !slices.Equal(got, []string{"lab/lab-1"}) || len(e.removed) != 0 {
		t.Errorf("left %v, nft %v", got, e.removed)
	}
}

// TestFlushLockHeld: a fresh lock held by another run stops flush.
func TestFlushLockHeld(t *testing.T) {
	e := newEnv(t)
	l, err := lock.Acquire(context.Background(), lock.Options{Server: e.fake, Command: "apply", Owner: "bob@elsewhere:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background())
	err = e.run(func(o *Options) { o.AllowProduction, o.Yes = true, true })
	var held *lock.HeldError
	if !errors.As(err, &held) || len(instances(t, e.fake)) != 2 {
		t.Errorf("err %v", err)
	}
}
