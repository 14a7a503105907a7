package compiler

import (
	"io/fs"
	"strings"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/roles"
)

// Role directories of the base directory, in the order of ansible.cfg's
// roles_path (the built-in roles/ sits between them).
const (
	RolesCustomDir = "roles_custom"
	RolesVendorDir = "roles_vendor"
)

// UnknownRoles returns W16 for every role in a machine's roles: (enabled
// domains only, once per machine and role) that Ansible would not find: not
// a directory of roles_custom/ or roles_vendor/ in base (the base
// directory as an fs.FS), not a built-in role, and not a collection role
// (a name with a "."). It reads nothing but directory entries and is run
// by sync and apply, which know the base directory, so a typo is reported
// before Incus is changed rather than in the provisioning play.
func UnknownRoles(m *model.Infra, base fs.FS) diag.List {
	builtin := map[string]bool{}
	for _, r := range roles.Names() {
		if !strings.HasPrefix(r, "_") {
			builtin[r] = true
		}
	}
	found := func(r string) bool {
		if builtin[r] || strings.Contains(r, ".") {
			return true
		}
		for _, dir := range []string{RolesCustomDir, RolesVendorDir} {
			if st, err := fs.Stat(base, dir+"/"+r); err == nil && st.IsDir() {
				return true
			}
		}
		return false
	}
	var dl diag.List
	for _, d := range m.EnabledDomains() {
		for _, x := range d.Machines {
			seen := map[string]bool{}
			for i, r := range x.Roles {
				if seen[r] || found(r) {
					continue
				}
				seen[r] = true
				path := diag.Path("").Key("domains").Key(d.Name).Key("machines").Key(x.Name).Key("roles").Index(i)
				dl.Warnf(x.Pos, path.String(), "", "role %q was not found in roles_custom/ or the built-in roles", r)
			}
		}
	}
	return dl
}
