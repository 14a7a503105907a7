// Package ansible renders the Ansible part of the tree `anklume sync`
// writes (SPEC.md §6.2, §6.5, §6.7): the managed sections of the
// inventory, group_vars and host_vars files, and the framework files
// site.yml, ansible.cfg, the anklume_incus connection plugin, the JSON
// Schema copy and the embedded roles. It is a pure function of the
// resolved model: it returns bytes and never touches the file system.
package ansible

import (
	"sort"

	"github.com/anklume/anklume/compiler/emit/yamlw"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/roles"
	"github.com/anklume/anklume/schema"
	"github.com/anklume/anklume/templates"
)

// Paths of the framework files (SPEC.md §6.2).
const (
	SitePath             = "site.yml"
	AnsibleCfgPath       = "ansible.cfg"
	ConnectionPluginPath = "connection_plugins/anklume_incus.py"
	SchemaPath           = ".anklume/infra.schema.json"
	RolesDir             = "roles"
)

// Files returns every Ansible file of m: first the managed files in the
// write order of §6.2 (group_vars/all.yml, then for each enabled domain in
// declaration order inventory/<d>.yml, group_vars/<d>.yml and the
// host_vars/<m>.yml of its machines), then the framework files sorted
// byte-wise by path. A managed file's Content is the block content only
// (tree.Splice adds the markers); a framework file's Content lacks the
// header, which tree adds.
func Files(m *model.Infra) []tree.File {
	return append(Managed(m), Framework(m)...)
}

// Managed returns the managed-section files of m in the write order of
// §6.2.
func Managed(m *model.Infra) []tree.File {
	managed := func(p string, v yamlw.Value) tree.File {
		return tree.File{Path: p, Content: yamlw.MarshalAnsible(v), Class: tree.Managed, Kind: tree.YAML}
	}
	out := []tree.File{managed("group_vars/all.yml", AllVars(m))}
	for _, d := range m.EnabledDomains() {
		out = append(out,
			managed("inventory/"+d.Name+".yml", Inventory(d)),
			managed("group_vars/"+d.Name+".yml", GroupVars(d)))
		for _, x := range d.Machines {
			out = append(out, managed("host_vars/"+x.Name+".yml", HostVars(x)))
		}
	}
	return out
}

// Framework returns the framework files sync owns wholly, sorted by path:
// .anklume/infra.schema.json, ansible.cfg, the connection plugin, every
// file of the embedded roles under roles/, and site.yml.
func Framework(m *model.Infra) []tree.File {
	fw := func(p string, content []byte) tree.File {
		return tree.File{Path: p, Content: content, Class: tree.Framework}
	}
	out := []tree.File{
		fw(SchemaPath, schema.JSON()),
		fw(AnsibleCfgPath, templates.AnsibleCfg()),
		fw(ConnectionPluginPath, templates.ConnectionPlugin()),
		fw(SitePath, Site(m)),
	}
	for _, f := range roles.Files() {
		out = append(out, fw(RolesDir+"/"+f.Path, f.Content))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
