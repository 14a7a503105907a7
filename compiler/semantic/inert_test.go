package semantic

import "testing"

// TestInertKeys: each key anklume accepts without acting on it gives one
// warning where it is written; absent or null keys give none.
func TestInertKeys(t *testing.T) {
	const dom = "domains:\n  a:\n    subnet_id: 1\n    trust_level: trusted\n    machines:\n      m1:\n"
	runCases(t, []ruleCase{
		{name: "none", src: "project_name: p\nglobal:\n  base_subnet: \"10.200\"\n" + dom + "        type: lxc\n"},
		{name: "null keys", src: "project_name: p\nglobal:\n  desktop: null\n" + dom + "        export_apps: null\n"},
		{name: "all three", src: "project_name: p\nglobal:\n  desktop: {}\n" + dom + "        export_apps: [x]\n        services: [web]\n", want: []string{
			"warning: infra.yml:3:12: global.desktop: global.desktop is accepted but anklume does not act on it; remove it or expect no effect",
			"warning: infra.yml:10:22: domains.a.machines.m1.export_apps: export_apps is accepted but anklume does not act on it; remove it or expect no effect",
			"warning: infra.yml:11:19: domains.a.machines.m1.services: services is accepted but anklume does not act on it; remove it or expect no effect",
		}},
	})
}
