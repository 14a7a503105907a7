package semantic

import "testing"

// TestClusterTargets covers the one-member rule of a domain: machine
// targets repeat the domain's or agree with each other.
func TestClusterTargets(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "domain target inherited, repeated and group", src: zoneHead + `  pro:
    target: m1
    machines:
      a: {}
      b: {target: m1}
  lab:
    target: "@lab"
    machines:
      c: {target: "@lab"}
`},
		{name: "machine target differs from its domain's", src: zoneHead + `  pro:
    target: "@lab"
    machines:
      a: {target: m2}
`, want: []string{
			"infra.yml:8:19: domains.pro.machines.a.target: machine \"a\" targets \"m2\" but its domain \"pro\" targets \"@lab\"; every machine of a domain lives on the domain's cluster member (a bridge does not span members without OVN, which anklume does not set up)\n  hint: remove the machine's target, or move the machine to a domain whose target is \"m2\"",
		}},
		{name: "target with the firewall VM", src: "project_name: p\nglobal:\n  addressing: {}\n  firewall_mode: vm\ndomains:\n  pro:\n    target: m1\n", want: []string{
			"infra.yml:7:13: domains.pro.target: a domain target cannot be used with firewall_mode: vm: the firewall VM joins every domain's bridge, and a bridge does not span cluster members without OVN, which anklume does not set up\n  hint: use firewall_mode: host on a cluster",
		}},
		{name: "machines of an untargeted domain disagree", src: zoneHead + `  pro:
    machines:
      a: {target: m1}
      b: {}
      c: {target: m2}
`, want: []string{
			"infra.yml:9:19: domains.pro.machines.c.target: machine \"c\" targets \"m2\" but machine \"a\" of the same domain targets \"m1\"; every machine of a domain lives on one cluster member (a bridge does not span members without OVN, which anklume does not set up)\n  hint: set domains.pro.target once for the whole domain",
		}},
	})
}

// TestClusterPolicies covers the refusal of a network policy between
// domains that may be on different cluster members.
func TestClusterPolicies(t *testing.T) {
	const doms = zoneHead + `  a: {target: m1, machines: {a1: {}}}
  b: {target: m1, machines: {b1: {}}}
  c: {target: m2}
  g1: {target: "@lab"}
  g2: {target: "@lab"}
  n1: {}
  n2: {machines: {n2m: {}}}
  mt: {machines: {mt1: {target: m2}}}
network_policies:
`
	runCases(t, []ruleCase{
		{name: "same member, untargeted pair, host, same domain", src: doms + `  - {from: a, to: b}
  - {from: a1, to: b1, ports: [22]}
  - {from: n1, to: n2m}
  - {from: host, to: c}
  - {from: g1, to: g1}
  - {from: c, to: mt, ports: [80]}
`},
		{name: "different members, group, target and none", src: doms + `  - {from: a, to: c}
  - {from: g1, to: g2}
  - {from: n1, to: b1}
`, want: []string{
			"infra.yml:14:5: network_policies[0]: domains \"a\" (member \"m1\") and \"c\" (member \"m2\") may be on different cluster members; anklume does not route between cluster members, so a network policy between them is refused (declaring how members route to each other is not supported)\n  hint: place both domains on the same member (the same member name as their target)",
			"infra.yml:15:5: network_policies[1]: domains \"g1\" (cluster group \"@lab\") and \"g2\" (cluster group \"@lab\") may be on different cluster members; anklume does not route between cluster members, so a network policy between them is refused (declaring how members route to each other is not supported)\n  hint: place both domains on the same member (the same member name as their target)",
			"infra.yml:16:5: network_policies[2]: domains \"n1\" (no target) and \"b\" (member \"m1\") may be on different cluster members; anklume does not route between cluster members, so a network policy between them is refused (declaring how members route to each other is not supported)\n  hint: place both domains on the same member (the same member name as their target)",
		}},
	})
}
