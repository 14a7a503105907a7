package incus

import (
	"slices"
	"sort"
	"strings"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/model"
)

// Desired builds every desired Incus object of the enabled domains of m
// (SPEC.md §5.2–§5.6). Disabled domains produce nothing. The result shares
// nothing with m and can be changed by the caller.
func Desired(m *model.Infra) *State {
	s := &State{}
	if m == nil {
		return s
	}
	s.Infra = m.ProjectName
	s.Prefix = m.Prefix
	s.StoragePool = m.StoragePool
	s.SharedVolumesBase = m.Global.SharedVolumesBase
	for _, d := range m.EnabledDomains() {
		s.Networks = append(s.Networks, network(m, d))
		s.Projects = append(s.Projects, project(m, d))
	}
	for _, d := range m.Domains {
		if !d.Enabled {
			s.DisabledDomains = append(s.DisabledDomains, d.Name)
		}
	}
	return s
}

// owned returns the three keys every owned object carries (§5.1).
func owned(m *model.Infra, d *model.Domain) api.ConfigMap {
	return api.ConfigMap{
		KeyManaged: "true",
		KeyInfra:   m.ProjectName,
		KeyDomain:  d.Name,
	}
}

// boolString is Incus's boolean spelling.
func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// network is the bridge of d (§5.2).
func network(m *model.Infra, d *model.Domain) *Network {
	cfg := owned(m, d)
	cfg["ipv4.address"] = d.Gateway.String() + "/24"
	cfg["ipv4.dhcp.ranges"] = d.Base() + ".100-" + d.Base() + ".249"
	cfg["ipv4.nat"] = boolString(d.Egress)
	cfg["ipv6.address"] = "none"
	n := &Network{Domain: d.Name}
	n.Name = d.Bridge
	n.Type = NetworkType
	n.Description = d.Description
	n.Config = cfg
	return n
}

// peers lists the enabled domains a network policy links d to, in policy
// order, without duplicates (Project.Peers).
func peers(m *model.Infra, d *model.Domain) []string {
	var out []string
	for _, p := range m.Policies {
		if p.TouchesDisabled() || p.From.Domain == nil || p.To.Domain == nil {
			continue
		}
		other := ""
		switch a, b := p.From.Domain.Name, p.To.Domain.Name; {
		case a == d.Name && b != d.Name:
			other = b
		case b == d.Name && a != d.Name:
			other = a
		}
		if other != "" && !slices.Contains(out, other) {
			out = append(out, other)
		}
	}
	return out
}

// project is the project of d with its profiles, volumes and instances
// (§5.3–§5.6).
func project(m *model.Infra, d *model.Domain) *Project {
	cfg := owned(m, d)
	for k, v := range restrictions(m, d) {
		cfg[k] = v
	}
	if d.TrustLevel != "" {
		cfg[KeyTrustLevel] = d.TrustLevel
	}
	cfg[KeyEphemeral] = boolString(d.Ephemeral)
	if pol := policiesJSON(m, d); pol != "" {
		cfg[KeyPolicies] = pol
	}
	if !m.Global.HostIsolation {
		cfg[KeyHostIsolation] = "false"
	}
	if m.Addressing == model.LegacyMode {
		cfg[KeyAddressing] = "legacy"
	}
	if g := m.Global.GPUPolicy; g != "" && g != "exclusive" {
		cfg[KeyGPUPolicy] = g
	}
	if a := m.Global.AIAccessPolicy; a != "" && a != "open" {
		cfg[KeyAIAccessPolicy] = a
	}
	if a := m.Global.AIAccessDefault; a != "" {
		cfg[KeyAIAccessDefault] = a
	}
	if h := m.Global.AIAccessHolder; h != "" && h != m.Global.AIAccessDefault {
		cfg[KeyAIAccessHolder] = h
	}
	p := &Project{Domain: d.Name, Target: d.Target, Peers: peers(m, d)}
	p.Name = d.Project
	p.Description = d.Description
	p.Config = cfg
	p.Profiles = profiles(m, d)
	p.StorageVolumes = volumes(m, d)
	for _, x := range d.Machines {
		p.Instances = append(p.Instances, instance(m, x))
	}
	return p
}

// kvConfig copies kv into a ConfigMap.
func kvConfig(kv model.KV) api.ConfigMap {
	out := make(api.ConfigMap, len(kv))
	for _, p := range kv {
		out[p.Key] = p.Value
	}
	return out
}

// devicesMap copies ds into a DevicesMap.
func devicesMap(ds model.Devices) api.DevicesMap {
	out := make(api.DevicesMap, len(ds))
	for _, d := range ds {
		out[d.Name] = map[string]string(kvConfig(d.Props))
	}
	return out
}

