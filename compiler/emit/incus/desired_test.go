package incus

import (
	"reflect"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/examples"
)

// ownershipPSOT exercises every ownership key of §5.1.
const ownershipPSOT = `format_version: 1
project_name: acme
global:
  addressing: {}
  gpu_policy: shared
  ai_access_policy: exclusive
  ai_access_default: work
  host_isolation: false
domains:
  work:
    description: "Work: desk & mail"
    trust_level: trusted
    profiles:
      big:
        description: Bigger
        config: {limits.cpu: 4}
        devices: {data: {type: disk, pool: default, source: shared, path: /shared}}
    machines:
      work-a:
        description: Desk
        roles: [base_system, desk]
        profiles: [default, big]
        gpu: true
        config: {security.nesting: true, limits.memory: 2GiB}
        storage_volumes: {vol1: {size: 10GiB, path: /srv/vol1}}
        boot_autostart: true
        boot_priority: 10
        snapshots_schedule: "0 2 * * *"
        snapshots_expiry: 30d
        os_image: local:deb
      work-b:
        type: vm
        state: stopped
        target: node2
        storage_volumes: {vol1: {}, vol2: {pool: fast}}
  ai-tools:
    ephemeral: true
    target: node2
    machines:
      ai-x: {}
  off:
    enabled: false
    machines:
      off-x: {}
network_policies:
  - {from: work, to: ai-tools, ports: [443, 80, 443], protocol: tcp}
  - {description: "host <to> work-a", from: host, to: work-a, ports: [22]}
  - {from: work-b, to: host, ports: all}
  - {from: work, to: off, ports: [1]}
`

