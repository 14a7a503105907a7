package structure

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/load"
)

// check parses src as infra.yml and runs stage S1 on it.
func check(t *testing.T, src string) (diag.List, load.NodeSet, *load.Node) {
	t.Helper()
	root, dl := load.Parse([]byte(src), "infra.yml", 0)
	if root == nil {
		t.Fatalf("parse failed: %v", dl)
	}
	out, bad := Check(root)
	return out, bad, root
}

// render prints diagnostics as `validate` does, hints included.
func render(dl diag.List) []string {
	var out []string
	for _, d := range dl {
		s := d.String()
		if d.Hint != "" {
			s += "\n  hint: " + d.Hint
		}
		out = append(out, s)
	}
	return out
}

// Document builders; the comment of each gives where the inserted line
// starts.

// root inserts lines at the top level of a valid document (line 4, col 1).
func root(lines string) string {
	return "project_name: demo\nglobal: {}\ndomains: {}\n" + lines + "\n"
}

// glob inserts one line under global: (line 3, col 3).
func glob(line string) string {
	return "project_name: demo\nglobal:\n  " + line + "\ndomains: {}\n"
}

// dom inserts one line in domain "work" (line 6, col 5).
func dom(line string) string {
	return "project_name: demo\nglobal:\n  addressing: {}\ndomains:\n  work:\n    " + line + "\n"
}

// mach inserts one line in machine "web" of domain "work" (line 8, col 9).
func mach(line string) string {
	return "project_name: demo\nglobal:\n  addressing: {}\ndomains:\n  work:\n    machines:\n      web:\n        " + line + "\n"
}

// pol inserts one policy entry (line 5, col 5).
func pol(entry string) string {
	return "project_name: demo\nglobal: {}\ndomains: {}\nnetwork_policies:\n  - " + entry + "\n"
}

// vol inserts one line in shared volume "sv" (line 5, col 5), after which
// consumers are declared unless the line declares them.
func vol(line string) string {
	s := "project_name: demo\nglobal: {}\ndomains: {}\nshared_volumes:\n  sv:\n    " + line + "\n"
	if !strings.HasPrefix(line, "consumers") {
		s += "    consumers: {work: ro}\n"
	}
	return s
}

const (
	nameRules = ` (lowercase letters, digits and "-"; must start and end with a letter or digit; at most 63 characters)`
	decimal   = "must be a decimal integer\n  hint: " + hintDecimal
	yamlHint  = "\n  hint: " + hintYAML12
	xHint     = "\n  hint: " + hintXName
)

type tcase struct {
	name string
	src  string
	want []string // full rendered diagnostics; nil means valid
}

func runCases(t *testing.T, cases []tcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dl, _, _ := check(t, tc.src)
			got := render(dl)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("source:\n%s\ngot:\n%s\nwant:\n%s", tc.src, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			independent(t, tc.src, dl)
		})
	}
}

// §16 #1, V1: the three required keys, all reported at 1:1 of the root.
func TestRequiredRootKeys(t *testing.T) {
	three := []string{
		`infra.yml:1:1: (root): missing required key "domains"`,
		`infra.yml:1:1: (root): missing required key "global"`,
		`infra.yml:1:1: (root): missing required key "project_name"`,
	}
	runCases(t, []tcase{
		{"item1 empty mapping", "{}\n", three},
		{"empty document reads as an empty mapping", "# nothing\n", three},
		{"comment first still anchors at 1:1", "# c\n\nglobal: {}\n", []string{three[0], three[2]}},
		{"V1 one missing", "project_name: a\nglobal: {}\n", three[0:1]},
		{"valid minimal", "project_name: a\nglobal: {}\ndomains: {}\n", nil},
		{"domains null is allowed", "project_name: a\nglobal: {}\ndomains:\n", nil},
		{"root not a mapping", "- a\n", []string{`infra.yml:1:1: (root): must be a mapping, got list`}},
		{"null project_name is a type error", "project_name:\nglobal: {}\ndomains: {}\n",
			[]string{`infra.yml:1:14: project_name: must be a string, got null`}},
		{"null global is a type error", "project_name: a\nglobal: ~\ndomains: {}\n",
			[]string{`infra.yml:2:9: global: must be a mapping, got null`}},
	})
}

// §16 #3, #76, §2.12: unknown keys at the key position, with the
// did-you-mean rule of §3.4.
func TestUnknownKeys(t *testing.T) {
	runCases(t, []tcase{
		{"item3 tpye", mach("tpye: vm"), []string{
			"infra.yml:8:9: domains.work.machines.web.tpye: unknown key \"tpye\"\n  hint: did you mean \"type\"?"}},
		{"known type passes", mach("type: vm"), nil},
		{"no suggestion lists allowed keys", pol("{from: a, to: b, zzzzzzzz: 1}"), []string{
			"infra.yml:5:22: network_policies[0].zzzzzzzz: unknown key \"zzzzzzzz\"\n  hint: allowed keys: bidirectional, description, from, ports, protocol, to"}},
		{"item76 7 code points distance 2", dom("enabxxd: true"), []string{
			"infra.yml:6:5: domains.work.enabxxd: unknown key \"enabxxd\"\n  hint: did you mean \"enabled\"?"}},
		{"item76 7 code points distance 3", dom("enaxxxd: true"), []string{
			"infra.yml:6:5: domains.work.enaxxxd: unknown key \"enaxxxd\"\n  hint: allowed keys: ai_provider, ai_sanitize, description, egress, enabled, ephemeral, file_portal, machines, profiles, subnet_id, target, trust_level"}},
		{"item76 7 code points counted as runes, not bytes", dom("énàblëd: true"), []string{
			"infra.yml:6:5: domains.work[\"énàblëd\"]: unknown key \"énàblëd\"\n  hint: allowed keys: ai_provider, ai_sanitize, description, egress, enabled, ephemeral, file_portal, machines, profiles, subnet_id, target, trust_level"}},
		{"item76 9 code points distance 3", dom("éphémèral: true"), []string{
			"infra.yml:6:5: domains.work[\"éphémèral\"]: unknown key \"éphémèral\"\n  hint: did you mean \"ephemeral\"?"}},
		{"tie goes to the byte-wise first key", mach("gp: true"), []string{
			"infra.yml:8:9: domains.work.machines.web.gp: unknown key \"gp\"\n  hint: did you mean \"gpu\"?"}},
		{"root unknown key", root("domain: {}"), []string{
			"infra.yml:4:1: domain: unknown key \"domain\"\n  hint: did you mean \"domains\"?"}},
		{"unknown key with null value is still unknown", glob("storage: ~"), []string{
			"infra.yml:3:3: global.storage: unknown key \"storage\"\n  hint: allowed keys: addressing, ai_access_default, ai_access_policy, ai_vram_flush, base_subnet, default_connection, default_os_image, default_user, desktop, firewall_mode, gpu_policy, host_isolation, nesting_prefix, persistent_data_base, resource_policy, shared_volumes_base, storage_pool"}},
		{"unknown key is not inspected inside", glob("adressing: {base_octet: 010}"), []string{
			"infra.yml:3:3: global.adressing: unknown key \"adressing\"\n  hint: did you mean \"addressing\"?"}},
	})
}

