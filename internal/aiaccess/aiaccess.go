// Package aiaccess keeps track of who holds the exclusive AI access
// (global.ai_access_policy: exclusive): the one domain whose machines may
// open connections into the ai-tools domain, through the automatic
// policy "<holder> -> ai-tools".
//
// ai_access_default in infra.yml names the first holder. `anklume ai
// switch DOMAIN` moves the access and records the new holder on every
// Incus project of the infrastructure, in user.anklume.ai_access_holder,
// beside the other global settings (user.anklume.ai_access_default keeps
// the PSOT's value). Every command that compares infra.yml with Incus or
// loads the nftables rules reads that key back and applies Overlay to the
// compiled model first, so plan stays empty after a switch, apply keeps
// the holder (and its rules) instead of reverting it, and import followed
// by plan gives no changes. Switching back to ai_access_default removes
// the key.
//
// Everything anklume writes follows the holder too, so that no path undoes
// a switch: `nftables render` prints the rules that deploy loads, and
// sync writes the tree (the nftables ruleset, the desired state with the
// holder key and the moved policy) that `ansible-playbook site.yml`
// applies. Both read the holder from Incus (Resolve); when Incus cannot be
// read they warn and use ai_access_default, as a machine without Incus
// has no switch to keep.
package aiaccess

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/model"
)

// AITools is the domain the exclusive access is to.
const AITools = "ai-tools"

// Exclusive reports whether m has an exclusive AI access with its
// automatic policy (ai_access_policy exclusive, ai_access_default set, an
// ai-tools domain, no policy of the user toward ai-tools).
func Exclusive(m *model.Infra) bool {
	return autoPolicy(m) >= 0
}

func autoPolicy(m *model.Infra) int {
	if m.Global.AIAccessPolicy != "exclusive" {
		return -1
	}
	return slices.IndexFunc(m.Policies, func(p *model.Policy) bool { return p.Auto })
}

// Holder returns the domain that holds the access in m.
func Holder(m *model.Infra) string {
	if m.Global.AIAccessHolder != "" {
		return m.Global.AIAccessHolder
	}
	return m.Global.AIAccessDefault
}

// LiveHolder reads user.anklume.ai_access_holder from the projects this
// infrastructure owns, preferring the ai-tools project's; "" when none
// records one.
func LiveHolder(m *model.Infra, projects []api.Project) string {
	found := ""
	for _, p := range projects {
		c := p.Config
		if c[incus.KeyManaged] != "true" || c[incus.KeyInfra] != m.ProjectName {
			continue
		}
		h := c[incus.KeyAIAccessHolder]
		if h == "" {
			continue
		}
		if c[incus.KeyDomain] == AITools {
			return h
		}
		if found == "" {
			found = h
		}
	}
	return found
}

// Check tells whether holder can hold the access in m: a known, enabled
// domain other than ai-tools.
func Check(m *model.Infra, holder string) error {
	if !Exclusive(m) {
		return fmt.Errorf("AI access is not exclusive here: set global.ai_access_policy: exclusive and ai_access_default, with an ai-tools domain and no network policy of yours toward ai-tools")
	}
	if holder == AITools {
		return fmt.Errorf("ai-tools cannot hold the AI access to itself")
	}
	for _, d := range m.Domains {
		if d.Name == holder {
			if !d.Enabled {
				return fmt.Errorf("domain %q is disabled", holder)
			}
			return nil
		}
	}
	return fmt.Errorf("unknown domain %q", holder)
}

// Overlay returns m with the access held by holder: Global.AIAccessHolder
// set and the automatic policy starting from holder. m itself is not
// changed. An empty holder, or ai_access_default, returns m.
func Overlay(m *model.Infra, holder string) (*model.Infra, error) {
	if holder == "" || holder == m.Global.AIAccessDefault {
		return m, nil
	}
	if err := Check(m, holder); err != nil {
		return m, fmt.Errorf("the AI access holder %q recorded in Incus cannot be used: %w", holder, err)
	}
	i := autoPolicy(m)
	var d *model.Domain
	for _, x := range m.Domains {
		if x.Name == holder {
			d = x
		}
	}
	c := *m
	c.Global.AIAccessHolder = holder
	c.Policies = slices.Clone(m.Policies)
	p := *m.Policies[i]
	p.From = model.Endpoint{Name: holder, Kind: model.DomainEndpoint, Domain: d}
	p.Description = "AI access: " + holder + " -> ai-tools (auto-created)"
	c.Policies[i] = &p
	return &c, nil
}

// Live is Overlay with the holder LiveHolder reads in projects; a holder
// that cannot be used is returned as a warning, and m is kept.
func Live(m *model.Infra, projects []api.Project) (*model.Infra, string) {
	if !Exclusive(m) {
		return m, ""
	}
	o, err := Overlay(m, LiveHolder(m, projects))
	if err != nil {
		return m, err.Error() + "; using ai_access_default " + m.Global.AIAccessDefault
	}
	return o, ""
}

// ProjectLister lists the Incus projects (incusx.Server has it).
type ProjectLister interface {
	Projects(ctx context.Context) ([]api.Project, error)
}

// FromServer is Live with the projects read from srv (one
// GET /1.0/projects?recursion=1), and only when m has an exclusive AI
// access: other infrastructures make no request.
func FromServer(ctx context.Context, srv ProjectLister, m *model.Infra) (*model.Infra, string, error) {
	if !Exclusive(m) {
		return m, "", nil
	}
	ps, err := srv.Projects(ctx)
	if err != nil {
		return m, "", fmt.Errorf("reading the AI access holder: %w", err)
	}
	o, warn := Live(m, ps)
	return o, warn, nil
}

// Resolve is FromServer with the server connect(ctx, remote) gives,
// within 10 s. When m has no exclusive AI access it makes no request and
// returns m. On any failure it returns m and a warning saying that the
// access stays with ai_access_default; a holder that cannot be used gives
// a warning too.
func Resolve[S ProjectLister](ctx context.Context, connect func(context.Context, string) (S, error), remote string, m *model.Infra) (*model.Infra, string) {
	if connect == nil || !Exclusive(m) {
		return m, ""
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	srv, err := connect(cctx, remote)
	if err == nil {
		var o *model.Infra
		var w string
		if o, w, err = FromServer(cctx, srv, m); err == nil {
			return o, w
		}
	}
	return m, fmt.Sprintf("could not read the AI access holder from Incus (%s); the access goes to ai_access_default %s", err, m.Global.AIAccessDefault)
}
