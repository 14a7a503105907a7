package reconcile

import (
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/lock"
	"github.com/anklume/anklume/internal/plan"
)

// orphanScope decides whether the owned live objects of domain dom (its
// user.anklume.domain) may be orphans: in scope, not failed, not disabled.
func (d *differ) orphanScope(dom string) bool {
	if d.failed[dom] || d.disabled[dom] || d.unknown[dom] {
		return false
	}
	if len(d.opts.Limit) > 0 {
		return slices.Contains(d.opts.Limit, dom)
	}
	return true
}

// users collects, for each object, the objects that stay and use it.
type users map[string][]string

func (u users) add(key, user string) { u[key] = append(u[key], user) }

// kept returns "in use by a, b" for key, or "".
func (u users) kept(key string) string {
	list := slices.Clone(u[key])
	if len(list) == 0 {
		return ""
	}
	slices.Sort(list)
	list = slices.Compact(list)
	return "kept (in use by " + strings.Join(list, ", ") + ")"
}

// RestoreLeftoverReason is the reason of the delete of a temporary
// instance that an interrupted backup restore left behind.
const RestoreLeftoverReason = "repair: an earlier restore did not finish; temporary import"

// restoreLeftover reports whether name is the temporary name that a
// backup restore imports under (incusx.RestoreStagePrefix and digits).
func restoreLeftover(name string) bool {
	rest, ok := strings.CutPrefix(name, incusx.RestoreStagePrefix)
	if !ok || rest == "" {
		return false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// restoreLeftovers plans the delete of the temporary instances of
// interrupted restores: a restore imports the backup into the default
// project under a temporary name, then moves it into the domain's project
// and renames it, so a restore that stopped on the way leaves a stopped
// copy of a machine, with its ownership keys and its static address,
// under that name in either project. Only a copy that this infrastructure
// owns, of an in-scope domain, is deleted (protection lifted first: it is
// no machine); any other is a note. It returns the planned deletes.
func (d *differ) restoreLeftovers() map[pkey]bool {
	deleted := map[pkey]bool{}
	for _, k := range sortedKeys(d.instances) {
		x := d.instances[k]
		if !restoreLeftover(k.name) {
			continue
		}
		name := k.project + "/" + k.name
		dom := x.Config[incus.KeyDomain]
		if o, _ := ownerOf(x.Config, d.want.Infra); o != ownedHere || !d.scope[dom] || !d.orphanScope(dom) {
			if o != ownedHere {
				d.warn("instance "+name+" looks like the temporary import of an interrupted backup restore; it is not owned by this infrastructure and is left as it is", "")
			}
			continue
		}
		deleted[k] = true
		d.change(plan.Change{Action: plan.Delete, Kind: plan.KindInstance, Name: name, Project: k.project,
			Domain: dom, Reason: RestoreLeftoverReason, Live: *x})
	}
	return deleted
}

// orphans plans the owned objects that are not desired (§9.2).
func (d *differ) orphans() {
	infra := d.want.Infra
	owned := func(cfg map[string]string) bool {
		o, _ := ownerOf(cfg, infra)
		return o == ownedHere
	}
	// Projects whose content may hold orphans: the desired in-scope
	// projects that were planned, and owned projects of no desired
	// domain (orphan domains).
	orphanProject := map[string]bool{}
	contentScope := map[string]string{} // project -> domain
	for _, pr := range d.want.Projects {
		if d.scope[pr.Domain] && !d.failed[pr.Domain] && !d.unknown[pr.Domain] {
			if live := d.projects[pr.Name]; live != nil && owned(live.Config) {
				contentScope[pr.Name] = pr.Domain
			}
		}
	}
	for _, p := range d.obs.Projects {
		if lock.IsLockProject(p.Name) || d.want.Project(p.Name) != nil || !owned(p.Config) {
			continue
		}
		if dom := p.Config[incus.KeyDomain]; d.orphanScope(dom) {
			orphanProject[p.Name] = true
			contentScope[p.Name] = dom
		}
	}

	deleted := d.restoreLeftovers()
	// Instances first: what they use decides what else is kept.
	for _, k := range sortedKeys(d.instances) {
		x := d.instances[k]
		dom, ok := contentScope[k.project]
		if !ok || deleted[k] || d.desiredKeys["instance\x00"+k.project+"\x00"+k.name] || d.movedFrom[k] ||
			!owned(x.Config) || truthy(x.Config[incus.KeyDisp]) {
			continue
		}
		name := k.project + "/" + k.name
		switch {
		case truthy(x.ExpandedConfig["security.protection.delete"]) || truthy(x.Config["security.protection.delete"]):
			d.note(plan.KindInstance, name, k.project, dom, "kept (protected orphan)", true)
		case truthy(x.Config[incus.KeyAdopted]) && !d.opts.Force:
			d.note(plan.KindInstance, name, k.project, dom, "kept (adopted; pass --force to delete it)", true)
		default:
			deleted[k] = true
			d.change(plan.Change{Action: plan.Delete, Kind: plan.KindInstance, Name: name, Project: k.project,
				Domain: dom, Orphan: true, Live: *x})
		}
	}
	// Replaced instances lose their old half but keep their name; moved
	// instances leave their project.
	// A desired instance uses what its desired profiles and devices name,
	// since apply brings it there; any other instance that stays uses what
	// it uses now.
	u := users{}
	for _, k := range sortedKeys(d.instances) {
		if deleted[k] || d.movedFrom[k] {
			continue
		}
		x := d.instances[k]
		profiles, devs := x.Profiles, devicesOf(x)
		if w := d.want.Instance(k.project, k.name); w != nil && d.scope[w.Domain] && !d.failed[w.Domain] {
			profiles, devs = w.Profiles, w.Devices
		}
		user := "instance " + k.project + "/" + k.name
		u.add("project\x00"+k.project, user)
		for _, p := range profiles {
			u.add("profile\x00"+k.project+"\x00"+p, user)
		}
		for _, dev := range devs {
			if dev["type"] == "disk" && dev["pool"] != "" && dev["source"] != "" && !strings.HasPrefix(dev["source"], "/") {
				u.add("volume\x00"+dev["pool"]+"\x00"+k.project+"\x00"+dev["source"], user)
			}
			if dev["type"] == "nic" && dev["network"] != "" {
				u.add("network\x00"+dev["network"], user)
			}
		}
	}

	// Storage volumes.
	for _, k := range sortedVKeys(d.volumes) {
		v := d.volumes[k]
		dom, ok := contentScope[k.project]
		key := "volume\x00" + k.pool + "\x00" + k.project + "\x00" + k.name
		if !ok || d.desiredKeys[key] || !owned(v.Config) {
			u.add("project\x00"+k.project, "storage volume "+k.project+"/"+k.name)
			continue
		}
		name := k.project + "/" + k.name
		switch {
		case !truthy(v.Config[incus.KeyEphemeral]) && !d.opts.PruneVolumes:
			d.note(plan.KindVolume, name, k.project, dom, "kept (protected orphan; pass --prune-volumes to delete it)", true)
		case truthy(v.Config[incus.KeyAdopted]) && !d.opts.Force:
			d.note(plan.KindVolume, name, k.project, dom, "kept (adopted; pass --force to delete it)", true)
		case u.kept(key) != "":
			d.note(plan.KindVolume, name, k.project, dom, u.kept(key), true)
		default:
			d.change(plan.Change{Action: plan.Delete, Kind: plan.KindVolume, Name: name, Project: k.project,
				Domain: dom, Orphan: true, Live: *v, Pool: k.pool})
			continue
		}
		u.add("project\x00"+k.project, "storage volume "+name)
	}

	// Profiles (the default profile goes with its project).
	for _, k := range sortedKeys(d.profiles) {
		p := d.profiles[k]
		dom, ok := contentScope[k.project]
		key := "profile\x00" + k.project + "\x00" + k.name
		stays := func() {
			if k.name != incus.DefaultProfile {
				u.add("project\x00"+k.project, "profile "+k.project+"/"+k.name)
			}
			for _, dev := range p.Devices {
				if dev["type"] == "nic" && dev["network"] != "" {
					u.add("network\x00"+dev["network"], "profile "+k.project+"/"+k.name)
				}
			}
		}
		if !ok || d.desiredKeys[key] || !owned(p.Config) || k.name == incus.DefaultProfile {
			if k.name != incus.DefaultProfile || !orphanProject[k.project] {
				stays()
			}
			continue
		}
		name := k.project + "/" + k.name
		switch {
		case truthy(p.Config[incus.KeyAdopted]) && !d.opts.Force:
			d.note(plan.KindProfile, name, k.project, dom, "kept (adopted; pass --force to delete it)", true)
		case u.kept(key) != "":
			d.note(plan.KindProfile, name, k.project, dom, u.kept(key), true)
		default:
			d.change(plan.Change{Action: plan.Delete, Kind: plan.KindProfile, Name: name, Project: k.project,
				Domain: dom, Orphan: true, Live: *p})
			continue
		}
		stays()
	}

	// Orphan projects, then orphan networks.
	keptProject := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(orphanProject)) {
		p := d.projects[name]
		dom := contentScope[name]
		key := "project\x00" + name
		d.orphanDomain(dom, name, "")
		switch {
		case truthy(p.Config[incus.KeyAdopted]) && !d.opts.Force:
			d.note(plan.KindProject, name, name, dom, "kept (adopted; pass --force to delete it)", true)
		case u.kept(key) != "":
			d.note(plan.KindProject, name, name, dom, u.kept(key), true)
		default:
			d.change(plan.Change{Action: plan.Delete, Kind: plan.KindProject, Name: name, Project: name,
				Domain: dom, Orphan: true, Live: *p})
			continue
		}
		keptProject[name] = true
	}
	// The default profile of a kept orphan project stays, with its NICs.
	for name := range keptProject {
		if p := d.profiles[pkey{name, incus.DefaultProfile}]; p != nil {
			for _, dev := range p.Devices {
				if dev["type"] == "nic" && dev["network"] != "" {
					u.add("network\x00"+dev["network"], "profile "+name+"/"+incus.DefaultProfile)
				}
			}
		}
	}
	for _, n := range d.obs.Networks {
		if d.want.Network(n.Name) != nil || !owned(n.Config) {
			continue
		}
		dom := n.Config[incus.KeyDomain]
		if !d.orphanScope(dom) {
			continue
		}
		if d.want.DomainProject(dom) == nil {
			d.orphanDomain(dom, "", n.Name)
		}
		key := "network\x00" + n.Name
		switch {
		case truthy(n.Config[incus.KeyAdopted]) && !d.opts.Force:
			d.note(plan.KindNetwork, n.Name, incus.DefaultProject, dom, "kept (adopted; pass --force to delete it)", true)
		case u.kept(key) != "":
			d.note(plan.KindNetwork, n.Name, incus.DefaultProject, dom, u.kept(key), true)
		default:
			d.change(plan.Change{Action: plan.Delete, Kind: plan.KindNetwork, Name: n.Name, Project: incus.DefaultProject,
				Domain: dom, Orphan: true, Live: n})
		}
	}
}

// orphanDomain records an orphan domain's header, once.
func (d *differ) orphanDomain(dom, project, network string) {
	for i := range d.p.Domains {
		if di := &d.p.Domains[i]; di.Name == dom {
			if di.Orphan {
				if project != "" {
					di.Project = project
				}
				if network != "" {
					di.Network = network
				}
			}
			return
		}
	}
	d.p.Domains = append(d.p.Domains, plan.DomainInfo{Name: dom, Project: project, Network: network, Orphan: true})
}

// devicesOf returns an instance's expanded devices, or its own when the
// listing has none.
func devicesOf(x *api.Instance) map[string]map[string]string {
	if len(x.ExpandedDevices) > 0 {
		return x.ExpandedDevices
	}
	return x.Devices
}

func sortedKeys[V any](m map[pkey]V) []pkey {
	keys := slices.Collect(maps.Keys(m))
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].project != keys[j].project {
			return keys[i].project < keys[j].project
		}
		return keys[i].name < keys[j].name
	})
	return keys
}

