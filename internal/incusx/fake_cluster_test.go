package incusx

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"
)

// newFakeCluster returns a fake cluster of members m1, m2, m3, group lab
// (m2, m3), with bridge net-c created the cluster way and project p whose
// default profile has a root disk and a NIC on it.
func newFakeCluster(t *testing.T) *Fake {
	t.Helper()
	f := NewFake()
	for _, m := range []string{"m1", "m2", "m3"} {
		f.AddClusterMember(m)
	}
	f.AddClusterGroup("lab", "m2", "m3")
	ctx := context.Background()
	req := api.NetworksPost{Name: "net-c", Type: "bridge"}
	for _, m := range []string{"m1", "m2", "m3"} {
		if err := f.CreateNetworkOn(ctx, m, req); err != nil {
			t.Fatal(err)
		}
	}
	req.Config = api.ConfigMap{"ipv4.address": "10.1.2.254/24"}
	for _, err := range []error{
		f.CreateNetwork(ctx, req),
		f.CreateProject(ctx, api.ProjectsPost{Name: "p", ProjectPut: api.ProjectPut{Config: api.ConfigMap{"features.images": "false"}}}),
		f.UpdateProfile(ctx, "p", "default", api.ProfilePut{Devices: map[string]map[string]string{
			"eth0": {"type": "nic", "network": "net-c", "name": "eth0"},
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

// TestFakeClusterNetwork: a cluster network is pending member by member,
// then created once globally; the final create is refused before every
// member has it, and while a member is offline.
func TestFakeClusterNetwork(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	n, _, err := f.Network(ctx, "net-c")
	if err != nil || n.Status != "Created" || n.Config["ipv4.address"] != "10.1.2.254/24" {
		t.Fatalf("net-c after the cluster create: %+v, %v", n, err)
	}
	req := api.NetworksPost{Name: "net-d", Type: "bridge"}
	if err := f.CreateNetwork(ctx, req); err == nil || !strings.Contains(err.Error(), "not pending on any member") {
		t.Errorf("global create without pending: %v", err)
	}
	if err := f.CreateNetworkOn(ctx, "m1", api.NetworksPost{Name: "net-d", NetworkPut: api.NetworkPut{Config: api.ConfigMap{"ipv4.address": "10.1.3.254/24"}}}); err == nil ||
		!strings.Contains(err.Error(), `creating network "net-d" on cluster member "m1": Config key "ipv4.address" may not be used as member-specific key`) {
		t.Errorf("global key on a member create: %v", err)
	}
	if err := f.CreateNetworkOn(ctx, "m1", req); err != nil {
		t.Fatal(err)
	}
	n, _, _ = f.Network(ctx, "net-d")
	if n.Status != "Pending" || !slices.Equal(n.Locations, []string{"m1"}) {
		t.Errorf("net-d pending on m1: status %s, locations %v", n.Status, n.Locations)
	}
	if err := f.CreateNetwork(ctx, req); err == nil || !strings.Contains(err.Error(), "Network not defined on members: m2, m3") {
		t.Errorf("global create pending on m1 only: %v", err)
	}
	if err := f.CreateNetworkOn(ctx, "m1", req); err == nil {
		t.Error("a second pending create on m1 was accepted")
	}
	_ = f.CreateNetworkOn(ctx, "m2", req)
	_ = f.CreateNetworkOn(ctx, "m3", req)
	f.SetMemberStatus("m3", "Offline")
	if err := f.CreateNetwork(ctx, req); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("global create with m3 offline: %v", err)
	}
	f.SetMemberStatus("m3", "Online")
	if err := f.CreateNetwork(ctx, req); err != nil {
		t.Errorf("global create once pending everywhere: %v", err)
	}
	want := []string{
		"POST /1.0/networks", "POST /1.0/networks?target=m1", "POST /1.0/networks?target=m1", "POST /1.0/networks",
		"POST /1.0/networks?target=m1", "POST /1.0/networks?target=m2", "POST /1.0/networks?target=m3",
		"POST /1.0/networks", "POST /1.0/networks",
	}
	var got []string
	for _, r := range f.Log().Strings() {
		if strings.HasPrefix(r, "POST") {
			got = append(got, r)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("requests:\n got %q\nwant %q", got, want)
	}
}

// TestFakeClusterPlacement: an instance lands on its target, on the
// least-loaded member of a group, and an offline member's instances are
// listed with status Error and no config.
func TestFakeClusterPlacement(t *testing.T) {
	ctx := context.Background()
	f := newFakeCluster(t)
	create := func(name, target string) (string, error) {
		if err := f.CreateInstanceOn(ctx, "p", target, fromImage(name)); err != nil {
			return "", err
		}
		i, _, err := f.Instance(ctx, "p", name)
		if err != nil {
			return "", err
		}
		return i.Location, nil
	}
	for _, tt := range []struct{ name, target, want string }{
		{"a", "m2", "m2"},
		{"b", "@lab", "m3"}, // m2 has one
		{"c", "@lab", "m2"}, // tie: by name
		{"d", "", "m1"},     // the emptiest member
	} {
		got, err := create(tt.name, tt.target)
		if err != nil || got != tt.want {
			t.Errorf("%s with target %q: on %q (%v), want %q", tt.name, tt.target, got, err, tt.want)
		}
	}
	if _, err := create("e", "m9"); err == nil {
		t.Error("an unknown member was accepted")
	}
	if got := f.Log().Strings(); !slices.Contains(got, "POST /1.0/instances?project=p&target=%40lab") {
		t.Errorf("no group-targeted create in the log: %q", got)
	}
	f.SetMemberStatus("m3", "Offline")
	if _, err := create("e", "m3"); err == nil || !strings.Contains(err.Error(), `creating instance "p/e" on cluster member "m3"`) {
		t.Errorf("create on an offline member: %v", err)
	}
	insts, err := f.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range insts {
		if (i.Location == "m3") != (i.Status == "Error") || (i.Status == "Error" && len(i.Config) != 0) {
			t.Errorf("instance %s on %s: status %s, %d config keys", i.Name, i.Location, i.Status, len(i.Config))
		}
	}
	if _, _, err := f.Instance(ctx, "p", "b"); err == nil {
		t.Error("an instance of an offline member was read")
	}
}
