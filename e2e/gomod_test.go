package e2e

import (
	"os/exec"
	"testing"
)

// TestGoModTidy: `go mod tidy` leaves go.mod and go.sum as they are (no
// missing requirement, none left over). It needs the go command and its
// module cache or proxy, as the build of the binary does.
func TestGoModTidy(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		skip(t, "the go command is not installed")
	}
	cmd := exec.Command("go", "mod", "tidy", "-diff")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("go mod tidy would change go.mod or go.sum (run it): %v\n%s", err, out)
	}
}