// TestOwnershipKeys checks the §5.1 keys, with exact values, on each object
// kind: network, project, profiles, storage volumes and instances.
func TestOwnershipKeys(t *testing.T) {
	s := Desired(compile(t, ownershipPSOT))
	if len(s.Networks) != 2 || len(s.Projects) != 2 {
		t.Fatalf("got %d networks, %d projects; want 2 and 2 (disabled domain off has no objects)", len(s.Networks), len(s.Projects))
	}
	own := func(k string) bool { return strings.HasPrefix(k, OwnershipKeyPrefix) }
	base := "user.anklume.domain=work\nuser.anklume.infra=acme\nuser.anklume.managed=true"

	n := s.Network("net-work")
	if n == nil {
		t.Fatal("no network net-work")
	}
	if got := pairs(n.Config, nil); got != strings.Join([]string{
		"ipv4.address=10.110.0.254/24",
		"ipv4.dhcp.ranges=10.110.0.100-10.110.0.249",
		"ipv4.nat=true",
		"ipv6.address=none",
		base,
	}, "\n") {
		t.Errorf("network config:\n%s", got)
	}
	if n.Type != "bridge" || n.Description != "Work: desk & mail" || n.Domain != "work" {
		t.Errorf("network = %+v", n)
	}

	p := s.Project("work")
	wantProject := strings.Join([]string{
		"user.anklume.ai_access_default=work",
		"user.anklume.ai_access_policy=exclusive",
		"user.anklume.domain=work",
		"user.anklume.ephemeral=false",
		"user.anklume.gpu_policy=shared",
		"user.anklume.host_isolation=false",
		"user.anklume.infra=acme",
		"user.anklume.managed=true",
		`user.anklume.policies=[{"index":0,"auto":false,"description":"","from":"work","to":"ai-tools","ports":[443,80,443],"protocol":"tcp","bidirectional":false},` +
			`{"index":1,"auto":false,"description":"host <to> work-a","from":"host","to":"work-a","ports":[22],"protocol":"tcp","bidirectional":false},` +
			`{"index":2,"auto":false,"description":"","from":"work-b","to":"host","ports":"all","protocol":"tcp","bidirectional":false}]`,
		"user.anklume.trust_level=trusted",
	}, "\n")
	if got := pairs(p.Config, own); got != wantProject {
		t.Errorf("project work ownership keys:\n got: %s\nwant: %s", got, wantProject)
	}
	// ai-tools: semi-trusted default, ephemeral, no policy it originates.
	ai := s.Project("ai-tools")
	if got, want := pairs(ai.Config, own), strings.Join([]string{
		"user.anklume.ai_access_default=work",
		"user.anklume.ai_access_policy=exclusive",
		"user.anklume.domain=ai-tools",
		"user.anklume.ephemeral=true",
		"user.anklume.gpu_policy=shared",
		"user.anklume.host_isolation=false",
		"user.anklume.infra=acme",
		"user.anklume.managed=true",
		"user.anklume.trust_level=semi-trusted",
	}, "\n"); got != want {
		t.Errorf("project ai-tools ownership keys:\n got: %s\nwant: %s", got, want)
	}

	if names := profileNames(p); names != "default,big" {
		t.Errorf("profiles = %s", names)
	}
	def := p.Profile("default")
	if got := pairs(def.Config, nil); got != base {
		t.Errorf("default profile config:\n%s", got)
	}
	if def.Description != "anklume default profile for domain work" || def.Project != "work" {
		t.Errorf("default profile = %+v", def)
	}
	big := p.Profile("big")
	if got := pairs(big.Config, nil); got != "limits.cpu=4\n"+base {
		t.Errorf("profile big config:\n%s", got)
	}
	if !reflect.DeepEqual(big.Devices, api.DevicesMap{"data": {"type": "disk", "pool": "default", "source": "shared", "path": "/shared"}}) {
		t.Errorf("profile big devices = %v", big.Devices)
	}

	// Volumes: vol1 shared by work-a and work-b in pool default, vol2 in fast.
	if len(p.StorageVolumes) != 2 {
		t.Fatalf("volumes = %d, want 2", len(p.StorageVolumes))
	}
	v1 := p.StorageVolume("default", "vol1")
	if v1 == nil || pairs(v1.Config, nil) != "size=10GiB\n"+strings.Replace(base, "user.anklume.infra", "user.anklume.ephemeral=false\nuser.anklume.infra", 1) {
		t.Errorf("vol1 = %+v", v1)
	}
	if v1 != nil && (v1.Type != "custom" || v1.ContentType != "filesystem" || v1.Project != "work") {
		t.Errorf("vol1 request = %+v", v1)
	}
	if v2 := p.StorageVolume("fast", "vol2"); v2 == nil || v2.Config["size"] != "" {
		t.Errorf("vol2 = %+v", v2)
	}

	a := p.Instance("work-a")
	if got, want := pairs(a.Config, nil), strings.Join([]string{
		"boot.autostart=true",
		"boot.autostart.priority=10",
		"limits.memory=2GiB",
		"security.nesting=true",
		"security.protection.delete=true",
		"snapshots.expiry=30d",
		"snapshots.schedule=0 2 * * *",
		"user.anklume.config_keys=boot.autostart,boot.autostart.priority,limits.memory,security.nesting,security.protection.delete,snapshots.expiry,snapshots.schedule",
		"user.anklume.devices=eth0,gpu,vol1",
		"user.anklume.domain=work",
		"user.anklume.gpu=true",
		"user.anklume.infra=acme",
		"user.anklume.managed=true",
		"user.anklume.os_image=local:deb",
		"user.anklume.roles=base_system,desk",
		"user.anklume.trust_level=trusted",
	}, "\n"); got != want {
		t.Errorf("instance work-a config:\n got: %s\nwant: %s", got, want)
	}
	if a.Type != api.InstanceTypeContainer || !a.Start || a.Status() != "Running" ||
		!reflect.DeepEqual(a.Profiles, []string{"default", "big"}) || a.Description != "Desk" {
		t.Errorf("instance work-a = %+v", a)
	}
	if !reflect.DeepEqual(a.Source, api.InstanceSource{Type: "image", Alias: "deb"}) || a.Image != "local:deb" {
		t.Errorf("work-a source = %+v", a.Source)
	}
	if got := a.Devices["vol1"]; !reflect.DeepEqual(got, map[string]string{"type": "disk", "pool": "default", "source": "vol1", "path": "/srv/vol1"}) {
		t.Errorf("work-a vol1 device = %v", got)
	}
	if got := a.Devices["gpu"]; !reflect.DeepEqual(got, map[string]string{"type": "gpu"}) {
		t.Errorf("work-a gpu device = %v", got)
	}

	b := p.Instance("work-b")
	if b.Type != api.InstanceTypeVM || b.Start || b.State != "stopped" || b.Status() != "Stopped" || b.Target != "node2" {
		t.Errorf("instance work-b = %+v", b)
	}
	if _, ok := b.Config[KeyRoles]; ok {
		t.Error("work-b has no roles: user.anklume.roles must be omitted")
	}
	if _, ok := b.Config[KeyGPU]; ok {
		t.Error("work-b has gpu false: user.anklume.gpu must be omitted")
	}
	if !reflect.DeepEqual(b.Source, api.InstanceSource{Type: "image", Alias: "debian/13", Server: "https://images.linuxcontainers.org", Protocol: "simplestreams"}) {
		t.Errorf("work-b source = %+v", b.Source)
	}
	if p.Config["restricted.cluster.target"] != "allow" || p.Config["restricted.devices.gpu"] != "allow" {
		t.Errorf("work project restrictions: %s", pairs(p.Config, derived))
	}
}

