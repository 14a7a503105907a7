package reconcile

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/suggest"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/plan"
)

// checkDomain runs the plan-time checks of §9.1 on one domain and returns
// the first failure, or "".
func (d *differ) checkDomain(pr *incus.Project) string {
	pools := []string{}
	addPool := func(devs map[string]map[string]string) {
		for _, dev := range devs {
			if dev["type"] == "disk" && dev["pool"] != "" {
				pools = append(pools, dev["pool"])
			}
		}
	}
	for _, prof := range pr.Profiles {
		addPool(prof.Devices)
	}
	for _, v := range pr.StorageVolumes {
		pools = append(pools, v.Pool)
	}
	for _, x := range pr.Instances {
		addPool(x.Devices)
	}
	for _, p := range pools {
		if !d.obs.HasPool(p) {
			return fmt.Sprintf("storage pool %q not found on the Incus server; create it (incus storage create %s dir) or name an existing pool in global.storage_pool", p, p)
		}
	}
	for _, x := range pr.Instances {
		if msg := d.checkImage(x); msg != "" {
			return msg
		}
	}
	if pr.Target != "" && !d.clustered() {
		return fmt.Sprintf("target %q is set but the Incus server is not clustered", pr.Target)
	}
	return d.checkClusterNetwork(pr)
}

// checkImage checks the image of an instance that a plan would create:
// the image is used at creation only (§4.12), so an existing instance is
// never failed for it.
func (d *differ) checkImage(x *incus.Instance) string {
	if d.instances[pkey{x.Project, x.Name}] != nil || d.findMoved(x) != nil {
		return ""
	}
	resolve := d.opts.ResolveImage
	if resolve == nil {
		resolve = defaultResolve
	}
	src, err := resolve(x.Image)
	if err != nil {
		var ur *incusx.UnknownRemoteError
		if errors.As(err, &ur) {
			return ur.Error()
		}
		return err.Error()
	}
	if src.Server != "" {
		return ""
	}
	for _, a := range d.obs.Aliases {
		if a.Name == src.Alias {
			return ""
		}
	}
	return fmt.Sprintf("image alias %q not found on the Incus server; add it (incus image copy images:debian/13 local: --alias %s) or use a remote image such as images:debian/13", src.Alias, src.Alias)
}

// defaultResolve knows local aliases and the built-in images remote.
func defaultResolve(ref string) (api.InstanceSource, error) {
	remote, alias, found := strings.Cut(ref, ":")
	if !found {
		return api.InstanceSource{Type: "image", Alias: ref}, nil
	}
	switch remote {
	case "", "local":
		return api.InstanceSource{Type: "image", Alias: alias}, nil
	case incusx.ImagesRemoteName:
		return api.InstanceSource{Type: "image", Mode: "pull", Server: incusx.ImagesRemoteAddr,
			Protocol: "simplestreams", Alias: alias}, nil
	}
	return api.InstanceSource{}, &incusx.UnknownRemoteError{Remote: remote, Ref: ref}
}

// metaKeys returns the instance config keys and the device properties by
// device type that the server's metadata lists.
func metaKeys(m *api.MetadataConfiguration) ([]string, map[string][]string) {
	var inst []string
	devs := map[string][]string{}
	for _, g := range m.Config["instance"] {
		for _, k := range g.Keys {
			inst = append(inst, slices.Collect(maps.Keys(k))...)
		}
	}
	for group, g := range m.Config["devices"] {
		for _, t := range deviceTypes(string(group)) {
			for _, k := range g.Keys {
				devs[t] = append(devs[t], slices.Collect(maps.Keys(k))...)
			}
		}
	}
	slices.Sort(inst)
	for t := range devs {
		slices.Sort(devs[t])
	}
	return inst, devs
}

// deviceTypes maps a metadata device group to the device types it
// describes ("unix-char-block" covers unix-char and unix-block).
func deviceTypes(group string) []string {
	if group == "unix-char-block" {
		return []string{"unix-char", "unix-block"}
	}
	return []string{group}
}

// metaMatch reports whether key matches a listed key: a `*` or `<name>`
// segment matches any text in that segment, and a final `*` the rest. It
// walks both strings segment by segment without splitting them: a plan
// calls it for every config key of every instance against every listed
// key.
func metaMatch(listed, key string) bool {
	keyLeft := true // key has a segment left
	for {
		l, lrest, lmore := strings.Cut(listed, ".")
		if !lmore && l == "*" {
			return keyLeft
		}
		if !keyLeft {
			return false
		}
		k, krest, kmore := strings.Cut(key, ".")
		wild := l == "*" || (strings.HasPrefix(l, "<") && strings.HasSuffix(l, ">"))
		if !wild && l != k {
			return false
		}
		if !lmore {
			return !kmore
		}
		listed, key, keyLeft = lrest, krest, kmore
	}
}

// known reports whether key is listed.
func known(listed []string, key string) bool {
	return slices.ContainsFunc(listed, func(l string) bool { return metaMatch(l, key) })
}

// checkMetadata checks the config keys and device properties of the
// desired instances and domain profiles of the planned domains against the
// server's configuration metadata (§9.1).
func (d *differ) checkMetadata() {
	if d.obs.Metadata == nil {
		return
	}
	inst, devs := metaKeys(d.obs.Metadata)
	check := func(kind plan.Kind, name string, cfg map[string]string, devices map[string]map[string]string) {
		for _, k := range slices.Sorted(maps.Keys(cfg)) {
			if len(inst) == 0 || strings.HasPrefix(k, "user.") || known(inst, k) {
				continue
			}
			if s, ok := suggest.Closest(k, inst); ok {
				d.fail(fmt.Sprintf("%s %s: unknown config key %q", kind, name, k), fmt.Sprintf("did you mean %q?", s))
				continue
			}
			d.warn(fmt.Sprintf("%s %s: config key %q is not in the server's configuration metadata", kind, name, k), "")
		}
		for _, dn := range slices.Sorted(maps.Keys(devices)) {
			props, ok := devs[devices[dn]["type"]]
			if !ok {
				continue
			}
			for _, k := range slices.Sorted(maps.Keys(devices[dn])) {
				if k == "type" || known(props, k) {
					continue
				}
				if s, ok := suggest.Closest(k, props); ok {
					d.fail(fmt.Sprintf("%s %s: unknown device property %q of device %q", kind, name, k, dn),
						fmt.Sprintf("did you mean %q?", s))
					continue
				}
				d.warn(fmt.Sprintf("%s %s: device property %q of device %q is not in the server's configuration metadata",
					kind, name, k, dn), "")
			}
		}
	}
	for _, pr := range d.want.Projects {
		if !d.scope[pr.Domain] || d.failed[pr.Domain] {
			continue
		}
		for _, prof := range pr.Profiles {
			if prof.Name != incus.DefaultProfile {
				check(plan.KindProfile, prof.Project+"/"+prof.Name, prof.Config, prof.Devices)
			}
		}
		for _, x := range pr.Instances {
			check(plan.KindInstance, x.Project+"/"+x.Name, x.Config, x.Devices)
		}
	}
}
