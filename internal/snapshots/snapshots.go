// Package snapshots implements the snapshot operations of `anklume
// snapshot` (SPEC.md §12.4) over incusx.Server: create with an explicit
// expiry, restore, list, delete and the rollback of pre-apply snapshots.
// It also holds what the other lifecycle packages share: resolving a
// MACHINE or DOMAIN argument against the resolved model, and stopping and
// starting an instance around a change.
//
// Every snapshot this package creates carries expires_at in its request,
// the zero time meaning "never", because Incus gives a snapshot created
// without one the instance's snapshots.expiry.
package snapshots

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/semantic"
	applyx "github.com/anklume/anklume/internal/apply"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/suggest"
)

// NamePrefix starts the default name of `snapshot create`.
const NamePrefix = "anklume-snap-"

// Never is the --expiry value (and the default) for a snapshot that never
// expires.
const Never = "never"

// StopTimeout is how long a clean stop may take before a forced one.
const StopTimeout = 30 * time.Second

// Target is one machine's instance.
type Target struct {
	// Machine is the unprefixed machine name.
	Machine string
	// Domain is the unprefixed domain name.
	Domain string
	// Project and Instance name the Incus instance.
	Project  string
	Instance string
}

// String returns "<project>/<instance>", as plans name instances.
func (t Target) String() string { return t.Project + "/" + t.Instance }

// TargetOf returns the target of a machine.
func TargetOf(x *model.Machine) Target {
	return Target{Machine: x.Name, Domain: x.Domain.Name, Project: x.Domain.Project, Instance: x.Instance}
}

