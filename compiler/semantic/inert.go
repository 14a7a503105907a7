package semantic

import "github.com/anklume/anklume/compiler/diag"

// Keys kept from the seed's format that anklume accepts and validates but
// does not act on. Each one present gives one warning, so that nobody
// believes it took effect. When one of them gets implemented, delete its
// entry here (and the test rows that name it).
var (
	// inertGlobal are the keys of global.
	inertGlobal = []string{"desktop"}
	// inertMachine are the keys of a machine.
	inertMachine = []string{"export_apps", "services"}
)

// checkInertKeys warns once for every inert key present.
func (c *checker) checkInertKeys() {
	warn := func(pos diag.Pos, path diag.Path, k string) {
		c.dl.Warnf(pos, path.String(), "", "%s is accepted but anklume does not act on it; remove it or expect no effect", k)
	}
	if g, _ := c.field(c.root, "global"); g != nil {
		for _, k := range inertGlobal {
			if v, _ := c.field(g, k); v != nil {
				warn(v.Pos, diag.Path("").Key("global").Key(k), "global."+k)
			}
		}
	}
	for _, m := range c.allMachines() {
		for _, k := range inertMachine {
			if v, _ := c.field(m.node, k); v != nil {
				warn(v.Pos, m.path.Key(k), k)
			}
		}
	}
}
