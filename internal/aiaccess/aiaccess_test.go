package aiaccess_test

import (
	"testing"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
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
