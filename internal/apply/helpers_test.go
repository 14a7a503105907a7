package apply

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/plan"
)

// desired compiles the PSOT y into its desired Incus state.
func desired(t testing.TB, y string) *incus.State {
	t.Helper()
	opts := host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
	fsys := fstest.MapFS{"infra.yml": {Data: []byte(y)}}
	res, dl, err := compiler.Compile(fsys, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, opts)
	if err != nil || res == nil || dl.HasErrors() {
		t.Fatalf("compile: %v\n%s", err, dl)
	}
	return incus.Desired(res.Model)
}

// twoDomains has domains a (two containers) and b (one container), with
// local images so the fake has them.
const twoDomains = `format_version: 1
project_name: t
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: anklume-test
domains:
  a:
    trust_level: admin
    egress: false
    ephemeral: true
    machines:
      a1: {ip: 10.200.0.11}
      a2: {ip: 10.200.0.12}
  b:
    trust_level: trusted
    egress: false
    machines:
      b1: {}
`

// createPlan is the plan that creates every object of s on an empty
// server, in the order a reconciler lists them.
func createPlan(s *incus.State) *plan.Plan {
	p := &plan.Plan{Desired: s}
	for i, pr := range s.Projects {
		n := s.Networks[i]
		p.Changes = append(p.Changes,
			plan.Change{Action: plan.Create, Kind: plan.KindProject, Name: pr.Name, Domain: pr.Domain, Desired: pr},
			plan.Change{Action: plan.Create, Kind: plan.KindNetwork, Name: n.Name, Domain: n.Domain, Desired: n})
		for _, x := range pr.Profiles {
			p.Changes = append(p.Changes, plan.Change{Action: plan.Create, Kind: plan.KindProfile,
				Name: pr.Name + "/" + x.Name, Project: pr.Name, Domain: pr.Domain, Desired: x})
		}
		for _, v := range pr.StorageVolumes {
			p.Changes = append(p.Changes, plan.Change{Action: plan.Create, Kind: plan.KindVolume,
				Name: pr.Name + "/" + v.Name, Project: pr.Name, Domain: pr.Domain, Desired: v, Pool: v.Pool})
		}
		for _, x := range pr.Instances {
			p.Changes = append(p.Changes, plan.Change{Action: plan.Create, Kind: plan.KindInstance,
				Name: pr.Name + "/" + x.Name, Project: pr.Name, Domain: pr.Domain, Desired: x})
		}
	}
	return p
}

// run executes p on f and returns the result and both streams.
func run(t *testing.T, f incusx.Server, p *plan.Plan, edit func(*Options)) (*Result, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	opts := Options{Server: f, Out: &out, ErrOut: &errOut,
		Now: func() time.Time { return time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC) }}
	if edit != nil {
		edit(&opts)
	}
	r := Execute(context.Background(), p, opts)
	return r, out.String(), errOut.String()
}

// applied creates s on a new fake and returns it.
func applied(t *testing.T, s *incus.State) *incusx.Fake {
	t.Helper()
	f := incusx.NewFake()
	r, out, errOut := run(t, f, createPlan(s), nil)
	if !r.OK() {
		t.Fatalf("initial apply failed:\n%s\n%s", out, errOut)
	}
	return f
}

// liveInst returns an instance of f.
func liveInst(t *testing.T, f *incusx.Fake, project, name string) *api.Instance {
	t.Helper()
	i, _, err := f.Instance(context.Background(), project, name)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// instChange is a change of an existing instance of f.
func instChange(t *testing.T, f *incusx.Fake, a plan.Action, d *incus.Instance) plan.Change {
	live := liveInst(t, f, d.Project, d.Name)
	return plan.Change{Action: a, Kind: plan.KindInstance, Name: d.Project + "/" + d.Name,
		Project: d.Project, Domain: d.Domain, Desired: d, Live: *live}
}

// writes returns the non-GET requests of f's log, without operation waits.
func writes(f *incusx.Fake) []string {
	var out []string
	for _, r := range f.Log().Strings() {
		if !strings.HasPrefix(r, "GET ") {
			out = append(out, r)
		}
	}
	return out
}

// index returns the position of the first request with prefix, or -1.
func index(reqs []string, prefix string) int {
	for i, r := range reqs {
		if strings.HasPrefix(r, prefix) {
			return i
		}
	}
	return -1
}

// lastIndex returns the position of the last request with prefix, or -1.
func lastIndex(reqs []string, prefix string) int {
	for i := len(reqs) - 1; i >= 0; i-- {
		if strings.HasPrefix(reqs[i], prefix) {
			return i
		}
	}
	return -1
}

// gate counts concurrent instance creations.
type gate struct {
	incusx.Server
	mu       sync.Mutex
	cur, max int
}

func (g *gate) CreateInstance(ctx context.Context, project string, req api.InstancesPost) error {
	return g.CreateInstanceOn(ctx, project, "", req)
}

func (g *gate) CreateInstanceOn(ctx context.Context, project, member string, req api.InstancesPost) error {
	g.mu.Lock()
	g.cur++
	if g.cur > g.max {
		g.max = g.cur
	}
	g.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	g.mu.Lock()
	g.cur--
	g.mu.Unlock()
	return g.Server.CreateInstanceOn(ctx, project, member, req)
}
