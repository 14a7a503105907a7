package reconcile

import (
	"context"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
)

func contains(t *testing.T, got string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(got, l+"\n") {
			t.Errorf("plan lacks %q:\n%s", l, got)
		}
	}
}

const keepDomains = `  work:
    trust_level: trusted
    egress: false
    machines:
      keep:
        ephemeral: false
      tmp:
        ephemeral: true
      web:
        ephemeral: true
`

// TestOrphans: a removed unprotected machine is deleted, a protected one
// kept with a note that stays; an unowned instance in an owned project is
// untouched (SPEC.md §16 #60).
func TestOrphans(t *testing.T) {
	ctx := context.Background()
	f, _, _ := applied(t, keepDomains)
	must(t, f.CreateInstance(ctx, "work", api.InstancesPost{Name: "mine", Source: api.InstanceSource{Type: "image", Alias: "anklume-test"}}))
	m, want := compile(t, psot(`  work:
    trust_level: trusted
    egress: false
    machines:
      web:
        ephemeral: true
`))
	p := mustPlan(t, f, m, want, Options{})
	got := text(t, p)
	contains(t, got, "  ! instance work/keep: kept (protected orphan)", "  - instance work/tmp",
		"Plan: 0 to create, 1 to update, 1 to delete.")
	if strings.Contains(got, "mine") {
		t.Errorf("plan touches an unowned instance:\n%s", got)
	}
	converge(t, f, p)
	p = mustPlan(t, f, m, want, Options{})
	if !p.Empty() || !strings.Contains(text(t, p), "! instance work/keep: kept (protected orphan)\n") {
		t.Errorf("second plan:\n%s", text(t, p))
	}
}

