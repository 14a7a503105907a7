package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

// snapshotPSOT is the lifecycle scenario: one disposable domain sn-box on
// 10.250.93.0/24 (zone_base 200 + disposable offset 50, subnet_id 93),
// egress off, not protected; its machine sets snapshots_expiry so that
// the tests see that anklume's snapshots never take it (§16 #94).
const snapshotPSOT = `format_version: 1
project_name: %s
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: images:debian/13
domains:
  sn-box:
    trust_level: disposable
    subnet_id: 93
    egress: false
    ephemeral: true
    machines:
      sn-m1:
        snapshots_expiry: 2d
`

// cleanupSnapshot removes everything the scenario may have created.
func cleanupSnapshot() {
	out, _ := exec.Command("incus", "list", "--project", "sn-box", "-c", "n", "-f", "csv").Output()
	for _, n := range strings.Fields(string(out)) {
		_ = exec.Command("incus", "delete", "--force", "--project", "sn-box", n).Run()
	}
	out, _ = exec.Command("incus", "list", "--project", "default", "-c", "n", "-f", "csv").Output()
	for _, n := range strings.Fields(string(out)) {
		if strings.HasPrefix(n, "anklume-restore-") {
			_ = exec.Command("incus", "delete", "--force", "--project", "default", n).Run()
		}
	}
	// The project and the bridge may stay busy for a moment after the
	// last instance is gone: retry.
	for range 10 {
		_ = exec.Command("incus", "project", "delete", "sn-box").Run()
		_ = exec.Command("incus", "network", "delete", "net-sn-box").Run()
		if exec.Command("incus", "network", "show", "net-sn-box").Run() != nil {
			return
		}
		time.Sleep(time.Second)
	}
}

type snapLive struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func snapsLive(t *testing.T, project, instance string) map[string]snapLive {
	t.Helper()
	var list []snapLive
	query(t, "/1.0/instances/"+instance+"/snapshots?recursion=1&project="+project, &list)
	out := map[string]snapLive{}
	for _, s := range list {
		out[s.Name] = s
	}
	return out
}

