package semantic

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/anklume/anklume/compiler/load"
)

// checkMachines runs the per-machine rules: V10, V12/W1, N3/W10, V16,
// V18/W19, N15 and W2.
func (c *checker) checkMachines() {
	first := map[string]*machine{}
	prefix, prefixKnown := c.instancePrefix()
	for _, m := range c.allMachines() {
		// V10: machine names are unique across all domains.
		if f, dup := first[m.name]; dup {
			c.dl.Errorf(m.keyPos, m.path.String(), "", "machine name %s is already used in domain %s",
				load.Quote(m.name), load.Quote(f.dom.name))
		} else {
			first[m.name] = m
		}
		// N15: instance name length.
		if prefixKnown {
			if n := prefix + m.name; utf8.RuneCountInString(n) > 63 {
				c.dl.Errorf(m.keyPos, m.path.String(), "", "instance name %s is %d characters; the maximum is 63",
					load.Quote(n), utf8.RuneCountInString(n))
			}
		}
		typ := c.str(m.node, "type", "lxc")
		c.checkPrivileged(m, typ)
		c.checkIP(m)
		c.checkProfiles(m)
		c.checkSnapshots(m)
		// W2: LXC in an untrusted or disposable domain.
		if typ.is("lxc") && (m.dom.trust.is("untrusted") || m.dom.trust.is("disposable")) {
			c.dl.Warnf(m.keyPos, m.path.String(), "",
				"domain %s is %s but machine %s uses LXC; consider type: vm for stronger isolation",
				load.Quote(m.dom.name), m.dom.trust.v, load.Quote(m.name))
		}
	}
}

// instancePrefix returns the nesting prefix of §4.5; known is false when
// global.nesting_prefix cannot be read and the prefix matters.
func (c *checker) instancePrefix() (string, bool) {
	if c.opts.Context.Level <= 0 {
		return "", true
	}
	if !c.g.nestingPrefix.known {
		return "", false
	}
	if !c.g.nestingPrefix.v {
		return "", true
	}
	return fmt.Sprintf("%03d-", c.opts.Context.Level), true
}

// incusString turns a config or device scalar into its Incus string (§2.2
// item 8); ok is false for anything else.
func incusString(n *load.Node) (string, bool) {
	switch {
	case n.IsStr(), n.IsInt():
		return n.Value, true
	case n.IsBool():
		return strings.ToLower(n.Value), true
	}
	return "", false
}