// TestOtherInfra: an object owned by another infrastructure is never
// touched, and a desired object with its name is a plan error (SPEC.md
// §16 #60).
func TestOtherInfra(t *testing.T) {
	ctx := context.Background()
	f, _, _ := applied(t, keepDomains)
	n, etag, _ := f.Network(ctx, "net-work")
	n.Config[incus.KeyInfra] = "other"
	must(t, f.UpdateNetwork(ctx, "net-work", n.Writable(), etag))
	m, want := compile(t, psot(keepDomains))
	_, err := planOn(t, f, m, want, Options{})
	if err == nil || err.Error() != `network net-work belongs to infrastructure "other"` {
		t.Fatalf("err = %v", err)
	}
	// Without the domain, the other infrastructure's bridge is no orphan.
	m, want = compile(t, psot(`  other:
    trust_level: trusted
    egress: false
`))
	p, err := planOn(t, f, m, want, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := text(t, p); strings.Contains(got, "net-work") {
		t.Errorf("plan touches the other infrastructure:\n%s", got)
	}
}

// TestOrphanDomain: removing a whole domain deletes its owned objects
// (instances, volumes, profiles, project, bridge), protected ones apart,
// and lists them under the orphan domain (SPEC.md §16 #60, §9.4).
func TestOrphanDomain(t *testing.T) {
	f, _, _ := applied(t, twoDomains)
	m, want := compile(t, psot(strings.SplitAfter(twoDomains, "  lab:\n")[0][:strings.Index(twoDomains, "  lab:\n")]))
	p := mustPlan(t, f, m, want, Options{})
	got := text(t, p)
	contains(t, got,
		"Domain lab (project lab, network net-lab)",
		"  ! instance lab/lab-1: kept (protected orphan)",
		"  ! storage volume lab/data: kept (protected orphan; pass --prune-volumes to delete it)",
		"  ! project lab: kept (in use by instance lab/lab-1, storage volume lab/data)",
		"  ! network net-lab: kept (in use by instance lab/lab-1, profile lab/default)",
		"No changes. Incus matches the configuration.")

	// An ephemeral domain goes entirely.
	eph := strings.Replace(twoDomains, "    trust_level: untrusted\n", "    trust_level: untrusted\n    ephemeral: true\n", 1)
	f, _, _ = applied(t, eph)
	p = mustPlan(t, f, m, want, Options{})
	got = text(t, p)
	contains(t, got,
		"Domain lab (project lab, network net-lab)\n  - project lab\n  - network net-lab\n  - storage volume lab/data\n  - instance lab/lab-1",
		"Plan: 0 to create, 0 to update, 4 to delete.")
	converge(t, f, p)
	assertEmpty(t, f, m, want, Options{})
}

// TestEmptyConfig: domains: {} against a live infrastructure is refused
// without --allow-empty (SPEC.md §16 #89, §9.2).
func TestEmptyConfig(t *testing.T) {
	f, _, _ := applied(t, strings.Replace(twoDomains, "    trust_level: untrusted\n", "    trust_level: untrusted\n    ephemeral: true\n", 1))
	m, want := compile(t, psot("  {}\n"))
	_, err := planOn(t, f, m, want, Options{})
	if err == nil || err.Error() != `the configuration has no enabled domain, but Incus holds objects of infrastructure "rt"; pass --allow-empty to delete them` {
		t.Fatalf("err = %v", err)
	}
	p := mustPlan(t, f, m, want, Options{AllowEmpty: true})
	if s := p.Summary(); s.Delete != 9 {
		t.Errorf("summary %+v:\n%s", s, text(t, p))
	}
	converge(t, f, p)
	assertEmpty(t, f, m, want, Options{AllowEmpty: true})
}

// TestAdopt: an unmanaged project with a desired name is a plan error
// with a hint; with --adopt it is adopted and carries
// user.anklume.adopted=true; as an orphan it is kept unless --force
// (SPEC.md §16 #88).
func TestAdopt(t *testing.T) {
	ctx := context.Background()
	f, _, _ := applied(t, twoDomains)
	must(t, f.CreateProject(ctx, api.ProjectsPost{Name: "extra", ProjectPut: api.ProjectPut{Config: map[string]string{
		"features.images": "false", "features.profiles": "true", "features.storage.volumes": "true", "features.networks": "false"}}}))
	withExtra := twoDomains + "  extra:\n    trust_level: admin\n    egress: false\n    ephemeral: true\n"
	m, want := compile(t, psot(withExtra))
	_, err := planOn(t, f, m, want, Options{})
	errs := Errors(err)
	if len(errs) != 1 || errs[0].Msg != "project extra exists and is not managed by anklume" ||
		errs[0].Hint != "pass --adopt to take it over, or rename the domain or machine" {
		t.Fatalf("errors = %v", err)
	}
	p := mustPlan(t, f, m, want, Options{Adopt: true})
	got := text(t, p)
	contains(t, got, "  ~ project extra (adopt)", `      + config["user.anklume.managed"]: "true"`, "  ~ profile extra/default (adopt)")
	converge(t, f, p)
	assertEmpty(t, f, m, want, Options{})
	pr, _, _ := f.Project(ctx, "extra")
	if pr.Config[incus.KeyAdopted] != "true" {
		t.Errorf("adopted project lacks user.anklume.adopted: %v", pr.Config)
	}
	m, want = compile(t, psot(twoDomains))
	p = mustPlan(t, f, m, want, Options{})
	contains(t, text(t, p), "  ! project extra: kept (adopted; pass --force to delete it)", "No changes. Incus matches the configuration.")
	p = mustPlan(t, f, m, want, Options{Force: true})
	contains(t, text(t, p), "  - project extra")
}

// TestInUseProfile: an orphan profile that a kept protected instance
// still uses is a `kept (in use by …)` note, every time (SPEC.md §16 #91).
func TestInUseProfile(t *testing.T) {
	before := `  work:
    trust_level: trusted
    egress: false
    profiles:
      big: {config: {limits.cpu: "2"}}
    machines:
      keep:
        profiles: [default, big]
      web:
        ephemeral: true
        ip: 10.210.0.2
`
	f, _, _ := applied(t, before)
	m, want := compile(t, psot(`  work:
    trust_level: trusted
    egress: false
    machines:
      web:
        ephemeral: true
        ip: 10.210.0.2
`))
	for range 2 {
		p := mustPlan(t, f, m, want, Options{})
		contains(t, text(t, p), "  ! profile work/big: kept (in use by instance work/keep)",
			"  ! instance work/keep: kept (protected orphan)")
		if !p.Empty() {
			t.Fatalf("plan not empty:\n%s", text(t, p))
		}
		converge(t, f, p)
	}
}

// TestSameNameInstance: an instance with a desired name that anklume does
// not own is a plan error, adopted with --adopt; one of another
// infrastructure is an error even with --adopt; an adopted instance is
// never replaced (SPEC.md §9.2, §16 #60, #88).
func TestSameNameInstance(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		cfg   map[string]string
		typ   string
		opts  Options
		err   string
		lines []string
	}{
		{name: "unowned", err: "instance work/web exists and is not managed by anklume"},
		{name: "unowned adopted", opts: Options{Adopt: true}, lines: []string{"  ~ instance work/web (adopt)", `      + config["user.anklume.managed"]: "true"`}},
		{name: "other infra", cfg: map[string]string{incus.KeyManaged: "true", incus.KeyInfra: "x"}, opts: Options{Adopt: true},
			err: `instance work/web belongs to infrastructure "x"`},
		{name: "adopt never replaces", typ: "virtual-machine", opts: Options{Adopt: true},
			err: "cannot replace instance work/web: it is not owned by anklume"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _ := applied(t, "  work:\n    trust_level: trusted\n    egress: false\n    ephemeral: true\n")
			req := api.InstancesPost{Name: "web", Source: api.InstanceSource{Type: "image", Alias: "anklume-test"}, Type: api.InstanceType(tt.typ),
				InstancePut: api.InstancePut{Config: tt.cfg}}
			must(t, f.CreateInstance(ctx, "work", req))
			m, want := compile(t, psot("  work:\n    trust_level: trusted\n    egress: false\n    ephemeral: true\n    machines:\n      web: {}\n"))
			p, err := planOn(t, f, m, want, tt.opts)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %s", err, tt.err)
				}
				return
			}
			must(t, err)
			contains(t, text(t, p), tt.lines...)
			converge(t, f, p)
			assertEmpty(t, f, m, want, Options{})
		})
	}
}

