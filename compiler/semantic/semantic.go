// Package semantic runs stage S2: the rules of SPEC.md §3.5 and the
// warnings of §3.6 that need no resolution.
//
// S2 reads the raw node tree after S1. A node that carries an S1 error, and
// everything under it, is skipped, and any shape is tolerated: a rule that
// cannot read what it needs (a setting with a bad value, a list where a
// mapping is expected) is simply not applied.
package semantic

import (
	"sort"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/load"
)

// Firewall machine names (SPEC.md §4.7).
const (
	firewallMachine   = "anklume-firewall"
	firewallMachineV1 = "sys-firewall"
	firewallProfile   = "firewall-multi-nic"
	aiToolsDomain     = "ai-tools"
)

// Check runs stage S2 on root, skipping the nodes in bad and everything
// under them. The result is sorted (SPEC.md §3.2).
func Check(root *load.Node, bad load.NodeSet, opts host.Options) diag.List {
	c := &checker{bad: bad, opts: opts}
	if bad == nil {
		c.bad = load.NodeSet{}
	}
	c.collect(root)
	c.checkGlobal()
	c.checkDomains()
	c.checkMachines()
	c.checkGPU()
	c.checkStorage()
	c.checkMounts()
	c.checkSharedVolumes()
	c.checkSeparators()
	c.checkPolicies()
	c.checkCluster()
	c.checkAI()
	c.checkInertKeys()
	c.dl.Sort()
	return c.dl
}

// tri is a setting that may be unreadable (its node carries an S1 error or
// has the wrong shape): rules that depend on it are skipped then.
type tri[T comparable] struct {
	v     T
	known bool
}

// is reports whether the setting is known and equal to v.
func (t tri[T]) is(v T) bool { return t.known && t.v == v }

// settings are the global values the rules read.
type settings struct {
	globalOK      bool
	global        *load.Node
	zoneMode      tri[bool]
	firewallVM    tri[bool]
	gpuPolicy     tri[string]
	aiPolicy      tri[string]
	nestingPrefix tri[bool]
	storagePool   tri[string]
}

// domain is one entry of `domains`.
type domain struct {
	name   string
	keyPos diag.Pos
	path   diag.Path
	node   *load.Node // nil when the domain carries an S1 error
	// enabled is the domain's `enabled` (default true).
	enabled tri[bool]
	// trust is the explicit trust_level ("" when absent).
	trust tri[string]
	// profiles holds the declared profile names; profilesOK is false when
	// the profiles map cannot be read.
	profiles   map[string]*load.Entry
	profilesOK bool
	machines   []*machine
}

// machine is one entry of `domains.<d>.machines`.
type machine struct {
	name   string
	keyPos diag.Pos
	path   diag.Path
	node   *load.Node // never nil: machines with an S1 error are not kept
	dom    *domain
}

// isFirewall reports whether m is the firewall machine of §4.7.
func (m *machine) isFirewall() bool {
	return m.name == firewallMachine || m.name == firewallMachineV1
}

type checker struct {
	bad  load.NodeSet
	opts host.Options
	dl   diag.List

	root *load.Node
	g    settings

	domains []*domain
	byName  map[string]*domain
	// machineDom maps every declared machine name (even one whose value
	// carries an S1 error) to the domain of its first declaration.
	machineDom map[string]*domain
	machineOf  map[string]*machine
	// domainsOK is false when the domain names cannot be listed;
	// machinesOK is false when some machine names cannot be listed.
	domainsOK  bool
	machinesOK bool
}

// ok reports whether n exists and carries no S1 error.
func (c *checker) ok(n *load.Node) bool { return n != nil && !c.bad.Has(n) }

// field returns the value of key k of parent. known is false when parent or
// the value carries an S1 error, or parent is neither a mapping nor null. A
// nil node with known true means the key is absent or null (§2.2 item 7).
func (c *checker) field(parent *load.Node, k string) (n *load.Node, known bool) {
	if parent == nil {
		return nil, true
	}
	if c.bad.Has(parent) {
		return nil, false
	}
	switch parent.Kind {
	case load.Null:
		return nil, true
	case load.Map:
	default:
		return nil, false
	}
	v := parent.Val(k)
	if v == nil || v.Kind == load.Null {
		return nil, true
	}
	if c.bad.Has(v) {
		return nil, false
	}
	return v, true
}

// str reads a string field with a default.
func (c *checker) str(parent *load.Node, k, def string) tri[string] {
	n, known := c.field(parent, k)
	switch {
	case !known:
		return tri[string]{}
	case n == nil:
		return tri[string]{def, true}
	case !n.IsStr():
		return tri[string]{}
	}
	return tri[string]{n.Value, true}
}

// boolean reads a boolean field with a default.
func (c *checker) boolean(parent *load.Node, k string, def bool) tri[bool] {
	n, known := c.field(parent, k)
	switch {
	case !known:
		return tri[bool]{}
	case n == nil:
		return tri[bool]{def, true}
	case !n.IsBool():
		return tri[bool]{}
	}
	return tri[bool]{n.Bool(), true}
}

