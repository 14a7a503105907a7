// Package golden implements `anklume golden` (SPEC.md §12.6): a machine's
// `pristine` snapshot, which never expires, instances derived from it
// (copy-on-write on the storage drivers that support it) and images
// published from it.
package golden

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/snapshots"
)

// Snapshot is the name of the golden snapshot.
const Snapshot = "pristine"

// Create stops the instance, replaces its pristine snapshot (with the zero
// expiry: never) and starts it again when it was running.
func Create(ctx context.Context, srv incusx.Server, t snapshots.Target) error {
	running, err := snapshots.Stop(ctx, srv, t.Project, t.Instance)
	if err != nil {
		return err
	}
	err = replace(ctx, srv, t)
	if running {
		if serr := snapshots.Start(ctx, srv, t.Project, t.Instance); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	return err
}

func replace(ctx context.Context, srv incusx.Server, t snapshots.Target) error {
	if _, err := snapshots.Delete(ctx, srv, t, Snapshot); err != nil {
		return err
	}
	return snapshots.Take(ctx, srv, t.Project, t.Instance, Snapshot, time.Time{})
}

// NoPristineError is a derive or publish of a machine without a pristine
// snapshot.
type NoPristineError struct{ Target snapshots.Target }

func (e *NoPristineError) Error() string {
	return fmt.Sprintf("instance %s has no %s snapshot; run anklume golden create %s first", e.Target, Snapshot, e.Target.Machine)
}

func needPristine(ctx context.Context, srv incusx.Server, t snapshots.Target) error {
	snaps, err := srv.Snapshots(ctx, t.Project, t.Instance)
	if err != nil {
		return err
	}
	for _, s := range snaps {
		if s.Name == Snapshot {
			return nil
		}
	}
	return &NoPristineError{Target: t}
}

// Strip removes from put what ties an instance to the machine it was made
// from: every user.anklume.* key, the instance-level eth0 device (so the
// profile's NIC gives a DHCP address and no duplicate IP) and
// security.protection.delete.
func Strip(put *api.InstancePut) {
	put.Config = maps.Clone(put.Config)
	for k := range put.Config {
		if strings.HasPrefix(k, incus.OwnershipKeyPrefix) || k == "security.protection.delete" {
			delete(put.Config, k)
		}
	}
	put.Devices = maps.Clone(put.Devices)
	delete(put.Devices, "eth0")
}

// Derive copies <instance>/pristine to newInstance in the source's
// project, strips it (Strip) and, when toProject differs, moves it there.
// The copy is left stopped.
func Derive(ctx context.Context, srv incusx.InstanceOps, src snapshots.Target, newInstance, toProject string) error {
	if err := needPristine(ctx, srv, src); err != nil {
		return err
	}
	if _, _, err := srv.Instance(ctx, toProject, newInstance); err == nil {
		return fmt.Errorf("instance %s/%s already exists", toProject, newInstance)
	} else if !incusx.IsNotFound(err) {
		return err
	}
	if err := srv.CopySnapshot(ctx, src.Project, src.Instance, Snapshot, newInstance); err != nil {
		return err
	}
	inst, etag, err := srv.Instance(ctx, src.Project, newInstance)
	if err != nil {
		return err
	}
	put := inst.Writable()
	Strip(&put)
	if err := srv.UpdateInstance(ctx, src.Project, newInstance, put, etag); err != nil {
		return err
	}
	if toProject != src.Project {
		return srv.MoveInstance(ctx, src.Project, newInstance, toProject)
	}
	return nil
}

// Publish publishes <instance>/pristine as an image with alias.
func Publish(ctx context.Context, srv incusx.InstanceOps, t snapshots.Target, alias string) error {
	if err := needPristine(ctx, srv, t); err != nil {
		return err
	}
	return srv.PublishSnapshot(ctx, t.Project, t.Instance, Snapshot, alias)
}

// Entry is one instance with a pristine snapshot.
type Entry struct {
	snapshots.Target
	Created time.Time
}

// List returns the targets that have a pristine snapshot, in target order.
// Missing instances are skipped.
func List(ctx context.Context, srv incusx.Server, targets []snapshots.Target) ([]Entry, error) {
	var out []Entry
	for _, t := range targets {
		snaps, err := srv.Snapshots(ctx, t.Project, t.Instance)
		if incusx.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, s := range snaps {
			if s.Name == Snapshot {
				out = append(out, Entry{Target: t, Created: s.CreatedAt.UTC()})
			}
		}
	}
	return out, nil
}
