package ansible

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/yamlw"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/examples"
)

// compile resolves the PSOT src with the test host options.
func compile(t *testing.T, src string) *model.Infra {
	t.Helper()
	fsys := fstest.MapFS{"infra.yml": {Data: []byte(src)}}
	opts := host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
	res, dl, err := compiler.Compile(fsys, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, opts)
	if err != nil || res == nil {
		t.Fatalf("compile: %v\n%v", err, dl)
	}
	return res.Model
}

// node parses YAML text and returns the value at the key path (mapping
// keys), or fails the test.
func node(t *testing.T, text []byte, path ...string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	n := doc.Content[0]
	for _, k := range path {
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			t.Fatalf("no key %q (path %v) in:\n%s", k, path, text)
		}
		n = next
	}
	return n
}

// keys returns the keys of the mapping at path, in order.
func keys(t *testing.T, text []byte, path ...string) []string {
	t.Helper()
	n := node(t, text, path...)
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, n.Content[i].Value)
	}
	return out
}

// file returns the file at p among fs.
func file(t *testing.T, fs []tree.File, p string) tree.File {
	t.Helper()
	for _, f := range fs {
		if f.Path == p {
			return f
		}
	}
	t.Fatalf("no file %s", p)
	return tree.File{}
}

// full is a zone-mode PSOT whose machine "full" sets every machine field,
// and whose machine "bare" sets nothing.
const full = `project_name: demo
global:
  addressing: {base_octet: 10, zone_base: 100}
  default_os_image: images:debian/13
  default_connection: community.general.incus
  default_user: root
  resource_policy: {}
domains:
  work:
    description: Work
    trust_level: trusted
    ai_provider: local-first
    profiles:
      big:
        description: Big
        config: {limits.processes: 500, security.nesting: true}
        devices:
          data: {type: disk, source: /srv/data, path: /data, readonly: true}
    machines:
      full:
        description: Every field
        type: lxc
        ip: 10.110.0.7
        ephemeral: true
        gpu: true
        profiles: [default, big]
        config:
          user.note: hello
          boot.host_shutdown_timeout: 30
          security.privileged: false
        devices:
          usb1: {type: usb, vendorid: "046d"}
        storage_volumes:
          vol: {pool: default, size: 10GiB, path: /vol}
        roles: [base_system, ollama_server]
        os_image: images:debian/12
        weight: 2
        boot_autostart: true
        boot_priority: 10
        snapshots_schedule: "@daily"
        snapshots_expiry: 2w
        persistent_data:
          home: {path: /home/user}
        target: node1
        state: running
        export_apps: [firefox]
      bare: {}
      off:
        gpu: false
        roles: []
shared_volumes:
  docs:
    consumers: {work: ro}
network_policies:
  - {description: web, from: work, to: host, ports: [80, 443], protocol: tcp, x-note: ignored}
  - {from: host, to: bare, bidirectional: true}
`

