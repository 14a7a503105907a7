package reconcile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/internal/lock"
	"github.com/anklume/anklume/internal/plan"
)

// Placement on an Incus cluster.
//
// The domain is the unit of placement: its bridge is one L2 segment, so
// every instance of a domain lives on one member. On a clustered server
// each in-scope domain is placed before it is planned:
//
//   - a domain whose project records a member (incus.KeyMember) stays
//     there as long as its target allows it: the target is that member,
//     a group the member is in, or no target. A domain never moves
//     between members unless the user changes its target; when the user
//     does, the plan says so (a note, the project's member key changing,
//     and each instance replaced on the new member, -/+). Persistent data
//     and storage volumes live on the old member's disks, so a domain
//     holding some is refused instead of moved. A project without the key
//     (made before it existed) takes the member of its first instance;
//   - otherwise a target member is used as is, and a "@group" target, or
//     no target, picks the online member (of the group) with the fewest
//     instances anklume manages, counting the domains placed earlier in
//     the same plan, ties broken by member name. The choice is a note in
//     the plan and is recorded on the project when it is created, so later
//     runs, `status` and `import` see it.
//
// A domain placed on a member that is offline is unknown: Incus lists its
// instances without their config, so nothing can be compared. Nothing is
// planned for it (never a delete, never a re-create elsewhere), the plan
// says so, and the other domains are planned as usual. The same holds for
// an orphan domain (removed from the configuration) whose project or
// instances are on an offline member.
//
// A bridge is created the cluster way: a pending create on every member
// (member-specific config only, which for an anklume bridge is none), then
// the final create with the global config. A network "Pending" on some
// member is a create to finish, not a network that exists: it is planned
// as a create that does the missing member creates. A pending network
// carries no config yet, so its ownership cannot be checked: anklume
// finishes it when its name is a desired bridge. The final create needs
// every member online (Incus sets the bridge up on each), so a domain
// whose bridge must be created fails its plan-time checks while a member
// is offline.

// memberOnline is the status of a member that answers.
const memberOnline = "Online"

// clustered reports whether the observed server is a cluster.
func (d *differ) clustered() bool {
	return d.obs.Server != nil && d.obs.Server.Environment.ServerClustered
}

// clusterMember returns the observed member named name, or nil.
func (d *differ) clusterMember(name string) *api.ClusterMember {
	for i := range d.obs.Members {
		if d.obs.Members[i].ServerName == name {
			return &d.obs.Members[i]
		}
	}
	return nil
}

// memberOffline reports whether name is a member that does not answer
// ("Offline"; an "Evacuated" member answers but takes no instances).
func (d *differ) memberOffline(name string) bool {
	m := d.clusterMember(name)
	return m != nil && m.Status == "Offline"
}

// memberNames lists every member by name (nil on a single server).
func (d *differ) memberNames() []string {
	var out []string
	for _, m := range d.obs.Members {
		out = append(out, m.ServerName)
	}
	slices.Sort(out)
	return out
}

// offlineMembers lists the members that are offline, by name.
func (d *differ) offlineMembers() []string {
	var out []string
	for _, m := range d.obs.Members {
		if m.Status == "Offline" {
			out = append(out, m.ServerName)
		}
	}
	slices.Sort(out)
	return out
}

// loads counts the instances anklume manages on each member.
func (d *differ) loads() map[string]int {
	n := map[string]int{}
	for _, x := range d.obs.Instances {
		if truthy(x.Config[incus.KeyManaged]) {
			n[x.Location]++
		}
	}
	return n
}

// pick returns the online member of group ("" for every member) with the
// fewest anklume instances, ties by name, or "".
func (d *differ) pick(group string, load map[string]int) string {
	best := ""
	names := make([]string, 0, len(d.obs.Members))
	for _, m := range d.obs.Members {
		names = append(names, m.ServerName)
	}
	slices.Sort(names)
	for _, name := range names {
		m := d.clusterMember(name)
		if m.Status != memberOnline || (group != "" && !slices.Contains(m.Groups, group)) {
			continue
		}
		if best == "" || load[name] < load[best] {
			best = name
		}
	}
	return best
}

// recordedMember returns the member a live project records, or the member
// of its first owned instance when the key is missing.
func (d *differ) recordedMember(project string) string {
	live := d.projects[project]
	if live == nil {
		return ""
	}
	if m := live.Config[incus.KeyMember]; m != "" {
		return m
	}
	for _, k := range sortedKeys(d.instances) {
		if x := d.instances[k]; k.project == project && x.Location != "" && x.Location != "none" {
			return x.Location
		}
	}
	return ""
}

// allows reports whether a domain target lets a domain stay on member.
func (d *differ) allows(target, member string) bool {
	switch {
	case target == "":
		return true
	case strings.HasPrefix(target, "@"):
		m := d.clusterMember(member)
		return m != nil && slices.Contains(m.Groups, target[1:])
	}
	return target == member
}