func snapSuffix(t *testing.T) string {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// TestSnapshotDispGoldenBackupLive runs snapshot, disp, golden and backup against the real
// daemon: snapshot create with and without --expiry, list, restore and
// delete (§16 #94); disp exits with the command's status and leaves
// nothing behind (#71); golden create never expires and golden derive
// strips ownership and the static IP (#71); backup create writes 0600
// files and refuses to overwrite, and an age-encrypted backup restores
// with --identity into a running instance (#71).
func TestSnapshotDispGoldenBackupLive(t *testing.T) {
	needIncus(t)
	cleanupSnapshot()
	t.Cleanup(cleanupSnapshot)
	dir := t.TempDir()
	psot := strings.Replace(snapshotPSOT, "%s", "sn-"+snapSuffix(t), 1)
	rewritePSOT(t, dir, psot)
	run := func(args ...string) (string, string, int) { return anklume(t, dir, args...) }
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, code := run(args...)
		if code != 0 {
			t.Fatalf("anklume %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
		}
		return out
	}
	// Other tests apply on the same daemon: wait for their lock.
	for deadline := time.Now().Add(3 * time.Minute); ; {
		out, errOut, code := run("apply", "--yes", "--no-nftables", "--no-provision")
		if code == 0 {
			break
		}
		if !strings.Contains(errOut, "holds the lock") || time.Now().After(deadline) {
			t.Fatalf("apply: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		time.Sleep(2 * time.Second)
	}

	// §16 #94: --expiry 1d expires one day after it was taken; without
	// --expiry the snapshot never expires although the machine sets
	// snapshots_expiry: 2d.
	ok("snapshot", "create", "sn-m1", "--name", "e1", "--expiry", "1d")
	ok("snapshot", "create", "sn-box", "--name", "n1")
	snaps := snapsLive(t, "sn-box", "sn-m1")
	e1, n1 := snaps["e1"], snaps["n1"]
	if d := e1.ExpiresAt.Sub(e1.CreatedAt); d < 24*time.Hour-time.Minute || d > 24*time.Hour+time.Minute {
		t.Errorf("e1 expires %s after creation, want 24h", d)
	}
	if n1.ExpiresAt.Year() > 1 {
		t.Errorf("n1 expires at %s, want never", n1.ExpiresAt)
	}
	_, errOut, _ := run("snapshot", "create", "sn-m1", "--name", "n1")
	if !strings.Contains(errOut, `warning: instance sn-box/sn-m1 already has snapshot "n1"; skipped`) {
		t.Errorf("existing name: stderr %q", errOut)
	}
	out := ok("snapshot", "list", "sn-m1")
	if !strings.HasPrefix(out, "INSTANCE") || !strings.Contains(out, "never") ||
		!strings.Contains(out, e1.ExpiresAt.UTC().Format(time.RFC3339)) {
		t.Errorf("snapshot list:\n%s", out)
	}
	var doc struct {
		Snapshots []struct {
			Snapshot string  `json:"snapshot"`
			Expires  *string `json:"expires"`
		} `json:"snapshots"`
	}
	if err := json.Unmarshal([]byte(ok("snapshot", "list", "--json")), &doc); err != nil || len(doc.Snapshots) != 2 {
		t.Errorf("snapshot list --json: %v %+v", err, doc)
	}

	// Restore brings back a file written before the snapshot.
	mustRun(t, "", "incus", "exec", "--project", "sn-box", "sn-m1", "--", "sh", "-c", "echo before > /root/f")
	ok("snapshot", "create", "sn-m1", "--name", "r1")
	mustRun(t, "", "incus", "exec", "--project", "sn-box", "sn-m1", "--", "sh", "-c", "echo after > /root/f")
	ok("snapshot", "restore", "sn-m1", "--name", "r1")
	if got := mustRun(t, "", "incus", "exec", "--project", "sn-box", "sn-m1", "--", "cat", "/root/f"); strings.TrimSpace(got) != "before" {
		t.Errorf("after restore /root/f = %q, want before", got)
	}
	if instances(t, "sn-box")["sn-m1"].Status != "Running" {
		t.Errorf("sn-m1 is not running again after restore")
	}
	if _, errOut, code := run("snapshot", "restore", "sn-m1", "--name", "nope"); code != 1 ||
		!strings.Contains(errOut, `has no snapshot "nope"; available: e1, n1, r1`) {
		t.Errorf("restore of a missing snapshot: exit %d, stderr %q", code, errOut)
	}
	ok("snapshot", "delete", "sn-m1", "--name", "r1")
	ok("snapshot", "delete", "sn-m1", "--name", "r1") // absent: nothing to do
	if _, found := snapsLive(t, "sn-box", "sn-m1")["r1"]; found {
		t.Errorf("r1 still exists after delete")
	}

	// §16 #71: disp runs the command as an argument vector and exits
	// with its status; the ephemeral instance is gone.
	if _, errOut, code := run("disp", "--", "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("disp -- sh -c 'exit 3': exit %d, stderr %q", code, errOut)
	}
	if out, _, code := run("disp", "--", "echo", "a b", "c"); code != 0 || out != "a b c\n" {
		t.Errorf("disp -- echo: exit %d, stdout %q", code, out)
	}
	for name := range instances(t, "sn-box") {
		if strings.HasPrefix(name, "disp-") {
			t.Errorf("disposable instance %s left behind", name)
		}
	}

	// Golden: pristine never expires; derive strips ownership, the static
	// IP and the protection.
	ok("golden", "create", "sn-m1")
	if p := snapsLive(t, "sn-box", "sn-m1")["pristine"]; p.Name == "" || p.ExpiresAt.Year() > 1 {
		t.Errorf("pristine: %+v, want one that never expires", p)
	}
	if out := ok("golden", "list"); !strings.Contains(out, "sn-m1") {
		t.Errorf("golden list:\n%s", out)
	}
	_, errOut, code := run("golden", "derive", "sn-m1", "sn-copy")
	if code != 0 || !strings.Contains(errOut, "hint: add sn-copy to infra.yml to manage it") {
		t.Fatalf("golden derive: exit %d, stderr %q", code, errOut)
	}
	var cp struct {
		Config  map[string]string            `json:"config"`
		Devices map[string]map[string]string `json:"devices"`
	}
	query(t, "/1.0/instances/sn-copy?project=sn-box", &cp)
	for k := range cp.Config {
		if strings.HasPrefix(k, "user.anklume.") || k == "security.protection.delete" {
			t.Errorf("derived instance keeps %s", k)
		}
	}
	if _, found := cp.Devices["eth0"]; found {
		t.Errorf("derived instance keeps its eth0 override: %v", cp.Devices["eth0"])
	}

	// Backups: mode 0600, no overwrite, age encryption and restore.
	bdir := filepath.Join(dir, "bk")
	out = ok("backup", "create", "sn-m1", "--output", bdir)
	path := strings.TrimSpace(strings.TrimPrefix(out, "backup: "))
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 || !strings.HasSuffix(path, ".tar.gz") {
		t.Errorf("backup file %s: %v, %v", path, st, err)
	}
	if st, err := os.Stat(bdir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("backup dir: %v, %v", st, err)
	}
	taken := filepath.Join(dir, "taken")
	now := time.Now().UTC()
	for i := -1; i < 30; i++ { // every name the next run can pick
		name := "sn-m1-" + now.Add(time.Duration(i)*time.Second).Format("20060102-150405") + ".tar.gz"
		if err := os.MkdirAll(taken, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(taken, name), []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, errOut, code := run("backup", "create", "sn-m1", "--output", taken); code != 1 || !strings.Contains(errOut, "already exists; pass --force") {
		t.Errorf("backup over an existing file: exit %d, stderr %q", code, errOut)
	}

	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run("backup", "create", "sn-m1", "--output", bdir, "--recipient", "age1nonsense"); code != 1 ||
		!strings.Contains(errOut, `error: invalid recipient "age1nonsense"`) {
		t.Errorf("bad recipient: exit %d, stderr %q", code, errOut)
	}
	time.Sleep(time.Second) // a new file name
	out = ok("backup", "create", "sn-m1", "--output", bdir, "--recipient", id.Recipient().String())
	enc := strings.TrimSpace(strings.TrimPrefix(out, "backup: "))
	if st, err := os.Stat(enc); err != nil || st.Mode().Perm() != 0o600 || !strings.HasSuffix(enc, ".tar.gz.age") {
		t.Errorf("encrypted backup %s: %v, %v", enc, st, err)
	}
	if _, errOut, code := run("backup", "restore", enc, "--name", "sn-rest"); code != 1 ||
		!strings.Contains(errOut, "error: "+enc+" is encrypted; pass --identity FILE") {
		t.Errorf("restore without identity: exit %d, stderr %q", code, errOut)
	}
	ok("backup", "restore", enc, "--name", "sn-rest", "--identity", idFile)
	rest := instances(t, "sn-box")["sn-rest"]
	if rest.Status != "Running" {
		t.Errorf("restored instance status %q, want Running", rest.Status)
	}
	for k := range rest.Config {
		if strings.HasPrefix(k, "user.anklume.") {
			t.Errorf("restored copy under a new name keeps %s", k)
		}
	}
	if got := mustRun(t, "", "incus", "exec", "--project", "sn-box", "sn-rest", "--", "cat", "/root/f"); strings.TrimSpace(got) != "before" {
		t.Errorf("restored /root/f = %q, want before", got)
	}
	if _, errOut, code := run("backup", "restore", enc, "--name", "sn-rest", "--identity", idFile); code != 1 ||
		!strings.Contains(errOut, "instance sn-box/sn-rest already exists") {
		t.Errorf("restore onto an existing name: exit %d, stderr %q", code, errOut)
	}
}
