package semantic

import (
	"fmt"
	"github.com/anklume/anklume/compiler/suggest"
	"slices"
	"strconv"
	"strings"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/load"
)

// policy is one readable entry of `network_policies`.
type policy struct {
	index    int
	node     *load.Node
	path     diag.Path
	from, to *load.Node // nil unless a readable string
	// ports is the canonical port set ("all" or sorted numbers); portsOK is
	// false when it cannot be read.
	ports   string
	portsOK bool
	// proto is the protocol that counts for W8 ("" for ports all).
	proto   string
	protoOK bool
	bidir   bool
}

// readPolicies returns the readable policies; complete is false when the
// list, or one of its entries, cannot be read.
func (c *checker) readPolicies() (pols []*policy, complete bool) {
	items, ok := c.list(c.root, "network_policies")
	if !ok || c.root == nil {
		return nil, false
	}
	complete = true
	var out []*policy
	for i, it := range items {
		if c.bad.Has(it) {
			complete = false
		}
		if !c.ok(it) || it.Kind != load.Map {
			continue
		}
		p := &policy{index: i, node: it, path: diag.Path("").Key("network_policies").Index(i)}
		if n, ok := c.field(it, "from"); ok && n.IsStr() {
			p.from = n
		}
		if n, ok := c.field(it, "to"); ok && n.IsStr() {
			p.to = n
		}
		p.ports, p.portsOK = c.portSet(it)
		proto := c.str(it, "protocol", "tcp")
		p.proto, p.protoOK = proto.v, proto.known
		if p.ports == "all" {
			p.proto, p.protoOK = "", true
		}
		p.bidir = c.boolean(it, "bidirectional", false).is(true)
		out = append(out, p)
	}
	return out, complete
}

// portSet returns the canonical port set of a policy.
func (c *checker) portSet(it *load.Node) (string, bool) {
	n, ok := c.field(it, "ports")
	switch {
	case !ok:
		return "", false
	case n == nil, n.IsStr() && n.Value == "all":
		return "all", true
	case n.Kind != load.Seq:
		return "", false
	}
	var ports []int64
	for _, p := range n.Items {
		v, isInt := p.Int()
		if !c.ok(p) || !isInt {
			return "", false
		}
		if !slices.Contains(ports, v) {
			ports = append(ports, v)
		}
	}
	slices.Sort(ports)
	s := make([]string, len(ports))
	for i, v := range ports {
		s[i] = strconv.FormatInt(v, 10)
	}
	return "[" + strings.Join(s, ",") + "]", true
}

// checkPolicies runs V26 (known endpoints), N11, N12, W4, W5, W8, W11,
// W12, W13 and W14.
func (c *checker) checkPolicies() {
	pols, complete := c.readPolicies()
	for _, p := range pols {
		for _, ep := range []struct {
			n   *load.Node
			key string
		}{{p.from, "from"}, {p.to, "to"}} {
			if ep.n != nil {
				c.checkEndpoint(ep.n, p.path.Key(ep.key))
			}
		}
		if p.from != nil && p.to != nil && p.from.Value == "host" && p.to.Value == "host" {
			c.dl.Errorf(p.to.Pos, p.path.Key("to").String(), "", "from and to cannot both be %q", "host")
		}
		c.checkPorts(p)
	}
	c.checkDuplicatePolicies(pols)
	if complete {
		c.checkOpenclaw(pols)
	}
}

// checkEndpoint checks one from/to value: V26, N11, W4 and W11.
func (c *checker) checkEndpoint(n *load.Node, p diag.Path) {
	x := n.Value
	if x == "host" {
		return
	}
	switch {
	case c.isDomain(x):
		if c.isMachine(x) {
			c.dl.Warnf(n.Pos, p.String(), "", "%s names both a domain and a machine; it is read as the domain", load.Quote(x))
		}
		c.warnDisabled(n, p, c.byName[x])
	case c.isMachine(x):
		d := c.machineDom[x]
		c.warnDisabled(n, p, d)
		m := c.machineOf[x]
		if m == nil || !c.g.zoneMode.is(false) {
			return
		}
		// N11: in legacy mode a machine endpoint needs a static ip.
		if ip, ok := c.field(m.node, "ip"); ok && ip == nil {
			c.dl.Errorf(n.Pos, p.String(),
				fmt.Sprintf("set domains.%s.machines.%s.ip or name the domain %s", m.dom.name, m.name, load.Quote(m.dom.name)),
				"machine %s has no ip; a policy endpoint that names a machine needs a static ip", load.Quote(x))
		}
	case c.namesComplete():
		hint := ""
		if s, ok := suggest.Closest(x, c.knownNames()); ok {
			hint = fmt.Sprintf("did you mean %s?", load.Quote(s))
		}
		c.dl.Errorf(n.Pos, p.String(), hint, "%s is not a known domain, machine or %q", load.Quote(x), "host")
	}
}

