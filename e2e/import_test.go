package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/anklume/anklume/examples"
)

// importName returns a unique "im-<hex>" name for a live import test.
func importName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "im-" + hex.EncodeToString(b)
}

// domainLine matches a domain name key inside the domains block.
var domainLine = regexp.MustCompile(`^  ([a-z0-9][a-z0-9-]*):\s*$`)

// liveExample rewrites example src for the live daemon: project_name
// becomes name, zone_base 100 becomes 30 (subnets 10.40–10.80, away from
// the other live tests) and every domain gets egress: false (no NAT). It
// returns the PSOT and its domain names.
func liveExample(src, name string) (string, []string) {
	var out, domains []string
	in := false
	for _, line := range strings.Split(src, "\n") {
		switch {
		case strings.HasPrefix(line, "project_name:"):
			line = "project_name: " + name
		case strings.TrimSpace(line) == "zone_base: 100":
			line = strings.Replace(line, "100", "30", 1)
		}
		if line != "" && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "#") {
			in = line == "domains:"
		}
		out = append(out, line)
		if m := domainLine.FindStringSubmatch(line); in && m != nil {
			domains = append(domains, m[1])
			out = append(out, "    egress: false")
		}
	}
	return strings.Join(out, "\n"), domains
}

// incusNames lists the names of `incus <kind> list` (projects, networks).
func incusNames(t *testing.T, kind string) map[string]bool {
	t.Helper()
	out := mustRun(t, "", "incus", kind, "list", "-f", "csv", "-c", "n")
	names := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if n, _, _ := strings.Cut(strings.TrimSpace(l), ","); n != "" {
			names[strings.TrimSuffix(n, " (current)")] = true
		}
	}
	return names
}

// TestImportRoundTripLive is §16 #68 on the real daemon for the
// container-only examples, run one after the other: apply, import
// (--infra, --only-anklume), validate, and plan --detailed-exitcode
// exits 0.
func TestImportRoundTripLive(t *testing.T) {
	needIncus(t)
	for _, ex := range []string{"teacher-lab", "sys-print", "shared-services"} {
		t.Run(ex, func(t *testing.T) {
			src, err := examples.Read(ex)
			if err != nil {
				t.Fatal(err)
			}
			name := importName(t)
			psot, domains := liveExample(string(src), name)
			projects, networks := incusNames(t, "project"), incusNames(t, "network")
			for _, d := range domains {
				if projects[d] || networks["net-"+d] {
					t.Fatalf("project %q or network %q already exists on the daemon: another test uses the names of example %s; run this test alone", d, "net-"+d, ex)
				}
			}
			t.Cleanup(func() { cleanupDomains(domains) })
			dir := writePSOT(t, psot)
			if out, errOut, code := anklume(t, dir, "apply", "--yes", "--no-nftables", "--no-provision"); code != 0 {
				t.Fatalf("apply: exit %d\n%s\n%s\n--- infra.yml:\n%s", code, out, errOut, psot)
			}
			out, errOut, code := anklume(t, dir, "import", "--infra", name, "--only-anklume", "-o", "imported.yml")
			if code != 0 {
				t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
			}
			imported, err := os.ReadFile(filepath.Join(dir, "imported.yml"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(imported), "\nproject_name: "+name+"\n") {
				t.Errorf("imported file:\n%s", imported)
			}
			if out, errOut, code := anklume(t, dir, "-f", "imported.yml", "validate"); code != 0 {
				t.Fatalf("validate: exit %d\n%s\n%s\n--- imported:\n%s", code, out, errOut, imported)
			}
			out, errOut, code = anklume(t, dir, "-f", "imported.yml", "plan", "--detailed-exitcode")
			if code != 0 || !strings.Contains(out, "No changes.") {
				t.Fatalf("plan of the imported file: exit %d\n%s\n%s\n--- imported:\n%s", code, out, errOut, imported)
			}
			// The import changed nothing, and refuses to overwrite.
			_, errOut, code = anklume(t, dir, "import", "--infra", name, "--only-anklume", "-o", "imported.yml")
			if code != 1 || errOut != "error: imported.yml exists; use --force or -o\n" {
				t.Errorf("second import: exit %d %q", code, errOut)
			}
		})
	}
}

// TestImportUnownedLive is §16 #69 on the real daemon: a project anklume
// does not own, with two containers, is imported as a semi-trusted
// domain, with the type of each instance and the IP that fits the new
// subnet (10.120.0.0/24); the other IP is dropped with a warning. The
// default project, named too, is skipped. The NICs are routed NICs of
// stopped instances: nothing touches the host network.
func TestImportUnownedLive(t *testing.T) {
	needIncus(t)
	p := importName(t)
	if incusNames(t, "project")[p] {
		t.Fatalf("project %q already exists", p)
	}
	t.Cleanup(func() { cleanupDomains([]string{p}) })
	mustRun(t, "", "incus", "project", "create", p, "-c", "features.images=false", "-c", "features.profiles=false")
	for _, c := range []struct{ name, ip string }{{"c1", "10.120.0.7"}, {"c2", "192.0.2.9"}} {
		mustRun(t, "", "incus", "create", testImage, c.name, "--project", p, "--no-profiles", "--storage", "default")
		mustRun(t, "", "incus", "config", "device", "add", c.name, "eth0", "nic", "nictype=routed",
			"ipv4.address="+c.ip, "--project", p)
	}
	dir := t.TempDir()
	out, errOut, code := anklume(t, dir, "import", "--project", p, "--project", "default", "-o", "-")
	if code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	want := "domains:\n  " + p + ":\n    trust_level: semi-trusted\n    machines:\n" +
		"      c1:\n        type: lxc\n        ip: 10.120.0.7\n      c2:\n        type: lxc\n"
	if !strings.HasSuffix(out, want) {
		t.Errorf("imported:\n%s\nwant the end:\n%s", out, want)
	}
	wantErr := "warning: skipping project \"default\": the name is reserved\n" +
		"warning: dropping ip 192.0.2.9 of machine \"c2\": it is outside the subnet 10.120.0.0/24 of domain \"" + p + "\"\n"
	if errOut != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, wantErr)
	}
	rewritePSOT(t, dir, out)
	if out, errOut, code := anklume(t, dir, "validate"); code != 0 {
		t.Errorf("validate: exit %d\n%s\n%s", code, out, errOut)
	}
}
