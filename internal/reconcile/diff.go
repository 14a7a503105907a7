package reconcile

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/hostdirs"
	"github.com/anklume/anklume/internal/lock"
	"github.com/anklume/anklume/internal/plan"
	"github.com/anklume/anklume/internal/suggest"
)

// LockProject is the project of the apply lock; neither it nor its
// tombstones (lock.IsLockProject) are ever orphans.
const LockProject = lock.Project

// Options are the plan flags of SPEC.md §9.4 and the host facts a plan
// needs.
type Options struct {
	// Limit names the in-scope domains (--limit); empty means every
	// enabled domain.
	Limit []string
	// Adopt, AllowEmpty, PruneVolumes and Force are the flags of §9.2.
	Adopt        bool
	AllowEmpty   bool
	PruneVolumes bool
	Force        bool
	// Remote is true with --remote: host directories are listed as
	// "must exist on the Incus host" (§4.11).
	Remote bool
	// DirExists tells whether a host directory exists (local daemon
	// only). Nil skips the missing-directory notes.
	DirExists func(string) bool
	// LegacyDir tells whether an existing host directory is one an older
	// anklume made, which apply hands over (hostdirs.Legacy). Nil skips
	// those notes.
	LegacyDir func(hostdirs.Dir) bool
	// EmptyDir tells whether a host path is missing or an empty directory
	// (hostdirs.EmptyOrMissing): where the persistent data of a machine
	// that changes domain may go. Nil assumes it is.
	EmptyDir func(string) bool
	// ResolveImage turns an image reference into an instance source
	// (incusx.Server.ResolveImage). Nil knows only local aliases and the
	// built-in "images" remote.
	ResolveImage func(ref string) (api.InstanceSource, error)
	// Model is the resolved model the desired state comes from. It gives
	// the disabled domains, the image mappings (§4.12) and which subnets
	// and IPs are automatic (W20, W21). Nil leaves those out.
	Model *model.Infra
}

// Error is a plan error (§9.2): the plan cannot be carried out. Hint is
// printed under it as `  hint: <Hint>` when not empty.
type Error struct {
	Msg  string
	Hint string
}

func (e *Error) Error() string { return e.Msg }

// Errors returns the plan errors inside err (joined by Diff), or err
// itself as one Error.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var pe *Error
		if errors.As(e, &pe) {
			out = append(out, pe)
			return
		}
		out = append(out, &Error{Msg: e.Error()})
	}
	if err != nil {
		walk(err)
	}
	return out
}

type pkey struct{ project, name string }

type vkey struct{ pool, project, name string }

// differ holds one Diff computation.
type differ struct {
	want *incus.State
	obs  *Observed
	opts Options
	p    *plan.Plan
	errs []error

	projects  map[string]*api.Project
	networks  map[string]*api.Network
	profiles  map[pkey]*api.Profile
	instances map[pkey]*api.Instance
	volumes   map[vkey]*api.StorageVolume

	scope    map[string]bool // in-scope enabled domains
	failed   map[string]bool
	disabled map[string]bool
	// movedFrom holds the live instances that move to another project.
	movedFrom map[pkey]bool
	// stays holds the project-scoped objects that stay: "kind\x00p\x00n".
	desiredKeys map[string]bool
	// unknown holds the domains placed on an offline cluster member;
	// moving maps a domain that changes member to its old one
	// (cluster.go).
	unknown map[string]bool
	moving  map[string]string
	// placedAt maps each placed in-scope domain to its member.
	placedAt map[string]string
}

