package importer

import (
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/emit/yamlw"
	"github.com/anklume/anklume/compiler/model"
)

// machine is one imported machine before it is written.
type machine struct {
	name       string
	inst       *api.Instance
	desc       string
	typ        string
	ip         netip.Addr
	ipExplicit bool
	protected  bool
	stopped    bool
	gpu        bool
	profiles   []string
	roles      []string
	image      string
	// config holds the user config keys (generated ones removed).
	config map[string]string
	// boot and snapshot settings, "" when unset.
	autostart, priority, schedule, expiry string
	// devices are the names of the instance devices written as devices.
	devices []string
	// volumes are the storage_volumes entries.
	volumes []storageVolume
	// pds are the pd- devices, decided against the common base later.
	pds []persistentData
	// target is the cluster member (clustered servers only).
	target string
}

// storageVolume is one storage_volumes entry.
type storageVolume struct {
	name, pool, size, path string
}

// persistentData is a pd- device: a persistent_data entry when its source
// has the common base.
type persistentData struct {
	vol, base, path string
	readonly        bool
}

// sharedVolume is a shared volume rebuilt from sv- devices.
type sharedVolume struct {
	name         string
	source, path string
	consistent   bool
	consumers    []consumer
}

// consumer is one machine mounting a shared volume.
type consumer struct {
	x        *machine
	device   string
	readonly bool
}

// generatedConfig are the instance config keys anklume writes from
// machine fields, not from config (§5.6).
func generatedConfig(k string) bool {
	switch k {
	case "security.protection.delete", "boot.autostart", "boot.autostart.priority",
		"snapshots.schedule", "snapshots.expiry":
		return true
	}
	return strings.HasPrefix(k, incus.OwnershipKeyPrefix)
}

// splitList splits a comma-joined key, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ownedMachines builds the machines of an owned domain (§11 rule 3).
func (im *importer) ownedMachines(d *domain) {
	for i := range im.st.Instances {
		in := &im.st.Instances[i]
		if in.Project != d.project || !im.owned(in.Config) {
			continue
		}
		name, ok := strings.CutPrefix(in.Name, im.prefix)
		if !ok {
			im.warnf("skipping instance %q: its name lacks the prefix %q", in.Project+"/"+in.Name, im.prefix)
			continue
		}
		cfg := in.Config
		x := &machine{name: name, inst: in, desc: in.Description, typ: model.LXC, config: map[string]string{},
			protected: cfg["security.protection.delete"] == "true", stopped: in.Status == "Stopped",
			gpu: cfg[incus.KeyGPU] == "true", roles: splitList(cfg[incus.KeyRoles]), image: cfg[incus.KeyOSImage],
			autostart: cfg["boot.autostart"], priority: cfg["boot.autostart.priority"],
			schedule: cfg["snapshots.schedule"], expiry: cfg["snapshots.expiry"]}
		if in.Type == string(api.InstanceTypeVM) {
			x.typ = model.VM
		}
		if im.st.Server != nil && im.st.Server.Environment.ServerClustered {
			x.target = in.Location
		}
		for _, p := range in.Profiles {
			if p == model.FirewallProfileName {
				im.fwVM = true
				continue
			}
			x.profiles = append(x.profiles, p)
		}
		for _, k := range splitList(cfg[incus.KeyConfigKeys]) {
			if v, ok := cfg[k]; ok && !generatedConfig(k) {
				x.config[k] = v
			}
		}
		im.machineDevices(d, x)
		if name == model.FirewallMachineName && slices.Contains(x.roles, firewallRole) {
			im.fwVM = true
		}
		d.machines = append(d.machines, x)
	}
}