// warnDisabled emits W4 when d is disabled.
func (c *checker) warnDisabled(n *load.Node, p diag.Path, d *domain) {
	if d != nil && d.node != nil && d.enabled.is(false) {
		c.dl.Warnf(n.Pos, p.String(), "", "policy refers to disabled domain %s; it has no effect until the domain is enabled",
			load.Quote(d.name))
	}
}

// checkPorts emits W12, W13 and W14.
func (c *checker) checkPorts(p *policy) {
	ports, ok := c.field(p.node, "ports")
	if !ok {
		return
	}
	all := ports == nil || (ports.IsStr() && ports.Value == "all")
	if all {
		if proto, ok := c.field(p.node, "protocol"); ok && proto != nil {
			c.dl.Warnf(proto.Pos, p.path.Key("protocol").String(), "", "protocol has no effect when ports is %q", "all")
		}
		return
	}
	if ports.Kind != load.Seq {
		return
	}
	if len(ports.Items) == 0 {
		c.dl.Warnf(ports.Pos, p.path.Key("ports").String(), "", "ports is empty; this policy opens nothing")
		return
	}
	seen := map[int64]int{}
	for i, it := range ports.Items {
		v, isInt := it.Int()
		if !c.ok(it) || !isInt {
			continue
		}
		seen[v]++
		if seen[v] == 2 {
			c.dl.Warnf(it.Pos, p.path.Key("ports").Index(i).String(), "", "port %d is listed twice; duplicates are ignored", v)
		}
	}
}

// checkDuplicatePolicies emits W8: a policy whose every direction is
// already opened by an earlier entry with the same protocol and port set.
// A bidirectional entry also counts as its mirror.
func (c *checker) checkDuplicatePolicies(pols []*policy) {
	covered := map[string]int{}
	key := func(from, to string, p *policy) string {
		return from + "\x00" + to + "\x00" + p.proto + "\x00" + p.ports
	}
	for _, p := range pols {
		if p.from == nil || p.to == nil || !p.portsOK || !p.protoOK {
			continue
		}
		fwd := key(p.from.Value, p.to.Value, p)
		rev := key(p.to.Value, p.from.Value, p)
		i, dup := covered[fwd]
		if dup && p.bidir {
			_, dup = covered[rev]
		}
		if dup {
			c.dl.Warnf(p.node.Pos, p.path.String(), "", "duplicates network_policies[%d]", i)
		}
		if _, ok := covered[fwd]; !ok {
			covered[fwd] = p.index
		}
		if _, ok := covered[rev]; !ok && p.bidir {
			covered[rev] = p.index
		}
	}
}

// checkOpenclaw emits W5: a machine with role openclaw_server from which
// no policy starts (neither the machine nor its domain is a `from`; a
// bidirectional policy starts from both ends).
func (c *checker) checkOpenclaw(pols []*policy) {
	starts := map[string]bool{}
	for _, p := range pols {
		if p.from == nil && p.node.Val("from") != nil {
			return // an unreadable from might name the machine
		}
		if p.from != nil {
			starts[p.from.Value] = true
		}
		if p.bidir && p.to != nil {
			starts[p.to.Value] = true
		}
	}
	for _, m := range c.allMachines() {
		roles, _ := c.list(m.node, "roles")
		for i, r := range roles {
			if !c.ok(r) || !r.IsStr() || r.Value != "openclaw_server" {
				continue
			}
			if !starts[m.dom.name] && !(starts[m.name] && !c.isDomain(m.name)) {
				c.dl.Warnf(r.Pos, m.path.Key("roles").Index(i).String(), "",
					"machine %s has role openclaw_server but no network policy starts from it or its domain", load.Quote(m.name))
			}
			break
		}
	}
}
