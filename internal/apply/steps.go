package apply

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/plan"
)

// liveInstance returns the observed instance of a change, or nil.
func liveInstance(v any) *api.Instance {
	switch x := v.(type) {
	case api.Instance:
		return &x
	case *api.Instance:
		return x
	}
	return nil
}

// bareName is the object name without its project.
func bareName(c *plan.Change) string {
	if c.Project != "" {
		if rest, ok := strings.CutPrefix(c.Name, c.Project+"/"); ok {
			return rest
		}
	}
	if _, rest, ok := strings.Cut(c.Name, "/"); ok {
		return rest
	}
	return c.Name
}

// liveProject is the project an existing instance is in now: its old
// project for a move.
func liveProject(c *plan.Change) string {
	if c.OldProject != "" {
		return c.OldProject
	}
	if li := liveInstance(c.Live); li != nil && li.Project != "" {
		return li.Project
	}
	return c.Project
}

func (e *executor) srv() incusx.Server { return e.opts.Server }

// retry412 runs f once more when it fails with a stale ETag.
func retry412(f func() error) error {
	err := f()
	if incusx.IsPreconditionFailed(err) {
		err = f()
	}
	return err
}

// batches builds the ordered batches of steps: release; projects;
// networks renumbered or updated, then new ones; profiles; volumes;
// instances; claim; deletes in reverse priority; state (§9.5 step 9).
func (e *executor) batches() [][]*step {
	const (
		release = iota
		projects
		netUpdate
		netCreate
		profiles
		volumes
		instances
		claim
		delVolumes
		delProfiles
		delProjects
		delNetworks
		states
		nBatches
	)
	out := make([][]*step, nBatches)
	add := func(b int, ch *change, op string, f func(context.Context) error) *step {
		ch.steps++
		s := &step{ch: ch, op: op, run: f}
		out[b] = append(out[b], s)
		return s
	}
	for _, ch := range e.chs {
		c := ch.c
		switch c.Kind {
		case plan.KindProject:
			switch c.Action {
			case plan.Create:
				d := c.Desired.(*incus.Project)
				add(projects, ch, "create", func(ctx context.Context) error { return e.srv().CreateProject(ctx, d.ProjectsPost) })
			case plan.Delete:
				add(delProjects, ch, "delete", func(ctx context.Context) error { return e.srv().DeleteProject(ctx, c.Name) })
			default:
				d := c.Desired.(*incus.Project)
				widened := false
				add(projects, ch, "update", func(ctx context.Context) error {
					var err error
					widened, err = e.updateProject(ctx, d, adopting(c), true)
					return err
				})
				add(claim, ch, "restrict", func(ctx context.Context) error {
					if !widened {
						return nil
					}
					_, err := e.updateProject(ctx, d, adopting(c), false)
					return err
				})
			}
		case plan.KindNetwork:
			switch c.Action {
			case plan.Create:
				d := c.Desired.(*incus.Network)
				add(netCreate, ch, "create", func(ctx context.Context) error { return e.createNetwork(ctx, d, c.Members) })
			case plan.Delete:
				add(delNetworks, ch, "delete", func(ctx context.Context) error { return e.srv().DeleteNetwork(ctx, c.Name) })
			case plan.Replace:
				d := c.Desired.(*incus.Network)
				add(netCreate, ch, "repair", func(ctx context.Context) error { return e.recreateNetwork(ctx, d, c.Members) })
			default:
				d := c.Desired.(*incus.Network)
				add(netUpdate, ch, "update", func(ctx context.Context) error { return e.updateNetwork(ctx, d, adopting(c)) })
			}
		case plan.KindProfile:
			switch c.Action {
			case plan.Create:
				d := c.Desired.(*incus.Profile)
				add(profiles, ch, "create", func(ctx context.Context) error { return e.createProfile(ctx, d) })
			case plan.Delete:
				name := bareName(c)
				add(delProfiles, ch, "delete", func(ctx context.Context) error { return e.srv().DeleteProfile(ctx, c.Project, name) })
			default:
				d := c.Desired.(*incus.Profile)
				add(profiles, ch, "update", func(ctx context.Context) error { return e.updateProfile(ctx, d, adopting(c)) })
			}
		case plan.KindVolume:
			switch c.Action {
			case plan.Create:
				d := c.Desired.(*incus.StorageVolume)
				add(volumes, ch, "create", func(ctx context.Context) error {
					return e.srv().CreateStorageVolume(ctx, d.Project, d.Pool, d.StorageVolumesPost)
				})
			case plan.Delete:
				name := bareName(c)
				add(delVolumes, ch, "delete", func(ctx context.Context) error {
					return e.srv().DeleteStorageVolume(ctx, c.Project, c.Pool, name)
				})
			default:
				d := c.Desired.(*incus.StorageVolume)
				add(volumes, ch, "update", func(ctx context.Context) error { return e.updateVolume(ctx, d, adopting(c)) })
			}
		case plan.KindInstance:
			e.instanceSteps(ch, add, release, instances, claim, states)
		}
	}
	return out
}

