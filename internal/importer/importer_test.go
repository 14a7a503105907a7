package importer

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/internal/incusx"
)

// TestRoundTripFeatures is §16 #68 for the PSOT features the examples do
// not cover; each case also checks lines the imported file must hold.
func TestRoundTripFeatures(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		want  []string // lines of the imported file
		avoid []string // text it must not hold
	}{{
		name: "interleaved policies keep their order",
		src: `project_name: pol
global: {addressing: {zone_base: 100}, default_os_image: anklume-test}
domains:
  a: {trust_level: admin, machines: {a1: {}}}
  b: {trust_level: trusted, machines: {b1: {}}}
network_policies:
  - {description: one, from: a, to: b, ports: [22]}
  - {description: two, from: b, to: a, ports: [53], protocol: udp}
  - {description: three, from: a1, to: b1, ports: all, bidirectional: true}
  - {description: four, from: host, to: b1, ports: [80, 443]}
  - {description: five, from: b1, to: host, ports: []}
`,
		want: []string{"  - description: one", "  - description: two", "    protocol: udp",
			"  - description: three", "    bidirectional: true", "  - description: four", "  - description: five", "    ports: []"},
	}, {
		name: "exclusive AI access comes back without the auto policy",
		src: `project_name: ai
global:
  addressing: {zone_base: 100}
  default_os_image: anklume-test
  ai_access_policy: exclusive
  ai_access_default: work
  gpu_policy: shared
  host_isolation: false
domains:
  work: {trust_level: trusted, machines: {w1: {}}}
  ai-tools: {machines: {llm: {gpu: true}, llm2: {gpu: true}}}
`,
		want:  []string{"  ai_access_policy: exclusive", "  ai_access_default: work", "  gpu_policy: shared", "  host_isolation: false"},
		avoid: []string{"network_policies", "auto-created", "    devices:"},
	}, {
		name: "addressing, ips, volumes, state and protection",
		src: `project_name: feat
global:
  addressing: {zone_base: 60}
  default_os_image: anklume-test
  persistent_data_base: /srv/other
  shared_volumes_base: /srv/sv
domains:
  alpha: {trust_level: trusted, subnet_id: 3, ephemeral: true, machines: {al1: {ip: 10.70.3.40, ephemeral: false}, al2: {}, al3: {state: stopped}}}
  beta:
    trust_level: trusted
    egress: false
    profiles:
      p1: {description: prof, config: {limits.cpu: 2}, devices: {d1: {type: unix-char, path: /dev/zero}}}
    machines:
      b1:
        profiles: [default, p1]
        config: {limits.memory: 1GiB, boot.autostart: false}
        devices: {usb1: {type: usb, vendorid: "04b8"}, disk1: {type: disk, source: /srv/x, path: /mnt/x}}
        storage_volumes: {data: {size: 1GiB, path: /data}, scratch: {}}
        persistent_data: {home: {path: /home, readonly: true}}
        os_image: anklume-other
        snapshots_schedule: "@daily"
        snapshots_expiry: 2w
        boot_priority: 10
      b2: {type: vm, persistent_data: {home: {path: /home}}}
  gamma: {trust_level: disposable, machines: {g1: {ip: 10.110.0.2}, g2: {}}}
shared_volumes:
  docs: {shift: false, path: /docs, consumers: {beta: ro, al1: rw}}
  code: {source: /srv/code, consumers: {b2: rw}}
`,
		want: []string{"    zone_base: 60", "  persistent_data_base: /srv/other", "    subnet_id: 3",
			"        ip: 10.70.3.40", "        ephemeral: false", "        state: stopped", "    egress: false",
			"        os_image: anklume-other", "    source: /srv/code", "      b2: rw"},
		avoid: []string{"ip: 10.110.0.2", "subnet_id: 0"},
	}, {
		name: "firewall vm is recreated, not written",
		src: `project_name: fw
global: {addressing: {zone_base: 100}, default_os_image: anklume-test, firewall_mode: vm}
domains:
  anklume: {trust_level: admin, machines: {adm: {}}}
  work: {trust_level: trusted, machines: {w1: {}}}
`,
		want:  []string{"  firewall_mode: vm"},
		avoid: []string{"anklume-firewall", "firewall-multi-nic"},
	}, {
		name: "legacy mode",
		src: `project_name: leg
global: {base_subnet: "172.16", default_os_image: anklume-test}
domains:
  a: {subnet_id: 7, machines: {a1: {ip: 172.16.7.5}, a2: {}}}
  b: {subnet_id: 2, trust_level: trusted, machines: {b1: {ip: 172.16.2.1}}}
`,
		want:  []string{"  base_subnet: '172.16'", "    subnet_id: 7", "    subnet_id: 2", "        ip: 172.16.7.5", "        ip: 172.16.2.1"},
		avoid: []string{"addressing", "trust_level: semi-trusted"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := roundTrip(t, []byte(tt.src))
			out := string(res.YAML())
			lines := strings.Split(out, "\n")
			for _, w := range tt.want {
				if !slices.Contains(lines, w) {
					t.Errorf("imported file lacks the line %q:\n%s", w, out)
				}
			}
			for _, a := range tt.avoid {
				if strings.Contains(out, a) {
					t.Errorf("imported file holds %q:\n%s", a, out)
				}
			}
			if !strings.HasPrefix(out, "# ") || !strings.Contains(out, "\n"+Modeline+"\nformat_version: 1\n") {
				t.Errorf("header, modeline and format_version missing:\n%s", out)
			}
		})
	}
}

