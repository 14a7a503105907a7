package tree

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnifiedDiffApplies checks that every diff of §6.8 is a valid unified
// diff: patch(1) turns the old text into the new one. Skipped without patch.
func TestUnifiedDiffApplies(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		if os.Getenv("ANKLUME_E2E_REQUIRE") != "" {
			t.Fatal("patch(1) is not installed (and ANKLUME_E2E_REQUIRE is set)")
		}
		t.Skip("patch(1) is not installed")
	}
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"x", "y", "z", "- a", "  b:", ""}
	for i := 0; i < 100; i++ {
		var a, b []string
		for j := r.IntN(30); j > 0; j-- {
			a = append(a, words[r.IntN(len(words))])
		}
		for _, l := range a {
			if r.IntN(4) > 0 {
				b = append(b, l)
			}
			if r.IntN(5) == 0 {
				b = append(b, "new")
			}
		}
		as, bs := strings.Join(a, "\n"), strings.Join(b, "\n")
		if r.IntN(2) == 0 {
			as += "\n"
		}
		if r.IntN(2) == 0 {
			bs += "\n"
		}
		if as == bs {
			continue
		}
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "f"), []byte(as), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "p"), UnifiedDiff("f", []byte(as), false, []byte(bs)), 0o644); err != nil {
			t.Fatal(err)
		}
		c := exec.Command("patch", "-s", "-p1", "-i", "p")
		c.Dir = d
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("patch: %v %s\nold %q\nnew %q", err, out, as, bs)
		}
		if got, _ := os.ReadFile(filepath.Join(d, "f")); string(got) != bs {
			t.Fatalf("patched %q, want %q", got, bs)
		}
	}
}
