// Package reconcile computes anklume's plan (SPEC.md §9.1–§9.4): Observe
// reads the live Incus state with the fixed list of requests of §9.1, and
// Diff compares it with the desired state of compiler/emit/incus, applying
// the ownership, comparison, orphan and plan-time rules of §5.1, §5.7 and
// §9.2–§9.3. Diff is pure: it takes values and returns a *plan.Plan.
package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/internal/incusx"
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
	// Targets is true when some machine sets target: cluster members are
	// then listed, if the server is clustered.
	Targets bool
	// Resources asks for GET /1.0/resources (--remote with a
	// resource_policy, §2.14).
	Resources bool
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
	// Members is nil unless members were listed (Targets on a clustered
	// server).
	Members []api.ClusterMember
	// Metadata is nil when the server lacks metadata_configuration.
	Metadata *api.MetadataConfiguration
	// Resources is nil unless asked for.
	Resources *api.Resources
}

// Observe reads the live state with exactly the requests of SPEC.md §9.1,
// in that order. Their number depends only on the pools in use and the
// options, never on the number of domains, projects or instances.
func Observe(ctx context.Context, srv incusx.Server, opts ObserveOptions) (*Observed, error) {
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
	if obs.Pools, err = srv.StoragePools(ctx); err != nil {
		return nil, err
	}
	if obs.Projects, err = srv.Projects(ctx); err != nil {
		return nil, err
	}
	if obs.Networks, err = srv.Networks(ctx); err != nil {
		return nil, err
	}
	if obs.Profiles, err = srv.Profiles(ctx); err != nil {
		return nil, err
	}
	if obs.Instances, err = srv.Instances(ctx); err != nil {
		return nil, err
	}
	if obs.Aliases, err = srv.ImageAliases(ctx); err != nil {
		return nil, err
	}
	for _, p := range obs.Pools {
		if !slices.Contains(opts.Pools, p.Name) && !listsCustomVolume(p.UsedBy) {
			continue
		}
		vols, err := srv.StorageVolumes(ctx, p.Name)
		if err != nil {
			return nil, err
		}
		obs.Volumes[p.Name] = vols
	}
	if opts.Targets && info.Environment.ServerClustered {
		if obs.Members, err = srv.ClusterMembers(ctx); err != nil {
			return nil, err
		}
	}
	if slices.Contains(info.APIExtensions, metadataExtension) {
		if obs.Metadata, err = srv.MetadataConfiguration(ctx); err != nil {
			return nil, err
		}
	}
	if opts.Resources {
		if obs.Resources, err = srv.Resources(ctx); err != nil {
			return nil, err
		}
	}
	return obs, nil
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
