package apply

import (
	"maps"
	"slices"
	"strings"

	"github.com/lxc/incus/v6/shared/api"
	"github.com/lxc/incus/v6/shared/units"

	"github.com/anklume/anklume/compiler/emit/incus"
)

// The owned network keys of SPEC.md §5.7.
var networkKeys = []string{"ipv4.address", "ipv4.dhcp.ranges", "ipv4.nat", "ipv6.address"}

func cloneConfig(c map[string]string) api.ConfigMap {
	out := api.ConfigMap{}
	maps.Copy(out, c)
	return out
}

func cloneDevices(d map[string]map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for k, v := range d {
		out[k] = maps.Clone(v)
	}
	return out
}

// mergeOwnership replaces the user.anklume.* keys of cfg by the desired
// ones, keeping user.anklume.adopted and the keys in keep; adopt sets
// user.anklume.adopted (§9.2).
func mergeOwnership(cfg, desired map[string]string, adopt bool, keep ...string) {
	for k := range cfg {
		if strings.HasPrefix(k, incus.OwnershipKeyPrefix) && k != incus.KeyAdopted && !slices.Contains(keep, k) {
			if _, ok := desired[k]; !ok {
				delete(cfg, k)
			}
		}
	}
	for k, v := range desired {
		if strings.HasPrefix(k, incus.OwnershipKeyPrefix) {
			if slices.Contains(keep, k) && cfg[k] != "" {
				continue
			}
			cfg[k] = v
		}
	}
	if adopt {
		cfg[incus.KeyAdopted] = "true"
	}
}

// mergeNetwork is the PUT that gives live the owned fields of d (§5.7):
// description, the four addressing keys and user.anklume.*; every other
// key is kept.
func mergeNetwork(live *api.Network, d *incus.Network, adopt bool) api.NetworkPut {
	put := live.Writable()
	put.Config = cloneConfig(live.Config)
	put.Description = d.Description
	for _, k := range networkKeys {
		if v, ok := d.Config[k]; ok {
			put.Config[k] = v
		} else {
			delete(put.Config, k)
		}
	}
	mergeOwnership(put.Config, d.Config, adopt)
	return put
}

// mergeProject gives live the owned fields of d: description, restricted
// and restricted.* (undesired ones unset), user.anklume.*. The features.*
// keys are create-only and stay as they are (§5.3).
func mergeProject(live *api.Project, d *incus.Project, adopt bool) api.ProjectPut {
	put := live.Writable()
	put.Config = cloneConfig(live.Config)
	put.Description = d.Description
	for k := range put.Config {
		if k == "restricted" || strings.HasPrefix(k, "restricted.") {
			if _, ok := d.Config[k]; !ok {
				delete(put.Config, k)
			}
		}
	}
	for k, v := range d.Config {
		if !strings.HasPrefix(k, "features.") && !strings.HasPrefix(k, incus.OwnershipKeyPrefix) {
			put.Config[k] = v
		}
	}
	mergeOwnership(put.Config, d.Config, adopt)
	return put
}

// mergeProfile gives live the owned fields of d. The default profile owns
// its description, the eth0 and root devices and user.anklume.*; a domain
// profile (and firewall-multi-nic) owns its whole config and device set.
func mergeProfile(live *api.Profile, d *incus.Profile, adopt bool) api.ProfilePut {
	put := live.Writable()
	put.Description = d.Description
	if d.Name == incus.DefaultProfile {
		put.Config = cloneConfig(live.Config)
		put.Devices = cloneDevices(live.Devices)
		for _, dev := range []string{"eth0", "root"} {
			if v, ok := d.Devices[dev]; ok {
				put.Devices[dev] = maps.Clone(v)
			} else {
				delete(put.Devices, dev)
			}
		}
		mergeOwnership(put.Config, d.Config, adopt)
		return put
	}
	put.Config = cloneConfig(d.Config)
	if v, ok := live.Config[incus.KeyAdopted]; ok {
		put.Config[incus.KeyAdopted] = v
	}
	if adopt {
		put.Config[incus.KeyAdopted] = "true"
	}
	put.Devices = cloneDevices(d.Devices)
	return put
}

