// Package target turns the names a user types at the operator's desk
// (machine and domain names from infra.yml) into the Incus objects they
// mean, so that a user never needs to know a project name or the nesting
// prefix.
package target

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/suggest"
)

// Machine finds the machine name of infra.yml in m. An unknown name gives
// an error with a did-you-mean when one is close; a machine of a disabled
// domain is refused (it has no Incus instance).
func Machine(m *model.Infra, name string) (*model.Machine, error) {
	var names []string
	for _, mc := range m.Machines {
		if mc.Name == name {
			if mc.Domain == nil || !mc.Domain.Enabled {
				return nil, fmt.Errorf("machine %q belongs to a disabled domain", name)
			}
			return mc, nil
		}
		names = append(names, mc.Name)
	}
	msg := fmt.Sprintf("unknown machine %q", name)
	if s, ok := suggest.Closest(name, names); ok {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return nil, fmt.Errorf("%s", msg)
}

// Domains returns the enabled domains that have machines, in zone order
// then seq order (the order of their subnets), restricted to limit when it
// is not empty. An unknown or disabled name in limit is an error.
func Domains(m *model.Infra, limit []string) ([]*model.Domain, error) {
	byName := map[string]*model.Domain{}
	var names []string
	for _, d := range m.Domains {
		byName[d.Name] = d
		names = append(names, d.Name)
	}
	want := map[string]bool{}
	for _, l := range limit {
		d, ok := byName[l]
		if !ok {
			msg := fmt.Sprintf("--limit: unknown domain %q", l)
			if s, ok := suggest.Closest(l, names); ok {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			return nil, fmt.Errorf("%s", msg)
		}
		if !d.Enabled {
			return nil, fmt.Errorf("--limit: domain %q is disabled", l)
		}
		want[l] = true
	}
	var out []*model.Domain
	for _, d := range m.Domains {
		if d.Enabled && len(d.Machines) > 0 && (len(want) == 0 || want[d.Name]) {
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(a, b *model.Domain) int {
		return cmp.Or(a.Subnet.Addr().Compare(b.Subnet.Addr()), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

// SortedMachines returns a domain's machines sorted by name.
func SortedMachines(d *model.Domain) []*model.Machine {
	out := slices.Clone(d.Machines)
	slices.SortFunc(out, func(a, b *model.Machine) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
