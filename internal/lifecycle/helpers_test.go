package lifecycle

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/apply"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/reconcile"
)

// twoDomains: work is ephemeral (nothing protected), lab is not (its
// instance and its volume are protected).
const twoDomains = `project_name: lc
global:
  addressing:
    zone_base: 200
domains:
  work:
    trust_level: trusted
    egress: false
    ephemeral: true
    profiles:
      big:
        config:
          limits.cpu: "2"
    machines:
      web:
        profiles: [default, big]
      db: {}
  lab:
    trust_level: untrusted
    egress: false
    machines:
      lab-1:
        storage_volumes:
          data: {size: 1GiB, path: /data}
`

// compile compiles a PSOT with the §16 host options and the test image.
func compile(t *testing.T, psot string) *model.Infra {
	t.Helper()
	opts := host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30},
		ImageMap: map[string]string{"images:debian/13": "anklume-test"}}
	res, dl, err := compiler.Compile(fstest.MapFS{"infra.yml": {Data: []byte(psot)}},
		compiler.Input{Path: "infra.yml", Display: "infra.yml"}, opts)
	if err != nil || res == nil || res.Model == nil {
		var b bytes.Buffer
		dl.Print(&b)
		t.Fatalf("compile: %v\n%s", err, b.String())
	}
	return res.Model
}

// applied returns a Fake on which m was applied, with an empty log.
func applied(t *testing.T, m *model.Infra) *incusx.Fake {
	t.Helper()
	return appliedOn(t, incusx.NewFake(), m)
}

// appliedOn applies m to f and returns f.
func appliedOn(t *testing.T, f *incusx.Fake, m *model.Infra) *incusx.Fake {
	t.Helper()
	ctx := context.Background()
	want := incus.Desired(m)
	obs, err := reconcile.Observe(ctx, f, reconcile.ObserveOptions{Pools: []string{want.StoragePool}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := reconcile.Diff(want, obs, reconcile.Options{Model: m, ResolveImage: f.ResolveImage})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if r := apply.Execute(ctx, p, apply.Options{Server: f, NoSnapshot: true, Out: &out, ErrOut: &out}); !r.OK() {
		t.Fatalf("apply failed:\n%s", out.String())
	}
	f.Log().Reset()
	return f
}

// mutations returns the non-GET requests of the log, operation waits
// left out.
func mutations(f *incusx.Fake) []string {
	var out []string
	for _, r := range f.Log().Strings() {
		if !strings.HasPrefix(r, "GET ") {
			out = append(out, r)
		}
	}
	return out
}

// names lists "project/name" of the fake's instances.
func names(t *testing.T, f *incusx.Fake) []string {
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

// addUnowned creates an instance without ownership keys in project.
func addUnowned(t *testing.T, f *incusx.Fake, project, name string) {
	t.Helper()
	err := f.CreateInstance(context.Background(), project, api.InstancesPost{Name: name, Type: "container",
		Source: api.InstanceSource{Type: "image", Alias: "anklume-test"}})
	if err != nil {
		t.Fatal(err)
	}
}
