package reconcile

import (
	"context"
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/incusx"
)

// applied returns a fake holding the objects of psot, already converged.
func applied(t *testing.T, domains string) (*incusx.Fake, *model.Infra, *incus.State) {
	t.Helper()
	f := incusx.NewFake()
	m, want := compile(t, psot(domains))
	converge(t, f, mustPlan(t, f, m, want, Options{}))
	assertEmpty(t, f, m, want, Options{})
	return f, m, want
}

// TestDrift: manual changes to owned fields show as `~` with exact diff
// lines and are corrected; a hand-added user.foo never appears (SPEC.md
// §16 #58, §9.6).
func TestDrift(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		edit  func(t *testing.T, f *incusx.Fake)
		lines []string
	}{
		{
			name: "limits.memory changed by hand",
			edit: func(t *testing.T, f *incusx.Fake) {
				x, etag, _ := f.Instance(ctx, "work", "web")
				x.Config["limits.memory"] = "2GiB"
				must(t, f.UpdateInstance(ctx, "work", "web", x.Writable(), etag))
			},
			lines: []string{"  ~ instance work/web", `      ~ config["limits.memory"]: "2GiB" -> "1GiB"`, "Plan: 0 to create, 1 to update, 0 to delete."},
		},
		{
			name: "eth0 override removed",
			edit: func(t *testing.T, f *incusx.Fake) {
				x, etag, _ := f.Instance(ctx, "work", "web")
				delete(x.Devices, "eth0")
				must(t, f.UpdateInstance(ctx, "work", "web", x.Writable(), etag))
			},
			lines: []string{"  ~ instance work/web", `      + devices.eth0["ipv4.address"]: "10.210.0.1"`, `      + devices.eth0.type: "nic"`},
		},
		{
			name: "domain profile config edited",
			edit: func(t *testing.T, f *incusx.Fake) {
				p, etag, _ := f.Profile(ctx, "work", "big")
				p.Config["limits.cpu"] = "4"
				p.Config["limits.processes"] = "100"
				must(t, f.UpdateProfile(ctx, "work", "big", p.ProfilePut, etag))
			},
			lines: []string{"  ~ profile work/big", `      ~ config["limits.cpu"]: "4" -> "2"`, `      - config["limits.processes"]: "100"`},
		},
		{
			name: "default profile filtering key edited",
			edit: func(t *testing.T, f *incusx.Fake) {
				p, etag, _ := f.Profile(ctx, "work", "default")
				p.Devices["eth0"]["security.ipv4_filtering"] = "false"
				p.Devices["extra"] = map[string]string{"type": "disk", "source": "/tmp", "path": "/mnt"}
				must(t, f.UpdateProfile(ctx, "work", "default", p.ProfilePut, etag))
			},
			lines: []string{"  ~ profile work/default", `      ~ devices.eth0["security.ipv4_filtering"]: "false" -> "true"`, "Plan: 0 to create, 1 to update, 0 to delete."},
		},
		{
			name: "network NAT switched on, dns.domain added",
			edit: func(t *testing.T, f *incusx.Fake) {
				n, etag, _ := f.Network(ctx, "net-work")
				n.Config["ipv4.nat"] = "true"
				n.Config["dns.domain"] = "x"
				must(t, f.UpdateNetwork(ctx, "net-work", n.Writable(), etag))
			},
			lines: []string{"  ~ network net-work", `      ~ config["ipv4.nat"]: "true" -> "false"`},
		},
		{
			name: "project restriction relaxed",
			edit: func(t *testing.T, f *incusx.Fake) {
				p, etag, _ := f.Project(ctx, "work")
				p.Config["restricted.containers.privilege"] = "allow"
				p.Description = "x"
				must(t, f.UpdateProject(ctx, "work", p.ProjectPut, etag))
			},
			lines: []string{"  ~ project work", `      ~ description: "x" -> ""`, `      - config["restricted.containers.privilege"]: "allow"`},
		},
		{
			name: "ownership key removed from a volume",
			edit: func(t *testing.T, f *incusx.Fake) {
				v, etag, _ := f.StorageVolume(ctx, "lab", "default", "data")
				delete(v.Config, incus.KeyEphemeral)
				must(t, f.UpdateStorageVolume(ctx, "lab", "default", "data", v.Writable(), etag))
			},
			lines: []string{"  ~ storage volume lab/data", `      + config["user.anklume.ephemeral"]: "false"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, m, want := applied(t, twoDomains)
			tt.edit(t, f)
			p := mustPlan(t, f, m, want, Options{})
			got := text(t, p)
			for _, l := range tt.lines {
				if !strings.Contains(got, l+"\n") {
					t.Errorf("plan lacks %q:\n%s", l, got)
				}
			}
			if strings.Contains(got, "dns.domain") || strings.Contains(got, "extra") {
				t.Errorf("plan shows a key anklume never set:\n%s", got)
			}
			converge(t, f, p)
			assertEmpty(t, f, m, want, Options{})
		})
	}
}

// TestHandAddedKeyIgnored: keys and devices anklume never set, and
// volatile.* keys, never appear (SPEC.md §16 #58, §9.6).
func TestHandAddedKeyIgnored(t *testing.T) {
	ctx := context.Background()
	f, m, want := applied(t, twoDomains)
	x, etag, _ := f.Instance(ctx, "work", "web")
	x.Config["user.foo"] = "bar"
	x.Config["volatile.foo"] = "bar"
	x.Devices["hand"] = map[string]string{"type": "disk", "source": "/tmp", "path": "/hand"}
	must(t, f.UpdateInstance(ctx, "work", "web", x.Writable(), etag))
	assertEmpty(t, f, m, want, Options{})
}

// TestRemovedKeyAndDevice: a config key removed from the PSOT is unset and
// a removed device detached (SPEC.md §16 #59).
func TestRemovedKeyAndDevice(t *testing.T) {
	before := strings.Replace(twoDomains, "          limits.memory: 1GiB\n",
		"          limits.memory: 1GiB\n          security.nesting: \"true\"\n        devices:\n          tmp: {type: disk, source: /tmp, path: /mnt/tmp}\n", 1)
	f, _, _ := applied(t, before)
	m, want := compile(t, psot(twoDomains))
	p := mustPlan(t, f, m, want, Options{})
	got := text(t, p)
	for _, l := range []string{
		"  ~ instance work/web (restart)",
		`      - config["security.nesting"]: "true"`,
		`      ~ config["user.anklume.config_keys"]: "limits.memory,security.nesting,security.protection.delete" -> "limits.memory,security.protection.delete"`,
		`      ~ config["user.anklume.devices"]: "eth0,tmp" -> "eth0"`,
		`      - devices.tmp.path: "/mnt/tmp"`,
	} {
		if !strings.Contains(got, l+"\n") {
			t.Errorf("plan lacks %q:\n%s", l, got)
		}
	}
	converge(t, f, p)
	assertEmpty(t, f, m, want, Options{})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