// TestHostVarsKeys: host_vars key names and order for a machine that sets
// every field, including the order inside instance_config (user keys,
// then the generated limits) and instance_devices (sv-, pd-, user; no
// storage-volume or gpu device); for a machine that sets nothing, exactly
// the always-present keys; an explicit gpu: false and roles: [] are
// written (SPEC.md §16 #42, §6.5).
func TestHostVarsKeys(t *testing.T) {
	m := compile(t, full)
	tests := []struct {
		machine string
		want    []string
	}{
		{"full", []string{"instance_name", "instance_type", "instance_description", "instance_domain",
			"instance_ephemeral", "instance_os_image", "instance_ip", "instance_gpu", "instance_profiles",
			"instance_config", "instance_devices", "instance_storage_volumes", "instance_roles",
			"instance_boot_autostart", "instance_boot_priority", "instance_snapshots_schedule",
			"instance_snapshots_expiry"}},
		// resource_policy generates limits, so instance_config is there;
		// the shared volume gives an sv- device.
		{"bare", []string{"instance_name", "instance_type", "instance_description", "instance_domain",
			"instance_ephemeral", "instance_os_image", "instance_ip", "instance_config", "instance_devices"}},
		{"off", []string{"instance_name", "instance_type", "instance_description", "instance_domain",
			"instance_ephemeral", "instance_os_image", "instance_ip", "instance_gpu", "instance_config",
			"instance_devices", "instance_roles"}},
	}
	for _, tt := range tests {
		t.Run(tt.machine, func(t *testing.T) {
			text := yamlw.Marshal(HostVars(m.Machine(tt.machine)))
			if got := keys(t, text); !slices.Equal(got, tt.want) {
				t.Errorf("keys\n got %v\nwant %v\n%s", got, tt.want, text)
			}
		})
	}

	text := yamlw.Marshal(HostVars(m.Machine("full")))
	if got, want := keys(t, text, "instance_config"), []string{"user.note", "boot.host_shutdown_timeout",
		"security.privileged", "limits.cpu.allowance", "limits.memory", "limits.memory.enforce"}; !slices.Equal(got, want) {
		t.Errorf("instance_config keys %v, want %v", got, want)
	}
	if got, want := keys(t, text, "instance_devices"), []string{"sv-docs", "pd-home", "usb1"}; !slices.Equal(got, want) {
		t.Errorf("instance_devices keys %v, want %v", got, want)
	}
	if got, want := keys(t, text, "instance_devices", "pd-home"), []string{"type", "source", "path"}; !slices.Equal(got, want) {
		t.Errorf("pd-home keys %v, want %v", got, want)
	}
	// Values keep the YAML kind they were written with; generated values
	// are strings.
	for _, want := range []string{
		"  boot.host_shutdown_timeout: 30\n", "  security.privileged: false\n", "    vendorid: 046d\n",
		"  limits.memory.enforce: soft\n", "instance_gpu: true\n",
		"instance_boot_priority: 10\n", "instance_snapshots_schedule: '@daily'\n",
		"instance_storage_volumes:\n  vol:\n    pool: default\n    size: 10GiB\n    path: /vol\n",
		"instance_profiles:\n  - default\n  - big\n", "instance_os_image: images:debian/12\n",
		"instance_ephemeral: true\n",
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("host_vars/full.yml lacks %q:\n%s", want, text)
		}
	}
	off := string(yamlw.Marshal(HostVars(m.Machine("off"))))
	for _, want := range []string{"instance_gpu: false\n", "instance_roles: []\n"} {
		if !strings.Contains(off, want) {
			t.Errorf("host_vars/off.yml lacks %q:\n%s", want, off)
		}
	}
	// Variables added after v1 stay out (§6.5).
	for _, bad := range []string{"target", "state", "egress", "weight", "export_apps", "user.anklume"} {
		if strings.Contains(string(text), bad) {
			t.Errorf("host_vars/full.yml mentions %q:\n%s", bad, text)
		}
	}
}

// TestHostVarsNothingGenerated: without resource_policy or shared volumes
// a machine that sets nothing gets exactly the keys that are always
// present (§16 #42).
func TestHostVarsNothingGenerated(t *testing.T) {
	m := compile(t, "project_name: p\nglobal: {addressing: {}}\ndomains:\n  d:\n    machines:\n      m: {}\n")
	text := yamlw.Marshal(HostVars(m.Machine("m")))
	want := "instance_name: m\ninstance_type: lxc\ninstance_description: ''\ninstance_domain: d\n" +
		"instance_ephemeral: false\ninstance_os_image: images:debian/13\ninstance_ip: 10.120.0.1\n"
	if string(text) != want {
		t.Errorf("host_vars\n got %q\nwant %q", text, want)
	}
}

// TestGroupVars: key names and order of group_vars/<d>.yml, the profiles
// as written, and domain_trust_level omitted when unset (legacy mode)
// (§16 #42).
func TestGroupVars(t *testing.T) {
	m := compile(t, full)
	text := yamlw.Marshal(GroupVars(m.Domain("work")))
	want := []string{"domain_name", "domain_description", "domain_ephemeral", "domain_trust_level",
		"domain_ai_provider", "domain_ai_sanitize", "incus_project", "incus_network", "subnet_id", "incus_profiles"}
	if got := keys(t, text); !slices.Equal(got, want) {
		t.Errorf("keys\n got %v\nwant %v", got, want)
	}
	for _, s := range []string{
		"domain_ai_sanitize: true\n",
		"incus_network:\n  name: net-work\n  subnet: 10.110.0.0/24\n  gateway: 10.110.0.254\nsubnet_id: 0\n",
		"incus_profiles:\n  big:\n    description: Big\n    config:\n      limits.processes: 500\n      security.nesting: true\n" +
			"    devices:\n      data:\n        type: disk\n        source: /srv/data\n        path: /data\n        readonly: true\n",
	} {
		if !strings.Contains(string(text), s) {
			t.Errorf("group_vars/work.yml lacks %q:\n%s", s, text)
		}
	}

	legacy := compile(t, legacyPSOT)
	text = yamlw.Marshal(GroupVars(legacy.Domain("lab")))
	want = []string{"domain_name", "domain_description", "domain_ephemeral", "domain_ai_provider",
		"domain_ai_sanitize", "incus_project", "incus_network", "subnet_id"}
	if got := keys(t, text); !slices.Equal(got, want) {
		t.Errorf("legacy keys\n got %v\nwant %v", got, want)
	}
	if !strings.Contains(string(text), "subnet: 10.50.7.0/24\n") || !strings.Contains(string(text), "subnet_id: 7\n") {
		t.Errorf("legacy group_vars:\n%s", text)
	}
}