// §16 #4, §2.12: x- keys in fixed mappings are accepted and not inspected;
// free-form maps take any key; desktop and services are not inspected.
func TestExtensionKeys(t *testing.T) {
	runCases(t, []tcase{
		{"x- at root, anchors and junk inside", root("x-notes: {a: 010, b: [1.5], c: &d {type: docker}}"), nil},
		{"x- in global", glob("x-notes: 010"), nil},
		{"x- in domain", dom("x-notes: anything"), nil},
		{"x- in machine", mach("x-notes: {tpye: vm}"), nil},
		{"x- in policy", pol("{from: a, to: b, x-notes: hi}"), nil},
		{"x- in shared volume", vol("x-notes: hi"), nil},
		{"desktop not inspected", glob("desktop: {a: 010, b: 1.5, c: [x]}"), nil},
		{"services not inspected", mach("services: {mcp: [1.0, 0x10]}"), nil},
		{"config key x- is a config key", mach("config: {x-foo: [1]}"), []string{
			`infra.yml:8:25: domains.work.machines.web.config.x-foo: must be a string, integer or boolean, got list`}},
		{"device names are free-form", mach("devices: {X_Dev.1: {type: disk, path: /x, source: /y}}"), nil},
		{"merge key from an x- anchor", "x-m: &m {type: vm}\nproject_name: demo\nglobal: {}\ndomains:\n  work:\n    machines:\n      web: {<<: *m, ip: \"10.120.0.1\"}\n", nil},
		{"error in a merged value points at the alias", "x-m: &m {type: docker}\nproject_name: demo\nglobal: {}\ndomains:\n  work:\n    machines:\n      web: {<<: *m}\n", []string{
			`infra.yml:7:17: domains.work.machines.web.type: must be one of lxc, vm; got "docker"`}},
	})
}

// §16 #6, V2, V9, N4, N14, N25: names.
func TestNames(t *testing.T) {
	const ansibleHint = "\n  hint: " + hintAnsibleName
	domain := func(name string) string {
		return "project_name: demo\nglobal: {}\ndomains:\n  " + name + ": {}\n"
	}
	machine := func(name string) string {
		return "project_name: demo\nglobal: {}\ndomains:\n  work:\n    machines:\n      " + name + ": {}\n"
	}
	long := strings.Repeat("a", 64)
	var cases []tcase
	for _, ok := range []string{"a", "1", "a-b", "web01", strings.Repeat("a", 63)} {
		cases = append(cases, tcase{"domain ok " + ok, domain(ok), nil})
	}
	for _, bad := range []string{"A", "a_b", "a.b", "a b", "-a", "a-"} {
		path := diag.Path("domains").Key(bad).String()
		cases = append(cases, tcase{"domain bad " + bad, domain(`"` + bad + `"`), []string{
			"infra.yml:4:3: " + path + ": invalid domain name \"" + bad + "\"" + nameRules}})
	}
	cases = append(cases,
		tcase{"domain -a path is plain", domain("-a"), nil}, // placeholder, replaced below
		tcase{"N14 default", domain("default"), []string{`infra.yml:4:3: domains.default: domain name "default" is reserved`}},
		tcase{"N14 anklume-lock", domain("anklume-lock"), []string{`infra.yml:4:3: domains.anklume-lock: domain name "anklume-lock" is reserved`}},
		// Ansible's implicit groups and host: a domain is a group, a machine a host.
		tcase{"domain all", domain("all"), []string{"infra.yml:4:3: domains.all: domain name \"all\" is reserved by Ansible" + ansibleHint}},
		tcase{"domain ungrouped", domain("ungrouped"), []string{"infra.yml:4:3: domains.ungrouped: domain name \"ungrouped\" is reserved by Ansible" + ansibleHint}},
		tcase{"domain localhost", domain("localhost"), []string{"infra.yml:4:3: domains.localhost: domain name \"localhost\" is reserved by Ansible" + ansibleHint}},
		tcase{"machine all", machine("all"), []string{"infra.yml:6:7: domains.work.machines.all: machine name \"all\" is reserved by Ansible" + ansibleHint}},
		tcase{"machine ungrouped", machine("ungrouped"), []string{"infra.yml:6:7: domains.work.machines.ungrouped: machine name \"ungrouped\" is reserved by Ansible" + ansibleHint}},
		tcase{"machine localhost", machine("localhost"), []string{"infra.yml:6:7: domains.work.machines.localhost: machine name \"localhost\" is reserved by Ansible" + ansibleHint}},
		tcase{"N4 64 characters", domain(long), []string{`infra.yml:4:3: domains.` + long + `: domain name is 64 characters; the maximum is 63`}},
		tcase{"N25 domain", domain("x-web"), []string{`infra.yml:4:3: domains.x-web: invalid domain name "x-web": names starting with "x-" are reserved for extension keys` + xHint}},
		tcase{"V9 machine 1", machine("1"), []string{`infra.yml:6:7: domains.work.machines.1: invalid machine name "1": Incus refuses instance names made only of digits`}},
		tcase{"V9 machine 123", machine("123"), []string{`infra.yml:6:7: domains.work.machines.123: invalid machine name "123": Incus refuses instance names made only of digits`}},
		tcase{"machine web01 ok", machine("web01"), nil},
		tcase{"machine 64 characters", machine(long), []string{`infra.yml:6:7: domains.work.machines.` + long + `: invalid machine name "` + long + `"` + nameRules}},
		tcase{"machine Web", machine("Web"), []string{`infra.yml:6:7: domains.work.machines["Web"]: invalid machine name "Web"` + nameRules}},
		tcase{"N25 machine", machine("x-web"), []string{`infra.yml:6:7: domains.work.machines.x-web: invalid machine name "x-web": names starting with "x-" are reserved for extension keys` + xHint}},
		tcase{"N25 profile", dom("profiles: {x-web: {}}"), []string{`infra.yml:6:16: domains.work.profiles.x-web: invalid profile name "x-web": names starting with "x-" are reserved for extension keys` + xHint}},
		tcase{"N9 profile default", dom("profiles: {default: {}}"), []string{"infra.yml:6:16: domains.work.profiles.default: a domain profile cannot be named \"default\"\n  hint: " + hintProfile}},
		tcase{"profile ok", dom("profiles: {nvidia-compute: {devices: {gpu: {type: gpu}}}}"), nil},
		tcase{"profile Bad", dom("profiles: {P: {}}"), []string{`infra.yml:6:16: domains.work.profiles["P"]: invalid profile name "P"` + nameRules}},
		tcase{"N25 shared volume", "project_name: demo\nglobal: {}\ndomains: {}\nshared_volumes:\n  x-web: {consumers: {a: ro}}\n", []string{`infra.yml:5:3: shared_volumes.x-web: invalid volume name "x-web": names starting with "x-" are reserved for extension keys` + xHint}},
		tcase{"N25 storage volume", mach("storage_volumes: {x-web: {}}"), []string{`infra.yml:8:27: domains.work.machines.web.storage_volumes.x-web: invalid volume name "x-web": names starting with "x-" are reserved for extension keys` + xHint}},
		tcase{"N25 persistent data", mach("persistent_data: {x-web: {path: /x}}"), []string{`infra.yml:8:27: domains.work.machines.web.persistent_data.x-web: invalid volume name "x-web": names starting with "x-" are reserved for extension keys` + xHint}},
		tcase{"storage volume bad name", mach("storage_volumes: {V_1: {}}"), []string{`infra.yml:8:27: domains.work.machines.web.storage_volumes["V_1"]: invalid volume name "V_1"` + nameRules}},
		tcase{"several bad names in sibling maps", "project_name: demo\nglobal: {}\ndomains:\n  Bad: {}\n  work:\n    profiles: {default: {}}\n    machines: {\"1\": {}}\n    trust_level: admin\n", []string{
			`infra.yml:4:3: domains["Bad"]: invalid domain name "Bad"` + nameRules,
			"infra.yml:6:16: domains.work.profiles.default: a domain profile cannot be named \"default\"\n  hint: " + hintProfile,
			`infra.yml:7:16: domains.work.machines.1: invalid machine name "1": Incus refuses instance names made only of digits`,
		}},
	)
	// "-a" unquoted is a YAML sequence marker only with a space; keep the
	// quoted cases above and drop the placeholder.
	out := cases[:0]
	for _, c := range cases {
		if c.name != "domain -a path is plain" {
			out = append(out, c)
		}
	}
	runCases(t, out)
}

