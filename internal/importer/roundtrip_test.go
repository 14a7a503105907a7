package importer

import (
	"testing"

	"github.com/anklume/anklume/compiler/emit/nft"
	"github.com/anklume/anklume/examples"
	"github.com/anklume/anklume/internal/incusx"
)

// TestRoundTripExamples is §16 #68 on the fake Incus: for every example,
// apply, import (GET requests only), validate the imported file, and plan
// it: no changes. The nftables ruleset of the imported file is the
// original one (§11 "Round trip").
func TestRoundTripExamples(t *testing.T) {
	names := examples.Names()
	if len(names) == 0 {
		t.Fatal("no examples found")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			src, err := examples.Read(name)
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, src)
		})
	}
}

// roundTrip applies src on a new fake, imports it and checks the round
// trip; it returns the imported result.
func roundTrip(t *testing.T, src []byte) *Result {
	t.Helper()
	m := compile(t, src)
	f := incusx.NewFake()
	f.AddImageAlias("anklume-other")
	applyOn(t, f, m)
	res := importFrom(t, f, Options{})
	out := res.YAML()
	m2 := compile(t, out)
	if p := planOn(t, f, m2); !p.Empty() {
		t.Fatalf("plan of the imported file is not empty:\n%s\n--- imported:\n%s", renderPlan(p), out)
	}
	if m2.ProjectName != m.ProjectName {
		t.Errorf("project_name %q, want %q", m2.ProjectName, m.ProjectName)
	}
	want, got := nft.Render(m), nft.Render(m2)
	if string(got) != string(want) {
		t.Errorf("nftables ruleset differs after the round trip\n--- imported:\n%s\n--- got:\n%s\n--- want:\n%s", out, got, want)
	}
	return res
}
