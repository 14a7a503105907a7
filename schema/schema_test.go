package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// compile compiles a schema document with jsonschema v6, as any other
// 2020-12 validator would.
func compile(t *testing.T, id string, doc []byte) *jsonschema.Schema {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id, v); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(id)
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	return sch
}

// instance reads YAML with yaml.v3 and turns it into a JSON value, without
// any of anklume's own checks.
func instance(t *testing.T, src string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(normalize(v))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	}
	return v
}

// full sets every key of SPEC.md §2.3–§2.11, with x- keys and anchors.
const full = `# yaml-language-server: $schema=.anklume/infra.schema.json
format_version: 1
project_name: demo
x-defaults: &machine
  type: lxc
  roles: [base_system]
x-notes: anything at all
global:
  addressing: {base_octet: 10, zone_base: 100, zone_step: 10, x-n: 1}
  base_subnet: "10.100"
  default_os_image: images:debian/13
  default_connection: community.general.incus
  default_user: admin
  gpu_policy: shared
  firewall_mode: host
  ai_access_policy: exclusive
  ai_access_default: pro
  ai_vram_flush: true
  nesting_prefix: true
  resource_policy:
    host_reserve: {cpu: "20%", memory: 4GiB}
    mode: proportional
    cpu_mode: allowance
    memory_enforce: soft
    overcommit: false
    x-n: 1
  shared_volumes_base: /srv/anklume/shares
  persistent_data_base: /srv/anklume/data
  host_isolation: true
  storage_pool: default
  desktop: {sway: {anything: [1, 2]}}
  x-n: 1
domains:
  pro:
    description: Work
    enabled: true
    subnet_id: 1
    trust_level: trusted
    ephemeral: false
    egress: true
    ai_provider: local
    ai_sanitize: always
    file_portal: {allowed_paths: [/srv/x], read_only: true, x-n: 1}
    x-notes: hi
    profiles:
      nvidia-compute:
        description: GPU
        config: {limits.memory: 4GiB, security.nesting: true, limits.cpu: 2}
        devices: {gpu: {type: gpu, gputype: physical}}
        x-n: 1
    machines:
      pro-dev:
        <<: *machine
        description: dev box
        type: vm
        ip: "10.110.1.1"
        ephemeral: false
        gpu: true
        profiles: [default, nvidia-compute]
        config: {limits.cpu: "2"}
        devices: {data: {type: disk, path: /data, source: /srv/data}}
        storage_volumes: {vol1: {pool: default, size: 10GiB, path: /vol1, x-n: 1}}
        roles: [base_system, community.general.thing]
        os_image: images:debian/13
        weight: 2
        boot_autostart: true
        boot_priority: 50
        snapshots_schedule: "0 2 * * *"
        snapshots_expiry: 30d
        persistent_data: {projects: {path: /home/user/projects, readonly: false, x-n: 1}}
        target: node1
        state: running
        export_apps: [firefox]
        services: {mcp: [anything]}
        x-notes: hi
      pro-mail: {}
  empty:
    machines:
network_policies:
  - description: mail
    from: pro
    to: host
    ports: [25, 587]
    protocol: tcp
    bidirectional: false
    x-notes: hi
  - {from: host, to: pro-dev, ports: all}
shared_volumes:
  code:
    source: /srv/code
    path: /shared/code
    shift: false
    propagate: false
    consumers: {pro: rw, pro-dev: ro}
    x-n: 1
`

func TestDocument(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(JSON(), &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" || doc["$id"] != ID {
		t.Errorf("$schema/$id = %v / %v", doc["$schema"], doc["$id"])
	}
	var re bytes.Buffer
	if err := json.Indent(&re, JSON(), "", "  "); err != nil || !bytes.Equal(bytes.TrimSpace(re.Bytes()), bytes.TrimSpace(JSON())) {
		t.Errorf("the document is not indented by 2 spaces")
	}
	JSON()[0] = 'x'
	if JSON()[0] != '{' {
		t.Errorf("JSON returns the embedded bytes themselves")
	}
	compile(t, ID, JSON())
}