// §16 #7, V4, V22, §2.2 item 5: integers.
func TestIntegers(t *testing.T) {
	runCases(t, []tcase{
		{"subnet_id 0", dom("subnet_id: 0"), nil},
		{"subnet_id 254", dom("subnet_id: 254"), nil},
		{"subnet_id 255", dom("subnet_id: 255"), []string{`infra.yml:6:16: domains.work.subnet_id: must be an integer from 0 to 254, got 255`}},
		{"subnet_id -1", dom("subnet_id: -1"), []string{`infra.yml:6:16: domains.work.subnet_id: must be an integer from 0 to 254, got -1`}},
		{"subnet_id string", dom(`subnet_id: "1"`), []string{`infra.yml:6:16: domains.work.subnet_id: must be an integer, got string "1"`}},
		{"subnet_id 1.0", dom("subnet_id: 1.0"), []string{`infra.yml:6:16: domains.work.subnet_id: must be an integer, got float 1.0`}},
		{"subnet_id true", dom("subnet_id: true"), []string{`infra.yml:6:16: domains.work.subnet_id: must be an integer, got boolean true`}},
		{"subnet_id 010", dom("subnet_id: 010"), []string{"infra.yml:6:16: domains.work.subnet_id: " + decimal}},
		{"subnet_id 0x10", dom("subnet_id: 0x10"), []string{"infra.yml:6:16: domains.work.subnet_id: " + decimal}},
		{"subnet_id +5", dom("subnet_id: +5"), []string{"infra.yml:6:16: domains.work.subnet_id: " + decimal}},
		{"subnet_id 0o10", dom("subnet_id: 0o10"), []string{"infra.yml:6:16: domains.work.subnet_id: " + decimal}},
		{"subnet_id 0x1000 is one error", dom("subnet_id: 0x1000"), []string{"infra.yml:6:16: domains.work.subnet_id: " + decimal}},
		{"V22 base_octet 172", glob("addressing: {base_octet: 172}"), []string{`infra.yml:3:28: global.addressing.base_octet: must be 10 (only 10.0.0.0/8 is supported), got 172`}},
		{"V22 base_octet 10", glob("addressing: {base_octet: 10, zone_base: 0, zone_step: 1}"), nil},
		{"V22 zone_base 246", glob("addressing: {zone_base: 246}"), []string{`infra.yml:3:27: global.addressing.zone_base: must be an integer from 0 to 245, got 246`}},
		{"V22 zone_base 245", glob("addressing: {zone_base: 245}"), nil},
		{"V22 zone_step 0", glob("addressing: {zone_step: 0}"), []string{`infra.yml:3:27: global.addressing.zone_step: must be an integer >= 1, got 0`}},
		{"decimal in config value", mach("config: {limits.cpu: 010}"), []string{`infra.yml:8:30: domains.work.machines.web.config["limits.cpu"]: ` + decimal}},
		{"decimal config value ok", mach("config: {limits.cpu: 2, boot.autostart: true, a: \"x\"}"), nil},
		{"decimal in device value", mach("devices: {eth0: {type: nic, mtu: 0x10}}"), []string{`infra.yml:8:42: domains.work.machines.web.devices.eth0.mtu: ` + decimal}},
		{"decimal in port", pol("{from: a, to: b, ports: [22, 0x50]}"), []string{`infra.yml:5:34: network_policies[0].ports[1]: ` + decimal}},
		// load reads an integer too large for 64 bits as a float.
		{"big integer out of range", dom("subnet_id: 99999999999999999999"), []string{`infra.yml:6:16: domains.work.subnet_id: must be an integer, got float 99999999999999999999`}},
	})
}

