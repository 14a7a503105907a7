package tree

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestUpgrade covers §16 #82 at the tree level: a changed framework file is
// saved to .bak before it is replaced, an unchanged one is not touched, a
// new one is created, and managed files are not part of an upgrade.
func TestUpgrade(t *testing.T) {
	base := t.TempDir()
	files := desired()
	sync(t, base, files, false, Options{})
	managed := filepath.Join(base, "host_vars", "web.yml")
	if err := os.WriteFile(managed, []byte("user text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	oldSite, err := os.ReadFile(filepath.Join(base, "site.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(base, "roles/base_system/templates/a.j2")); err != nil {
		t.Fatal(err)
	}
	fw := FrameworkFiles(files)
	if len(fw) != 5 {
		t.Fatalf("FrameworkFiles kept %d files, want 5", len(fw))
	}
	for i := range fw {
		if fw[i].Path == "site.yml" {
			fw[i].Content = []byte("- hosts: localhost\n")
		}
	}
	before := snapshot(t, base)
	p, err := NewPlan(base, fw, false)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := p.Upgrade(&out); err != nil {
		t.Fatal(err)
	}
	want := "created: roles/base_system/templates/a.j2\n" +
		"upgraded: site.yml (previous version saved as site.yml.bak)\n" +
		"upgrade: 1 created, 1 upgraded, 3 unchanged\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	bak, err := os.ReadFile(filepath.Join(base, "site.yml.bak"))
	if err != nil || !bytes.Equal(bak, oldSite) {
		t.Errorf("site.yml.bak = %q, %v; want the previous site.yml %q", bak, err, oldSite)
	}
	after := snapshot(t, base)
	for _, p := range []string{"host_vars/web.yml", ".anklume/infra.schema.json", "roles/base_system/files/motd"} {
		if before[p] != after[p] {
			t.Errorf("%s was touched", p)
		}
	}
}
