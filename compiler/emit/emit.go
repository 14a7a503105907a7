// Package emit gathers every file `anklume sync` generates from the
// resolved model (SPEC.md §6.2) into one list in write order. Each back
// end (Ansible, Incus desired state, preseed, nftables) renders its own
// files; emit only joins and orders them. It is pure: no file system, no
// printing.
package emit

import (
	"sort"
	"strings"

	"github.com/anklume/anklume/compiler/emit/ansible"
	"github.com/anklume/anklume/compiler/emit/desiredstate"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/emit/nft"
	"github.com/anklume/anklume/compiler/emit/preseed"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
)

// Tree returns every generated file of m in the write order of §6.2:
// group_vars/all.yml; then, for each enabled domain in declaration order,
// its inventory, its group_vars and its machines' host_vars; then
// nftables/, incus/ and the framework files, in byte-wise path order.
//
// The caller is expected to have checked that m has an enabled domain
// (§6.1: otherwise there is nothing to generate).
//
// The back ends only read m, so the Ansible files and the Incus desired
// state (the biggest single file, 4 MB for 200 domains × 20 machines)
// render on two goroutines; the result does not depend on which ends
// first.
func Tree(m *model.Infra) []tree.File {
	var later []tree.File
	done := make(chan struct{})
	go func() {
		defer close(done)
		later = laterBackEnds(m)
	}()
	files := ansible.Files(m)
	<-done
	var vars, rest []tree.File
	for _, f := range files {
		if f.Class == tree.Managed && isVarsPath(f.Path) {
			vars = append(vars, f)
			continue
		}
		rest = append(rest, f)
	}
	rest = append(rest, later...)
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].Path < rest[j].Path })
	return append(vars, rest...)
}

// Paths of the files of the Incus back ends.
const (
	PreseedPath      = "incus/preseed.yml"
	DesiredStatePath = "incus/desired-state.yml"
)

// laterBackEnds returns the files of the other back ends:
// nftables/anklume-isolation.nft (managed, tree.NFT, §7), incus/preseed.yml
// (managed, tree.Preseed, §8; a user key outside the block that conflicts
// with anklume fails the plan) and incus/desired-state.yml (framework,
// §6.6). Tree puts each in its byte-wise place after the Ansible variables.
func laterBackEnds(m *model.Infra) []tree.File {
	state := incus.Desired(m)
	return []tree.File{
		nft.File(m),
		{
			Path: PreseedPath, Content: preseed.Render(state), Class: tree.Managed, Kind: tree.Preseed,
			Check: func(old []byte) error { return preseed.CheckOutside(PreseedPath, old) },
		},
		{Path: DesiredStatePath, Content: desiredstate.Render(state), Class: tree.Framework},
	}
}

// isVarsPath reports whether p is one of the per-domain or per-machine
// Ansible files that keep declaration order (inventory/, group_vars/,
// host_vars/).
func isVarsPath(p string) bool {
	for _, dir := range []string{"inventory/", "group_vars/", "host_vars/"} {
		if strings.HasPrefix(p, dir) {
			return true
		}
	}
	return false
}

// KnownNames returns every domain and every machine of m, those of
// disabled domains included, for orphan detection (§6.9): their files are
// neither orphans nor updated.
func KnownNames(m *model.Infra) (domains, machines []string) {
	if m == nil {
		return nil, nil
	}
	domains = make([]string, 0, len(m.Domains))
	for _, d := range m.Domains {
		domains = append(domains, d.Name)
	}
	machines = make([]string, 0, len(m.Machines))
	for _, x := range m.Machines {
		machines = append(machines, x.Name)
	}
	return domains, machines
}
