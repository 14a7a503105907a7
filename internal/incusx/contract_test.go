package incusx

import (
	"context"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"
)

// The contract: the same scenario runs against the Fake and against the
// real daemon, with the same expectations, and both must send the same
// requests (SPEC.md §9.1, §9.5; §16 #56, #61, #63 and #64 rely on the fake
// behaving like Incus).

// TestContract runs contractScenario on the fake, then on the real daemon
// (skipped without root or socket), then compares their request logs.
func TestContract(t *testing.T) {
	var logs [2][]string
	t.Run("fake", func(t *testing.T) {
		f := NewFake()
		logs[0] = contractScenario(t, f, f.Log())
	})
	t.Run("real", func(t *testing.T) {
		log := &RequestLog{}
		c := realServer(t, log)
		logs[1] = contractScenario(t, c, log)
	})
	if logs[0] == nil || logs[1] == nil {
		return
	}
	if !slices.Equal(logs[0], logs[1]) {
		t.Errorf("the fake and the daemon sent different requests:\nfake:\n%s\nreal:\n%s", join(logs[0]), join(logs[1]))
	}
	t.Logf("the fake and the daemon sent the same %d requests:\n%s", len(logs[0]), join(logs[0]))
}

func join(lines []string) string {
	out := ""
	for _, l := range lines {
		out += "  " + l + "\n"
	}
	return out
}