// mapping returns the entries of a mapping field; ok is false when the
// field cannot be read. An absent or null field gives no entries.
func (c *checker) mapping(parent *load.Node, k string) ([]load.Entry, bool) {
	n, known := c.field(parent, k)
	if !known {
		return nil, false
	}
	if n == nil {
		return nil, true
	}
	if n.Kind != load.Map {
		return nil, false
	}
	return n.Entries, true
}

// list returns the items of a list field; ok is false when the field cannot
// be read. An absent or null field gives no items.
func (c *checker) list(parent *load.Node, k string) ([]*load.Node, bool) {
	n, known := c.field(parent, k)
	if !known {
		return nil, false
	}
	if n == nil {
		return nil, true
	}
	if n.Kind != load.Seq {
		return nil, false
	}
	return n.Items, true
}

// entryOK reports whether the value of a name-map entry can be read: it is
// a mapping or null and carries no S1 error.
func (c *checker) entryOK(e load.Entry) bool {
	return c.ok(e.Value) && (e.Value.Kind == load.Map || e.Value.Kind == load.Null)
}

// collect reads the settings, the domains and the machines.
func (c *checker) collect(root *load.Node) {
	c.byName = map[string]*domain{}
	c.machineDom = map[string]*domain{}
	c.machineOf = map[string]*machine{}
	if c.ok(root) && root.Kind == load.Map {
		c.root = root
	}
	c.readSettings()

	entries, ok := c.mapping(c.root, "domains")
	c.domainsOK = ok && c.root != nil
	c.machinesOK = c.domainsOK
	dp := diag.Path("").Key("domains")
	for _, e := range entries {
		d := &domain{name: e.Key, keyPos: e.KeyPos, path: dp.Key(e.Key)}
		if _, dup := c.byName[d.name]; !dup {
			c.byName[d.name] = d
		}
		if !c.entryOK(e) {
			c.machinesOK = false
			continue
		}
		d.node = e.Value
		c.domains = append(c.domains, d)
		d.enabled = c.boolean(d.node, "enabled", true)
		d.trust = c.str(d.node, "trust_level", "")
		d.profiles = map[string]*load.Entry{}
		pents, pok := c.mapping(d.node, "profiles")
		d.profilesOK = pok
		for i := range pents {
			d.profiles[pents[i].Key] = &pents[i]
		}
		ments, mok := c.mapping(d.node, "machines")
		if !mok {
			c.machinesOK = false
			continue
		}
		for _, me := range ments {
			if _, dup := c.machineDom[me.Key]; !dup {
				c.machineDom[me.Key] = d
			}
			if !c.entryOK(me) {
				continue
			}
			m := &machine{name: me.Key, keyPos: me.KeyPos, path: d.path.Key("machines").Key(me.Key), node: me.Value, dom: d}
			d.machines = append(d.machines, m)
			if _, dup := c.machineOf[m.name]; !dup {
				c.machineOf[m.name] = m
			}
		}
	}
}

// readSettings reads the global settings the rules depend on.
func (c *checker) readSettings() {
	g, known := c.field(c.root, "global")
	c.g.globalOK = c.root != nil && known && (g == nil || g.Kind == load.Map)
	if !c.g.globalOK {
		return
	}
	c.g.global = g
	if g == nil || g.Kind == load.Map {
		// The presence of addressing selects zone mode, whatever its content.
		a := g.Val("addressing")
		c.g.zoneMode = tri[bool]{a != nil && a.Kind != load.Null, true}
	}
	fw := c.str(g, "firewall_mode", "host")
	c.g.firewallVM = tri[bool]{fw.v == "vm", fw.known}
	c.g.gpuPolicy = c.str(g, "gpu_policy", "exclusive")
	c.g.aiPolicy = c.str(g, "ai_access_policy", "open")
	c.g.nestingPrefix = c.boolean(g, "nesting_prefix", true)
	c.g.storagePool = c.str(g, "storage_pool", "default")
}

// isDomain and isMachine tell what a policy endpoint or consumer names.
func (c *checker) isDomain(x string) bool  { _, ok := c.byName[x]; return ok }
func (c *checker) isMachine(x string) bool { _, ok := c.machineDom[x]; return ok }

// namesComplete reports whether every domain and machine name is known, so
// that a name found in neither can be reported as unknown.
func (c *checker) namesComplete() bool { return c.domainsOK && c.machinesOK }

// allMachines returns every readable machine in declaration order.
func (c *checker) allMachines() []*machine {
	var out []*machine
	for _, d := range c.domains {
		out = append(out, d.machines...)
	}
	return out
}

// knownNames returns the domain and machine names and "host", sorted, for
// did-you-mean hints.
func (c *checker) knownNames() []string {
	seen := map[string]bool{"host": true}
	for n := range c.byName {
		seen[n] = true
	}
	for n := range c.machineDom {
		seen[n] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
