package ansible

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// play is the part of a site.yml play the tests read.
type play struct {
	Name        string            `yaml:"name"`
	Hosts       string            `yaml:"hosts"`
	Connection  string            `yaml:"connection"`
	Become      bool              `yaml:"become"`
	GatherFacts *bool             `yaml:"gather_facts"`
	Tags        []string          `yaml:"tags"`
	Vars        map[string]string `yaml:"vars"`
	Roles       []any             `yaml:"roles"`
	PreTasks    []map[string]any  `yaml:"pre_tasks"`
	Tasks       []map[string]any  `yaml:"tasks"`
	PostTasks   []map[string]any  `yaml:"post_tasks"`
}

func parseSite(t *testing.T, text []byte) []play {
	t.Helper()
	var plays []play
	if err := yaml.Unmarshal(text, &plays); err != nil {
		t.Fatalf("site.yml does not parse: %v\n%s", err, text)
	}
	return plays
}

// twoMachines lists roles in different orders on two machines, plus a
// disabled domain whose roles must not appear.
const twoMachines = `project_name: p
global: {addressing: {}}
domains:
  d:
    machines:
      m1: {roles: [zeta, alpha]}
      m2: {roles: [alpha, custom_role, zeta]}
      m3: {}
  off:
    enabled: false
    machines:
      o1: {roles: [never]}
`

// TestSitePlays: site.yml holds the four plays of §6.7 item 3, in
// order, then the two cluster plays that only --tags members runs (the firewall play before the infrastructure play, §16 #46), with
// their hosts, connection and tags, and play 4 sets the connection
// variables of §6.7 item 4.
func TestSitePlays(t *testing.T) {
	plays := parseSite(t, Site(compile(t, twoMachines)))
	want := []struct {
		name, hosts, conn, tag string
	}{
		{PlayPreflight, "all", "local", "always"},
		{PlayFirewall, "localhost", "local", "nftables"},
		{PlayInfra, "localhost", "local", "infra"},
		{PlayProvisioning, "all", "", "provision"},
		{PlayMembersFind, "localhost", "local", "never,members"},
		{PlayMembersFirewall, MembersGroup, "", "never,members"},
	}
	if len(plays) != len(want) {
		t.Fatalf("got %d plays, want %d", len(plays), len(want))
	}
	for i, w := range want {
		p := plays[i]
		if p.Name != w.name || p.Hosts != w.hosts || p.Connection != w.conn || !slices.Equal(p.Tags, strings.Split(w.tag, ",")) {
			t.Errorf("play %d = %q hosts %q connection %q tags %v; want %q %q %q [%s]",
				i+1, p.Name, p.Hosts, p.Connection, p.Tags, w.name, w.hosts, w.conn, w.tag)
		}
	}
	if !plays[1].Become || !plays[5].Become {
		t.Errorf("a firewall play does not become root")
	}
	if got := plays[5].Roles; len(got) != 1 || got[0].(map[string]any)["role"] != "incus_nftables" {
		t.Errorf("play 6 roles = %v, want incus_nftables", got)
	}
	if p := plays[0]; p.GatherFacts == nil || *p.GatherFacts {
		t.Errorf("play 1 gathers facts")
	}
	if got := plays[1].Roles; len(got) != 1 || got[0].(map[string]any)["role"] != "incus_nftables" {
		t.Errorf("play 2 roles = %v, want incus_nftables", got)
	}
	var infra []string
	for _, r := range plays[2].Roles {
		infra = append(infra, r.(string))
	}
	if !slices.Equal(infra, infraRoles) || slices.Contains(infra, "incus_nftables") {
		t.Errorf("play 3 roles = %v", infra)
	}
	wantVars := map[string]string{
		"ansible_connection":         "{{ anklume_connection }}",
		"ansible_incus_project":      "{{ incus_project }}",
		"ansible_incus_remote":       "{{ anklume_remote | default('local') }}",
		"ansible_host":               "{{ instance_name }}",
		"ansible_user":               "root",
		"ansible_python_interpreter": "/usr/bin/python3",
	}
	if got := plays[3].Vars; len(got) != len(wantVars) {
		t.Errorf("play 4 vars = %v", got)
	}
	for k, v := range wantVars {
		if plays[3].Vars[k] != v {
			t.Errorf("play 4 var %s = %q, want %q", k, plays[3].Vars[k], v)
		}
	}
	// Play 1 computes the connection once, on the controller.
	for _, task := range plays[0].Tasks {
		if task["run_once"] != true || task["delegate_to"] != "localhost" {
			t.Errorf("play 1 task %q does not run once on localhost", task["name"])
		}
	}
}

