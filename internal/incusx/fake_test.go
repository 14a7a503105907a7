package incusx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"
)

// newFakeProject returns a fake with project "p" whose default profile has a
// root disk and a NIC on network "net-p".
func newFakeProject(t *testing.T) *Fake {
	t.Helper()
	f := NewFake()
	ctx := context.Background()
	for _, err := range []error{
		f.CreateNetwork(ctx, api.NetworksPost{Name: "net-p", NetworkPut: api.NetworkPut{Config: api.ConfigMap{"ipv4.address": "10.1.1.1/24"}}}),
		f.CreateProject(ctx, api.ProjectsPost{Name: "p", ProjectPut: api.ProjectPut{Config: api.ConfigMap{"features.images": "false"}}}),
		f.UpdateProfile(ctx, "p", "default", api.ProfilePut{Devices: map[string]map[string]string{
			"eth0": {"type": "nic", "network": "net-p", "name": "eth0"},
			"root": {"type": "disk", "pool": "default", "path": "/"},
		}}, ""),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.Log().Reset()
	return f
}

func fromImage(name string) api.InstancesPost {
	return api.InstancesPost{Name: name, Source: api.InstanceSource{Type: "image", Alias: testImage}}
}

func TestFakeFail(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	tests := []struct {
		name     string
		op, obj  string
		create   string
		wantFail bool
	}{
		{"named object fails", "CreateInstance", "p/c1", "c1", true},
		{"other object unaffected", "CreateInstance", "p/c1", "c2", false},
		{"empty name matches every call", "CreateInstance", "", "c2", true},
		{"other operation unaffected", "DeleteInstance", "", "c1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeProject(t)
			f.Fail(tt.op, tt.obj, boom)
			err := f.CreateInstance(ctx, "p", fromImage(tt.create))
			if !tt.wantFail {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, boom) || err.Error() != fmt.Sprintf(`creating instance "p/%s": boom`, tt.create) {
				t.Fatalf("error = %v, want the injected error wrapped", err)
			}
			if got := f.Log().Strings(); !slices.Equal(got, []string{"POST /1.0/instances?project=p"}) {
				t.Errorf("a failed request is still logged once: %v", got)
			}
			f.Fail(tt.op, tt.obj, nil)
			if err := f.CreateInstance(ctx, "p", fromImage(tt.create)); err != nil {
				t.Errorf("after clearing the failure: %v", err)
			}
		})
	}
}

func TestFakeVirtualMachine(t *testing.T) {
	ctx := context.Background()
	f := newFakeProject(t)
	req := fromImage("vm1")
	req.Type = api.InstanceTypeVM
	req.Start = true
	if err := f.CreateInstance(ctx, "p", req); err != nil {
		t.Fatal(err)
	}
	vm, _, err := f.Instance(ctx, "p", "vm1")
	if err != nil {
		t.Fatal(err)
	}
	if vm.Type != "virtual-machine" || vm.Status != "Running" || vm.StatusCode != api.Running {
		t.Errorf("vm = %s %s", vm.Type, vm.Status)
	}
	if _, ok := vm.Config["volatile.idmap.base"]; ok {
		t.Errorf("a VM has no idmap keys: %v", vm.Config)
	}
	if err := f.UpdateInstanceState(ctx, "p", "vm1", api.InstanceStatePut{Action: ActionRestart}); err != nil {
		t.Errorf("restart: %v", err)
	}
	req.Type = "nope"
	req.Name = "x"
	expectErr(t, "invalid type", f.CreateInstance(ctx, "p", req), http.StatusBadRequest, "Invalid instance type")
}

