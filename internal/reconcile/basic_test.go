package reconcile

import (
	"strings"
	"testing"

	"github.com/anklume/anklume/internal/incusx"
)

const twoDomains = `  work:
    trust_level: trusted
    egress: false
    ephemeral: true
    profiles:
      big:
        config:
          limits.cpu: "2"
    machines:
      web:
        type: lxc
        profiles: [default, big]
        config:
          limits.memory: 1GiB
      db:
        type: vm
  lab:
    trust_level: untrusted
    egress: false
    machines:
      lab-1:
        type: lxc
        storage_volumes:
          data: {size: 1GiB, path: /data}
`

// TestCreateThenEmpty: on an empty Incus the plan creates everything, and
// after it is carried out the second plan is empty (SPEC.md §16 #56).
func TestCreateThenEmpty(t *testing.T) {
	f := incusx.NewFake()
	m, want := compile(t, psot(twoDomains))
	p := mustPlan(t, f, m, want, Options{})
	got := text(t, p)
	for _, line := range []string{
		"Domain work (project work, network net-work)",
		"  + project work",
		"  + network net-work",
		"  + profile work/default",
		"  + profile work/big",
		"  + instance work/web (lxc, anklume-test, 10.210.0.1)",
		"  + instance work/db (vm, anklume-test, 10.210.0.2)",
		"  + storage volume lab/data",
		"Plan: 11 to create, 0 to update, 0 to delete.",
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("plan lacks %q:\n%s", line, got)
		}
	}
	converge(t, f, p)
	assertEmpty(t, f, m, want, Options{})
	if got := text(t, mustPlan(t, f, m, want, Options{})); !strings.HasPrefix(got, "! image images:debian/13: mapped to anklume-test by ANKLUME_IMAGE_MAP\n\nNo changes.") {
		t.Errorf("second plan:\n%s", got)
	}
}