func adopting(c *plan.Change) bool { return c.Reason == "adopt" }

// instanceSteps adds the steps of an instance change.
//
// An instance created in this run that should run is started by the
// worker that created it, right after its creation (and gets its nesting
// context files there too), not in the state phase after the deletes:
// creation then runs at the Incus API's pace, with no barrier between the
// slowest creation and the first start. This is safe because a new
// instance refers only to objects that stay (the deletes of phase 4 never
// concern it), it was created with its final address (the release phase
// freed any address it takes over), and the claim phase only sets the
// addresses of instances that already existed.
func (e *executor) instanceSteps(ch *change, add func(int, *change, string, func(context.Context) error) *step, release, create, claim, states int) {
	c := ch.c
	name := bareName(c)
	from := liveProject(c)
	d, _ := c.Desired.(*incus.Instance)
	wasRunning := ch.running
	running := wasRunning
	var created *step // the creation step of this run, when there is one
	switch c.Action {
	case plan.Delete:
		leftover := strings.HasPrefix(c.Reason, "repair: ")
		add(release, ch, "delete", func(ctx context.Context) error {
			if wasRunning {
				if err := e.stop(ctx, from, name); err != nil {
					return err
				}
			}
			if leftover {
				// A half-made copy, not a machine: its protection came
				// with the backup it was imported from.
				if err := e.unprotect(ctx, from, name); err != nil {
					return err
				}
			}
			return e.srv().DeleteInstance(ctx, from, name)
		})
		return
	case plan.Replace:
		add(release, ch, "delete", func(ctx context.Context) error {
			if wasRunning {
				if err := e.stop(ctx, from, name); err != nil {
					return err
				}
			}
			return e.srv().DeleteInstance(ctx, from, name)
		})
		created = add(create, ch, "create", func(ctx context.Context) error { return e.createInstance(ctx, d) })
		running = false
		ch.created = true
	case plan.Create:
		created = add(create, ch, "create", func(ctx context.Context) error { return e.createInstance(ctx, d) })
		running = false
		ch.created = true
	case plan.Move:
		add(release, ch, "release", func(ctx context.Context) error {
			if wasRunning {
				if err := e.stop(ctx, from, name); err != nil {
					return err
				}
			}
			return e.updateInstance(ctx, from, name, func(live *api.Instance) api.InstancePut { return releaseForMove(live) })
		})
		add(create, ch, "move", func(ctx context.Context) error {
			// The persistent data follows the machine: the instance is
			// stopped and no longer mounts it (release), and the data
			// moves before the instance does, so a run cut anywhere
			// finds it whole at one path: the next plan plans the move
			// again from the old domain and MoveDir skips a directory
			// already moved.
			for _, m := range c.DataMoves {
				if err := e.opts.MoveDir(m); err != nil {
					return fmt.Errorf("persistent data: %w", err)
				}
			}
			if err := e.srv().MoveInstance(ctx, from, name, d.Project); err != nil {
				return err
			}
			return e.updateInstance(ctx, d.Project, name, func(live *api.Instance) api.InstancePut {
				return mergeInstance(live, d, adopting(c), true)
			})
		})
		add(claim, ch, "claim address", func(ctx context.Context) error {
			return e.updateInstance(ctx, d.Project, name, func(live *api.Instance) api.InstancePut {
				return mergeInstance(live, d, adopting(c), false)
			})
		})
		running = false
	case plan.Renumber:
		add(release, ch, "release address", func(ctx context.Context) error {
			return e.updateInstance(ctx, from, name, func(live *api.Instance) api.InstancePut {
				put := live.Writable()
				put.Devices = cloneDevices(live.Devices)
				releaseAddress(&put)
				return put
			})
		})
		add(create, ch, "update", func(ctx context.Context) error {
			return e.updateInstance(ctx, d.Project, name, func(live *api.Instance) api.InstancePut {
				return mergeInstance(live, d, adopting(c), true)
			})
		})
		add(claim, ch, "claim address", func(ctx context.Context) error {
			return e.updateInstance(ctx, d.Project, name, func(live *api.Instance) api.InstancePut {
				return mergeInstance(live, d, adopting(c), false)
			})
		})
	case plan.Update:
		add(create, ch, "update", func(ctx context.Context) error {
			return e.updateInstance(ctx, d.Project, name, func(live *api.Instance) api.InstancePut {
				return mergeInstance(live, d, adopting(c), false)
			})
		})
	case plan.Start, plan.Stop:
		// only the state step below
	}
	if d == nil {
		return
	}
	want := d.State != "stopped"
	project := d.Project
	needRestart := c.Restart || c.Action == plan.Renumber
	if li := liveInstance(c.Live); li != nil && li.Config["volatile.apply_template"] == "create" && want {
		// Never started since an earlier run created it (Incus removes
		// the key at the first start): its first start is this run's,
		// and so are its nesting context files.
		ch.created = true
	}
	start := func(ctx context.Context) error {
		t := ContextTarget{Project: project, Name: name, VM: d.Type == "virtual-machine"}
		var (
			ctxErr    error
			templated bool
		)
		if ch.created {
			templated, ctxErr = e.contextBeforeStart(ctx, t)
		}
		err := e.srv().UpdateInstanceState(ctx, project, name, api.InstanceStatePut{Action: incusx.ActionStart})
		if err != nil && templated {
			ctxErr, err = e.startUntemplated(ctx, t, err)
		}
		if err != nil {
			return err
		}
		if ctxErr != nil {
			e.contextAfterStart(ctx, t, ctxErr)
		}
		return nil
	}
	switch {
	case want && !running && created != nil:
		createOnly := created.run
		created.run = func(ctx context.Context) error {
			if err := createOnly(ctx); err != nil {
				return err
			}
			if err := start(ctx); err != nil {
				return &opError{op: "start", err: err}
			}
			return nil
		}
	case want && !running:
		add(states, ch, "start", start)
	case !want && running:
		add(states, ch, "stop", func(ctx context.Context) error { return e.stop(ctx, project, name) })
	case want && running && needRestart && e.opts.NoRestart:
		add(states, ch, "restart", func(ctx context.Context) error {
			e.mu.Lock()
			fmt.Fprintf(e.opts.ErrOut, "warning: instance %s/%s: restart required to apply the change\n", project, name)
			e.mu.Unlock()
			return nil
		})
	case want && running && needRestart:
		add(states, ch, "restart", func(ctx context.Context) error { return e.restart(ctx, project, name) })
	}
	ch.running = want
}