// legacyPSOT has no addressing: no automatic IP and no trust level.
const legacyPSOT = `project_name: old
global:
  base_subnet: "10.50"
domains:
  lab:
    subnet_id: 7
    machines:
      lab-a: {ip: 10.50.7.10}
      lab-b: {}
  empty:
    subnet_id: 8
`

// TestAllVars: key names and order of group_vars/all.yml; network
// policies as written, x- keys removed, the auto policy included;
// incus_all_images sorted and unique; network_policies and the psot_ keys
// omitted when empty (§16 #42, #43).
func TestAllVars(t *testing.T) {
	m := compile(t, full)
	text := yamlw.Marshal(AllVars(m))
	want := []string{"project_name", "addressing", "default_os_image", "psot_default_connection",
		"psot_default_user", "incus_all_images", "network_policies"}
	if got := keys(t, text); !slices.Equal(got, want) {
		t.Errorf("keys\n got %v\nwant %v", got, want)
	}
	for _, s := range []string{
		"addressing:\n  base_octet: 10\n  zone_base: 100\n",
		"incus_all_images:\n  - images:debian/12\n  - images:debian/13\n",
		"network_policies:\n  - description: web\n    from: work\n    to: host\n    ports:\n      - 80\n      - 443\n    protocol: tcp\n" +
			"  - from: host\n    to: bare\n    bidirectional: true\n",
	} {
		if !strings.Contains(string(text), s) {
			t.Errorf("all.yml lacks %q:\n%s", s, text)
		}
	}
	if strings.Contains(string(text), "x-note") {
		t.Errorf("all.yml has an x- key:\n%s", text)
	}

	legacy := compile(t, legacyPSOT)
	text = yamlw.Marshal(AllVars(legacy))
	if got, want := keys(t, text), []string{"project_name", "base_subnet", "default_os_image", "incus_all_images"}; !slices.Equal(got, want) {
		t.Errorf("legacy keys %v, want %v\n%s", got, want, text)
	}
	if !strings.Contains(string(text), "base_subnet: '10.50'\n") || !strings.Contains(string(text), "incus_all_images:\n  - images:debian/13\n") {
		t.Errorf("legacy all.yml:\n%s", text)
	}

	ai := compile(t, `project_name: ai
global:
  addressing: {}
  ai_access_policy: exclusive
  ai_access_default: work
domains:
  work:
    machines: {w1: {}}
  ai-tools:
    machines: {a1: {}}
`)
	text = yamlw.Marshal(AllVars(ai))
	wantPolicy := "network_policies:\n  - description: 'AI access: work -> ai-tools (auto-created)'\n    from: work\n    to: ai-tools\n" +
		"    ports: all\n    bidirectional: false\n"
	if !strings.Contains(string(text), wantPolicy) {
		t.Errorf("the auto policy is missing:\n%s", text)
	}
}

// TestInventory: a machine with an IP has ansible_host, one without (legacy
// mode) a null entry, and a domain without machines a null hosts (§16
// #42).
func TestInventory(t *testing.T) {
	m := compile(t, legacyPSOT)
	tests := []struct{ domain, want string }{
		{"lab", "all:\n  children:\n    lab:\n      hosts:\n        lab-a:\n          ansible_host: 10.50.7.10\n        lab-b:\n"},
		{"empty", "all:\n  children:\n    empty:\n      hosts:\n"},
	}
	for _, tt := range tests {
		if got := string(yamlw.Marshal(Inventory(m.Domain(tt.domain)))); got != tt.want {
			t.Errorf("inventory/%s.yml\n got %q\nwant %q", tt.domain, got, tt.want)
		}
	}
	hv := string(yamlw.Marshal(HostVars(m.Machine("lab-b"))))
	if strings.Contains(hv, "instance_ip") {
		t.Errorf("a machine without IP has instance_ip:\n%s", hv)
	}
}

