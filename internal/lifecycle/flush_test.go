package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/internal/incusx"
)

// TestFlush runs flush steps 1–7 on the fake (SPEC.md §12.2, §12.3,
// §16 #70, #71): the step order through the request log, protection and
// --force, adoption, continuing after a failure, the summary line, and
// only owned objects touched.
func TestFlush(t *testing.T) {
	tests := []struct {
		name    string
		domains []string
		force   bool
		setup   func(t *testing.T, f *incusx.Fake)
		summary string
		// mutations is the exact list of non-GET requests, in order.
		mutations []string
		left      []string // instances left
		outHas    []string
		errHas    string
	}{
		{
			name:    "protected instance and volume survive without --force",
			summary: "flush: 5 destroyed, 5 skipped (protected), 0 failed",
			mutations: []string{
				"PUT /1.0/instances/db/state?project=work", "DELETE /1.0/instances/db?project=work",
				"PUT /1.0/instances/web/state?project=work", "DELETE /1.0/instances/web?project=work",
				"DELETE /1.0/profiles/big?project=work",
				"PUT /1.0/profiles/default?project=work",
				"DELETE /1.0/projects/work",
				"DELETE /1.0/networks/net-work",
			},
			left: []string{"lab/lab-1"},
			outHas: []string{
				"! instance lab/lab-1: skipped (protected; pass --force to delete it)\n",
				"! storage volume lab/data: skipped (protected volume; pass --force to delete it)\n",
				"! network net-lab: skipped (in use by instance lab/lab-1, profile lab/default)\n",
			},
		},
		{
			name:    "--force unsets the protection first and removes everything in step order",
			force:   true,
			summary: "flush: 9 destroyed, 0 skipped (protected), 0 failed",
			mutations: []string{
				"PUT /1.0/instances/lab-1?project=lab", "PUT /1.0/instances/lab-1/state?project=lab", "DELETE /1.0/instances/lab-1?project=lab",
				"PUT /1.0/instances/db/state?project=work", "DELETE /1.0/instances/db?project=work",
				"PUT /1.0/instances/web/state?project=work", "DELETE /1.0/instances/web?project=work",
				"DELETE /1.0/profiles/big?project=work",
				"PUT /1.0/profiles/default?project=lab", "PUT /1.0/profiles/default?project=work",
				"DELETE /1.0/storage-pools/default/volumes/custom/data?project=lab",
				"DELETE /1.0/projects/lab", "DELETE /1.0/projects/work",
				"DELETE /1.0/networks/net-lab", "DELETE /1.0/networks/net-work",
			},
		},
		{
			name:  "a failure is reported and the other steps go on",
			force: true,
			setup: func(t *testing.T, f *incusx.Fake) {
				f.Fail("DeleteInstance", "work/db", errors.New("disk on fire"))
			},
			summary: "flush: 6 destroyed, 3 skipped (protected), 1 failed",
			left:    []string{"work/db"},
			outHas: []string{
				"- instance work/db: failed\n", "- instance work/web: deleted\n", "- project lab: deleted\n",
				"! project work: skipped (not empty: instance work/db)\n",
				"! network net-work: skipped (in use by instance work/db, profile work/default)\n",
			},
			errHas: `error: instance work/db: deleting instance "work/db": disk on fire`,
		},
		{
			name: "unowned instance and another infrastructure's objects are untouched",
			setup: func(t *testing.T, f *incusx.Fake) {
				addUnowned(t, f, "work", "mine")
				ctx := context.Background()
				cfg := api.ConfigMap{incus.KeyManaged: "true", incus.KeyInfra: "other", incus.KeyDomain: "x"}
				if err := f.CreateNetwork(ctx, api.NetworksPost{Name: "net-x", Type: "bridge", NetworkPut: api.NetworkPut{Config: cfg}}); err != nil {
					t.Fatal(err)
				}
			},
			force:   true,
			summary: "flush: 7 destroyed, 3 skipped (protected), 0 failed",
			left:    []string{"work/mine"},
			outHas: []string{"! project work: skipped (not empty: instance work/mine)\n",
				"! profile work/default: skipped (in use by instance work/mine)\n"},
		},
		{
			name: "adopted project: everything in it is skipped without --force",
			setup: func(t *testing.T, f *incusx.Fake) {
				ctx := context.Background()
				p, etag, err := f.Project(ctx, "work")
				if err != nil {
					t.Fatal(err)
				}
				p.Config[incus.KeyAdopted] = "true"
				if err := f.UpdateProject(ctx, "work", p.Writable(), etag); err != nil {
					t.Fatal(err)
				}
			},
			summary: "flush: 0 destroyed, 11 skipped (protected), 0 failed",
			left:    []string{"lab/lab-1", "work/db", "work/web"},
			outHas: []string{
				"! instance work/web: skipped (in adopted project work; pass --force to delete it)\n",
				"! project work: skipped (adopted; pass --force to delete it)\n",
			},
		},
		{
			name:    "destroy --limit work touches only work",
			domains: []string{"work"},
			summary: "flush: 5 destroyed, 0 skipped (protected), 0 failed",
			left:    []string{"lab/lab-1"},
			mutations: []string{
				"PUT /1.0/instances/db/state?project=work", "DELETE /1.0/instances/db?project=work",
				"PUT /1.0/instances/web/state?project=work", "DELETE /1.0/instances/web?project=work",
				"DELETE /1.0/profiles/big?project=work",
				"PUT /1.0/profiles/default?project=work",
				"DELETE /1.0/projects/work",
				"DELETE /1.0/networks/net-work",
			},
		},
		{
			name:    "destroy --limit lab --force",
			domains: []string{"lab"},
			force:   true,
			summary: "flush: 4 destroyed, 0 skipped (protected), 0 failed",
			left:    []string{"work/db", "work/web"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := applied(t, compile(t, twoDomains))
			if tt.setup != nil {
				tt.setup(t, f)
				f.Log().Reset()
			}
			var out, errOut bytes.Buffer
			r, err := Flush(context.Background(), FlushOptions{Server: f, Infra: "lc", Domains: tt.domains, Force: tt.force, Out: &out, ErrOut: &errOut})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Summary("flush"); got != tt.summary {
				t.Errorf("summary %q, want %q\n%s%s", got, tt.summary, out.String(), errOut.String())
			}
			if tt.mutations != nil && !slices.Equal(mutations(f), tt.mutations) {
				t.Errorf("requests:\n got %q\nwant %q", mutations(f), tt.mutations)
			}
			if got := names(t, f); !slices.Equal(got, tt.left) {
				t.Errorf("instances left %q, want %q", got, tt.left)
			}
			for _, s := range tt.outHas {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
			if !strings.Contains(errOut.String(), tt.errHas) || (tt.errHas == "") != (errOut.Len() == 0) {
				t.Errorf("stderr %q, want %q", errOut.String(), tt.errHas)
			}
			if r.Failed != len(r.Errors) {
				t.Errorf("failed %d but %d errors", r.Failed, len(r.Errors))
			}
		})
	}
}

// imageFake is a Fake whose projects hold images (step 2).
type imageFake struct {
	*incusx.Fake
	images map[string][]string
}

// Projects reports features.images=true on the project "work" (Incus
// only lets features change on an empty project).
func (f *imageFake) Projects(ctx context.Context) ([]api.Project, error) {
	ps, err := f.Fake.Projects(ctx)
	for i := range ps {
		if ps[i].Name == "work" {
			ps[i].Config["features.images"] = "true"
		}
	}
	return ps, err
}

func (f *imageFake) ProjectImages(ctx context.Context, project string) ([]api.Image, error) {
	f.Log().Add("GET", "/1.0/images?project="+project+"&recursion=1")
	var out []api.Image
	for _, fp := range f.images[project] {
		out = append(out, api.Image{Fingerprint: fp})
	}
	return out, nil
}

func (f *imageFake) DeleteImage(ctx context.Context, project, fp string) error {
	f.Log().Add("DELETE", "/1.0/images/"+fp+"?project="+project)
	f.images[project] = slices.DeleteFunc(f.images[project], func(s string) bool { return s == fp })
	return nil
}

// TestFlushImages: step 2 deletes the images of an owned project with
// features.images=true, after the instances and before the profiles.
func TestFlushImages(t *testing.T) {
	f := applied(t, compile(t, twoDomains))
	ctx := context.Background()
	f.Log().Reset()
	fi := &imageFake{Fake: f, images: map[string][]string{"work": {"abc"}}}
	var out bytes.Buffer
	r, err := Flush(ctx, FlushOptions{Server: fi, Infra: "lc", Force: true, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if len(fi.images["work"]) != 0 || !strings.Contains(out.String(), "- image work/abc: deleted\n") {
		t.Errorf("image not deleted:\n%s", out.String())
	}
	muts := mutations(f)
	img := slices.Index(muts, "DELETE /1.0/images/abc?project=work")
	inst := slices.Index(muts, "DELETE /1.0/instances/lab-1?project=lab")
	prof := slices.Index(muts, "DELETE /1.0/profiles/big?project=work")
	if img < 0 || !(inst < img && img < prof) {
		t.Errorf("image deletion out of order: %q", muts)
	}
	if r.Failed != 0 {
		t.Errorf("failures: %v", r.Errors)
	}
}
