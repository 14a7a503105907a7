package resolve

import (
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
)

// §16 #32: firewall_mode vm adds anklume-firewall as §4.7 describes, with
// the firewall-multi-nic profile (eth<k> per other enabled domain in
// byte-wise bridge order, no filtering keys).
func TestFirewallVMAdded_16_32(t *testing.T) {
	y := `project_name: t
global:
  addressing: {}
  firewall_mode: vm
domains:
  anklume:
    trust_level: admin
    machines:
      admin-ctl: {}
  pro: {trust_level: trusted}
  perso: {trust_level: trusted}
  off: {enabled: false}
  abcdefghijklm: {}
`
	m, dl := mustResolve(t, y, skip)
	fw := m.Machine("anklume-firewall")
	if fw == nil || m.Firewall != fw {
		t.Fatal("no firewall machine")
	}
	d := m.Domain("anklume")
	if d.Machines[len(d.Machines)-1] != fw || m.Machines[len(d.Machines)-1] != fw {
		t.Error("firewall is not last in its domain")
	}
	if fw.Description != "Centralized firewall VM (auto-created by anklume)" || fw.Type != model.VM ||
		fw.IP.String() != "10.100.0.253" || fw.Ephemeral || !fw.Protected || !fw.AutoCreated || !fw.IsFirewall {
		t.Errorf("firewall fields: %+v", fw)
	}
	if got := strings.Join(fw.Profiles, ","); got != "default,firewall-multi-nic" {
		t.Errorf("profiles %s", got)
	}
	if got := kvString(fw.Config); got != "limits.cpu=2 limits.memory=2GiB" {
		t.Errorf("config %s", got)
	}
	if got := strings.Join(fw.Roles, ","); got != "base_system,firewall_router" {
		t.Errorf("roles %s", got)
	}
	if fw.Image != "images:debian/13" || fw.Instance != "anklume-firewall" {
		t.Errorf("image %s instance %s", fw.Image, fw.Instance)
	}
	p := d.FirewallProfile
	if p == nil || p.Description != "anklume firewall VM NICs" || d.Profile("firewall-multi-nic") != p || m.FirewallProfile() != p {
		t.Fatalf("profile %+v", p)
	}
	short := "net-" + sha256Hex("abcdefghijklm")[:11]
	want := "eth1{type=nic network=" + short + " name=eth1 ipv4.address=10.120.0.253} " +
		"eth2{type=nic network=net-perso name=eth2 ipv4.address=10.110.0.253} " +
		"eth3{type=nic network=net-pro name=eth3 ipv4.address=10.110.1.253}"
	if short > "net-perso" {
		t.Fatalf("test assumes %s sorts before net-perso", short)
	}
	if got := devString(p.Devices); got != want {
		t.Errorf("NICs:\n%s\nwant\n%s", got, want)
	}
	if got := only(dl, 2); got != "info: firewall_mode is \"vm\": added anklume-firewall to domain anklume (ip 10.100.0.253)\n" {
		t.Errorf("info: %q", got)
	}
	// The firewall's eth0 keeps only mac filtering.
	if got := devString(fw.InstanceDevices()[:1]); got != "eth0{type=nic network=net-anklume name=eth0 ipv4.address=10.100.0.253 security.mac_filtering=true}" {
		t.Errorf("eth0: %s", got)
	}
	if got := devString(m.Machine("admin-ctl").InstanceDevices()); got != "eth0{type=nic network=net-anklume name=eth0 ipv4.address=10.100.0.1 security.mac_filtering=true security.ipv4_filtering=true security.ipv6_filtering=true}" {
		t.Errorf("admin-ctl eth0: %s", got)
	}
}