// TestSiteProvisioningTasks: play 4 has the pre_tasks of §10.2, then one
// include_role task per (position, role) pair of the enabled machines,
// ordered by position and then role name, each tagged with its role and
// guarded by its position (§16 #46: --tags <role> runs that role alone,
// in each machine's order).
func TestSiteProvisioningTasks(t *testing.T) {
	plays := parseSite(t, Site(compile(t, twoMachines)))
	p4 := plays[3]
	var pre []string
	for _, task := range p4.PreTasks {
		for _, k := range []string{"ansible.builtin.meta", "ansible.builtin.raw", "ansible.builtin.setup"} {
			if _, ok := task[k]; ok {
				pre = append(pre, k)
			}
		}
		if tags, _ := task["tags"].([]any); len(tags) != 1 || tags[0] != "always" {
			t.Errorf("pre_task %q is not tagged always", task["name"])
		}
	}
	if want := []string{"ansible.builtin.meta", "ansible.builtin.raw", "ansible.builtin.setup"}; !slices.Equal(pre, want) {
		t.Errorf("pre_tasks %v, want %v", pre, want)
	}
	if got := p4.PreTasks[1]["ansible.builtin.raw"]; got != "test -x /usr/bin/python3 || (apt-get update && apt-get install -y python3)" {
		t.Errorf("raw bootstrap = %q", got)
	}
	if got := p4.PreTasks[0]["when"]; got != "instance_roles is not defined or instance_roles | length == 0" {
		t.Errorf("end_host condition = %q", got)
	}

	want := []struct {
		pos  string
		role string
	}{{"0", "alpha"}, {"0", "zeta"}, {"1", "alpha"}, {"1", "custom_role"}, {"2", "zeta"}}
	if len(p4.Tasks) != len(want) {
		t.Fatalf("got %d include_role tasks, want %d: %v", len(p4.Tasks), len(want), p4.Tasks)
	}
	for i, w := range want {
		task := p4.Tasks[i]
		inc, _ := task["ansible.builtin.include_role"].(map[string]any)
		if inc["name"] != w.role {
			t.Errorf("task %d includes %v, want %s", i, inc["name"], w.role)
		}
		apply, _ := inc["apply"].(map[string]any)
		if tags, _ := apply["tags"].([]any); len(tags) != 1 || tags[0] != w.role {
			t.Errorf("task %d apply tags = %v, want [%s]", i, apply["tags"], w.role)
		}
		if tags, _ := task["tags"].([]any); len(tags) != 1 || tags[0] != w.role {
			t.Errorf("task %d tags = %v, want [%s]", i, task["tags"], w.role)
		}
		wantWhen := "instance_roles | length > " + w.pos + " and instance_roles[" + w.pos + "] == '" + w.role + "'"
		if task["when"] != wantWhen {
			t.Errorf("task %d when = %q, want %q", i, task["when"], wantWhen)
		}
	}
	if strings.Contains(string(Site(compile(t, twoMachines))), "Role never at") {
		t.Errorf("a role of a disabled domain appears in site.yml")
	}
}

// TestRoleSteps covers the ordering rule of §10.2 on its own, including a
// role listed twice by one machine.
func TestRoleSteps(t *testing.T) {
	m := compile(t, `project_name: p
global: {addressing: {}}
domains:
  a:
    machines:
      x: {roles: [b, a, b]}
  c:
    machines:
      y: {roles: [a]}
`)
	got := RoleSteps(m)
	want := []RoleStep{{0, "a"}, {0, "b"}, {1, "a"}, {2, "b"}}
	if !slices.Equal(got, want) {
		t.Errorf("RoleSteps = %v, want %v", got, want)
	}
}

// TestJinjaString: a role name cannot break out of its Jinja literal.
func TestJinjaString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"base_system", "base_system"},
		{`a'b`, `a\'b`},
		{`a\b`, `a\\b`},
	}
	for _, tt := range tests {
		if got := jinjaString(tt.in); got != tt.want {
			t.Errorf("jinjaString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestSiteHeaderAndNoqa: site.yml starts with a document marker (the
// header goes above it) and marks the lower-case play name for
// ansible-lint on that line, and the run_once tasks (site.yml never uses
// strategy free) on theirs.
func TestSiteHeaderAndNoqa(t *testing.T) {
	text := string(Site(compile(t, twoMachines)))
	if !strings.HasPrefix(text, "---\n- name: "+PlayPreflight+"  # noqa: name[casing]\n") {
		t.Errorf("site.yml starts with:\n%.120s", text)
	}
	// Besides, each run_once task of play 1 carries run-once[task] and
	// nothing else does.
	once := strings.Count(text, "run_once: true  # noqa: run-once[task]\n")
	if once == 0 || once != strings.Count(text, "run_once:") || strings.Count(text, "noqa") != 1+once {
		t.Errorf("site.yml has %d noqa comments, %d run_once tasks, %d marked", strings.Count(text, "noqa"), strings.Count(text, "run_once:"), once)
	}
}
