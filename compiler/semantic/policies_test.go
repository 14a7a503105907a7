package semantic

import "testing"

// polHead declares domains pro (with machine pro-ws), perso (with perso-ws,
// no ip) and a disabled domain old (with old-ws); policies start on line 15.
const polHead = `project_name: p
global:
  addressing: {}
domains:
  pro:
    machines:
      pro-ws: {ip: 10.110.0.1}
  perso:
    machines:
      perso-ws: {}
  old:
    enabled: false
    machines:
      old-ws: {}
network_policies:
`

// TestPolicyEndpoints covers V26 known endpoints with the did-you-mean hint,
// N11, N12, W4 and W11 (§16 items 12 and 21).
func TestPolicyEndpoints(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "item12/V26 unknown from and to", src: polHead + `  - {from: prro, to: zzzzzzzz}
`, want: []string{
			"infra.yml:16:12: network_policies[0].from: \"prro\" is not a known domain, machine or \"host\"\n  hint: did you mean \"pro\"?",
			"infra.yml:16:22: network_policies[0].to: \"zzzzzzzz\" is not a known domain, machine or \"host\"",
		}},
		{name: "item12/V26 hosts, machines, intra-domain", src: polHead + `  - {from: host, to: pro}
  - {from: pro-ws, to: perso-ws}
  - {from: pro, to: pro, ports: [22]}
  - {from: perso, to: host, ports: [53], protocol: udp}
`},
		{name: "item12/N12 both host", src: polHead + `  - from: host
    to: host
`, want: []string{
			"infra.yml:17:9: network_policies[0].to: from and to cannot both be \"host\"",
		}},
		{name: "item21/W4 disabled domain and its machine", src: polHead + `  - {from: old, to: pro}
  - {from: pro, to: old-ws}
`, want: []string{
			"warning: infra.yml:16:12: network_policies[0].from: policy refers to disabled domain \"old\"; it has no effect until the domain is enabled",
			"warning: infra.yml:17:21: network_policies[1].to: policy refers to disabled domain \"old\"; it has no effect until the domain is enabled",
		}},
		{name: "W11 endpoint names a domain and a machine", src: zoneHead + `  pro:
    machines:
      perso: {}
  perso: {}
network_policies:
  - {from: pro, to: perso}
`, want: []string{
			"warning: infra.yml:10:21: network_policies[0].to: \"perso\" names both a domain and a machine; it is read as the domain",
		}},
		{name: "N11 legacy machine endpoint without ip", src: legacyHead + `  pro:
    subnet_id: 1
    machines:
      pro-ws: {ip: 10.100.1.1}
      pro-db: {}
network_policies:
  - {from: pro-ws, to: pro-db}
  - {from: pro-ws, to: pro}
`, want: []string{
			"infra.yml:10:24: network_policies[0].to: machine \"pro-db\" has no ip; a policy endpoint that names a machine needs a static ip\n  hint: set domains.pro.machines.pro-db.ip or name the domain \"pro\"",
		}},
		{name: "N11 zone mode has automatic ips", src: zoneHead + `  pro:
    machines:
      pro-db: {}
network_policies:
  - {from: host, to: pro-db}
`},
	})
}

// TestPolicyPorts covers W8, W12, W13 and W14 (§16 item 12).
func TestPolicyPorts(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "item12/W12 empty ports", src: polHead + `  - {from: pro, to: perso, ports: []}
`, want: []string{
			"warning: infra.yml:16:35: network_policies[0].ports: ports is empty; this policy opens nothing",
		}},
		{name: "W13 protocol with ports all", src: polHead + `  - {from: pro, to: perso, protocol: udp}
  - {from: perso, to: pro, ports: all, protocol: tcp}
`, want: []string{
			"warning: infra.yml:16:38: network_policies[0].protocol: protocol has no effect when ports is \"all\"",
			"warning: infra.yml:17:50: network_policies[1].protocol: protocol has no effect when ports is \"all\"",
		}},
		{name: "W14 repeated port", src: polHead + `  - {from: pro, to: perso, ports: [22, 80, 22, 22, 80]}
`, want: []string{
			"warning: infra.yml:16:44: network_policies[0].ports[2]: port 22 is listed twice; duplicates are ignored",
			"warning: infra.yml:16:52: network_policies[0].ports[4]: port 80 is listed twice; duplicates are ignored",
		}},
		{name: "W8 duplicates", src: polHead + `  - {from: pro, to: perso, ports: [22, 80]}
  - {from: pro, to: perso, ports: [80, 22], description: again}
  - {from: pro, to: perso, ports: [80, 22], protocol: udp}
  - {from: perso, to: pro, ports: all, bidirectional: true}
  - {from: pro, to: perso}
  - {from: pro, to: perso, ports: [22, 80], bidirectional: true}
  - {from: perso, to: pro, ports: [22, 80], protocol: tcp}
`, want: []string{
			"warning: infra.yml:17:5: network_policies[1]: duplicates network_policies[0]",
			"warning: infra.yml:20:5: network_policies[4]: duplicates network_policies[3]",
			"warning: infra.yml:22:5: network_policies[6]: duplicates network_policies[5]",
		}},
	})
}

// TestOpenclaw covers W5 (§16 item 21).
func TestOpenclaw(t *testing.T) {
	src := func(policies string) string {
		return zoneHead + `  ai:
    machines:
      ai-openclaw:
        roles: [base_system, openclaw_server]
  anklume: {}
network_policies:` + policies + "\n"
	}
	warn := []string{"warning: infra.yml:8:30: domains.ai.machines.ai-openclaw.roles[1]: machine \"ai-openclaw\" has role openclaw_server but no network policy starts from it or its domain"}
	runCases(t, []ruleCase{
		{name: "item21/W5 no policy", src: src(" []"), want: warn},
		{name: "item21/W5 only incoming", src: src("\n  - {from: anklume, to: ai}"), want: warn},
		{name: "item21/W5 from its domain", src: src("\n  - {from: ai, to: host}")},
		{name: "item21/W5 from the machine", src: src("\n  - {from: ai-openclaw, to: anklume}")},
		{name: "item21/W5 bidirectional", src: src("\n  - {from: anklume, to: ai-openclaw, bidirectional: true}")},
	})
}
