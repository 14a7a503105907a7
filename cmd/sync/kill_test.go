package sync_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/root"
	"github.com/anklume/anklume/cmd/sync"
	"github.com/anklume/anklume/internal/hostenv"
	"github.com/anklume/anklume/schema"
)

// envChild makes the test binary run `anklume sync` (see TestMain).
const envChild = "ANKLUME_SYNC_TEST_CHILD"

// TestMain runs the real command when started as a child by
// TestKillDuringSync, so that the test kills a real process.
func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		f := root.NewFactory(cmdutil.BuildInfo{Version: "test"}, schema.JSON, schema.Part)
		os.Exit(int(root.Main(f, []string{"sync"})))
	}
	os.Exit(m.Run())
}

// tempFiles lists the temporary files sync names under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	re := regexp.MustCompile(`^\..+\.tmp-[0-9]+-[0-9a-f]+$`)
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && re.MatchString(d.Name()) {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKillDuringSync: a sync killed with SIGKILL after it staged its files
// and before any rename leaves every target at its old bytes and only its
// own temporary files; the next sync removes them, reports each, and
// writes the new generation.
func TestKillDuringSync(t *testing.T) {
	dir := setup(t, map[string]string{"infra.yml": psot})
	if r := runIn(t, dir, "sync"); r.code != 0 {
		t.Fatalf("first sync: %+v", r)
	}
	write(t, dir, "infra.yml", strings.Replace(psot, "project_name: demo", "project_name: demo2", 1))
	before := snapshot(t, dir)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), envChild+"=1", sync.EnvTestPause+"=staged",
		hostenv.EnvSkipSubnet+"=1", hostenv.EnvContextDir+"="+t.TempDir(), hostenv.EnvHostResources+"=cpu=10,memory=40GiB")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil || line != "sync paused: staged\n" {
		_ = cmd.Process.Kill()
		t.Fatalf("child said %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	left := tempFiles(t, dir)
	if len(left) == 0 {
		t.Fatal("the killed sync left no temporary file: the test did not stop it mid-write")
	}
	after := snapshot(t, dir)
	for p, st := range before {
		if p == "infra.yml" || !st.mode.IsRegular() {
			continue
		}
		if got := after[p]; got != st {
			t.Errorf("%s changed by the killed sync", p)
		}
	}

	r := runIn(t, dir, "sync")
	if r.code != 0 {
		t.Fatalf("re-sync: %+v", r)
	}
	for _, p := range left {
		if !strings.Contains(r.stdout, "removed: "+p+" (temporary file of an interrupted sync)\n") {
			t.Errorf("re-sync does not report %s:\n%s", p, r.stdout)
		}
	}
	if again := tempFiles(t, dir); len(again) != 0 {
		t.Errorf("temporary files left after the re-sync: %v", again)
	}
	if !strings.Contains(read(t, dir, "group_vars/all.yml"), "demo2") {
		t.Error("re-sync did not write the new generation")
	}
}