// truthy is the Incus reading of a boolean string (§2.2 item 9).
func truthy(s string) bool {
	switch strings.ToLower(s) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

// checkPrivileged runs V12 and W1.
func (c *checker) checkPrivileged(m *machine, typ tri[string]) {
	if !typ.is("lxc") {
		return
	}
	cfg, ok := c.field(m.node, "config")
	if !ok || cfg == nil {
		return
	}
	v, ok := c.field(cfg, "security.privileged")
	if !ok || v == nil {
		return
	}
	s, ok := incusString(v)
	if !ok || !truthy(s) {
		return
	}
	ctx := c.opts.Context
	if ctx.VMNested == nil || *ctx.VMNested {
		return
	}
	p := m.path.Key("config").Key("security.privileged").String()
	if ctx.Yolo {
		c.dl.Warnf(v.Pos, p, "", "security.privileged=true on an LXC machine is allowed only because yolo is on")
		return
	}
	c.dl.Errorf(v.Pos, p, "use type: vm, or run anklume inside a VM",
		"security.privileged=true on an LXC machine is forbidden when vm_nested is false")
}

// checkIP runs N3 and W10 on an explicit ip.
func (c *checker) checkIP(m *machine) {
	ipn, ok := c.field(m.node, "ip")
	if !ok || !ipn.IsStr() {
		return
	}
	a, err := netip.ParseAddr(ipn.Value)
	if err != nil || !a.Is4() {
		return // N2 is S1's
	}
	p := m.path.Key("ip").String()
	ip := ipn.Value
	switch h := a.As4()[3]; {
	case h == 0:
		c.dl.Errorf(ipn.Pos, p, "", "ip %s is the network address", ip)
	case h == 255:
		c.dl.Errorf(ipn.Pos, p, "", "ip %s is the broadcast address", ip)
	case h == 254:
		c.dl.Errorf(ipn.Pos, p, "", "ip %s is reserved for the gateway", ip)
	case h == 253 && c.g.firewallVM.is(true) && !m.isFirewall():
		c.dl.Errorf(ipn.Pos, p, "", "ip %s is reserved for the firewall VM (firewall_mode: vm)", ip)
	case h >= 100 && h <= 249:
		c.dl.Warnf(ipn.Pos, p, "", "ip %s is inside the DHCP range .100-.249", ip)
	}
}

// checkProfiles runs V16.
func (c *checker) checkProfiles(m *machine) {
	items, ok := c.list(m.node, "profiles")
	if !ok || !m.dom.profilesOK {
		return
	}
	for i, it := range items {
		if !c.ok(it) || !it.IsStr() {
			continue
		}
		p := it.Value
		if p == "default" || m.dom.profiles[p] != nil {
			continue
		}
		if p == firewallProfile && m.isFirewall() {
			if !c.g.firewallVM.known || c.g.firewallVM.v {
				continue
			}
		}
		c.dl.Errorf(it.Pos, m.path.Key("profiles").Index(i).String(),
			fmt.Sprintf("declare it under domains.%s.profiles, or use \"default\"", m.dom.name),
			"profile %s is not defined in domain %s", load.Quote(p), load.Quote(m.dom.name))
	}
}

// checkSnapshots runs V18 and W19.
func (c *checker) checkSnapshots(m *machine) {
	if s, ok := c.field(m.node, "snapshots_schedule"); ok && s.IsStr() && !ValidSchedule(s.Value) {
		c.dl.Errorf(s.Pos, m.path.Key("snapshots_schedule").String(), "",
			"must be a cron expression with 5 fields or a list of @hourly, @daily, @midnight, @weekly, @monthly, @annually, @yearly, @startup, @never; got %s",
			load.Quote(s.Value))
	}
	e, ok := c.field(m.node, "snapshots_expiry")
	if !ok || !e.IsStr() {
		return
	}
	p := m.path.Key("snapshots_expiry").String()
	norm, valid := NormalizeExpiry(e.Value)
	switch {
	case !valid:
		c.dl.Errorf(e.Pos, p, "", "must be an expiry such as 30d, 24H, 60M or 1y 6m, got %s", load.Quote(e.Value))
	case norm != e.Value:
		c.dl.Warnf(e.Pos, p, "",
			"snapshots_expiry %s is read as %s (Incus uses H for hours, M for minutes and m for months)",
			load.Quote(e.Value), load.Quote(norm))
	}
}

// checkGPU runs V25 and W3.
func (c *checker) checkGPU() {
	if !c.g.gpuPolicy.known {
		return
	}
	var gpus []*machine
	for _, d := range c.domains {
		if !d.enabled.is(true) {
			continue
		}
		for _, m := range d.machines {
			if c.hasGPU(m) {
				gpus = append(gpus, m)
			}
		}
	}
	if len(gpus) < 2 {
		return
	}
	names := make([]string, len(gpus))
	for i, m := range gpus {
		names[i] = m.name
	}
	list := strings.Join(names, ", ")
	second := gpus[1]
	switch c.g.gpuPolicy.v {
	case "exclusive":
		c.dl.Errorf(second.keyPos, second.path.String(), "set global.gpu_policy: shared",
			"gpu_policy is %q but %d instances have GPU access: %s", "exclusive", len(gpus), list)
	case "shared":
		c.dl.Warnf(second.keyPos, second.path.String(), "",
			"%d instances share the GPU (%s); consumer GPUs offer no VRAM isolation", len(gpus), list)
	}
}

// hasGPU reports whether m has GPU access (§4.10): gpu: true, or a profile
// of its own domain with a device of type gpu.
func (c *checker) hasGPU(m *machine) bool {
	if g := c.boolean(m.node, "gpu", false); g.is(true) {
		return true
	}
	items, ok := c.list(m.node, "profiles")
	if !ok {
		return false
	}
	for _, it := range items {
		if !c.ok(it) || !it.IsStr() {
			continue
		}
		pe := m.dom.profiles[it.Value]
		if pe == nil || !c.ok(pe.Value) {
			continue
		}
		devs, _ := c.mapping(pe.Value, "devices")
		for _, de := range devs {
			if c.ok(de.Value) && c.str(de.Value, "type", "").is("gpu") {
				return true
			}
		}
	}
	return false
}
