package tree

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// desired is a small plan input: managed files of every kind and framework
// files of every header form.
func desired() []File {
	return []File{
		{Path: "group_vars/all.yml", Content: []byte("project_name: p\n"), Class: Managed, Kind: YAML},
		{Path: "inventory/work.yml", Content: []byte("all:\n  children:\n"), Class: Managed, Kind: YAML},
		{Path: "host_vars/web.yml", Content: []byte("instance_name: web\n"), Class: Managed, Kind: YAML},
		{Path: "nftables/anklume-isolation.nft", Content: []byte("table inet anklume {\n}\n"), Class: Managed, Kind: NFT},
		{Path: "incus/preseed.yml", Content: []byte("networks: []\n"), Class: Managed, Kind: Preseed},
		{Path: ".anklume/infra.schema.json", Content: []byte("{\"type\": \"object\"}\n"), Class: Framework},
		{Path: "roles/base_system/files/motd", Content: []byte("hello\n"), Class: Framework},
		{Path: "roles/base_system/tasks/main.yml", Content: []byte("- name: x\n"), Class: Framework},
		{Path: "roles/base_system/templates/a.j2", Content: []byte("{{ x }}\n"), Class: Framework},
		{Path: "site.yml", Content: []byte("- hosts: all\n"), Class: Framework},
	}
}

// sync plans and applies files under base and returns the output.
func sync(t *testing.T, base string, files []File, force bool, opts Options) string {
	t.Helper()
	p, err := NewPlan(base, files, force)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	var out bytes.Buffer
	if err := p.Apply(&out, opts); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return out.String()
}

// snapshot records every file under base: bytes, mode, mtime and inode.
type fileState struct {
	data  string
	mode  fs.FileMode
	mtime time.Time
	ino   uint64
}

func snapshot(t *testing.T, base string) map[string]fileState {
	t.Helper()
	m := map[string]fileState{}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		st := fileState{mode: info.Mode(), mtime: info.ModTime(), ino: info.Sys().(*syscall.Stat_t).Ino}
		if d.Type()&fs.ModeSymlink != 0 {
			st.data, err = os.Readlink(p)
			if err != nil {
				return err
			}
		} else if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			st.data = string(b)
		}
		m[filepath.ToSlash(rel)] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameTree(t *testing.T, before, after map[string]fileState) {
	t.Helper()
	if len(before) != len(after) {
		t.Errorf("tree has %d entries, had %d", len(after), len(before))
	}
	for p, b := range before {
		a, ok := after[p]
		if !ok {
			t.Errorf("%s: gone", p)
			continue
		}
		if a.mode.IsRegular() && (a != b) {
			t.Errorf("%s: changed (bytes, mode, mtime or inode)", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: new entry", p)
		}
	}
}

// TestSyncTree covers §16 items 34 and 35: the tree is produced with 0755
// directories, 0644 files and headers; a second run changes nothing.
func TestSyncTree(t *testing.T) {
	base := t.TempDir()
	out := sync(t, base, desired(), false, Options{})
	want := `created: group_vars/all.yml
created: inventory/work.yml
created: host_vars/web.yml
created: nftables/anklume-isolation.nft
created: incus/preseed.yml
created: .anklume/infra.schema.json
created: roles/base_system/files/motd
created: roles/base_system/tasks/main.yml
created: roles/base_system/templates/a.j2
created: site.yml
sync: 10 created, 0 updated, 0 unchanged
`
	if out != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out, want)
	}
	snap := snapshot(t, base)
	for p, st := range snap {
		switch {
		case st.mode.IsDir() && p != ".":
			if st.mode.Perm() != 0o755 {
				t.Errorf("%s: mode %v, want 0755", p, st.mode.Perm())
			}
		case st.mode.IsRegular():
			if st.mode.Perm() != 0o644 {
				t.Errorf("%s: mode %v, want 0644", p, st.mode.Perm())
			}
		}
	}
	for _, f := range desired() {
		if _, rf := roleFile(f.Path); f.Class == Framework && !rf && !HasHeader(f.Path, []byte(snap[f.Path].data)) {
			t.Errorf("%s: no header: %q", f.Path, snap[f.Path].data)
		}
	}
	if got := snap["roles/base_system/files/motd"].data; got != "hello\n" {
		t.Errorf("role file got a header: %q", got)
	}
	time.Sleep(10 * time.Millisecond)
	out = sync(t, base, desired(), false, Options{})
	if out != "sync: 0 created, 0 updated, 10 unchanged\n" {
		t.Errorf("second run output: %q", out)
	}
	sameTree(t, snap, snapshot(t, base))
}

