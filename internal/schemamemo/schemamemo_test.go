package schemamemo

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/host"
)

// counting records what the memo answered, to tell a hit from a miss.
type counting struct {
	m              *Memo
	hits, accepted int
}

func (c *counting) Accepted(k [32]byte) bool {
	ok := c.m.Accepted(k)
	if ok {
		c.hits++
	}
	return ok
}

func (c *counting) Accept(k [32]byte) { c.accepted++; c.m.Accept(k) }

func exeID(id string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(id), nil }
}

const (
	valid = "format_version: 1\nproject_name: demo\nglobal:\n  addressing: {}\ndomains:\n  work:\n    trust_level: trusted\n    machines:\n      work-dev:\n        type: lxc\n"
	// warned is valid with one warning of S2 (zone_step has no effect).
	warned = "format_version: 1\nproject_name: demo\nglobal:\n  addressing: {zone_step: 20}\ndomains:\n  work:\n    trust_level: trusted\n    machines:\n      work-dev:\n        type: lxc\n"
	// invalid fails S1 (unknown trust level, unknown key).
	invalid = "format_version: 1\nproject_name: demo\nglobal:\n  addressing: {}\ndomains:\n  work:\n    trust_level: trustd\n    colour: red\n    machines:\n      work-dev:\n        type: lxc\n"
)

// compile runs the whole pipeline on src with memo (nil: none) and
// returns the diagnostics as validate prints them and the result.
func compile(t *testing.T, src string, memo *counting) ([]string, *compiler.Result) {
	t.Helper()
	opts := host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 8, Memory: 16 << 30}}
	if memo != nil {
		opts.SchemaMemo = memo
	}
	res, dl, err := compiler.Compile(fstest.MapFS{"infra.yml": {Data: []byte(src)}},
		compiler.Input{Path: "infra.yml", Display: "infra.yml"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dl {
		out = append(out, d.String()+" hint="+d.Hint)
	}
	return out, res
}

// TestHitEqualsMiss: on a valid PSOT, one with a warning and an invalid
// one, a run without memo, a first run with it (miss) and a second run
// (hit for the clean ones) give the same diagnostics, positions included,
// and the same model; an invalid PSOT is never remembered.
func TestHitEqualsMiss(t *testing.T) {
	for _, c := range []struct {
		name, src string
		wantHit   bool
		wantDiag  string
	}{
		{"valid", valid, true, ""},
		{"warning", warned, true, "warning: infra.yml:4:27: global.addressing.zone_step"},
		{"invalid", invalid, false, "infra.yml:7:18: domains.work.trust_level"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mc := &counting{m: New(t.TempDir(), exeID("build 1"))}
			plain, plainRes := compile(t, c.src, nil)
			miss, missRes := compile(t, c.src, mc)
			if mc.hits != 0 {
				t.Fatalf("first run hit an empty memo")
			}
			// A new Memo reads the file, as the next process does.
			mc2 := &counting{m: New(mc.m.dir, exeID("build 1"))}
			hit, hitRes := compile(t, c.src, mc2)
			if got := mc2.hits == 1; got != c.wantHit {
				t.Fatalf("second run hit=%v, want %v", got, c.wantHit)
			}
			if !c.wantHit && (mc.accepted != 0 || mc2.accepted != 0) {
				t.Fatalf("an invalid PSOT was remembered")
			}
			if c.wantDiag != "" && (len(plain) == 0 || !strings.HasPrefix(plain[0], c.wantDiag)) {
				t.Fatalf("diagnostics %q, want one starting with %q", plain, c.wantDiag)
			}
			if !reflect.DeepEqual(plain, miss) || !reflect.DeepEqual(plain, hit) {
				t.Fatalf("diagnostics differ:\nno memo %q\nmiss    %q\nhit     %q", plain, miss, hit)
			}
			if !reflect.DeepEqual(plainRes, missRes) || !reflect.DeepEqual(plainRes, hitRes) {
				t.Fatalf("results differ")
			}
		})
	}
}

