package tree

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// orphanFixture writes a tree with every orphan case of §6.9 (§16 item 44).
func orphanFixture(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	block := "---\n" + Begin + "\n" + Notice + "\n"
	for p, data := range map[string]string{
		"inventory/work.yml":        block + "x: 1\n" + End + "\n", // known domain
		"inventory/old.yml":         block + End + "\n",            // orphan
		"inventory/handmade.yml":    "all: {}\n",                   // no BEGIN: never reported
		"inventory/notes.txt":       block + End + "\n",            // not *.yml
		"group_vars/all.yml":        block + End + "\n",            // never an orphan
		"group_vars/work.yml":       block + End + "\n",
		"group_vars/gone.yml":       block + "domain_ephemeral: false\n" + End + "\n",
		"group_vars/gone2.yml":      block + "domain_ephemeral: true\ninstance_ephemeral: false\n" + End + "\n",
		"group_vars/broken.yml":     block + End + "\n- domain_ephemeral: false\n", // a list: not protected
		"host_vars/web.yml":         block + End + "\n",
		"host_vars/olddisabled.yml": block + End + "\n", // machine of a disabled domain: known
		"host_vars/db.yml":          block + "instance_ephemeral: false\n" + End + "\n",
		"host_vars/tmp.yml":         block + "instance_ephemeral: true\n" + End + "\n",
		"host_vars/list.yml":        "---\n- " + Begin + "\n- instance_ephemeral: false\n",
		"host_vars/str.yml":         block + "instance_ephemeral: 'false'\n" + End + "\n",
		"roles/x/tasks/old.yml":     block + End + "\n",
	} {
		mustWrite(t, base, p, data)
	}
	return base
}

// TestOrphans covers §16 item 44: what is an orphan, protection, and the
// --clean-orphans and --dry-run behaviour.
func TestOrphans(t *testing.T) {
	domains := []string{"work", "disabled"}
	machines := []string{"web", "olddisabled"}
	wantOrphans := []Orphan{
		{Path: "inventory/old.yml"},
		{Path: "group_vars/broken.yml"},
		{Path: "group_vars/gone.yml", Protected: true},
		{Path: "group_vars/gone2.yml"},
		{Path: "host_vars/db.yml", Protected: true},
		{Path: "host_vars/str.yml"},
		{Path: "host_vars/tmp.yml"},
	}
	report := `orphan: inventory/old.yml
orphan: group_vars/broken.yml
orphan (protected, ephemeral=false): group_vars/gone.yml; remove it by hand
orphan: group_vars/gone2.yml
orphan (protected, ephemeral=false): host_vars/db.yml; remove it by hand
orphan: host_vars/str.yml
orphan: host_vars/tmp.yml
`
	tests := []struct {
		name          string
		clean, dryRun bool
		want          string
		deleted       []string
	}{
		{"report", false, false, report, nil},
		{"report dry-run", false, true, report, nil},
		{"clean dry-run", true, true, `orphan: inventory/old.yml
[dry-run] would delete: inventory/old.yml
orphan: group_vars/broken.yml
[dry-run] would delete: group_vars/broken.yml
orphan (protected, ephemeral=false): group_vars/gone.yml; remove it by hand
kept (protected): group_vars/gone.yml
orphan: group_vars/gone2.yml
[dry-run] would delete: group_vars/gone2.yml
orphan (protected, ephemeral=false): host_vars/db.yml; remove it by hand
kept (protected): host_vars/db.yml
orphan: host_vars/str.yml
[dry-run] would delete: host_vars/str.yml
orphan: host_vars/tmp.yml
[dry-run] would delete: host_vars/tmp.yml
`, nil},
		{"clean", true, false, `orphan: inventory/old.yml
deleted: inventory/old.yml
orphan: group_vars/broken.yml
deleted: group_vars/broken.yml
orphan (protected, ephemeral=false): group_vars/gone.yml; remove it by hand
kept (protected): group_vars/gone.yml
orphan: group_vars/gone2.yml
deleted: group_vars/gone2.yml
orphan (protected, ephemeral=false): host_vars/db.yml; remove it by hand
kept (protected): host_vars/db.yml
orphan: host_vars/str.yml
deleted: host_vars/str.yml
orphan: host_vars/tmp.yml
deleted: host_vars/tmp.yml
`, []string{"inventory/old.yml", "group_vars/broken.yml", "group_vars/gone2.yml", "host_vars/str.yml", "host_vars/tmp.yml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := orphanFixture(t)
			before := snapshot(t, base)
			got, err := FindOrphans(base, domains, machines)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, wantOrphans) {
				t.Fatalf("orphans:\n%v\nwant\n%v", got, wantOrphans)
			}
			var out bytes.Buffer
			if err := ReportOrphans(&out, base, got, tt.clean, tt.dryRun); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), tt.want)
			}
			for _, p := range tt.deleted {
				if _, err := os.Stat(filepath.Join(base, p)); !os.IsNotExist(err) {
					t.Errorf("%s not deleted", p)
				}
				delete(before, p)
			}
			sameTree(t, before, snapshot(t, base))
		})
	}
}

