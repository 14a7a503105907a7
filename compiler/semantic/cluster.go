package semantic

import (
	"fmt"
	"strings"

	"github.com/anklume/anklume/compiler/load"
)

// Cluster placement rules.
//
// The domain is the unit of placement on an Incus cluster: its bridge is
// one L2 segment, and a bridge does not span members without OVN (which
// anklume does not set up), so every machine of a domain lives on the one
// member the domain is placed on. A machine-level target can therefore
// only repeat its domain's, and the machines of a domain without a target
// must agree with each other (their common target becomes the domain's).
//
// Traffic between two domains goes through the host's nftables forward
// chain. Two domains on different members would need the members to
// route each other's subnets, which anklume does not arrange, so a network
// policy between domains that are not known to share a member is refused:
// they share one when they name the same member, or when neither has a
// target (a single server, where nothing moves). Two domains behind the
// same @group may still be placed on different members, so they count as
// different.

// domainTarget is the effective target of a domain: its own, or the one
// its machines agree on, with where it comes from. known is false when a
// target cannot be read.
type domainTarget struct {
	v     string
	known bool
}

// targets computes the effective target of every domain, reporting the
// machine targets that break the one-member rule.
func (c *checker) targets() map[string]domainTarget {
	out := map[string]domainTarget{}
	for _, d := range c.domains {
		dt := c.str(d.node, "target", "")
		eff := domainTarget(dt)
		var first *machine
		for _, m := range d.machines {
			mt := c.str(m.node, "target", "")
			if !mt.known {
				eff.known = eff.known && dt.v != ""
				continue
			}
			if mt.v == "" {
				continue
			}
			n, _ := c.field(m.node, "target")
			p := m.path.Key("target").String()
			switch {
			case dt.known && dt.v != "" && mt.v != dt.v:
				c.dl.Errorf(n.Pos, p, fmt.Sprintf("remove the machine's target, or move the machine to a domain whose target is %s", load.Quote(mt.v)),
					"machine %s targets %s but its domain %s targets %s; every machine of a domain lives on the domain's cluster member (a bridge does not span members without OVN, which anklume does not set up)",
					load.Quote(m.name), load.Quote(mt.v), load.Quote(d.name), load.Quote(dt.v))
			case dt.known && dt.v == "" && first != nil && mt.v != eff.v:
				c.dl.Errorf(n.Pos, p, fmt.Sprintf("set %s once for the whole domain", d.path.Key("target")),
					"machine %s targets %s but machine %s of the same domain targets %s; every machine of a domain lives on one cluster member (a bridge does not span members without OVN, which anklume does not set up)",
					load.Quote(m.name), load.Quote(mt.v), load.Quote(first.name), load.Quote(eff.v))
			case dt.known && dt.v == "" && first == nil:
				first, eff.v = m, mt.v
			}
		}
		out[d.name] = eff
	}
	return out
}

// sameMember reports whether two effective targets are known to put
// their domains on the same member.
func sameMember(a, b string) bool {
	return a == b && !strings.HasPrefix(a, "@")
}

// describeTarget is how a message names a domain's placement.
func describeTarget(t string) string {
	switch {
	case t == "":
		return "no target"
	case strings.HasPrefix(t, "@"):
		return "cluster group " + load.Quote(t)
	}
	return "member " + load.Quote(t)
}

// checkCluster runs the placement rules above: machine targets, then the
// network policies between domains that may be on different members.
func (c *checker) checkCluster() {
	ts := c.targets()
	if c.g.firewallVM.is(true) {
		// The firewall VM has a NIC on every domain's bridge: it cannot
		// when the domains are on different members.
		for _, d := range c.domains {
			if n, ok := c.field(d.node, "target"); ok && n != nil {
				c.dl.Errorf(n.Pos, d.path.Key("target").String(), "use firewall_mode: host on a cluster",
					"a domain target cannot be used with firewall_mode: vm: the firewall VM joins every domain's bridge, and a bridge does not span cluster members without OVN, which anklume does not set up")
			}
		}
	}
	pols, _ := c.readPolicies()
	for _, p := range pols {
		if p.from == nil || p.to == nil {
			continue
		}
		a, b := c.endpointDomain(p.from.Value), c.endpointDomain(p.to.Value)
		if a == nil || b == nil || a == b || a.enabled.is(false) || b.enabled.is(false) {
			continue // a policy with a disabled domain has no effect (W4)
		}
		ta, tb := ts[a.name], ts[b.name]
		if !ta.known || !tb.known || sameMember(ta.v, tb.v) {
			continue
		}
		c.dl.Errorf(p.node.Pos, p.path.String(), "place both domains on the same member (the same member name as their target)",
			"domains %s (%s) and %s (%s) may be on different cluster members; anklume does not route between cluster members, so a network policy between them is refused (declaring how members route to each other is not supported)",
			load.Quote(a.name), describeTarget(ta.v), load.Quote(b.name), describeTarget(tb.v))
	}
}

// endpointDomain returns the domain a policy endpoint stands for (the
// domain itself, or the domain of a machine), or nil for "host" and
// unknown names.
func (c *checker) endpointDomain(x string) *domain {
	if x == "host" {
		return nil
	}
	if d := c.byName[x]; d != nil {
		return d
	}
	return c.machineDom[x]
}
