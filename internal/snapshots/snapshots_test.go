package snapshots

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	_ "github.com/anklume/anklume/internal/goldenflag"
	"github.com/anklume/anklume/internal/incusx"
)

// fakeWith returns a fake with running instance c1 in project default,
// whose snapshots.expiry is 2d, and a clock at t0.
func fakeWith(t *testing.T, t0 time.Time) (*incusx.Fake, Target) {
	t.Helper()
	f := incusx.NewFake()
	f.SetClock(func() time.Time { return t0 })
	err := f.CreateInstance(context.Background(), "default", api.InstancesPost{Name: "c1", Start: true,
		Source:      api.InstanceSource{Type: "image", Alias: "anklume-test"},
		InstancePut: api.InstancePut{Config: api.ConfigMap{"snapshots.expiry": "2d"}}})
	if err != nil {
		t.Fatal(err)
	}
	return f, Target{Machine: "c1", Domain: "d", Project: "default", Instance: "c1"}
}

func snap(t *testing.T, f *incusx.Fake, name string) api.InstanceSnapshot {
	t.Helper()
	snaps, err := f.Snapshots(context.Background(), "default", "c1")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no snapshot %q", name)
	return api.InstanceSnapshot{}
}

// TestCreateExpiry is §16 #94: --expiry 1d expires one day after it was
// taken, and without --expiry the snapshot never expires although the
// instance has snapshots.expiry.
func TestCreateExpiry(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		expiry string
		want   time.Time
	}{
		{"1d", t0.AddDate(0, 0, 1)},
		{"never", time.Time{}},
		{"", time.Time{}},
		{"12h", t0.Add(12 * time.Hour)},
		{"1y 6m", t0.AddDate(1, 6, 0)},
		{"2w 30M", t0.AddDate(0, 0, 14).Add(30 * time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.expiry, func(t *testing.T) {
			f, tg := fakeWith(t, t0)
			e, err := ParseExpiry(tc.expiry)
			if err != nil {
				t.Fatal(err)
			}
			at, err := ExpiresAt(t0, e)
			if err != nil {
				t.Fatal(err)
			}
			var warn bytes.Buffer
			done, err := Create(context.Background(), f, []Target{tg}, DefaultName(t0), at, &warn, Progress{})
			if err != nil || len(done) != 1 {
				t.Fatalf("Create: %v %v", done, err)
			}
			s := snap(t, f, "anklume-snap-20260301-120000")
			if !s.ExpiresAt.Equal(tc.want) {
				t.Errorf("expires %s, want %s", s.ExpiresAt, tc.want)
			}
		})
	}
	if _, err := ParseExpiry("24x"); err == nil {
		t.Errorf("ParseExpiry(24x) accepted")
	}
}

func TestCreateSkipsExistingAndMissing(t *testing.T) {
	f, tg := fakeWith(t, time.Now())
	missing := Target{Project: "default", Instance: "gone"}
	var warn bytes.Buffer
	ctx := context.Background()
	if _, err := Create(ctx, f, []Target{tg}, "s", time.Time{}, &warn, Progress{}); err != nil {
		t.Fatal(err)
	}
	done, err := Create(ctx, f, []Target{tg, missing}, "s", time.Time{}, &warn, Progress{})
	if err != nil || len(done) != 0 {
		t.Fatalf("second Create: %v %v", done, err)
	}
	want := "warning: instance default/c1 already has snapshot \"s\"; skipped\n" +
		"warning: instance default/gone does not exist; skipped\n"
	if warn.String() != want {
		t.Errorf("warnings:\n%s\nwant:\n%s", warn.String(), want)
	}
}

