package tree

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSymlinksRefused: sync never follows a symbolic link below the base
// directory. A linked directory or file anywhere in the tree is refused
// with a clear error before anything is written; outside the base nothing
// is touched. The base directory itself may be a link.
func TestSymlinksRefused(t *testing.T) {
	tests := []struct {
		name string
		link string // slash path of the link under base
		dir  bool   // the link points at a directory outside
		want string
	}{
		{"inventory dir", "inventory", true, "refusing to use inventory: it is a symbolic link"},
		{"nested role dir", "roles/base_system", true, "refusing to use roles/base_system: it is a symbolic link"},
		{"managed file", "host_vars/web.yml", false, "refusing to use host_vars/web.yml: it is a symbolic link"},
		{"framework file", "site.yml", false, "refusing to use site.yml: it is a symbolic link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, elsewhere := t.TempDir(), t.TempDir()
			mustWrite(t, elsewhere, "keep.txt", "outside\n")
			target := elsewhere
			if !tt.dir {
				target = filepath.Join(elsewhere, "keep.txt")
			}
			full := filepath.Join(base, filepath.FromSlash(tt.link))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			before, outside := snapshot(t, base), snapshot(t, elsewhere)
			_, err := NewPlan(base, desired(), false)
			var te *Error
			if !errors.As(err, &te) || !strings.HasPrefix(err.Error(), tt.want) || strings.Count(err.Error(), "symbolic link") != 1 {
				t.Fatalf("error %v, want one %q", err, tt.want)
			}
			sameTree(t, before, snapshot(t, base))
			sameTree(t, outside, snapshot(t, elsewhere))
		})
	}
	t.Run("base is a link", func(t *testing.T) {
		real := t.TempDir()
		base := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(real, base); err != nil {
			t.Fatal(err)
		}
		sync(t, base, desired(), false, Options{})
		if _, err := os.Stat(filepath.Join(real, "inventory/work.yml")); err != nil {
			t.Error(err)
		}
	})
}