// Diff compares the desired state with the observed one and returns the
// plan (SPEC.md §9.2–§9.4). Plan errors (§9.2: objects of another
// infrastructure, unowned objects without --adopt, forbidden replaces,
// moves and pool changes, configuration keys that the server's metadata
// does not know and that look like a typo) are returned joined, each an
// *Error; the plan is returned with them so that callers may still show
// what was found. It never talks to Incus.
func Diff(want *incus.State, obs *Observed, opts Options) (*plan.Plan, error) {
	if want == nil {
		want = &incus.State{}
	}
	if obs == nil {
		obs = &Observed{}
	}
	d := &differ{
		want: want, obs: obs, opts: opts,
		p:           &plan.Plan{Desired: want},
		projects:    map[string]*api.Project{},
		networks:    map[string]*api.Network{},
		profiles:    map[pkey]*api.Profile{},
		instances:   map[pkey]*api.Instance{},
		volumes:     map[vkey]*api.StorageVolume{},
		scope:       map[string]bool{},
		failed:      map[string]bool{},
		disabled:    map[string]bool{},
		movedFrom:   map[pkey]bool{},
		desiredKeys: map[string]bool{},
		unknown:     map[string]bool{},
		moving:      map[string]string{},
		placedAt:    map[string]string{},
	}
	d.index()
	if err := d.setScope(); err != nil {
		return nil, err
	}
	if err := d.checkEmpty(); err != nil {
		return nil, err
	}
	d.globalNotes()
	load := d.loads()
	for _, pr := range want.Projects {
		if !d.scope[pr.Domain] {
			continue
		}
		info := plan.DomainInfo{Name: pr.Domain, Project: pr.Name, Network: d.bridgeOf(pr.Domain)}
		msg, unknown := d.place(pr, &info, load)
		if msg == "" && !unknown {
			msg = d.checkDomain(pr)
		}
		if msg != "" {
			d.failed[pr.Domain] = true
			d.p.Failed = append(d.p.Failed, plan.FailedDomain{Domain: pr.Domain, Message: msg})
		}
		d.p.Domains = append(d.p.Domains, info)
	}
	d.checkPolicyMembers()
	for _, pr := range want.Projects {
		if d.scope[pr.Domain] && !d.failed[pr.Domain] && !d.unknown[pr.Domain] {
			d.domain(pr)
		}
	}
	d.checkMetadata()
	d.unknownOrphans()
	d.orphans()
	d.sort()
	return d.p, errors.Join(d.errs...)
}

// index builds the lookup maps of the observed state.
func (d *differ) index() {
	for i := range d.obs.Projects {
		d.projects[d.obs.Projects[i].Name] = &d.obs.Projects[i]
	}
	for i := range d.obs.Networks {
		d.networks[d.obs.Networks[i].Name] = &d.obs.Networks[i]
	}
	for i := range d.obs.Profiles {
		p := &d.obs.Profiles[i]
		d.profiles[pkey{projectOf(p.Project), p.Name}] = p
	}
	for i := range d.obs.Instances {
		x := &d.obs.Instances[i]
		d.instances[pkey{projectOf(x.Project), x.Name}] = x
	}
	for pool, vols := range d.obs.Volumes {
		for i := range vols {
			v := &vols[i]
			d.volumes[vkey{pool, projectOf(v.Project), v.Name}] = v
		}
	}
}

// projectOf maps Incus's empty project to "default".
func projectOf(p string) string {
	if p == "" {
		return incus.DefaultProject
	}
	return p
}