// TestPlanFailsWritesNothing covers §16 item 39 and §6.1 step 2: one
// unclosed BEGIN (and one refused framework file) make the plan fail with
// every error, and no file, even of the other paths, is written.
func TestPlanFailsWritesNothing(t *testing.T) {
	base := t.TempDir()
	sync(t, base, desired(), false, Options{})
	mustWrite(t, base, "host_vars/web.yml", "---\n"+Begin+"\nx: 1\n")
	mustWrite(t, base, "site.yml", "- hosts: mine\n")
	before := snapshot(t, base)
	files := desired()
	for i := range files {
		files[i].Content = append([]byte("changed: true\n"), files[i].Content...)
	}
	_, err := NewPlan(base, files, false)
	if err == nil {
		t.Fatal("no error")
	}
	want := "host_vars/web.yml: managed section is not closed (BEGIN at line 2, no END after it)\n" +
		"refusing to overwrite site.yml: not generated by anklume"
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
	var te *Error
	if !errors.As(err, &te) || te.Path != "host_vars/web.yml" {
		t.Errorf("errors.As: %#v", te)
	}
	sameTree(t, before, snapshot(t, base))
}

// TestFramework covers §16 item 79: refusal with its hint, --force with
// the .bak copy, and the owner, group and mode of a replaced file kept.
func TestFramework(t *testing.T) {
	base := t.TempDir()
	files := []File{{Path: "site.yml", Content: []byte("- hosts: all\n"), Class: Framework}}
	mustWrite(t, base, "site.yml", "# my own\n")
	full := filepath.Join(base, "site.yml")
	if err := os.Chmod(full, 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(full, 1234, 5678); err != nil {
			t.Fatal(err)
		}
	}
	_, err := NewPlan(base, files, false)
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if te.Msg != "refusing to overwrite site.yml: not generated by anklume" ||
		te.Hint != "move it away, or pass --force to replace it; the old file is then kept as site.yml.bak" {
		t.Errorf("got %q / %q", te.Msg, te.Hint)
	}
	mustWrite(t, base, "site.yml.bak", "older bak\n")
	if err := os.Chmod(full, 0o600); err != nil {
		t.Fatal(err)
	}
	out := sync(t, base, files, true, Options{})
	if out != "saved: site.yml.bak\nupdated: site.yml\nsync: 0 created, 1 updated, 0 unchanged\n" {
		t.Errorf("output %q", out)
	}
	snap := snapshot(t, base)
	if snap["site.yml.bak"].data != "# my own\n" {
		t.Errorf(".bak holds %q", snap["site.yml.bak"].data)
	}
	if snap["site.yml"].data != Header+"\n- hosts: all\n" {
		t.Errorf("site.yml holds %q", snap["site.yml"].data)
	}
	info, err := os.Stat(full)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	if st := info.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && (st.Uid != 1234 || st.Gid != 5678) {
		t.Errorf("owner %d:%d, want 1234:5678", st.Uid, st.Gid)
	}
	// Now generated: a plain second run updates nothing and needs no force.
	if out := sync(t, base, files, false, Options{}); out != "sync: 0 created, 0 updated, 1 unchanged\n" {
		t.Errorf("second run: %q", out)
	}
}

// TestRoleFiles: a file under roles/*/files/ counts as generated when its
// role's tasks/main.yml carries the header (§6.2).
func TestRoleFiles(t *testing.T) {
	files := []File{{Path: "roles/r/files/f.sh", Content: []byte("new\n"), Class: Framework}}
	tests := []struct {
		name, tasks string
		ok          bool
	}{
		{"tasks with header", Header + "\n- x\n", true},
		{"tasks without header", "- x\n", false},
		{"no tasks", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			mustWrite(t, base, "roles/r/files/f.sh", "old\n")
			if tt.tasks != "" {
				mustWrite(t, base, "roles/r/tasks/main.yml", tt.tasks)
			}
			_, err := NewPlan(base, files, false)
			if (err == nil) != tt.ok {
				t.Errorf("error %v, want ok=%v", err, tt.ok)
			}
			if err != nil && err.Error() != "refusing to overwrite roles/r/files/f.sh: not generated by anklume" {
				t.Errorf("error %v", err)
			}
		})
	}
}