// TestSymlinkRaceAfterPlan: a directory swapped for a link between the
// plan and the write (the window a check-then-write would leave) makes the
// write fail; nothing lands outside the base.
func TestSymlinkRaceAfterPlan(t *testing.T) {
	base, elsewhere := t.TempDir(), t.TempDir()
	p, err := NewPlan(base, desired(), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(base, "host_vars")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := p.Apply(&out, Options{}); err == nil || !strings.Contains(err.Error(), "refusing to use host_vars: it is a symbolic link") {
		t.Fatalf("error %v", err)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("written outside the base: %v", entries)
	}
	// Nothing renamed: no target exists, no temporary file is left.
	err = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Type()&os.ModeSymlink == 0 {
			t.Errorf("left %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOrphansNotThroughLinks: orphan search and --clean-orphans refuse a
// linked inventory/ instead of deleting files it points at.
func TestOrphansNotThroughLinks(t *testing.T) {
	base, elsewhere := t.TempDir(), t.TempDir()
	mustWrite(t, elsewhere, "old.yml", "---\n"+Begin+"\n"+End+"\n")
	if err := os.Symlink(elsewhere, filepath.Join(base, "inventory")); err != nil {
		t.Fatal(err)
	}
	if _, err := FindOrphans(base, nil, nil); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("error %v", err)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "old.yml")); err != nil {
		t.Error(err)
	}
}

// deadPid returns the pid of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestStaleTempRemoved: temporary files an interrupted sync left behind
// (its pid is gone, or an older version's name without a pid) are removed
// by the next sync, even when nothing else changes; a temporary file of a
// sync still running, and files of other names, are left alone.
func TestStaleTempRemoved(t *testing.T) {
	base := t.TempDir()
	sync(t, base, desired(), false, Options{})
	dead := strconv.Itoa(deadPid(t))
	stale := []string{
		"group_vars/.all.yml.tmp-" + dead + "-0a1b2c",
		"roles/base_system/files/.motd.tmp-123456789",
		".site.yml.tmp-" + dead + "-ff",
	}
	kept := []string{
		"group_vars/.all.yml.tmp-1-0a1b2c", // pid 1 is running
		"group_vars/.notes.tmp",
		"group_vars/all.yml.tmp-123",
	}
	for _, p := range append(append([]string{}, stale...), kept...) {
		mustWrite(t, base, p, "partial")
	}
	out := sync(t, base, desired(), false, Options{})
	for _, p := range stale {
		if _, err := os.Stat(filepath.Join(base, p)); !os.IsNotExist(err) {
			t.Errorf("%s not removed", p)
		}
		if !strings.Contains(out, "removed: "+p+" (temporary file of an interrupted sync)\n") {
			t.Errorf("output does not report %s:\n%s", p, out)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(filepath.Join(base, p)); err != nil {
			t.Errorf("%s removed", p)
		}
	}
	if !strings.HasSuffix(out, "sync: 0 created, 0 updated, 10 unchanged\n") {
		t.Errorf("output:\n%s", out)
	}
}

// TestFailedWriteKeepsOneGeneration: when a rename fails halfway, the files
// already renamed are put back (created ones removed, updated ones given
// their old bytes), so the tree holds only the old generation and no
// temporary file; the error names the file that failed.
func TestFailedWriteKeepsOneGeneration(t *testing.T) {
	base := t.TempDir()
	old := desired()
	sync(t, base, old[:6], false, Options{})
	type state struct {
		data string
		mode os.FileMode
	}
	read := func() map[string]state {
		m := map[string]state{}
		err := filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			info, _ := d.Info()
			rel, _ := filepath.Rel(base, p)
			m[filepath.ToSlash(rel)] = state{string(b), info.Mode()}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	before := read()
	next := desired()
	for i := range next {
		next[i].Content = append([]byte("# v2\n"), next[i].Content...)
	}
	p, err := NewPlan(base, next, false)
	if err != nil {
		t.Fatal(err)
	}
	renames := 0
	p.beforeRename = func(tmp string) error {
		if renames++; renames == 8 {
			return errors.New("injected")
		}
		return nil
	}
	var out bytes.Buffer
	if err := p.Apply(&out, Options{}); err == nil || !strings.HasSuffix(err.Error(), ": injected") {
		t.Fatalf("error %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("output %q, want none", out.String())
	}
	after := read()
	if len(after) != len(before) {
		t.Errorf("tree has %d files, had %d: %v", len(after), len(before), after)
	}
	for p, b := range before {
		if after[p] != b {
			t.Errorf("%s: %+v, want the old %+v", p, after[p], b)
		}
	}
}

// TestMissingDirRemembered: a directory a lookup without create found
// absent is answered absent from memory (even once it appears on disk,
// for the rest of this root's life: a plan only reads), until a lookup
// with create makes it; lookups below it are absent too.
func TestMissingDirRemembered(t *testing.T) {
	base := t.TempDir()
	r, err := openRoot(base)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if _, err := r.dir("host_vars", false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing directory: %v", err)
	}
	if !r.missing["host_vars"] {
		t.Fatal("host_vars was not remembered as missing")
	}
	if err := os.Mkdir(filepath.Join(base, "host_vars"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"host_vars", "host_vars/x"} {
		if _, err := r.dir(d, false); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "host_vars: ") {
			t.Errorf("%s after the first lookup: %v, want host_vars: not exist", d, err)
		}
	}
	if _, err := r.dir("host_vars/x", true); err != nil {
		t.Fatalf("create: %v", err)
	}
	for _, d := range []string{"host_vars", "host_vars/x"} {
		if _, err := r.dir(d, false); err != nil {
			t.Errorf("%s after create: %v", d, err)
		}
	}
	if st, err := os.Stat(filepath.Join(base, "host_vars", "x")); err != nil || !st.IsDir() {
		t.Errorf("host_vars/x on disk: %v", err)
	}
}