// Resolve turns MACHINE or DOMAIN arguments into targets, in argument
// order, without duplicates. No argument means every machine of every
// enabled domain (when limit is empty) or of the domains in limit. A
// machine of a disabled domain and an unknown name are errors.
func Resolve(m *model.Infra, names, limit []string) ([]Target, error) {
	var out []Target
	add := func(x *model.Machine) {
		t := TargetOf(x)
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	for _, l := range limit {
		if d := m.Domain(l); d == nil || !d.Enabled {
			return nil, fmt.Errorf("--limit: unknown domain %q%s", l, suggest.Hint(l, m.DomainNames()))
		}
	}
	if len(names) == 0 {
		for _, d := range m.EnabledDomains() {
			if len(limit) == 0 || slices.Contains(limit, d.Name) {
				for _, x := range d.Machines {
					add(x)
				}
			}
		}
		return out, nil
	}
	for _, n := range names {
		if x := m.Machine(n); x != nil {
			if !x.Domain.Enabled {
				return nil, fmt.Errorf("machine %q is in disabled domain %q", n, x.Domain.Name)
			}
			add(x)
			continue
		}
		if d := m.Domain(n); d != nil {
			if !d.Enabled {
				return nil, fmt.Errorf("domain %q is disabled", n)
			}
			for _, x := range d.Machines {
				add(x)
			}
			continue
		}
		return nil, fmt.Errorf("unknown machine or domain %q%s", n, suggest.Hint(n, append(m.MachineNames(), m.DomainNames()...)))
	}
	return out, nil
}

// Machine resolves one MACHINE argument.
func Machine(m *model.Infra, name string) (Target, error) {
	x := m.Machine(name)
	if x == nil {
		return Target{}, fmt.Errorf("unknown machine %q%s", name, suggest.Hint(name, m.MachineNames()))
	}
	if !x.Domain.Enabled {
		return Target{}, fmt.Errorf("machine %q is in disabled domain %q", name, x.Domain.Name)
	}
	return TargetOf(x), nil
}

// DefaultName is the default snapshot name for t:
// anklume-snap-YYYYMMDD-HHMMSS (UTC).
func DefaultName(t time.Time) string {
	return NamePrefix + t.UTC().Format("20060102-150405")
}

// ParseExpiry checks an --expiry value: "never", or an expiry in the Incus
// grammar of SPEC.md §2.8 (a v1 single term in h or m is read as hours or
// minutes, as in the PSOT). It returns the normalised value.
func ParseExpiry(s string) (string, error) {
	if s == "" || s == Never {
		return Never, nil
	}
	norm, ok := semantic.NormalizeExpiry(s)
	if !ok {
		return "", fmt.Errorf("invalid expiry %q: use never, or terms such as 30d, 12H or 1y 6m (units M H d w m y)", s)
	}
	return norm, nil
}

// ExpiresAt returns the expiry time of a snapshot taken at now with a
// normalised expiry; the zero time (never) for "never".
func ExpiresAt(now time.Time, expiry string) (time.Time, error) {
	t := now.UTC()
	if expiry == "" || expiry == Never {
		return time.Time{}, nil
	}
	for _, field := range strings.Fields(expiry) {
		var n int
		var unit byte
		if _, err := fmt.Sscanf(field, "%d%c", &n, &unit); err != nil {
			return time.Time{}, fmt.Errorf("invalid expiry %q", expiry)
		}
		switch unit {
		case 'M':
			t = t.Add(time.Duration(n) * time.Minute)
		case 'H':
			t = t.Add(time.Duration(n) * time.Hour)
		case 'd':
			t = t.AddDate(0, 0, n)
		case 'w':
			t = t.AddDate(0, 0, 7*n)
		case 'm':
			t = t.AddDate(0, n, 0)
		case 'y':
			t = t.AddDate(n, 0, 0)
		default:
			return time.Time{}, fmt.Errorf("invalid expiry %q", expiry)
		}
	}
	return t, nil
}

// Take creates one snapshot with an explicit expiry (the zero time means
// never).
func Take(ctx context.Context, srv incusx.Server, project, instance, name string, expires time.Time) error {
	e := expires
	return srv.CreateSnapshot(ctx, project, instance, api.InstanceSnapshotsPost{Name: name, ExpiresAt: &e})
}

// Progress hears the work on each instance as it happens, for a progress
// display: Step when a phase begins ("snapshotting", "stopping",
// "restoring", "starting"; the first Step of an instance starts its
// work), Detail with what the Incus daemon reports about the running
// operation, and Done when the instance is finished, with the snapshot
// name and the failure if any. A nil field is not called.
type Progress struct {
	Step   func(t Target, step string)
	Detail func(t Target, text string)
	Done   func(t Target, snapshot string, err error)
}

func (p Progress) step(t Target, step string) {
	if p.Step != nil {
		p.Step(t, step)
	}
}

func (p Progress) done(t Target, snapshot string, err error) {
	if p.Done != nil {
		p.Done(t, snapshot, err)
	}
}

// on returns ctx whose Incus operations report their progress on t.
func (p Progress) on(ctx context.Context, t Target) context.Context {
	if p.Detail == nil {
		return ctx
	}
	return incusx.WithProgress(ctx, func(s string) { p.Detail(t, s) })
}

// Create takes snapshot name of every target with the given expiry. An
// instance that already has the name, and a missing instance, are skipped
// with a warning on warn. It returns the targets snapshotted; every
// failure is joined into err and the others carry on. pr hears each
// instance as it is done.
func Create(ctx context.Context, srv incusx.Server, targets []Target, name string, expires time.Time, warn io.Writer, pr Progress) ([]Target, error) {
	var done []Target
	var errs []error
	for _, t := range targets {
		snaps, err := srv.Snapshots(ctx, t.Project, t.Instance)
		if incusx.IsNotFound(err) {
			fmt.Fprintf(warn, "warning: instance %s does not exist; skipped\n", t)
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if has(snaps, name) {
			fmt.Fprintf(warn, "warning: instance %s already has snapshot %q; skipped\n", t, name)
			continue
		}
		pr.step(t, "snapshotting")
		err = Take(pr.on(ctx, t), srv, t.Project, t.Instance, name, expires)
		pr.done(t, name, err)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, t)
	}
	return done, errors.Join(errs...)
}

func has(snaps []api.InstanceSnapshot, name string) bool {
	return slices.ContainsFunc(snaps, func(s api.InstanceSnapshot) bool { return s.Name == name })
}

// Stop stops an instance cleanly within StopTimeout, then by force, and
// reports whether it was running. A stopped instance is left alone.
func Stop(ctx context.Context, srv incusx.Server, project, name string) (bool, error) {
	inst, _, err := srv.Instance(ctx, project, name)
	if err != nil {
		return false, err
	}
	if inst.StatusCode != api.Running && inst.Status != "Running" {
		return false, nil
	}
	err = srv.UpdateInstanceState(ctx, project, name, api.InstanceStatePut{Action: incusx.ActionStop, Timeout: int(StopTimeout / time.Second)})
	if err == nil || alreadyStopped(err) {
		return true, nil
	}
	err = srv.UpdateInstanceState(ctx, project, name, api.InstanceStatePut{Action: incusx.ActionStop, Force: true})
	if err == nil || alreadyStopped(err) {
		return true, nil
	}
	return true, err
}

// Start starts an instance.
func Start(ctx context.Context, srv incusx.Server, project, name string) error {
	return srv.UpdateInstanceState(ctx, project, name, api.InstanceStatePut{Action: incusx.ActionStart})
}

func alreadyStopped(err error) bool {
	return err != nil && strings.Contains(err.Error(), "already stopped")
}

// MissingError is a restore of a snapshot the instance does not have.
type MissingError struct {
	Target    Target
	Name      string
	Available []string
}

func (e *MissingError) Error() string {
	avail := "none"
	if len(e.Available) > 0 {
		avail = strings.Join(e.Available, ", ")
	}
	return fmt.Sprintf("instance %s has no snapshot %q%s; available: %s", e.Target, e.Name, suggest.Hint(e.Name, e.Available), avail)
}

// Restore stops the instance, restores snapshot name and starts it again
// if it was running. A missing snapshot is a *MissingError listing the
// available names.
func Restore(ctx context.Context, srv incusx.Server, t Target, name string, pr Progress) error {
	snaps, err := srv.Snapshots(ctx, t.Project, t.Instance)
	if err != nil {
		return err
	}
	if !has(snaps, name) {
		e := &MissingError{Target: t, Name: name}
		for _, s := range snaps {
			e.Available = append(e.Available, s.Name)
		}
		return e
	}
	err = restore(ctx, srv, t, name, pr)
	pr.done(t, name, err)
	return err
}

func restore(ctx context.Context, srv incusx.Server, t Target, name string, pr Progress) error {
	pr.step(t, "stopping")
	running, err := Stop(ctx, srv, t.Project, t.Instance)
	if err != nil {
		return err
	}
	pr.step(t, "restoring")
	if err := srv.RestoreSnapshot(pr.on(ctx, t), t.Project, t.Instance, name); err != nil {
		return err
	}
	if running {
		pr.step(t, "starting")
		return Start(ctx, srv, t.Project, t.Instance)
	}
	return nil
}

// Entry is one snapshot in a listing.
type Entry struct {
	Target
	Name    string
	Created time.Time
	// Expires is the zero time for a snapshot that never expires.
	Expires time.Time
}

// List lists the snapshots of the targets, in target order and then oldest
// first. A missing instance is skipped with a warning.
func List(ctx context.Context, srv incusx.Server, targets []Target, warn io.Writer) ([]Entry, error) {
	var out []Entry
	for _, t := range targets {
		snaps, err := srv.Snapshots(ctx, t.Project, t.Instance)
		if incusx.IsNotFound(err) {
			fmt.Fprintf(warn, "warning: instance %s does not exist\n", t)
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, s := range snaps {
			out = append(out, Entry{Target: t, Name: s.Name, Created: s.CreatedAt.UTC(), Expires: s.ExpiresAt.UTC()})
		}
	}
	return out, nil
}

// Never reports whether the entry never expires.
func (e Entry) Never() bool { return e.Expires.IsZero() || e.Expires.Year() <= 1 }

// Delete deletes snapshot name of the target; an absent snapshot is not an
// error and gives deleted false.
func Delete(ctx context.Context, srv incusx.Server, t Target, name string) (bool, error) {
	snaps, err := srv.Snapshots(ctx, t.Project, t.Instance)
	if err != nil {
		return false, err
	}
	if !has(snaps, name) {
		return false, nil
	}
	return true, srv.DeleteSnapshot(ctx, t.Project, t.Instance, name)
}

// NothingError is a rollback that restored nothing.
type NothingError struct{ Name string }

func (e *NothingError) Error() string { return fmt.Sprintf("no instance has snapshot %s", e.Name) }

// Latest is the rollback timestamp that selects the newest pre-apply set.
const Latest = "latest"

// Rollback restores the pre-apply snapshot anklume-pre-<ts> on every
// target that has it; ts "" or Latest picks the newest anklume-pre-* name
// among the targets. Missing instances and snapshots give warnings. When
// nothing was restored the error is a *NothingError. It returns the
// snapshot name and the targets restored. pr hears each instance as it is
// restored.
func Rollback(ctx context.Context, srv incusx.Server, targets []Target, ts string, warn io.Writer, pr Progress) (string, []Target, error) {
	all := map[Target][]api.InstanceSnapshot{}
	var present []Target
	for _, t := range targets {
		snaps, err := srv.Snapshots(ctx, t.Project, t.Instance)
		if incusx.IsNotFound(err) {
			fmt.Fprintf(warn, "warning: instance %s does not exist\n", t)
			continue
		}
		if err != nil {
			return "", nil, err
		}
		all[t] = snaps
		present = append(present, t)
	}
	name := applyx.SnapshotPrefix + ts
	if ts == "" || ts == Latest {
		name = applyx.SnapshotPrefix + Latest
		var names []string
		for _, snaps := range all {
			for _, s := range snaps {
				if strings.HasPrefix(s.Name, applyx.SnapshotPrefix) {
					names = append(names, s.Name)
				}
			}
		}
		if len(names) > 0 {
			sort.Strings(names) // the timestamps sort by time
			name = names[len(names)-1]
		}
	}
	var done []Target
	var errs []error
	for _, t := range present {
		if !has(all[t], name) {
			fmt.Fprintf(warn, "warning: instance %s has no snapshot %s\n", t, name)
			continue
		}
		err := restore(ctx, srv, t, name, pr)
		pr.done(t, name, err)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, t)
	}
	if len(done) == 0 && len(errs) == 0 {
		return name, nil, &NothingError{Name: name}
	}
	return name, done, errors.Join(errs...)
}