// machineDevices sorts the devices listed in user.anklume.devices into
// eth0 (the ip), shared volumes, persistent data, storage volumes, the
// generated gpu device and user devices (§11 rule 3).
func (im *importer) machineDevices(d *domain, x *machine) {
	in := x.inst
	for _, name := range splitList(in.Config[incus.KeyDevices]) {
		dev, ok := in.Devices[name]
		if !ok {
			continue
		}
		switch {
		case name == "eth0" && dev["type"] == "nic":
			if a, err := netip.ParseAddr(dev["ipv4.address"]); err == nil {
				x.ip = a
			}
		case name == "gpu" && x.gpu && len(dev) == 1 && dev["type"] == "gpu":
			// The generated device of §4.10, unless something else gives
			// the machine a GPU: then the user wrote it.
			if im.hasOtherGPU(d, x) {
				x.devices = append(x.devices, name)
			}
		case strings.HasPrefix(name, "sv-") && im.sharedDevice(x, name, dev):
		case strings.HasPrefix(name, "pd-") && im.persistentDevice(d, x, name, dev):
		case im.volumeDevice(d, x, name, dev):
		default:
			x.devices = append(x.devices, name)
		}
	}
}

// hasOtherGPU reports whether x gets a gpu-type device from another of
// its own devices or from one of its profiles.
func (im *importer) hasOtherGPU(d *domain, x *machine) bool {
	for n, dev := range x.inst.Devices {
		if n != "gpu" && dev["type"] == "gpu" {
			return true
		}
	}
	for _, p := range im.st.Profiles {
		if p.Project != d.project || !slices.Contains(x.profiles, p.Name) {
			continue
		}
		for _, dev := range p.Devices {
			if dev["type"] == "gpu" {
				return true
			}
		}
	}
	return false
}

// onlyKeys reports whether dev has no key outside keys.
func onlyKeys(dev map[string]string, keys ...string) bool {
	for k := range dev {
		if !slices.Contains(keys, k) {
			return false
		}
	}
	return true
}

// sharedDevice records an sv-<vol> device (§4.11) and reports whether it
// has the generated shape.
func (im *importer) sharedDevice(x *machine, name string, dev map[string]string) bool {
	vol := strings.TrimPrefix(name, "sv-")
	// anklume never sets shift on host disks (see package
	// internal/hostdirs); a device with a shift key was made by hand and
	// stays a plain device.
	if validName(vol, false) != "" || dev["type"] != "disk" || dev["source"] == "" || dev["path"] == "" ||
		!onlyKeys(dev, "type", "source", "path", "readonly") ||
		(dev["readonly"] != "" && dev["readonly"] != "true") {
		return false
	}
	sv := im.svs[vol]
	if sv == nil {
		sv = &sharedVolume{name: vol, source: dev["source"], path: dev["path"], consistent: true}
		im.svs[vol] = sv
	}
	if sv.source != dev["source"] || sv.path != dev["path"] {
		sv.consistent = false
	}
	sv.consumers = append(sv.consumers, consumer{x: x, device: name, readonly: dev["readonly"] == "true"})
	return true
}

// persistentDevice records a pd-<vol> device whose source is
// <base>/<domain>/<machine>/<vol> (§4.11).
func (im *importer) persistentDevice(d *domain, x *machine, name string, dev map[string]string) bool {
	vol := strings.TrimPrefix(name, "pd-")
	// Generated pd- devices carry no shift (package internal/hostdirs).
	if validName(vol, false) != "" || dev["type"] != "disk" || dev["path"] == "" ||
		!onlyKeys(dev, "type", "source", "path", "readonly") ||
		(dev["readonly"] != "" && dev["readonly"] != "true") {
		return false
	}
	base, ok := strings.CutSuffix(dev["source"], "/"+d.name+"/"+x.name+"/"+vol)
	if !ok || !strings.HasPrefix(base, "/") {
		return false
	}
	x.pds = append(x.pds, persistentData{vol: vol, base: base, path: dev["path"], readonly: dev["readonly"] == "true"})
	return true
}

// volumeDevice records the disk device of an owned custom volume (§5.5):
// {type: disk, pool, source: <name>, path}.
func (im *importer) volumeDevice(d *domain, x *machine, name string, dev map[string]string) bool {
	if dev["type"] != "disk" || dev["source"] != name || dev["pool"] == "" || dev["path"] == "" ||
		!onlyKeys(dev, "type", "pool", "source", "path") {
		return false
	}
	v := im.volume(d.project, dev["pool"], name)
	if v == nil {
		return false
	}
	x.volumes = append(x.volumes, storageVolume{name: name, pool: dev["pool"], size: v.Config["size"], path: dev["path"]})
	return true
}

