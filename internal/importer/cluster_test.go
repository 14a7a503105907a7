package importer

import (
	"strings"
	"testing"

	"github.com/anklume/anklume/internal/incusx"
)

// TestRoundTripCluster: on a cluster import writes each domain's member
// as its target (the member its project records, not the @group that
// picked it), no machine-level target, and the imported file plans
// nothing: every domain stays where it is.
func TestRoundTripCluster(t *testing.T) {
	src := []byte(`project_name: rt
global:
  addressing: {}
  default_os_image: anklume-test
domains:
  a:
    trust_level: admin
    target: m1
    machines:
      a-1: {}
  b:
    trust_level: trusted
    target: "@lab"
    machines:
      b-1: {target: "@lab"}
      b-2: {}
  c:
    target: "@lab"
`)
	m := compile(t, src)
	f := incusx.NewFake()
	for _, name := range []string{"m1", "m2", "m3"} {
		f.AddClusterMember(name)
	}
	f.AddClusterGroup("lab", "m2", "m3")
	applyOn(t, f, m)
	out := string(importFrom(t, f, Options{}).YAML())
	for _, want := range []string{
		"  a:\n    trust_level: admin\n    target: m1\n",
		"  b:\n    trust_level: trusted\n    target: m2\n",
		"  c:\n    trust_level: semi-trusted\n    target: m3\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("import lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "target:") != 3 {
		t.Errorf("machine-level targets written:\n%s", out)
	}
	if p := planOn(t, f, compile(t, []byte(out))); !p.Empty() {
		t.Fatalf("plan of the imported file is not empty:\n%s\n--- imported:\n%s", renderPlan(p), out)
	}
}
