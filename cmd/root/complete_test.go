package root

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/apply"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/reconcile"
)

const completePSOT = `format_version: 1
project_name: i13-complete
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: anklume-test
domains:
  work:
    trust_level: trusted
    egress: false
    machines:
      web: {}
      db: {}
  lab:
    trust_level: semi-trusted
    egress: false
    machines:
      lab-1: {}
`

// completeRun runs `anklume __complete args…` over completePSOT in the
// current directory and, when fake is not nil, that Incus server; it
// returns the completion lines without the directive line.
func completeRun(t *testing.T, fake *incusx.Fake, args ...string) ([]string, string) {
	t.Helper()
	f, out, _ := newFactory(map[string]string{"infra.yml": completePSOT,
		"roles_custom/my_role/tasks/main.yml": "---\n", "roles_vendor/vendor.thing/tasks/main.yml": "---\n"}, nil)
	f.Remotes = func() []string { return []string{"lab-server", "local"} }
	if fake != nil {
		f.Incus = func(context.Context, string) (incusx.Server, error) { return fake, nil }
	}
	if code := Main(f, append([]string{"__complete"}, args...)); code != 0 {
		t.Fatalf("__complete %v: exit %d", args, code)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	directive := lines[len(lines)-1]
	var names []string
	for _, l := range lines[:len(lines)-1] {
		name, _, _ := strings.Cut(l, "\t")
		names = append(names, name)
	}
	return names, directive
}

// appliedFake applies completePSOT to a new fake and snapshots web twice.
func appliedFake(t *testing.T) *incusx.Fake {
	t.Helper()
	fake := incusx.NewFake()
	opts := host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
	res, dl, err := compiler.Compile(fstestFS(completePSOT), compiler.Input{Path: "infra.yml", Display: "infra.yml"}, opts)
	if err != nil || res == nil {
		t.Fatalf("compile: %v %v", err, dl)
	}
	ctx := context.Background()
	obs, err := reconcile.Observe(ctx, fake, reconcile.ObserveOptions{Pools: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := reconcile.Diff(incus.Desired(res.Model), obs, reconcile.Options{Model: res.Model, ResolveImage: fake.ResolveImage})
	if err != nil {
		t.Fatal(err)
	}
	if r := apply.Execute(ctx, p, apply.Options{Server: fake, NoSnapshot: true}); !r.OK() {
		t.Fatalf("apply: %+v", r)
	}
	never := time.Time{}
	for _, s := range []string{"before-upgrade", "anklume-snap-20260101-120000"} {
		if err := fake.CreateSnapshot(ctx, "work", "web", api.InstanceSnapshotsPost{Name: s, ExpiresAt: &never}); err != nil {
			t.Fatal(err)
		}
	}
	return fake
}

// TestCompletionOfNames goes through cobra's __complete, as the bash, zsh
// and fish scripts do, for every kind of name.
func TestCompletionOfNames(t *testing.T) {
	fake := appliedFake(t)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"domains for --limit", []string{"plan", "--limit", ""}, []string{"work", "lab"}},
		{"domains by prefix", []string{"apply", "--limit", "w"}, []string{"work"}},
		{"domains for --domain", []string{"disp", "--domain", ""}, []string{"work", "lab"}},
		{"machines for shell", []string{"shell", ""}, []string{"web", "db", "lab-1"}},
		{"one machine only", []string{"golden", "create", "web", ""}, nil},
		{"machines for backup create", []string{"backup", "create", "l"}, []string{"lab-1"}},
		{"targets for snapshot create", []string{"snapshot", "create", "web", ""}, []string{"web", "db", "lab-1", "work", "lab"}},
		{"snapshots from Incus", []string{"snapshot", "restore", "web", "--name", ""}, []string{"anklume-snap-20260101-120000", "before-upgrade"}},
		{"snapshots by prefix", []string{"snapshot", "delete", "web", "--name", "bef"}, []string{"before-upgrade"}},
		{"no snapshots of an unknown machine", []string{"snapshot", "delete", "nope", "--name", ""}, nil},
		{"examples", []string{"init", "--example", "tor"}, []string{"tor-gateway"}},
		{"remotes", []string{"status", "--remote", ""}, []string{"lab-server", "local"}},
		{"built-in roles", []string{"roles", "fi"}, []string{"firewall_router"}},
		{"no infra roles", []string{"roles", "incus"}, nil},
		{"custom and vendor roles", []string{"roles", "v"}, []string{"vendor.thing"}},
		{"roles_custom", []string{"roles", "my"}, []string{"my_role"}},
		{"one role only", []string{"roles", "base_system", ""}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, directive := completeRun(t, fake, tc.args...)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("__complete %q = %q, want %q", tc.args, got, tc.want)
			}
			if directive != ":4" { // ShellCompDirectiveNoFileComp
				t.Errorf("directive %s, want :4", directive)
			}
		})
	}
}

// TestCompletionWithoutIncus: no server, no snapshot names, no error.
func TestCompletionWithoutIncus(t *testing.T) {
	got, _ := completeRun(t, nil, "snapshot", "restore", "web", "--name", "")
	if len(got) != 0 {
		t.Errorf("names without Incus: %q", got)
	}
}

func fstestFS(psot string) fstest.MapFS {
	return fstest.MapFS{"infra.yml": {Data: []byte(psot)}}
}
