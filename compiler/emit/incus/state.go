// Package incus builds the desired Incus objects of a resolved model
// (SPEC.md §5): one bridge network, one project and its profiles, custom
// storage volumes and instances per enabled domain, each carrying the
// ownership keys of §5.1. Objects are Incus's own create requests
// (github.com/lxc/incus/v6/shared/api), so the preseed, the desired-state
// file and the reconciler all start from the same values.
//
// The package is pure: Desired reads the model and returns values; it
// never talks to Incus.
package incus

import (
	"github.com/lxc/incus/v6/shared/api"
)

// Names fixed by Incus or by anklume.
const (
	// DefaultProject is the project that holds every bridge (§5.2).
	DefaultProject = "default"
	// DefaultProfile is the per-project profile anklume owns (§5.4).
	DefaultProfile = "default"
	// NetworkType is the type of every anklume network.
	NetworkType = "bridge"
	// VolumeType is the type of every anklume storage volume.
	VolumeType = "custom"
	// VolumeContentType is the content type of every anklume storage volume.
	VolumeContentType = "filesystem"
)

// Ownership keys (SPEC.md §5.1).
const (
	KeyManaged         = "user.anklume.managed"
	KeyInfra           = "user.anklume.infra"
	KeyDomain          = "user.anklume.domain"
	KeyTrustLevel      = "user.anklume.trust_level"
	KeyEphemeral       = "user.anklume.ephemeral"
	KeyPolicies        = "user.anklume.policies"
	KeyHostIsolation   = "user.anklume.host_isolation"
	KeyAddressing      = "user.anklume.addressing"
	KeyGPUPolicy       = "user.anklume.gpu_policy"
	KeyAIAccessPolicy  = "user.anklume.ai_access_policy"
	KeyAIAccessDefault = "user.anklume.ai_access_default"
	KeyAdopted         = "user.anklume.adopted"
	KeyRoles           = "user.anklume.roles"
	KeyOSImage         = "user.anklume.os_image"
	KeyGPU             = "user.anklume.gpu"
	KeyConfigKeys      = "user.anklume.config_keys"
	KeyDevices         = "user.anklume.devices"
	KeyDisp            = "user.anklume.disp"
	// OwnershipKeyPrefix starts every ownership key.
	OwnershipKeyPrefix = "user.anklume."
)

// KeyMember records, on a domain's project, the cluster member the
// domain is placed on (internal/reconcile chooses it at plan time). It is
// absent on a single server.
const KeyMember = "user.anklume.member"

// KeyAIAccessHolder records, on every project, the domain `anklume ai
// switch` gave the exclusive AI access to, when it is not
// ai_access_default (internal/aiaccess).
const KeyAIAccessHolder = "user.anklume.ai_access_holder"

// The built-in image remote (SPEC.md §4.12).
const (
	imagesRemote        = "images"
	imagesServer        = "https://images.linuxcontainers.org"
	simplestreams       = "simplestreams"
	instanceSourceImage = "image"
)

// State is every desired Incus object of the enabled domains, in
// declaration order (SPEC.md §4.1). Networks live in project `default`;
// everything else is grouped under the Project of its domain, so a
// reconciler can diff one project at a time, and looked up by name with
// the methods below. Config and device maps are Incus strings; ordered
// output (preseed, desired-state) sorts their keys.
type State struct {
	// Infra is project_name, the value of user.anklume.infra.
	Infra string
	// Prefix is the nesting prefix ("" without one).
	Prefix string
	// StoragePool is global.storage_pool.
	StoragePool string
	// SharedVolumesBase is global.shared_volumes_base: a shared volume
	// whose source is <base>/<name> has a directory anklume chose (see
	// package hostdirs, which may repair those).
	SharedVolumesBase string
	// Networks holds one bridge per enabled domain, in domain order.
	Networks []*Network
	// Projects holds one project per enabled domain, in domain order.
	Projects []*Project
	// DisabledDomains names the disabled domains, in declaration order:
	// their existing objects are left alone (§2.7), so a back end must not
	// take them for orphans.
	DisabledDomains []string
}

