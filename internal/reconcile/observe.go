// Package reconcile computes anklume's plan (SPEC.md §9.1–§9.4): Observe
// reads the live Incus state with the fixed list of requests of §9.1, and
// Diff compares it with the desired state of compiler/emit/incus, applying
// the ownership, comparison, orphan and plan-time rules of §5.1, §5.7 and
// §9.2–§9.3. Diff is pure: it takes values and returns a *plan.Plan; on
// an Incus cluster it also places each domain on one member and records
// the choice in the desired state it is given (cluster.go says how).
package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/metacache"
)

// Extensions the reconciler cannot work without (SPEC.md §9.1).
var requiredExtensions = [...]string{"instance_all_projects", "profiles_all_projects", "storage_volumes_all_projects"}

// metadataExtension gates GET /1.0/metadata/configuration.
const metadataExtension = "metadata_configuration"

// ObserveOptions say which of the conditional requests of §9.1 a plan
// needs.
type ObserveOptions struct {
	// Pools are the storage pools the PSOT names (global.storage_pool and
	// every volume pool). Their custom volumes are listed even when the
	// pool does not list one in used_by.
	Pools []string
	// Resources asks for GET /1.0/resources (--remote with a
	// resource_policy, §2.14).
	Resources bool
	// MetadataCache keeps GET /1.0/metadata/configuration on disk by
	// server version and API extensions; the zero value fetches it every
	// time.
	MetadataCache metacache.Cache
	// SkipInstances leaves out GET /1.0/instances?all-projects=true&recursion=1:
	// the caller lists the instances with their state itself (status,
	// GET …&recursion=2, which carries everything recursion=1 does) and
	// fills Observed.Instances from that list. Listing them twice cost a
	// second full instance read on the daemon (0.9 s for 300 instances).
	SkipInstances bool
}

// Observed is the live state a plan compares against.
type Observed struct {
	Server    *api.Server
	Pools     []api.StoragePool
	Projects  []api.Project
	Networks  []api.Network
	Profiles  []api.Profile
	Instances []api.Instance
	Aliases   []api.ImageAliasesEntry
	// Volumes holds the custom volumes of each pool in use, by pool.
	Volumes map[string][]api.StorageVolume
	// Members is nil on a single server; on a cluster it is always
	// listed (placement and offline members, cluster.go).
	Members []api.ClusterMember
	// Metadata is nil when the server lacks metadata_configuration.
	Metadata *api.MetadataConfiguration
	// Resources is nil unless asked for.
	Resources *api.Resources
}

// Observe reads the live state with the requests of SPEC.md §9.1. Their
// number depends only on the pools in use and the options, never on the
// number of domains, projects or instances. The instance list, by far
// the slowest (Incus loads and renders every instance), is sent at once;
// GET /1.0 comes next, and its extensions decide what follows (a missing
// one ends the run, the instance list cancelled); the other reads are
// then sent at once, each on its own connection, and the custom volumes
// of each pool in use as soon as the pools are known, so a plan waits for
// the slowest read rather than their sum. The configuration metadata
// comes from opts.MetadataCache when it holds the entry of this server's
// version and extensions.
//
// The count is fixed; the daemon's time is not. Incus (6.0, and 6.23 still)
// computes used_by for every bridge GET /1.0/networks?recursion=1 returns,
// and for each one lists every instance and loads the project and project
// config of every profile: that list costs bridges × (profiles +
// instances), 65–90 s on a lab of 100 domains × 3 containers on the
// reference machine (a profile of incusd puts 87% of it in the profile
// loop). No public read returns a bridge's config without used_by, and a
// plan reads no used_by. So on the local unix socket of an Incus 6.x
// server the bridges, and likewise the projects (whose used_by lists
// every object of each), are read from the Incus database instead, each
// with one read-only POST /internal/sql (incusx.DatabaseReader says why
// that is safe and how it is checked); anywhere else, or when that
// request fails, with the public list. The instance list is per-project inside
// Incus (0.66–0.9 s for 300 instances over 100 projects).
func Observe(ctx context.Context, srv incusx.Server, opts ObserveOptions) (*Observed, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the instance list when GET /1.0 fails
	// The instance list is the slowest read by far (Incus loads and
	// renders every instance) and depends on nothing GET /1.0 says, so
	// it is sent first, before GET /1.0 is answered.
	var instances []api.Instance
	var instErr error
	instDone := make(chan struct{})
	if opts.SkipInstances {
		close(instDone)
	} else {
		go func() {
			defer close(instDone)
			instances, instErr = srv.Instances(ctx)
		}()
	}
	info, err := srv.ServerInfo(ctx)
	if err != nil {
		return nil, err
	}
	for _, ext := range requiredExtensions {
		if !slices.Contains(info.APIExtensions, ext) {
			return nil, fmt.Errorf("the Incus server lacks the API extension %q", ext)
		}
	}
	obs := &Observed{Server: info, Volumes: map[string][]api.StorageVolume{}}
	var g group
	// Errors are reported in the order of §9.1, whatever order they come in.
	var poolsErr, volsErr error
	var mu sync.Mutex
	g.do(func() error {
		if obs.Pools, poolsErr = srv.StoragePools(ctx); poolsErr != nil {
			return poolsErr
		}
		var vg group
		for _, p := range obs.Pools {
			if !slices.Contains(opts.Pools, p.Name) && !listsCustomVolume(p.UsedBy) {
				continue
			}
			vg.do(func() error {
				vols, err := srv.StorageVolumes(ctx, p.Name)
				if err == nil {
					mu.Lock()
					obs.Volumes[p.Name] = vols
					mu.Unlock()
				}
				return err
			})
		}
		volsErr = vg.wait()
		return nil
	})
	g.do(func() (err error) { obs.Projects, err = projects(ctx, srv, info); return err })
	g.do(func() (err error) { obs.Networks, err = networks(ctx, srv, info); return err })
	g.do(func() (err error) { obs.Profiles, err = srv.Profiles(ctx); return err })
	if !opts.SkipInstances {
		g.do(func() error { <-instDone; obs.Instances = instances; return instErr })
	}
	g.do(func() (err error) { obs.Aliases, err = srv.ImageAliases(ctx); return err })
	if info.Environment.ServerClustered {
		g.do(func() (err error) { obs.Members, err = srv.ClusterMembers(ctx); return err })
	}
	if slices.Contains(info.APIExtensions, metadataExtension) {
		g.do(func() (err error) { obs.Metadata, err = metadata(ctx, srv, info, opts.MetadataCache); return err })
	}
	if opts.Resources {
		g.do(func() (err error) { obs.Resources, err = srv.Resources(ctx); return err })
	}
	if err := g.wait(); err != nil {
		return nil, err
	}
	if volsErr != nil {
		return nil, volsErr
	}
	return obs, nil
}

