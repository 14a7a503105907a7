package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anklume/anklume/examples"
)

// volumeCheck is one step of TestVolumeExamplesLive: a shell script run
// as root in domain/machine, and the output it must print ("" for any).
type volumeCheck struct {
	domain, machine, script, want string
}

// exampleVolumes lists, per example, the steps that prove its volumes
// work, and the files the host must then read under the base directory.
var exampleVolumes = map[string]struct {
	steps []volumeCheck
	host  map[string]string
}{
	"teacher-lab": {
		steps: []volumeCheck{
			{"teacher", "teacher-ws", "echo lesson > /shared/course/lesson.txt", ""},
			{"student-01", "s01-shell", "cat /shared/course/lesson.txt", "lesson\n"},
			{"student-03", "s03-web", "cat /shared/course/lesson.txt", "lesson\n"},
			{"student-02", "s02-shell", "(echo x >> /shared/course/lesson.txt) 2>&1 | grep -o 'Read-only file system'", "Read-only file system\n"},
		},
		host: map[string]string{"shares/course/lesson.txt": "lesson\n"},
	},
	"developer": {
		steps: []volumeCheck{
			{"dev", "dev-ws", "echo code > /shared/code/main.go; echo home > /home/dev/notes", ""},
			{"dev", "dev-db", "cat /shared/code/main.go; echo more >> /shared/code/main.go", "code\n"},
			{"dev", "dev-test", "cat /shared/code/main.go", "code\nmore\n"},
		},
		host: map[string]string{"shares/code/main.go": "code\nmore\n", "data/dev/dev-ws/home/notes": "home\n"},
	},
	"pro-workstation": {
		steps: []volumeCheck{
			{"pro", "pro-dev", "echo project > /srv/projects/readme", ""},
		},
		host: map[string]string{"data/pro/pro-dev/projects/readme": "project\n"},
	},
}

// TestVolumeExamplesLive applies teacher-lab, developer and
// pro-workstation on the real daemon (one after the other, VMs turned
// into containers since the CI host has no KVM, the local image, and the
// volume bases in a temporary directory): their shared volumes and
// persistent data work from the containers (writes in rw consumers, reads
// elsewhere, EROFS in ro consumers) and the host reads the files; then
// import rebuilds an infra.yml whose plan is `No changes.`.
func TestVolumeExamplesLive(t *testing.T) {
	needIncus(t)
	for _, ex := range []string{"teacher-lab", "developer", "pro-workstation"} {
		t.Run(ex, func(t *testing.T) {
			src, err := examples.Read(ex)
			if err != nil {
				t.Fatal(err)
			}
			name := importName(t)
			psot, domains := liveExample(string(src), name)
			base := t.TempDir()
			psot = strings.ReplaceAll(psot, "type: vm", "type: lxc")
			psot = strings.Replace(psot, "\nglobal:\n", "\nglobal:\n  shared_volumes_base: "+base+"/shares\n  persistent_data_base: "+base+"/data\n", 1)
			projects, networks := incusNames(t, "project"), incusNames(t, "network")
			for _, d := range domains {
				if projects[d] || networks["net-"+d] {
					t.Fatalf("project %q or network %q already exists on the daemon: another test uses the names of example %s", d, "net-"+d, ex)
				}
			}
			t.Cleanup(func() { cleanupDomains(domains) })
			dir := writePSOT(t, psot)
			out, errOut, code := unlocked(t, func() (string, string, int) {
				return anklume(t, dir, "apply", "--yes", "--no-nftables", "--no-provision")
			})
			if code != 0 {
				t.Fatalf("apply: exit %d\n%s\n%s\n--- infra.yml:\n%s", code, out, errOut, psot)
			}
			for _, s := range exampleVolumes[ex].steps {
				got := mustIn(t, s.domain, s.machine, false, s.script)
				if s.want != "" && got != s.want {
					t.Errorf("%s/%s: %s: got %q, want %q", s.domain, s.machine, s.script, got, s.want)
				}
			}
			for rel, want := range exampleVolumes[ex].host {
				if b, err := os.ReadFile(filepath.Join(base, rel)); err != nil || string(b) != want {
					t.Errorf("host reads %s: %q, %v; want %q", rel, b, err, want)
				}
			}
			out, errOut, code = anklume(t, dir, "import", "--infra", name, "--only-anklume", "-o", "imported.yml")
			if code != 0 {
				t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
			}
			imported, err := os.ReadFile(filepath.Join(dir, "imported.yml"))
			if err != nil {
				t.Fatal(err)
			}
			out, errOut, code = anklume(t, dir, "-f", "imported.yml", "plan", "--detailed-exitcode")
			if code != 0 || !strings.Contains(out, "No changes.") {
				t.Fatalf("plan of the imported file: exit %d\n%s\n%s\n--- imported:\n%s", code, out, errOut, imported)
			}
		})
	}
}