// §16 #10, #11 (structural parts), #77 state, V3, V6, V7, V11, V15, V17,
// V19, V20, V23, V24.
func TestTypesAndEnums(t *testing.T) {
	runCases(t, []tcase{
		{"item10 type docker", mach("type: docker"), []string{`infra.yml:8:15: domains.work.machines.web.type: must be one of lxc, vm; got "docker"`}},
		{"item10 lxc and vm coexist", "project_name: demo\nglobal: {}\ndomains:\n  work:\n    machines:\n      a: {type: lxc}\n      b: {type: vm}\n", nil},
		{"item11 trust_level trustd", dom("trust_level: trustd"), []string{"infra.yml:6:18: domains.work.trust_level: must be one of admin, trusted, semi-trusted, untrusted, disposable; got \"trustd\"\n  hint: did you mean \"trusted\"?"}},
		{"enum without suggestion", dom("trust_level: zzzzzzzzzz"), []string{`infra.yml:6:18: domains.work.trust_level: must be one of admin, trusted, semi-trusted, untrusted, disposable; got "zzzzzzzzzz"`}},
		{"enum given a non-string", dom("trust_level: 3"), []string{`infra.yml:6:18: domains.work.trust_level: must be a string, got integer 3`}},
		{"item11 ephemeral quoted yes", dom(`ephemeral: "yes"`), []string{`infra.yml:6:16: domains.work.ephemeral: must be a boolean, got string "yes"` + yamlHint}},
		{"item11 ephemeral yes", dom("ephemeral: yes"), []string{`infra.yml:6:16: domains.work.ephemeral: must be a boolean, got string "yes"` + yamlHint}},
		{"YAML 1.1 booleans in any case", mach("ephemeral: Off"), []string{`infra.yml:8:20: domains.work.machines.web.ephemeral: must be a boolean, got string "Off"` + yamlHint}},
		{"y and n", glob("nesting_prefix: N"), []string{`infra.yml:3:19: global.nesting_prefix: must be a boolean, got string "N"` + yamlHint}},
		{"other strings get no hint", dom("enabled: nope"), []string{`infra.yml:6:14: domains.work.enabled: must be a boolean, got string "nope"`}},
		{"booleans in every case", "project_name: demo\nglobal: {host_isolation: True, ai_vram_flush: FALSE}\ndomains: {}\n", nil},
		{"item11 boot_autostart 1", mach("boot_autostart: 1"), []string{`infra.yml:8:25: domains.work.machines.web.boot_autostart: must be a boolean, got integer 1`}},
		{"item11 boot_priority -1", mach("boot_priority: -1"), []string{`infra.yml:8:24: domains.work.machines.web.boot_priority: must be an integer from 0 to 100, got -1`}},
		{"item11 boot_priority 101", mach("boot_priority: 101"), []string{`infra.yml:8:24: domains.work.machines.web.boot_priority: must be an integer from 0 to 100, got 101`}},
		{"item11 boot_priority string", mach(`boot_priority: "50"`), []string{`infra.yml:8:24: domains.work.machines.web.boot_priority: must be an integer, got string "50"`}},
		{"item11 boot_priority 50.5", mach("boot_priority: 50.5"), []string{`infra.yml:8:24: domains.work.machines.web.boot_priority: must be an integer, got float 50.5`}},
		{"boot_priority 50", mach("boot_priority: 50"), nil},
		{"item11 weight 0", mach("weight: 0"), []string{`infra.yml:8:17: domains.work.machines.web.weight: must be an integer >= 1, got 0`}},
		{"item11 weight -1", mach("weight: -1"), []string{`infra.yml:8:17: domains.work.machines.web.weight: must be an integer >= 1, got -1`}},
		{"item11 weight true", mach("weight: true"), []string{`infra.yml:8:17: domains.work.machines.web.weight: must be an integer, got boolean true`}},
		{"item11 weight string", mach(`weight: "2"`), []string{`infra.yml:8:17: domains.work.machines.web.weight: must be an integer, got string "2"`}},
		{"item11 gpu_policy maybe", glob("gpu_policy: maybe"), []string{`infra.yml:3:15: global.gpu_policy: must be one of exclusive, shared; got "maybe"`}},
		{"item11 firewall_mode router", glob("firewall_mode: router"), []string{`infra.yml:3:18: global.firewall_mode: must be one of host, vm; got "router"`}},
		{"item11 ai_access_policy closed", glob("ai_access_policy: closed"), []string{`infra.yml:3:21: global.ai_access_policy: must be one of exclusive, open; got "closed"`}},
		{"schedule is a string", mach("snapshots_schedule: 5"), []string{`infra.yml:8:29: domains.work.machines.web.snapshots_schedule: must be a string, got integer 5`}},
		{"schedule grammar is S2", mach(`snapshots_schedule: "a b c d e"`), nil},
		{"expiry is a string", mach("snapshots_expiry: 30"), []string{`infra.yml:8:27: domains.work.machines.web.snapshots_expiry: must be a string, got integer 30`}},
		{"item77 state stopped", mach("state: stopped"), nil},
		{"item77 state paused", mach("state: paused"), []string{`infra.yml:8:16: domains.work.machines.web.state: must be one of running, stopped; got "paused"`}},
		{"V20 gpu", mach("gpu: 1"), []string{`infra.yml:8:14: domains.work.machines.web.gpu: must be a boolean, got integer 1`}},
		{"V20 roles not a list", mach("roles: base_system"), []string{`infra.yml:8:16: domains.work.machines.web.roles: must be a list, got string "base_system"`}},
		{"V20 storage_volumes not a mapping", mach("storage_volumes: [a]"), []string{`infra.yml:8:26: domains.work.machines.web.storage_volumes: must be a mapping, got list`}},
		{"profiles list of strings", mach("profiles: [default, 1]"), []string{`infra.yml:8:29: domains.work.machines.web.profiles[1]: must be a string, got integer 1`}},
		{"V24 storage_pool", glob("storage_pool: 1"), []string{`infra.yml:3:17: global.storage_pool: must be a string, got integer 1`}},
		{"domain body must be a mapping", "project_name: demo\nglobal: {}\ndomains:\n  work: 5\n", []string{`infra.yml:4:9: domains.work: must be a mapping, got integer 5`}},
		{"machine body null is an error", "project_name: demo\nglobal: {}\ndomains:\n  work:\n    machines:\n      web:\n", []string{`infra.yml:6:11: domains.work.machines.web: must be a mapping, got null`}},
		{"machines null is allowed", dom("machines:"), nil},
		{"null optional keys are absent", mach("type: ~\n        ip: null\n        config:\n        roles:"), nil},
		{"ai_provider", dom("ai_provider: local-first"), nil},
		{"V8 ai_sanitize always", dom(`ai_sanitize: "always"`), nil},
		{"V8 ai_sanitize false", dom("ai_sanitize: false"), nil},
		{"V8 ai_sanitize maybe", dom("ai_sanitize: maybe"), []string{`infra.yml:6:18: domains.work.ai_sanitize: must be true, false or "always", got string "maybe"`}},
		{"V8 ai_sanitize yes", dom("ai_sanitize: yes"), []string{`infra.yml:6:18: domains.work.ai_sanitize: must be true, false or "always", got string "yes"` + yamlHint}},
		{"V8 ai_sanitize 1", dom("ai_sanitize: 1"), []string{`infra.yml:6:18: domains.work.ai_sanitize: must be true, false or "always", got integer 1`}},
	})
}