// networks lists the networks of the default project: from the Incus
// database when the connection can (DatabaseReader: the local
// socket of an Incus 6.x server), else, or when that read fails, with
// GET /1.0/networks?recursion=1. The database answer leaves out used_by
// (nothing in a plan reads it; apply reads a network again before it
// deletes one) and the unmanaged host interfaces (a plan compares only
// managed bridges).
func networks(ctx context.Context, srv incusx.Server, info *api.Server) ([]api.Network, error) {
	return fromDatabase(ctx, srv, info, func(r incusx.DatabaseReader) ([]api.Network, error) {
		return r.NetworksFromDatabase(ctx, info.Environment.ServerName, info.Environment.ServerClustered)
	}, srv.Networks)
}

// projects lists the projects as networks lists the networks: from the
// Incus database when the connection can, without used_by (a plan reads
// none), else with GET /1.0/projects?recursion=1.
func projects(ctx context.Context, srv incusx.Server, info *api.Server) ([]api.Project, error) {
	return fromDatabase(ctx, srv, info, func(r incusx.DatabaseReader) ([]api.Project, error) {
		return r.ProjectsFromDatabase(ctx)
	}, srv.Projects)
}

// fromDatabase returns db's answer when srv reads the database of an
// Incus whose schema is known, else, or when that read fails (and the
// context is not done), public's.
func fromDatabase[T any](ctx context.Context, srv incusx.Server, info *api.Server,
	db func(incusx.DatabaseReader) ([]T, error), public func(context.Context) ([]T, error)) ([]T, error) {
	if r, ok := srv.(incusx.DatabaseReader); ok && incusx.KnownSchema(info.Environment.ServerVersion) {
		out, err := db(r)
		if err == nil {
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
	}
	return public(ctx)
}

// metadata returns the configuration metadata from the cache, or fetches
// and caches it.
func metadata(ctx context.Context, srv incusx.Server, info *api.Server, cache metacache.Cache) (*api.MetadataConfiguration, error) {
	key := metacache.Key(info)
	if m, ok := cache.Load(key); ok {
		return m, nil
	}
	m, err := srv.MetadataConfiguration(ctx)
	if err != nil {
		return nil, err
	}
	_ = cache.Store(key, keysOnly(m)) // a cache that cannot be written costs one request next time
	return m, nil
}

// keysOnly is what the cache keeps of the configuration metadata: the key
// names of the instance and device entities, all that a plan reads
// (metaKeys), without their descriptions. Incus 6.0's answer is 68 KB of
// JSON, most of it prose, and every plan decoded it from the cache (about
// 5 ms of CPU, a tenth of a no-op plan's sampled CPU on 30 containers).
func keysOnly(m *api.MetadataConfiguration) *api.MetadataConfiguration {
	out := &api.MetadataConfiguration{Config: api.MetadataConfig{}}
	for _, entity := range []api.MetadataConfigEntityName{"instance", "devices"} {
		groups, ok := m.Config[entity]
		if !ok {
			continue
		}
		slim := make(map[api.MetadataConfigGroupName]api.MetadataConfigGroup, len(groups))
		for name, g := range groups {
			keys := make([]map[string]api.MetadataConfigKey, 0, len(g.Keys))
			for _, k := range g.Keys {
				names := make(map[string]api.MetadataConfigKey, len(k))
				for key := range k {
					names[key] = api.MetadataConfigKey{}
				}
				keys = append(keys, names)
			}
			slim[name] = api.MetadataConfigGroup{Keys: keys}
		}
		out.Config[entity] = slim
	}
	return out
}

// group runs functions concurrently; wait returns the error of the first
// function started that failed.
type group struct {
	wg   sync.WaitGroup
	errs []*error
}

func (g *group) do(f func() error) {
	e := new(error)
	g.errs = append(g.errs, e)
	g.wg.Go(func() { *e = f() })
}

func (g *group) wait() error {
	g.wg.Wait()
	for _, e := range g.errs {
		if *e != nil {
			return *e
		}
	}
	return nil
}

// listsCustomVolume reports whether a pool's used_by names a custom volume.
func listsCustomVolume(usedBy []string) bool {
	for _, u := range usedBy {
		if strings.Contains(u, "/volumes/custom/") {
			return true
		}
	}
	return false
}

// HasPool reports whether the server has the storage pool name.
func (o *Observed) HasPool(name string) bool {
	for _, p := range o.Pools {
		if p.Name == name {
			return true
		}
	}
	return false
}