// §16 #32: a user-declared sys-firewall takes the place of the added
// machine and gets the profile; a listed profile is not repeated; legacy
// mode; N21 without an anklume domain.
func TestFirewallVMDeclared_16_32(t *testing.T) {
	y := `project_name: t
global:
  firewall_mode: vm
domains:
  net:
    subnet_id: 3
    machines:
      sys-firewall: {type: vm, ip: "10.100.3.253"}
  lab:
    subnet_id: 4
`
	m, dl := mustResolve(t, y, skip)
	fw := m.Machine("sys-firewall")
	if m.Firewall != fw || m.Machine("anklume-firewall") != nil || fw.AutoCreated {
		t.Fatal("declared firewall not used")
	}
	if got := strings.Join(fw.Profiles, ","); got != "default,firewall-multi-nic" {
		t.Errorf("profiles %s", got)
	}
	if got := devString(m.Domain("net").FirewallProfile.Devices); got != "eth1{type=nic network=net-lab name=eth1 ipv4.address=10.100.4.253}" {
		t.Errorf("NICs %s", got)
	}
	if len(dl) != 0 {
		t.Errorf("diags %s", render(dl))
	}

	y = `project_name: t
global:
  firewall_mode: vm
domains:
  anklume:
    subnet_id: 7
    machines:
      anklume-firewall: {type: vm, profiles: [firewall-multi-nic, default]}
`
	m, _ = mustResolve(t, y, skip)
	if got := strings.Join(m.Machine("anklume-firewall").Profiles, ","); got != "firewall-multi-nic,default" {
		t.Errorf("profiles %s", got)
	}

	// Legacy mode: the added firewall gets <base_subnet>.<id>.253.
	m, _ = mustResolve(t, "project_name: t\nglobal: {firewall_mode: vm, base_subnet: \"10.9\"}\ndomains: {anklume: {subnet_id: 2}}\n", skip)
	if got := ipOf(m, "anklume-firewall"); got != "10.9.2.253" {
		t.Errorf("legacy firewall ip %s", got)
	}

	// N21.
	m, dl = run(t, "project_name: t\nglobal:\n  firewall_mode: vm\ndomains: {a: {subnet_id: 1}}\n", skip)
	want := `infra.yml:3:18: global.firewall_mode: firewall_mode is "vm" but no "anklume" domain exists
  hint: add an "anklume" domain or declare a machine named anklume-firewall
`
	if m != nil || only(dl, 0) != want {
		t.Errorf("N21: got\n%s", render(dl))
	}
}

// §16 #16 (last part): gpu: true without a GPU device gets `gpu`
// {type: gpu} and the info line; with a profile gpu device it gets none;
// a user device named gpu of another type collides.
func TestGPUDevice_16_16(t *testing.T) {
	y := `project_name: t
global: {addressing: {}, gpu_policy: shared}
domains:
  ai:
    profiles:
      nv: {devices: {card: {type: gpu, gputype: physical}}}
      disky: {devices: {d: {type: disk, source: /x, path: /x}}}
    machines:
      plain: {gpu: true, devices: {x: {type: disk, source: /a, path: /a}}}
      viaprofile: {gpu: true, profiles: [default, nv]}
      own: {gpu: true, devices: {g0: {type: gpu}}}
      diskprofile: {profiles: [disky]}
      nogpu: {gpu: false}
`
	m, dl := mustResolve(t, y, skip)
	if got := devString(m.Machine("plain").Devices); got != "gpu{type=gpu} x{type=disk source=/a path=/a}" {
		t.Errorf("plain: %s", got)
	}
	if got := devString(m.Machine("viaprofile").Devices); got != "" {
		t.Errorf("viaprofile: %s", got)
	}
	if got := devString(m.Machine("own").Devices); got != "g0{type=gpu}" {
		t.Errorf("own: %s", got)
	}
	for n, want := range map[string]bool{"plain": true, "viaprofile": true, "own": true, "diskprofile": false, "nogpu": false} {
		if m.Machine(n).GPUAccess != want {
			t.Errorf("%s: GPUAccess %v", n, !want)
		}
	}
	if !m.Machine("nogpu").GPUSet || m.Machine("diskprofile").GPUSet {
		t.Error("GPUSet wrong")
	}
	if got := only(dl, 2); got != "info: machine \"plain\" has gpu: true and no GPU device; added device gpu (type gpu)\n" {
		t.Errorf("info: %q", got)
	}
	if got := devString(m.Machine("plain").HostVarsDevices()); got != "x{type=disk source=/a path=/a}" {
		t.Errorf("host_vars devices: %s", got)
	}

	y = `project_name: t
global: {addressing: {}}
domains:
  ai:
    machines:
      m:
        gpu: true
        devices:
          gpu: {type: disk, source: /a, path: /a}
`
	m, dl = run(t, y, skip)
	want := `infra.yml:9:11: domains.ai.machines.m.devices.gpu: generated device "gpu" collides with a device of the same name in devices` + "\n"
	if m != nil || only(dl, 0) != want {
		t.Errorf("collision: got\n%s", render(dl))
	}
}

