package load

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/compiler/diag"
)

func lines(dl diag.List) []string {
	var out []string
	dl.Sort()
	for _, d := range dl {
		out = append(out, d.String())
	}
	return out
}

// TestParseErrors covers the N18 parse problems (SPEC.md §16 #20).
func TestParseErrors(t *testing.T) {
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f"} {
		bomb += n + ": &" + n + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = n
	}
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"duplicate key", "project_name: a\nglobal: {}\nproject_name: b\n", `infra.yml:3:1: (syntax): duplicate key "project_name"`},
		{"nested duplicate", "a:\n  b: 1\n  c: 2\n  b: 3\n", `infra.yml:4:3: (syntax): duplicate key "b"`},
		{"syntax error", "a: [\n", "infra.yml:1:1: (syntax): did not find expected node content"},
		{"bad indentation", "a: 1\n b: 2\n", "infra.yml:2:1: (syntax): mapping values are not allowed in this context"},
		{"second document", "a: 1\n---\nb: 2\n", "infra.yml:3:1: (syntax): only one YAML document is allowed"},
		{"size", "a: " + strings.Repeat("x", MaxFileSize) + "\n", "infra.yml:1:1: (syntax): file is larger than 16 MiB"},
		{"alias bomb", bomb, "(syntax): document expands to more than 100000 nodes through aliases"},
		{"non-scalar key", "? [a]\n: 1\n", "infra.yml:1:3: (syntax): mapping keys must be scalars"},
		// Explicit tags: only !!str or a tag the value already has (never a
		// silent false for a YAML 1.1 boolean).
		{"!!bool yes", "a: !!bool yes\n", `infra.yml:1:4: (syntax): explicit tag !!bool cannot be applied to the value "yes"`},
		{"!!bool quoted maybe", "a: !!bool \"maybe\"\n", `infra.yml:1:4: (syntax): explicit tag !!bool cannot be applied to the value "maybe"`},
		{"!!bool quoted true", "a: !!bool 'true'\n", `infra.yml:1:4: (syntax): explicit tag !!bool cannot be applied to the value "true"`},
		{"!!int octal-looking", "a: !!int 0o17x\n", `infra.yml:1:4: (syntax): explicit tag !!int cannot be applied to the value "0o17x"`},
		{"!!null with text", "a: !!null x\n", `infra.yml:1:4: (syntax): explicit tag !!null cannot be applied to the value "x"`},
		{"custom tag", "a: !unsafe x\n", `infra.yml:1:4: (syntax): explicit tag !unsafe cannot be applied to the value "x"`},
		{"!!seq on a mapping", "a: !!seq {b: 1}\n", `infra.yml:1:4: (syntax): explicit tag !!seq cannot be applied to a mapping`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, dl := Parse([]byte(tc.in), "infra.yml", 0)
			if n != nil {
				t.Fatalf("expected no node, got %v", n)
			}
			got := lines(dl)
			if len(got) != 1 || !strings.HasSuffix(got[0], tc.want) {
				t.Fatalf("got %q, want one diagnostic ending in %q", got, tc.want)
			}
		})
	}
}

// TestMergeKeys covers SPEC.md §2.2 item 3 and §16 #74.
func TestMergeKeys(t *testing.T) {
	in := `x-a: &a {k: a, only_a: 1}
x-b: &b {k: b, only_b: 2}
one:
  <<: *a
  k: own
two:
  <<: [*a, *b]
three:
  <<: [*b, *a]
`
	n, dl := Parse([]byte(in), "infra.yml", 0)
	if dl.HasErrors() || n == nil {
		t.Fatalf("unexpected errors: %v", lines(dl))
	}
	cases := []struct{ m, k, want string }{
		{"one", "k", "own"}, {"one", "only_a", "1"},
		{"two", "k", "a"}, {"two", "only_b", "2"},
		{"three", "k", "b"},
	}
	for _, c := range cases {
		v := n.Val(c.m).Val(c.k)
		if v == nil || v.Value != c.want {
			t.Errorf("%s.%s = %v, want %q", c.m, c.k, v, c.want)
		}
	}
	// Merged keys are reported at the position of the alias.
	if p := n.Val("one").Get("only_a").KeyPos; p.Line != 4 || p.Col != 7 {
		t.Errorf("merged key position = %s, want 4:7", p)
	}
	// An explicit key keeps its own position.
	if p := n.Val("one").Get("k").KeyPos; p.Line != 5 {
		t.Errorf("explicit key position = %s, want line 5", p)
	}
}

func TestAliasPosition(t *testing.T) {
	n, dl := Parse([]byte("a: &x 10\nb:\n  c: *x\n"), "f.yml", 0)
	if dl.HasErrors() {
		t.Fatal(lines(dl))
	}
	v := n.Val("b").Val("c")
	if v.Value != "10" || v.Tag != TagInt || v.Pos.Line != 3 || v.Pos.Col != 6 {
		t.Fatalf("alias node = %v, want integer 10 at 3:6", v)
	}
}