// contractScenario creates a project, a network, profiles and an instance
// from the test image, lists them back with the all-projects calls, updates
// them with ETags (a stale ETag fails), starts and stops the instance,
// checks what Incus refuses (protected, running, non-empty, in use),
// snapshots, moves, and deletes in reverse order. It returns the request
// log of the scenario with operation IDs and random names normalised.
func contractScenario(t *testing.T, srv Server, log *RequestLog) []string {
	ctx := context.Background()
	n := newNames(t)
	t.Cleanup(func() { purge(t, srv, []string{n.project, n.project2}, []string{n.network}) })
	must := mustOK(t)
	owned := api.ConfigMap{"user.anklume.managed": "true", "user.anklume.infra": "itx"}

	// Create, in priority order (§9.5): network, project, profiles, instance.
	must("create network", srv.CreateNetwork(ctx, api.NetworksPost{Name: n.network, Type: "bridge",
		NetworkPut: api.NetworkPut{Description: "itx bridge", Config: merge(owned, api.ConfigMap{
			"ipv4.address": n.gateway(), "ipv4.nat": "false", "ipv6.address": "none",
			"ipv4.dhcp.ranges": n.ip(100) + "-" + n.ip(249)})}}))
	expectErr(t, "create network twice", srv.CreateNetwork(ctx, api.NetworksPost{Name: n.network, Type: "bridge"}),
		http.StatusConflict, `creating network "`+n.network+`": Network "`+n.network+`" already exists`)
	must("create project", srv.CreateProject(ctx, api.ProjectsPost{Name: n.project, ProjectPut: api.ProjectPut{
		Description: "itx project", Config: merge(owned, api.ConfigMap{
			"features.images": "false", "features.profiles": "true", "features.storage.volumes": "true",
			"features.networks": "false"})}}))
	expectErr(t, "create project twice", srv.CreateProject(ctx, api.ProjectsPost{Name: n.project}), 0,
		`creating project "`+n.project+`"`)

	prof, etag, err := srv.Profile(ctx, n.project, "default")
	must("get default profile", err)
	put := prof.Writable()
	put.Description = "itx default"
	put.Devices = map[string]map[string]string{
		"eth0": {"type": "nic", "network": n.network, "name": "eth0"},
		"root": {"type": "disk", "pool": "default", "path": "/"},
	}
	must("update default profile", srv.UpdateProfile(ctx, n.project, "default", put, etag))
	expectErr(t, "update default profile with a stale ETag", srv.UpdateProfile(ctx, n.project, "default", put, etag),
		http.StatusPreconditionFailed, "ETag doesn't match")
	must("create profile", srv.CreateProfile(ctx, n.project, api.ProfilesPost{Name: "extra",
		ProfilePut: api.ProfilePut{Config: merge(owned, api.ConfigMap{"user.role": "x"})}}))
	expectErr(t, "create profile twice", srv.CreateProfile(ctx, n.project, api.ProfilesPost{Name: "extra"}),
		0, "The profile already exists")

	src, err := srv.ResolveImage(testImage)
	must("resolve image", err)
	if !reflect.DeepEqual(src, api.InstanceSource{Type: "image", Alias: testImage}) {
		t.Errorf("ResolveImage(%q) = %+v", testImage, src)
	}
	create := api.InstancesPost{Name: "c1", Type: api.InstanceTypeContainer, Source: src, InstancePut: api.InstancePut{
		Description: "itx c1", Profiles: []string{"default", "extra"},
		Config:  merge(owned, api.ConfigMap{"boot.autostart": "false"}),
		Devices: map[string]map[string]string{"eth0": {"type": "nic", "network": n.network, "name": "eth0", "ipv4.address": n.ip(10)}},
	}}
	must("create instance", srv.CreateInstance(ctx, n.project, create))
	expectErr(t, "create instance twice", srv.CreateInstance(ctx, n.project, create), 0, "UNIQUE constraint failed")
	bad := create
	bad.Name, bad.Profiles = "c2", []string{"nope"}
	expectErr(t, "create instance with a missing profile", srv.CreateInstance(ctx, n.project, bad), 0,
		`Requested profile "nope" doesn't exist`)
	bad.Profiles, bad.Source = nil, api.InstanceSource{Type: "image", Alias: "itx-no-such-alias"}
	expectErr(t, "create instance from a missing alias", srv.CreateInstance(ctx, n.project, bad), 0,
		"Image not provided for instance creation")

	// Read back with the list calls of §9.1.
	checkLists(t, srv, n, false)

	// Updates with ETags, and stale ETags.
	proj, etag, err := srv.Project(ctx, n.project)
	must("get project", err)
	pput := proj.Writable()
	pput.Config["user.anklume.domain"] = "itx"
	must("update project", srv.UpdateProject(ctx, n.project, pput, etag))
	expectErr(t, "update project with a stale ETag", srv.UpdateProject(ctx, n.project, pput, etag),
		http.StatusPreconditionFailed, `updating project "`+n.project+`": ETag doesn't match`)
	netw, etag, err := srv.Network(ctx, n.network)
	must("get network", err)
	nput := netw.Writable()
	nput.Description = "itx bridge 2"
	must("update network", srv.UpdateNetwork(ctx, n.network, nput, etag))
	expectErr(t, "update network with a stale ETag", srv.UpdateNetwork(ctx, n.network, nput, etag),
		http.StatusPreconditionFailed, "ETag doesn't match")
	inst, etag, err := srv.Instance(ctx, n.project, "c1")
	must("get instance", err)
	iput := inst.Writable()
	iput.Config["user.k"] = "v"
	must("update instance", srv.UpdateInstance(ctx, n.project, "c1", iput, etag))
	expectErr(t, "update instance with a stale ETag", srv.UpdateInstance(ctx, n.project, "c1", iput, etag),
		http.StatusPreconditionFailed, `updating instance "`+n.project+`/c1": ETag doesn't match`)
	inst, _, err = srv.Instance(ctx, n.project, "c1")
	must("get instance", err)
	if inst.Config["user.k"] != "v" || inst.ExpandedConfig["user.role"] != "x" {
		t.Errorf("instance config after update: %v (expanded %v)", inst.Config, inst.ExpandedConfig)
	}
	expectErr(t, "get a missing instance", func() error { _, _, err := srv.Instance(ctx, n.project, "nope"); return err }(),
		http.StatusNotFound, "Instance not found")
	if _, _, err := srv.Network(ctx, n.network+"x"); !IsNotFound(err) {
		t.Errorf("get a missing network: %v, want not found", err)
	}

	// Start and stop.
	must("start", srv.UpdateInstanceState(ctx, n.project, "c1", api.InstanceStatePut{Action: ActionStart, Timeout: -1}))
	expectErr(t, "start twice", srv.UpdateInstanceState(ctx, n.project, "c1", api.InstanceStatePut{Action: ActionStart, Timeout: -1}),
		0, "The instance is already running")
	if got := status(t, srv, n.project, "c1"); got != "Running" {
		t.Errorf("status after start = %s", got)
	}
	expectErr(t, "delete a running instance", srv.DeleteInstance(ctx, n.project, "c1"), http.StatusBadRequest, "Instance is running")
	expectErr(t, "move a running instance", srv.MoveInstance(ctx, n.project, "c1", n.project2), http.StatusBadRequest,
		`moving instance "`+n.project+`/c1" to project "`+n.project2+`": Instance must be stopped to be moved statelessly`)
	must("stop", srv.UpdateInstanceState(ctx, n.project, "c1", api.InstanceStatePut{Action: ActionStop, Force: true, Timeout: -1}))
	expectErr(t, "stop twice", srv.UpdateInstanceState(ctx, n.project, "c1", api.InstanceStatePut{Action: ActionStop, Force: true, Timeout: -1}),
		0, "The instance is already stopped")
	if got := status(t, srv, n.project, "c1"); got != "Stopped" {
		t.Errorf("status after stop = %s", got)
	}

	// Snapshots (issue 6): create with and without expiry, list, restore, delete.
	never := time.Time{}
	must("snapshot", srv.CreateSnapshot(ctx, n.project, "c1", api.InstanceSnapshotsPost{Name: "s1", ExpiresAt: &never}))
	expectErr(t, "snapshot twice", srv.CreateSnapshot(ctx, n.project, "c1", api.InstanceSnapshotsPost{Name: "s1", ExpiresAt: &never}),
		0, "UNIQUE constraint failed")
	inst, etag, err = srv.Instance(ctx, n.project, "c1")
	must("get instance", err)
	iput = inst.Writable()
	iput.Config["user.k"] = "changed"
	must("update instance", srv.UpdateInstance(ctx, n.project, "c1", iput, etag))
	snaps, err := srv.Snapshots(ctx, n.project, "c1")
	must("list snapshots", err)
	if len(snaps) != 1 || snaps[0].Name != "s1" || !snaps[0].ExpiresAt.IsZero() || snaps[0].Config["user.k"] != "v" {
		t.Errorf("snapshots = %+v", snaps)
	}
	must("restore", srv.RestoreSnapshot(ctx, n.project, "c1", "s1"))
	expectErr(t, "restore a missing snapshot", srv.RestoreSnapshot(ctx, n.project, "c1", "nope"), 0, "Snapshot c1/nope does not exist")
	inst, _, err = srv.Instance(ctx, n.project, "c1")
	must("get instance", err)
	if inst.Config["user.k"] != "v" {
		t.Errorf("user.k after restore = %q, want v", inst.Config["user.k"])
	}
	expectErr(t, "delete a missing snapshot", srv.DeleteSnapshot(ctx, n.project, "c1", "nope"), http.StatusNotFound, "not found")
	must("delete snapshot", srv.DeleteSnapshot(ctx, n.project, "c1", "s1"))

	// Move to another project and back (§9.3 move).
	must("create project 2", srv.CreateProject(ctx, api.ProjectsPost{Name: n.project2, ProjectPut: api.ProjectPut{
		Config: merge(owned, api.ConfigMap{"features.images": "false", "features.profiles": "true", "features.storage.volumes": "true"})}}))
	expectErr(t, "move to a project without the profiles", srv.MoveInstance(ctx, n.project, "c1", n.project2), 0,
		"Profile not found")
	must("create profile in project 2", srv.CreateProfile(ctx, n.project2, api.ProfilesPost{Name: "extra"}))
	must("move", srv.MoveInstance(ctx, n.project, "c1", n.project2))
	checkLists(t, srv, n, true)
	must("move back", srv.MoveInstance(ctx, n.project2, "c1", n.project))
	must("delete profile in project 2", srv.DeleteProfile(ctx, n.project2, "extra"))
	must("delete project 2", srv.DeleteProject(ctx, n.project2))

	// What Incus refuses before the reverse-order deletes.
	inst, etag, err = srv.Instance(ctx, n.project, "c1")
	must("get instance", err)
	iput = inst.Writable()
	iput.Config["security.protection.delete"] = "true"
	must("protect", srv.UpdateInstance(ctx, n.project, "c1", iput, etag))
	expectErr(t, "delete a protected instance", srv.DeleteInstance(ctx, n.project, "c1"), 0, "Instance is protected")
	expectErr(t, "delete a non-empty project", srv.DeleteProject(ctx, n.project), 0, "Only empty projects can be removed.")
	expectErr(t, "delete a network in use", srv.DeleteNetwork(ctx, n.network), http.StatusBadRequest, "The network is currently in use")
	expectErr(t, "delete the default profile", srv.DeleteProfile(ctx, n.project, "default"), http.StatusForbidden,
		`The "default" profile cannot be deleted`)
	bare := iput
	bare.Config = api.ConfigMap{"security.protection.delete": "true"}
	expectErr(t, "drop volatile idmap keys", srv.UpdateInstance(ctx, n.project, "c1", bare, ""), 0,
		"Volatile idmap keys can't be deleted by the user")

	// Delete in reverse priority order.
	inst, etag, err = srv.Instance(ctx, n.project, "c1")
	must("get instance", err)
	iput = inst.Writable()
	delete(iput.Config, "security.protection.delete")
	must("unprotect", srv.UpdateInstance(ctx, n.project, "c1", iput, etag))
	must("delete instance", srv.DeleteInstance(ctx, n.project, "c1"))
	must("delete profile", srv.DeleteProfile(ctx, n.project, "extra"))
	prof, etag, err = srv.Profile(ctx, n.project, "default")
	must("get default profile", err)
	put = prof.Writable()
	put.Devices = map[string]map[string]string{}
	must("empty default profile", srv.UpdateProfile(ctx, n.project, "default", put, etag))
	must("delete project", srv.DeleteProject(ctx, n.project))
	must("delete network", srv.DeleteNetwork(ctx, n.network))
	if _, _, err := srv.Project(ctx, n.project); !IsNotFound(err) {
		t.Errorf("project after delete: %v, want not found", err)
	}
	if _, _, err := srv.Network(ctx, n.network); !IsNotFound(err) {
		t.Errorf("network after delete: %v, want not found", err)
	}

	out := log.Strings()
	for i, l := range out {
		out[i] = replaceNames(l, n)
	}
	return out
}

