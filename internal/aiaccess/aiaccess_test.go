package aiaccess_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/aiaccess"
	"github.com/anklume/anklume/internal/desktest"
	_ "github.com/anklume/anklume/internal/goldenflag" // accept go test ./... -update
)

const psot = `format_version: 1
project_name: i14-aiaccess
global:
  addressing: {}
  ai_access_policy: exclusive
  ai_access_default: a
domains:
  a: {trust_level: trusted, machines: {a1: {}}}
  b: {trust_level: trusted, machines: {b1: {}}}
  off: {enabled: false, machines: {o1: {}}}
  ai-tools: {trust_level: semi-trusted, machines: {t1: {}}}
`

func project(name, domain, infra, holder string) api.Project {
	c := map[string]string{incus.KeyManaged: "true", incus.KeyInfra: infra, incus.KeyDomain: domain}
	if holder != "" {
		c[incus.KeyAIAccessHolder] = holder
	}
	return api.Project{Name: name, ProjectPut: api.ProjectPut{Config: c}}
}

// TestOverlay: the auto policy moves to the holder in a copy; m is left
// as it was; bad holders are refused.
func TestOverlay(t *testing.T) {
	m := desktest.New(t, psot).Model
	o, err := aiaccess.Overlay(m, "b")
	if err != nil {
		t.Fatal(err)
	}
	var from, orig string
	for _, p := range o.Policies {
		if p.Auto {
			from = p.From.Name + "|" + p.Description
		}
	}
	for _, p := range m.Policies {
		if p.Auto {
			orig = p.From.Name
		}
	}
	if from != "b|AI access: b -> ai-tools (auto-created)" || orig != "a" || o.Global.AIAccessHolder != "b" || m.Global.AIAccessHolder != "" {
		t.Errorf("overlay: %q, original %q", from, orig)
	}
	if same, err := aiaccess.Overlay(m, "a"); err != nil || same != m {
		t.Errorf("overlay with the default: %v", err)
	}
	for _, bad := range []string{"off", "ai-tools", "zzz"} {
		if _, err := aiaccess.Overlay(m, bad); err == nil {
			t.Errorf("overlay %s accepted", bad)
		}
	}
	// LiveHolder: only this infrastructure's projects, ai-tools first.
	ps := []api.Project{
		project("x", "a", "other-infra", "b"),
		project("a", "a", "i14-aiaccess", "off"),
		project("ai-tools", "ai-tools", "i14-aiaccess", "b"),
	}
	if h := aiaccess.LiveHolder(m, ps); h != "b" {
		t.Errorf("LiveHolder = %q", h)
	}
	if h := aiaccess.LiveHolder(m, ps[:1]); h != "" {
		t.Errorf("LiveHolder of another infrastructure = %q", h)
	}
	if o, warn := aiaccess.Live(m, ps[:2]); o != m || warn == "" {
		t.Errorf("Live with a disabled holder: %v %q", o == m, warn)
	}
}

// lister is a ProjectLister that returns ps, or err.
type lister struct {
	ps    []api.Project
	err   error
	calls *int
}

func (l lister) Projects(context.Context) ([]api.Project, error) {
	*l.calls++
	return l.ps, l.err
}

// TestResolve: the holder recorded on the projects is applied; a server
// that cannot be reached or read leaves m with a warning naming
// ai_access_default; without the exclusive policy nothing is asked.
func TestResolve(t *testing.T) {
	m := desktest.New(t, psot).Model
	open := desktest.New(t, strings.Replace(psot, "  ai_access_policy: exclusive\n  ai_access_default: a\n", "", 1)).Model
	held := []api.Project{project("ai-tools", "ai-tools", "i14-aiaccess", "b")}
	for _, tc := range []struct {
		name       string
		m          *model.Infra
		l          lister
		connectErr error
		holder     string
		warn       string
		calls      int
	}{
		{"recorded holder", m, lister{ps: held}, nil, "b", "", 1},
		{"no record", m, lister{}, nil, "", "", 1},
		{"cannot connect", m, lister{}, errors.New("no socket"), "", "could not read the AI access holder from Incus (no socket); the access goes to ai_access_default a", 0},
		{"cannot list", m, lister{err: errors.New("denied")}, nil, "", "could not read the AI access holder from Incus (reading the AI access holder: denied); the access goes to ai_access_default a", 1},
		{"not exclusive", open, lister{ps: held}, nil, "", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			tc.l.calls = &calls
			connect := func(context.Context, string) (lister, error) { return tc.l, tc.connectErr }
			o, warn := aiaccess.Resolve(context.Background(), connect, "", tc.m)
			if o.Global.AIAccessHolder != tc.holder || warn != tc.warn || calls != tc.calls {
				t.Errorf("holder %q warn %q calls %d; want %q %q %d", o.Global.AIAccessHolder, warn, calls, tc.holder, tc.warn, tc.calls)
			}
			if tc.holder == "" && o != tc.m {
				t.Error("m was replaced")
			}
		})
	}
}