// §16 #17: the AI auto-policy is appended once, one-way, and not when a
// policy already targets ai-tools.
func TestAIAutoPolicy_16_17(t *testing.T) {
	base := `project_name: t
global: {addressing: {}, ai_access_policy: exclusive, ai_access_default: pro}
domains:
  pro: {machines: {pro-ws: {}}}
  ai-tools: {machines: {llm: {}}}
network_policies:
  - {description: web, from: pro-ws, to: host, ports: [80, 80, 443], protocol: udp, x-note: n}
`
	m, _ := mustResolve(t, base, skip)
	if len(m.Policies) != 2 {
		t.Fatalf("policies: %d", len(m.Policies))
	}
	u, a := m.Policies[0], m.Policies[1]
	if u.Auto || u.Index != 0 || u.From.Kind != model.MachineEndpoint || u.From.IP.String() != "10.120.1.1" ||
		u.From.Domain != m.Domain("pro") || u.To.Kind != model.HostEndpoint || u.AllPorts ||
		strings.Join(u.Keys, ",") != "description,from,to,ports,protocol" || u.Protocol != "udp" {
		t.Errorf("user policy %+v", u)
	}
	if got := u.UniquePorts(); len(got) != 2 || got[0] != 80 || got[1] != 443 || len(u.Ports) != 3 {
		t.Errorf("ports %v %v", u.Ports, got)
	}
	if !a.Auto || a.Index != 1 || a.Description != "AI access: pro -> ai-tools (auto-created)" ||
		a.From.Kind != model.DomainEndpoint || a.From.Name != "pro" || a.To.Domain != m.Domain("ai-tools") ||
		!a.AllPorts || a.Bidirectional || strings.Join(a.Keys, ",") != "description,from,to,ports,bidirectional" {
		t.Errorf("auto policy %+v", a)
	}
	if d, mc, p := m.Summary(); d != 2 || mc != 2 || p != 2 {
		t.Errorf("summary %d %d %d", d, mc, p)
	}

	m, _ = mustResolve(t, base+"  - {from: pro, to: ai-tools, ports: [11434]}\n", skip)
	if len(m.Policies) != 2 || m.Policies[1].Auto {
		t.Errorf("auto policy added although one targets ai-tools")
	}
	m, _ = mustResolve(t, strings.Replace(base, "exclusive", "open", 1), skip)
	if len(m.Policies) != 1 {
		t.Errorf("open policy: %d policies", len(m.Policies))
	}
}

// §16 #18: shared volumes (domain consumers expand, machine entries
// override) and persistent data, in the §4.11 order. No device carries
// shift: Incus refuses it with the restricted disk paths of every anklume
// project (see package internal/hostdirs).
func TestSharedVolumesPersistentData_16_18(t *testing.T) {
	y := `project_name: t
global: {addressing: {}, persistent_data_base: /data}
shared_volumes:
  docs:
    consumers: {work: ro, w-vm: rw, other-m: ro}
  code:
    source: /src/code
    path: /code
    shift: false
    consumers: {w-vm: ro}
domains:
  work:
    machines:
      w-ct:
        persistent_data:
          home: {path: /home/u}
          ro: {path: /ro, readonly: true}
        storage_volumes:
          vol: {size: 1GiB, path: /vol}
          nopath: {pool: fast}
        devices: {mine: {type: disk, source: /m, path: /m, readonly: true}}
      w-vm: {type: vm, persistent_data: {p: {path: /p}}}
  other:
    machines:
      other-m: {}
      other-n: {}
`
	m, _ := mustResolve(t, y, skip)
	want := map[string]string{
		"w-ct": "sv-docs{type=disk source=/srv/anklume/shares/docs path=/shared/docs readonly=true} " +
			"pd-home{type=disk source=/data/work/w-ct/home path=/home/u} " +
			"pd-ro{type=disk source=/data/work/w-ct/ro path=/ro readonly=true} " +
			"vol{type=disk pool=default source=vol path=/vol} " +
			"mine{type=disk source=/m path=/m readonly=true}",
		"w-vm": "sv-docs{type=disk source=/srv/anklume/shares/docs path=/shared/docs} " +
			"sv-code{type=disk source=/src/code path=/code readonly=true} " +
			"pd-p{type=disk source=/data/work/w-vm/p path=/p}",
		"other-m": "sv-docs{type=disk source=/srv/anklume/shares/docs path=/shared/docs readonly=true}",
		"other-n": "",
	}
	for n, w := range want {
		if got := devString(m.Machine(n).Devices); got != w {
			t.Errorf("%s:\n%s\nwant\n%s", n, got, w)
		}
	}
	if got := devString(m.Machine("w-ct").HostVarsDevices()); strings.Contains(got, "vol{") {
		t.Errorf("host_vars devices include the storage volume: %s", got)
	}
	docs := m.SharedVolumes[0]
	var mounts []string
	for _, mt := range docs.Mounts {
		mounts = append(mounts, mt.Machine.Name+":"+map[bool]string{true: "ro", false: "rw"}[mt.ReadOnly])
	}
	if got := strings.Join(mounts, ","); got != "w-ct:ro,w-vm:rw,other-m:ro" {
		t.Errorf("mounts %s", got)
	}
	if !docs.Consumers[0].IsDomain || docs.Consumers[1].IsDomain {
		t.Errorf("consumers %+v", docs.Consumers)
	}
	sv := m.Machine("w-ct").StorageVolumes
	if len(sv) != 2 || sv[1].Pool != "fast" || sv[1].ResolvedPool != "fast" || sv[0].ResolvedPool != "default" || sv[0].Size != "1GiB" {
		t.Errorf("storage volumes %+v", sv)
	}
}

