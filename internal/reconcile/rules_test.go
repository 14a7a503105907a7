package reconcile

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/internal/hostdirs"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/plan"
)

// TestPlanTimeChecks: a domain that fails a plan-time check is listed as
// `! domain <d>: failed: …`, left out, and the others are planned; after
// the fix only what is missing is created (SPEC.md §16 #62, §9.1).
func TestPlanTimeChecks(t *testing.T) {
	const b = `  b:
    trust_level: trusted
    egress: false
    machines:
      b-1: {}
`
	tests := []struct {
		name  string
		a     string
		setup func(f *incusx.Fake)
		msg   string
	}{
		{"image alias missing", "      a-1: {os_image: nope}\n", nil, `image alias "nope" not found on the Incus server; add it (incus image copy images:debian/13 local: --alias nope) or use a remote image such as images:debian/13`},
		{"unknown remote", "      a-1: {os_image: \"far:debian\"}\n", nil, `unknown image remote "far" in "far:debian"`},
		{"volume pool missing", "      a-1:\n        storage_volumes: {v: {pool: fast}}\n", nil, `storage pool "fast" not found on the Incus server; create it (incus storage create fast dir) or name an existing pool in global.storage_pool`},
		{"target without cluster", "      a-1: {target: n1}\n", nil, `target "n1" is set but the Incus server is not clustered`},
		{"unknown member", "      a-1: {target: n2}\n", func(f *incusx.Fake) { f.AddClusterMember("n1") }, `cluster member "n2" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := incusx.NewFake()
			if tt.setup != nil {
				tt.setup(f)
			}
			domains := "  a:\n    trust_level: admin\n    egress: false\n    machines:\n" + tt.a + b
			m, want := compile(t, psot(domains))
			oo := ObserveOptions{Pools: []string{"default"}}
			obs, err := Observe(context.Background(), f, oo)
			must(t, err)
			p, err := Diff(want, obs, Options{Model: m, ResolveImage: f.ResolveImage})
			must(t, err)
			if len(p.Failed) != 1 || p.Failed[0] != (plan.FailedDomain{Domain: "a", Message: tt.msg}) {
				t.Fatalf("failed = %+v", p.Failed)
			}
			got := text(t, p)
			contains(t, got, "Domain a (project a, network net-a)\n  ! domain a: failed: "+tt.msg, "  + instance b/b-1 (lxc, anklume-test, 10.210.0.1)")
			if strings.Contains(got, "a/a-1") || strings.Contains(got, "+ project a") {
				t.Errorf("the failed domain is planned:\n%s", got)
			}
			converge(t, f, p)
			// After the fix, only domain a is created.
			m2, want2 := compile(t, psot("  a:\n    trust_level: admin\n    egress: false\n    machines:\n      a-1: {}\n"+b))
			p = mustPlan(t, f, m2, want2, Options{})
			for _, c := range p.Changes {
				if c.Domain != "a" || c.Action != plan.Create {
					t.Errorf("unexpected change %s %s", c.Action, c.Name)
				}
			}
			converge(t, f, p)
			assertEmpty(t, f, m2, want2, Options{})
		})
	}
}

// TestRestartReplaceLimit: a VM limits.memory change shows (restart); a
// container limits change does not; a type change of an unprotected
// instance is -/+, of a protected one a plan error; --limit touches only
// the named domain (SPEC.md §16 #64, §9.3).
func TestRestartReplaceLimit(t *testing.T) {
	f, _, _ := applied(t, twoDomains)
	changed := strings.Replace(twoDomains, "      db:\n        type: vm\n", "      db:\n        type: vm\n        config: {limits.memory: 3GiB}\n", 1)
	changed = strings.Replace(changed, "limits.memory: 1GiB", "limits.memory: 2GiB", 1)
	m, want := compile(t, psot(changed))
	p := mustPlan(t, f, m, want, Options{})
	got := text(t, p)
	contains(t, got, "  ~ instance work/db (restart)", `      + config["limits.memory"]: "3GiB"`,
		"  ~ instance work/web\n      ~ config[\"limits.memory\"]: \"1GiB\" -> \"2GiB\"")
	i := slices.IndexFunc(p.Changes, func(c plan.Change) bool { return c.Name == "work/db" })
	if !p.Changes[i].Restart {
		t.Error("restart flag not set")
	}
	converge(t, f, p)
	assertEmpty(t, f, m, want, Options{})

	// --limit lab: work's drift is left alone.
	m3, want3 := compile(t, psot(twoDomains))
	p = mustPlan(t, f, m3, want3, Options{Limit: []string{"lab"}})
	if !p.Empty() {
		t.Errorf("--limit lab plans work:\n%s", text(t, p))
	}
	if _, err := planOn(t, f, m3, want3, Options{Limit: []string{"nope"}}); err == nil || err.Error() != `--limit: unknown domain "nope"` {
		t.Errorf("unknown --limit: %v", err)
	}

	// Type change: work is ephemeral, lab protected.
	swapped := strings.Replace(changed, "      db:\n        type: vm\n", "      db:\n        type: lxc\n", 1)
	m, want = compile(t, psot(swapped))
	p = mustPlan(t, f, m, want, Options{})
	contains(t, text(t, p), "  -/+ instance work/db (replace: type vm -> lxc)", "Plan: 1 to create, 0 to update, 1 to delete.")
	converge(t, f, p)
	assertEmpty(t, f, m, want, Options{})

	vmLab := strings.Replace(twoDomains, "      lab-1:\n        type: lxc\n", "      lab-1:\n        type: vm\n", 1)
	m, want = compile(t, psot(vmLab))
	_, err := planOn(t, f, m, want, Options{Limit: []string{"lab"}})
	if err == nil || err.Error() != "cannot replace protected instance lab/lab-1 (security.protection.delete=true); set ephemeral: true first" {
		t.Errorf("protected replace: %v", err)
	}
}

// TestRenumber: adding a trusted domain that sorts first shifts the
// automatic subnet of an existing one: `(renumber)` for the bridge and
// its instances, with W20 and W21 and their pin hints (SPEC.md §16 #86).
func TestRenumber(t *testing.T) {
	const work = "  work:\n    trust_level: trusted\n    egress: false\n    machines:\n      web: {}\n      db: {ip: 10.210.0.9}\n"
	f, _, _ := applied(t, work)
	m, want := compile(t, psot("  alpha:\n    trust_level: trusted\n    egress: false\n"+strings.Replace(work, "      db: {ip: 10.210.0.9}\n", "", 1)))
	p := mustPlan(t, f, m, want, Options{})
	contains(t, text(t, p),
		"  ~ network net-work (renumber)",
		`      ~ config["ipv4.address"]: "10.210.0.254/24" -> "10.210.1.254/24"`,
		"  ~ instance work/web (renumber)",
		`      ~ devices.eth0["ipv4.address"]: "10.210.0.1" -> "10.210.1.1"`)
	wantW := []plan.Warning{
		{Msg: `domain "work" moves from 10.210.0.0/24 to 10.210.1.0/24 because its automatic subnet id changed`, Hint: "pin it with subnet_id: 0"},
		{Msg: `machine "web" moves from 10.210.0.1 to 10.210.1.1 because its automatic ip changed`, Hint: `pin it with ip: "10.210.0.1"`},
	}
	if !slices.Equal(p.Warnings, wantW) {
		t.Errorf("warnings = %+v", p.Warnings)
	}
	if !p.Destructive() || p.Summary().Renumber != 2 {
		t.Errorf("renumber not destructive: %+v", p.Summary())
	}
}

// TestSwapIPs: swapping the ip of two machines is two renumbers that
// converge (SPEC.md §16 #86).
func TestSwapIPs(t *testing.T) {
	const work = "  work:\n    trust_level: trusted\n    egress: false\n    machines:\n      a: {ip: 10.210.0.5}\n      b: {ip: 10.210.0.6}\n"
	f, _, _ := applied(t, work)
	m, want := compile(t, psot(strings.NewReplacer("0.5}", "0.6}", "0.6}", "0.5}").Replace(work)))
	p := mustPlan(t, f, m, want, Options{})
	if s := p.Summary(); s.Renumber != 2 || slices.ContainsFunc(p.Warnings, func(w plan.Warning) bool { return strings.HasPrefix(w.Msg, "machine") }) {
		t.Fatalf("summary %+v, warnings %v:\n%s", s, p.Warnings, text(t, p))
	}
	converge(t, f, p)
	assertEmpty(t, f, m, want, Options{})
}

// TestVolumes: a removed volume of a protected domain is kept until
// --prune-volumes; a smaller size is a note; a pool change is a plan error
// (SPEC.md §16 #89, §5.5).
func TestVolumes(t *testing.T) {
	f, _, _ := applied(t, twoDomains)
	f.AddStoragePool("fast", "dir")
	noVol := strings.Replace(twoDomains, "        storage_volumes:\n          data: {size: 1GiB, path: /data}\n", "", 1)
	m, want := compile(t, psot(noVol))
	p := mustPlan(t, f, m, want, Options{})
	contains(t, text(t, p), "  ! storage volume lab/data: kept (protected orphan; pass --prune-volumes to delete it)")
	if p.Summary().Delete != 0 {
		t.Errorf("volume deleted without --prune-volumes:\n%s", text(t, p))
	}
	p = mustPlan(t, f, m, want, Options{PruneVolumes: true})
	contains(t, text(t, p), "  - storage volume lab/data")

	smaller := strings.Replace(twoDomains, "size: 1GiB", "size: 512MiB", 1)
	m, want = compile(t, psot(smaller))
	p = mustPlan(t, f, m, want, Options{})
	contains(t, text(t, p), "  ! storage volume lab/data: size 512MiB is smaller than the live 1GiB; a volume never shrinks")
	if !p.Empty() {
		t.Errorf("smaller size changes:\n%s", text(t, p))
	}
	bigger := strings.Replace(twoDomains, "size: 1GiB", "size: 2GiB", 1)
	m, want = compile(t, psot(bigger))
	p = mustPlan(t, f, m, want, Options{})
	contains(t, text(t, p), "  ~ storage volume lab/data", `      ~ config.size: "1GiB" -> "2GiB"`)
	converge(t, f, p)
	assertEmpty(t, f, m, want, Options{})

	moved := strings.Replace(twoDomains, "data: {size: 1GiB, path: /data}", "data: {size: 1GiB, path: /data, pool: fast}", 1)
	m, want = compile(t, psot(moved))
	_, err := planOn(t, f, m, want, Options{})
	if err == nil || !strings.Contains(err.Error(), `storage volume lab/data is in pool "default", not "fast"; anklume does not move volume data between pools`) {
		t.Errorf("pool change: %v", err)
	}
}

// TestHostDirectories: shared-volume and persistent-data sources are
// notes: missing ones locally, every one with --remote (SPEC.md §4.11,
// §16 #89).
func TestHostDirectories(t *testing.T) {
	const d = "  work:\n    trust_level: trusted\n    egress: false\n    machines:\n      web:\n        persistent_data: {home: {path: /home}}\n"
	src := psot(d) + "shared_volumes:\n  code:\n    consumers: {work: rw}\n"
	m, want := compile(t, src)
	f := incusx.NewFake()
	var asked []hostdirs.Dir
	p := mustPlan(t, f, m, want, Options{DirExists: func(p string) bool { return p == "/srv/anklume/shares/code" },
		LegacyDir: func(d hostdirs.Dir) bool { asked = append(asked, d); return false }})
	got := text(t, p)
	contains(t, got, "! directory /srv/anklume/data/work/web/home: missing; apply creates it")
	if strings.Contains(got, "shares/code") {
		t.Errorf("existing directory listed:\n%s", got)
	}
	if len(asked) != 1 || asked[0] != (hostdirs.Dir{Path: "/srv/anklume/shares/code", Kind: hostdirs.Shared, Chosen: true}) {
		t.Errorf("LegacyDir asked about %+v", asked)
	}
	// An existing directory an older anklume made is named, once.
	p = mustPlan(t, f, m, want, Options{DirExists: func(string) bool { return true },
		LegacyDir: func(d hostdirs.Dir) bool { return d.Kind == hostdirs.Persistent && d.Chosen }})
	got = text(t, p)
	contains(t, got, "! directory /srv/anklume/data/work/web/home: made by an older anklume (owner root, mode 0750), which no container can use; apply hands it to the containers' root")
	if strings.Contains(got, "shares/code") {
		t.Errorf("a finished directory listed:\n%s", got)
	}
	// A shared volume with its own source is the user's: never chosen.
	m2, want2 := compile(t, psot(d)+"shared_volumes:\n  code:\n    source: /data/code\n    consumers: {work: rw}\n")
	asked = nil
	mustPlan(t, f, m2, want2, Options{DirExists: func(string) bool { return true }, LegacyDir: func(d hostdirs.Dir) bool { asked = append(asked, d); return false }})
	if len(asked) != 2 || !slices.Contains(asked, hostdirs.Dir{Path: "/data/code", Kind: hostdirs.Shared}) {
		t.Errorf("LegacyDir asked about %+v", asked)
	}
	p = mustPlan(t, f, m, want, Options{Remote: true})
	contains(t, text(t, p), "! directory /srv/anklume/data/work/web/home: must exist on the Incus host",
		"! directory /srv/anklume/shares/code: must exist on the Incus host")
}

// TestStateAndMove: state: stopped creates a stopped instance and is never
// started; switching to running starts it; moving a machine to another
// domain is a move, whose persistent data follows it; with storage
// volumes it is a plan error (SPEC.md §16 #90).
func TestStateAndMove(t *testing.T) {
	ctx := context.Background()
	const two = "  work:\n    trust_level: trusted\n    egress: false\n    ephemeral: true\n    machines:\n      web: {state: stopped}\n  lab:\n    trust_level: admin\n    egress: false\n    machines:\n      other: {}\n"
	f, _, _ := applied(t, two)
	x, _, err := f.Instance(ctx, "work", "web")
	must(t, err)
	if x.Status != "Stopped" {
		t.Fatalf("status %s", x.Status)
	}
	m, want := compile(t, psot(strings.Replace(two, "{state: stopped}", "{}", 1)))
	p := mustPlan(t, f, m, want, Options{})
	contains(t, text(t, p), "  ~ instance work/web (start, repair: never started since an earlier run created it)")
	converge(t, f, p)
	assertEmpty(t, f, m, want, Options{})

	movedPSOT := "  work:\n    trust_level: trusted\n    egress: false\n    ephemeral: true\n  lab:\n    trust_level: admin\n    egress: false\n    machines:\n      other: {}\n      web: {ephemeral: true}\n"
	m, want = compile(t, psot(movedPSOT))
	p = mustPlan(t, f, m, want, Options{})
	contains(t, text(t, p), "Domain lab (project lab, network net-lab)\n  ~ instance lab/web (move: work -> lab)",
		`      ~ devices.eth0["ipv4.address"]: "10.210.0.1" -> "10.200.0.2"`)
	if !p.Destructive() || p.Summary().Move != 1 {
		t.Errorf("move: %+v", p.Summary())
	}
	converge(t, f, p)
	assertEmpty(t, f, m, want, Options{})

	// Persistent data follows the machine: the reason says where it goes;
	// a destination that holds files, or a remote host, fails the plan.
	f, _, _ = applied(t, strings.Replace(two, "{state: stopped}", "{persistent_data: {home: {path: /home}}}", 1))
	m, want = compile(t, psot(strings.Replace(movedPSOT, "web: {ephemeral: true}", "web: {ephemeral: true, persistent_data: {home: {path: /home}}}", 1)))
	p = mustPlan(t, f, m, want, Options{})
	contains(t, text(t, p), "  ~ instance lab/web (move: work -> lab; persistent data /srv/anklume/data/work/web/home moves to /srv/anklume/data/lab/web/home)")
	if ch := p.Changes[len(p.Changes)-1]; len(ch.DataMoves) != 1 || ch.DataMoves[0] != (hostdirs.Move{From: "/srv/anklume/data/work/web/home", To: "/srv/anklume/data/lab/web/home"}) {
		t.Errorf("data moves: %+v", p.Changes)
	}
	// Nothing to move when the old directory is not on the host.
	p = mustPlan(t, f, m, want, Options{DirExists: func(string) bool { return false }})
	contains(t, text(t, p), "  ~ instance lab/web (move: work -> lab)")
	_, err = planOn(t, f, m, want, Options{EmptyDir: func(p string) bool { return p != "/srv/anklume/data/lab/web/home" }})
	errs := Errors(err)
	if len(errs) != 1 || errs[0].Msg != `cannot move instance work/web to domain "lab": its persistent data /srv/anklume/data/work/web/home would move to /srv/anklume/data/lab/web/home, which exists and is not empty` ||
		errs[0].Hint != "anklume never merges data directories: empty or rename /srv/anklume/data/lab/web/home, then apply again" {
		t.Errorf("move onto data: %v", err)
	}
	_, err = planOn(t, f, m, want, Options{Remote: true})
	if errs := Errors(err); len(errs) != 1 || !strings.Contains(errs[0].Msg, "its persistent data /srv/anklume/data/work/web/home is on the Incus host") {
		t.Errorf("remote move: %v", err)
	}
	// Custom storage volumes belong to their project: still refused.
	f, _, _ = applied(t, strings.Replace(two, "{state: stopped}", "{storage_volumes: {v: {size: 1GiB, path: /v}}}", 1))
	m, want = compile(t, psot(strings.Replace(movedPSOT, "web: {ephemeral: true}", "web: {ephemeral: true, storage_volumes: {v: {size: 1GiB, path: /v}}}", 1)))
	_, err = planOn(t, f, m, want, Options{})
	if errs := Errors(err); len(errs) == 0 || errs[0].Msg != `cannot move instance work/web to domain "lab": its storage volumes stay with domain "work"` {
		t.Errorf("move with volumes: %v", err)
	}
}

// TestMetadata: with the server's configuration metadata, limits.memroy is
// a plan error with did-you-mean, limits.kernel.nofile only warns, and a
// mistyped disk property is caught (SPEC.md §16 #92, §9.1).
func TestMetadata(t *testing.T) {
	f := incusx.NewFake()
	keys := func(ks ...string) []map[string]api.MetadataConfigKey {
		var out []map[string]api.MetadataConfigKey
		for _, k := range ks {
			out = append(out, map[string]api.MetadataConfigKey{k: {}})
		}
		return out
	}
	f.SetMetadataConfiguration(api.MetadataConfiguration{Config: api.MetadataConfig{
		"instance": {
			"resource-limits": {Keys: keys("limits.cpu", "limits.memory", "limits.memory.enforce")},
			"security":        {Keys: keys("security.nesting", "security.protection.delete")},
			"miscellaneous":   {Keys: keys("user.*", "linux.sysctl.*")},
		},
		"devices": {"disk": {Keys: keys("path", "pool", "source", "readonly", "shift")}},
	}})
	const d = "  work:\n    trust_level: trusted\n    egress: false\n    machines:\n      web:\n        config: {limits.memroy: 1GiB, limits.kernel.nofile: \"100\", linux.sysctl.net.ipv4.ip_forward: \"1\"}\n        devices: {tmp: {type: disk, source: /tmp, path: /mnt, readonyl: \"true\"}}\n"
	m, want := compile(t, psot(d))
	p, err := planOn(t, f, m, want, Options{})
	errs := Errors(err)
	if len(errs) != 2 ||
		*errs[0] != (Error{Msg: `instance work/web: unknown config key "limits.memroy"`, Hint: `did you mean "limits.memory"?`}) ||
		*errs[1] != (Error{Msg: `instance work/web: unknown device property "readonyl" of device "tmp"`, Hint: `did you mean "readonly"?`}) {
		t.Errorf("errors = %q", err)
	}
	if len(p.Warnings) != 1 || p.Warnings[0].Msg != `instance work/web: config key "limits.kernel.nofile" is not in the server's configuration metadata` {
		t.Errorf("warnings = %+v", p.Warnings)
	}
}

// TestFirewallRestart: a change of firewall-multi-nic restarts the
// running firewall VM (SPEC.md §9.3).
func TestFirewallRestart(t *testing.T) {
	ctx := context.Background()
	src := "  anklume:\n    trust_level: admin\n    egress: false\n    ephemeral: true\n    machines:\n      web: {}\n  lab:\n    trust_level: trusted\n    egress: false\n    ephemeral: true\n"
	f := incusx.NewFake()
	m, want := compile(t, strings.Replace(psot(src), "global:\n", "global:\n  firewall_mode: vm\n", 1))
	converge(t, f, mustPlan(t, f, m, want, Options{}))
	assertEmpty(t, f, m, want, Options{})
	var fwProject string
	for _, pr := range want.Projects {
		if pr.Profile("firewall-multi-nic") != nil {
			fwProject = pr.Name
		}
	}
	p, etag, err := f.Profile(ctx, fwProject, "firewall-multi-nic")
	must(t, err)
	p.Description = "edited"
	must(t, f.UpdateProfile(ctx, fwProject, "firewall-multi-nic", p.ProfilePut, etag))
	pl := mustPlan(t, f, m, want, Options{})
	contains(t, text(t, pl), "  ~ profile "+fwProject+"/firewall-multi-nic", "  ~ instance "+fwProject+"/anklume-firewall (restart)")
	converge(t, f, pl)
	assertEmpty(t, f, m, want, Options{})
}

// TestReplaceKeepsData: the replace reason of a machine with persistent
// data, a shared volume and a custom volume names each of them and where
// it stays; a machine without data keeps the plain reason.
func TestReplaceKeepsData(t *testing.T) {
	const doms = `  work:
    trust_level: trusted
    egress: false
    ephemeral: true
    machines:
      ws:
        type: vm
        persistent_data:
          home: {path: /home/dev}
        storage_volumes:
          vdata: {size: 1GiB, path: /vdata}
      bare:
        type: vm
shared_volumes:
  code:
    consumers: {work: rw}
`
	f, _, _ := applied(t, doms)
	m, want := compile(t, psot(strings.ReplaceAll(doms, "type: vm", "type: lxc")))
	p := mustPlan(t, f, m, want, Options{})
	contains(t, text(t, p),
		"  -/+ instance work/ws (replace: type vm -> lxc; data kept: pd-home (/srv/anklume/data/work/ws/home), sv-code (/srv/anklume/shares/code), vdata (volume default/vdata))",
		"  -/+ instance work/bare (replace: type vm -> lxc; data kept: sv-code (/srv/anklume/shares/code))")
}