// TestNoOrphansAfterSync: orphan detection right after a sync reports none
// (§16 item 44), and a missing directory is no error.
func TestNoOrphansAfterSync(t *testing.T) {
	base := t.TempDir()
	if got, err := FindOrphans(base, nil, nil); err != nil || len(got) != 0 {
		t.Fatalf("empty base: %v, %v", got, err)
	}
	sync(t, base, desired(), false, Options{})
	got, err := FindOrphans(base, []string{"work"}, []string{"web"})
	if err != nil || len(got) != 0 {
		t.Errorf("after sync: %v, %v", got, err)
	}
}

// TestOrphanProtectionAsAnsibleReads: --clean-orphans reads protection the
// way Ansible reads the file (duplicate keys accepted, the last one wins,
// YAML 1.1 booleans) and from the managed block itself, and keeps any file
// whose protection it cannot read. Before, a user's key repeated below the
// block made yaml.v3 refuse the file and the protected orphan was deleted.
func TestOrphanProtectionAsAnsibleReads(t *testing.T) {
	block := func(body string) string {
		return "---\n" + Begin + "\n" + Notice + "\n" + body + End + "\n\n# Your custom variables below:\n"
	}
	tests := []struct {
		name, data string
		kept       bool
		line       string // the report line, without the path
	}{
		{"duplicate user key below", block("instance_ephemeral: false\n") + "note: a\nnote: b\n", true, "orphan (protected, ephemeral=false)"},
		{"duplicate of the protected key", block("instance_ephemeral: false\n") + "instance_ephemeral: false\n", true, "orphan (protected, ephemeral=false)"},
		{"user sets false below, last wins", block("instance_ephemeral: true\n") + "instance_ephemeral: false\n", true, "orphan (protected, ephemeral=false)"},
		{"block false, user true below", block("instance_ephemeral: false\n") + "instance_ephemeral: true\n", true, "orphan (protected, ephemeral=false)"},
		{"yaml 1.1 no", block("instance_ephemeral: no\n"), true, "orphan (protected, ephemeral=false)"},
		{"explicit bool tag", block("domain_ephemeral: !!bool off\n"), true, "orphan (protected, ephemeral=false)"},
		{"user text not yaml", block("instance_ephemeral: true\n") + "x: [\n", true, "orphan (kept, not readable as YAML"},
		{"unknown alias", block("instance_ephemeral: true\n") + "x: *nope\n", true, "orphan (kept, not readable as YAML"},
		{"ephemeral", block("instance_ephemeral: true\n") + "note: a\nnote: b\n", false, "orphan:"},
		{"quoted false is a string", block("instance_ephemeral: 'false'\n"), false, "orphan:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			mustWrite(t, base, "host_vars/gone.yml", tt.data)
			got, err := FindOrphans(base, nil, nil)
			if err != nil || len(got) != 1 {
				t.Fatalf("orphans: %v, %v", got, err)
			}
			var out bytes.Buffer
			if err := ReportOrphans(&out, base, got, true, false); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out.String(), tt.line) {
				t.Errorf("report %q, want it to start with %q", out.String(), tt.line)
			}
			_, err = os.Stat(filepath.Join(base, "host_vars/gone.yml"))
			if kept := err == nil; kept != tt.kept {
				t.Errorf("kept = %v, want %v; report:\n%s", kept, tt.kept, out.String())
			}
		})
	}
}
