package initcmd_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/initcmd"
	"github.com/anklume/anklume/cmd/root"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/examples"
	"github.com/anklume/anklume/internal/hostenv"
	"github.com/anklume/anklume/schema"
)

type result struct {
	code   cmdutil.ExitCode
	stdout string
	stderr string
}

// runIn runs `anklume args…` with dir as the current directory and the
// host context of SPEC.md §16.
func runIn(t *testing.T, dir string, args ...string) result {
	t.Helper()
	env := map[string]string{
		hostenv.EnvSkipSubnet:    "1",
		hostenv.EnvContextDir:    t.TempDir(),
		hostenv.EnvHostResources: "cpu=10,memory=40GiB",
	}
	var out, errOut bytes.Buffer
	f := &cmdutil.Factory{
		IO:        &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Getenv:    func(k string) string { return env[k] },
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Getwd:     func() (string, error) { return dir, nil },
		FS:        func(d string) fs.FS { return os.DirFS(d) },
		Host: func(remote bool) (host.Options, error) {
			return hostenv.Gather(hostenv.Sys{
				Getenv:     func(k string) string { return env[k] },
				ReadFile:   os.ReadFile,
				Interfaces: func() ([]host.Interface, error) { return nil, nil },
			}, remote)
		},
		Schema:     schema.JSON,
		SchemaPart: schema.Part,
		Globals:    &cmdutil.GlobalOptions{},
	}
	code := root.Main(f, args)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var projectLine = regexp.MustCompile(`(?m)^project_name: (.*)$`)

// TestInitDefault: §12.8 and §16 #88. The default example is written with
// its modeline, format_version and a project_name `<dir>-[a-z0-9]{6}`; the
// schema is written with the framework header; the result validates and
// syncs without touching the schema file again.
func TestInitDefault(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lab")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	got := runIn(t, dir, "init")
	if got.code != 0 || got.stderr != "" {
		t.Fatalf("init: %+v", got)
	}
	text := read(t, filepath.Join(dir, "infra.yml"))
	m := projectLine.FindStringSubmatch(text)
	if m == nil || !regexp.MustCompile(`^lab-[a-z0-9]{6}$`).MatchString(m[1]) {
		t.Fatalf("§16 #88: project_name line %q", m)
	}
	name := m[1]
	wantOut := "created: infra.yml (example " + examples.Default + ", project_name " + name + ")\n" +
		"created: .anklume/infra.schema.json\n"
	if got.stdout != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", got.stdout, wantOut)
	}
	orig, err := examples.Read(examples.Default)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(string(orig), "\nproject_name: "+examples.Default+"\n", "\nproject_name: "+name+"\n", 1); text != want {
		t.Errorf("infra.yml differs from the example beyond project_name:\n%s", text)
	}
	if !strings.HasPrefix(text, "# yaml-language-server: $schema=.anklume/infra.schema.json\nformat_version: 1\n") {
		t.Errorf("infra.yml does not start with the modeline and format_version:\n%s", text)
	}
	sch := read(t, filepath.Join(dir, ".anklume/infra.schema.json"))
	if !tree.HasHeader(initcmd.SchemaPath, []byte(sch)) {
		t.Errorf("schema has no header:\n%.200s", sch)
	}

	if v := runIn(t, dir, "validate"); v.code != 0 || !strings.HasPrefix(v.stdout, "ok: infra.yml is valid") {
		t.Errorf("validate after init: %+v", v)
	}
	s := runIn(t, dir, "sync")
	if s.code != 0 || strings.Contains(s.stdout, initcmd.SchemaPath) || s.stderr != "" {
		t.Errorf("sync after init rewrote the schema or failed: %+v", s)
	}

	// Two inits in directories of the same name get different names.
	dir2 := filepath.Join(t.TempDir(), "lab")
	if err := os.Mkdir(dir2, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := runIn(t, dir2, "init"); r.code != 0 {
		t.Fatalf("second init: %+v", r)
	}
	if m2 := projectLine.FindStringSubmatch(read(t, filepath.Join(dir2, "infra.yml"))); m2 == nil || m2[1] == name {
		t.Errorf("same project_name twice: %q", m2)
	}
}

// TestInitRefuses: init never replaces infra.yml without --force, and with
// --force keeps the old one as infra.yml.bak.
func TestInitRefuses(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "infra.yml")
	if err := os.WriteFile(p, []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := runIn(t, dir, "init", "--example", "sys-print")
	want := result{code: 1, stderr: "error: refusing to overwrite infra.yml: it already exists\n" +
		"  hint: edit it, or pass --force to replace it; the old file is then kept as infra.yml.bak\n"}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if read(t, p) != "mine\n" {
		t.Error("infra.yml changed")
	}
	if _, err := os.Stat(filepath.Join(dir, ".anklume")); !os.IsNotExist(err) {
		t.Errorf(".anklume written on refusal: %v", err)
	}

	got = runIn(t, dir, "init", "--example", "sys-print", "--force")
	if got.code != 0 || !strings.HasPrefix(got.stdout, "saved: infra.yml.bak\nupdated: infra.yml (example sys-print, project_name ") {
		t.Fatalf("init --force: %+v", got)
	}
	if read(t, p+".bak") != "mine\n" {
		t.Error("infra.yml.bak does not hold the old file")
	}
	if !strings.Contains(read(t, p), "print-server") {
		t.Error("infra.yml is not the sys-print example")
	}
}

// TestInitSchemaNotOurs: a schema file anklume did not write is refused
// like any framework file (§6.2), before infra.yml is written.
func TestInitSchemaNotOurs(t *testing.T) {
	dir := t.TempDir()
	sp := filepath.Join(dir, ".anklume", "infra.schema.json")
	if err := os.MkdirAll(filepath.Dir(sp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sp, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := runIn(t, dir, "init")
	want := result{code: 1, stderr: "error: refusing to overwrite .anklume/infra.schema.json: not generated by anklume\n" +
		"  hint: move it away, or pass --force to replace it; the old file is then kept as .anklume/infra.schema.json.bak\n"}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "infra.yml")); !os.IsNotExist(err) {
		t.Errorf("infra.yml written although the schema was refused: %v", err)
	}
}

// TestInitMisc covers --list, an unknown example, -f, infra/ present and
// --base-dir.
func TestInitMisc(t *testing.T) {
	dir := t.TempDir()
	if got := runIn(t, dir, "init", "--list"); got.code != 0 || got.stdout != strings.Join(examples.Names(), "\n")+"\n" {
		t.Errorf("--list: %+v", got)
	}
	got := runIn(t, dir, "init", "--example", "nope")
	if want := "error: unknown example \"nope\" (available: " + strings.Join(examples.Names(), ", ") + ")\n"; got.code != 1 || got.stderr != want {
		t.Errorf("unknown example: %+v", got)
	}
	if got := runIn(t, dir, "init", "-f", "x.yml"); got.code != 1 || !strings.HasPrefix(got.stderr, "error: init does not read -f/--file") {
		t.Errorf("-f: %+v", got)
	}
	if err := os.Mkdir(filepath.Join(dir, "infra"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := runIn(t, dir, "init"); got.code != 1 || !strings.HasPrefix(got.stderr, "error: refusing to write infra.yml: infra/ already holds the PSOT\n") {
		t.Errorf("infra/ present: %+v", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files written: %v", entries)
	}
	got = runIn(t, dir, "init", "--base-dir", "new dir")
	if got.code != 0 {
		t.Fatalf("--base-dir: %+v", got)
	}
	text := read(t, filepath.Join(dir, "new dir", "infra.yml"))
	if !regexp.MustCompile(`(?m)^project_name: new dir-[a-z0-9]{6}$`).MatchString(text) {
		t.Errorf("project_name in %q", projectLine.FindString(text))
	}
}

// TestProjectName: §12.8, control characters removed, "anklume" when
// nothing is left, the suffix drawn without bias from a–z0–9, the whole
// within 128 characters.
func TestProjectName(t *testing.T) {
	seq := func(bs ...byte) *bytes.Reader { return bytes.NewReader(bs) }
	tests := []struct {
		dir  string
		rand *bytes.Reader
		want string
	}{
		{"/home/u/lab", seq(0, 1, 2, 25, 26, 35), "lab-abcz09"},
		{"/home/u/la\x01b\x7f", seq(0, 0, 0, 0, 0, 0), "lab-aaaaaa"},
		{"/", seq(0, 0, 0, 0, 0, 0), "anklume-aaaaaa"},
		{"/tmp/\x1b", seq(0, 0, 0, 0, 0, 0), "anklume-aaaaaa"},
		// 252..255 are rejected (252 = 7×36), 36 wraps to 'a'.
		{"/x/d", seq(252, 253, 254, 255, 36, 37, 71, 0, 0, 0), "d-ab9aaa"},
		{"/x/" + strings.Repeat("é", 200), seq(0, 0, 0, 0, 0, 0), strings.Repeat("é", 121) + "-aaaaaa"},
	}
	for _, tt := range tests {
		got, err := initcmd.ProjectName(tt.dir, tt.rand)
		if err != nil || got != tt.want {
			t.Errorf("ProjectName(%q) = %q, %v; want %q", tt.dir, got, err, tt.want)
		}
	}
	if _, err := initcmd.ProjectName("/x", seq(0, 1)); err == nil {
		t.Error("short random source: no error")
	}
}

// TestSetProjectName: the name is quoted by §6.4 and nothing else moves.
func TestSetProjectName(t *testing.T) {
	tests := []struct {
		in, name, want string
		err            bool
	}{
		{"a: 1\nproject_name: x\nb: 2\n", "lab-abc123", "a: 1\nproject_name: lab-abc123\nb: 2\n", false},
		{"project_name: x\n", "#lab-abc123", "project_name: '#lab-abc123'\n", false},
		{"project_name: x", "a: b-abc123", "project_name: 'a: b-abc123'", false},
		{"  project_name: x\n", "y", "", true},
	}
	for _, tt := range tests {
		got, err := initcmd.SetProjectName([]byte(tt.in), tt.name)
		if (err != nil) != tt.err || string(got) != tt.want {
			t.Errorf("SetProjectName(%q, %q) = %q, %v; want %q", tt.in, tt.name, got, err, tt.want)
		}
	}
}