// Network is a desired bridge (SPEC.md §5.2), in project DefaultProject.
type Network struct {
	// Domain is the unprefixed domain name.
	Domain string
	api.NetworksPost
}

// Project is a desired project (SPEC.md §5.3) with the objects inside it.
type Project struct {
	// Domain is the unprefixed domain name.
	Domain string
	api.ProjectsPost
	// Profiles: default first, then the domain profiles in declaration
	// order, then firewall-multi-nic (§5.4).
	Profiles []*Profile
	// StorageVolumes: one per (pool, name), in order of first use (§5.5).
	StorageVolumes []*StorageVolume
	// Instances in machine declaration order (§5.6).
	Instances []*Instance
	// Target is the domain's cluster target: a member, "@<group>", or ""
	// (model.Domain.Target). The member it settles on is chosen at plan
	// time and recorded in the project's config under KeyMember.
	Target string
	// Peers names the other enabled domains a network policy (the AI
	// auto-policy included) links this domain to, in policy order, each
	// once. On a cluster a domain free to go anywhere joins the member of
	// a peer placed already: anklume does not route between members.
	Peers []string
}

// Profile is a desired profile inside Project.
type Profile struct {
	// Project is the prefixed project name.
	Project string
	api.ProfilesPost
}

// StorageVolume is a desired custom volume (SPEC.md §5.5).
type StorageVolume struct {
	// Project is the prefixed project name.
	Project string
	// Pool is the storage pool holding the volume.
	Pool string
	api.StorageVolumesPost
}

// Instance is a desired instance (SPEC.md §5.6). InstancesPost is the
// create request; Start is true when State is "running".
type Instance struct {
	// Project is the prefixed project name.
	Project string
	// Domain and Machine are the unprefixed names.
	Domain  string
	Machine string
	// State is the machine state, "running" or "stopped".
	State string
	// Image is the image reference (§4.12) the instance is created from.
	// InstancesPost.Source carries it as an image source: the alias, and
	// the server and protocol for the built-in `images` remote. For any
	// other `<remote>:` the caller fills Server and Protocol from the
	// client configuration.
	Image string
	// Target is the cluster member, "" when unset; create-only (it is a
	// query parameter of the create call, not part of InstancesPost).
	Target string
	api.InstancesPost
}

// Status returns the Incus status the instance should have: "Running" or
// "Stopped".
func (i *Instance) Status() string {
	if i.State == "stopped" {
		return "Stopped"
	}
	return "Running"
}

// Network returns the network named name, or nil.
func (s *State) Network(name string) *Network {
	for _, n := range s.Networks {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Project returns the project named name (prefixed), or nil.
func (s *State) Project(name string) *Project {
	for _, p := range s.Projects {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// DomainProject returns the project of the unprefixed domain d, or nil.
func (s *State) DomainProject(d string) *Project {
	for _, p := range s.Projects {
		if p.Domain == d {
			return p
		}
	}
	return nil
}

// Instance returns the instance named name (prefixed) in project, or nil.
func (s *State) Instance(project, name string) *Instance {
	if p := s.Project(project); p != nil {
		return p.Instance(name)
	}
	return nil
}

// Profile returns the profile named name, or nil.
func (p *Project) Profile(name string) *Profile {
	for _, x := range p.Profiles {
		if x.Name == name {
			return x
		}
	}
	return nil
}

// StorageVolume returns the volume named name in pool, or nil.
func (p *Project) StorageVolume(pool, name string) *StorageVolume {
	for _, v := range p.StorageVolumes {
		if v.Pool == pool && v.Name == name {
			return v
		}
	}
	return nil
}

// Instance returns the instance named name (prefixed), or nil.
func (p *Project) Instance(name string) *Instance {
	for _, x := range p.Instances {
		if x.Name == name {
			return x
		}
	}
	return nil
}