// place chooses the member of an in-scope domain on a clustered server and
// records it in the desired state: the project's KeyMember and each
// instance's Target. It returns the failure message of a domain that
// cannot be placed, and reports whether the domain is unknown (placed on
// an offline member). On a single server it does nothing.
func (d *differ) place(pr *incus.Project, info *plan.DomainInfo, load map[string]int) (msg string, unknown bool) {
	if !d.clustered() {
		return "", false
	}
	recorded := d.recordedMember(pr.Name)
	target := pr.Target
	for _, k := range sortedKeys(d.instances) {
		if x := d.instances[k]; k.project == pr.Name && d.memberOffline(x.Location) && !d.memberOffline(recorded) {
			recorded = x.Location // an instance the listing cannot show
		}
	}
	member, why := "", ""
	switch {
	case recorded != "" && d.memberOffline(recorded):
		d.markUnknown(pr.Domain, recorded)
		info.Member = recorded
		return "", true
	case recorded != "" && d.allows(target, recorded):
		member = recorded
	case target != "" && !strings.HasPrefix(target, "@"):
		if d.clusterMember(target) == nil {
			return fmt.Sprintf("cluster member %q not found", target), false
		}
		member, why = target, "its target"
	default:
		group := strings.TrimPrefix(target, "@")
		if group != "" && !slices.ContainsFunc(d.obs.Members, func(m api.ClusterMember) bool { return slices.Contains(m.Groups, group) }) {
			return fmt.Sprintf("no cluster member is in group %q", group), false
		}
		if peer := d.policyPeer(pr.Domain, group); peer != "" {
			member, why = peer, "a network policy links it to a domain placed there"
		} else if member = d.pick(group, load); member == "" {
			if group != "" {
				return fmt.Sprintf("no member of cluster group %q is online", group), false
			}
			return "no cluster member is online", false
		}
		if why == "" {
			why = "the online member with the fewest anklume instances"
			if group != "" {
				why = fmt.Sprintf("the online member of group %q with the fewest anklume instances", group)
			}
		}
	}
	if d.memberOffline(member) {
		d.markUnknown(pr.Domain, member)
		info.Member = member
		return "", true
	}
	info.Member = member
	d.placedAt[pr.Domain] = member
	if recorded != "" && recorded != member {
		d.moving[pr.Domain] = recorded
		d.note(plan.KindDomain, pr.Domain, pr.Name, pr.Domain,
			fmt.Sprintf("moves from cluster member %s to %s (its target is now %s); its instances are re-created there", recorded, member, target), false)
	} else if recorded == "" {
		d.note(plan.KindDomain, pr.Domain, pr.Name, pr.Domain,
			fmt.Sprintf("placed on cluster member %s (%s)", member, why), false)
	}
	if recorded != member {
		load[member] += len(pr.Instances)
	}
	if pr.Config == nil {
		pr.Config = map[string]string{}
	}
	pr.Config[incus.KeyMember] = member
	for _, x := range pr.Instances {
		x.Target = member
	}
	return "", false
}

// linked returns the domains a network policy (the AI auto-policy
// included) links dom to, in policy order.
func (d *differ) linked(dom string) []string {
	var out []string
	if d.opts.Model == nil {
		return nil
	}
	for _, p := range d.opts.Model.Policies {
		if p.TouchesDisabled() || p.From.Domain == nil || p.To.Domain == nil {
			continue
		}
		a, b := p.From.Domain.Name, p.To.Domain.Name
		switch {
		case a == dom && b != dom:
			out = append(out, b)
		case b == dom && a != dom:
			out = append(out, a)
		}
	}
	return out
}

// memberOf is where a domain is: placed in this plan, or recorded on its
// live project.
func (d *differ) memberOf(dom string) string {
	if m := d.placedAt[dom]; m != "" {
		return m
	}
	if pr := d.want.DomainProject(dom); pr != nil {
		return d.recordedMember(pr.Name)
	}
	return ""
}

// policyPeer returns the member of a domain that a network policy links
// dom to and that is placed already, when it is online and in group ("",
// every member): traffic between domains does not cross members, so a
// domain free to go anywhere joins the domains it talks to.
func (d *differ) policyPeer(dom, group string) string {
	for _, other := range d.linked(dom) {
		m := d.memberOf(other)
		if c := d.clusterMember(m); c != nil && c.Status == memberOnline && (group == "" || slices.Contains(c.Groups, group)) {
			return m
		}
	}
	return ""
}

// checkPolicyMembers fails the in-scope domains that a network policy
// links to a domain on another member: anklume does not route between
// cluster members. Validation refuses what it can see (targets that
// differ); this catches what placement decided.
func (d *differ) checkPolicyMembers() {
	if !d.clustered() {
		return
	}
	for _, pr := range d.want.Projects {
		dom := pr.Domain
		if !d.scope[dom] || d.failed[dom] || d.unknown[dom] || d.placedAt[dom] == "" {
			continue
		}
		for _, other := range d.linked(dom) {
			if m := d.memberOf(other); m != "" && m != d.placedAt[dom] {
				d.failed[dom] = true
				d.p.Failed = append(d.p.Failed, plan.FailedDomain{Domain: dom, Message: fmt.Sprintf(
					"a network policy links it to domain %s, on cluster member %s, but it is on %s; anklume does not route between cluster members: give both domains the same member as target",
					other, m, d.placedAt[dom])})
				break
			}
		}
	}
}