func sortedVKeys(m map[vkey]*api.StorageVolume) []vkey {
	keys := slices.Collect(maps.Keys(m))
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.project != b.project {
			return a.project < b.project
		}
		if a.name != b.name {
			return a.name < b.name
		}
		return a.pool < b.pool
	})
	return keys
}

// sort puts the domains in output order (declaration order, then orphan
// domains by name) and the changes and notes of each domain by kind and
// name, orphans last (§9.4).
func (d *differ) sort() {
	var decl, orphan []plan.DomainInfo
	for _, di := range d.p.Domains {
		if di.Orphan {
			orphan = append(orphan, di)
		} else {
			decl = append(decl, di)
		}
	}
	sort.SliceStable(orphan, func(i, j int) bool { return orphan[i].Name < orphan[j].Name })
	d.p.Domains = append(decl, orphan...)
	idx := map[string]int{}
	for i, di := range d.p.Domains {
		idx[di.Name] = i + 1
	}
	sort.SliceStable(d.p.Changes, func(i, j int) bool {
		a, b := d.p.Changes[i], d.p.Changes[j]
		return plan.LineLess(idx[a.Domain], a.Orphan, a.Kind, a.Name, idx[b.Domain], b.Orphan, b.Kind, b.Name)
	})
	sort.SliceStable(d.p.Notes, func(i, j int) bool {
		a, b := d.p.Notes[i], d.p.Notes[j]
		if a.Domain == "" || b.Domain == "" {
			return a.Domain == "" && b.Domain != ""
		}
		return plan.LineLess(idx[a.Domain], a.Orphan, a.Kind, a.Name, idx[b.Domain], b.Orphan, b.Kind, b.Name)
	})
}