// §16 #13 (N1, N2), N10, N16, N17, N19, N20, N27 (§16 #75), V29: strings
// with a shape.
func TestStringShapes(t *testing.T) {
	long := strings.Repeat("p", 129)
	runCases(t, []tcase{
		{"item13 ip 10", mach("ip: 10"), []string{`infra.yml:8:13: domains.work.machines.web.ip: must be a string, got integer 10`}},
		{"item13 ip 10.120.0", mach(`ip: "10.120.0"`), []string{`infra.yml:8:13: domains.work.machines.web.ip: "10.120.0" is not an IPv4 address`}},
		{"ip leading zero", mach(`ip: "10.120.0.01"`), []string{`infra.yml:8:13: domains.work.machines.web.ip: "10.120.0.01" is not an IPv4 address`}},
		{"ip 256", mach(`ip: "10.120.0.256"`), []string{`infra.yml:8:13: domains.work.machines.web.ip: "10.120.0.256" is not an IPv4 address`}},
		{"ip ok", mach(`ip: "10.120.0.5"`), nil},
		{"N10 role name", mach(`roles: [base_system, "bad role", community.general.x]`), []string{`infra.yml:8:30: domains.work.machines.web.roles[1]: invalid role name "bad role" (letters, digits, "_", "." and "-")`}},
		{"N16 target", mach(`target: "-node"`), []string{`infra.yml:8:17: domains.work.machines.web.target: must be a cluster member name or @<group>, got "-node"`}},
		{"N16 target group", mach(`target: "@lab"`), nil},
		{"domain target", dom(`target: "@lab"`), nil},
		{"domain target bad", dom(`target: "m 1"`), []string{`infra.yml:6:13: domains.work.target: must be a cluster member name or @<group>, got "m 1"`}},
		{"domain target @ alone", dom(`target: "@"`), []string{`infra.yml:6:13: domains.work.target: must be a cluster member name or @<group>, got "@"`}},
		{"N16 target ok", mach("target: node-1.lan"), nil},
		{"N17 size", mach("storage_volumes: {data: {size: 10G}}"), []string{`infra.yml:8:40: domains.work.machines.web.storage_volumes.data.size: must be a size such as 10GiB, got "10G"`}},
		{"N17 size ok", mach("storage_volumes: {data: {size: 10GiB, pool: fast, path: /data}}"), nil},
		{"storage volume path", mach("storage_volumes: {data: {path: data}}"), []string{`infra.yml:8:40: domains.work.machines.web.storage_volumes.data.path: must be an absolute path, got "data"`}},
		{"N19 base_subnet", glob(`base_subnet: "10.256"`), []string{`infra.yml:3:16: global.base_subnet: must be two dot-separated octets such as "10.100", got "10.256"`}},
		{"N19 base_subnet ok", glob(`base_subnet: "172.16"`), nil},
		{"N20 empty project_name", "project_name: \"\"\nglobal: {}\ndomains: {}\n", []string{`infra.yml:1:15: project_name: must be 1 to 128 characters without control characters`}},
		{"N20 long project_name", "project_name: " + long + "\nglobal: {}\ndomains: {}\n", []string{`infra.yml:1:15: project_name: must be 1 to 128 characters without control characters`}},
		{"N20 control character", "project_name: \"a\\tb\"\nglobal: {}\ndomains: {}\n", []string{`infra.yml:1:15: project_name: must be 1 to 128 characters without control characters`}},
		{"N20 128 characters", "project_name: " + long[:128] + "\nglobal: {}\ndomains: {}\n", nil},
		{"item75 format_version 1", "format_version: 1\nproject_name: demo\nglobal: {}\ndomains: {}\n", nil},
		{"item75 format_version 2", "format_version: 2\nproject_name: demo\nglobal: {}\ndomains: {}\n", []string{"infra.yml:1:17: format_version: format_version 2 is not supported; this anklume reads format_version 1\n  hint: upgrade anklume"}},
		{"format_version string", "format_version: \"1\"\nproject_name: demo\nglobal: {}\ndomains: {}\n", []string{`infra.yml:1:17: format_version: must be an integer, got string "1"`}},
		{"V29 shared_volumes_base", glob("shared_volumes_base: srv/shares"), []string{`infra.yml:3:24: global.shared_volumes_base: must be an absolute path, got "srv/shares"`}},
		{"V29 persistent_data_base ok", glob("persistent_data_base: /data"), nil},
		{"file_portal", dom("file_portal: {allowed_paths: [/srv, tmp], read_only: true}"), []string{`infra.yml:6:41: domains.work.file_portal.allowed_paths[1]: must be an absolute path, got "tmp"`}},
		{"file_portal unknown key", dom("file_portal: {read_only: yes}"), []string{`infra.yml:6:30: domains.work.file_portal.read_only: must be a boolean, got string "yes"` + yamlHint}},
		{"V21 persistent_data path required", mach("persistent_data: {home: {readonly: true}}"), []string{`infra.yml:8:27: domains.work.machines.web.persistent_data.home: missing required key "path"`}},
		{"V21 persistent_data path relative", mach("persistent_data: {home: {path: home}}"), []string{`infra.yml:8:40: domains.work.machines.web.persistent_data.home.path: must be an absolute path, got "home"`}},
		{"export_apps", mach("export_apps: [firefox, 1]"), []string{`infra.yml:8:32: domains.work.machines.web.export_apps[1]: must be a string, got integer 1`}},
	})
}

