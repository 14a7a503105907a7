package ansible

import (
	"bytes"
	"sort"
	"strconv"
	"strings"

	"github.com/anklume/anklume/compiler/emit/yamlw"
	"github.com/anklume/anklume/compiler/model"
)

// Play names of site.yml, in play order (SPEC.md §6.7 item 3).
const (
	PlayPreflight    = "anklume | Preflight"
	PlayFirewall     = "Firewall | Deploy isolation rules"
	PlayInfra        = "Infrastructure | Reconcile Incus resources"
	PlayProvisioning = "Provisioning | Configure instances"
	// The cluster plays come last and run only with --tags members.
	PlayMembersFind     = "Cluster | Find the Incus cluster members"
	PlayMembersFirewall = "Cluster | Deploy isolation rules on the members"
)

// MembersTag selects the cluster plays: `ansible-playbook site.yml --tags
// members` (they are also tagged never, so a plain run skips them).
const MembersTag = "members"

// MembersGroup is the inventory group of the Incus cluster members.
const MembersGroup = "incus_hosts"

// Connection names of §6.7 item 4.
const (
	// BundledConnection is the connection plugin sync writes to
	// connection_plugins/.
	BundledConnection = "anklume_incus"
	// CollectionConnection is the community.general plugin, used when no
	// default_connection is set and Ansible has it.
	CollectionConnection = "community.general.incus"
)

// InfraRoles are the roles play 3 runs, in the creation order of §9.5
// (projects, networks, profiles, images, instances with their volumes),
// then the firewall VM and the nesting context. incus_nftables runs in
// play 2.
var infraRoles = []string{
	"incus_projects", "incus_networks", "incus_profiles", "incus_images",
	"incus_instances", "incus_firewall_vm", "incus_nesting",
}

// cleanupRoles run their `cleanup` tasks after creation, in the deletion
// order of §9.5: storage volumes, profiles, projects, networks.
var cleanupRoles = []struct{ role, what string }{
	{"incus_instances", "orphan storage volumes"},
	{"incus_profiles", "orphan profiles"},
	{"incus_projects", "orphan projects"},
	{"incus_networks", "orphan networks"},
}

// RoleStep is one include_role task of play 4: role Role runs on the hosts
// whose instance_roles has it at index Position (SPEC.md §10.2).
type RoleStep struct {
	Position int
	Role     string
}