// volume returns the owned custom volume name of project in pool, or nil.
func (im *importer) volume(project, pool, name string) *api.StorageVolume {
	for i := range im.st.Volumes[pool] {
		v := &im.st.Volumes[pool][i]
		if v.Project == project && v.Name == name && v.Type == "custom" && im.owned(v.Config) {
			return v
		}
	}
	return nil
}

// sharedVolumes turns consistent sv- devices into shared volumes and the
// others back into user devices; then it gives the owned custom volumes
// that no device mounts to the first machine of their domain.
func (im *importer) sharedVolumes() {
	for _, sv := range im.svs {
		if sv.consistent {
			continue
		}
		for _, c := range sv.consumers {
			c.x.devices = append(c.x.devices, c.device)
		}
		delete(im.svs, sv.name)
	}
	for _, d := range im.domains {
		if !d.owned {
			continue
		}
		mounted := map[[2]string]bool{}
		for _, x := range d.machines {
			for _, v := range x.volumes {
				mounted[[2]string{v.pool, v.name}] = true
			}
		}
		for _, pool := range slices.Sorted(maps.Keys(im.st.Volumes)) {
			for _, v := range im.st.Volumes[pool] {
				if v.Project != d.project || v.Type != "custom" || !im.owned(v.Config) || mounted[[2]string{pool, v.Name}] {
					continue
				}
				if len(d.machines) == 0 {
					im.warnf("skipping storage volume %q: domain %q has no machine to hold it", d.project+"/"+v.Name, d.name)
					continue
				}
				x := d.machines[0]
				x.volumes = append(x.volumes, storageVolume{name: v.Name, pool: pool, size: v.Config["size"]})
			}
		}
	}
}

// persistentBase picks persistent_data_base: the base most pd- devices
// share (the default wins a tie); devices with another base stay
// devices.
func (im *importer) persistentBase() {
	count := map[string]int{}
	for _, d := range im.domains {
		for _, x := range d.machines {
			for _, p := range x.pds {
				count[p.base]++
			}
		}
	}
	best, n := defaultPersistentDataBase, count[defaultPersistentDataBase]
	for b, c := range count {
		if c > n || (c == n && b < best && n > 0 && best != defaultPersistentDataBase) {
			best, n = b, c
		}
	}
	im.pdBase = best
	for _, d := range im.domains {
		for _, x := range d.machines {
			kept := x.pds[:0]
			for _, p := range x.pds {
				if p.base == best {
					kept = append(kept, p)
				} else {
					x.devices = append(x.devices, "pd-"+p.vol)
				}
			}
			x.pds = kept
		}
	}
}

// isAutoFirewall reports whether x equals the machine §4.7 adds, so that
// it can be omitted.
func (im *importer) isAutoFirewall(d *domain, x *machine) bool {
	ip := netip.MustParseAddr(d.base(im.baseOctet()) + ".253")
	return im.fwVM && d.name == firewallDomain && x.name == model.FirewallMachineName &&
		x.desc == firewallDescription && x.typ == model.VM && x.ip == ip &&
		slices.Equal(x.inst.Profiles, []string{incus.DefaultProfile, model.FirewallProfileName}) &&
		maps.Equal(x.config, map[string]string{"limits.cpu": "2", "limits.memory": "2GiB"}) &&
		slices.Equal(x.roles, []string{"base_system", firewallRole}) && x.protected &&
		len(x.devices) == 0 && len(x.volumes) == 0 && len(x.pds) == 0 && !x.gpu && !x.stopped &&
		x.image == im.image && x.autostart == "" && x.priority == "" && x.schedule == "" && x.expiry == "" &&
		(x.target == "" || x.target == d.target()) && x == d.machines[len(d.machines)-1]
}

