package semantic

import (
	"fmt"
	"path"
	"strings"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/load"
)

var globalPath = diag.Path("").Key("global")

// checkGlobal emits W9 and W17.
func (c *checker) checkGlobal() {
	if !c.g.globalOK {
		return
	}
	g := c.g.global
	if addr, ok := c.field(g, "addressing"); ok && addr != nil {
		if zs, ok := c.field(addr, "zone_step"); ok && zs != nil {
			if v, isInt := zs.Int(); isInt && v != 10 {
				c.dl.Warnf(zs.Pos, globalPath.Key("addressing").Key("zone_step").String(), "",
					"zone_step has no effect; zone offsets are fixed (admin 0, trusted 10, semi-trusted 20, untrusted 40, disposable 50)")
			}
		}
	}
	if c.g.zoneMode.is(true) {
		if bs, ok := c.field(g, "base_subnet"); ok && bs != nil {
			c.dl.Warnf(bs.Pos, globalPath.Key("base_subnet").String(), "",
				"base_subnet is ignored because global.addressing is set")
		}
	}
}

// checkDomains runs V4, V5 and the second part of N9.
func (c *checker) checkDomains() {
	type seen struct{ dom string }
	used := map[string]seen{}
	for _, d := range c.domains {
		sid, sidOK := c.field(d.node, "subnet_id")
		// V4: subnet_id is required in legacy mode.
		if c.g.zoneMode.is(false) && sidOK && sid == nil {
			c.dl.Errorf(d.keyPos, d.path.String(), "subnet_id is required when global.addressing is absent",
				"missing required key %q", "subnet_id")
		}
		// V5: subnet_id unique within a zone, or globally in legacy mode.
		if !sidOK || sid == nil || !c.g.zoneMode.known {
			continue
		}
		n, isInt := sid.Int()
		if !isInt {
			continue
		}
		key := sid.Value
		zone := ""
		if c.g.zoneMode.v {
			t := c.str(d.node, "trust_level", "semi-trusted")
			if !t.known {
				continue
			}
			zone = t.v
			key = zone + "\x00" + key
		}
		first, dup := used[key]
		if !dup {
			used[key] = seen{d.name}
			continue
		}
		p := d.path.Key("subnet_id").String()
		if c.g.zoneMode.v {
			c.dl.Errorf(sid.Pos, p, "", "subnet_id %d is already used by domain %s in zone %s",
				n, load.Quote(first.dom), load.Quote(zone))
		} else {
			c.dl.Errorf(sid.Pos, p, "", "subnet_id %d is already used by domain %s", n, load.Quote(first.dom))
		}
	}
	c.checkFirewallProfile()
	c.checkFilePortals()
}

// checkFilePortals: every file_portal.allowed_paths entry is a clean
// absolute path (no ".", ".." or doubled or trailing "/"), so that what
// the portal covers is exactly what it says (anklume copy and clipboard
// compare paths after cleaning them).
func (c *checker) checkFilePortals() {
	for _, d := range c.domains {
		if d.node == nil {
			continue
		}
		ps := d.node.Val("file_portal").Val("allowed_paths")
		if ps == nil {
			continue
		}
		for i, it := range ps.Items {
			if !it.IsStr() || !strings.HasPrefix(it.Value, "/") {
				continue // S1 reports it
			}
			if clean := path.Clean(it.Value); clean != it.Value {
				c.dl.Errorf(it.Pos, d.path.Key("file_portal").Key("allowed_paths").Index(i).String(),
					fmt.Sprintf("write %s", load.Quote(clean)),
					"must be a clean absolute path (no \".\", \"..\", \"//\" or trailing \"/\"), got %s", load.Quote(it.Value))
			}
		}
	}
}

// checkFirewallProfile is the second part of N9: with firewall_mode vm,
// the domain that holds the firewall machine has no profile named
// firewall-multi-nic.
func (c *checker) checkFirewallProfile() {
	if !c.g.firewallVM.is(true) {
		return
	}
	var holders []*domain
	for _, name := range []string{firewallMachine, firewallMachineV1} {
		if d, ok := c.machineDom[name]; ok {
			holders = append(holders, d)
		}
	}
	if len(holders) == 0 {
		if !c.machinesOK {
			return // the firewall machine may hide in an unreadable domain
		}
		if d, ok := c.byName["anklume"]; ok {
			holders = append(holders, d)
		}
	}
	done := map[*domain]bool{}
	for _, d := range holders {
		if done[d] || d.node == nil {
			continue
		}
		done[d] = true
		if e, ok := d.profiles[firewallProfile]; ok {
			c.dl.Errorf(e.KeyPos, d.path.Key("profiles").Key(firewallProfile).String(), "",
				"a domain profile cannot be named %q when firewall_mode is %q", firewallProfile, "vm")
		}
	}
}

// checkAI runs V27.
func (c *checker) checkAI() {
	if !c.g.aiPolicy.is("exclusive") {
		return
	}
	g := c.g.global
	def, defOK := c.field(g, "ai_access_default")
	switch {
	case !defOK:
	case def == nil:
		pos := diag.Pos{}
		if e := c.root.Get("global"); e != nil {
			pos = e.KeyPos
		}
		c.dl.Errorf(pos, globalPath.String(), "", "ai_access_default is required when ai_access_policy is %q", "exclusive")
	case !def.IsStr():
	case def.Value == aiToolsDomain:
		c.dl.Errorf(def.Pos, globalPath.Key("ai_access_default").String(), "", "ai_access_default cannot be %q", aiToolsDomain)
	case c.domainsOK && !c.isDomain(def.Value):
		c.dl.Errorf(def.Pos, globalPath.Key("ai_access_default").String(), "",
			"ai_access_default %s is not a known domain", load.Quote(def.Value))
	}
	if c.domainsOK && !c.isDomain(aiToolsDomain) {
		if pol, ok := c.field(g, "ai_access_policy"); ok && pol != nil {
			c.dl.Errorf(pol.Pos, globalPath.Key("ai_access_policy").String(), "",
				"ai_access_policy is %q but no %q domain exists", "exclusive", aiToolsDomain)
		}
	}
	var targets []*load.Node
	var paths []string
	items, _ := c.list(c.root, "network_policies")
	for i, it := range items {
		if to, ok := c.field(it, "to"); ok && to.IsStr() && to.Value == aiToolsDomain {
			targets = append(targets, to)
			paths = append(paths, diag.Path("").Key("network_policies").Index(i).Key("to").String())
		}
	}
	if len(targets) > 1 {
		c.dl.Errorf(targets[1].Pos, paths[1], "",
			"%d policies target %q (max 1 allowed when ai_access_policy is %q)", len(targets), aiToolsDomain, "exclusive")
	}
}
