package semantic

import (
	"math/big"
	"path"
	"regexp"
	"sync"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/load"
)

var svPath = diag.Path("").Key("shared_volumes")

// collision is the message of V21, V28 and N17 for a generated device that
// takes the name of a user device.
const collision = "generated device %s collides with a device of the same name in devices"

// sharedVolume is one readable entry of `shared_volumes`.
type sharedVolume struct {
	name   string
	keyPos diag.Pos
	node   *load.Node
	// consumers maps consumer names to their entries; nil when unreadable.
	consumers []load.Entry
}

// sharedVolumes returns the readable shared volumes in declaration order.
func (c *checker) sharedVolumes() []sharedVolume {
	entries, _ := c.mapping(c.root, "shared_volumes")
	var out []sharedVolume
	for _, e := range entries {
		if !c.entryOK(e) {
			continue
		}
		sv := sharedVolume{name: e.Key, keyPos: e.KeyPos, node: e.Value}
		sv.consumers, _ = c.mapping(e.Value, "consumers")
		out = append(out, sv)
	}
	return out
}

// consumes reports whether machine m gets the device of sv: its domain or
// itself is a consumer (§4.11). A name that is both a domain and a machine
// is read as the domain (W11).
func (c *checker) consumes(sv sharedVolume, m *machine) bool {
	for _, e := range sv.consumers {
		if e.Key == m.dom.name || (e.Key == m.name && !c.isDomain(e.Key)) {
			return true
		}
	}
	return false
}

// userDevices returns the names of the machine's own devices.
func (c *checker) userDevices(m *machine) map[string]load.Entry {
	out := map[string]load.Entry{}
	entries, _ := c.mapping(m.node, "devices")
	for _, e := range entries {
		out[e.Key] = e
	}
	return out
}

var sizeRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+)(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$`) })

var sizeUnits = map[string]int64{
	"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

// sizeBytes returns the number of bytes of a size string, or nil.
func sizeBytes(s string) *big.Int {
	m := sizeRe().FindStringSubmatch(s)
	if m == nil {
		return nil
	}
	n, ok := new(big.Int).SetString(m[1], 10)
	if !ok {
		return nil
	}
	return n.Mul(n, big.NewInt(sizeUnits[m[2]]))
}

// checkStorage runs N17: the same volume name in one domain and pool must
// have the same size, and a volume device must not take a user device's
// name.
func (c *checker) checkStorage() {
	type decl struct {
		size  string
		bytes *big.Int
	}
	for _, d := range c.domains {
		sizes := map[[2]string]decl{}
		for _, m := range d.machines {
			devs := c.userDevices(m)
			vols, _ := c.mapping(m.node, "storage_volumes")
			for _, e := range vols {
				if !c.entryOK(e) {
					continue
				}
				vp := m.path.Key("storage_volumes").Key(e.Key)
				if pn, ok := c.field(e.Value, "path"); ok && pn != nil {
					if _, dup := devs[e.Key]; dup {
						c.dl.Errorf(e.KeyPos, vp.String(), "", collision, load.Quote(e.Key))
					}
				}
				pool := c.str(e.Value, "pool", "")
				if pool.known && pool.v == "" {
					pool = c.g.storagePool
				}
				sz, ok := c.field(e.Value, "size")
				if !pool.known || !ok || !sz.IsStr() {
					continue
				}
				b := sizeBytes(sz.Value)
				if b == nil {
					continue
				}
				k := [2]string{e.Key, pool.v}
				first, seen := sizes[k]
				if !seen {
					sizes[k] = decl{sz.Value, b}
					continue
				}
				if first.bytes.Cmp(b) != 0 {
					c.dl.Errorf(sz.Pos, vp.Key("size").String(), "", "storage volume %s is declared with different sizes (%s, %s)",
						load.Quote(e.Key), first.size, sz.Value)
				}
			}
		}
	}
}

// mount is one mount path on a machine.
type mount struct {
	dev   string
	value string
	pos   diag.Pos
	path  diag.Path
}

// checkMounts runs the device-collision and mount-path parts of V21 and
// V28, per machine, over the devices in the order of §5.6: shared volumes,
// persistent data, storage volumes, user devices.
func (c *checker) checkMounts() {
	svs := c.sharedVolumes()
	for _, m := range c.allMachines() {
		devs := c.userDevices(m)
		var mounts []mount
		for _, sv := range svs {
			if !c.consumes(sv, m) {
				continue
			}
			dev := "sv-" + sv.name
			if e, dup := devs[dev]; dup {
				c.dl.Errorf(e.KeyPos, m.path.Key("devices").Key(dev).String(), "", collision, load.Quote(dev))
			}
			pn, ok := c.field(sv.node, "path")
			switch {
			case !ok:
			case pn == nil:
				mounts = append(mounts, mount{dev, "/shared/" + sv.name, sv.keyPos, svPath.Key(sv.name)})
			case pn.IsStr():
				mounts = append(mounts, mount{dev, pn.Value, pn.Pos, svPath.Key(sv.name).Key("path")})
			}
		}
		pds, _ := c.mapping(m.node, "persistent_data")
		for _, e := range pds {
			if !c.entryOK(e) {
				continue
			}
			dev := "pd-" + e.Key
			ep := m.path.Key("persistent_data").Key(e.Key)
			if _, dup := devs[dev]; dup {
				c.dl.Errorf(e.KeyPos, ep.String(), "", collision, load.Quote(dev))
			}
			if pn, ok := c.field(e.Value, "path"); ok && pn.IsStr() {
				mounts = append(mounts, mount{dev, pn.Value, pn.Pos, ep.Key("path")})
			}
		}
		vols, _ := c.mapping(m.node, "storage_volumes")
		for _, e := range vols {
			if !c.entryOK(e) {
				continue
			}
			if pn, ok := c.field(e.Value, "path"); ok && pn.IsStr() {
				mounts = append(mounts, mount{e.Key, pn.Value, pn.Pos, m.path.Key("storage_volumes").Key(e.Key).Key("path")})
			}
		}
		udevs, _ := c.mapping(m.node, "devices")
		for _, e := range udevs {
			if !c.ok(e.Value) {
				continue
			}
			if pn, ok := c.field(e.Value, "path"); ok && pn.IsStr() {
				mounts = append(mounts, mount{e.Key, pn.Value, pn.Pos, m.path.Key("devices").Key(e.Key).Key("path")})
			}
		}
		c.checkMountPaths(m, mounts)
	}
}

// checkMountPaths reports every mount path used twice on machine m, at the
// second use.
func (c *checker) checkMountPaths(m *machine, mounts []mount) {
	first := map[string]mount{}
	for _, mt := range mounts {
		if mt.value == "" {
			continue
		}
		k := path.Clean(mt.value)
		f, dup := first[k]
		if !dup {
			first[k] = mt
			continue
		}
		c.dl.Errorf(mt.pos, mt.path.String(), "", "mount path %s is used twice on machine %s (%s, %s)",
			load.Quote(mt.value), load.Quote(m.name), f.dev, mt.dev)
	}
}

// checkSharedVolumes runs the consumer part of V28, W11 for consumers,
// W15, and refuses shift: true (which Incus would refuse at start).
func (c *checker) checkSharedVolumes() {
	for _, sv := range c.sharedVolumes() {
		vp := svPath.Key(sv.name)
		if sh, ok := c.field(sv.node, "shift"); ok && sh.IsBool() && sh.Bool() {
			// See package internal/hostdirs: Incus 6.0 refuses shift on a
			// source under restricted.devices.disk.paths.
			c.dl.Errorf(sh.Pos, vp.Key("shift").String(),
				"remove the key: the directory is created owned by the containers' root, so they can use it without shift",
				"shift: true is not supported: Incus refuses shift on the restricted host paths of anklume projects")
		}
		if pr, ok := c.field(sv.node, "propagate"); ok && pr.IsBool() && pr.Bool() {
			c.dl.Warnf(pr.Pos, vp.Key("propagate").String(), "", "propagate has no effect in this version")
		}
		c.checkIdmap(sv)
		for _, e := range sv.consumers {
			cp := vp.Key("consumers").Key(e.Key).String()
			switch {
			case c.isDomain(e.Key) && c.isMachine(e.Key):
				c.dl.Warnf(e.KeyPos, cp, "", "%s names both a domain and a machine; it is read as the domain", load.Quote(e.Key))
			case c.isDomain(e.Key), c.isMachine(e.Key):
			case c.namesComplete():
				c.dl.Errorf(e.KeyPos, cp, "", "%s is not a known domain or machine", load.Quote(e.Key))
			}
		}
	}
}

// checkIdmap warns about a container consumer of sv whose own config
// gives it an id map of its own: with security.idmap.isolated its ids are
// not the other containers' ids, and with security.privileged they are
// the host's, so the files of the other consumers are not theirs there
// (see package internal/hostdirs).
func (c *checker) checkIdmap(sv sharedVolume) {
	for _, m := range c.allMachines() {
		if !c.str(m.node, "type", "lxc").is("lxc") || !c.consumes(sv, m) {
			continue
		}
		cfg, ok := c.field(m.node, "config")
		if !ok || cfg == nil {
			continue
		}
		for _, k := range []string{"security.idmap.isolated", "security.privileged"} {
			v, ok := c.field(cfg, k)
			if !ok || v == nil {
				continue
			}
			if s, ok := incusString(v); ok && truthy(s) {
				c.dl.Warnf(v.Pos, m.path.Key("config").Key(k).String(), "",
					"machine %s sets %s: its id map differs from the other containers', so the files of shared volume %s do not keep their owners there",
					load.Quote(m.name), k, load.Quote(sv.name))
			}
		}
	}
}