// §16 #22 (N6), N7, N8: config and devices.
func TestConfigAndDevices(t *testing.T) {
	runCases(t, []tcase{
		{"item22 user.anklume.x", mach("config: {user.anklume.x: a}"), []string{`infra.yml:8:18: domains.work.machines.web.config["user.anklume.x"]: config key "user.anklume.x" is reserved for anklume`}},
		{"item22 volatile.x", mach("config: {volatile.x: a}"), []string{`infra.yml:8:18: domains.work.machines.web.config["volatile.x"]: config key "volatile.x" is managed by Incus and cannot be set`}},
		{"N6 image.x in a profile", dom("profiles: {p: {config: {image.os: debian}}}"), []string{`infra.yml:6:29: domains.work.profiles.p.config["image.os"]: config key "image.os" is managed by Incus and cannot be set`}},
		{"user.other is fine", mach("config: {user.anklumex: a, user.foo: b}"), nil},
		{"N7 list", mach("config: {limits.cpu: [1]}"), []string{`infra.yml:8:30: domains.work.machines.web.config["limits.cpu"]: must be a string, integer or boolean, got list`}},
		{"N7 float", mach("config: {limits.cpu: 1.5}"), []string{`infra.yml:8:30: domains.work.machines.web.config["limits.cpu"]: must be a string, integer or boolean, got float 1.5`}},
		{"N7 null", mach("config: {limits.cpu: ~}"), []string{`infra.yml:8:30: domains.work.machines.web.config["limits.cpu"]: must be a string, integer or boolean, got null`}},
		{"N7 device property", mach("devices: {root: {type: disk, size: {a: 1}}}"), []string{`infra.yml:8:44: domains.work.machines.web.devices.root.size: must be a string, integer or boolean, got mapping`}},
		{"N8 device without type", mach("devices: {data: {path: /data}}"), []string{`infra.yml:8:19: domains.work.machines.web.devices.data: missing required key "type"`}},
		{"N8 device type not a string", mach("devices: {data: {type: 5}}"), []string{`infra.yml:8:32: domains.work.machines.web.devices.data.type: must be a string, got integer 5`}},
		{"device not a mapping", mach("devices: {data: disk}"), []string{`infra.yml:8:25: domains.work.machines.web.devices.data: must be a mapping, got string "disk"`}},
		{"config not a mapping", mach("config: [a]"), []string{`infra.yml:8:17: domains.work.machines.web.config: must be a mapping, got list`}},
	})
}

// §16 #12 (structural parts), V26.
func TestPolicies(t *testing.T) {
	ports := `must be a list of ports or "all", got `
	runCases(t, []tcase{
		{"ports all", pol("{from: a, to: b, ports: all}"), nil},
		{"host, empty ports", pol("{from: host, to: b, ports: [], protocol: udp, bidirectional: true, description: x}"), nil},
		{"missing from", pol("{to: b}"), []string{`infra.yml:5:5: network_policies[0]: missing required key "from"`}},
		{"missing from and to", pol("{ports: [22]}"), []string{
			`infra.yml:5:5: network_policies[0]: missing required key "from"`,
			`infra.yml:5:5: network_policies[0]: missing required key "to"`}},
		{"port 0", pol("{from: a, to: b, ports: [0]}"), []string{`infra.yml:5:30: network_policies[0].ports[0]: invalid port 0 (must be an integer from 1 to 65535)`}},
		{"port 65536", pol("{from: a, to: b, ports: [65536]}"), []string{`infra.yml:5:30: network_policies[0].ports[0]: invalid port 65536 (must be an integer from 1 to 65535)`}},
		{"port -1", pol("{from: a, to: b, ports: [-1]}"), []string{`infra.yml:5:30: network_policies[0].ports[0]: invalid port -1 (must be an integer from 1 to 65535)`}},
		{"port string", pol(`{from: a, to: b, ports: ["80"]}`), []string{`infra.yml:5:30: network_policies[0].ports[0]: invalid port "80" (must be an integer from 1 to 65535)`}},
		{"port float", pol(`{from: a, to: b, ports: [80.0]}`), []string{`infra.yml:5:30: network_policies[0].ports[0]: invalid port 80.0 (must be an integer from 1 to 65535)`}},
		{"ports 80", pol("{from: a, to: b, ports: 80}"), []string{`infra.yml:5:29: network_policies[0].ports: ` + ports + `integer 80`}},
		{"ports string", pol(`{from: a, to: b, ports: "80"}`), []string{`infra.yml:5:29: network_policies[0].ports: ` + ports + `string "80"`}},
		{"ports mapping", pol(`{from: a, to: b, ports: {a: 1}}`), []string{`infra.yml:5:29: network_policies[0].ports: ` + ports + `mapping`}},
		{"protocol icmp", pol("{from: a, to: b, protocol: icmp}"), []string{"infra.yml:5:32: network_policies[0].protocol: must be one of tcp, udp; got \"icmp\"\n  hint: did you mean \"tcp\"?"}},
		{"protocol empty", pol(`{from: a, to: b, protocol: ""}`), []string{`infra.yml:5:32: network_policies[0].protocol: must be one of tcp, udp; got ""`}},
		{"null entry", "project_name: demo\nglobal: {}\ndomains: {}\nnetwork_policies:\n  -\n  - {from: a, to: b}\n", []string{`infra.yml:5:4: network_policies[0]: must be a mapping, got null`}},
		{"string entry", pol("a"), []string{`infra.yml:5:5: network_policies[0]: must be a mapping, got string "a"`}},
		{"from not a string", pol("{from: 1, to: b}"), []string{`infra.yml:5:12: network_policies[0].from: must be a string, got integer 1`}},
		{"bidirectional yes", pol("{from: a, to: b, bidirectional: yes}"), []string{`infra.yml:5:37: network_policies[0].bidirectional: must be a boolean, got string "yes"` + yamlHint}},
		{"network_policies not a list", root("network_policies: {}"), []string{`infra.yml:4:19: network_policies: must be a list, got mapping`}},
	})
}

