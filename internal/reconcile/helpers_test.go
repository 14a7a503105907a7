package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/plan"
)

// hostOpts are the host options every compiler test uses, with the test
// image mapped to the fake's local alias.
func hostOpts() host.Options {
	return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30},
		ImageMap: map[string]string{"images:debian/13": "anklume-test"}}
}

// compile compiles a PSOT given as text.
func compile(t *testing.T, psot string) (*model.Infra, *incus.State) {
	t.Helper()
	fsys := fstest.MapFS{"infra.yml": {Data: []byte(psot)}}
	res, dl, err := compiler.Compile(fsys, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, hostOpts())
	if err != nil || res == nil {
		var b bytes.Buffer
		dl.Print(&b)
		t.Fatalf("compile: %v\n%s", err, b.String())
	}
	return res.Model, incus.Desired(res.Model)
}

// planOn observes f and diffs want against it.
func planOn(t *testing.T, f incusx.Server, m *model.Infra, want *incus.State, opts Options) (*plan.Plan, error) {
	t.Helper()
	oo := ObserveOptions{Pools: []string{want.StoragePool}}
	obs, err := Observe(context.Background(), f, oo)
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	opts.Model = m
	if opts.ResolveImage == nil {
		opts.ResolveImage = f.ResolveImage
	}
	return Diff(want, obs, opts)
}

// mustPlan plans and fails on a plan error.
func mustPlan(t *testing.T, f incusx.Server, m *model.Infra, want *incus.State, opts Options) *plan.Plan {
	t.Helper()
	p, err := planOn(t, f, m, want, opts)
	if err != nil {
		t.Fatalf("plan error: %v", err)
	}
	return p
}

// text renders p without colour.
func text(t *testing.T, p *plan.Plan) string {
	t.Helper()
	var b bytes.Buffer
	if err := plan.Render(&b, p, plan.RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// assertEmpty checks "the second plan is empty".
func assertEmpty(t *testing.T, f incusx.Server, m *model.Infra, want *incus.State, opts Options) {
	t.Helper()
	p := mustPlan(t, f, m, want, opts)
	if !p.Empty() {
		t.Fatalf("second plan is not empty:\n%s", text(t, p))
	}
}

// converge is a test-only stand-in for the apply engine: it carries out p
// on the fake by applying each change's diff lines to the live object, so
// that a wrong diff shows up as a non-empty second plan.
func converge(t *testing.T, f *incusx.Fake, p *plan.Plan) {
	t.Helper()
	ctx := context.Background()
	ok := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("converge: %v", err)
		}
	}
	for tier := 0; tier <= 4; tier++ {
		for _, c := range p.Changes {
			if c.Kind.Priority() != tier || c.Action == plan.Delete {
				continue
			}
			convergeOne(t, f, c, ok)
		}
	}
	for _, kind := range []plan.Kind{plan.KindInstance, plan.KindVolume, plan.KindProfile, plan.KindProject, plan.KindNetwork} {
		for _, c := range p.Changes {
			if c.Kind != kind || c.Action != plan.Delete {
				continue
			}
			name := c.Name[strings.LastIndex(c.Name, "/")+1:]
			switch c.Kind {
			case plan.KindInstance:
				_ = f.UpdateInstanceState(ctx, c.Project, name, api.InstanceStatePut{Action: incusx.ActionStop, Force: true})
				ok(f.DeleteInstance(ctx, c.Project, name))
			case plan.KindVolume:
				ok(f.DeleteStorageVolume(ctx, c.Project, c.Pool, name))
			case plan.KindProfile:
				ok(f.DeleteProfile(ctx, c.Project, name))
			case plan.KindProject:
				ok(f.DeleteProject(ctx, name))
			case plan.KindNetwork:
				ok(f.DeleteNetwork(ctx, name))
			}
		}
	}
}

// applyDiffs applies diff lines to a description, config and devices.
func applyDiffs(t *testing.T, diffs []plan.Diff, desc *string, cfg map[string]string, devs map[string]map[string]string, profiles *[]string) {
	t.Helper()
	for _, d := range diffs {
		segs := splitPath(t, d.Path)
		switch {
		case segs[0] == "description":
			*desc = *d.After
		case segs[0] == "profiles":
			*profiles = strings.Split(*d.After, ",")
		case segs[0] == "config":
			if d.After == nil {
				delete(cfg, segs[1])
			} else {
				cfg[segs[1]] = *d.After
			}
		case segs[0] == "devices":
			if d.After == nil {
				delete(devs[segs[1]], segs[2])
				if len(devs[segs[1]]) == 0 {
					delete(devs, segs[1])
				}
			} else {
				if devs[segs[1]] == nil {
					devs[segs[1]] = map[string]string{}
				}
				devs[segs[1]][segs[2]] = *d.After
			}
		default:
			t.Fatalf("unknown diff path %q", d.Path)
		}
	}
}

