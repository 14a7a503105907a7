package emit_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit"
	"github.com/anklume/anklume/examples"
	"github.com/anklume/anklume/internal/goldenflag"
)

// update rewrites golden/ from the current output:
//
//	go test ./compiler/emit/ -run Golden -update
var update = goldenflag.Update

// goldenDir holds one directory per example with the whole tree sync
// writes for it into an empty directory.
const goldenDir = "../../golden"

// TestGolden compiles every example in memory and compares every generated
// file with golden/<example>/, byte for byte, with no file missing or extra
// (§16 #34, #37; §15 "every example must sync"). Sub-tests check that a
// second sync writes nothing (§16 #35) and that directory mode yields the
// same tree (§16 #23).
func TestGolden(t *testing.T) {
	cases := goldenCases(t)
	if len(cases) == 0 {
		t.Fatal("no golden cases found under " + goldenDir + " (run with -update to create them)")
	}
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			data, err := examples.Read(name)
			if err != nil {
				t.Fatalf("golden/%s has no example: %v", name, err)
			}
			got := render(t, emit.Tree(compileText(t, data)))
			dir := filepath.Join(goldenDir, name)
			if *update {
				writeGolden(t, dir, got)
			}
			compareGolden(t, dir, got)

			t.Run("idempotent", func(t *testing.T) {
				base := t.TempDir()
				files := emit.Tree(compileText(t, data))
				if c, u, _ := syncDir(t, base, files); c != len(files) || u != 0 {
					t.Fatalf("first sync: %d created, %d updated, want %d, 0", c, u, len(files))
				}
				compareGolden(t, base, got) // what sync writes is what render predicts
				before := stat(t, base)
				time.Sleep(5 * time.Millisecond)
				if c, u, n := syncDir(t, base, emit.Tree(compileText(t, data))); c != 0 || u != 0 || n != len(files) {
					t.Errorf("§16 #35: second sync: %d created, %d updated, %d unchanged; want 0, 0, %d", c, u, n, len(files))
				}
				if after := stat(t, base); !equalStat(before, after) {
					t.Error("§16 #35: the second sync touched a file (mtime or inode changed)")
				}
			})

			t.Run("directory mode", func(t *testing.T) {
				m := compileFS(t, split(t, data), compiler.Input{Path: "infra", Display: "infra", Dir: true})
				dirTree := render(t, emit.Tree(m))
				if !equalStrings(dirTree.paths, got.paths) {
					t.Fatalf("§16 #23: paths differ:\n%q\nwant\n%q", dirTree.paths, got.paths)
				}
				for _, p := range got.paths {
					if !bytes.Equal(dirTree.files[p], got.files[p]) {
						t.Errorf("§16 #23: %s differs in directory mode:\n%s\nwant:\n%s", p, dirTree.files[p], got.files[p])
					}
				}
			})
		})
	}
}

// goldenCases lists the example directories under golden/. With -update
// they are the embedded examples, and golden directories of examples that
// no longer exist are removed. Every example must have a golden tree.
func goldenCases(t *testing.T) []string {
	t.Helper()
	names := examples.Names()
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		known := map[string]bool{}
		for _, n := range names {
			known[n] = true
		}
		entries, err := os.ReadDir(goldenDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !known[e.Name()] {
				if err := os.RemoveAll(filepath.Join(goldenDir, e.Name())); err != nil {
					t.Fatal(err)
				}
			}
		}
		return names
	}
	entries, err := os.ReadDir(goldenDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var cases []string
	have := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() {
			cases = append(cases, e.Name())
			have[e.Name()] = true
		}
	}
	for _, n := range names {
		if !have[n] {
			t.Errorf("example %s has no golden tree under %s", n, goldenDir)
		}
	}
	return cases
}

// readTree returns every regular file under dir, by slash path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compareGolden fails for every file of dir that is missing, extra or
// different from got.
func compareGolden(t *testing.T, dir string, got rendered) {
	t.Helper()
	disk := readTree(t, dir)
	for _, p := range got.paths {
		want, ok := disk[p]
		switch {
		case !ok:
			t.Errorf("%s: missing from %s", p, dir)
		case !bytes.Equal(got.files[p], want):
			t.Errorf("%s differs from %s (run with -update if the change is intended):\n%s\nwant:\n%s", p, dir, got.files[p], want)
		}
	}
	var extra []string
	for p := range disk {
		if _, ok := got.files[p]; !ok {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	for _, p := range extra {
		t.Errorf("%s: in %s but not generated", p, dir)
	}
}

// writeGolden makes dir hold exactly the files of got.
func writeGolden(t *testing.T, dir string, got rendered) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range got.paths {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, got.files[p], 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type fileStat struct {
	mtime time.Time
	ino   uint64
	size  int64
}

// stat records the mtime, inode and size of every file under dir.
func stat(t *testing.T, dir string) map[string]fileStat {
	t.Helper()
	out := map[string]fileStat{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fileStat{mtime: info.ModTime(), ino: inode(info), size: info.Size()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalStat(a, b map[string]fileStat) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