// V28 (structural parts): shared volumes.
func TestSharedVolumes(t *testing.T) {
	runCases(t, []tcase{
		{"ok", vol("source: /srv/x\n    path: /shared/x\n    shift: false\n    propagate: false"), nil},
		{"missing consumers", "project_name: demo\nglobal: {}\ndomains: {}\nshared_volumes:\n  sv: {path: /x}\n", []string{`infra.yml:5:3: shared_volumes.sv: missing required key "consumers"`}},
		{"empty consumers", vol("consumers: {}"), []string{`infra.yml:6:16: shared_volumes.sv.consumers: consumers must be a non-empty mapping`}},
		{"consumers list", vol("consumers: [a]"), []string{`infra.yml:6:16: shared_volumes.sv.consumers: consumers must be a non-empty mapping`}},
		{"consumers null", vol("consumers:"), []string{`infra.yml:6:15: shared_volumes.sv.consumers: consumers must be a non-empty mapping`}},
		{"access rx", vol("consumers: {work: rx}"), []string{`infra.yml:6:23: shared_volumes.sv.consumers.work: access must be "ro" or "rw", got "rx"`}},
		{"access integer", vol("consumers: {work: 1}"), []string{`infra.yml:6:23: shared_volumes.sv.consumers.work: access must be "ro" or "rw", got integer 1`}},
		{"relative source", vol("source: srv"), []string{`infra.yml:6:13: shared_volumes.sv.source: must be an absolute path, got "srv"`}},
		{"shift yes", vol("shift: yes"), []string{`infra.yml:6:12: shared_volumes.sv.shift: must be a boolean, got string "yes"` + yamlHint}},
	})
}

// V30: resource_policy.
func TestResourcePolicy(t *testing.T) {
	shape := `must be a mapping or true, got `
	mem := `must be "N%", a size such as "4GiB", or a positive number, got `
	cpu := `must be "N%" or a positive number, got `
	runCases(t, []tcase{
		{"true", glob("resource_policy: true"), nil},
		{"empty", glob("resource_policy: {}"), nil},
		{"null", glob("resource_policy:"), nil},
		{"full", glob(`resource_policy: {host_reserve: {cpu: "20%", memory: 4GiB}, mode: equal, cpu_mode: count, memory_enforce: hard, overcommit: true}`), nil},
		{"numbers", glob(`resource_policy: {host_reserve: {cpu: 1.5, memory: 4294967296}}`), nil},
		{"false", glob("resource_policy: false"), []string{`infra.yml:3:20: global.resource_policy: ` + shape + `boolean false`}},
		{"string", glob("resource_policy: on"), []string{`infra.yml:3:20: global.resource_policy: ` + shape + `string "on"` + yamlHint}},
		{"list", glob("resource_policy: [a]"), []string{`infra.yml:3:20: global.resource_policy: ` + shape + `list`}},
		{"cpu 0%", glob(`resource_policy: {host_reserve: {cpu: "0%"}}`), []string{`infra.yml:3:41: global.resource_policy.host_reserve.cpu: percentage must be 1-99, got "0%"`}},
		{"memory 100%", glob(`resource_policy: {host_reserve: {memory: 100%}}`), []string{`infra.yml:3:44: global.resource_policy.host_reserve.memory: percentage must be 1-99, got "100%"`}},
		{"memory 0", glob(`resource_policy: {host_reserve: {memory: 0}}`), []string{`infra.yml:3:44: global.resource_policy.host_reserve.memory: ` + mem + `integer 0`}},
		{"memory lots", glob(`resource_policy: {host_reserve: {memory: lots}}`), []string{`infra.yml:3:44: global.resource_policy.host_reserve.memory: ` + mem + `string "lots"`}},
		{"memory -1.5", glob(`resource_policy: {host_reserve: {memory: -1.5}}`), []string{`infra.yml:3:44: global.resource_policy.host_reserve.memory: ` + mem + `float -1.5`}},
		{"cpu size", glob(`resource_policy: {host_reserve: {cpu: 4GiB}}`), []string{`infra.yml:3:41: global.resource_policy.host_reserve.cpu: ` + cpu + `string "4GiB"`}},
		{"cpu 0.0", glob(`resource_policy: {host_reserve: {cpu: 0.0}}`), []string{`infra.yml:3:41: global.resource_policy.host_reserve.cpu: ` + cpu + `float 0.0`}},
		{"mode enum", glob(`resource_policy: {mode: equals}`), []string{"infra.yml:3:27: global.resource_policy.mode: must be one of proportional, equal; got \"equals\"\n  hint: did you mean \"equal\"?"}},
		{"unknown key", glob(`resource_policy: {overcomit: true}`), []string{"infra.yml:3:21: global.resource_policy.overcomit: unknown key \"overcomit\"\n  hint: did you mean \"overcommit\"?"}},
	})
}

// §16 #5 (S1 part): independent errors are all reported, in position order.
func TestAllErrorsSorted(t *testing.T) {
	src := `project_name: demo
global:
  gpu_policy: maybe
domains:
  work:
    subnet_id: 010
    machines:
      web: {tpye: vm, ip: 10}
network_policies:
  - {from: a, to: b, ports: [0]}
`
	runCases(t, []tcase{{"five", src, []string{
		`infra.yml:3:15: global.gpu_policy: must be one of exclusive, shared; got "maybe"`,
		"infra.yml:6:16: domains.work.subnet_id: " + decimal,
		"infra.yml:8:13: domains.work.machines.web.tpye: unknown key \"tpye\"\n  hint: did you mean \"type\"?",
		`infra.yml:8:27: domains.work.machines.web.ip: must be a string, got integer 10`,
		`infra.yml:10:30: network_policies[0].ports[0]: invalid port 0 (must be an integer from 1 to 65535)`,
	}}})
}