// profileNames joins the profile names of p in order.
func profileNames(p *Project) string {
	var out []string
	for _, x := range p.Profiles {
		out = append(out, x.Name)
	}
	return strings.Join(out, ",")
}

// TestLegacyOwnership: legacy mode records user.anklume.addressing and
// omits the unset trust level on projects and instances (§5.1); a machine
// without IP gets no instance eth0 and no user.anklume.devices.
func TestLegacyOwnership(t *testing.T) {
	y := `format_version: 1
project_name: old
global: {}
domains:
  lab:
    subnet_id: 3
    machines:
      lab-a: {}
`
	s := Desired(compile(t, y))
	p := s.Project("lab")
	if p.Config[KeyAddressing] != "legacy" {
		t.Errorf("user.anklume.addressing = %q, want legacy", p.Config[KeyAddressing])
	}
	if _, ok := p.Config[KeyTrustLevel]; ok {
		t.Error("project: trust level must be omitted when unset")
	}
	in := p.Instance("lab-a")
	if _, ok := in.Config[KeyTrustLevel]; ok {
		t.Error("instance: trust level must be omitted when unset")
	}
	if len(in.Devices) != 0 {
		t.Errorf("devices = %v, want none", in.Devices)
	}
	if _, ok := in.Config[KeyDevices]; ok {
		t.Error("user.anklume.devices must be omitted when no device is set")
	}
	if got := s.Network("net-lab").Config["ipv4.address"]; got != "10.100.3.254/24" {
		t.Errorf("ipv4.address = %q", got)
	}
}

// firewallPSOT has firewall_mode vm, three enabled domains and a
// disabled one.
const firewallPSOT = `format_version: 1
project_name: fw
global:
  addressing: {}
  firewall_mode: vm
domains:
  anklume:
    trust_level: admin
    machines:
      adm: {}
  work:
    trust_level: trusted
    egress: false
    machines:
      work-a: {}
  zoo:
    trust_level: untrusted
    machines:
      zoo-a: {}
  gone:
    enabled: false
    trust_level: untrusted
    machines:
      gone-a: {}
`

// TestFilteringKeys is §16 #84: the default profile's eth0 and every
// static-IP eth0 carry the three filtering keys; the firewall machine's
// eth0 keeps only mac filtering and its firewall-multi-nic NICs carry no
// filter at all.
func TestFilteringKeys(t *testing.T) {
	s := Desired(compile(t, firewallPSOT))
	filters := []string{"security.mac_filtering", "security.ipv4_filtering", "security.ipv6_filtering"}
	for _, p := range s.Projects {
		eth0 := p.Profile(DefaultProfile).Devices["eth0"]
		for _, k := range filters {
			if eth0[k] != "true" {
				t.Errorf("%s default profile eth0 %s = %q", p.Name, k, eth0[k])
			}
		}
		for _, in := range p.Instances {
			e := in.Devices["eth0"]
			if e == nil {
				t.Errorf("%s: no eth0", in.Name)
				continue
			}
			if in.Name == "anklume-firewall" {
				if e["security.mac_filtering"] != "true" || e["security.ipv4_filtering"] != "" || e["security.ipv6_filtering"] != "" {
					t.Errorf("firewall eth0 = %v", e)
				}
				continue
			}
			for _, k := range filters {
				if e[k] != "true" {
					t.Errorf("%s eth0 %s = %q", in.Name, k, e[k])
				}
			}
		}
	}
	p := s.Project("anklume")
	if names := profileNames(p); names != "default,firewall-multi-nic" {
		t.Fatalf("anklume profiles = %s", names)
	}
	fw := p.Profile("firewall-multi-nic")
	want := api.DevicesMap{
		"eth1": {"type": "nic", "network": "net-work", "name": "eth1", "ipv4.address": "10.110.0.253"},
		"eth2": {"type": "nic", "network": "net-zoo", "name": "eth2", "ipv4.address": "10.140.1.253"}, // gone (disabled) holds seq 0 (§4.2),
	}
	if !reflect.DeepEqual(fw.Devices, want) {
		t.Errorf("firewall-multi-nic devices = %v", fw.Devices)
	}
	if fw.Description != "anklume firewall VM NICs" || pairs(fw.Config, nil) != "user.anklume.domain=anklume\nuser.anklume.infra=fw\nuser.anklume.managed=true" {
		t.Errorf("firewall-multi-nic = %+v", fw)
	}
	// The firewall domain may use every enabled bridge (§5.3); others only
	// their own.
	if got := p.Config["restricted.networks.access"]; got != "net-anklume,net-work,net-zoo" {
		t.Errorf("anklume restricted.networks.access = %q", got)
	}
	if got := s.Project("work").Config["restricted.networks.access"]; got != "net-work" {
		t.Errorf("work restricted.networks.access = %q", got)
	}
	if got := s.Network("net-work").Config["ipv4.nat"]; got != "false" {
		t.Errorf("egress false: ipv4.nat = %q", got)
	}
	if got := p.Instance("anklume-firewall").Profiles; !reflect.DeepEqual(got, []string{"default", "firewall-multi-nic"}) {
		t.Errorf("firewall profiles = %v", got)
	}
}