// markUnknown records a domain placed on an offline member.
func (d *differ) markUnknown(dom, member string) {
	if d.unknown[dom] {
		return
	}
	d.unknown[dom] = true
	d.p.Unknown = append(d.p.Unknown, plan.UnknownDomain{Domain: dom, Member: member,
		Message: fmt.Sprintf("cluster member %s is offline; nothing is planned for this domain (nothing is deleted or re-created elsewhere)", member)})
}

// unknownOrphans marks the orphan domains (owned projects of no desired
// domain) whose project or instances are on an offline member.
func (d *differ) unknownOrphans() {
	if !d.clustered() {
		return
	}
	for _, p := range d.obs.Projects {
		if lock.IsLockProject(p.Name) || d.want.Project(p.Name) != nil {
			continue
		}
		if o, _ := ownerOf(p.Config, d.want.Infra); o != ownedHere {
			continue
		}
		dom := p.Config[incus.KeyDomain]
		member := p.Config[incus.KeyMember]
		if !d.memberOffline(member) {
			member = ""
			for _, k := range sortedKeys(d.instances) {
				if x := d.instances[k]; k.project == p.Name && d.memberOffline(x.Location) {
					member = x.Location
					break
				}
			}
		}
		if member != "" && d.orphanScope(dom) {
			d.markUnknown(dom, member)
			d.orphanDomain(dom, p.Name, "")
		}
	}
}

// clusterNetwork plans the create of a bridge on a cluster: the members it
// is not yet pending on, then the final create. live is the observed
// network, nil when absent. It returns false when the network is not a
// cluster create to plan (a single server, or a network that exists).
func (d *differ) clusterNetwork(n *incus.Network, live *api.Network) bool {
	if !d.clustered() || (live != nil && live.Status != "Pending") {
		return false
	}
	var missing []string
	for _, m := range d.obs.Members {
		if live == nil || !slices.Contains(live.Locations, m.ServerName) {
			missing = append(missing, m.ServerName)
		}
	}
	slices.Sort(missing)
	c := plan.Change{Action: plan.Create, Kind: plan.KindNetwork, Name: n.Name, Project: incus.DefaultProject,
		Domain: n.Domain, Desired: n, Members: missing}
	if live != nil {
		c.Reason = RepairReason + ": pending on " + strings.Join(live.Locations, ", ")
		if len(missing) > 0 {
			c.Reason += ", not yet on " + strings.Join(missing, ", ")
		}
		c.Live = *live
	}
	d.change(c)
	return true
}

// checkClusterNetwork fails a domain whose bridge must be created while a
// member is offline (the final create sets the bridge up on every member).
func (d *differ) checkClusterNetwork(pr *incus.Project) string {
	if !d.clustered() {
		return ""
	}
	off := d.offlineMembers()
	if len(off) == 0 {
		return ""
	}
	live := d.networks[d.bridgeOf(pr.Domain)]
	if live != nil && live.Status != "Pending" {
		return ""
	}
	return fmt.Sprintf("its bridge %s must be created, which needs every cluster member online; %s %s offline",
		d.bridgeOf(pr.Domain), strings.Join(off, ", "), map[bool]string{true: "is", false: "are"}[len(off) == 1])
}

// memberReplace returns the reason of the replace of an existing instance
// that runs on another member than its domain's, or "". With persistent
// data or storage volumes, which stay on the old member's disks, it fails
// instead and returns "-".
func (d *differ) memberReplace(x *incus.Instance, live *api.Instance) string {
	if !d.clustered() || x.Target == "" || live.Location == "" || live.Location == "none" || live.Location == x.Target {
		return ""
	}
	if m := d.clusterMember(x.Target); m != nil && m.Status == "Evacuated" {
		// Incus moved it away while its member is evacuated, and brings
		// it back on restore: nothing to do.
		d.note(plan.KindInstance, x.Project+"/"+x.Name, x.Project, x.Domain,
			fmt.Sprintf("runs on cluster member %s while %s is evacuated", live.Location, x.Target), false)
		return ""
	}
	if hasData(x.Devices) || hasData(live.Devices) {
		d.fail(fmt.Sprintf("cannot move instance %s/%s from cluster member %s to %s: its persistent data and storage volumes stay on %s",
			x.Project, x.Name, live.Location, x.Target, live.Location),
			"move the data by hand, or set the domain's target back to "+live.Location)
		return "-"
	}
	return "replace: cluster member " + live.Location + " -> " + x.Target
}