// §3.3 item 1: every key has a description; every fixed mapping refuses
// unknown keys and accepts x- keys; name maps use propertyNames.
func TestEveryKeyDescribed(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(JSON(), &doc); err != nil {
		t.Fatal(err)
	}
	defs := doc["$defs"].(map[string]any)
	objects := map[string]map[string]any{"(root)": doc}
	for name, d := range defs {
		d := d.(map[string]any)
		if _, ok := d["description"].(string); !ok {
			t.Errorf("$defs/%s has no description", name)
		}
		// A device has a fixed "type" key but free-form properties.
		if _, ok := d["properties"]; ok && name != "device" {
			objects[name] = d
		}
	}
	for name, o := range objects {
		if o["additionalProperties"] != false {
			t.Errorf("%s: additionalProperties is not false", name)
		}
		pp, _ := o["patternProperties"].(map[string]any)
		if _, ok := pp["^x-"]; !ok || len(pp) != 1 {
			t.Errorf("%s: patternProperties is not {^x-}", name)
		}
		for k, p := range o["properties"].(map[string]any) {
			if s, _ := p.(map[string]any)["description"].(string); s == "" {
				t.Errorf("%s.%s has no description", name, k)
			}
		}
	}
	for _, name := range []string{"domains", "machines", "profiles", "sharedVolumes", "storageVolumes", "persistentData"} {
		if _, ok := defs[name].(map[string]any)["propertyNames"]; !ok {
			t.Errorf("$defs/%s has no propertyNames", name)
		}
	}
}

// §16 #25: an independent use of the schema accepts a full file with x-
// keys and rejects an unknown key.
func TestIndependentValidation(t *testing.T) {
	sch := compile(t, ID, JSON())
	cases := []struct {
		name string
		src  string
		ok   bool
	}{
		{"full file with x- keys", full, true},
		{"minimal", "project_name: a\nglobal: {}\ndomains:\n", true},
		{"null optional keys", "project_name: a\nglobal: {addressing: ~, resource_policy: ~}\ndomains: {w: {machines: {m: {ip: ~, type: ~}}, trust_level: ~}}\nnetwork_policies: ~\n", true},
		{"unknown key", strings.Replace(full, "        type: vm\n", "        tpye: vm\n", 1), false},
		{"unknown root key", full + "domain: {}\n", false},
		{"missing project_name", "global: {}\ndomains: {}\n", false},
		{"x- domain name", "project_name: a\nglobal: {}\ndomains: {x-d: {}}\n", false},
		{"reserved domain", "project_name: a\nglobal: {}\ndomains: {default: {}}\n", false},
		{"digits machine", "project_name: a\nglobal: {}\ndomains: {d: {machines: {\"12\": {}}}}\n", false},
		{"profile default", "project_name: a\nglobal: {}\ndomains: {d: {profiles: {default: {}}}}\n", false},
		{"config key", "project_name: a\nglobal: {}\ndomains: {d: {machines: {m: {config: {volatile.x: a}}}}}\n", false},
		{"ports 80", "project_name: a\nglobal: {}\ndomains: {}\nnetwork_policies: [{from: a, to: b, ports: 80}]\n", false},
		{"resource_policy false", "project_name: a\nglobal: {resource_policy: false}\ndomains: {}\n", false},
		{"resource_policy true", "project_name: a\nglobal: {resource_policy: true}\ndomains: {}\n", true},
		{"format_version 2", "format_version: 2\nproject_name: a\nglobal: {}\ndomains: {}\n", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := sch.Validate(instance(t, tc.src))
			if (err == nil) != tc.ok {
				t.Errorf("valid = %v, want %v: %v", err == nil, tc.ok, err)
			}
		})
	}
}

// §3.3 item 2: the parts of directory mode.
func TestParts(t *testing.T) {
	cases := []struct {
		part string
		src  string
		ok   bool
	}{
		{"base", "format_version: 1\nproject_name: a\nglobal: {addressing: {}}\nshared_volumes: {s: {consumers: {d: ro}}}\nx-a: 1\n", true},
		{"base", "project_name: a\nglobal: {}\ndomains: {}\n", false},
		{"base", "global: {}\n", false},
		{"domains", "work: {machines: {web: {type: vm}}}\npro: {}\n", true},
		{"domains", "", true},
		{"domains", "work: {tpye: x}\n", false},
		{"domains", "x-work: {}\n", false},
		{"policies", "network_policies: [{from: a, to: b}]\nx-a: 1\n", true},
		{"policies", "", false},
		{"policies", "{}\n", true},
		{"policies", "project_name: a\n", false},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%s-%d", tc.part, i), func(t *testing.T) {
			b, err := Part(tc.part)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("$schema = %v", doc["$schema"])
			}
			if !bytes.Contains(b, []byte("\n  \"$defs\": {\n    \"")) || bytes.Contains(b, []byte(`\u003e`)) {
				t.Errorf("part is not indented by 2 spaces or escapes >")
			}
			sch := compile(t, ID+":"+tc.part, b)
			var inst any
			if tc.src != "" {
				inst = instance(t, tc.src)
			}
			if err := sch.Validate(inst); (err == nil) != tc.ok {
				t.Errorf("valid = %v, want %v: %v", err == nil, tc.ok, err)
			}
		})
	}
	if _, err := Part("nope"); err == nil || !strings.Contains(err.Error(), `unknown schema part "nope"`) {
		t.Errorf("Part(nope) error = %v", err)
	}
}