// TestExampleRestrictions is the §15 note checked by §16 #54: usb for
// sys-print, gpu and nesting for ai-tools, and the exact derived keys of
// every project of those examples.
func TestExampleRestrictions(t *testing.T) {
	tests := []struct {
		example, domain, want string
	}{
		{"sys-print", "sys-print", "restricted.devices.usb=allow"},
		{"sys-print", "perso", ""},
		{"ai-tools", "ai-tools", "restricted.containers.nesting=allow\nrestricted.devices.gpu=allow"},
		{"ai-tools", "anklume", ""},
		{"llm-supervisor", "ai-tools", "restricted.devices.gpu=allow"},
		{"pro-workstation", "pro", "restricted.devices.disk=allow\nrestricted.devices.disk.paths=/srv/anklume/data/pro"},
		{"developer", "dev", "restricted.containers.nesting=allow\nrestricted.devices.disk=allow\nrestricted.devices.disk.paths=/srv/anklume/data/dev,/srv/anklume/shares/code"},
		{"teacher-lab", "student-01", "restricted.devices.disk=allow\nrestricted.devices.disk.paths=/srv/anklume/shares/course"},
	}
	for _, tc := range tests {
		t.Run(tc.example+"/"+tc.domain, func(t *testing.T) {
			p := Desired(compileExample(t, tc.example)).DomainProject(tc.domain)
			if p == nil {
				t.Fatalf("no project for %s", tc.domain)
			}
			if got := pairs(p.Config, derived); got != tc.want {
				t.Errorf("derived keys:\n got: %q\nwant: %q", got, tc.want)
			}
		})
	}
}

// TestEveryExample: one network and project per enabled domain, in
// domain order, an instance per machine, and the default profile first.
func TestEveryExample(t *testing.T) {
	for _, name := range examples.Names() {
		t.Run(name, func(t *testing.T) {
			m := compileExample(t, name)
			s := Desired(m)
			ds := m.EnabledDomains()
			if len(s.Networks) != len(ds) || len(s.Projects) != len(ds) {
				t.Fatalf("%d networks, %d projects for %d domains", len(s.Networks), len(s.Projects), len(ds))
			}
			for i, d := range ds {
				if s.Networks[i].Name != d.Bridge || s.Projects[i].Name != d.Project {
					t.Errorf("object %d: %s/%s, want %s/%s", i, s.Networks[i].Name, s.Projects[i].Name, d.Bridge, d.Project)
				}
				p := s.Projects[i]
				if p.Profiles[0].Name != DefaultProfile {
					t.Errorf("%s: first profile %s", p.Name, p.Profiles[0].Name)
				}
				if len(p.Instances) != len(d.Machines) {
					t.Errorf("%s: %d instances for %d machines", p.Name, len(p.Instances), len(d.Machines))
				}
				for j, x := range d.Machines {
					if p.Instances[j].Name != x.Instance {
						t.Errorf("%s: instance %d is %s, want %s", p.Name, j, p.Instances[j].Name, x.Instance)
					}
				}
			}
		})
	}
}

// TestDesiredIsFresh: two calls share no maps, so a caller may change one.
func TestDesiredIsFresh(t *testing.T) {
	m := compile(t, ownershipPSOT)
	a, b := Desired(m), Desired(m)
	a.Projects[0].Config["x"] = "y"
	a.Projects[0].Instances[0].Devices["eth0"]["x"] = "y"
	if _, ok := b.Projects[0].Config["x"]; ok {
		t.Error("project config shared between calls")
	}
	if _, ok := b.Projects[0].Instances[0].Devices["eth0"]["x"]; ok {
		t.Error("devices shared between calls")
	}
	if !reflect.DeepEqual(Desired(nil), &State{}) {
		t.Error("Desired(nil) is not empty")
	}
}
