package compiler

import (
	"io/fs"
	"sort"
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
	builtin := builtinRoles()
	found := func(r string) bool { return builtin[r] || strings.Contains(r, ".") || RoleFound(base, r) }
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

// builtinRoles is the set of the built-in roles a machine may list.
func builtinRoles() map[string]bool {
	builtin := map[string]bool{}
	for _, r := range roles.Names() {
		if !strings.HasPrefix(r, "_") {
			builtin[r] = true
		}
	}
	return builtin
}

// RoleFound reports whether the role r is a directory of roles_custom/ or
// roles_vendor/ in base.
func RoleFound(base fs.FS, r string) bool {
	for _, dir := range []string{RolesCustomDir, RolesVendorDir} {
		if st, err := fs.Stat(base, dir+"/"+r); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

// CustomRoles returns, sorted and once each, the roles of the machines of
// enabled domains that are neither built in nor collection roles: the only
// roles whose W16 depends on the base directory (RoleFound), and so the
// only ones a cached result of UnknownRoles must check again.
func CustomRoles(m *model.Infra) []string {
	builtin := builtinRoles()
	seen := map[string]bool{}
	var out []string
	for _, d := range m.EnabledDomains() {
		for _, x := range d.Machines {
			for _, r := range x.Roles {
				if builtin[r] || strings.Contains(r, ".") || seen[r] {
					continue
				}
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	sort.Strings(out)
	return out
}
