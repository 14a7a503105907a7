package hostdirs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestContainerRoot: root's first usable range in /etc/subuid and
// /etc/subgid, as Incus reads it; the Incus default otherwise.
func TestContainerRoot(t *testing.T) {
	for _, tc := range []struct {
		name, uid, gid string
		want           Owner
	}{
		{"debian default", "root:1000000:1000000000\n", "root:1000000:1000000000\n", Owner{1000000, 1000000}},
		{"other users first", "alice:100000:65536\nroot:200000:65536\n", "root:300000:1000000\n", Owner{200000, 300000}},
		{"numeric root", "0:400000:65536\n", "0:400000:65536\n", Owner{400000, 400000}},
		{"too small range skipped", "root:500000:10\nroot:600000:65536\n", "", Owner{600000, DefaultBase}},
		{"missing files", "", "", Owner{DefaultBase, DefaultBase}},
		{"garbage", "root:x:y\nroot\n", "root::\n", Owner{DefaultBase, DefaultBase}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			read := func(p string) ([]byte, error) {
				s := map[string]string{"/etc/subuid": tc.uid, "/etc/subgid": tc.gid}[p]
				if s == "" {
					return nil, fs.ErrNotExist
				}
				return []byte(s), nil
			}
			if got := ContainerRoot(read); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestCreate: a missing directory gets its owner and mode, its missing
// parents 0750; an existing one is not touched; a leftover from an
// interrupted run is cleaned up and never seen at the final path.
func TestCreate(t *testing.T) {
	base := t.TempDir()
	o := Owner{UID: 1000000, GID: 1000001}
	if os.Geteuid() != 0 { // chown to another id needs root
		o = Owner{UID: os.Getuid(), GID: os.Getgid()}
	}
	me := Owner{UID: os.Getuid(), GID: os.Getgid()}
	sv := Dir{Path: filepath.Join(base, "shares", "code"), Kind: Shared}
	pd := Dir{Path: filepath.Join(base, "data", "dev", "dev-ws", "home"), Kind: Persistent}
	// An interrupted earlier run left its temporary directory.
	if err := os.MkdirAll(filepath.Join(base, "shares", ".code.anklume-new"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []Dir{sv, pd} {
		if err := Create(d, o); err != nil {
			t.Fatal(err)
		}
	}
	check := func(p string, mode fs.FileMode, uid, gid int) {
		t.Helper()
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode()&(fs.ModePerm|fs.ModeSticky) != mode || int(sys.Uid) != uid || int(sys.Gid) != gid {
			t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", p, st.Mode(), sys.Uid, sys.Gid, mode, uid, gid)
		}
	}
	check(sv.Path, 0o777|fs.ModeSticky, o.UID, o.GID)
	check(pd.Path, 0o755, o.UID, o.GID)
	check(filepath.Join(base, "data", "dev"), 0o750, me.UID, me.GID)
	check(filepath.Join(base, "data", "dev", "dev-ws"), 0o750, me.UID, me.GID)
	if _, err := os.Stat(filepath.Join(base, "shares", ".code.anklume-new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leftover kept: %v", err)
	}
	// An existing directory keeps its owner and mode.
	mine := Dir{Path: filepath.Join(base, "mine"), Kind: Shared}
	if err := os.Mkdir(mine.Path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Create(mine, o); err != nil {
		t.Fatal(err)
	}
	check(mine.Path, 0o700, me.UID, me.GID)
	// A parent that cannot be made is an error.
	if err := Create(Dir{Path: "/proc/forbidden/x"}, o); err == nil {
		t.Error("no error under /proc")
	}
}

// TestRepair: a directory an older anklume made (the legacy owner, mode
// 0750, at a path anklume chose) is handed over: final mode, then owner,
// files inside untouched, a note that names the chown -R; a run cut
// between the two steps is finished by the next one; a user's `source`,
// a directory with another owner or mode, and a link are left alone.
func TestRepair(t *testing.T) {
	base := t.TempDir()
	me := Owner{UID: os.Getuid(), GID: os.Getgid()}
	o := Owner{UID: 1000000, GID: 1000001}
	if os.Geteuid() != 0 {
		o = me
	}
	mk := func(name string, mode fs.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mode := func(p string) (fs.FileMode, int, int) {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		return st.Mode() & (fs.ModePerm | fs.ModeSticky), int(sys.Uid), int(sys.Gid)
	}
	old := mk("course", 0o750)
	if err := os.WriteFile(filepath.Join(old, "lesson.txt"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	half := mk("half", 0o755) // an earlier repair stopped after the chmod
	theirs := mk("theirs", 0o750)
	other := mk("other", 0o700)
	link := filepath.Join(base, "link")
	if err := os.Symlink(old, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		d        Dir
		fixed    bool
		wantMode fs.FileMode
	}{
		{Dir{Path: old, Kind: Shared, Chosen: true}, true, 0o777 | fs.ModeSticky},
		{Dir{Path: half, Kind: Persistent, Chosen: true}, true, 0o755},
		{Dir{Path: theirs, Kind: Shared}, false, 0o750},
		{Dir{Path: other, Kind: Persistent, Chosen: true}, false, 0o700},
		{Dir{Path: link, Kind: Shared, Chosen: true}, false, 0},
	} {
		note, err := repair(tc.d, o, me)
		if err != nil {
			t.Fatalf("%s: %v", tc.d.Path, err)
		}
		if tc.fixed != (note != "") {
			t.Errorf("%s: note %q, want one: %v", tc.d.Path, note, tc.fixed)
		}
		if tc.d.Path == link {
			if m, _, _ := mode(link); m&fs.ModeType != 0 && m.Perm() != 0o777 {
				t.Errorf("link changed: %v", m)
			}
			continue
		}
		m, uid, gid := mode(tc.d.Path)
		wantOwner := me
		if tc.fixed {
			wantOwner = o
		}
		if m != tc.wantMode || uid != wantOwner.UID || gid != wantOwner.GID {
			t.Errorf("%s: mode %v owner %d:%d, want %v %+v", tc.d.Path, m, uid, gid, tc.wantMode, wantOwner)
		}
	}
	if m, uid, _ := mode(filepath.Join(old, "lesson.txt")); m != 0o640 || uid != me.UID {
		t.Errorf("a file inside changed: %v uid %d", m, uid)
	}
	note, _ := repair(Dir{Path: mk("again", 0o750), Kind: Shared, Chosen: true}, o, me)
	if want := fmt.Sprintf("mode 1777. The files in it keep their owners: chown -R %d:%d %s hands them over too", o.UID, o.GID, filepath.Join(base, "again")); !strings.HasSuffix(note, want) {
		t.Errorf("note %q, want the end %q", note, want)
	}
	// Ensure creates a missing directory and does not touch a finished one.
	fresh := Dir{Path: filepath.Join(base, "fresh"), Kind: Persistent, Chosen: true}
	for range 2 {
		if note, err := Ensure(fresh, o); note != "" || err != nil {
			t.Fatalf("Ensure: %q, %v", note, err)
		}
	}
	if m, uid, _ := mode(fresh.Path); m != 0o755 || uid != o.UID {
		t.Errorf("fresh: %v uid %d", m, uid)
	}
}

// TestMoveDir: the data moves to a missing or empty destination with its
// files; an already-moved directory is left where it is; a destination
// that holds files is refused and both sides stay as they were.
func TestMoveDir(t *testing.T) {
	for _, tc := range []struct {
		name            string
		from, to, toHas bool
		wantErr         error
		wantAt          string // "from", "to" or ""
	}{
		{name: "missing destination", from: true, wantAt: "to"},
		{name: "empty destination", from: true, to: true, wantAt: "to"},
		{name: "already moved", to: true, toHas: true, wantAt: "to"},
		{name: "nothing anywhere"},
		{name: "destination holds files", from: true, to: true, toHas: true, wantErr: ErrNotEmpty, wantAt: "from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			m := Move{From: filepath.Join(base, "a", "m", "home"), To: filepath.Join(base, "b", "m", "home")}
			if tc.from {
				mkfile(t, m.From, "mine")
			}
			if tc.to {
				if err := os.MkdirAll(m.To, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tc.toHas {
				mkfile(t, m.To, map[bool]string{true: "theirs", false: "mine"}[tc.from])
			}
			if err := MoveDir(m); !errors.Is(err, tc.wantErr) {
				t.Fatalf("MoveDir: %v, want %v", err, tc.wantErr)
			}
			at := map[string]string{"from": m.From, "to": m.To}[tc.wantAt]
			for _, p := range []string{m.From, m.To} {
				b, err := os.ReadFile(filepath.Join(p, "notes"))
				if p == at && (err != nil || string(b) != "mine") {
					t.Errorf("%s: %q %v", p, b, err)
				}
				if p != at && err == nil && string(b) == "mine" {
					t.Errorf("data also at %s", p)
				}
			}
		})
	}
}

func mkfile(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
