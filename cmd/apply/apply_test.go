package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler/host"
	applyx "github.com/anklume/anklume/internal/apply"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/lock"
	nftsys "github.com/anklume/anklume/internal/nftables"
	"github.com/lxc/incus/v6/shared/api"
)

const psot = `format_version: 1
project_name: ct
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: anklume-test
domains:
  admin:
    trust_level: admin
    egress: false
    ephemeral: true
    machines:
      adm-a: {ip: 10.200.0.11}
      adm-b: {state: stopped}
  work:
    trust_level: trusted
    egress: false
    ephemeral: true
    machines:
      work-a: {roles: [base_system]}
`

type env struct {
	dir      string
	fake     *incusx.Fake
	out, err bytes.Buffer
	deployed int // requests seen by the fake when nftables was deployed
	runs     [][]string
	noRoot   bool
	noAnsib  bool
	connects int
}

func newEnv(t *testing.T, y string) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), fake: incusx.NewFake(), deployed: -1}
	e.write(t, y)
	return e
}

func (e *env) write(t *testing.T, y string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, "infra.yml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *env) opts(edit func(*Options)) *Options {
	e.out.Reset()
	e.err.Reset()
	f := &cmdutil.Factory{
		IO:      &cmdutil.IOStreams{In: strings.NewReader(""), Out: &e.out, ErrOut: &e.err},
		Getenv:  func(string) string { return "" },
		Getwd:   func() (string, error) { return e.dir, nil },
		FS:      func(dir string) fs.FS { return os.DirFS(dir) },
		Globals: &cmdutil.GlobalOptions{},
	}
	o := &Options{
		IO: f.IO, Globals: f.Globals, Source: f.Source, Getwd: f.Getwd, Remote: func() string { return "" },
		Host: func(bool) (host.Options, error) {
			return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}, nil
		},
		Connect: func(context.Context, string) (incusx.Server, error) { e.connects++; return e.fake, nil },
		NFT: nftsys.System{NFT: "nft", Run: func(context.Context, string, ...string) ([]byte, []byte, error) { return nil, nil, nil },
			Privileged: func() bool { return !e.noRoot },
			LookPath:   func(string) (string, error) { return "/usr/sbin/nft", nil }},
		Deploy: func(ctx context.Context, d nftsys.DeployOptions) error {
			e.deployed = len(writesOf(e.fake))
			return nil
		},
		LookPath: func(name string) (string, error) {
			if e.noAnsib {
				return "", errors.New("not found")
			}
			return "/usr/bin/" + name, nil
		},
		Run: func(ctx context.Context, dir string, out, errOut io.Writer, name string, args ...string) error {
			e.runs = append(e.runs, append([]string{dir, name}, args...))
			return nil
		},
		Lock: func(l *lock.Options) { l.Owner, l.Host = "test@here:1", "here" },
		Exec: func(x *applyx.Options) { x.StopTimeout = 1 },
		Jobs: 4,
	}
	if edit != nil {
		edit(o)
	}
	return o
}

func writesOf(f *incusx.Fake) []string {
	var out []string
	for _, r := range f.Log().Strings() {
		if !strings.HasPrefix(r, "GET ") {
			out = append(out, r)
		}
	}
	return out
}

// TestApplyConverges: apply on an empty server deploys nftables before any
// Incus change other than the lock, creates everything, provisions the
// machines with roles (excluding the stopped one), and a second apply has
// nothing to do (SPEC.md §9.5, §16 #56, #87).
func TestApplyConverges(t *testing.T) {
	e := newEnv(t, psot)
	if err := Run(context.Background(), e.opts(nil)); err != nil {
		t.Fatalf("apply: %v\n%s\n%s", err, e.out.String(), e.err.String())
	}
	out := e.out.String()
	if !strings.Contains(out, "+ instance work/work-a: done (") || !strings.HasSuffix(out, "Apply complete: 9 created, 0 updated, 0 deleted.\n") {
		t.Errorf("stdout:\n%s", out)
	}
	// Only the lock (the create of its project) came before the deploy.
	if e.deployed != 1 {
		t.Errorf("nftables deployed after %d writes: %v", e.deployed, writesOf(e.fake)[:e.deployed])
	}
	if len(e.runs) != 1 || strings.Join(e.runs[0], " ") != e.dir+" ansible-playbook site.yml --tags provision --limit admin,work,!adm-b" {
		t.Errorf("provision runs %q", e.runs)
	}
	if !strings.Contains(out, "\nProvisioning 1 machine: ansible-playbook site.yml --tags provision --limit admin,work,!adm-b\n") {
		t.Errorf("no provisioning line:\n%s", out)
	}
	if !strings.Contains(e.err.String(), `warning: domain "work" has egress: false; provisioning of "work-a" cannot download packages`) {
		t.Errorf("no W22:\n%s", e.err.String())
	}
	if _, err := os.Stat(filepath.Join(e.dir, "site.yml")); err != nil {
		t.Errorf("tree not written: %v", err)
	}
	if _, _, err := e.fake.Project(context.Background(), lock.Project); !incusx.IsNotFound(err) {
		t.Errorf("lock not released: %v", err)
	}

	if err := Run(context.Background(), e.opts(func(o *Options) { o.NoProvision = true })); err != nil {
		t.Fatalf("second apply: %v\n%s", err, e.err.String())
	}
	want := "No changes. Incus matches the configuration.\nApply complete: 0 created, 0 updated, 0 deleted.\n"
	if e.out.String() != want {
		t.Errorf("second apply:\n%s\nwant:\n%s", e.out.String(), want)
	}
}