// setScope computes the in-scope domains and checks --limit.
func (d *differ) setScope() error {
	known := map[string]bool{}
	if m := d.opts.Model; m != nil {
		for _, dom := range m.Domains {
			known[dom.Name] = true
			if !dom.Enabled {
				d.disabled[dom.Name] = true
			}
		}
	}
	for _, pr := range d.want.Projects {
		known[pr.Domain] = true
	}
	var errs []error
	var names []string
	for n := range known {
		names = append(names, n)
	}
	for _, l := range d.opts.Limit {
		if !known[l] {
			errs = append(errs, &Error{Msg: fmt.Sprintf("--limit: unknown domain %q%s", l, suggest.Hint(l, names))})
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, pr := range d.want.Projects {
		if len(d.opts.Limit) == 0 || slices.Contains(d.opts.Limit, pr.Domain) {
			d.scope[pr.Domain] = true
		}
	}
	return nil
}

// checkEmpty refuses an empty configuration against a live
// infrastructure (§9.2).
func (d *differ) checkEmpty() error {
	if len(d.want.Projects) > 0 || d.opts.AllowEmpty {
		return nil
	}
	infra := d.want.Infra
	live := false
	mine := func(cfg map[string]string) bool {
		o, _ := ownerOf(cfg, infra)
		return o == ownedHere && !d.disabled[cfg[incus.KeyDomain]]
	}
	for _, p := range d.obs.Projects {
		live = live || (!lock.IsLockProject(p.Name) && mine(p.Config))
	}
	for _, n := range d.obs.Networks {
		live = live || mine(n.Config)
	}
	for _, x := range d.obs.Instances {
		live = live || mine(x.Config)
	}
	if live {
		return &Error{Msg: fmt.Sprintf("the configuration has no enabled domain, but Incus holds objects of infrastructure %q; pass --allow-empty to delete them", infra)}
	}
	return nil
}

// bridgeOf returns the desired bridge of domain dom.
func (d *differ) bridgeOf(dom string) string {
	for _, n := range d.want.Networks {
		if n.Domain == dom {
			return n.Name
		}
	}
	return ""
}

func (d *differ) fail(msg, hint string) {
	d.errs = append(d.errs, &Error{Msg: msg, Hint: hint})
}

func (d *differ) warn(msg, hint string) {
	d.p.Warnings = append(d.p.Warnings, plan.Warning{Msg: msg, Hint: hint})
}

func (d *differ) note(kind plan.Kind, name, project, domain, text string, orphan bool) {
	d.p.Notes = append(d.p.Notes, plan.Note{Kind: kind, Name: name, Project: project, Domain: domain, Text: text, Orphan: orphan})
}

func (d *differ) change(c plan.Change) {
	if c.Diff == nil {
		c.Diff = []plan.Diff{}
	}
	d.p.Changes = append(d.p.Changes, c)
}

// sameName applies §9.2 to a live object with a desired name. It returns
// whether the object is compared, and the reason "adopt" for an unowned
// object taken over with --adopt.
func (d *differ) sameName(kind plan.Kind, name string, cfg map[string]string) (bool, string) {
	switch o, other := ownerOf(cfg, d.want.Infra); o {
	case ownedHere:
		return true, ""
	case ownedOther:
		d.fail(fmt.Sprintf("%s %s belongs to infrastructure %q", kind, name, other), "")
		return false, ""
	}
	if d.opts.Adopt {
		return true, "adopt"
	}
	d.fail(fmt.Sprintf("%s %s exists and is not managed by anklume", kind, name),
		"pass --adopt to take it over, or rename the domain or machine")
	return false, ""
}

// domain plans the objects of one in-scope domain.
func (d *differ) domain(pr *incus.Project) {
	dom := pr.Domain
	if n := d.want.Network(d.bridgeOf(dom)); n != nil {
		d.network(n)
	}
	if !d.project(pr) {
		return // the project's errors say enough
	}
	for _, prof := range pr.Profiles {
		d.profile(pr, prof)
	}
	for _, v := range pr.StorageVolumes {
		d.volume(v)
	}
	for _, x := range pr.Instances {
		d.instance(x)
	}
}

func (d *differ) network(n *incus.Network) {
	d.desiredKeys["network\x00\x00"+n.Name] = true
	live := d.networks[n.Name]
	if d.clusterNetwork(n, live) {
		return
	}
	if live == nil {
		d.change(plan.Change{Action: plan.Create, Kind: plan.KindNetwork, Name: n.Name, Project: incus.DefaultProject,
			Domain: n.Domain, Desired: n})
		return
	}
	ok, reason := d.sameName(plan.KindNetwork, n.Name, live.Config)
	if !ok {
		return
	}
	if halfMadeNetwork(live.Status) {
		if reason == "adopt" {
			d.warn(fmt.Sprintf("network %s is in status %s and not owned by anklume; it is left as it is", n.Name, live.Status),
				"delete it (incus network delete "+n.Name+") and re-run, so that apply creates it")
			return
		}
		d.change(plan.Change{Action: plan.Replace, Kind: plan.KindNetwork, Name: n.Name, Project: incus.DefaultProject,
			Domain: n.Domain, Reason: RepairReason + ": status " + live.Status, Diff: []plan.Diff{}, Desired: n, Live: *live,
			Members: d.memberNames()})
		return
	}
	diffs := compareNetwork(live.Description, live.Config, n)
	action := plan.Update
	old, new := live.Config["ipv4.address"], n.Config["ipv4.address"]
	if old != "" && old != new && reason == "" {
		action, reason = plan.Renumber, "renumber"
		d.warnSubnet(n.Domain, old, new)
	}
	if len(diffs) == 0 && reason == "" {
		return
	}
	d.change(plan.Change{Action: action, Kind: plan.KindNetwork, Name: n.Name, Project: incus.DefaultProject,
		Domain: n.Domain, Reason: reason, Diff: diffs, Desired: n, Live: *live})
}

// RepairReason is the reason of a change that completes or redoes what an
// earlier run left half-made (it was killed, lost its connection, or the
// Incus daemon restarted under it).
const RepairReason = "repair: an earlier run did not finish"

// StartNeverStarted is the reason of a start of an instance that was never
// started since it was created.
const StartNeverStarted = "start, repair: never started since an earlier run created it"

// volatileApplyTemplate is the key Incus sets on an instance created from
// an image and removes at its first start.
const volatileApplyTemplate = "volatile.apply_template"

// halfMadeNetwork reports whether a network status is one that a create
// leaves when it did not finish: "Pending" (Incus 6.0 keeps the database
// record of a create whose client went away, its rollback running with
// the cancelled request context) or "Errored" (the create failed on the
// host). Such a bridge never gets its dnsmasq files, so every instance
// create on it fails; the only repair is delete and create. "Unavailable"
// (a created network that failed to start with the daemon) is not one:
// its instances and leases are real, and Incus retries it.
func halfMadeNetwork(status string) bool {
	return status == "Pending" || status == "Errored"
}

// warnSubnet emits W20 when the domain's subnet id is automatic.
func (d *differ) warnSubnet(dom, old, new string) {
	m := d.opts.Model
	if m == nil {
		return
	}
	md := m.Domain(dom)
	if md == nil || md.SeqExplicit {
		return
	}
	op, err1 := netip.ParsePrefix(old)
	np, err2 := netip.ParsePrefix(new)
	if err1 != nil || err2 != nil {
		return
	}
	oldNet, newNet := op.Masked(), np.Masked()
	seq := oldNet.Addr().As4()[2]
	d.warn(fmt.Sprintf("domain %q moves from %s/24 to %s/24 because its automatic subnet id changed",
		dom, oldNet.Addr(), newNet.Addr()), fmt.Sprintf("pin it with subnet_id: %d", seq))
}

// project plans a project and reports whether it is (or becomes) owned.
func (d *differ) project(pr *incus.Project) bool {
	d.desiredKeys["project\x00\x00"+pr.Name] = true
	live := d.projects[pr.Name]
	if live == nil {
		d.change(plan.Change{Action: plan.Create, Kind: plan.KindProject, Name: pr.Name, Project: pr.Name,
			Domain: pr.Domain, Desired: pr})
		return true
	}
	ok, reason := d.sameName(plan.KindProject, pr.Name, live.Config)
	if !ok {
		return false
	}
	diffs, notes := compareProject(live.Description, live.Config, pr)
	for _, t := range notes {
		d.note(plan.KindProject, pr.Name, pr.Name, pr.Domain, t, false)
	}
	if len(diffs) > 0 || reason != "" {
		d.change(plan.Change{Action: plan.Update, Kind: plan.KindProject, Name: pr.Name, Project: pr.Name,
			Domain: pr.Domain, Reason: reason, Diff: diffs, Desired: pr, Live: *live})
	}
	return true
}

func (d *differ) profile(pr *incus.Project, prof *incus.Profile) {
	name := prof.Project + "/" + prof.Name
	d.desiredKeys["profile\x00"+prof.Project+"\x00"+prof.Name] = true
	live := d.profiles[pkey{prof.Project, prof.Name}]
	if live == nil {
		d.change(plan.Change{Action: plan.Create, Kind: plan.KindProfile, Name: name, Project: prof.Project,
			Domain: pr.Domain, Desired: prof})
		return
	}
	reason := ""
	if prof.Name != incus.DefaultProfile {
		var ok bool
		if ok, reason = d.sameName(plan.KindProfile, name, live.Config); !ok {
			return
		}
	} else if o, _ := ownerOf(live.Config, d.want.Infra); o != ownedHere && d.projects[pr.Name] != nil {
		// The default profile of an owned project belongs to it (§9.2);
		// it follows the project's adoption.
		if po, _ := ownerOf(d.projects[pr.Name].Config, d.want.Infra); po != ownedHere {
			reason = "adopt"
		} else if _, marked := live.Config[incus.KeyManaged]; !marked && o == notOwned {
			// anklume creates a project, then writes its default
			// profile: a run stopped in between left it as Incus made it.
			reason = RepairReason
		}
	}
	diffs := compareProfile(live.Description, live.Config, live.Devices, prof)
	if len(diffs) == 0 && reason == "" {
		return
	}
	d.change(plan.Change{Action: plan.Update, Kind: plan.KindProfile, Name: name, Project: prof.Project,
		Domain: pr.Domain, Reason: reason, Diff: diffs, Desired: prof, Live: *live})
}

func (d *differ) volume(v *incus.StorageVolume) {
	name := v.Project + "/" + v.Name
	d.desiredKeys["volume\x00"+v.Pool+"\x00"+v.Project+"\x00"+v.Name] = true
	dom := v.Config[incus.KeyDomain]
	live := d.volumes[vkey{v.Pool, v.Project, v.Name}]
	if live == nil {
		for k, lv := range d.volumes {
			if k.project == v.Project && k.name == v.Name && k.pool != v.Pool {
				if o, _ := ownerOf(lv.Config, d.want.Infra); o == ownedHere {
					d.desiredKeys["volume\x00"+k.pool+"\x00"+v.Project+"\x00"+v.Name] = true
					d.fail(fmt.Sprintf("storage volume %s is in pool %q, not %q; anklume does not move volume data between pools",
						name, k.pool, v.Pool), "")
					return
				}
			}
		}
		d.change(plan.Change{Action: plan.Create, Kind: plan.KindVolume, Name: name, Project: v.Project,
			Domain: dom, Desired: v, Pool: v.Pool})
		return
	}
	ok, reason := d.sameName(plan.KindVolume, name, live.Config)
	if !ok {
		return
	}
	diffs, small := compareVolume(live.Description, live.Config, v)
	if small != "" {
		d.note(plan.KindVolume, name, v.Project, dom, small, false)
	}
	if len(diffs) == 0 && reason == "" {
		return
	}
	d.change(plan.Change{Action: plan.Update, Kind: plan.KindVolume, Name: name, Project: v.Project,
		Domain: dom, Reason: reason, Diff: diffs, Desired: v, Live: *live, Pool: v.Pool})
}

// createReason is "lxc, images:debian/13, 10.120.0.1" (§9.4).
func createReason(x *incus.Instance) string {
	parts := []string{shortType(string(x.Type)), x.Image}
	if ip := x.Devices["eth0"]["ipv4.address"]; ip != "" {
		parts = append(parts, ip)
	}
	return strings.Join(parts, ", ")
}

// findMoved returns an owned live instance named name in another project.
func (d *differ) findMoved(x *incus.Instance) *api.Instance {
	var found *api.Instance
	for k, live := range d.instances {
		if k.name != x.Name || k.project == x.Project {
			continue
		}
		if o, _ := ownerOf(live.Config, d.want.Infra); o != ownedHere {
			continue
		}
		if d.want.Project(k.project) != nil && d.want.Project(k.project).Instance(x.Name) != nil {
			continue // desired where it is: a different machine
		}
		if found == nil || k.project < found.Project {
			found = live
		}
	}
	return found
}

// hasData reports whether devices hold persistent data or storage
// volumes, which stay on a cluster member's disks.
func hasData(devs map[string]map[string]string) bool {
	for name := range devs {
		if strings.HasPrefix(name, "pd-") {
			return true
		}
	}
	return hasVolumes(devs)
}

// hasVolumes reports whether devices hold custom storage volumes, which
// belong to their project and cannot follow a machine to another domain.
func hasVolumes(devs map[string]map[string]string) bool {
	for _, dev := range devs {
		if dev["type"] == "disk" && dev["pool"] != "" && dev["source"] != "" && !strings.HasPrefix(dev["source"], "/") {
			return true
		}
	}
	return false
}

// dataMoves returns the persistent-data directories that follow the
// machine x, which moves from the instance moved of project old (domain
// oldDom), to its new domain: each desired pd-<v> directory
// <base>/<new domain>/<machine>/<v> comes from the source of the live
// device of that name or, when an interrupted apply already removed the
// device (the release step), from <base>/<oldDom>/<machine>/<v>. A
// directory that is not on the host (DirExists) has nothing to move. It
// fails the plan, and returns false, when anklume cannot move them: with
// --remote (the directories are on another host), or when a destination
// already holds files (anklume never merges two data directories).
func (d *differ) dataMoves(x *incus.Instance, moved *api.Instance, old, oldDom string) ([]hostdirs.Move, bool) {
	if oldDom == "" {
		oldDom = old
	}
	machine := x.Machine
	if machine == "" {
		machine = x.Name
	}
	var moves []hostdirs.Move
	for name, dev := range x.Devices {
		to := dev["source"]
		if !strings.HasPrefix(name, "pd-") || dev["type"] != "disk" || !strings.HasPrefix(to, "/") {
			continue
		}
		from := ""
		if live := moved.Devices[name]; live["type"] == "disk" && strings.HasPrefix(live["source"], "/") {
			from = live["source"]
		} else if suffix := "/" + x.Domain + "/" + machine + "/" + name[len("pd-"):]; strings.HasSuffix(to, suffix) {
			from = strings.TrimSuffix(to, suffix) + "/" + oldDom + "/" + machine + "/" + name[len("pd-"):]
		}
		if from == "" || from == to || (!d.opts.Remote && d.opts.DirExists != nil && !d.opts.DirExists(from)) {
			continue
		}
		moves = append(moves, hostdirs.Move{From: from, To: to})
	}
	sort.Slice(moves, func(i, j int) bool { return moves[i].To < moves[j].To })
	ok := true
	for _, m := range moves {
		switch {
		case d.opts.Remote:
			d.fail(fmt.Sprintf("cannot move instance %s/%s to domain %q: its persistent data %s is on the Incus host",
				old, moved.Name, x.Domain, m.From), "apply on the Incus host, which moves it to "+m.To+", or move it there by hand first")
			ok = false
		case d.opts.EmptyDir != nil && !d.opts.EmptyDir(m.To):
			d.fail(fmt.Sprintf("cannot move instance %s/%s to domain %q: its persistent data %s would move to %s, which exists and is not empty",
				old, moved.Name, x.Domain, m.From, m.To), "anklume never merges data directories: empty or rename "+m.To+", then apply again")
			ok = false
		}
	}
	return moves, ok
}

// moveReason is the part of a move reason that names the persistent data
// that follows the machine, "; persistent data /a moves to /b", or "".
func moveReason(moves []hostdirs.Move) string {
	var parts []string
	for _, m := range moves {
		parts = append(parts, m.From+" moves to "+m.To)
	}
	if len(parts) == 0 {
		return ""
	}
	return "; persistent data " + strings.Join(parts, ", ")
}

// keptData is the part of a replace reason that tells what survives the
// deletion of the old instance: persistent data and shared volumes (host
// directories that anklume never deletes) and custom storage volumes,
// "; data kept: pd-home (/srv/anklume/data/dev/ws/home), …", or "".
func keptData(devs map[string]map[string]string) string {
	var kept []string
	for name, dev := range devs {
		switch {
		case dev["type"] != "disk" || dev["source"] == "" || dev["path"] == "/":
		case strings.HasPrefix(name, "pd-") || strings.HasPrefix(name, "sv-"):
			kept = append(kept, name+" ("+dev["source"]+")")
		case dev["pool"] != "" && !strings.HasPrefix(dev["source"], "/"):
			kept = append(kept, name+" (volume "+dev["pool"]+"/"+dev["source"]+")")
		}
	}
	if len(kept) == 0 {
		return ""
	}
	sort.Strings(kept)
	return "; data kept: " + strings.Join(kept, ", ")
}

func (d *differ) instance(x *incus.Instance) {
	name := x.Project + "/" + x.Name
	d.desiredKeys["instance\x00"+x.Project+"\x00"+x.Name] = true
	live := d.instances[pkey{x.Project, x.Name}]
	base := plan.Change{Kind: plan.KindInstance, Name: name, Project: x.Project, Domain: x.Domain, Desired: x}
	if live == nil {
		moved := d.findMoved(x)
		if moved == nil {
			base.Action, base.Reason = plan.Create, createReason(x)
			d.change(base)
			return
		}
		old := projectOf(moved.Project)
		oldDom := moved.Config[incus.KeyDomain]
		if hasVolumes(x.Devices) || hasVolumes(moved.Devices) {
			d.fail(fmt.Sprintf("cannot move instance %s/%s to domain %q: its storage volumes stay with domain %q",
				old, moved.Name, x.Domain, oldDom), "move the data by hand, or remove the machine and declare it again")
			d.movedFrom[pkey{old, moved.Name}] = true
			return
		}
		d.movedFrom[pkey{old, moved.Name}] = true
		moves, ok := d.dataMoves(x, moved, old, oldDom)
		if !ok {
			return
		}
		base.Action, base.Reason = plan.Move, "move: "+old+" -> "+x.Project+moveReason(moves)
		base.OldProject, base.Live, base.DataMoves = old, *moved, moves
		base.Diff = compareInstance(moved.Description, moved.Profiles, moved.Config, moved.Devices, x)
		d.instanceNotes(x, moved)
		d.change(base)
		return
	}
	ok, reason := d.sameName(plan.KindInstance, name, live.Config)
	if !ok {
		return
	}
	base.Live = *live
	if r := d.memberReplace(x, live); r != "" {
		switch {
		case r == "-":
		case truthy(live.Config["security.protection.delete"]):
			d.fail(fmt.Sprintf("cannot move protected instance %s to cluster member %s (security.protection.delete=true); set ephemeral: true first", name, x.Target), "")
		default:
			base.Action, base.Reason = plan.Replace, r+keptData(x.Devices)
			d.change(base)
		}
		return
	}
	if live.Type != string(x.Type) {
		switch {
		case reason == "adopt":
			d.fail(fmt.Sprintf("cannot replace instance %s: it is not owned by anklume", name), "")
		case truthy(live.Config["security.protection.delete"]):
			d.fail(fmt.Sprintf("cannot replace protected instance %s (security.protection.delete=true); set ephemeral: true first", name), "")
		default:
			base.Action = plan.Replace
			base.Reason = "replace: type " + shortType(live.Type) + " -> " + shortType(string(x.Type)) + keptData(x.Devices)
			d.change(base)
		}
		return
	}
	d.instanceNotes(x, live)
	base.Diff = compareInstance(live.Description, live.Profiles, live.Config, live.Devices, x)
	running := live.Status == "Running"
	oldIP, newIP := live.Devices["eth0"]["ipv4.address"], x.Devices["eth0"]["ipv4.address"]
	switch {
	case reason == "adopt":
		base.Action = plan.Update
	case oldIP != "" && newIP != "" && oldIP != newIP:
		base.Action, reason = plan.Renumber, "renumber"
		d.warnIP(x, oldIP, newIP)
	case running && x.State == "stopped":
		base.Action, reason = plan.Stop, "stop"
	case !running && x.State != "stopped":
		base.Action, reason = plan.Start, "start"
		if live.Config[volatileApplyTemplate] == "create" {
			// Created and never started: apply creates an instance
			// stopped and starts it in its last phase, so this is
			// either a run that stopped in between or a machine that
			// was state: stopped until now. The reason says which
			// fact is known, without guessing.
			reason = StartNeverStarted
		}
		if len(base.Diff) > 0 {
			// The state phase starts it after the update.
			base.Action = plan.Update
		}
	case len(base.Diff) > 0:
		base.Action = plan.Update
		if running && (needsRestart(live.Type, base.Diff) || d.restartForProfiles(x, live)) {
			base.Restart, reason = true, "restart"
		}
	case running && d.restartForProfiles(x, live):
		base.Action, base.Restart, reason = plan.Update, true, "restart"
	default:
		return
	}
	base.Reason = reason
	d.change(base)
}

// restartForProfiles reports the restarts that come from other objects
// (§9.3): the firewall VM when its firewall-multi-nic profile changes, and
// an instance without a static IP when its bridge is renumbered (to get a
// new lease).
func (d *differ) restartForProfiles(x *incus.Instance, live *api.Instance) bool {
	for _, c := range d.p.Changes {
		switch {
		case c.Kind == plan.KindProfile && c.Action == plan.Update && live.Type == "virtual-machine" &&
			c.Name == x.Project+"/"+model.FirewallProfileName && slices.Contains(x.Profiles, model.FirewallProfileName):
			return true
		case c.Kind == plan.KindNetwork && c.Action == plan.Renumber && c.Domain == x.Domain &&
			x.Devices["eth0"]["ipv4.address"] == "":
			return true
		}
	}
	return false
}

// instanceNotes adds the create-only notes of an existing instance:
// target and source image (§5.7).
func (d *differ) instanceNotes(x *incus.Instance, live *api.Instance) {
	name := x.Project + "/" + x.Name
	if img := live.Config[incus.KeyOSImage]; img != "" && img != x.Image {
		d.note(plan.KindInstance, name, x.Project, x.Domain,
			fmt.Sprintf("created from %s; image %s applies only when the instance is created", img, x.Image), false)
	}
	if x.Target != "" && live.Location != "" && live.Location != "none" && live.Location != x.Target {
		d.note(plan.KindInstance, name, x.Project, x.Domain,
			fmt.Sprintf("runs on cluster member %q; target %q applies only when the instance is created", live.Location, x.Target), false)
	}
}

// warnIP emits W21 when the machine's IP is automatic.
func (d *differ) warnIP(x *incus.Instance, old, new string) {
	m := d.opts.Model
	if m == nil {
		return
	}
	mm := m.Machine(x.Machine)
	if mm == nil || mm.IPExplicit {
		return
	}
	d.warn(fmt.Sprintf("machine %q moves from %s to %s because its automatic ip changed", x.Machine, old, new),
		fmt.Sprintf("pin it with ip: %q", old))
}

// globalNotes adds the notes that concern no domain: image mappings and
// host directories (§4.11, §4.12).
func (d *differ) globalNotes() {
	if m := d.opts.Model; m != nil {
		for _, im := range m.ImageMappings {
			d.note(plan.KindImage, im.From, "", "", "mapped to "+im.To+" by ANKLUME_IMAGE_MAP", false)
		}
	}
	dirs := map[string]hostdirs.Dir{}
	svBase := ""
	if m := d.opts.Model; m != nil {
		svBase = m.Global.SharedVolumesBase
	}
	for _, pr := range d.want.Projects {
		if !d.scope[pr.Domain] {
			continue
		}
		for _, x := range pr.Instances {
			for name, dev := range x.Devices {
				src := dev["source"]
				if dev["type"] != "disk" || !strings.HasPrefix(src, "/") {
					continue
				}
				switch {
				case strings.HasPrefix(name, "pd-"):
					dirs[src] = hostdirs.Dir{Path: src, Kind: hostdirs.Persistent, Chosen: true}
				case strings.HasPrefix(name, "sv-"):
					dirs[src] = hostdirs.Dir{Path: src, Kind: hostdirs.Shared, Chosen: svBase != "" && src == svBase+"/"+name[len("sv-"):]}
				}
			}
		}
	}
	paths := make([]string, 0, len(dirs))
	for p := range dirs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		switch {
		case d.opts.Remote:
			d.note(plan.KindDir, p, "", "", "must exist on the Incus host", false)
		case d.opts.DirExists != nil && !d.opts.DirExists(p):
			d.note(plan.KindDir, p, "", "", "missing; apply creates it", false)
		case d.opts.LegacyDir != nil && d.opts.LegacyDir(dirs[p]):
			d.note(plan.KindDir, p, "", "", "made by an older anklume (owner root, mode 0750), which no container can use; apply hands it to the containers' root", false)
		}
	}
}