func TestFakeEphemeralInstanceGoesAwayWhenStopped(t *testing.T) {
	ctx := context.Background()
	f := newFakeProject(t)
	req := fromImage("disp")
	req.Ephemeral, req.Start = true, true
	if err := f.CreateInstance(ctx, "p", req); err != nil {
		t.Fatal(err)
	}
	if err := f.UpdateInstanceState(ctx, "p", "disp", api.InstanceStatePut{Action: ActionStop, Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Instance(ctx, "p", "disp"); !IsNotFound(err) {
		t.Errorf("ephemeral instance after stop: %v, want not found", err)
	}
}

func TestFakeProjectFeatures(t *testing.T) {
	ctx := context.Background()
	f := newFakeProject(t)
	p, etag, err := f.Project(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"features.images": "false", "features.profiles": "true",
		"features.storage.volumes": "true", "features.storage.buckets": "true"}
	for k, v := range want {
		if p.Config[k] != v {
			t.Errorf("%s = %q, want %q (Incus's defaults for a new project)", k, p.Config[k], v)
		}
	}
	// Empty project (only its default profile): features may change.
	put := p.Writable()
	put.Config["features.storage.volumes"] = "false"
	if err := f.UpdateProject(ctx, "p", put, etag); err != nil {
		t.Fatalf("features change on an empty project: %v", err)
	}
	if err := f.CreateInstance(ctx, "p", fromImage("c1")); err != nil {
		t.Fatal(err)
	}
	p, etag, _ = f.Project(ctx, "p")
	put = p.Writable()
	delete(put.Config, "features.images") // what a PATCH-like PUT would do
	expectErr(t, "features change on a non-empty project", f.UpdateProject(ctx, "p", put, etag),
		http.StatusBadRequest, "Features can only be changed on empty projects")
	p, etag, _ = f.Project(ctx, "p")
	put = p.Writable()
	put.Config["restricted"] = "true"
	if err := f.UpdateProject(ctx, "p", put, etag); err != nil {
		t.Errorf("a full PUT that keeps the features: %v", err)
	}
	expectErr(t, "delete the default project", f.DeleteProject(ctx, DefaultProject), http.StatusForbidden, "cannot be deleted")
}

func TestFakeProjectWithoutProfilesUsesDefaultProfiles(t *testing.T) {
	ctx := context.Background()
	f := NewFake()
	if err := f.CreateProject(ctx, api.ProjectsPost{Name: "q", ProjectPut: api.ProjectPut{Config: api.ConfigMap{
		"features.profiles": "false", "features.images": "false"}}}); err != nil {
		t.Fatal(err)
	}
	if err := f.CreateProfile(ctx, "q", api.ProfilesPost{Name: "shared"}); err != nil {
		t.Fatal(err)
	}
	prof, _, err := f.Profile(ctx, DefaultProject, "shared")
	if err != nil || prof.Project != DefaultProject {
		t.Fatalf("profile created through q lives in %v (%v), want default", prof, err)
	}
	if err := f.CreateInstance(ctx, "q", fromImage("c1")); err != nil {
		t.Fatalf("instance in q with the default project's root disk and images: %v", err)
	}
	// With features.images, a project has its own (empty) image store.
	if err := f.CreateProject(ctx, api.ProjectsPost{Name: "r"}); err != nil {
		t.Fatal(err)
	}
	if err := f.UpdateProfile(ctx, "r", "default", api.ProfilePut{Devices: map[string]map[string]string{
		"root": {"type": "disk", "pool": "default", "path": "/"}}}, ""); err != nil {
		t.Fatal(err)
	}
	expectErr(t, "image of the default project from a project with features.images",
		f.CreateInstance(ctx, "r", fromImage("c1")), 0, "Image not provided for instance creation")
}

func TestFakeETags(t *testing.T) {
	ctx := context.Background()
	f := newFakeProject(t)
	if err := f.CreateInstance(ctx, "p", fromImage("c1")); err != nil {
		t.Fatal(err)
	}
	_, e1, _ := f.Instance(ctx, "p", "c1")
	_, e2, _ := f.Instance(ctx, "p", "c1")
	if e1 == "" || e1 != e2 {
		t.Fatalf("ETag not stable: %q, %q", e1, e2)
	}
	if err := f.UpdateInstanceState(ctx, "p", "c1", api.InstanceStatePut{Action: ActionStart}); err != nil {
		t.Fatal(err)
	}
	inst, e3, _ := f.Instance(ctx, "p", "c1")
	if e3 == e1 {
		t.Errorf("ETag unchanged although Incus changed volatile.last_state.power")
	}
	if err := f.UpdateInstance(ctx, "p", "c1", inst.Writable(), ""); err != nil {
		t.Errorf("an update without ETag is unconditional: %v", err)
	}
	expectErr(t, "stale", f.UpdateInstance(ctx, "p", "c1", inst.Writable(), e1), http.StatusPreconditionFailed, "ETag doesn't match")
	if !IsPreconditionFailed(f.UpdateInstance(ctx, "p", "c1", inst.Writable(), e1)) {
		t.Errorf("IsPreconditionFailed is false on a stale ETag")
	}
	put := inst.Writable()
	put.Devices = map[string]map[string]string{"eth0": {"type": "nic", "network": "nope", "name": "eth0"}}
	expectErr(t, "missing network", f.UpdateInstance(ctx, "p", "c1", put, ""), http.StatusBadRequest, `Failed loading network "nope"`)
	put.Profiles, put.Devices = []string{}, nil
	expectErr(t, "no root disk", f.UpdateInstance(ctx, "p", "c1", put, ""), 0, "No root device could be found")
}

func TestFakeProfileUpdateRefusedWhenAnInstanceLosesItsRoot(t *testing.T) {
	ctx := context.Background()
	f := newFakeProject(t)
	if err := f.CreateInstance(ctx, "p", fromImage("c1")); err != nil {
		t.Fatal(err)
	}
	prof, etag, _ := f.Profile(ctx, "p", "default")
	put := prof.Writable()
	delete(put.Devices, "root")
	expectErr(t, "remove root", f.UpdateProfile(ctx, "p", "default", put, etag), 0, "No root device could be found")
	if prof2, _, _ := f.Profile(ctx, "p", "default"); prof2.Devices["root"] == nil {
		t.Errorf("a refused update changed the profile")
	}
}

func TestFakeSnapshotExpiry(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	never := time.Time{}
	in3d := now.AddDate(0, 0, 3)
	tests := []struct {
		name    string
		expiry  string
		request *time.Time
		want    time.Time
	}{
		{"no expiry anywhere", "", nil, time.Time{}},
		{"instance snapshots.expiry applies without expires_at", "1d 2H", nil, now.Add(26 * time.Hour)},
		{"months and years", "1y 6m", nil, now.AddDate(1, 6, 0)},
		{"explicit never wins", "1d", &never, time.Time{}},
		{"explicit time wins", "1d", &in3d, in3d},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeProject(t)
			f.SetClock(func() time.Time { return now })
			req := fromImage("c1")
			if tt.expiry != "" {
				req.Config = api.ConfigMap{"snapshots.expiry": tt.expiry}
			}
			if err := f.CreateInstance(ctx, "p", req); err != nil {
				t.Fatal(err)
			}
			if err := f.CreateSnapshot(ctx, "p", "c1", api.InstanceSnapshotsPost{Name: "s", ExpiresAt: tt.request}); err != nil {
				t.Fatal(err)
			}
			snaps, err := f.Snapshots(ctx, "p", "c1")
			if err != nil || len(snaps) != 1 {
				t.Fatalf("snapshots = %v, %v", snaps, err)
			}
			if !snaps[0].ExpiresAt.Equal(tt.want) || !snaps[0].CreatedAt.Equal(now) {
				t.Errorf("expires %v created %v, want %v and %v", snaps[0].ExpiresAt, snaps[0].CreatedAt, tt.want, now)
			}
		})
	}
}