// baseOctet is the first octet of every subnet.
func (im *importer) baseOctet() int {
	if im.legacy {
		first, _, _ := strings.Cut(im.global["base_subnet"], ".")
		if a, err := strconv.Atoi(first); err == nil {
			return a
		}
	}
	return 10
}

// machineDoc writes machine x of domain d.
func (im *importer) machineDoc(d *domain, x *machine) yamlw.Map {
	var m yamlw.Map
	add := func(k string, v yamlw.Value) { m = append(m, yamlw.KV{Key: k, Value: v}) }
	if x.desc != "" {
		add("description", yamlw.Str(x.desc))
	}
	add("type", yamlw.Str(x.typ))
	if x.ipExplicit {
		add("ip", yamlw.Str(x.ip.String()))
	}
	if eph := !x.protected; eph != d.ephemeral {
		add("ephemeral", yamlw.Bool(eph))
	}
	if x.stopped {
		add("state", yamlw.Str("stopped"))
	}
	if x.gpu {
		add("gpu", yamlw.Bool(true))
	}
	if x.inst != nil && d.owned && !slices.Equal(x.profiles, []string{incus.DefaultProfile}) {
		l := yamlw.List{}
		for _, p := range x.profiles {
			l = append(l, yamlw.Str(p))
		}
		add("profiles", l)
	}
	if len(x.config) > 0 {
		add("config", strMap(x.config, nil))
	}
	if len(x.devices) > 0 {
		add("devices", devicesDoc(x.inst.Devices, x.devices))
	}
	if len(x.volumes) > 0 {
		vm := yamlw.Map{}
		for _, v := range x.volumes {
			e := yamlw.Map{}
			if v.pool != im.pool {
				e = append(e, yamlw.KV{Key: "pool", Value: yamlw.Str(v.pool)})
			}
			if v.size != "" {
				e = append(e, yamlw.KV{Key: "size", Value: yamlw.Str(v.size)})
			}
			if v.path != "" {
				e = append(e, yamlw.KV{Key: "path", Value: yamlw.Str(v.path)})
			}
			vm = append(vm, yamlw.KV{Key: v.name, Value: e})
		}
		add("storage_volumes", vm)
	}
	if len(x.pds) > 0 {
		pm := yamlw.Map{}
		pds := slices.Clone(x.pds)
		sort.Slice(pds, func(i, j int) bool { return pds[i].vol < pds[j].vol })
		for _, p := range pds {
			e := yamlw.Map{{Key: "path", Value: yamlw.Str(p.path)}}
			if p.readonly {
				e = append(e, yamlw.KV{Key: "readonly", Value: yamlw.Bool(true)})
			}
			pm = append(pm, yamlw.KV{Key: p.vol, Value: e})
		}
		add("persistent_data", pm)
	}
	if len(x.roles) > 0 {
		l := yamlw.List{}
		for _, r := range x.roles {
			l = append(l, yamlw.Str(r))
		}
		add("roles", l)
	}
	if x.image != "" && x.image != im.defaultImage() {
		add("os_image", yamlw.Str(x.image))
	}
	if b, err := strconv.ParseBool(x.autostart); err == nil {
		add("boot_autostart", yamlw.Bool(b))
	}
	if p, err := strconv.Atoi(x.priority); err == nil {
		add("boot_priority", yamlw.Int(p))
	}
	if x.schedule != "" {
		add("snapshots_schedule", yamlw.Str(x.schedule))
	}
	if x.expiry != "" {
		add("snapshots_expiry", yamlw.Str(x.expiry))
	}
	if x.target != "" && x.target != d.target() {
		// Validation refuses it, which is what import should say: the
		// machine is not on its domain's member.
		add("target", yamlw.Str(x.target))
	}
	if m == nil {
		m = yamlw.Map{}
	}
	return m
}

// defaultImage is the image a machine without os_image gets.
func (im *importer) defaultImage() string {
	if im.image != "" {
		return im.image
	}
	return defaultImage
}