func TestRestoreDelete(t *testing.T) {
	f, tg := fakeWith(t, time.Now())
	ctx := context.Background()
	if err := Take(ctx, f, "default", "c1", "a", time.Time{}); err != nil {
		t.Fatal(err)
	}
	err := Restore(ctx, f, tg, "nope", Progress{})
	var me *MissingError
	if !errors.As(err, &me) || err.Error() != `instance default/c1 has no snapshot "nope"; available: a` {
		t.Fatalf("Restore(nope) = %v", err)
	}
	f.Log().Reset()
	if err := Restore(ctx, f, tg, "a", Progress{}); err != nil {
		t.Fatal(err)
	}
	reqs := strings.Join(f.Log().Strings(), "\n")
	// stopped, restored, started again in that order
	stop := strings.Index(reqs, "PUT /1.0/instances/c1/state")
	restore := strings.Index(reqs, "PUT /1.0/instances/c1\n")
	start := strings.LastIndex(reqs, "PUT /1.0/instances/c1/state")
	if stop < 0 || restore < stop || start < restore {
		t.Errorf("requests:\n%s", reqs)
	}
	if i, _, _ := f.Instance(ctx, "default", "c1"); i.Status != "Running" {
		t.Errorf("status %s after restore", i.Status)
	}
	for range 2 { // the second delete finds nothing to do
		if _, err := Delete(ctx, f, tg, "a"); err != nil {
			t.Fatal(err)
		}
	}
	if deleted, _ := Delete(ctx, f, tg, "a"); deleted {
		t.Errorf("Delete of an absent snapshot reported a deletion")
	}
}

func TestRollback(t *testing.T) {
	f, tg := fakeWith(t, time.Now())
	ctx := context.Background()
	for _, n := range []string{"anklume-pre-20260101-000000", "anklume-pre-20260102-000000", "other"} {
		if err := Take(ctx, f, "default", "c1", n, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	missing := Target{Project: "default", Instance: "gone"}
	var warn bytes.Buffer
	name, done, err := Rollback(ctx, f, []Target{tg, missing}, "", &warn, Progress{})
	if err != nil || name != "anklume-pre-20260102-000000" || len(done) != 1 {
		t.Errorf("Rollback(latest) = %q %v %v", name, done, err)
	}
	if !strings.Contains(warn.String(), "warning: instance default/gone does not exist") {
		t.Errorf("warnings: %q", warn.String())
	}
	_, _, err = Rollback(ctx, f, []Target{tg}, "20250101-000000", &warn, Progress{})
	if err == nil || err.Error() != "no instance has snapshot anklume-pre-20250101-000000" {
		t.Errorf("Rollback(missing) = %v", err)
	}
}

const psot = `format_version: 1
project_name: t
global:
  addressing: {base_octet: 10, zone_base: 100}
domains:
  a:
    machines:
      a1: {}
      a2: {}
  b:
    machines:
      b1: {}
  c:
    enabled: false
    machines:
      c1: {}
`

func compile(t *testing.T) *model.Infra {
	t.Helper()
	opts := host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
	res, dl, err := compiler.Compile(fstest.MapFS{"infra.yml": {Data: []byte(psot)}},
		compiler.Input{Path: "infra.yml", Display: "infra.yml"}, opts)
	if err != nil || dl.HasErrors() {
		t.Fatalf("compile: %v %s", err, dl)
	}
	return res.Model
}

func TestResolve(t *testing.T) {
	m := compile(t)
	tests := []struct {
		names, limit []string
		want         string
		err          string
	}{
		{nil, nil, "a/a1 a/a2 b/b1", ""},
		{nil, []string{"b"}, "b/b1", ""},
		{[]string{"b1", "a"}, nil, "b/b1 a/a1 a/a2", ""},
		{[]string{"a1", "a"}, nil, "a/a1 a/a2", ""},
		{[]string{"zz"}, nil, "", `unknown machine or domain "zz"`},
		{[]string{"c1"}, nil, "", `machine "c1" is in disabled domain "c"`},
		{nil, []string{"c"}, "", `--limit: unknown domain "c"`},
	}
	for _, tc := range tests {
		got, err := Resolve(m, tc.names, tc.limit)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Resolve(%v, %v) error %v, want %s", tc.names, tc.limit, err, tc.err)
			}
			continue
		}
		var s []string
		for _, x := range got {
			s = append(s, x.String())
		}
		if err != nil || strings.Join(s, " ") != tc.want {
			t.Errorf("Resolve(%v, %v) = %v %v, want %s", tc.names, tc.limit, s, err, tc.want)
		}
	}
}