// mergeVolume gives live the owned fields of d: size when it grows, and
// user.anklume.*.
func mergeVolume(live *api.StorageVolume, d *incus.StorageVolume, adopt bool) api.StorageVolumePut {
	put := live.Writable()
	put.Config = cloneConfig(live.Config)
	put.Description = d.Description
	if want, ok := d.Config["size"]; ok {
		if grows(live.Config["size"], want) {
			put.Config["size"] = want
		}
	}
	mergeOwnership(put.Config, d.Config, adopt)
	return put
}

// grows reports whether want is larger than cur (an unset size always
// grows; an unreadable one is replaced).
func grows(cur, want string) bool {
	if cur == "" {
		return true
	}
	c, err1 := units.ParseByteSizeString(cur)
	w, err2 := units.ParseByteSizeString(want)
	if err1 != nil || err2 != nil {
		return cur != want
	}
	return w > c
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// mergeInstance gives live the owned fields of d (§5.7): description,
// profiles, the config keys desired or listed in the live
// user.anklume.config_keys (a listed key no longer desired is unset), the
// devices desired or listed in user.anklume.devices, user.anklume.* except
// os_image (create-only) and adopted. volatile.* keys and keys added by
// hand are kept. With noAddress, eth0 gets no ipv4.address (phases 1 and 2
// of a renumber or move; phase 3 claims it).
func mergeInstance(live *api.Instance, d *incus.Instance, adopt, noAddress bool) api.InstancePut {
	put := live.Writable()
	put.Config = cloneConfig(live.Config)
	put.Devices = cloneDevices(live.Devices)
	put.Description = d.Description
	put.Profiles = slices.Clone(d.Profiles)
	for _, k := range splitList(live.Config[incus.KeyConfigKeys]) {
		if _, ok := d.Config[k]; !ok {
			delete(put.Config, k)
		}
	}
	for k, v := range d.Config {
		if !strings.HasPrefix(k, incus.OwnershipKeyPrefix) {
			put.Config[k] = v
		}
	}
	mergeOwnership(put.Config, d.Config, adopt, incus.KeyOSImage)
	for _, n := range splitList(live.Config[incus.KeyDevices]) {
		if _, ok := d.Devices[n]; !ok {
			delete(put.Devices, n)
		}
	}
	for n, dev := range d.Devices {
		put.Devices[n] = maps.Clone(dev)
	}
	if noAddress {
		releaseAddress(&put)
	}
	return put
}

// releaseAddress removes the ipv4.address of the eth0 instance device.
func releaseAddress(put *api.InstancePut) {
	if eth0, ok := put.Devices["eth0"]; ok {
		delete(eth0, "ipv4.address")
	}
}

// releaseForMove strips what ties an instance to its old domain before a
// project move: its eth0 device, its profiles, and its persistent-data
// and shared-volume disks (host paths that the new domain's
// restricted.devices.disk.paths may not list; the old path of a
// persistent-data directory never is, and the directory must not be
// mounted while it moves). The root disk that the profiles gave is copied
// into the instance's own devices, so the instance keeps its disk (§9.3
// move). The move step gives the instance its new domain's devices.
func releaseForMove(live *api.Instance) api.InstancePut {
	put := live.Writable()
	put.Config = cloneConfig(live.Config)
	put.Devices = cloneDevices(live.Devices)
	delete(put.Devices, "eth0")
	for n, dev := range put.Devices {
		if dev["type"] == "disk" && (strings.HasPrefix(n, "pd-") || strings.HasPrefix(n, "sv-")) {
			delete(put.Devices, n)
		}
	}
	hasRoot := false
	for _, dev := range put.Devices {
		hasRoot = hasRoot || (dev["type"] == "disk" && dev["path"] == "/")
	}
	if !hasRoot {
		for n, dev := range live.ExpandedDevices {
			if dev["type"] == "disk" && dev["path"] == "/" {
				put.Devices[n] = maps.Clone(dev)
			}
		}
	}
	put.Profiles = []string{}
	return put
}