// RoleSteps returns the (position, role) pairs of every machine of an
// enabled domain, ordered by position and then by role name (byte-wise),
// without duplicates.
func RoleSteps(m *model.Infra) []RoleStep {
	seen := map[RoleStep]bool{}
	var out []RoleStep
	for _, d := range m.EnabledDomains() {
		for _, x := range d.Machines {
			for p, r := range x.Roles {
				s := RoleStep{Position: p, Role: r}
				if !seen[s] {
					seen[s] = true
					out = append(out, s)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Position != out[j].Position {
			return out[i].Position < out[j].Position
		}
		return out[i].Role < out[j].Role
	})
	return out
}

// Site returns site.yml without its header: the four plays of §6.7 item 3
// with the provisioning tasks of §10.2 generated from m, then the two
// cluster plays (membersPlays).
func Site(m *model.Infra) []byte {
	plays := yamlw.List{preflightPlay(), firewallPlay(), infraPlay(), provisioningPlay(m)}
	plays = append(plays, membersPlays()...)
	body := yamlw.Marshal(plays)
	// The play name is fixed by SPEC.md and starts in lower case; tell
	// ansible-lint that this is deliberate.
	body = bytes.Replace(body,
		[]byte("- name: "+PlayPreflight+"\n"),
		[]byte("- name: "+PlayPreflight+"  # noqa: name[casing]\n"), 1)
	// Play 1's controller tasks run once: site.yml never sets strategy
	// free (under which run_once differs), which ansible-lint's
	// production profile cannot know and reports as run-once[task].
	body = bytes.ReplaceAll(body,
		[]byte("run_once: true\n"),
		[]byte("run_once: true  # noqa: run-once[task]\n"))
	return append([]byte("---\n"), body...)
}

// jinjaString escapes s for a single-quoted Jinja string literal.
func jinjaString(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}

func tags(t ...string) yamlw.List { return strList(t) }

// onController makes a play-1 task run once, on the controller.
func onController(task yamlw.Map) yamlw.Map {
	return append(task,
		yamlw.KV{Key: "run_once", Value: yamlw.Bool(true)},
		yamlw.KV{Key: "delegate_to", Value: yamlw.Str("localhost")},
	)
}

// Expressions of play 1. ansible-doc lists the bundled plugin as
// ansible.legacy.anklume_incus, which is used as anklume_incus: the names
// are kept with and without their ansible.legacy. or ansible.builtin.
// prefix.
const (
	pluginNamesExpr    = "{{ anklume_plugins.stdout_lines | select | map('split') | map('first') | list }}"
	shortNamesExpr     = "{{ anklume_plugin_names | union(anklume_plugin_names | map('regex_replace', '^ansible[.](legacy|builtin)[.]', '')) }}"
	defaultListedExpr  = "{{ psot_default_connection if psot_default_connection in anklume_plugin_names else '" + BundledConnection + "' }}"
	collectionOrBundle = "{{ '" + CollectionConnection + "' if '" + CollectionConnection + "' in anklume_plugin_names else '" + BundledConnection + "' }}"
)

// preflightPlay is play 1: it lists the connection plugins once and sets
// anklume_connection on every host.
func preflightPlay() yamlw.Map {
	return yamlw.Map{
		{Key: "name", Value: yamlw.Str(PlayPreflight)},
		{Key: "hosts", Value: yamlw.Str("all")},
		{Key: "connection", Value: yamlw.Str("local")},
		{Key: "gather_facts", Value: yamlw.Bool(false)},
		{Key: "tags", Value: tags("always")},
		{Key: "tasks", Value: yamlw.List{
			onController(yamlw.Map{
				{Key: "name", Value: yamlw.Str("List the connection plugins Ansible has")},
				{Key: "ansible.builtin.command", Value: yamlw.Map{
					{Key: "argv", Value: strList([]string{"ansible-doc", "-t", "connection", "-l"})},
					{Key: "chdir", Value: yamlw.Str("{{ playbook_dir }}")},
				}},
				{Key: "register", Value: yamlw.Str("anklume_plugins")},
				{Key: "changed_when", Value: yamlw.Bool(false)},
			}),
			setFact("Keep the plugin names", "anklume_plugin_names", pluginNamesExpr, ""),
			setFact("Add the names without their prefix", "anklume_plugin_names", shortNamesExpr, ""),
			onController(yamlw.Map{
				{Key: "name", Value: yamlw.Str("Warn when default_connection is not available")},
				{Key: "ansible.builtin.debug", Value: yamlw.Map{
					{Key: "msg", Value: yamlw.Str("default_connection {{ psot_default_connection }} is not available; using " + BundledConnection)},
				}},
				{Key: "when", Value: yamlw.Str("psot_default_connection is defined and psot_default_connection not in anklume_plugin_names")},
			}),
			setFact("Use default_connection, or "+BundledConnection+" when Ansible lacks it", "anklume_connection", defaultListedExpr,
				"psot_default_connection is defined"),
			setFact("Use "+CollectionConnection+" when Ansible has it, else "+BundledConnection, "anklume_connection", collectionOrBundle,
				"psot_default_connection is not defined"),
		}},
	}
}

// setFact is a play-1 set_fact task, with a when condition unless when is
// empty.
func setFact(name, key, expr, when string) yamlw.Map {
	task := yamlw.Map{
		{Key: "name", Value: yamlw.Str(name)},
		{Key: "ansible.builtin.set_fact", Value: yamlw.Map{{Key: key, Value: yamlw.Str(expr)}}},
	}
	if when != "" {
		task = append(task, yamlw.KV{Key: "when", Value: yamlw.Str(when)})
	}
	return onController(task)
}

// firewallPlay is play 2: the isolation rules, before any bridge exists.
func firewallPlay() yamlw.Map {
	deploy := "anklume_nftables_deploy | default(true) | bool"
	return yamlw.Map{
		{Key: "name", Value: yamlw.Str(PlayFirewall)},
		{Key: "hosts", Value: yamlw.Str("localhost")},
		{Key: "connection", Value: yamlw.Str("local")},
		{Key: "become", Value: yamlw.Bool(true)},
		{Key: "gather_facts", Value: yamlw.Bool(false)},
		{Key: "tags", Value: tags("nftables")},
		{Key: "pre_tasks", Value: yamlw.List{yamlw.Map{
			{Key: "name", Value: yamlw.Str("Refuse to load the rules for a remote Incus host")},
			{Key: "ansible.builtin.fail", Value: yamlw.Map{
				{Key: "msg", Value: yamlw.Str("the isolation rules would load on this controller, not on the Incus host {{ anklume_remote }}; " +
					"set anklume_nftables_deploy=false")},
			}},
			{Key: "when", Value: yamlw.Str(deploy + " and anklume_remote | default('local') != 'local'")},
		}}},
		{Key: "roles", Value: yamlw.List{yamlw.Map{
			{Key: "role", Value: yamlw.Str("incus_nftables")},
			{Key: "when", Value: yamlw.Str(deploy)},
		}}},
	}
}

// membersExpr lists the online members of `incus query
// /1.0/cluster/members` (empty on a single server, where the query fails).
const membersExpr = "{{ (anklume_members_read.stdout | from_json | selectattr('status', 'equalto', 'Online') | list) " +
	"if anklume_members_read.rc == 0 else [] }}"

// membersPlays are the cluster plays. On an Incus cluster the isolation
// rules must be loaded on every member that hosts a domain (traffic
// between the domains of a member is forwarded by that member's kernel);
// `anklume nftables deploy` and play 2 load them on this host only. Play
// 5 fills the group incus_hosts with the online members the live cluster
// lists (name, and the host of the member's address as ansible_host),
// unless the inventory defines the group already: an inventory that
// needs other connection settings for the members declares them there.
// The members are other machines, reached with Ansible's default
// connection (ssh) and its usual settings (ANSIBLE_REMOTE_USER,
// ANSIBLE_PRIVATE_KEY_FILE, ~/.ssh/config), never with connection local:
// the play must load the rules in each member's kernel, not this one's
// (e2e TestClusterDeployMembersLive runs it over ssh on the test cluster).
// Play 6 runs incus_nftables on each of them, with the same content
// guard, ownership check and persistence as on this host, after copying
// the guarded file to the member. Both are tagged never and members: a
// plain run never reaches out to other hosts.
func membersPlays() yamlw.List {
	tagList := tags("never", MembersTag)
	find := yamlw.Map{
		{Key: "name", Value: yamlw.Str(PlayMembersFind)},
		{Key: "hosts", Value: yamlw.Str("localhost")},
		{Key: "connection", Value: yamlw.Str("local")},
		{Key: "gather_facts", Value: yamlw.Bool(false)},
		{Key: "tags", Value: tagList},
		{Key: "tasks", Value: yamlw.List{
			yamlw.Map{
				{Key: "name", Value: yamlw.Str("Read the cluster members")},
				{Key: "ansible.builtin.command", Value: yamlw.Map{
					{Key: "argv", Value: strList([]string{"incus", "query",
						"{{ anklume_remote | default('local', true) }}:/1.0/cluster/members?recursion=1"})},
				}},
				{Key: "register", Value: yamlw.Str("anklume_members_read")},
				{Key: "changed_when", Value: yamlw.Bool(false)},
				{Key: "failed_when", Value: yamlw.Bool(false)},
				{Key: "check_mode", Value: yamlw.Bool(false)},
				{Key: "when", Value: yamlw.Str("groups['" + MembersGroup + "'] | default([]) | length == 0")},
			},
			yamlw.Map{
				{Key: "name", Value: yamlw.Str("Add each online member to " + MembersGroup)},
				{Key: "ansible.builtin.add_host", Value: yamlw.Map{
					{Key: "name", Value: yamlw.Str("{{ anklume_member.server_name }}")},
					{Key: "groups", Value: yamlw.Str(MembersGroup)},
					{Key: "ansible_host", Value: yamlw.Str("{{ anklume_member.url | urlsplit('hostname') }}")},
				}},
				{Key: "loop", Value: yamlw.Str(membersExpr)},
				{Key: "loop_control", Value: yamlw.Map{
					{Key: "loop_var", Value: yamlw.Str("anklume_member")},
					{Key: "label", Value: yamlw.Str("{{ anklume_member.server_name }}")},
				}},
				{Key: "when", Value: yamlw.Str("anklume_members_read is not skipped")},
			},
		}},
	}
	deploy := yamlw.Map{
		{Key: "name", Value: yamlw.Str(PlayMembersFirewall)},
		{Key: "hosts", Value: yamlw.Str(MembersGroup)},
		{Key: "become", Value: yamlw.Bool(true)},
		{Key: "gather_facts", Value: yamlw.Bool(false)},
		{Key: "tags", Value: tagList},
		{Key: "roles", Value: yamlw.List{yamlw.Map{
			{Key: "role", Value: yamlw.Str("incus_nftables")},
			{Key: "vars", Value: yamlw.Map{
				{Key: "incus_nftables_member_file", Value: yamlw.Str("/run/anklume-isolation.nft")},
			}},
		}}},
	}
	return yamlw.List{find, deploy}
}

// infraPlay is play 3: it loads the desired state and runs the infra
// roles, then restricts the projects exactly, then runs the cleanup tasks
// in deletion order. incus_projects only widens the projects'
// restrictions: Incus refuses a restriction that an instance breaks, so a
// project keeps the disk paths of a machine that leaves it for another
// domain (its persistent data) until incus_instances has moved it, as
// anklume apply widens before the instances and restricts after them.
func infraPlay() yamlw.Map {
	roles := strList(infraRoles)
	post := make(yamlw.List, 0, len(cleanupRoles)+1)
	post = append(post, yamlw.Map{
		{Key: "name", Value: yamlw.Str("Restrict the projects exactly")},
		{Key: "ansible.builtin.include_role", Value: yamlw.Map{
			{Key: "name", Value: yamlw.Str("incus_projects")},
			{Key: "tasks_from", Value: yamlw.Str("restrict")},
		}},
	})
	for _, c := range cleanupRoles {
		post = append(post, yamlw.Map{
			{Key: "name", Value: yamlw.Str("Delete " + c.what)},
			{Key: "ansible.builtin.include_role", Value: yamlw.Map{
				{Key: "name", Value: yamlw.Str(c.role)},
				{Key: "tasks_from", Value: yamlw.Str("cleanup")},
			}},
		})
	}
	return yamlw.Map{
		{Key: "name", Value: yamlw.Str(PlayInfra)},
		{Key: "hosts", Value: yamlw.Str("localhost")},
		{Key: "connection", Value: yamlw.Str("local")},
		{Key: "gather_facts", Value: yamlw.Bool(false)},
		{Key: "tags", Value: tags("infra")},
		{Key: "pre_tasks", Value: yamlw.List{yamlw.Map{
			{Key: "name", Value: yamlw.Str("Load incus/desired-state.yml")},
			{Key: "ansible.builtin.include_vars", Value: yamlw.Map{
				{Key: "file", Value: yamlw.Str("{{ playbook_dir }}/incus/desired-state.yml")},
				{Key: "name", Value: yamlw.Str("anklume_desired")},
			}},
		}}},
		{Key: "roles", Value: roles},
		{Key: "post_tasks", Value: post},
	}
}

// provisioningPlay is play 4 (§6.7 item 4, §10.2).
func provisioningPlay(m *model.Infra) yamlw.Map {
	always := tags("always")
	pre := yamlw.List{
		yamlw.Map{
			{Key: "name", Value: yamlw.Str("Skip machines without roles")},
			{Key: "ansible.builtin.meta", Value: yamlw.Str("end_host")},
			{Key: "when", Value: yamlw.Str("instance_roles is not defined or instance_roles | length == 0")},
			{Key: "tags", Value: always},
		},
		yamlw.Map{
			{Key: "name", Value: yamlw.Str("Install python3 when the image lacks it")},
			{Key: "ansible.builtin.raw", Value: yamlw.Str("test -x /usr/bin/python3 || (apt-get update && apt-get install -y python3)")},
			{Key: "changed_when", Value: yamlw.Bool(false)},
			{Key: "tags", Value: always},
		},
		yamlw.Map{
			{Key: "name", Value: yamlw.Str("Gather facts")},
			{Key: "ansible.builtin.setup", Value: yamlw.Null{}},
			{Key: "tags", Value: always},
		},
	}
	tasks := yamlw.List{}
	for _, s := range RoleSteps(m) {
		p := strconv.Itoa(s.Position)
		tasks = append(tasks, yamlw.Map{
			{Key: "name", Value: yamlw.Str("Role " + s.Role + " at position " + p)},
			{Key: "ansible.builtin.include_role", Value: yamlw.Map{
				{Key: "name", Value: yamlw.Str(s.Role)},
				{Key: "apply", Value: yamlw.Map{{Key: "tags", Value: tags(s.Role)}}},
			}},
			{Key: "tags", Value: tags(s.Role)},
			{Key: "when", Value: yamlw.Str("instance_roles | length > " + p + " and instance_roles[" + p + "] == '" + jinjaString(s.Role) + "'")},
		})
	}
	return yamlw.Map{
		{Key: "name", Value: yamlw.Str(PlayProvisioning)},
		{Key: "hosts", Value: yamlw.Str("all")},
		{Key: "gather_facts", Value: yamlw.Bool(false)},
		{Key: "tags", Value: tags("provision")},
		{Key: "vars", Value: yamlw.Map{
			{Key: "ansible_connection", Value: yamlw.Str("{{ anklume_connection }}")},
			{Key: "ansible_incus_project", Value: yamlw.Str("{{ incus_project }}")},
			{Key: "ansible_incus_remote", Value: yamlw.Str("{{ anklume_remote | default('local') }}")},
			{Key: "ansible_host", Value: yamlw.Str("{{ instance_name }}")},
			{Key: "ansible_user", Value: yamlw.Str("root")},
			{Key: "ansible_python_interpreter", Value: yamlw.Str("/usr/bin/python3")},
		}},
		{Key: "pre_tasks", Value: pre},
		{Key: "tasks", Value: tasks},
	}
}