// TestChangedInputMisses: a changed byte of the PSOT, or another
// executable, misses; a change of positions alone (a comment line) hits,
// and the warnings of the later stages carry the new positions.
func TestChangedInputMisses(t *testing.T) {
	dir := t.TempDir()
	first := &counting{m: New(dir, exeID("build 1"))}
	compile(t, warned, first)
	for _, c := range []struct {
		name, src, exe string
		hit            bool
	}{
		{"same", warned, "build 1", true},
		{"one byte", strings.Replace(warned, "work-dev", "work-deV", 1), "build 1", false},
		{"a comment line", "# moved down\n" + warned, "build 1", true},
		{"another executable", warned, "build 2", false},
	} {
		mc := &counting{m: New(dir, exeID(c.exe))}
		got, _ := compile(t, c.src, mc)
		want, _ := compile(t, c.src, nil)
		if (mc.hits == 1) != c.hit {
			t.Errorf("%s: hit=%v, want %v", c.name, mc.hits == 1, c.hit)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: diagnostics %q, without memo %q", c.name, got, want)
		}
	}
}

// TestCorruptFileIgnored: a memo file that is not ours, truncated or
// with a bad line holds nothing, and the next Accept rewrites it whole.
func TestCorruptFileIgnored(t *testing.T) {
	var key [32]byte
	key[0] = 1
	good := New(t.TempDir(), exeID("b"))
	good.Accept(key)
	data, err := os.ReadFile(filepath.Join(good.dir, File))
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"garbage":    "\x00\x01 not a memo",
		"header":     strings.Replace(string(data), "anklume", "anklum3", 1),
		"truncated":  string(data[:len(data)-5]),
		"short line": string(data) + "abc\n",
		"not hex":    string(data) + strings.Repeat("z", 64) + "\n",
		"empty":      "",
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, File), []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		m := New(dir, exeID("b"))
		if m.Accepted(key) {
			t.Errorf("%s: a corrupt memo hit", name)
		}
		m.Accept(key)
		if !New(dir, exeID("b")).Accepted(key) {
			t.Errorf("%s: the memo was not rewritten", name)
		}
	}
}

// TestKeepAndNoTemp: the file keeps the Keep most recent keys and a write
// leaves no temporary file; a memo without a directory or an executable
// identity remembers nothing.
func TestKeepAndNoTemp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	m := New(dir, exeID("b"))
	for i := range Keep + 6 {
		m.Accept([32]byte{byte(i)})
	}
	fresh := New(dir, exeID("b"))
	if fresh.Accepted([32]byte{0}) || !fresh.Accepted([32]byte{6}) || !fresh.Accepted([32]byte{Keep + 5}) {
		t.Errorf("the memo does not keep the %d most recent keys", Keep)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != File {
		t.Errorf("directory holds %v, want %s alone", ents, File)
	}
	for _, m := range []*Memo{nil, New("", exeID("b")), New(dir, func() ([]byte, error) { return nil, os.ErrNotExist })} {
		m.Accept([32]byte{9})
		if m.Accepted([32]byte{9}) {
			t.Errorf("%+v remembered", m)
		}
	}
}

// TestUnwritableDir: a memo whose directory cannot be created still
// answers (no hit) and the compile is unchanged.
func TestUnwritableDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mc := &counting{m: New(filepath.Join(f, "sub"), exeID("b"))}
	got, _ := compile(t, valid, mc)
	mc2 := &counting{m: New(filepath.Join(f, "sub"), exeID("b"))}
	again, _ := compile(t, valid, mc2)
	if len(got) != 0 || len(again) != 0 || mc2.hits != 0 {
		t.Errorf("diagnostics %q %q, hits %d", got, again, mc2.hits)
	}
}

// TestExecutable: the running test binary has an identity, stable within
// the process.
func TestExecutable(t *testing.T) {
	a, err := Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Executable()
	if len(a) == 0 || string(a) != string(b) {
		t.Errorf("identity %q then %q", a, b)
	}
}