// ImageMap (§4.12): exact match, no chaining, mappings recorded.
func TestImageMap(t *testing.T) {
	y := `project_name: t
global: {addressing: {}, default_os_image: "images:debian/12"}
domains:
  w:
    machines:
      a: {}
      b: {os_image: "images:alpine/3.20"}
      c: {os_image: "local-debian"}
      d: {os_image: "images:ubuntu/24.04"}
`
	opts := host.Options{SkipHostSubnetCheck: true, ImageMap: map[string]string{
		"images:debian/12":   "local-debian",
		"local-debian":       "should-not-chain",
		"images:alpine/3.20": "local-alpine",
		"unused":             "x",
	}}
	m, _ := mustResolve(t, y, opts)
	want := map[string]string{"a": "local-debian", "b": "local-alpine", "c": "should-not-chain", "d": "images:ubuntu/24.04"}
	for n, w := range want {
		if got := m.Machine(n).Image; got != w {
			t.Errorf("%s: %s, want %s", n, got, w)
		}
	}
	var got []string
	for _, im := range m.ImageMappings {
		got = append(got, im.From+"="+im.To)
	}
	if s := strings.Join(got, ","); s != "images:alpine/3.20=local-alpine,images:debian/12=local-debian,local-debian=should-not-chain" {
		t.Errorf("mappings %s", s)
	}
	m, _ = mustResolve(t, "project_name: t\nglobal: {addressing: {}}\ndomains: {w: {machines: {a: {}}}}\n", skip)
	if m.Machine("a").Image != "images:debian/13" || m.ImageMappings != nil {
		t.Errorf("default image %s", m.Machine("a").Image)
	}
}

// InstanceConfig merge order: user config and limits, then anklume keys.
func TestInstanceConfig(t *testing.T) {
	y := `project_name: t
global: {addressing: {}}
domains:
  w:
    machines:
      a:
        config: {boot.autostart: false, limits.cpu: 2, security.nesting: true}
        boot_autostart: true
        boot_priority: 50
        snapshots_schedule: "0 2 * * *"
        snapshots_expiry: 24h
      b: {ephemeral: true}
`
	m, _ := mustResolve(t, y, skip)
	a := m.Machine("a")
	if got := kvString(a.InstanceConfig()); got != "boot.autostart=true limits.cpu=2 security.nesting=true boot.autostart.priority=50 snapshots.schedule=0 2 * * * snapshots.expiry=24H security.protection.delete=true" {
		t.Errorf("a: %s", got)
	}
	if got := kvString(a.Config); got != "boot.autostart=false limits.cpu=2 security.nesting=true" {
		t.Errorf("InstanceConfig changed Config: %s", got)
	}
	if a.Config[1].Kind != model.Int || a.Config[2].Kind != model.Bool || a.Config[0].Kind != model.Bool {
		t.Errorf("kinds %+v", a.Config)
	}
	if got := kvString(m.Machine("b").InstanceConfig()); got != "security.protection.delete=false" {
		t.Errorf("b: %s", got)
	}
	if *a.BootPriority != 50 || !*a.BootAutostart || m.Machine("b").BootAutostart != nil {
		t.Error("boot fields")
	}
}
