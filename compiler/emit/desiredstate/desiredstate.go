// Package desiredstate renders incus/desired-state.yml (SPEC.md §6.6):
// the Incus part of the resolved model, which the Ansible infra roles
// read. It is a framework file; the caller adds the header.
//
// Layout: the fixed fields of each object are written in the order §6.6
// shows them (format, infra, prefix, storage_pool, networks, projects;
// name, domain, description, config, profiles, storage_volumes, instances
// for a project; and so on); the keys of every config and devices map, and
// of each device's properties, are sorted byte-wise. Lists keep domain and
// declaration order. `format` is the only non-string value; an empty
// string is written as a pair of single quotes.
package desiredstate

import (
	"sort"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/emit/yamlw"
	"github.com/anklume/anklume/compiler/model"
)

// Format is the value of the document's `format` key.
const Format = 1

// Render returns the desired-state document of s, without header.
func Render(s *incus.State) []byte {
	if s == nil {
		s = &incus.State{}
	}
	nets := yamlw.List{}
	for _, n := range s.Networks {
		nets = append(nets, yamlw.Map{
			{Key: "name", Value: yamlw.Str(n.Name)},
			{Key: "description", Value: yamlw.Str(n.Description)},
			{Key: "config", Value: SortedConfig(n.Config)},
		})
	}
	projects := yamlw.List{}
	for _, p := range s.Projects {
		projects = append(projects, project(p))
	}
	disabled := yamlw.List{}
	for _, d := range s.DisabledDomains {
		disabled = append(disabled, yamlw.Str(d))
	}
	return yamlw.MarshalAnsible(yamlw.Map{
		{Key: "format", Value: yamlw.Int(Format)},
		{Key: "infra", Value: yamlw.Str(s.Infra)},
		{Key: "prefix", Value: yamlw.Str(s.Prefix)},
		{Key: "storage_pool", Value: yamlw.Str(s.StoragePool)},
		// Not in the §6.6 shape: the infra roles must leave the objects of
		// disabled domains alone (§2.7), and nothing else tells them which
		// owned projects belong to a disabled domain rather than to a
		// removed one.
		{Key: "disabled_domains", Value: disabled},
		// Not in the §6.6 shape either: the infra roles hand over a
		// shared volume's directory made by an older anklume only when
		// anklume chose its path, <shared_volumes_base>/<name>.
		{Key: "shared_volumes_base", Value: yamlw.Str(s.SharedVolumesBase)},
		{Key: "networks", Value: nets},
		{Key: "projects", Value: projects},
	})
}

// RenderModel is Render(incus.Desired(m)).
func RenderModel(m *model.Infra) []byte {
	return Render(incus.Desired(m))
}

// project renders one project with its profiles, volumes and instances.
func project(p *incus.Project) yamlw.Map {
	profiles := yamlw.List{}
	for _, x := range p.Profiles {
		profiles = append(profiles, yamlw.Map{
			{Key: "name", Value: yamlw.Str(x.Name)},
			{Key: "description", Value: yamlw.Str(x.Description)},
			{Key: "config", Value: SortedConfig(x.Config)},
			{Key: "devices", Value: SortedDevices(x.Devices)},
		})
	}
	vols := yamlw.List{}
	for _, v := range p.StorageVolumes {
		vols = append(vols, yamlw.Map{
			{Key: "pool", Value: yamlw.Str(v.Pool)},
			{Key: "name", Value: yamlw.Str(v.Name)},
			{Key: "config", Value: SortedConfig(v.Config)},
		})
	}
	insts := yamlw.List{}
	for _, i := range p.Instances {
		profs := yamlw.List{}
		for _, name := range i.Profiles {
			profs = append(profs, yamlw.Str(name))
		}
		insts = append(insts, yamlw.Map{
			{Key: "name", Value: yamlw.Str(i.Name)},
			{Key: "machine", Value: yamlw.Str(i.Machine)},
			{Key: "type", Value: yamlw.Str(string(i.Type))},
			{Key: "state", Value: yamlw.Str(i.State)},
			{Key: "description", Value: yamlw.Str(i.Description)},
			{Key: "source", Value: yamlw.Str(i.Image)},
			{Key: "target", Value: yamlw.Str(i.Target)},
			{Key: "profiles", Value: profs},
			{Key: "config", Value: SortedConfig(i.Config)},
			{Key: "devices", Value: SortedDevices(i.Devices)},
		})
	}
	peers := yamlw.List{}
	for _, d := range p.Peers {
		peers = append(peers, yamlw.Str(d))
	}
	return yamlw.Map{
		{Key: "name", Value: yamlw.Str(p.Name)},
		{Key: "domain", Value: yamlw.Str(p.Domain)},
		{Key: "description", Value: yamlw.Str(p.Description)},
		// Not in the §6.6 shape: on an Incus cluster the incus_projects
		// role places the domain on one member as anklume apply does,
		// from its target (a member, "@<group>" or '') and the domains a
		// network policy links it to.
		{Key: "target", Value: yamlw.Str(p.Target)},
		{Key: "peers", Value: peers},
		{Key: "config", Value: SortedConfig(p.Config)},
		{Key: "profiles", Value: profiles},
		{Key: "storage_volumes", Value: vols},
		{Key: "instances", Value: insts},
	}
}

// sortedKeys returns the keys of m sorted byte-wise.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SortedConfig returns cfg as a map of strings with its keys sorted
// byte-wise (an empty map for nil).
func SortedConfig(cfg map[string]string) yamlw.Map {
	out := yamlw.Map{}
	for _, k := range sortedKeys(cfg) {
		out = append(out, yamlw.KV{Key: k, Value: yamlw.Str(cfg[k])})
	}
	return out
}

// SortedDevices returns devs with device names and property keys sorted
// byte-wise, every value a string.
func SortedDevices(devs map[string]map[string]string) yamlw.Map {
	out := yamlw.Map{}
	for _, name := range sortedKeys(devs) {
		out = append(out, yamlw.KV{Key: name, Value: SortedConfig(devs[name])})
	}
	return out
}