// TestManagedOrder: the managed files come in the write order of §6.2, as
// tree.YAML managed files, and a disabled domain produces none.
func TestManagedOrder(t *testing.T) {
	m := compile(t, `project_name: p
global: {addressing: {}}
domains:
  b:
    machines: {b1: {}, b2: {}}
  off:
    enabled: false
    machines: {o1: {}}
  a:
    machines: {a1: {}}
`)
	var got []string
	for _, f := range Managed(m) {
		got = append(got, f.Path)
		if f.Class != tree.Managed || f.Kind != tree.YAML {
			t.Errorf("%s: class %v kind %v", f.Path, f.Class, f.Kind)
		}
	}
	want := []string{"group_vars/all.yml",
		"inventory/b.yml", "group_vars/b.yml", "host_vars/b1.yml", "host_vars/b2.yml",
		"inventory/a.yml", "group_vars/a.yml", "host_vars/a1.yml"}
	if !slices.Equal(got, want) {
		t.Errorf("managed files\n got %v\nwant %v", got, want)
	}
	var fw []string
	for _, f := range Framework(m) {
		fw = append(fw, f.Path)
		if f.Class != tree.Framework {
			t.Errorf("%s is not a framework file", f.Path)
		}
	}
	if !slices.IsSorted(fw) {
		t.Errorf("framework files are not sorted: %v", fw)
	}
	for _, p := range []string{SchemaPath, AnsibleCfgPath, ConnectionPluginPath, SitePath,
		"roles/base_system/tasks/main.yml", "roles/_shared/tasks/main.yml", "roles/incus_nftables/tasks/main.yml"} {
		if !slices.Contains(fw, p) {
			t.Errorf("framework file %s is missing", p)
		}
	}
}

// TestNoConnectionVariables: no inventory, group_vars or host_vars file of
// any example, nor of the test PSOTs, sets ansible_connection or
// ansible_user (§16 #42, §6.5).
func TestNoConnectionVariables(t *testing.T) {
	srcs := map[string]string{"full": full, "legacy": legacyPSOT}
	for _, name := range examples.Names() {
		data, err := examples.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		srcs[name] = string(data)
	}
	for name, src := range srcs {
		for _, f := range Managed(compile(t, src)) {
			for _, bad := range []string{"ansible_connection", "ansible_user"} {
				if bytes.Contains(f.Content, []byte(bad)) {
					t.Errorf("%s: %s contains %s", name, f.Path, bad)
				}
			}
		}
	}
}

// TestFrameworkHeader writes the tree of every example and checks that
// every framework file on disk carries the header of §6.2 (§16 #34), that
// ansible.cfg holds the settings of §6.7 item 1, that the schema copy is
// JSON with the header member, and that a second plan changes nothing.
func TestFrameworkHeader(t *testing.T) {
	for _, name := range examples.Names() {
		t.Run(name, func(t *testing.T) {
			data, err := examples.Read(name)
			if err != nil {
				t.Fatal(err)
			}
			m := compile(t, string(data))
			dir := t.TempDir()
			files := Files(m)
			plan, err := tree.NewPlan(dir, files, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := plan.Apply(io.Discard, tree.Options{}); err != nil {
				t.Fatal(err)
			}
			for _, f := range Framework(m) {
				got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
				if err != nil {
					t.Fatal(err)
				}
				if r, rest, ok := strings.Cut(strings.TrimPrefix(f.Path, "roles/"), "/"); ok && strings.HasPrefix(f.Path, "roles/") && strings.HasPrefix(rest, "files/") {
					// §6.2: files under roles/*/files/ carry no header; the
					// role's tasks/main.yml does.
					tasks, err := os.ReadFile(filepath.Join(dir, "roles", r, "tasks", "main.yml"))
					if err != nil || !tree.HasHeader("roles/"+r+"/tasks/main.yml", tasks) {
						t.Errorf("%s: its role's tasks/main.yml does not carry the header", f.Path)
					}
					continue
				}
				if !tree.HasHeader(f.Path, got) {
					t.Errorf("%s does not carry the header:\n%.200s", f.Path, got)
				}
			}
			again, err := tree.NewPlan(dir, Files(m), false)
			if err != nil {
				t.Fatal(err)
			}
			if c, u, _ := again.Counts(); c != 0 || u != 0 {
				t.Errorf("second plan: %d to create, %d to update", c, u)
			}
		})
	}
	cfg := string(tree.AddHeader(AnsibleCfgPath, file(t, Files(compile(t, full)), AnsibleCfgPath).Content))
	wantCfg := tree.Header + "\n[defaults]\ninventory = inventory/\nroles_path = roles_custom/:roles/:roles_vendor/\n" +
		"connection_plugins = connection_plugins\nhost_key_checking = False\nretry_files_enabled = False\n"
	if cfg != wantCfg {
		t.Errorf("ansible.cfg\n got %q\nwant %q", cfg, wantCfg)
	}
}
