package resolve

import "testing"

// TestDomainTarget: a domain's target is its own or the one its machines
// name, and every machine of the domain gets it (the domain is the unit
// of placement on a cluster).
func TestDomainTarget(t *testing.T) {
	m, _ := mustResolve(t, `project_name: p
global:
  addressing: {}
domains:
  a:
    target: "@lab"
    machines:
      a1: {}
      a2: {target: "@lab"}
  b:
    machines:
      b1: {}
      b2: {target: m1}
  c:
    machines:
      c1: {}
`, skip)
	want := map[string]string{"a": "@lab", "b": "m1", "c": ""}
	for _, d := range m.Domains {
		if d.Target != want[d.Name] {
			t.Errorf("domain %s: Target %q, want %q", d.Name, d.Target, want[d.Name])
		}
		if got := d.TargetIsGroup(); got != (d.Name == "a") {
			t.Errorf("domain %s: TargetIsGroup %v", d.Name, got)
		}
		for _, x := range d.Machines {
			if x.Target != want[d.Name] {
				t.Errorf("machine %s: Target %q, want the domain's %q", x.Name, x.Target, want[d.Name])
			}
		}
	}
}