// replaceNames replaces the random names of a run by fixed ones, so that
// the logs of two runs compare.
func replaceNames(s string, n names) string {
	return strings.NewReplacer(n.project2, "P2", n.project, "P", n.network, "N").Replace(s)
}

func merge(ms ...api.ConfigMap) api.ConfigMap {
	out := api.ConfigMap{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// status returns an instance's status from the all-projects list.
func status(t *testing.T, srv Server, project, name string) string {
	t.Helper()
	insts, err := srv.Instances(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range insts {
		if i.Project == project && i.Name == name {
			return i.Status
		}
	}
	return "missing"
}

// checkLists reads the objects of the scenario back with the all-projects
// list calls.
func checkLists(t *testing.T, srv Server, n names, moved bool) {
	t.Helper()
	ctx := context.Background()
	projects, err := srv.Projects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(projects, func(p api.Project) bool { return p.Name == n.project })
	if i < 0 {
		t.Fatalf("project %s not listed", n.project)
	}
	p := projects[i]
	want := map[string]string{"features.images": "false", "features.profiles": "true", "features.storage.volumes": "true",
		"features.networks": "false", "features.storage.buckets": "true", "user.anklume.managed": "true"}
	for k, v := range want {
		if p.Config[k] != v {
			t.Errorf("project config[%s] = %q, want %q", k, p.Config[k], v)
		}
	}
	if p.Description != "itx project" {
		t.Errorf("project description = %q", p.Description)
	}

	networks, err := srv.Networks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i = slices.IndexFunc(networks, func(x api.Network) bool { return x.Name == n.network })
	if i < 0 {
		t.Fatalf("network %s not listed", n.network)
	}
	if nw := networks[i]; nw.Config["ipv4.address"] != n.gateway() || nw.Config["ipv4.nat"] != "false" || nw.Type != "bridge" ||
		!nw.Managed || !slices.Contains(nw.UsedBy, "/1.0/profiles/default?project="+n.project) {
		t.Errorf("network = %+v", nw)
	}

	profiles, err := srv.Profiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, pr := range profiles {
		if pr.Project == n.project || pr.Project == n.project2 {
			got = append(got, pr.Project+"/"+pr.Name)
		}
	}
	slices.Sort(got)
	wantProfiles := []string{n.project + "/default", n.project + "/extra"}
	if moved {
		wantProfiles = append(wantProfiles, n.project2+"/default", n.project2+"/extra")
	}
	slices.Sort(wantProfiles)
	if !slices.Equal(got, wantProfiles) {
		t.Errorf("profiles = %v, want %v", got, wantProfiles)
	}

	insts, err := srv.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantProject := n.project
	if moved {
		wantProject = n.project2
	}
	i = slices.IndexFunc(insts, func(x api.Instance) bool { return x.Name == "c1" && x.Project == wantProject })
	if i < 0 {
		t.Fatalf("instance %s/c1 not listed", wantProject)
	}
	c := insts[i]
	// Incus drops the description when it moves an instance to another
	// project; the reconciler sets it again after a move.
	wantDesc := "itx c1"
	if moved {
		wantDesc = ""
	}
	if c.Type != "container" || c.Status != "Stopped" || !slices.Equal(c.Profiles, []string{"default", "extra"}) ||
		c.Description != wantDesc || c.Devices["eth0"]["ipv4.address"] != n.ip(10) || c.Config["user.anklume.managed"] != "true" ||
		c.ExpandedDevices["root"]["pool"] != "default" {
		t.Errorf("instance = %+v", c)
	}
	if c.Config["volatile.base_image"] == "" || c.Config["image.os"] == "" {
		t.Errorf("instance config lacks the volatile.*/image.* keys Incus adds: %v", c.Config)
	}
}