// opError names the operation of a step that failed when the step does
// more than its own (a creation followed by the start).
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// unprotect removes security.protection.delete from an instance that has
// it in its own config.
func (e *executor) unprotect(ctx context.Context, project, name string) error {
	return retry412(func() error {
		live, etag, err := e.srv().Instance(ctx, project, name)
		if err != nil {
			return err
		}
		if _, ok := live.Config["security.protection.delete"]; !ok {
			return nil
		}
		put := live.Writable()
		put.Config = cloneConfig(live.Config)
		delete(put.Config, "security.protection.delete")
		return e.srv().UpdateInstance(ctx, project, name, put, etag)
	})
}

// stop stops an instance cleanly within StopTimeout, then by force.
func (e *executor) stop(ctx context.Context, project, name string) error {
	timeout := int(e.opts.StopTimeout / time.Second)
	err := e.srv().UpdateInstanceState(ctx, project, name, api.InstanceStatePut{Action: incusx.ActionStop, Timeout: timeout})
	if err == nil || alreadyStopped(err) {
		return nil
	}
	err = e.srv().UpdateInstanceState(ctx, project, name, api.InstanceStatePut{Action: incusx.ActionStop, Force: true})
	if alreadyStopped(err) {
		return nil
	}
	return err
}

func alreadyStopped(err error) bool {
	return err != nil && strings.Contains(err.Error(), "already stopped")
}

// restart restarts a running instance; when a clean restart fails, it is
// stopped by force and started.
func (e *executor) restart(ctx context.Context, project, name string) error {
	timeout := int(e.opts.StopTimeout / time.Second)
	err := e.srv().UpdateInstanceState(ctx, project, name, api.InstanceStatePut{Action: incusx.ActionRestart, Timeout: timeout})
	if err == nil {
		return nil
	}
	if err := e.stop(ctx, project, name); err != nil {
		return err
	}
	return e.srv().UpdateInstanceState(ctx, project, name, api.InstanceStatePut{Action: incusx.ActionStart})
}