// Directory mode: the merged root keeps each node's own file.
func TestDirectoryModeFiles(t *testing.T) {
	base, _ := load.Parse([]byte("project_name: demo\nglobal: {}\n"), "infra/base.yml", 0)
	doms, _ := load.Parse([]byte("work:\n  trust_level: trustd\n"), "infra/domains/work.yml", 1)
	if base == nil || doms == nil {
		t.Fatal("parse failed")
	}
	base.Entries = append(base.Entries, load.Entry{Key: "domains", KeyPos: doms.Pos, Value: doms})
	dl, _ := Check(base)
	got := strings.Join(render(dl), "\n")
	want := "infra/domains/work.yml:2:16: domains.work.trust_level: must be one of admin, trusted, semi-trusted, untrusted, disposable; got \"trustd\"\n  hint: did you mean \"trusted\"?"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// Every node with an error is in the NodeSet: values, the values of unknown
// keys and of rejected names; a missing key marks nothing.
func TestNodeSet(t *testing.T) {
	src := "project_name: demo\nglobal: {}\ndomains:\n  Bad: {}\n  work:\n    subnet_id: 010\n    trust_level: x\n    machines:\n      web: {tpye: {a: 1}}\n    profiles: {p: {devices: {d: {}}}}\n"
	dl, bad, root := check(t, src)
	work := root.Val("domains").Val("work")
	for name, n := range map[string]*load.Node{
		"Bad":         root.Val("domains").Val("Bad"),
		"subnet_id":   work.Val("subnet_id"),
		"trust_level": work.Val("trust_level"),
		"tpye":        work.Val("machines").Val("web").Val("tpye"),
	} {
		if !bad.Has(n) {
			t.Errorf("%s not in the NodeSet", name)
		}
	}
	dev := work.Val("profiles").Val("p").Val("devices").Val("d")
	if bad.Has(dev) || bad.Has(work) || bad.Has(root) {
		t.Errorf("a missing key must not mark its parent")
	}
	if len(bad) != 4 || len(dl) != 5 {
		t.Errorf("got %d nodes and %d diagnostics:\n%s", len(bad), len(dl), strings.Join(render(dl), "\n"))
	}
}

func TestCheckNil(t *testing.T) {
	dl, bad := Check(nil)
	if len(dl) != 0 || len(bad) != 0 {
		t.Errorf("Check(nil) = %v, %v", dl, bad)
	}
}

// independent checks §3.3 item 4: plain jsonschema v6 validation of the
// document, read by yaml.v3 and converted to JSON with no translation,
// gives the same verdict as S1, except for the known gaps (floats such as
// 1.0 and integer spelling).
func independent(t *testing.T, src string, dl diag.List) {
	t.Helper()
	root, _ := load.Parse([]byte(src), "infra.yml", 0)
	if knownGap(root) {
		return
	}
	v, err := compiled()
	if err != nil {
		t.Fatal(err)
	}
	var y any
	if err := yaml.Unmarshal([]byte(src), &y); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(normalize(y))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	verr := v.Validate(inst)
	if (verr == nil) != (len(dl) == 0) {
		t.Errorf("the schema alone says valid=%v, S1 says valid=%v: %v", verr == nil, len(dl) == 0, verr)
	}
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

// knownGap reports whether n holds an integer not written in plain decimal
// or a float with an integral value, which JSON Schema cannot tell apart
// from a plain integer (SPEC.md §3.3 item 4).
func knownGap(n *load.Node) bool {
	if n == nil {
		return false
	}
	switch n.Kind {
	case load.Scalar:
		if n.IsInt() && !n.IsDecimal() {
			return true
		}
		if n.Tag == load.TagFloat {
			var f float64
			_, err := fmt.Sscan(n.Value, &f)
			return err != nil || f == float64(int64(f))
		}
	case load.Map:
		for _, e := range n.Entries {
			if knownGap(e.Value) {
				return true
			}
		}
	case load.Seq:
		for _, it := range n.Items {
			if knownGap(it) {
				return true
			}
		}
	}
	return false
}

// §16 #2, #25, §3.3 item 4: every shipped example passes S1, and the schema
// alone accepts it.
func TestShippedExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*/infra.yml")
	if len(files) == 0 {
		t.Skip("no examples in this tree")
	}
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dl, _, _ := check(t, string(b))
			if len(dl) != 0 {
				t.Errorf("S1 rejects the example:\n%s", strings.Join(render(dl), "\n"))
			}
			independent(t, string(b), dl)
		})
	}
}

// BenchmarkCompileSchema measures what the first Check of a process pays
// to compile the embedded schema (once per process).
func BenchmarkCompileSchema(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := compileSchema(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestKey: documents stage S1 could tell apart have different keys
// (kind, tag, text, framing, order), the same document written with other
// positions (spacing, comments, flow style) the same key.
func TestKey(t *testing.T) {
	distinct := []string{
		"a: 1\n", "a: '1'\n", "a: 1.0\n", "a: true\n", "a: 'true'\n", "a:\n", "a: 0x1\n",
		"a: [1]\n", "a: {b: 1}\n", "a: [b, c]\n", "a: [bc]\n", "a: {bc: ''}\n", "a: {b: c}\n",
		"a: 1\nb: 2\n", "b: 2\na: 1\n", "ab: 1\n", "a: [[b], c]\n", "a: [[b, c]]\n",
	}
	seen := map[[32]byte]string{}
	for _, src := range distinct {
		root, dl := load.Parse([]byte(src), "infra.yml", 0)
		if root == nil {
			t.Fatalf("%q: %v", src, dl)
		}
		k := Key(root)
		if other, dup := seen[k]; dup {
			t.Errorf("%q and %q share a key", other, src)
		}
		seen[k] = src
	}
	a, _ := load.Parse([]byte("a: {x: 1, y: [true]}\n"), "infra.yml", 0)
	b, _ := load.Parse([]byte("# comment\n\na:\n  x:   1\n  y:\n    - true\n"), "other.yml", 1)
	if Key(a) != Key(b) {
		t.Error("the key depends on positions")
	}
}
