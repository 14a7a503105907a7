package semantic

import (
	"strings"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/load"
)

// checkSeparators rejects a comma in every value that anklume joins into a
// comma-separated Incus list: restricted.networks.access takes the parent
// of a nic device (and anklume compares the network of one), and
// restricted.devices.disk.paths takes the host source of a disk device,
// the persistent data directory and the source of a shared volume. Incus
// splits those lists on ",", so a value such as "eth0,net-lab" or
// "/srv/code,/" would grant one extra entry (another domain's bridge, the
// whole host). The rule: none of these values may hold a comma; the error
// points at the value.
func (c *checker) checkSeparators() {
	bad := func(n *load.Node, path diag.Path, list string) {
		if n == nil || n.Kind != load.Scalar || !strings.Contains(n.Value, ",") {
			return
		}
		c.dl.Errorf(n.Pos, path.String(), "",
			"%s cannot contain \",\": anklume joins it into the comma-separated Incus list %s", load.Quote(n.Value), list)
	}
	const access, paths = "restricted.networks.access", "restricted.devices.disk.paths"
	if c.g.globalOK {
		for _, k := range []string{"persistent_data_base", "shared_volumes_base"} {
			if n, ok := c.field(c.g.global, k); ok {
				bad(n, globalPath.Key(k), paths)
			}
		}
	}
	for _, sv := range c.sharedVolumes() {
		if n, ok := c.field(sv.node, "source"); ok {
			bad(n, svPath.Key(sv.name).Key("source"), paths)
		}
	}
	devices := func(parent *load.Node, base diag.Path) {
		entries, _ := c.mapping(parent, "devices")
		for _, e := range entries {
			if !c.entryOK(e) || e.Value == nil || e.Value.Kind != load.Map {
				continue
			}
			p := base.Key("devices").Key(e.Key)
			for _, k := range []string{"parent", "network"} {
				if n, ok := c.field(e.Value, k); ok {
					bad(n, p.Key(k), access)
				}
			}
			if n, ok := c.field(e.Value, "source"); ok {
				bad(n, p.Key("source"), paths)
			}
		}
	}
	for _, d := range c.domains {
		if d.node == nil {
			continue
		}
		for name, e := range d.profiles {
			if c.entryOK(*e) {
				devices(e.Value, d.path.Key("profiles").Key(name))
			}
		}
		for _, m := range d.machines {
			devices(m.node, m.path)
		}
	}
}
