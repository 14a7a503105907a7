// Package plan holds the result of comparing the desired Incus state with
// the live one (SPEC.md §9.3, §9.4): a list of changes, each with its own
// action symbol and a reason meant for the user, notes for what is kept or
// create-only, and the domains that failed their plan-time checks. It is
// pure data plus rendering; computing a plan is internal/reconcile's job,
// and executing one is the apply engine's.
package plan

import (
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/internal/hostdirs"
)

// Action is what a change does (SPEC.md §9.3).
type Action string

// The actions, with the symbol each one prints.
const (
	Create   Action = "create"   // +
	Update   Action = "update"   // ~
	Renumber Action = "renumber" // ~ (renumber)
	Move     Action = "move"     // ~ (move: <old> -> <new>)
	Start    Action = "start"    // ~ (start)
	Stop     Action = "stop"     // ~ (stop)
	Replace  Action = "replace"  // -/+ (replace: <reason>)
	Delete   Action = "delete"   // -
)

// Symbol returns the plan symbol of a: `+`, `~`, `-/+` or `-`.
func (a Action) Symbol() string {
	switch a {
	case Create:
		return "+"
	case Replace:
		return "-/+"
	case Delete:
		return "-"
	}
	return "~"
}

// Destructive reports whether a needs the confirmation of §9.5 step 4.
func (a Action) Destructive() bool {
	return a == Delete || a == Replace || a == Renumber || a == Move
}

// Kind is the kind of an Incus object, in priority order (§9.5).
type Kind string

// The object kinds, as printed.
const (
	KindProject  Kind = "project"
	KindNetwork  Kind = "network"
	KindProfile  Kind = "profile"
	KindVolume   Kind = "storage volume"
	KindInstance Kind = "instance"
	KindDomain   Kind = "domain"
	KindImage    Kind = "image"
	KindDir      Kind = "directory"
)

// Priority is the creation tier of k: projects 0, networks 1, profiles 2,
// volumes 3, instances 4. Deletes run in the reverse order.
func (k Kind) Priority() int {
	switch k {
	case KindProject:
		return 0
	case KindNetwork:
		return 1
	case KindProfile:
		return 2
	case KindVolume:
		return 3
	case KindInstance:
		return 4
	}
	return 5
}

// Diff is one differing field. Path follows §3.2 (`config["limits.memory"]`,
// `devices.eth0["ipv4.address"]`, `description`, `profiles`). Before is
// nil for an added field and After is nil for a removed one.
type Diff struct {
	Path   string  `json:"path"`
	Before *string `json:"before"`
	After  *string `json:"after"`
}

// Change is one planned change of one object.
type Change struct {
	Action Action `json:"action"`
	Kind   Kind   `json:"kind"`
	// Name is the object name: `<project>/<name>` for project-scoped
	// objects (profiles, volumes, instances), the bare name otherwise.
	Name    string `json:"name"`
	Project string `json:"project"`
	// Domain is the unprefixed domain the change is listed under (a moved
	// instance under its new domain; an orphan under its old one).
	Domain string `json:"domain"`
	// Reason is shown in parentheses: "restart", "renumber", "start",
	// "stop", "move: a -> b", "replace: type lxc -> vm", "adopt", or a
	// creation summary such as "lxc, images:debian/13, 10.120.0.1".
	Reason  string `json:"reason"`
	Restart bool   `json:"restart"`
	Diff    []Diff `json:"diff"`
	// Orphan is true for an owned object that is not desired.
	Orphan bool `json:"-"`

	// Execution payload, not rendered. Desired is the desired object for
	// create, update, renumber, move and replace (*incus.Network,
	// *incus.Project, *incus.Profile, *incus.StorageVolume or
	// *incus.Instance); Live is the observed object for everything but a
	// create (api.Network, api.Project, api.Profile, api.StorageVolume or
	// api.Instance); Pool is the storage pool of a volume.
	Desired any    `json:"-"`
	Live    any    `json:"-"`
	Pool    string `json:"-"`
	// OldProject is the project an instance moves from.
	OldProject string `json:"-"`
	// DataMoves are the persistent-data directories that follow an
	// instance that moves to another domain (hostdirs.MoveDir).
	DataMoves []hostdirs.Move `json:"-"`
	// Members, for a network created on an Incus cluster, are the members
	// that still need its per-member (pending) create before the final,
	// global one; empty on a single server.
	Members []string `json:"-"`
}

// Note is a `!` line: something kept, create-only, mapped, or to provide.
type Note struct {
	Kind    Kind   `json:"kind"`
	Name    string `json:"name"`
	Project string `json:"project"`
	Domain  string `json:"domain"`
	Text    string `json:"text"`
	// Orphan is true for a kept orphan: it sorts with the orphans, after
	// the other lines of its domain (§9.4).
	Orphan bool `json:"-"`
}

// Warning is a plan-time warning (W20, W21, configuration metadata),
// printed on stderr as `warning: <Msg>` with an optional `  hint: <Hint>`.
type Warning struct {
	Msg  string
	Hint string
}

// FailedDomain is a domain that failed its plan-time checks (§9.1).
type FailedDomain struct {
	Domain  string `json:"domain"`
	Message string `json:"message"`
}

// UnknownDomain is a domain whose state cannot be known: it is placed on
// an Incus cluster member that is offline. Nothing is planned for it:
// never a delete, never a re-create on another member.
type UnknownDomain struct {
	Domain string `json:"domain"`
	Member string `json:"member"`
	// Message says why, for the plan line and the apply warning.
	Message string `json:"message"`
}

// DomainInfo names a domain's project and network for the plan headers.
type DomainInfo struct {
	Name    string
	Project string
	Network string
	// Member is the cluster member the domain is placed on, "" on a
	// single server.
	Member string
	// Orphan is true for a domain removed from the PSOT whose owned
	// objects are still on the server.
	Orphan bool
}

// Plan is a complete plan.
type Plan struct {
	// Domains lists the domains in output order: declaration order, then
	// orphan domains by name (§9.4).
	Domains []DomainInfo
	Changes []Change
	Notes   []Note
	Failed  []FailedDomain
	// Unknown lists the domains placed on an offline cluster member.
	Unknown []UnknownDomain
	// Warnings are the plan-time warnings, in the order found.
	Warnings []Warning
	// Desired is the desired state the plan was computed from.
	Desired *incus.State
}

// Summary counts the changes as the summary line and --json do (§9.4).
type Summary struct {
	Create   int `json:"create"`
	Update   int `json:"update"`
	Delete   int `json:"delete"`
	Replace  int `json:"replace"`
	Renumber int `json:"renumber"`
	Move     int `json:"move"`
}

// Summary counts p's changes: a replace counts once in create and once in
// delete; renumber, move, start and stop count as updates.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			s.Create++
		case Delete:
			s.Delete++
		case Replace:
			s.Create++
			s.Delete++
			s.Replace++
		case Renumber:
			s.Update++
			s.Renumber++
		case Move:
			s.Update++
			s.Move++
		default:
			s.Update++
		}
	}
	return s
}

// Empty reports whether p has no change (notes do not count).
func (p *Plan) Empty() bool { return len(p.Changes) == 0 }

// Destructive reports whether p deletes, replaces, renumbers or moves
// anything (§9.5 step 4).
func (p *Plan) Destructive() bool {
	for _, c := range p.Changes {
		if c.Action.Destructive() {
			return true
		}
	}
	return false
}