// DefaultProfileDevices returns the two devices of a domain's default
// profile (§5.4): eth0 on the bridge with the three filtering keys, and
// the root disk in pool.
func DefaultProfileDevices(bridge, pool string) api.DevicesMap {
	return api.DevicesMap{
		"eth0": {
			"type":                    "nic",
			"network":                 bridge,
			"name":                    "eth0",
			"security.mac_filtering":  "true",
			"security.ipv4_filtering": "true",
			"security.ipv6_filtering": "true",
		},
		"root": {
			"type": "disk",
			"pool": pool,
			"path": "/",
		},
	}
}

// profiles returns default, the domain profiles, then firewall-multi-nic
// (§5.4).
func profiles(m *model.Infra, d *model.Domain) []*Profile {
	def := &Profile{Project: d.Project}
	def.Name = DefaultProfile
	def.Description = "anklume default profile for domain " + d.Name
	def.Config = owned(m, d)
	def.Devices = DefaultProfileDevices(d.Bridge, m.StoragePool)
	out := []*Profile{def}
	all := append([]*model.Profile(nil), d.Profiles...)
	if d.FirewallProfile != nil {
		all = append(all, d.FirewallProfile)
	}
	for _, dp := range all {
		p := &Profile{Project: d.Project}
		p.Name = dp.Name
		p.Description = dp.Description
		p.Config = kvConfig(dp.Config)
		for k, v := range owned(m, d) {
			p.Config[k] = v
		}
		p.Devices = devicesMap(dp.Devices)
		out = append(out, p)
	}
	return out
}

// volumes returns the custom volumes of d's machines, one per (pool, name)
// in order of first use (§5.5). The first size given wins.
func volumes(m *model.Infra, d *model.Domain) []*StorageVolume {
	var out []*StorageVolume
	idx := map[[2]string]*StorageVolume{}
	for _, x := range d.Machines {
		for _, sv := range x.StorageVolumes {
			pool := sv.ResolvedPool
			if pool == "" {
				pool = m.StoragePool
			}
			key := [2]string{pool, sv.Name}
			if v := idx[key]; v != nil {
				if _, ok := v.Config["size"]; !ok && sv.Size != "" {
					v.Config["size"] = sv.Size
				}
				continue
			}
			v := &StorageVolume{Project: d.Project, Pool: pool}
			v.Name = sv.Name
			v.Type = VolumeType
			v.ContentType = VolumeContentType
			v.Config = owned(m, d)
			v.Config[KeyEphemeral] = boolString(d.Ephemeral)
			if sv.Size != "" {
				v.Config["size"] = sv.Size
			}
			idx[key] = v
			out = append(out, v)
		}
	}
	return out
}

// imageSource returns the create-time source of ref (§4.12): `images:` is
// the built-in simplestreams remote; `local:<alias>` and `<alias>` are
// aliases on the target server; for another remote only the alias is set.
func imageSource(ref string) api.InstanceSource {
	src := api.InstanceSource{Type: instanceSourceImage, Alias: ref}
	remote, alias, ok := strings.Cut(ref, ":")
	if !ok {
		return src
	}
	src.Alias = alias
	if remote == imagesRemote {
		src.Server = imagesServer
		src.Protocol = simplestreams
	}
	return src
}

// instance is the instance of machine x (§5.6).
func instance(m *model.Infra, x *model.Machine) *Instance {
	d := x.Domain
	ic := x.InstanceConfig()
	devs := x.InstanceDevices()
	cfg := kvConfig(ic)
	var keys []string
	for _, p := range ic {
		if !strings.HasPrefix(p.Key, OwnershipKeyPrefix) {
			keys = append(keys, p.Key)
		}
	}
	sort.Strings(keys)
	names := devs.Names()
	sort.Strings(names)
	for k, v := range owned(m, d) {
		cfg[k] = v
	}
	if d.TrustLevel != "" {
		cfg[KeyTrustLevel] = d.TrustLevel
	}
	if len(x.Roles) > 0 {
		cfg[KeyRoles] = strings.Join(x.Roles, ",")
	}
	cfg[KeyOSImage] = x.Image
	if x.GPU {
		cfg[KeyGPU] = "true"
	}
	cfg[KeyConfigKeys] = strings.Join(keys, ",")
	if len(names) > 0 {
		cfg[KeyDevices] = strings.Join(names, ",")
	}

	in := &Instance{
		Project: d.Project,
		Domain:  d.Name,
		Machine: x.Name,
		State:   x.State,
		Image:   x.Image,
		Target:  x.Target,
	}
	in.Name = x.Instance
	in.Type = api.InstanceType(x.IncusType())
	in.Description = x.Description
	in.Profiles = append([]string{}, x.Profiles...)
	if len(in.Profiles) == 0 {
		in.Profiles = []string{DefaultProfile}
	}
	in.Source = imageSource(x.Image)
	in.Start = x.State != "stopped"
	in.Config = cfg
	in.Devices = devicesMap(devs)
	return in
}
