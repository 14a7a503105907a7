package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// lifecyclePSOT is the live lifecycle scenario: domains lc-a and lc-b,
// subnets pinned to 10.210.90/91 (zone_base 200, trusted), egress off.
// lc-a2 is protected (ephemeral: false); everything else is not.
const lifecyclePSOT = `format_version: 1
project_name: %s
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: images:debian/13
domains:
  lc-a:
    trust_level: trusted
    subnet_id: 90
    egress: false
    ephemeral: true
    machines:
      lc-a1: {}
      lc-a2: {ephemeral: false}
  lc-b:
    trust_level: trusted
    subnet_id: 91
    egress: false
    ephemeral: true
    machines:
      lc-b1: {}
`

// cleanupLifecycle removes everything the scenario may have left.
func cleanupLifecycle() {
	cleanupDomains([]string{"lc-a", "lc-b"})
}

// anklumeNS runs the binary in a private network namespace (unshare -n),
// after the shell prelude pre; the Incus unix socket stays reachable, and
// nft acts on the throwaway namespace, never on the host's table. The
// script's own output (after the binary's) goes to stdout too.
func anklumeNS(t *testing.T, dir, pre, post string, args ...string) (string, string, int) {
	t.Helper()
	script := pre + "\n\"$@\"; rc=$?\n" + post + "\nexit $rc"
	cmd := exec.Command("unshare", append([]string{"-n", "sh", "-c", script, "sh", binary(t)}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ANKLUME_IMAGE_MAP=images:debian/13="+testImage,
		"ANKLUME_CONTEXT_DIR="+t.TempDir(), "ANKLUME_HOST_RESOURCES=cpu=10,memory=40GiB",
		"ANKLUME_SKIP_HOST_SUBNET_CHECK=1", "NO_COLOR=1")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running anklume %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// unlocked retries run while another run (another test on the shared
// daemon) holds the §9.7 lock, for up to three minutes.
func unlocked(t *testing.T, run func() (string, string, int)) (string, string, int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, errOut, code := run()
		if code == 0 || !strings.Contains(errOut, "holds the lock on this Incus server") || time.Now().After(deadline) {
			return out, errOut, code
		}
		time.Sleep(3 * time.Second)
	}
}

type statusDoc struct {
	FormatVersion int     `json:"format_version"`
	Infra         string  `json:"infra"`
	NFTables      *string `json:"nftables"`
	Domains       []struct {
		Name          string `json:"name"`
		ProjectExists bool   `json:"project_exists"`
		NetworkExists bool   `json:"network_exists"`
		Machines      []struct {
			Name  string  `json:"name"`
			State string  `json:"state"`
			IP    *string `json:"ip"`
			Drift bool    `json:"drift"`
		} `json:"machines"`
	} `json:"domains"`
}

func projectExists(name string) bool {
	return exec.Command("incus", "project", "show", name).Run() == nil
}

func networkExists(name string) bool {
	return exec.Command("incus", "network", "show", name).Run() == nil
}

// TestLifecycleLive runs status, destroy and flush against the real daemon
// (SPEC.md §12.1–§12.3, §16 #70, #71, #93): status in text and JSON with
// live IPs; destroy --limit lc-b removes only lc-b; flush without --force
// keeps the protected instance and an unowned instance placed in an owned
// project; flush --force removes the rest but still not the unowned
// instance, and deletes the table inet anklume of a throwaway network
// namespace.
func TestLifecycleLive(t *testing.T) {
	needIncus(t)
	needRoot(t, "unshare", "nft")
	cleanupLifecycle()
	t.Cleanup(cleanupLifecycle)
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	infra := "lc-" + hex.EncodeToString(rnd[:])
	dir := writePSOT(t, strings.Replace(lifecyclePSOT, "%s", infra, 1))
	if out, errOut, code := unlocked(t, func() (string, string, int) {
		return anklume(t, dir, "apply", "--yes", "--no-nftables", "--no-provision")
	}); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}

	// status --json, until every lease is taken.
	var doc statusDoc
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, errOut, code := anklume(t, dir, "status", "--json")
		if code != 0 {
			t.Fatalf("status --json: exit %d\n%s", code, errOut)
		}
		doc = statusDoc{}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		ok := true
		for _, d := range doc.Domains {
			for _, x := range d.Machines {
				ok = ok && x.IP != nil
			}
		}
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if doc.FormatVersion != 1 || doc.Infra != infra || len(doc.Domains) != 2 {
		t.Fatalf("status --json: %+v", doc)
	}
	for _, d := range doc.Domains {
		if !d.ProjectExists || !d.NetworkExists {
			t.Errorf("domain %s: project/network missing", d.Name)
		}
		for _, x := range d.Machines {
			if x.State != "Running" || x.Drift || x.IP == nil || !strings.HasPrefix(*x.IP, "10.210.9") {
				t.Errorf("machine %s: %s drift=%v ip=%v", x.Name, x.State, x.Drift, x.IP)
			}
		}
	}
	out, _, code := anklume(t, dir, "status")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || !strings.HasPrefix(lines[len(lines)-1], "nftables: ") || !strings.Contains(out, "Domain lc-a (trusted)\n") {
		t.Errorf("status: exit %d\n%s", code, out)
	}

	// destroy --limit lc-b.
	out, errOut, code := unlocked(t, func() (string, string, int) {
		return anklume(t, dir, "destroy", "--limit", "lc-b", "--yes")
	})
	if code != 0 || !strings.HasSuffix(out, "destroy: 3 destroyed, 0 skipped (protected), 0 failed\n") {
		t.Fatalf("destroy: exit %d\n%s\n%s", code, out, errOut)
	}
	if projectExists("lc-b") || networkExists("net-lc-b") || !projectExists("lc-a") || !networkExists("net-lc-a") {
		t.Errorf("destroy --limit lc-b: lc-b %v/%v, lc-a %v/%v", projectExists("lc-b"), networkExists("net-lc-b"),
			projectExists("lc-a"), networkExists("net-lc-a"))
	}

	// An unowned instance in an owned project.
	mustRun(t, "", "incus", "init", testImage, "lc-x", "--project", "lc-a")

	// flush without --force: the protected instance and lc-x survive.
	out, errOut, code = unlocked(t, func() (string, string, int) {
		return anklumeNS(t, dir, "", "", "flush", "--allow-production", "--yes")
	})
	if code != 0 || !strings.Contains(out, "! instance lc-a/lc-a2: skipped (protected; pass --force to delete it)\n") {
		t.Fatalf("flush: exit %d\n%s\n%s", code, out, errOut)
	}
	live := instances(t, "lc-a")
	if _, ok := live["lc-a1"]; ok || len(live) != 2 {
		t.Errorf("after flush: %v", slices.Collect(maps.Keys(live)))
	}

	// flush --force, with this infrastructure's table loaded in the
	// namespace: lc-a2 goes, lc-x stays (so the project and bridge stay).
	pre := `nft add table inet anklume '{ comment "anklume infra=` + infra + `"; }' || exit 99`
	post := `echo "tables after:"; nft list tables inet`
	out, errOut, code = unlocked(t, func() (string, string, int) {
		return anklumeNS(t, dir, pre, post, "flush", "--allow-production", "--yes", "--force")
	})
	if code != 0 {
		t.Fatalf("flush --force: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "removed: table inet anklume\n") || strings.Contains(out[strings.Index(out, "tables after:"):], "anklume") {
		t.Errorf("table not removed:\n%s", out)
	}
	if !strings.Contains(out, "flush: 1 destroyed, 3 skipped (protected), 0 failed\n") {
		t.Errorf("flush --force summary:\n%s\n%s", out, errOut)
	}
	live = instances(t, "lc-a")
	if _, ok := live["lc-x"]; !ok || len(live) != 1 {
		t.Errorf("after flush --force: %v", slices.Collect(maps.Keys(live)))
	}
}