// TestOutOfScope: a disabled domain's objects are neither changed nor
// deleted; disp instances and the lock project are never orphans
// (SPEC.md §9.2).
func TestOutOfScope(t *testing.T) {
	ctx := context.Background()
	f, _, _ := applied(t, strings.Replace(twoDomains, "    trust_level: untrusted\n", "    trust_level: untrusted\n    ephemeral: true\n", 1))
	must(t, f.CreateInstance(ctx, "work", api.InstancesPost{Name: "disp-1", Source: api.InstanceSource{Type: "image", Alias: "anklume-test"},
		InstancePut: api.InstancePut{Config: map[string]string{incus.KeyDisp: "true", incus.KeyInfra: "rt"}}}))
	must(t, f.CreateProject(ctx, api.ProjectsPost{Name: LockProject, ProjectPut: api.ProjectPut{Config: map[string]string{
		incus.KeyManaged: "true", incus.KeyInfra: "rt"}}}))
	disabled := strings.Replace(twoDomains, "  lab:\n", "  lab:\n    enabled: false\n", 1)
	m, want := compile(t, psot(disabled))
	p := mustPlan(t, f, m, want, Options{})
	if got := text(t, p); strings.Contains(got, "lab") || strings.Contains(got, "disp-1") || strings.Contains(got, LockProject) || !p.Empty() {
		t.Errorf("plan touches out-of-scope objects:\n%s", got)
	}
}

// TestProjectFeatures: a differing create-only feature is a note, never a
// change (SPEC.md §5.7).
func TestProjectFeatures(t *testing.T) {
	ctx := context.Background()
	f, m, want := applied(t, twoDomains+"  bare:\n    trust_level: admin\n    egress: false\n")
	p, etag, _ := f.Project(ctx, "bare")
	p.Config["features.images"] = "true"
	must(t, f.UpdateProject(ctx, "bare", p.ProjectPut, etag))
	pl := mustPlan(t, f, m, want, Options{})
	contains(t, text(t, pl), `  ! project bare: features.images is "true", not "false"; Incus changes features only on an empty project`)
	if !pl.Empty() {
		t.Errorf("feature change planned:\n%s", text(t, pl))
	}
}