func TestFakeListsCopy(t *testing.T) {
	ctx := context.Background()
	f := newFakeProject(t)
	if err := f.CreateInstance(ctx, "p", fromImage("c1")); err != nil {
		t.Fatal(err)
	}
	insts, _ := f.Instances(ctx)
	insts[0].Config["user.x"] = "mutated"
	insts[0].Devices["eth9"] = map[string]string{}
	again, _ := f.Instances(ctx)
	if _, ok := again[0].Config["user.x"]; ok || again[0].Devices["eth9"] != nil {
		t.Errorf("callers can mutate the fake's state through a list")
	}
}

func TestFakeConcurrentUse(t *testing.T) {
	ctx := context.Background()
	f := newFakeProject(t)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			errs[i] = f.CreateInstance(ctx, "p", fromImage(fmt.Sprintf("c%d", i)))
			if errs[i] == nil {
				_, errs[i] = f.Instances(ctx)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if insts, _ := f.Instances(ctx); len(insts) != 20 {
		t.Errorf("%d instances, want 20", len(insts))
	}
}

func TestFakeCanceledContext(t *testing.T) {
	f := newFakeProject(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f.CreateInstance(ctx, "p", fromImage("c1"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	if f.Log().Len() != 0 {
		t.Errorf("a canceled call sent %v", f.Log().Strings())
	}
}

func TestFakeServerSettings(t *testing.T) {
	ctx := context.Background()
	f := NewFake()
	f.AddClusterMember("m1")
	f.SetServer(func(s *api.Server) {
		s.APIExtensions = slices.DeleteFunc(s.APIExtensions, func(e string) bool { return e == "instance_all_projects" })
	})
	s, err := f.ServerInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Environment.ServerClustered || slices.Contains(s.APIExtensions, "instance_all_projects") {
		t.Errorf("server = %+v", s.Environment)
	}
	members, _ := f.ClusterMembers(ctx)
	if len(members) != 1 || members[0].ServerName != "m1" {
		t.Errorf("members = %+v", members)
	}
	r, _ := f.Resources(ctx)
	if r.CPU.Total != 10 || r.Memory.Total != 40<<30 {
		t.Errorf("resources = %+v", r)
	}
}

func TestResolveImage(t *testing.T) {
	remotes := map[string]ImageRemote{
		"oci":     {Addr: "https://docker.io", Protocol: "oci", Public: true},
		"private": {Addr: "https://incus.example:8443", Protocol: "incus"},
		"sock":    {Addr: "unix://", Protocol: "incus"},
	}
	tests := []struct {
		ref     string
		want    api.InstanceSource
		wantErr string
	}{
		{ref: "anklume-test", want: api.InstanceSource{Type: "image", Alias: "anklume-test"}},
		{ref: "local:debian/13", want: api.InstanceSource{Type: "image", Alias: "debian/13"}},
		{ref: "images:debian/13", want: api.InstanceSource{Type: "image", Mode: "pull", Server: ImagesRemoteAddr, Protocol: "simplestreams", Alias: "debian/13"}},
		{ref: "oci:library/alpine", want: api.InstanceSource{Type: "image", Mode: "pull", Server: "https://docker.io", Protocol: "oci", Alias: "library/alpine"}},
		{ref: "nope:debian/13", wantErr: `unknown image remote "nope" in "nope:debian/13"`},
		{ref: "images:", wantErr: `image reference "images:" has no alias`},
		{ref: "private:x", wantErr: `image remote "private" in "private:x" is a private Incus server; anklume only pulls from public remotes`},
		{ref: "sock:x", wantErr: `image remote "sock" in "sock:x" is a unix socket, not an image server`},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := resolveImage(tt.ref, remotes)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	var unknown *UnknownRemoteError
	if _, err := NewFake().ResolveImage("x:y"); !errors.As(err, &unknown) || unknown.Remote != "x" {
		t.Errorf("the fake's unknown remote error is %v", err)
	}
}

func TestRequestLogNormalizesOperations(t *testing.T) {
	var l RequestLog
	l.Add("GET", "/1.0/operations/0b1c/wait?timeout=-1")
	l.Add("GET", "/1.0/operations/0b1c")
	l.Add("GET", "/1.0/instances")
	want := []string{"GET /1.0/operations/ID/wait?timeout=-1", "GET /1.0/operations/ID", "GET /1.0/instances"}
	if got := l.Strings(); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if l.Requests()[0].String() != "GET /1.0/operations/0b1c/wait?timeout=-1" {
		t.Errorf("Requests keeps the raw path")
	}
}