// TestApplyPreconditions: a failing precondition stops apply before the
// lock and before any Incus request (SPEC.md §9.5 step 2, §16 #85, #87).
func TestApplyPreconditions(t *testing.T) {
	tests := []struct {
		name string
		set  func(*env, *Options)
		want string
	}{
		{"not root", func(e *env, o *Options) { e.noRoot = true },
			"error: nftables deploy needs root (CAP_NET_ADMIN)\n  hint: run as root, or pass --no-nftables\n"},
		{"remote", func(e *env, o *Options) { o.Remote = func() string { return "r" } },
			"error: " + MsgRemoteNFT + "\n"},
		{"no ansible", func(e *env, o *Options) { e.noAnsib = true },
			"error: ansible-playbook not found in PATH; it is needed to provision 1 machine\n  hint: install ansible-core, or pass --no-provision\n"},
		{"no nft", func(e *env, o *Options) {
			o.NFT.LookPath = func(string) (string, error) { return "", errors.New("no") }
		}, "error: nft not found in PATH\n  hint: install nftables\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, psot)
			o := e.opts(nil)
			tc.set(e, o)
			err := Run(context.Background(), o)
			if !errors.Is(err, cmdutil.ErrSilent) || e.err.String() != tc.want {
				t.Errorf("err %v, stderr %q, want %q", err, e.err.String(), tc.want)
			}
			if e.connects != 0 || e.fake.Log().Len() != 0 {
				t.Errorf("Incus contacted: %v", e.fake.Log().Strings())
			}
		})
	}
}

