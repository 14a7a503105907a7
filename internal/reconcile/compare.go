package reconcile

import (
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/internal/plan"
)

// truthy is Incus's reading of a boolean config value.
func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

// ownership is how a live object relates to this infrastructure (§5.1).
type ownership int

const (
	notOwned   ownership = iota // no truthy user.anklume.managed
	ownedHere                   // managed, infra == project_name
	ownedOther                  // managed, another infra
)

// ownerOf classifies cfg for infra and returns the other infra's name.
func ownerOf(cfg map[string]string, infra string) (ownership, string) {
	if !truthy(cfg[incus.KeyManaged]) {
		return notOwned, ""
	}
	if cfg[incus.KeyInfra] == infra {
		return ownedHere, ""
	}
	return ownedOther, cfg[incus.KeyInfra]
}

// ignored reports keys that are never compared (§5.7).
func ignored(k string) bool {
	return strings.HasPrefix(k, "volatile.") || strings.HasPrefix(k, "image.") || k == incus.KeyAdopted
}

var plainSegment = regexp.MustCompile(`^[a-z0-9_-]+$`)

// seg renders one path segment as §3.2 says: `.name` or `["na.me"]`.
func seg(s string) string {
	if plainSegment.MatchString(s) {
		return "." + s
	}
	return "[" + strconv.Quote(s) + "]"
}

// configPath is `config["k"]`.
func configPath(k string) string { return "config" + seg(k) }

// devicePath is `devices.<dev>["k"]`.
func devicePath(dev, k string) string { return "devices" + seg(dev) + seg(k) }

func strp(s string) *string { return &s }

// diffValue appends the diff of one field: added, removed or changed.
func diffValue(out []plan.Diff, path string, live string, liveOK bool, want string, wantOK bool) []plan.Diff {
	switch {
	case liveOK && wantOK:
		if live != want {
			out = append(out, plan.Diff{Path: path, Before: strp(live), After: strp(want)})
		}
	case liveOK:
		out = append(out, plan.Diff{Path: path, Before: strp(live)})
	case wantOK:
		out = append(out, plan.Diff{Path: path, After: strp(want)})
	}
	return out
}

// diffConfig compares the keys of live and want that keep selects, in
// byte order, with paths made by path.
func diffConfig(out []plan.Diff, path func(string) string, live, want map[string]string, keep func(string) bool) []plan.Diff {
	keys := map[string]bool{}
	for k := range live {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if ignored(k) || !keep(k) {
			continue
		}
		lv, lok := live[k]
		wv, wok := want[k]
		out = diffValue(out, path(k), lv, lok, wv, wok)
	}
	return out
}

// diffDevices compares the devices of live and want that keep selects,
// property by property.
func diffDevices(out []plan.Diff, live, want map[string]map[string]string, keep func(string) bool) []plan.Diff {
	names := map[string]bool{}
	for k := range live {
		names[k] = true
	}
	for k := range want {
		names[k] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		if !keep(n) {
			continue
		}
		out = diffConfig(out, func(k string) string { return devicePath(n, k) }, live[n], want[n],
			func(string) bool { return true })
	}
	return out
}

// ownershipKey selects the user.anklume.* keys.
func ownershipKey(k string) bool { return strings.HasPrefix(k, incus.OwnershipKeyPrefix) }

// diffDescription compares descriptions.
func diffDescription(out []plan.Diff, live, want string) []plan.Diff {
	if live != want {
		out = append(out, plan.Diff{Path: "description", Before: strp(live), After: strp(want)})
	}
	return out
}

// networkKeys are the network config keys anklume compares (§5.7).
var networkKeys = map[string]bool{"ipv4.address": true, "ipv4.dhcp.ranges": true, "ipv4.nat": true, "ipv6.address": true}

// projectFeatures are the create-only project features (§5.3, §5.7).
var projectFeatures = []string{"features.images", "features.profiles", "features.storage.volumes", "features.networks"}

// compareNetwork returns the differences of a bridge (§5.7).
func compareNetwork(liveDesc string, live map[string]string, want *incus.Network) []plan.Diff {
	out := diffDescription(nil, liveDesc, want.Description)
	return diffConfig(out, configPath, live, want.Config, func(k string) bool {
		return networkKeys[k] || ownershipKey(k)
	})
}

// compareProject returns the differences of a project and the features
// that differ (create-only: notes, never changes).
func compareProject(liveDesc string, live map[string]string, want *incus.Project) ([]plan.Diff, []string) {
	out := diffDescription(nil, liveDesc, want.Description)
	out = diffConfig(out, configPath, live, want.Config, func(k string) bool {
		return k == "restricted" || strings.HasPrefix(k, "restricted.") || ownershipKey(k)
	})
	var notes []string
	for _, f := range projectFeatures {
		lv, ok := live[f]
		if !ok {
			lv = "false"
		}
		if wv := want.Config[f]; wv != "" && truthy(lv) != truthy(wv) {
			notes = append(notes, f+" is "+strconv.Quote(lv)+", not "+strconv.Quote(wv)+
				"; Incus changes features only on an empty project")
		}
	}
	return out, notes
}

