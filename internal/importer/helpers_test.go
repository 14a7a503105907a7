package importer

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/apply"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/plan"
	"github.com/anklume/anklume/internal/reconcile"
)

// hostOpts is the host context of the §16 acceptance tests.
func hostOpts() host.Options {
	return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
}

// compile compiles the PSOT src and fails the test on any error.
func compile(t *testing.T, src []byte) *model.Infra {
	t.Helper()
	fsys := fstest.MapFS{"infra.yml": {Data: src}}
	res, dl, err := compiler.Compile(fsys, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, hostOpts())
	if err != nil || res == nil || dl.HasErrors() {
		var b bytes.Buffer
		dl.Print(&b)
		t.Fatalf("compile: %v\n%s\n--- source:\n%s", err, b.String(), src)
	}
	return res.Model
}

// planOn diffs m against srv, as `anklume plan` does.
func planOn(t *testing.T, srv incusx.Server, m *model.Infra) *plan.Plan {
	t.Helper()
	ctx := context.Background()
	want := incus.Desired(m)
	oo := reconcile.ObserveOptions{Pools: []string{m.StoragePool}}
	for _, x := range m.Machines {
		for _, v := range x.StorageVolumes {
			oo.Pools = append(oo.Pools, v.ResolvedPool)
		}
	}
	obs, err := reconcile.Observe(ctx, srv, oo)
	if err != nil {
		t.Fatal(err)
	}
	p, err := reconcile.Diff(want, obs, reconcile.Options{Model: m, ResolveImage: srv.ResolveImage})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

// applyOn plans m against srv and executes the plan, as `anklume apply`
// does.
func applyOn(t *testing.T, srv incusx.Server, m *model.Infra) {
	t.Helper()
	p := planOn(t, srv, m)
	var out, errOut bytes.Buffer
	r := apply.Execute(context.Background(), p, apply.Options{Server: srv, Out: &out, ErrOut: &errOut, NoSnapshot: true})
	if !r.OK() {
		t.Fatalf("apply failed: %+v\n%s\n%s", r.Failures, out.String(), errOut.String())
	}
}

// importFrom reads srv and imports it, checking that only GET requests
// were sent (§16 #68).
func importFrom(t *testing.T, f *incusx.Fake, opts Options) *Result {
	t.Helper()
	f.Log().Reset()
	st, err := Read(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Log().Strings() {
		if !strings.HasPrefix(r, "GET ") {
			t.Errorf("import sent %s; only GET requests are allowed", r)
		}
	}
	if f.Log().Len() == 0 {
		t.Error("import sent no request")
	}
	res, err := Import(st, opts)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return res
}

// renderPlan renders p for failure messages.
func renderPlan(p *plan.Plan) string {
	var b bytes.Buffer
	_ = plan.Render(&b, p, plan.RenderOptions{})
	return b.String()
}
