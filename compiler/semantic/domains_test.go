package semantic

import (
	"testing"
)

// zoneHead starts a zone-mode PSOT; the body starts on line 5.
const zoneHead = "project_name: p\nglobal:\n  addressing: {}\ndomains:\n"

// legacyHead starts a legacy-mode PSOT; the body starts on line 4.
const legacyHead = "project_name: p\nglobal: {}\ndomains:\n"

// TestSubnetID covers V4 (legacy subnet_id required, §16 item 7) and V5
// (unique per zone or globally, §16 item 8).
func TestSubnetID(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "item7/V4 legacy missing subnet_id", src: legacyHead + `
  work:
    machines: {}
  lab:
    subnet_id:
`, want: []string{
			"infra.yml:5:3: domains.work: missing required key \"subnet_id\"\n  hint: subnet_id is required when global.addressing is absent",
			"infra.yml:7:3: domains.lab: missing required key \"subnet_id\"\n  hint: subnet_id is required when global.addressing is absent",
		}},
		{name: "item7/V4 legacy with subnet_id", src: legacyHead + `
  work:
    subnet_id: 0
`},
		{name: "item7/V4 zone mode needs none", src: zoneHead + `
  work: {}
  lab:
`},
		{name: "item8/V5 same id in two zones", src: zoneHead + `
  perso:
    trust_level: trusted
    subnet_id: 3
  lab:
    subnet_id: 3
`},
		{name: "item8/V5 same zone, default semi-trusted, disabled included", src: zoneHead + `
  lab:
    subnet_id: 3
  work:
    trust_level: semi-trusted
    enabled: false
    subnet_id: 3
  other:
    subnet_id: 3
`, want: []string{
			"infra.yml:11:16: domains.work.subnet_id: subnet_id 3 is already used by domain \"lab\" in zone \"semi-trusted\"",
			"infra.yml:13:16: domains.other.subnet_id: subnet_id 3 is already used by domain \"lab\" in zone \"semi-trusted\"",
		}},
		{name: "item8/V5 legacy is global", src: legacyHead + `
  perso:
    trust_level: trusted
    subnet_id: 3
  lab:
    trust_level: admin
    subnet_id: 3
`, want: []string{
			"infra.yml:10:16: domains.lab.subnet_id: subnet_id 3 is already used by domain \"perso\"",
		}},
	})
}

// TestGlobalWarnings covers W9 and W17.
func TestGlobalWarnings(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "W9 zone_step 5", src: "project_name: p\nglobal:\n  addressing:\n    zone_step: 5\ndomains: {}\n", want: []string{
			"warning: infra.yml:4:16: global.addressing.zone_step: zone_step has no effect; zone offsets are fixed (admin 0, trusted 10, semi-trusted 20, untrusted 40, disposable 50)",
		}},
		{name: "W9 zone_step 10", src: "project_name: p\nglobal:\n  addressing:\n    zone_step: 10\ndomains: {}\n"},
		{name: "W17 base_subnet in zone mode", src: "project_name: p\nglobal:\n  base_subnet: \"10.200\"\n  addressing: {zone_base: 100}\ndomains: {}\n", want: []string{
			"warning: infra.yml:3:16: global.base_subnet: base_subnet is ignored because global.addressing is set",
		}},
		{name: "W17 base_subnet in legacy mode", src: "project_name: p\nglobal:\n  base_subnet: \"10.200\"\ndomains: {}\n"},
	})
}

// TestFirewallProfileName covers the second part of N9.
func TestFirewallProfileName(t *testing.T) {
	const head = "project_name: p\nglobal:\n  addressing: {}\n  firewall_mode: %s\ndomains:\n"
	body := `
  anklume:
    profiles:
      firewall-multi-nic: {}
  work:
    profiles:
      firewall-multi-nic: {}
`
	runCases(t, []ruleCase{
		{name: "N9 firewall-multi-nic in anklume under vm", src: sprintf(head, "vm") + body, want: []string{
			"infra.yml:9:7: domains.anklume.profiles.firewall-multi-nic: a domain profile cannot be named \"firewall-multi-nic\" when firewall_mode is \"vm\"",
		}},
		{name: "N9 firewall-multi-nic under host", src: sprintf(head, "host") + body},
		{name: "N9 domain holding sys-firewall", src: sprintf(head, "vm") + `
  anklume:
    profiles:
      firewall-multi-nic: {}
  work:
    profiles:
      firewall-multi-nic: {}
    machines:
      sys-firewall: {type: vm}
`, want: []string{
			"infra.yml:12:7: domains.work.profiles.firewall-multi-nic: a domain profile cannot be named \"firewall-multi-nic\" when firewall_mode is \"vm\"",
		}},
	})
}

