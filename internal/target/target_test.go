package target_test

import (
	"testing"

	"github.com/anklume/anklume/internal/desktest"
	_ "github.com/anklume/anklume/internal/goldenflag" // accept go test ./... -update
	"github.com/anklume/anklume/internal/target"
)

// TestMachine: a machine is found by its infra.yml name and carries its
// project; typos get a did-you-mean; disabled domains are refused.
func TestMachine(t *testing.T) {
	e := desktest.New(t, `format_version: 1
project_name: i14-target
global:
  addressing: {}
domains:
  work:
    trust_level: trusted
    machines:
      web: {}
  off:
    enabled: false
    machines:
      old: {}
`)
	mc, err := target.Machine(e.Model, "web")
	if err != nil || mc.Domain.Project != "work" || mc.Instance != "web" {
		t.Errorf("Machine(web) = %+v, %v", mc, err)
	}
	for name, want := range map[string]string{
		"wbe":   `unknown machine "wbe" (did you mean "web"?)`,
		"zzzzz": `unknown machine "zzzzz"`,
		"old":   `machine "old" belongs to a disabled domain`,
	} {
		if _, err := target.Machine(e.Model, name); err == nil || err.Error() != want {
			t.Errorf("Machine(%s): %v, want %s", name, err, want)
		}
	}
}
