package emit_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
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

// goldenDir holds the expected tree sync writes into an empty directory
// for every example. To keep the repository small, the framework files
// that every example gets byte for byte (roles, the connection plugin,
// ansible.cfg…) are stored once under golden/_framework; golden/<example>/
// holds only the rest. The expected tree of an example is the union of
// both, and the test compares that whole tree with what sync writes.
const goldenDir = "../../golden"

// frameworkGolden is the directory of golden/ shared by every example. Its
// name cannot be an example's (example names are project names, which
// cannot start with "_").
const frameworkGolden = "_framework"

// TestGolden compiles every example in memory and compares every generated
// file with golden/_framework plus golden/<example>/, byte for byte, with
// no file missing or extra (§16 #34, #37; §15 "every example must sync").
// Sub-tests check that a second sync writes nothing (§16 #35) and that
// directory mode yields the same tree (§16 #23).
func TestGolden(t *testing.T) {
	names := goldenCases(t)
	if len(names) == 0 {
		t.Fatal("no golden cases found under " + goldenDir + " (run with -update to create them)")
	}
	got := map[string]rendered{}
	sources := map[string][]byte{}
	for _, name := range names {
		data, err := examples.Read(name)
		if err != nil {
			t.Fatalf("golden/%s has no example: %v", name, err)
		}
		sources[name] = data
		got[name] = render(t, emit.Tree(compileText(t, data)))
	}
	if *update {
		writeGoldens(t, got)
	}
	shared := readTree(t, filepath.Join(goldenDir, frameworkGolden))
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, want := sources[name], got[name]
			dir := filepath.Join(goldenDir, name)
			compareGolden(t, expectedTree(t, shared, dir), dir, want)

			t.Run("idempotent", func(t *testing.T) {
				base := t.TempDir()
				files := emit.Tree(compileText(t, data))
				if c, u, _ := syncDir(t, base, files); c != len(files) || u != 0 {
					t.Fatalf("first sync: %d created, %d updated, want %d, 0", c, u, len(files))
				}
				compareGolden(t, readTree(t, base), base, want) // what sync writes is what render predicts
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
				if !equalStrings(dirTree.paths, want.paths) {
					t.Fatalf("§16 #23: paths differ:\n%q\nwant\n%q", dirTree.paths, want.paths)
				}
				for _, p := range want.paths {
					if !bytes.Equal(dirTree.files[p], want.files[p]) {
						t.Errorf("§16 #23: %s differs in directory mode:\n%s\nwant:\n%s", p, dirTree.files[p], want.files[p])
					}
				}
			})
		})
	}
}

// TestGoldenNoSpec fails when a generated file mentions the specification
// (users never have it): no "SPEC" and no section sign in any golden tree.
func TestGoldenNoSpec(t *testing.T) {
	n := 0
	err := filepath.WalkDir(goldenDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		n++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "SPEC") || strings.Contains(line, "§") {
				t.Errorf("%s:%d: generated file cites the specification: %s", p, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("only %d files under %s", n, goldenDir)
	}
}

// expectedTree is the whole expected tree of the example whose own golden
// directory is dir: the shared framework files plus dir's files. A file of
// dir identical to a shared one is an error (the dedupe is broken; rerun
// -update).
func expectedTree(t *testing.T, shared map[string][]byte, dir string) map[string][]byte {
	t.Helper()
	own := readTree(t, dir)
	out := make(map[string][]byte, len(shared)+len(own))
	for p, b := range shared {
		out[p] = b
	}
	for p, b := range own {
		if s, ok := shared[p]; ok && bytes.Equal(s, b) {
			t.Errorf("%s: %s repeats golden/%s/%s (run with -update)", dir, p, frameworkGolden, p)
		}
		out[p] = b
	}
	return out
}

// writeGoldens rewrites golden/: golden/_framework holds the framework
// files generated identically for every example, golden/<example>/ the
// other files of that example.
func writeGoldens(t *testing.T, got map[string]rendered) {
	t.Helper()
	var shared []string
	var first rendered
	for _, r := range got {
		first = r
		break
	}
	for _, p := range first.paths {
		same := true
		for _, r := range got {
			b, ok := r.files[p]
			if !ok || !r.framework[p] || !bytes.Equal(b, first.files[p]) {
				same = false
				break
			}
		}
		if same {
			shared = append(shared, p)
		}
	}
	isShared := map[string]bool{}
	for _, p := range shared {
		isShared[p] = true
	}
	writeDir(t, filepath.Join(goldenDir, frameworkGolden), shared, first.files)
	for name, r := range got {
		var own []string
		for _, p := range r.paths {
			if !isShared[p] {
				own = append(own, p)
			}
		}
		writeDir(t, filepath.Join(goldenDir, name), own, r.files)
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
		known := map[string]bool{frameworkGolden: true}
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
		if e.IsDir() && e.Name() != frameworkGolden {
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

// compareGolden fails for every file of the expected tree disk (read from
// dir) that is missing, extra or different from got.
func compareGolden(t *testing.T, disk map[string][]byte, dir string, got rendered) {
	t.Helper()
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

// writeDir makes dir hold exactly the files paths, with their bytes from
// files.
func writeDir(t *testing.T, dir string, paths []string, files map[string][]byte) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
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