// compareProfile returns the differences of a profile: for `default`,
// the description, eth0, root and user.anklume.*; for every other profile,
// the description, the whole config and the whole device set (§5.7).
func compareProfile(liveDesc string, live map[string]string, liveDevs map[string]map[string]string, want *incus.Profile) []plan.Diff {
	out := diffDescription(nil, liveDesc, want.Description)
	if want.Name == incus.DefaultProfile {
		out = diffConfig(out, configPath, live, want.Config, ownershipKey)
		return diffDevices(out, liveDevs, want.Devices, func(n string) bool { return n == "eth0" || n == "root" })
	}
	out = diffConfig(out, configPath, live, want.Config, func(string) bool { return true })
	return diffDevices(out, liveDevs, want.Devices, func(string) bool { return true })
}

// sizeUnits are the Incus byte units.
var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15, "EB": 1e18,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50, "EiB": 1 << 60,
}

// parseSize reads an Incus size such as "10GiB".
func parseSize(s string) (int64, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	mult, ok := sizeUnits[strings.TrimSpace(s[i:])]
	if err != nil || !ok {
		return 0, false
	}
	return n * mult, true
}

// compareVolume returns the differences of a custom volume and, when the
// desired size is smaller than the live one, the note text (§5.5, §5.7).
func compareVolume(liveDesc string, live map[string]string, want *incus.StorageVolume) ([]plan.Diff, string) {
	out := diffConfig(nil, configPath, live, want.Config, ownershipKey)
	ws, wok := want.Config["size"]
	if !wok {
		return out, ""
	}
	ls, lok := live["size"]
	if lok && ls == ws {
		return out, ""
	}
	if lok {
		lb, ok1 := parseSize(ls)
		wb, ok2 := parseSize(ws)
		if ok1 && ok2 && wb == lb {
			return out, ""
		}
		if ok1 && ok2 && wb < lb {
			return out, "size " + ws + " is smaller than the live " + ls + "; a volume never shrinks"
		}
	}
	return diffValue(out, configPath("size"), ls, lok, ws, true), ""
}

// listed splits a user.anklume.config_keys or user.anklume.devices value.
func listed(v string) map[string]bool {
	out := map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		if s != "" {
			out[s] = true
		}
	}
	return out
}

// compareInstance returns the differences of an instance in place (§5.7):
// description, profiles, config keys desired or listed in the live
// user.anklume.config_keys, user.anklume.* but os_image, and devices
// desired or listed in the live user.anklume.devices.
func compareInstance(liveDesc string, liveProfiles []string, live map[string]string, liveDevs map[string]map[string]string, want *incus.Instance) []plan.Diff {
	out := diffDescription(nil, liveDesc, want.Description)
	if !slices.Equal(liveProfiles, want.Profiles) {
		out = append(out, plan.Diff{Path: "profiles",
			Before: strp(strings.Join(liveProfiles, ",")), After: strp(strings.Join(want.Profiles, ","))})
	}
	keys := listed(live[incus.KeyConfigKeys])
	out = diffConfig(out, configPath, live, want.Config, func(k string) bool {
		if k == incus.KeyOSImage || k == incus.KeyDisp {
			return false
		}
		if ownershipKey(k) {
			return true
		}
		_, desired := want.Config[k]
		return desired || keys[k]
	})
	devs := listed(live[incus.KeyDevices])
	return diffDevices(out, liveDevs, want.Devices, func(n string) bool {
		_, desired := want.Devices[n]
		return desired || devs[n]
	})
}

// needsRestart tells whether the differences of an instance of type typ
// ("container" or "virtual-machine") need a restart (§9.3).
func needsRestart(typ string, diffs []plan.Diff) bool {
	for _, d := range diffs {
		key, isConfig := configKeyOf(d.Path)
		if typ == "virtual-machine" {
			switch {
			case d.Path == "description":
			case isConfig && (strings.HasPrefix(key, "user.") || strings.HasPrefix(key, "boot.") ||
				strings.HasPrefix(key, "snapshots.") || strings.HasPrefix(key, "security.protection.")):
			default:
				return true
			}
			continue
		}
		if !isConfig {
			continue
		}
		if strings.HasPrefix(key, "raw.") || strings.HasPrefix(key, "linux.") ||
			(strings.HasPrefix(key, "security.") && !strings.HasPrefix(key, "security.protection.")) {
			return true
		}
	}
	return false
}

// configKeyOf returns the key of a `config…` path.
func configKeyOf(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "config")
	if !ok {
		return "", false
	}
	if k, ok := strings.CutPrefix(rest, "."); ok {
		return k, true
	}
	if strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") {
		if k, err := strconv.Unquote(rest[1 : len(rest)-1]); err == nil {
			return k, true
		}
	}
	return "", false
}

// shortType is lxc or vm.
func shortType(t string) string {
	if t == "virtual-machine" {
		return "vm"
	}
	return "lxc"
}
