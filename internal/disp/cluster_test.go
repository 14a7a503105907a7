package disp

import (
	"context"
	"slices"
	"testing"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/incusx"
)

// TestRunCluster: a disposable instance goes to its domain's member: the
// target itself, or the member the project records for a @group.
func TestRunCluster(t *testing.T) {
	for _, tc := range []struct{ target, want string }{
		{"m2", "POST /1.0/instances?target=m2"},
		{"@lab", "POST /1.0/instances?target=m3"},
	} {
		f := incusx.NewFake()
		for _, m := range []string{"m1", "m2", "m3"} {
			f.AddClusterMember(m)
		}
		f.AddClusterGroup("lab", "m2", "m3")
		ctx := context.Background()
		p, etag, err := f.Project(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		put := p.Writable()
		put.Config[incus.KeyMember] = "m3"
		if err := f.UpdateProject(ctx, "default", put, etag); err != nil {
			t.Fatal(err)
		}
		d := &model.Domain{Name: "default", Project: "default", Enabled: true, TrustLevel: Disposable, Target: tc.target}
		r := Request{Infra: "t", Domain: d, Name: "disp-1", Image: "anklume-test", Argv: []string{"true"}}
		if code, err := Run(ctx, f, r); err != nil || code != 0 {
			t.Fatalf("%s: code %d, %v", tc.target, code, err)
		}
		if !slices.Contains(f.Log().Strings(), tc.want) {
			t.Errorf("%s: no %q in %q", tc.target, tc.want, f.Log().Strings())
		}
	}
}