// TestYAML12Typing checks the core-schema tags SPEC.md §2.2 relies on.
func TestYAML12Typing(t *testing.T) {
	n, dl := Parse([]byte("a: yes\nb: On\nc: 010\nd: 0x10\ne: 1.0\nf: true\ng: ~\nh: 2001-01-01\ni: 10.100.0.1\n"), "infra.yml", 0)
	if dl.HasErrors() {
		t.Fatal(lines(dl))
	}
	want := map[string]string{
		"a": `string "yes"`, "b": `string "On"`, "c": "integer 010", "d": "integer 0x10",
		"e": "float 1.0", "f": "boolean true", "g": "null", "h": `string "2001-01-01"`, "i": `string "10.100.0.1"`,
	}
	for k, w := range want {
		if got := n.Val(k).KindName(); got != w {
			t.Errorf("%s: KindName = %q, want %q", k, got, w)
		}
	}
	if n.Val("c").IsDecimal() || !n.Val("f").Bool() {
		t.Error("010 must not be decimal; true must be true")
	}
}

// TestRedundantTags: !!str forces a string, and a tag that the value has
// anyway changes nothing.
func TestRedundantTags(t *testing.T) {
	n, dl := Parse([]byte("a: !!str yes\nb: !!bool true\nc: !!int 3\nd: !!map {x: 1}\ne: !!str 10\nf: ! x\n"), "infra.yml", 0)
	if dl.HasErrors() {
		t.Fatal(lines(dl))
	}
	want := map[string]string{"a": `string "yes"`, "b": "boolean true", "c": "integer 3", "e": `string "10"`, "f": `string "x"`}
	for k, w := range want {
		if got := n.Val(k).KindName(); got != w {
			t.Errorf("%s: KindName = %q, want %q", k, got, w)
		}
	}
	if !n.Val("b").Bool() || n.Val("d").Val("x") == nil {
		t.Error("!!bool true must be true; !!map must stay a mapping")
	}
}

func TestEmptyFileIsNull(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "---\n"} {
		n, dl := Parse([]byte(in), "infra.yml", 0)
		if dl.HasErrors() || n == nil || n.Kind != Null {
			t.Errorf("%q: got %v %v, want a null root", in, n, lines(dl))
		}
	}
}

// TestDir covers directory mode (SPEC.md §2.13, §16 #23).
func TestDir(t *testing.T) {
	fsys := fstest.MapFS{
		"infra/base.yml":         {Data: []byte("project_name: p\nglobal: {}\n")},
		"infra/domains/b.yml":    {Data: []byte("work:\n  machines: {}\n")},
		"infra/domains/a.yml":    {Data: []byte("perso: {}\nadmin: {}\n")},
		"infra/domains/skip.txt": {Data: []byte("not: read\n")},
		"infra/policies.yml":     {Data: []byte("network_policies: []\n")},
	}
	src, dl, err := Dir(fsys, "infra", "infra")
	if err != nil || dl.HasErrors() {
		t.Fatalf("err=%v diags=%v", err, lines(dl))
	}
	if got := strings.Join(src.Root.Keys(), ","); got != "project_name,global,domains,network_policies" {
		t.Errorf("root keys = %s", got)
	}
	if got := strings.Join(src.Root.Val("domains").Keys(), ","); got != "perso,admin,work" {
		t.Errorf("declaration order = %s, want perso,admin,work", got)
	}
	if p := src.Root.Val("domains").Get("work").KeyPos; p.File != "infra/domains/b.yml" || p.Line != 1 || p.FileIndex != 2 {
		t.Errorf("position = %+v", p)
	}
	if got := strings.Join(src.Files, ","); got != "infra/base.yml,infra/domains/a.yml,infra/domains/b.yml,infra/policies.yml" {
		t.Errorf("files = %s", got)
	}
}