// TestAIExclusive covers the five messages of V27 (§16 item 17).
func TestAIExclusive(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "item17/V27 default required", src: `project_name: p
global:
  ai_access_policy: exclusive
domains:
  ai-tools: {subnet_id: 1}
`, want: []string{
			"infra.yml:2:1: global: ai_access_default is required when ai_access_policy is \"exclusive\"",
		}},
		{name: "item17/V27 default is ai-tools", src: `project_name: p
global:
  ai_access_policy: exclusive
  ai_access_default: ai-tools
domains:
  ai-tools: {subnet_id: 1}
`, want: []string{
			"infra.yml:4:22: global.ai_access_default: ai_access_default cannot be \"ai-tools\"",
		}},
		{name: "item17/V27 unknown default, no ai-tools", src: `project_name: p
global:
  ai_access_policy: exclusive
  ai_access_default: pro
domains:
  perso: {subnet_id: 1}
`, want: []string{
			"infra.yml:3:21: global.ai_access_policy: ai_access_policy is \"exclusive\" but no \"ai-tools\" domain exists",
			"infra.yml:4:22: global.ai_access_default: ai_access_default \"pro\" is not a known domain",
		}},
		{name: "item17/V27 two policies target ai-tools", src: `project_name: p
global:
  ai_access_policy: exclusive
  ai_access_default: pro
domains:
  pro: {subnet_id: 1}
  perso: {subnet_id: 2}
  ai-tools: {subnet_id: 3}
network_policies:
  - {from: pro, to: ai-tools}
  - {from: perso, to: ai-tools}
  - {from: host, to: ai-tools}
`, want: []string{
			"infra.yml:11:23: network_policies[1].to: 3 policies target \"ai-tools\" (max 1 allowed when ai_access_policy is \"exclusive\")",
		}},
		{name: "item17/V27 valid exclusive", src: `project_name: p
global:
  ai_access_policy: exclusive
  ai_access_default: pro
domains:
  pro: {subnet_id: 1}
  ai-tools: {subnet_id: 3}
network_policies:
  - {from: pro, to: ai-tools}
`},
		{name: "item17/V27 open policy checks nothing", src: `project_name: p
global:
  ai_access_policy: open
  ai_access_default: nowhere
domains:
  pro: {subnet_id: 1}
`},
	})
}

// TestFilePortalPaths: allowed_paths entries must be clean, so that the
// portal covers exactly what it names.
func TestFilePortalPaths(t *testing.T) {
	head := "project_name: p\nglobal:\n  addressing: {}\ndomains:\n  work:\n    file_portal:\n      allowed_paths: "
	runCases(t, []ruleCase{
		{name: "clean", src: head + "[/srv/in, /, /home/user/Inbox]\n"},
		{name: "dotdot, trailing slash, double slash", src: head + "[/srv/in/../etc, /srv/in/, //srv, /srv/./x]\n", want: []string{
			`infra.yml:7:23: domains.work.file_portal.allowed_paths[0]: must be a clean absolute path (no ".", "..", "//" or trailing "/"), got "/srv/in/../etc"` + "\n  hint: write \"/srv/etc\"",
			`infra.yml:7:39: domains.work.file_portal.allowed_paths[1]: must be a clean absolute path (no ".", "..", "//" or trailing "/"), got "/srv/in/"` + "\n  hint: write \"/srv/in\"",
			`infra.yml:7:49: domains.work.file_portal.allowed_paths[2]: must be a clean absolute path (no ".", "..", "//" or trailing "/"), got "//srv"` + "\n  hint: write \"/srv\"",
			`infra.yml:7:56: domains.work.file_portal.allowed_paths[3]: must be a clean absolute path (no ".", "..", "//" or trailing "/"), got "/srv/./x"` + "\n  hint: write \"/srv/x\"",
		}},
	})
}