// TestWriteFailure covers §16 item 40: a failing write leaves the old file
// intact and no `.tmp-` file behind.
func TestWriteFailure(t *testing.T) {
	files := []File{{Path: "group_vars/all.yml", Content: []byte("a: 2\n"), Class: Managed, Kind: YAML}}
	t.Run("read-only directory", func(t *testing.T) {
		base := t.TempDir()
		sync(t, base, []File{{Path: "group_vars/all.yml", Content: []byte("a: 1\n"), Class: Managed, Kind: YAML}}, false, Options{})
		immutable(t, filepath.Join(base, "group_vars"))
		before := snapshot(t, base)
		p, err := NewPlan(base, files, false)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := p.Apply(&out, Options{}); err == nil || !strings.HasPrefix(err.Error(), "writing group_vars/all.yml: ") {
			t.Fatalf("error %v", err)
		}
		sameTree(t, before, snapshot(t, base))
	})
	t.Run("one directory of many read-only", func(t *testing.T) {
		// The files already staged in the writable directories when
		// the read-only one fails are all removed, and the error names
		// the first file that could not be written.
		base := t.TempDir()
		gen := func(v int) []File {
			var fs []File
			for _, d := range []string{"a", "b", "c", "d"} {
				for i := range 10 {
					fs = append(fs, File{Path: fmt.Sprintf("host_vars/%s/f%d.yml", d, i),
						Content: fmt.Appendf(nil, "v: %d\n", v), Class: Managed, Kind: YAML})
				}
			}
			return fs
		}
		sync(t, base, gen(1), false, Options{})
		immutable(t, filepath.Join(base, "host_vars", "c"))
		before := snapshot(t, base)
		p, err := NewPlan(base, gen(2), false)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := p.Apply(&out, Options{}); err == nil || !strings.HasPrefix(err.Error(), "writing host_vars/c/f0.yml: ") {
			t.Fatalf("error %v", err)
		}
		sameTree(t, before, snapshot(t, base))
	})
	t.Run("failure before rename", func(t *testing.T) {
		base := t.TempDir()
		sync(t, base, []File{{Path: "group_vars/all.yml", Content: []byte("a: 1\n"), Class: Managed, Kind: YAML}}, false, Options{})
		before := snapshot(t, base)
		p, err := NewPlan(base, files, false)
		if err != nil {
			t.Fatal(err)
		}
		var sawTmp string
		p.beforeRename = func(tmp string) error {
			sawTmp = filepath.Base(tmp)
			return errors.New("injected")
		}
		var out bytes.Buffer
		if err := p.Apply(&out, Options{}); err == nil || err.Error() != "writing group_vars/all.yml: injected" {
			t.Fatalf("error %v", err)
		}
		if !strings.HasPrefix(sawTmp, ".all.yml.tmp-") {
			t.Errorf("temporary file named %q", sawTmp)
		}
		sameTree(t, before, snapshot(t, base))
	})
	t.Run("parent is a file", func(t *testing.T) {
		base := t.TempDir()
		mustWrite(t, base, "group_vars", "not a dir\n")
		if _, err := NewPlan(base, files, false); err == nil || !strings.HasPrefix(err.Error(), "reading group_vars/all.yml: ") {
			t.Errorf("error %v", err)
		}
	})
}

// immutable makes dir refuse new entries until the test ends: mode 0555,
// or for root, who ignores the mode bits, chattr +i.
func immutable(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
		return
	}
	if err := exec.Command("chattr", "+i", dir).Run(); err != nil {
		if os.Getenv("ANKLUME_E2E_REQUIRE") != "" {
			t.Fatalf("chattr +i unavailable here: %v (and ANKLUME_E2E_REQUIRE is set)", err)
		}
		t.Skipf("chattr +i unavailable here: %v", err)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", dir).Run() })
}

// TestDryRunAndDiff covers §16 item 41.
func TestDryRunAndDiff(t *testing.T) {
	base := t.TempDir()
	files := []File{
		{Path: "group_vars/all.yml", Content: []byte("a: 1\n"), Class: Managed, Kind: YAML},
		{Path: "site.yml", Content: []byte("- hosts: all\n"), Class: Framework},
	}
	out := sync(t, base, files, false, Options{DryRun: true, Diff: true})
	want := `[dry-run] would create: group_vars/all.yml
--- /dev/null
+++ b/group_vars/all.yml
@@ -0,0 +1,7 @@
+---
+` + Begin + `
+` + Notice + `
+a: 1
+` + End + `
+
+# Your custom variables below:
[dry-run] would create: site.yml
--- /dev/null
+++ b/site.yml
@@ -0,0 +1,2 @@
+` + Header + `
+- hosts: all
[dry-run] sync: 2 to create, 0 to update, 0 unchanged
`
	if out != want {
		t.Errorf("dry-run output:\n%s\nwant:\n%s", out, want)
	}
	if entries, _ := os.ReadDir(base); len(entries) != 0 {
		t.Errorf("dry-run wrote %d entries", len(entries))
	}

	sync(t, base, files, false, Options{})
	mustWrite(t, base, "group_vars/all.yml", "---\n"+Begin+"\n"+Notice+"\na: 0\n"+End+"\n\n# Your custom variables below:\nmine: 1\n")
	files[0].Content = []byte("a: 1\n")
	before := snapshot(t, base)
	out = sync(t, base, files, false, Options{DryRun: true})
	if out != "[dry-run] would update: group_vars/all.yml\n[dry-run] sync: 0 to create, 1 to update, 1 unchanged\n" {
		t.Errorf("dry-run update: %q", out)
	}
	sameTree(t, before, snapshot(t, base))
	out = sync(t, base, files, false, Options{Diff: true})
	want = `updated: group_vars/all.yml
--- a/group_vars/all.yml
+++ b/group_vars/all.yml
@@ -1,7 +1,7 @@
 ---
 ` + Begin + `
 ` + Notice + `
-a: 0
+a: 1
 ` + End + `
 
 # Your custom variables below:
sync: 0 created, 1 updated, 1 unchanged
`
	if out != want {
		t.Errorf("diff output:\n%s\nwant:\n%s", out, want)
	}
}