func TestDirErrors(t *testing.T) {
	tests := []struct {
		name    string
		fs      fstest.MapFS
		wantErr string
		want    []string
	}{
		{"missing base", fstest.MapFS{"infra/domains/a.yml": {Data: []byte("a: {}\n")}}, "infra/base.yml: not found in infra directory", nil},
		{"N13 domain in two files", fstest.MapFS{
			"infra/base.yml":      {Data: []byte("project_name: p\n")},
			"infra/domains/a.yml": {Data: []byte("work: {}\n")},
			"infra/domains/b.yml": {Data: []byte("other: {}\nwork: {}\n")},
		}, "", []string{`infra/domains/b.yml:2:1: domains.work: domain "work" is already defined at infra/domains/a.yml:1:1`}},
		{"key in the wrong file", fstest.MapFS{
			"infra/base.yml":     {Data: []byte("project_name: p\ndomains: {}\n")},
			"infra/policies.yml": {Data: []byte("x-ok: 1\nglobal: {}\n")},
		}, "", []string{`infra/base.yml:2:1: domains: unknown key "domains"`, `infra/policies.yml:2:1: global: unknown key "global"`}},
		{"syntax errors in two files", fstest.MapFS{
			"infra/base.yml":      {Data: []byte("a: [\n")},
			"infra/domains/a.yml": {Data: []byte("a: 1\na: 2\n")},
		}, "", []string{"infra/base.yml:1:1: (syntax): did not find expected node content", `infra/domains/a.yml:2:1: (syntax): duplicate key "a"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, dl, err := Dir(tc.fs, "infra", "infra")
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || src != nil {
				t.Fatalf("err=%v src=%v, want diagnostics only", err, src)
			}
			got := lines(dl)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestDirEmptyDomains: an absent or empty domains/ means no domains.
func TestDirEmptyDomains(t *testing.T) {
	src, dl, err := Dir(fstest.MapFS{"base.yml": {Data: []byte("project_name: p\n")}}, ".", ".")
	if err != nil || dl.HasErrors() {
		t.Fatal(err, lines(dl))
	}
	if d := src.Root.Val("domains"); d == nil || d.Kind != Map || len(d.Entries) != 0 {
		t.Fatalf("domains = %v, want an empty mapping", d)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("project_name: p\nglobal: {addressing: {}}\ndomains:\n  a: {machines: {m: {ip: 10.120.0.1}}}\n"))
	f.Add([]byte("a: &a {b: 1}\nc: {<<: *a, b: 2}\n"))
	f.Add([]byte("a: 1\n---\nb: 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			t.Skip("input capped at 64 KiB")
		}
		n, dl := Parse(data, "infra.yml", 0)
		if n == nil && !dl.HasErrors() {
			t.Fatal("nil node without an error")
		}
	})
}

// TestParseErrorPositions: the problems yaml.v3 reports without a line (a
// character the YAML reader refuses, an alias with no anchor) are placed at
// their real line:column, not 1:1.
func TestParseErrorPositions(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"NUL byte", "project_name: a\nglobal:\n  x: ab\x00c\n", "infra.yml:3:8: (syntax): control character U+0000 is not allowed"},
		{"control char in a comment", "a: 1\n# note \x07\n", "infra.yml:2:8: (syntax): control character U+0007 is not allowed"},
		{"invalid UTF-8", "a: 1\nb: \"é\xff\"\n", "infra.yml:2:6: (syntax): invalid UTF-8 (byte 0xff)"},
		{"truncated UTF-8 at the end", "a: 1\nb: x\xc3", "infra.yml:2:5: (syntax): invalid UTF-8 (byte 0xc3)"},
		{"unknown alias", "a: 1\nb:\n  c: [1, *nope]\n", "infra.yml:3:10: (syntax): unknown anchor 'nope' referenced"},
		{"unknown alias as a value", "a: &x 1\nb: *y\n", "infra.yml:2:4: (syntax): unknown anchor 'y' referenced"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, dl := Parse([]byte(tc.in), "infra.yml", 0)
			got := lines(dl)
			if n != nil || len(got) != 1 || !strings.HasSuffix(got[0], tc.want) {
				t.Fatalf("got %q, want one diagnostic %q", got, tc.want)
			}
		})
	}
}

// TestDirEditorFiles: in domains/, editor files are skipped silently (an
// Emacs lock `.#work.yml`, a dangling link; `#work.yml#`; `work.yml~`;
// `.work.yml.swp`) and any other hidden `*.yml` is skipped with a warning;
// neither breaks the load nor adds a domain.
func TestDirEditorFiles(t *testing.T) {
	dir := t.TempDir()
	for p, data := range map[string]string{
		"infra/base.yml":              "project_name: p\nglobal: {}\n",
		"infra/domains/work.yml":      "work: {}\n",
		"infra/domains/#work.yml#":    "autosave: {}\n",
		"infra/domains/work.yml~":     "backup: {}\n",
		"infra/domains/.work.yml.swp": "\x00\x01binary",
		"infra/domains/.hidden.yml":   "hidden: {}\n",
	} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("user@host.1234:1700000000", filepath.Join(dir, "infra/domains/.#work.yml")); err != nil {
		t.Fatal(err)
	}
	src, dl, err := Dir(os.DirFS(dir), "infra", "infra")
	if err != nil || dl.HasErrors() {
		t.Fatalf("err=%v diags=%v", err, lines(dl))
	}
	if got := strings.Join(src.Root.Val("domains").Keys(), ","); got != "work" {
		t.Errorf("domains = %s, want work", got)
	}
	want := []string{"infra/domains/.hidden.yml:1:1: domains: hidden file infra/domains/.hidden.yml is not read"}
	if got := lines(dl); len(got) != 1 || !strings.Contains(got[0], want[0]) {
		t.Errorf("diagnostics %q, want one warning containing %q", got, want[0])
	}
}