// splitPath splits a §3.2 path: `devices.eth0["ipv4.address"]`.
func splitPath(t *testing.T, p string) []string {
	t.Helper()
	var out []string
	for p != "" {
		switch {
		case p[0] == '.':
			p = p[1:]
		case p[0] == '[':
			end := strings.Index(p, `"]`)
			s, err := strconv.Unquote(p[1 : end+1])
			if err != nil {
				t.Fatalf("path %q: %v", p, err)
			}
			out = append(out, s)
			p = p[end+2:]
		default:
			i := strings.IndexAny(p, ".[")
			if i < 0 {
				i = len(p)
			}
			out = append(out, p[:i])
			p = p[i:]
		}
	}
	return out
}

func convergeOne(t *testing.T, f *incusx.Fake, c plan.Change, ok func(error)) {
	t.Helper()
	ctx := context.Background()
	adopt := func(cfg map[string]string) {
		if c.Reason == "adopt" {
			cfg[incus.KeyAdopted] = "true"
		}
	}
	switch c.Kind {
	case plan.KindProject:
		pr := c.Desired.(*incus.Project)
		if c.Action == plan.Create {
			ok(f.CreateProject(ctx, pr.ProjectsPost))
			return
		}
		live, etag, err := f.Project(ctx, pr.Name)
		ok(err)
		applyDiffs(t, c.Diff, &live.Description, live.Config, nil, nil)
		adopt(live.Config)
		ok(f.UpdateProject(ctx, pr.Name, live.ProjectPut, etag))
	case plan.KindNetwork:
		n := c.Desired.(*incus.Network)
		if c.Action == plan.Create {
			for _, m := range c.Members {
				ok(f.CreateNetworkOn(ctx, m, api.NetworksPost{Name: n.Name, Type: n.Type}))
			}
			ok(f.CreateNetwork(ctx, n.NetworksPost))
			return
		}
		live, etag, err := f.Network(ctx, n.Name)
		ok(err)
		applyDiffs(t, c.Diff, &live.Description, live.Config, nil, nil)
		adopt(live.Config)
		ok(f.UpdateNetwork(ctx, n.Name, live.Writable(), etag))
	case plan.KindProfile:
		pr := c.Desired.(*incus.Profile)
		if c.Action == plan.Create && pr.Name != incus.DefaultProfile {
			ok(f.CreateProfile(ctx, pr.Project, pr.ProfilesPost))
			return
		}
		live, etag, err := f.Profile(ctx, pr.Project, pr.Name)
		ok(err)
		if c.Action == plan.Create { // the default profile comes with its project
			live.Description, live.Config, live.Devices = pr.Description, maps.Clone(pr.Config), pr.Devices
		}
		applyDiffs(t, c.Diff, &live.Description, live.Config, live.Devices, nil)
		adopt(live.Config)
		ok(f.UpdateProfile(ctx, pr.Project, pr.Name, live.ProfilePut, etag))
	case plan.KindVolume:
		v := c.Desired.(*incus.StorageVolume)
		if c.Action == plan.Create {
			ok(f.CreateStorageVolume(ctx, v.Project, v.Pool, v.StorageVolumesPost))
			return
		}
		live, etag, err := f.StorageVolume(ctx, v.Project, v.Pool, v.Name)
		ok(err)
		applyDiffs(t, c.Diff, &live.Description, live.Config, nil, nil)
		adopt(live.Config)
		ok(f.UpdateStorageVolume(ctx, v.Project, v.Pool, v.Name, live.Writable(), etag))
	case plan.KindInstance:
		x := c.Desired.(*incus.Instance)
		switch c.Action {
		case plan.Create:
			ok(f.CreateInstanceOn(ctx, x.Project, x.Target, x.InstancesPost))
			return
		case plan.Replace:
			_ = f.UpdateInstanceState(ctx, x.Project, x.Name, api.InstanceStatePut{Action: incusx.ActionStop, Force: true})
			ok(f.DeleteInstance(ctx, x.Project, x.Name))
			ok(f.CreateInstanceOn(ctx, x.Project, x.Target, x.InstancesPost))
			return
		case plan.Move:
			_ = f.UpdateInstanceState(ctx, c.OldProject, x.Name, api.InstanceStatePut{Action: incusx.ActionStop, Force: true})
			ok(f.MoveInstance(ctx, c.OldProject, x.Name, x.Project))
		}
		live, etag, err := f.Instance(ctx, x.Project, x.Name)
		ok(err)
		applyDiffs(t, c.Diff, &live.Description, live.Config, live.Devices, &live.Profiles)
		adopt(live.Config)
		ok(f.UpdateInstance(ctx, x.Project, x.Name, live.Writable(), etag))
		live, _, err = f.Instance(ctx, x.Project, x.Name)
		ok(err)
		if running := live.Status == "Running"; running != (x.State != "stopped") {
			action := incusx.ActionStart
			if running {
				action = incusx.ActionStop
			}
			ok(f.UpdateInstanceState(ctx, x.Project, x.Name, api.InstanceStatePut{Action: action, Force: true}))
		}
	default:
		ok(errors.New("unknown kind " + string(c.Kind)))
	}
}

// psot builds a small PSOT: zone_base 200, NAT off, with extra text
// appended under domains.
func psot(domains string) string {
	return fmt.Sprintf(`project_name: rt
global:
  addressing:
    zone_base: 200
domains:
%s`, domains)
}