// createInstance creates an instance, stopped, with its full config and
// devices, ownership keys included; the state phase starts it.
func (e *executor) createInstance(ctx context.Context, d *incus.Instance) error {
	req := d.InstancesPost
	if d.Image != "" {
		src, err := e.srv().ResolveImage(d.Image)
		if err != nil {
			return err
		}
		req.Source = src
	}
	req.Start = false
	// Target is the member the plan placed the domain on, "" on a single
	// server: no target is ever sent there.
	return e.srv().CreateInstanceOn(ctx, d.Project, d.Target, req)
}

// createNetwork creates a bridge: on a cluster, first its pending create
// on each member that does not have it yet (name and type only: an
// anklume bridge has no member-specific config), then the final create
// with the global config. A run that stops in between leaves the network
// pending on some members, which the next plan finishes.
func (e *executor) createNetwork(ctx context.Context, d *incus.Network, members []string) error {
	for _, m := range members {
		if err := e.srv().CreateNetworkOn(ctx, m, api.NetworksPost{Name: d.Name, Type: d.Type}); err != nil {
			return err
		}
	}
	return e.srv().CreateNetwork(ctx, d.NetworksPost)
}

// updateInstance is a GET and a PUT of the instance with the ETag.
func (e *executor) updateInstance(ctx context.Context, project, name string, edit func(*api.Instance) api.InstancePut) error {
	return retry412(func() error {
		live, etag, err := e.srv().Instance(ctx, project, name)
		if err != nil {
			return err
		}
		return e.srv().UpdateInstance(ctx, project, name, edit(live), etag)
	})
}

// updateProject is a GET and a PUT of the whole project with the ETag,
// never a PATCH (§5.3); nothing is sent when the project already has the
// config. With widen, the restrictions are only loosened (widenProject):
// Incus refuses a restriction that an instance or profile of the project
// breaks, and the instances and profiles get their new devices only
// after the project, so the project is updated twice: widened before
// them, then restricted exactly once they are done (the claim phase).
// It reports whether widening left the project looser than d.
func (e *executor) updateProject(ctx context.Context, d *incus.Project, adopt, widen bool) (bool, error) {
	widened := false
	err := retry412(func() error {
		live, etag, err := e.srv().Project(ctx, d.Name)
		if err != nil {
			return err
		}
		put := mergeProject(live, d, adopt)
		if widen {
			exact := maps.Clone(put.Config)
			widenProject(&put, live)
			widened = !maps.Equal(exact, put.Config)
		}
		if put.Description == live.Description && maps.Equal(put.Config, live.Config) {
			return nil
		}
		return e.srv().UpdateProject(ctx, d.Name, put, etag)
	})
	return widened, err
}

// listRestrictions are the restricted.* keys whose value is a
// comma-separated list of what is allowed.
var listRestrictions = map[string]bool{
	"restricted.devices.disk.paths": true, "restricted.networks.access": true,
	"restricted.networks.uplinks": true, "restricted.networks.subnets": true,
	"restricted.networks.zones": true, "restricted.cluster.groups": true,
}

// widenProject makes put no stricter than live: a restricted.* key that
// put drops keeps its live value (an absent key is the strict default),
// and a list of what is allowed is the union of both. The key
// "restricted" itself, and the other keys, are put's.
func widenProject(put *api.ProjectPut, live *api.Project) {
	for k, lv := range live.Config {
		if !strings.HasPrefix(k, "restricted.") {
			continue
		}
		pv, ok := put.Config[k]
		switch {
		case !ok:
			put.Config[k] = lv
		case listRestrictions[k] && pv != lv:
			seen := map[string]bool{}
			var all []string
			for _, v := range append(strings.Split(pv, ","), strings.Split(lv, ",")...) {
				if v != "" && !seen[v] {
					seen[v] = true
					all = append(all, v)
				}
			}
			sort.Strings(all)
			put.Config[k] = strings.Join(all, ",")
		}
	}
}

func (e *executor) updateNetwork(ctx context.Context, d *incus.Network, adopt bool) error {
	return retry412(func() error {
		live, etag, err := e.srv().Network(ctx, d.Name)
		if err != nil {
			return err
		}
		return e.srv().UpdateNetwork(ctx, d.Name, mergeNetwork(live, d, adopt), etag)
	})
}

