package importcmd_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/root"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/apply"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/reconcile"
)

const psot = `project_name: demo
global:
  addressing: {zone_base: 200}
  default_os_image: anklume-test
domains:
  work:
    trust_level: trusted
    egress: false
    machines:
      web: {}
network_policies:
  - {from: host, to: web, ports: [80]}
`

// applied returns a fake holding psot, applied.
func applied(t *testing.T) *incusx.Fake {
	t.Helper()
	fsys := fstest.MapFS{"infra.yml": {Data: []byte(psot)}}
	res, dl, err := compiler.Compile(fsys, compiler.Input{Path: "infra.yml", Display: "infra.yml"},
		host.Options{SkipHostSubnetCheck: true})
	if err != nil || res == nil {
		t.Fatalf("compile: %v %v", err, dl)
	}
	f := incusx.NewFake()
	ctx := context.Background()
	obs, err := reconcile.Observe(ctx, f, reconcile.ObserveOptions{Pools: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := reconcile.Diff(incus.Desired(res.Model), obs, reconcile.Options{Model: res.Model})
	if err != nil {
		t.Fatal(err)
	}
	if r := apply.Execute(ctx, p, apply.Options{Server: f}); !r.OK() {
		t.Fatalf("apply: %+v", r.Failures)
	}
	return f
}

type result struct {
	code           cmdutil.ExitCode
	stdout, stderr string
}

// run runs `anklume args…` in dir against f.
func run(t *testing.T, f *incusx.Fake, dir string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	fac := &cmdutil.Factory{
		IO:        &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Getenv:    func(string) string { return "" },
		LookupEnv: func(string) (string, bool) { return "", false },
		Getwd:     func() (string, error) { return dir, nil },
		FS:        func(d string) fs.FS { return os.DirFS(d) },
		Host:      func(bool) (host.Options, error) { return host.Options{}, nil },
		Globals:   &cmdutil.GlobalOptions{},
		Incus:     func(context.Context, string) (incusx.Server, error) { return f, nil },
		Schema:    func() []byte { return []byte("{\"title\": \"test schema\"}\n") },
	}
	code := root.Main(fac, args)
	return result{code, out.String(), errOut.String()}
}

// TestImportCommand checks the output rules of §11: the default file, the
// refusal to overwrite, --force, -o -, and the errors.
func TestImportCommand(t *testing.T) {
	f := applied(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "infra.imported.yml")

	got := run(t, f, dir, "import")
	wantErr := "import: wrote infra.imported.yml (project_name \"demo\", 1 domain, 1 machine, 1 network policy)\n"
	if got.code != 0 || got.stdout != "" || got.stderr != wantErr {
		t.Fatalf("import: %+v", got)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "\nformat_version: 1\nproject_name: demo\n") ||
		!strings.Contains(string(data), "\n# yaml-language-server: $schema=.anklume/infra.schema.json\n") {
		t.Errorf("written file:\n%s", data)
	}
	// The schema its modeline names is there.
	if schema, err := os.ReadFile(filepath.Join(dir, ".anklume", "infra.schema.json")); err != nil || !strings.Contains(string(schema), "test schema") {
		t.Errorf("schema next to the imported file: %v %s", err, schema)
	}
	got = run(t, f, dir, "import")
	if got.code != 1 || got.stderr != "error: infra.imported.yml exists; use --force or -o\n" {
		t.Errorf("second import: %+v", got)
	}
	if got = run(t, f, dir, "import", "--force", "-q"); got.code != 0 || got.stderr != "" {
		t.Errorf("import --force: %+v", got)
	}

	f.Log().Reset()
	got = run(t, f, dir, "import", "-o", "-")
	if got.code != 0 || got.stdout != string(data) {
		t.Errorf("import -o -: %+v\nwant stdout:\n%s", got, data)
	}
	for _, r := range f.Log().Strings() {
		if !strings.HasPrefix(r, "GET ") {
			t.Errorf("import sent %s", r)
		}
	}

	tests := []struct {
		args []string
		want string
	}{
		{[]string{"import", "-o", "-", "--project", "nope"}, "error: project \"nope\" not found\n"},
		{[]string{"import", "-o", "-", "--infra", "other"}, "error: infrastructure \"other\" not found (found: demo)\n"},
	}
	for _, tt := range tests {
		if got := run(t, f, dir, tt.args...); got.code != 1 || got.stderr != tt.want || got.stdout != "" {
			t.Errorf("%v: %+v, want stderr %q", tt.args, got, tt.want)
		}
	}
}
