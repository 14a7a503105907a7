package incusx

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/lxc/incus/v6/shared/api"
)

// planReads makes the read requests of a plan (SPEC.md §9.1 items 1-8 and
// 10, for one pool in use), as the reconciler will.
func planReads(ctx context.Context, srv Server, pool string) error {
	if _, err := srv.ServerInfo(ctx); err != nil {
		return err
	}
	if _, err := srv.StoragePools(ctx); err != nil {
		return err
	}
	if _, err := srv.Projects(ctx); err != nil {
		return err
	}
	if _, err := srv.Networks(ctx); err != nil {
		return err
	}
	if _, err := srv.Profiles(ctx); err != nil {
		return err
	}
	if _, err := srv.Instances(ctx); err != nil {
		return err
	}
	if _, err := srv.ImageAliases(ctx); err != nil {
		return err
	}
	if _, err := srv.StorageVolumes(ctx, pool); err != nil {
		return err
	}
	_, err := srv.MetadataConfiguration(ctx)
	return err
}

// wantPlanReads is the exact request list of §9.1 for pool "default".
var wantPlanReads = []string{
	"GET /1.0",
	"GET /1.0/storage-pools?recursion=1",
	"GET /1.0/projects?recursion=1",
	"GET /1.0/networks?recursion=1",
	"GET /1.0/profiles?all-projects=true&recursion=1",
	"GET /1.0/instances?all-projects=true&recursion=1",
	"GET /1.0/images/aliases?recursion=1",
	"GET /1.0/storage-pools/default/volumes/custom?all-projects=true&recursion=1",
	"GET /1.0/metadata/configuration",
}

// TestPlanReadRequestCount is SPEC.md §16 #63 at the interface level: reading
// everything a plan needs costs exactly the §9.1 requests, counted on the
// wire (CountingTransport) for the daemon and in the log of the fake, and
// the count is the same with 1 and with 5 containers (and volumes).
func TestPlanReadRequestCount(t *testing.T) {
	for _, target := range []string{"fake", "real"} {
		t.Run(target, func(t *testing.T) {
			var srv Server
			var log *RequestLog
			if target == "fake" {
				f := NewFake()
				srv, log = f, f.Log()
			} else {
				log = &RequestLog{}
				srv = realServer(t, log)
			}
			for _, count := range []int{1, 5} {
				t.Run(fmt.Sprintf("%d containers", count), func(t *testing.T) {
					n := newNames(t)
					seedProject(t, srv, n, count)
					log.Reset()
					if err := planReads(context.Background(), srv, "default"); err != nil {
						t.Fatal(err)
					}
					if got := log.Strings(); !slices.Equal(got, wantPlanReads) {
						t.Errorf("requests:\n%s\nwant:\n%s", join(got), join(wantPlanReads))
					}
				})
			}
		})
	}
}

// seedProject creates a network, a project whose default profile uses it,
// and count stopped containers with one custom volume each, and checks
// that the list calls return them with their project.
func seedProject(t *testing.T, srv Server, n names, count int) {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() { purge(t, srv, []string{n.project}, []string{n.network}) })
	steps := []func() error{
		func() error {
			return srv.CreateNetwork(ctx, api.NetworksPost{Name: n.network, Type: "bridge", NetworkPut: api.NetworkPut{
				Config: api.ConfigMap{"ipv4.address": n.gateway(), "ipv4.nat": "false", "ipv6.address": "none"}}})
		},
		func() error {
			return srv.CreateProject(ctx, api.ProjectsPost{Name: n.project, ProjectPut: api.ProjectPut{Config: api.ConfigMap{
				"features.images": "false", "features.profiles": "true", "features.storage.volumes": "true"}}})
		},
		func() error {
			return srv.UpdateProfile(ctx, n.project, "default", api.ProfilePut{Devices: map[string]map[string]string{
				"eth0": {"type": "nic", "network": n.network, "name": "eth0"},
				"root": {"type": "disk", "pool": "default", "path": "/"},
			}}, "")
		},
	}
	for i := range count {
		name := fmt.Sprintf("c%d", i)
		steps = append(steps,
			func() error {
				return srv.CreateStorageVolume(ctx, n.project, "default", api.StorageVolumesPost{Name: "v" + name,
					StorageVolumePut: api.StorageVolumePut{Config: api.ConfigMap{"user.anklume.managed": "true"}}})
			},
			func() error {
				return srv.CreateInstance(ctx, n.project, api.InstancesPost{Name: name,
					Source: api.InstanceSource{Type: "image", Alias: testImage},
					InstancePut: api.InstancePut{Devices: map[string]map[string]string{
						"data": {"type": "disk", "pool": "default", "source": "v" + name, "path": "/data"}}}})
			})
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	insts, err := srv.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, i := range insts {
		if i.Project == n.project {
			got++
		}
	}
	vols, err := srv.StorageVolumes(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	gotVols := 0
	for _, v := range vols {
		if v.Project == n.project && v.Type == "custom" {
			gotVols++
			if want := fmt.Sprintf("/1.0/instances/c%s?project=%s", v.Name[2:], n.project); !slices.Contains(v.UsedBy, want) {
				t.Errorf("volume %s used_by = %v, want %s", v.Name, v.UsedBy, want)
			}
		}
	}
	if got != count || gotVols != count {
		t.Errorf("listed %d instances and %d volumes in %s, want %d of each", got, gotVols, n.project, count)
	}
	pools, err := srv.StoragePools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(pools, func(p api.StoragePool) bool { return p.Name == "default" })
	if i < 0 || !slices.Contains(pools[i].UsedBy, "/1.0/storage-pools/default/volumes/custom/vc0?project="+n.project) {
		t.Errorf("pool default does not list the custom volume vc0 of %s in used_by", n.project)
	}
	// A volume in use cannot be deleted.
	expectErr(t, "delete a volume in use", srv.DeleteStorageVolume(ctx, n.project, "default", "vc0"), 0,
		`deleting storage volume "`+n.project+`/vc0": The storage volume is still in use`)
}