func TestUnifiedDiff(t *testing.T) {
	old := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n"
	new := "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n11\n12"
	want := `--- a/f
+++ b/f
@@ -2,7 +2,7 @@
 2
 3
 4
-5
+five
 6
 7
 8
@@ -9,4 +9,4 @@
 9
 10
 11
-12
+12
\ No newline at end of file
`
	if got := string(UnifiedDiff("f", []byte(old), false, []byte(new))); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if got := UnifiedDiff("f", []byte(old), false, []byte(old)); got != nil {
		t.Errorf("equal texts: %q", got)
	}
}

func TestPlanPaths(t *testing.T) {
	for _, p := range []string{"", "/etc/x", "../x", "a/../b", "a//b", "a\\b", "./a"} {
		if _, err := NewPlan(t.TempDir(), []File{{Path: p, Class: Framework}}, false); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
	dup := []File{{Path: "a.yml", Class: Framework}, {Path: "a.yml", Class: Framework}}
	if _, err := NewPlan(t.TempDir(), dup, false); err == nil {
		t.Errorf("duplicate path accepted")
	}
}

func mustWrite(t *testing.T, base, p, data string) {
	t.Helper()
	full := filepath.Join(base, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBriefKeepOld: Brief prints counts per kind instead of one line per
// file; KeepOld copies every replaced file to .bak (not created ones, not
// unchanged ones) and says so, and a dry run only says it would.
func TestBriefKeepOld(t *testing.T) {
	base := t.TempDir()
	out := sync(t, base, desired(), false, Options{Brief: true, KeepOld: true})
	want := "changed: .anklume 1, group_vars 1, host_vars 1, incus 1, inventory 1, nftables 1, roles 3, site.yml 1 (-v lists the files)\n" +
		"sync: 10 created, 0 updated, 0 unchanged\n"
	if out != want {
		t.Errorf("first run:\n%s\nwant:\n%s", out, want)
	}
	snap := snapshot(t, base)
	for p := range snap {
		if strings.HasSuffix(p, ".bak") {
			t.Errorf("a created file got a .bak: %s", p)
		}
	}
	files := desired()
	files[2].Content = []byte("instance_name: web2\n") // host_vars/web.yml
	old := snap["host_vars/web.yml"].data
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"dry run", Options{DryRun: true, KeepOld: true},
			"[dry-run] would keep the old version: host_vars/web.yml -> host_vars/web.yml.bak\n" +
				"[dry-run] would update: host_vars/web.yml\n" +
				"[dry-run] sync: 0 to create, 1 to update, 9 unchanged\n"},
		{"brief", Options{Brief: true, KeepOld: true},
			"kept the old version: host_vars/web.yml -> host_vars/web.yml.bak\n" +
				"changed: host_vars 1 (-v lists the files)\n" +
				"sync: 0 created, 1 updated, 9 unchanged\n"},
	} {
		if got := sync(t, base, files, false, tc.opts); got != tc.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.name, got, tc.want)
		}
	}
	after := snapshot(t, base)
	if after["host_vars/web.yml.bak"].data != old {
		t.Errorf("host_vars/web.yml.bak = %q, want the old file %q", after["host_vars/web.yml.bak"].data, old)
	}
	if len(after) != len(snap)+1 {
		t.Errorf("%d files, want %d: only one .bak", len(after), len(snap)+1)
	}
	if out := sync(t, base, files, false, Options{Brief: true, KeepOld: true}); out != "sync: 0 created, 0 updated, 10 unchanged\n" {
		t.Errorf("unchanged run: %q", out)
	}
}
