package syncstamp

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/anklume/anklume/compiler/diag"
)

// TestRoundTrip: a stamp reads back as written, odd paths included; a
// truncated or foreign file is a miss.
func TestRoundTrip(t *testing.T) {
	st := &Stamp{Key: "k", Taken: 42, Roles: []Role{{"mine", false}},
		Diags:  diag.List{{Severity: diag.Warning, Pos: diag.Pos{File: "infra.yml", Line: 3, Col: 5}, Path: "domains.a", Msg: "w"}},
		Output: "sync: 0 created, 0 updated, 2 unchanged\n",
		Entries: []Entry{{Path: "a b/\"c\"\nd", Mode: 0o100644, Dev: 1, Ino: 2, Size: 3, Mtime: 4, Ctime: 5},
			{Path: "gone", Absent: true}}}
	s := Store{Dir: t.TempDir()}
	if err := s.Save("/base", st); err != nil {
		t.Fatal(err)
	}
	if got := s.Load("/base"); !reflect.DeepEqual(got, st) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, st)
	}
	if s.Load("/other") != nil {
		t.Error("a stamp for another base directory")
	}
	data, _ := os.ReadFile(s.file("/base"))
	for _, bad := range [][]byte{data[:len(data)-8], []byte("something else\n")} {
		if err := os.WriteFile(s.file("/base"), bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if s.Load("/base") != nil {
			t.Errorf("%q read as a stamp", bad)
		}
	}
}

// TestFresh: a recorded tree is fresh under its key once its entries are
// older than Margin; a changed file, another key, a changed role or
// entries too young are not.
func TestFresh(t *testing.T) {
	base := t.TempDir()
	if err := os.MkdirAll(filepath.Join(base, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "d", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := Paths([]string{"d/f", "missing/g"})
	if !reflect.DeepEqual(paths, []string{"d", "d/f", "missing", "missing/g"}) {
		t.Fatalf("paths %q", paths)
	}
	later := func() time.Time { return time.Now().Add(time.Minute) }
	entries, taken, err := Record(base, paths, later)
	if err != nil {
		t.Fatal(err)
	}
	st := &Stamp{Key: "k", Taken: taken, Entries: entries, Roles: []Role{{"r", false}}}
	none := func(string) bool { return false }
	if !st.Fresh(base, "k", none) {
		t.Fatal("not fresh")
	}
	if st.Fresh(base, "other", none) {
		t.Error("fresh under another key")
	}
	if st.Fresh(base, "k", func(string) bool { return true }) {
		t.Error("fresh with the role now found")
	}
	young, takenNow, _ := Record(base, paths, time.Now)
	if (&Stamp{Key: "k", Taken: takenNow, Entries: young}).Fresh(base, "k", none) {
		t.Error("fresh with entries younger than Margin")
	}
	if err := os.WriteFile(filepath.Join(base, "d", "f"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st.Fresh(base, "k", none) {
		t.Error("fresh after a same-size rewrite")
	}
}

// TestPrune: a store keeps the Keep newest stamps, drops those older than
// MaxAge and the temporary files of dead saves, and leaves other files.
func TestPrune(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	old := time.Now().Add(-MaxAge - time.Hour)
	for i := range Keep + 5 {
		p := filepath.Join(s.Dir, "sync-"+string(rune('a'+i/26))+string(rune('a'+i%26))+".stamp")
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		mod := time.Now().Add(-time.Duration(i) * time.Minute)
		if i == 0 {
			mod = old
		}
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	dead := filepath.Join(s.Dir, "sync-x.stamp.tmp-1")
	other := filepath.Join(s.Dir, "metadata-x.json")
	for _, p := range []string{dead, other} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Save("/base", &Stamp{Key: "k"}); err != nil {
		t.Fatal(err)
	}
	ms, _ := filepath.Glob(filepath.Join(s.Dir, "sync-*.stamp"))
	if len(ms) != Keep {
		t.Errorf("%d stamps kept, want %d", len(ms), Keep)
	}
	if s.Load("/base") == nil {
		t.Error("the stamp just saved was pruned")
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "sync-aa.stamp")); err == nil {
		t.Error("a stamp older than MaxAge kept")
	}
	if _, err := os.Stat(dead); err == nil {
		t.Error("the temporary file of a dead save kept")
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("another cache file removed")
	}
}