// TestApplyLockHeld: a second apply while the lock is held fails with the
// lock message and changes nothing (SPEC.md §16 #61).
func TestApplyLockHeld(t *testing.T) {
	e := newEnv(t, psot)
	l, err := lock.Acquire(context.Background(), lock.Options{Server: e.fake, Command: "apply", Owner: "bob@there:7", Host: "there"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background())
	e.fake.Log().Reset()
	err = Run(context.Background(), e.opts(nil))
	var held *lock.HeldError
	if !errors.As(err, &held) || !strings.HasPrefix(err.Error(), "another anklume run holds the lock on this Incus server (bob@there:7, apply, since ") {
		t.Fatalf("err %v", err)
	}
	// The attempt to create the lock, nothing else.
	if w := writesOf(e.fake); !slices.Equal(w, []string{"POST /1.0/projects"}) {
		t.Errorf("writes while locked out: %q", w)
	}
}

// TestApplyNeedsYes: a plan that deletes needs --yes without a TTY; with
// it the orphan machine is deleted (SPEC.md §9.5 step 4, §16 #60).
func TestApplyNeedsYes(t *testing.T) {
	e := newEnv(t, psot)
	if err := Run(context.Background(), e.opts(func(o *Options) { o.NoProvision = true })); err != nil {
		t.Fatal(err, e.err.String())
	}
	e.write(t, strings.Replace(psot, "      adm-a: {ip: 10.200.0.11}\n", "", 1))
	err := Run(context.Background(), e.opts(func(o *Options) { o.NoProvision = true }))
	if !errors.Is(err, cmdutil.ErrSilent) || !strings.HasSuffix(e.err.String(), "error: "+MsgNeedYes+"\n") {
		t.Fatalf("err %v stderr %q", err, e.err.String())
	}
	if _, _, err := e.fake.Instance(context.Background(), "admin", "adm-a"); err != nil {
		t.Fatal("deleted without confirmation")
	}
	if err := Run(context.Background(), e.opts(func(o *Options) { o.NoProvision = true; o.Yes = true })); err != nil {
		t.Fatal(err, e.err.String())
	}
	if !strings.Contains(e.out.String(), "- instance admin/adm-a: done (") {
		t.Errorf("stdout:\n%s", e.out.String())
	}
	if _, _, err := e.fake.Instance(context.Background(), "admin", "adm-a"); !incusx.IsNotFound(err) {
		t.Errorf("adm-a not deleted: %v", err)
	}
}

// TestApplyNoSyncOutdated: --no-sync with an outdated tree is an error.
func TestApplyNoSyncOutdated(t *testing.T) {
	e := newEnv(t, psot)
	err := Run(context.Background(), e.opts(func(o *Options) { o.NoSync = true }))
	if !errors.Is(err, cmdutil.ErrSilent) || e.err.String() != "error: "+MsgOutdated+"\n" {
		t.Errorf("err %v stderr %q", err, e.err.String())
	}
}

// TestApplyDeployFails: a failing deploy leaves Incus unchanged and
// releases the lock (SPEC.md §9.5 step 6, §16 #87).
func TestApplyDeployFails(t *testing.T) {
	e := newEnv(t, psot)
	err := Run(context.Background(), e.opts(func(o *Options) {
		o.Deploy = func(context.Context, nftsys.DeployOptions) error {
			return &nftsys.Error{Msg: "nft -c failed", Hint: "look"}
		}
	}))
	if !errors.Is(err, cmdutil.ErrSilent) || !strings.HasSuffix(e.err.String(), "error: nft -c failed\n  hint: look\n") {
		t.Fatalf("err %v stderr %q", err, e.err.String())
	}
	// The lock and its release (rename to its tombstone, delete), nothing else.
	if w := writesOf(e.fake); len(w) != 3 || w[0] != "POST /1.0/projects" || w[1] != "POST /1.0/projects/anklume-lock" || !strings.HasPrefix(w[2], "DELETE /1.0/projects/anklume-lock-") {
		t.Errorf("Incus changed: %q", w)
	}
	if _, _, err := e.fake.Project(context.Background(), lock.Project); !incusx.IsNotFound(err) {
		t.Errorf("lock not released: %v", err)
	}
}

// TestApplyFailedDomain: a domain whose image is missing is listed as
// failed and skipped; the other domain is created fully; the run exits 1
// with every failure listed; after the fix a re-run creates only what is
// missing (SPEC.md §16 #62).
func TestApplyFailedDomain(t *testing.T) {
	y := strings.Replace(psot, "      adm-b: {state: stopped}\n", "      adm-b: {state: stopped, os_image: nope-image}\n", 1)
	e := newEnv(t, y)
	err := Run(context.Background(), e.opts(func(o *Options) { o.NoProvision = true }))
	if !errors.Is(err, cmdutil.ErrSilent) {
		t.Fatalf("err %v", err)
	}
	out := e.out.String()
	for _, want := range []string{"! domain admin: failed: ", "+ instance work/work-a: done (",
		"Apply failed: 4 created, 0 updated, 0 deleted, 1 failed, 0 skipped.\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if !strings.HasSuffix(e.err.String(), "error: domain admin: image alias \"nope-image\" not found on the Incus server; add it (incus image copy images:debian/13 local: --alias nope-image) or use a remote image such as images:debian/13\n") {
		t.Errorf("stderr:\n%s", e.err.String())
	}
	if _, _, err := e.fake.Project(context.Background(), "admin"); !incusx.IsNotFound(err) {
		t.Errorf("failed domain touched: %v", err)
	}
	e.fake.AddImageAlias("nope-image")
	if err := Run(context.Background(), e.opts(func(o *Options) { o.NoProvision = true })); err != nil {
		t.Fatalf("re-run: %v\n%s", err, e.err.String())
	}
	if !strings.HasSuffix(e.out.String(), "Apply complete: 5 created, 0 updated, 0 deleted.\n") || strings.Contains(e.out.String(), "work/work-a") {
		t.Errorf("re-run:\n%s", e.out.String())
	}
}

// TestApplyRefreshContext: --refresh-context rewrites the context files
// of every running in-scope instance, not only new ones (SPEC.md §9.9).
func TestApplyRefreshContext(t *testing.T) {
	e := newEnv(t, psot)
	if err := Run(context.Background(), e.opts(func(o *Options) { o.NoProvision = true })); err != nil {
		t.Fatal(err)
	}
	before := e.fake.Log().Len()
	if err := Run(context.Background(), e.opts(func(o *Options) { o.NoProvision = true; o.RefreshContext = true })); err != nil {
		t.Fatal(err, e.err.String())
	}
	n := 0
	for _, r := range e.fake.Log().Strings()[before:] {
		if strings.Contains(r, "/files?") {
			n++
		}
	}
	// adm-a and work-a are running (adm-b is stopped): 5 requests each.
	if n != 10 {
		t.Errorf("%d file requests, want 10", n)
	}
}

// TestApplyRemoteResources: with --remote and a resource_policy, apply
// computes the limits from the Incus host's resources (GET
// /1.0/resources), as plan does, so a second apply finds nothing to do.
func TestApplyRemoteResources(t *testing.T) {
	e := newEnv(t, strings.Replace(psot, "global:\n", "global:\n  resource_policy: true\n", 1))
	var res api.Resources
	res.CPU.Total = 8
	res.Memory.Total = 16 << 30
	e.fake.SetResources(res)
	remote := func(o *Options) {
		o.Remote = func() string { return "far" }
		o.NoNftables, o.NoProvision = true, true
		o.Host = func(bool) (host.Options, error) { return host.Options{SkipHostSubnetCheck: true, Remote: true}, nil }
	}
	if err := Run(context.Background(), e.opts(remote)); err != nil {
		t.Fatalf("apply: %v\n%s\n%s", err, e.out.String(), e.err.String())
	}
	if strings.Contains(e.err.String(), "could not detect host resources") {
		t.Errorf("apply --remote skipped the resource policy:\n%s", e.err.String())
	}
	inst, _, err := e.fake.Instance(context.Background(), "work", "work-a")
	if err != nil || inst.Config["limits.memory"] == "" {
		t.Fatalf("no limits.memory after apply --remote: %v %v", err, inst)
	}
	if err := Run(context.Background(), e.opts(remote)); err != nil {
		t.Fatalf("second apply: %v\n%s", err, e.err.String())
	}
	if want := "No changes. Incus matches the configuration.\nApply complete: 0 created, 0 updated, 0 deleted.\n"; e.out.String() != want {
		t.Errorf("second apply:\n%s\nwant:\n%s", e.out.String(), want)
	}
}

// scalePSOT returns nd domains of nm ephemeral containers each.
func scalePSOT(nd, nm int) string {
	var b strings.Builder
	b.WriteString("format_version: 1\nproject_name: ct\nglobal:\n  addressing: {base_octet: 10, zone_base: 200}\n" +
		"  default_os_image: anklume-test\ndomains:\n")
	for d := range nd {
		fmt.Fprintf(&b, "  d%d:\n    trust_level: trusted\n    egress: false\n    ephemeral: true\n    machines:\n", d)
		for m := range nm {
			fmt.Fprintf(&b, "      d%d-m%d: {}\n", d, m)
		}
	}
	return b.String()
}

// TestNoopApplyRequests: a no-op apply makes the same requests, lock
// included, on 1 domain × 3 containers as on 10 × 3 (30 instances): none
// per instance or per domain.
func TestNoopApplyRequests(t *testing.T) {
	noop := func(nd int) []string {
		t.Helper()
		e := newEnv(t, scalePSOT(nd, 3))
		if err := Run(context.Background(), e.opts(nil)); err != nil {
			t.Fatalf("apply: %v\n%s", err, e.err.String())
		}
		e.fake.Log().Reset()
		if err := Run(context.Background(), e.opts(nil)); err != nil || !strings.Contains(e.out.String(), "No changes.") {
			t.Fatalf("no-op apply: %v\n%s\n%s", err, e.out.String(), e.err.String())
		}
		var out []string
		for _, r := range e.fake.Log().Strings() {
			// Names of the lock's tombstone and of operations vary.
			if i := strings.Index(r, "anklume-lock-"); i >= 0 {
				r = r[:i] + "anklume-lock-ID"
			}
			out = append(out, r)
		}
		slices.Sort(out)
		return out
	}
	small, big := noop(1), noop(10)
	if !slices.Equal(small, big) {
		t.Errorf("1×3: %d requests\n%s\n10×3: %d requests\n%s", len(small), strings.Join(small, "\n"), len(big), strings.Join(big, "\n"))
	}
	t.Logf("no-op apply: %d requests: %s", len(small), strings.Join(small, ", "))
}

// TestApplyKeepsHandEdit: the tree write of apply, like sync, keeps a
// framework file it replaces as <file>.bak.
func TestApplyKeepsHandEdit(t *testing.T) {
	e := newEnv(t, psot)
	if err := Run(context.Background(), e.opts(func(o *Options) { o.NoProvision = true })); err != nil {
		t.Fatalf("apply: %v\n%s", err, e.err.String())
	}
	site := filepath.Join(e.dir, "site.yml")
	data, err := os.ReadFile(site)
	if err != nil {
		t.Fatal(err)
	}
	edited := string(data) + "# my play\n"
	if err := os.WriteFile(site, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), e.opts(func(o *Options) { o.NoProvision = true })); err != nil {
		t.Fatalf("second apply: %v\n%s", err, e.err.String())
	}
	if bak, err := os.ReadFile(site + ".bak"); err != nil || string(bak) != edited {
		t.Errorf("site.yml.bak = %q, %v; want the hand edit", bak, err)
	}
	if now, _ := os.ReadFile(site); string(now) != string(data) {
		t.Errorf("site.yml not regenerated:\n%s", now)
	}
}
