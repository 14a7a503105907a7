package golden

import (
	"context"
	"testing"

	"github.com/lxc/incus/v6/shared/api"

	_ "github.com/anklume/anklume/internal/goldenflag"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/snapshots"
)

// TestCreateDerive: pristine never expires even with snapshots.expiry
// (§16 #94), and derive strips ownership, the static IP and the
// protection (#71).
func TestCreateDerive(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	if err := f.CreateNetwork(ctx, api.NetworksPost{Name: "x", Type: "bridge"}); err != nil {
		t.Fatal(err)
	}
	err := f.CreateInstance(ctx, "default", api.InstancesPost{Name: "m1", Start: true,
		Source: api.InstanceSource{Type: "image", Alias: "anklume-test"},
		InstancePut: api.InstancePut{
			Config: api.ConfigMap{"snapshots.expiry": "2d", "user.anklume.managed": "true",
				"user.anklume.infra": "t", "security.protection.delete": "true", "limits.memory": "1GiB"},
			Devices: map[string]map[string]string{"eth0": {"type": "nic", "network": "x", "ipv4.address": "10.0.0.1"}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	tg := snapshots.Target{Machine: "m1", Project: "default", Instance: "m1"}
	if err := Derive(ctx, f, tg, "copy", "default"); err == nil {
		t.Errorf("Derive without pristine succeeded")
	}
	for range 2 { // the second create replaces the snapshot
		if err := Create(ctx, f, tg); err != nil {
			t.Fatal(err)
		}
	}
	snaps, _ := f.Snapshots(ctx, "default", "m1")
	if len(snaps) != 1 || snaps[0].Name != Snapshot || !snaps[0].ExpiresAt.IsZero() {
		t.Errorf("snapshots %+v, want one pristine that never expires", snaps)
	}
	if i, _, _ := f.Instance(ctx, "default", "m1"); i.Status != "Running" {
		t.Errorf("m1 %s after golden create, want Running", i.Status)
	}
	if err := Derive(ctx, f, tg, "copy", "default"); err != nil {
		t.Fatal(err)
	}
	c, _, err := f.Instance(ctx, "default", "copy")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"user.anklume.managed", "user.anklume.infra", "security.protection.delete"} {
		if _, ok := c.Config[k]; ok {
			t.Errorf("derived instance keeps %s", k)
		}
	}
	if c.Config["limits.memory"] != "1GiB" {
		t.Errorf("derived instance lost limits.memory: %v", c.Config)
	}
	if _, ok := c.Devices["eth0"]; ok {
		t.Errorf("derived instance keeps eth0: %v", c.Devices)
	}
	if err := Derive(ctx, f, tg, "copy", "default"); err == nil {
		t.Errorf("Derive onto an existing name succeeded")
	}
	if err := Publish(ctx, f, tg, "gold"); err != nil {
		t.Fatal(err)
	}
	entries, err := List(ctx, f, []snapshots.Target{tg, {Project: "default", Instance: "copy"}})
	if err != nil || len(entries) != 1 || entries[0].Instance != "m1" {
		t.Errorf("List = %+v %v", entries, err)
	}
}