// TestImportProjectDropsPolicies is the last sentence of §16 #68: with
// --project, policies naming domains that are not imported are dropped
// with a warning.
func TestImportProjectDropsPolicies(t *testing.T) {
	m := compile(t, []byte(`project_name: sel
global: {addressing: {zone_base: 100}, default_os_image: anklume-test}
domains:
  a: {trust_level: admin, machines: {a1: {}}}
  b: {trust_level: trusted, machines: {b1: {}}}
network_policies:
  - {from: a, to: b, ports: [22]}
  - {from: host, to: a1, ports: [80]}
  - {from: b1, to: a, ports: [53]}
`))
	f := incusx.NewFake()
	applyOn(t, f, m)
	res := importFrom(t, f, Options{Projects: []string{"a"}})
	want := []string{
		`dropping network policy 0 (a -> b): "b" is not imported`,
	}
	if !slices.Equal(res.Warnings, want) {
		t.Errorf("warnings %q, want %q", res.Warnings, want)
	}
	out := string(res.YAML())
	if strings.Contains(out, "  b:") || !strings.Contains(out, "    to: a1\n") || strings.Contains(out, "from: b1") {
		t.Errorf("imported file:\n%s", out)
	}
	compile(t, res.YAML())
}

// TestImportErrors checks the errors of §11.
func TestImportErrors(t *testing.T) {
	two := func() *incusx.Fake {
		f := incusx.NewFake()
		applyOn(t, f, compile(t, []byte(`project_name: one
global: {addressing: {zone_base: 100}, default_os_image: anklume-test}
domains: {a: {trust_level: admin, machines: {a1: {}}}}
`)))
		applyOn(t, f, compile(t, []byte(`project_name: two
global: {addressing: {zone_base: 100}, default_os_image: anklume-test}
domains: {b: {trust_level: admin, subnet_id: 1, machines: {b1: {}}}}
`)))
		return f
	}
	offGrid := func() *incusx.Fake {
		f := incusx.NewFake()
		applyOn(t, f, compile(t, []byte(`project_name: one
global: {addressing: {zone_base: 120}, default_os_image: anklume-test}
domains: {a: {trust_level: admin, machines: {a1: {}}}, b: {trust_level: trusted, machines: {b1: {}}}}
`)))
		ctx := context.Background()
		n, etag, err := f.Network(ctx, "net-b")
		if err != nil {
			t.Fatal(err)
		}
		n.Config["ipv4.address"] = "10.135.0.254/24"
		n.Config["ipv4.dhcp.ranges"] = "10.135.0.100-10.135.0.249"
		if err := f.UpdateNetwork(ctx, "net-b", n.NetworkPut, etag); err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name string
		f    func() *incusx.Fake
		opts Options
		want string
	}{
		{"several infrastructures", two, Options{}, "several infrastructures found (one, two); pass --infra NAME"},
		{"unknown infra", two, Options{Infra: "three"}, `infrastructure "three" not found (found: one, two)`},
		{"unknown project", two, Options{Projects: []string{"nope"}}, `project "nope" not found`},
		{"off the zone grid", offGrid, Options{}, "network net-b (10.135.0.0/24) does not fit the zone grid of the other domains (zone_base 120)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := Read(context.Background(), tt.f())
			if err != nil {
				t.Fatal(err)
			}
			_, err = Import(st, tt.opts)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
	// --infra selects one of them.
	st, err := Read(context.Background(), two())
	if err != nil {
		t.Fatal(err)
	}
	res, err := Import(st, Options{Infra: "two", OnlyAnklume: true})
	if err != nil || res.ProjectName != "two" || res.Domains != 1 {
		t.Fatalf("import --infra two: %v %+v", err, res)
	}
}

// rootDisk is the root device of an instance made by hand.
var rootDisk = map[string]string{"type": "disk", "pool": "default", "path": "/"}

// handInstance is an instance made by hand, with eth0 on hand-br at ip
// when ip is not empty.
func handInstance(name string, typ api.InstanceType, desc, ip string) api.InstancesPost {
	devs := map[string]map[string]string{"root": rootDisk}
	if ip != "" {
		devs["eth0"] = map[string]string{"type": "nic", "network": "hand-br", "name": "eth0", "ipv4.address": ip}
	}
	return api.InstancesPost{Name: name, Type: typ, Source: api.InstanceSource{Type: "image", Alias: "anklume-test"},
		InstancePut: api.InstancePut{Description: desc, Devices: devs}}
}

// TestImportUnowned is §16 #69: a project anklume does not own, with two
// instances, becomes a semi-trusted domain with the instance types and
// the IPs that fit its subnet; default and anklume-lock are skipped.
func TestImportUnowned(t *testing.T) {
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	f := incusx.NewFake()
	must(f.CreateNetwork(ctx, api.NetworksPost{Name: "hand-br", Type: "bridge",
		NetworkPut: api.NetworkPut{Config: api.ConfigMap{"ipv4.address": "10.120.0.254/24"}}}))
	for _, p := range []string{"hand", "anklume-lock", "Bad_Name"} {
		must(f.CreateProject(ctx, api.ProjectsPost{Name: p, ProjectPut: api.ProjectPut{Description: "made by hand",
			Config: api.ConfigMap{"features.images": "false", "features.profiles": "false"}}}))
	}
	must(f.CreateInstance(ctx, "hand", handInstance("web", api.InstanceTypeContainer, "web server", "10.120.0.7")))
	must(f.CreateInstance(ctx, "hand", handInstance("vm1", api.InstanceTypeVM, "", "")))
	must(f.CreateInstance(ctx, "hand", handInstance("Bad_Inst", api.InstanceTypeContainer, "", "")))
	must(f.CreateInstance(ctx, "default", handInstance("outside", api.InstanceTypeContainer, "", "")))

	res := importFrom(t, f, Options{})
	out := string(res.YAML())
	want := `format_version: 1
project_name: imported-infra
global:
  addressing:
    base_octet: 10
    zone_base: 100
domains:
  hand:
    description: made by hand
    trust_level: semi-trusted
    machines:
      web:
        description: web server
        type: lxc
        ip: 10.120.0.7
      vm1:
        type: vm
`
	if !strings.HasSuffix(out, want) {
		t.Errorf("imported:\n%s\nwant the body:\n%s", out, want)
	}
	wantWarn := []string{
		`skipping project "Bad_Name": not a valid name (lowercase letters, digits and inner hyphens)`,
		`skipping instance "hand/Bad_Inst": not a valid name (lowercase letters, digits and inner hyphens)`,
	}
	if !slices.Equal(res.Warnings, wantWarn) {
		t.Errorf("warnings:\n%q\nwant:\n%q", res.Warnings, wantWarn)
	}
	compile(t, res.YAML())

	// An address outside the new subnet is dropped with a warning, and
	// --only-anklume skips the project.
	f2 := incusx.NewFake()
	must(f2.CreateNetwork(ctx, api.NetworksPost{Name: "hand-br", Type: "bridge",
		NetworkPut: api.NetworkPut{Config: api.ConfigMap{"ipv4.address": "192.168.5.254/24"}}}))
	must(f2.CreateProject(ctx, api.ProjectsPost{Name: "hand",
		ProjectPut: api.ProjectPut{Config: api.ConfigMap{"features.images": "false", "features.profiles": "false"}}}))
	must(f2.CreateInstance(ctx, "hand", handInstance("web", api.InstanceTypeContainer, "", "192.168.5.7")))
	res = importFrom(t, f2, Options{})
	if w := `dropping ip 192.168.5.7 of machine "web": it is outside the subnet 10.120.0.0/24 of domain "hand"`; !slices.Equal(res.Warnings, []string{w}) {
		t.Errorf("warnings %q, want %q", res.Warnings, w)
	}
	if res = importFrom(t, f2, Options{OnlyAnklume: true}); res.Domains != 0 {
		t.Errorf("--only-anklume imported %d domains", res.Domains)
	}
}