// createProfile creates a profile. The default profile already exists in
// a new project with features.profiles, so it is updated instead.
func (e *executor) createProfile(ctx context.Context, d *incus.Profile) error {
	if d.Name == incus.DefaultProfile {
		err := e.updateProfile(ctx, d, false)
		if !incusx.IsNotFound(err) {
			return err
		}
	}
	return e.srv().CreateProfile(ctx, d.Project, d.ProfilesPost)
}

func (e *executor) updateProfile(ctx context.Context, d *incus.Profile, adopt bool) error {
	return retry412(func() error {
		live, etag, err := e.srv().Profile(ctx, d.Project, d.Name)
		if err != nil {
			return err
		}
		return e.srv().UpdateProfile(ctx, d.Project, d.Name, mergeProfile(live, d, adopt), etag)
	})
}

func (e *executor) updateVolume(ctx context.Context, d *incus.StorageVolume, adopt bool) error {
	return retry412(func() error {
		live, etag, err := e.srv().StorageVolume(ctx, d.Project, d.Pool, d.Name)
		if err != nil {
			return err
		}
		return e.srv().UpdateStorageVolume(ctx, d.Project, d.Pool, d.Name, mergeVolume(live, d, adopt), etag)
	})
}

// recreateNetwork deletes and creates again a network that an earlier run
// left half-made (status Pending or Errored): Incus never finished it, so
// it has no dnsmasq files and no instance can use it, and it cannot be
// fixed in place. Incus refuses to delete a network that a profile uses,
// so the nic devices of the profiles that use it are taken off first and
// put back once it exists again; an instance that uses it stops the
// repair (none can have been created on it). Each step is safe to stop:
// a later plan sees the missing network, or the profile without its nic,
// and completes them.
func (e *executor) recreateNetwork(ctx context.Context, d *incus.Network, members []string) error {
	live, _, err := e.srv().Network(ctx, d.Name)
	if err != nil && !incusx.IsNotFound(err) {
		return err
	}
	type detached struct {
		project, name string
		devices       map[string]map[string]string
	}
	var profiles []detached
	if live != nil {
		for _, u := range live.UsedBy {
			kind, project, name, ok := usedByRef(u)
			if !ok || kind != "profiles" {
				return fmt.Errorf("network %s is used by %s; delete that first", d.Name, u)
			}
			var devs map[string]map[string]string
			err := retry412(func() error {
				p, etag, err := e.srv().Profile(ctx, project, name)
				if err != nil {
					return err
				}
				put := p.Writable()
				put.Devices, devs = cloneDevices(p.Devices), map[string]map[string]string{}
				for dn, dev := range put.Devices {
					if dev["type"] == "nic" && (dev["network"] == d.Name || (dev["network"] == "" && dev["parent"] == d.Name)) {
						devs[dn] = dev
						delete(put.Devices, dn)
					}
				}
				return e.srv().UpdateProfile(ctx, project, name, put, etag)
			})
			if err != nil {
				return err
			}
			profiles = append(profiles, detached{project, name, devs})
		}
		if err := e.srv().DeleteNetwork(ctx, d.Name); err != nil && !incusx.IsNotFound(err) {
			return err
		}
	}
	if err := e.createNetwork(ctx, d, members); err != nil {
		return err
	}
	for _, p := range profiles {
		err := retry412(func() error {
			live, etag, err := e.srv().Profile(ctx, p.project, p.name)
			if err != nil {
				return err
			}
			put := live.Writable()
			put.Devices = cloneDevices(live.Devices)
			for dn, dev := range p.devices {
				put.Devices[dn] = dev
			}
			return e.srv().UpdateProfile(ctx, p.project, p.name, put, etag)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// usedByRef splits a used_by URL, "/1.0/profiles/default?project=work",
// into its kind, project ("default" when absent) and name.
func usedByRef(u string) (kind, project, name string, ok bool) {
	path, query, _ := strings.Cut(u, "?")
	rest, found := strings.CutPrefix(path, "/1.0/")
	if !found {
		return "", "", "", false
	}
	kind, name, found = strings.Cut(rest, "/")
	if !found || name == "" || strings.Contains(name, "/") {
		return "", "", "", false
	}
	project = incusx.DefaultProject
	for _, kv := range strings.Split(query, "&") {
		if v, ok := strings.CutPrefix(kv, "project="); ok && v != "" {
			project = v
		}
	}
	if n, err := url.PathUnescape(name); err == nil {
		name = n
	}
	if p, err := url.QueryUnescape(project); err == nil {
		project = p
	}
	return kind, project, name, true
}
