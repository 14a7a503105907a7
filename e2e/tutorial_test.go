package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anklume/anklume/docs"
)

// cleanupTutorial removes what the tutorial creates, should a step fail
// before its destroy, and the host table its apply loaded (destroy leaves
// the isolation rules in place, as it should for a user).
func cleanupTutorial() {
	cleanupDomains([]string{"tuto-work", "tuto-perso"})
	dropHostTable(func(text string) bool { return strings.Contains(text, `anklume infra=tutorial"`) })
}

// TestTutorial runs docs/tutorial.md as a user would: in an empty
// directory it writes the files the tutorial shows and runs every `$`
// command, through sh, with the anklume binary first in PATH ("sudo " is
// dropped: the test runs as root). Each must exit 0 and print the output
// lines the tutorial shows (docs.Missing). images:debian/13 is mapped to
// the local test image, as in every live test.
func TestTutorial(t *testing.T) {
	needIncus(t)
	needRoot(t, "nft")
	steps, err := docs.ParseTutorial(docs.Tutorial)
	if err != nil {
		t.Fatal(err)
	}
	cleanupTutorial()
	t.Cleanup(cleanupTutorial)
	dir := t.TempDir()
	path := filepath.Dir(binary(t)) + string(os.PathListSeparator) + os.Getenv("PATH")
	env := append(os.Environ(), "PATH="+path, "ANKLUME_IMAGE_MAP=images:debian/13="+testImage,
		"ANKLUME_CONTEXT_DIR="+t.TempDir(), "ANKLUME_HOST_RESOURCES=cpu=10,memory=40GiB",
		"ANKLUME_SKIP_HOST_SUBNET_CHECK=1", "NO_COLOR=1")
	ran := 0
	for _, s := range steps {
		if s.File != "" {
			if err := os.WriteFile(filepath.Join(dir, s.File), []byte(s.Content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		cmd := exec.Command("sh", "-c", strings.TrimPrefix(s.Command, "sudo "))
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("tutorial.md:%d: %s: exit %d\n%s", s.Line, s.Command, ee.ExitCode(), out)
		} else if err != nil {
			t.Fatalf("tutorial.md:%d: %s: %v", s.Line, s.Command, err)
		}
		if m := docs.Missing(s.Output, string(out)); len(m) > 0 {
			t.Errorf("tutorial.md:%d: %s: the tutorial shows lines the command did not print:\n  %s\noutput:\n%s",
				s.Line, s.Command, strings.Join(m, "\n  "), out)
		}
		ran++
	}
	t.Logf("ran the tutorial's %d commands", ran)
}
