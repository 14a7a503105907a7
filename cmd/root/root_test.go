package root

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/hostenv"
)

const cwd = "/home/u/lab"

const validPSOT = `project_name: demo
global:
  addressing: {}
domains:
  work:
    trust_level: trusted
    machines:
      web:
        type: lxc
`

// testEnv is the environment of SPEC.md §16.
var testEnv = map[string]string{
	"ANKLUME_SKIP_HOST_SUBNET_CHECK": "1",
	"ANKLUME_CONTEXT_DIR":            "/nonexistent-context",
	"ANKLUME_HOST_RESOURCES":         "cpu=10,memory=40GiB",
}

type run struct {
	code   cmdutil.ExitCode
	stdout string
	stderr string
}

// newFactory returns a Factory over files (paths relative to cwd, or
// absolute) and env, with buffers for the output.
func newFactory(files map[string]string, env map[string]string) (*cmdutil.Factory, *bytes.Buffer, *bytes.Buffer) {
	rel, abs := fstest.MapFS{}, fstest.MapFS{}
	for p, data := range files {
		f := &fstest.MapFile{Data: []byte(data)}
		if data == "<dir>" {
			f = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
		}
		if strings.HasPrefix(p, "/") {
			abs[strings.TrimPrefix(p, "/")] = f
			continue
		}
		rel[p] = f
		abs[strings.TrimPrefix(cwd, "/")+"/"+p] = f
	}
	if env == nil {
		env = testEnv
	}
	getenv := func(k string) string { return env[k] }
	var out, errOut bytes.Buffer
	f := &cmdutil.Factory{
		IO:        &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Getenv:    getenv,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Getwd:     func() (string, error) { return cwd, nil },
		FS: func(dir string) fs.FS {
			if dir == "/" {
				return abs
			}
			if dir != cwd {
				panic("unexpected fs root " + dir)
			}
			return rel
		},
		Host: func(remote bool) (host.Options, error) {
			sys := hostenv.Sys{
				Getenv:     getenv,
				ReadFile:   func(p string) ([]byte, error) { return fs.ReadFile(abs, strings.TrimPrefix(p, "/")) },
				Interfaces: func() ([]host.Interface, error) { return nil, nil },
			}
			return hostenv.Gather(sys, remote)
		},
		Schema: func() []byte { return []byte("{\n  \"$schema\": \"x\"\n}") },
		SchemaPart: func(name string) ([]byte, error) {
			if name == "domains" {
				return []byte("{\"part\": \"domains\"}\n"), nil
			}
			return nil, errors.New("no such part")
		},
		Build:   cmdutil.BuildInfo{Version: "1.2.3", Commit: "abc1234"},
		Globals: &cmdutil.GlobalOptions{},
	}
	return f, &out, &errOut
}

func runMain(files map[string]string, env map[string]string, args ...string) run {
	f, out, errOut := newFactory(files, env)
	code := Main(f, args)
	return run{code: code, stdout: out.String(), stderr: errOut.String()}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		env   map[string]string
		args  []string
		want  run
	}{
		{
			name:  "§16 #1: the file {} gives exactly 3 errors",
			files: map[string]string{"infra.yml": "{}\n"},
			args:  []string{"validate"},
			want: run{code: 1, stderr: `infra.yml:1:1: (root): missing required key "domains"
infra.yml:1:1: (root): missing required key "global"
infra.yml:1:1: (root): missing required key "project_name"
validation failed: 3 errors
`},
		},
		{
			name:  "§16 #2: a valid file prints ok",
			files: map[string]string{"infra.yml": validPSOT},
			args:  []string{"validate"},
			want:  run{code: 0, stdout: "ok: infra.yml is valid (1 domain, 1 machine, 0 policies)\n"},
		},
		{
			name:  "§16 #3: a misspelt key gets a did-you-mean hint",
			files: map[string]string{"infra.yml": strings.Replace(validPSOT, "type: lxc", "tpye: vm", 1)},
			args:  []string{"validate"},
			want: run{code: 1, stderr: `infra.yml:9:9: domains.work.machines.web.tpye: unknown key "tpye"
  hint: did you mean "type"?
validation failed: 1 error
`},
		},
		{
			name:  "§16 #24: both infra.yml and infra/ warn and use infra.yml",
			files: map[string]string{"infra.yml": validPSOT, "infra/base.yml": "{}\n"},
			args:  []string{"validate"},
			want: run{
				code:   0,
				stdout: "ok: infra.yml is valid (1 domain, 1 machine, 0 policies)\n",
				stderr: "warning: both infra.yml and infra/ exist; using infra.yml\n",
			},
		},
		{
			name:  "§16 #24: neither infra.yml nor infra/",
			files: map[string]string{"README.md": "x"},
			args:  []string{"validate"},
			want:  run{code: 1, stderr: "error: no infra.yml or infra/ directory in the current directory (use -f PATH)\n"},
		},
		{
			name:  "§16 #24: -f PATH that does not exist",
			files: map[string]string{"infra.yml": validPSOT, "prod.yml": validPSOT},
			args:  []string{"validate", "-f", "prod"},
			want:  run{code: 1, stderr: "error: prod: no such file or directory\n"},
		},
		{
			name:  "§16 #24: -f absolute path that does not exist keeps its spelling",
			files: map[string]string{"infra.yml": validPSOT},
			args:  []string{"validate", "-f", cwd + "/nope.yml"},
			want:  run{code: 1, stderr: "error: " + cwd + "/nope.yml: no such file or directory\n"},
		},
		{
			name:  "§16 #24: -f file",
			files: map[string]string{"conf/site.yml": validPSOT},
			args:  []string{"validate", "--file", "conf/site.yml"},
			want:  run{code: 0, stdout: "ok: conf/site.yml is valid (1 domain, 1 machine, 0 policies)\n"},
		},
		{
			name:  "§16 #24: -f absolute path under cwd is shown relative",
			files: map[string]string{"infra.yml": "{}\n"},
			args:  []string{"validate", "-f", cwd + "/infra.yml"},
			want: run{code: 1, stderr: `infra.yml:1:1: (root): missing required key "domains"
infra.yml:1:1: (root): missing required key "global"
infra.yml:1:1: (root): missing required key "project_name"
validation failed: 3 errors
`},
		},
		{
			name:  "§16 #24: -f absolute path outside cwd is shown absolute",
			files: map[string]string{"/srv/lab/infra.yml": validPSOT},
			args:  []string{"validate", "-f", "/srv/lab/infra.yml"},
			want:  run{code: 0, stdout: "ok: /srv/lab/infra.yml is valid (1 domain, 1 machine, 0 policies)\n"},
		},
		{
			name:  "§16 #24: -f ../path outside cwd",
			files: map[string]string{"/home/u/other/infra.yml": validPSOT},
			args:  []string{"validate", "-f", "../other/infra.yml"},
			want:  run{code: 0, stdout: "ok: /home/u/other/infra.yml is valid (1 domain, 1 machine, 0 policies)\n"},
		},
		{
			name: "§16 #24: directory mode names the directory",
			files: map[string]string{
				"infra/base.yml":         "project_name: demo\nglobal:\n  addressing: {}\n",
				"infra/domains/work.yml": "work:\n  trust_level: trusted\n  machines:\n    web: {type: lxc}\n",
			},
			args: []string{"validate"},
			want: run{code: 0, stdout: "ok: infra is valid (1 domain, 1 machine, 0 policies)\n"},
		},
		{
			name:  "§16 #23: directory mode without base.yml",
			files: map[string]string{"infra/domains/work.yml": "work: {}\n"},
			args:  []string{"validate"},
			want:  run{code: 1, stderr: "error: infra/base.yml: not found in infra directory\n"},
		},
		{
			name:  "--json on success",
			files: map[string]string{"infra.yml": validPSOT},
			args:  []string{"validate", "--json"},
			want:  run{code: 0, stdout: `{"valid":true,"errors":[],"warnings":[]}` + "\n"},
		},
		{
			name:  "--json on a fatal error still prints one document",
			files: map[string]string{},
			args:  []string{"validate", "--json"},
			want: run{
				code:   1,
				stdout: `{"valid":false,"errors":[{"file":"","line":0,"col":0,"path":"","message":"no infra.yml or infra/ directory in the current directory (use -f PATH)","hint":""}],"warnings":[]}` + "\n",
				stderr: "error: no infra.yml or infra/ directory in the current directory (use -f PATH)\n",
			},
		},
		{
			name:  "--quiet prints no ok line and no warning",
			files: map[string]string{"infra.yml": validPSOT, "infra/base.yml": "{}\n"},
			args:  []string{"validate", "-q"},
			want:  run{code: 0},
		},
		{
			name:  "--verbose lists the files read",
			files: map[string]string{"infra.yml": validPSOT},
			args:  []string{"validate", "-v"},
			want: run{
				code:   0,
				stdout: "ok: infra.yml is valid (1 domain, 1 machine, 0 policies)\n",
				stderr: "info: read infra.yml\n",
			},
		},
		{
			name:  "a malformed ANKLUME_IMAGE_MAP is a fatal error",
			files: map[string]string{"infra.yml": validPSOT},
			env:   map[string]string{"ANKLUME_SKIP_HOST_SUBNET_CHECK": "1", "ANKLUME_IMAGE_MAP": "debian"},
			args:  []string{"validate"},
			want:  run{code: 1, stderr: `error: ANKLUME_IMAGE_MAP: expected <ref>=<ref>[,…], got "debian"` + "\n"},
		},
		{
			name:  "§16 #30: a bad absolute_level is a fatal error",
			files: map[string]string{"infra.yml": validPSOT, "/ctx/absolute_level": "abc\n"},
			env:   map[string]string{"ANKLUME_SKIP_HOST_SUBNET_CHECK": "1", "ANKLUME_CONTEXT_DIR": "/ctx"},
			args:  []string{"validate"},
			want:  run{code: 1, stderr: `error: /ctx/absolute_level: "abc" is not a non-negative integer` + "\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runMain(tt.files, tt.env, tt.args...)
			assertRun(t, got, tt.want)
		})
	}
}

func assertRun(t *testing.T, got, want run) {
	t.Helper()
	if got.code != want.code {
		t.Errorf("exit code = %d, want %d", got.code, want.code)
	}
	if got.stdout != want.stdout {
		t.Errorf("stdout =\n%s\nwant\n%s", got.stdout, want.stdout)
	}
	if got.stderr != want.stderr {
		t.Errorf("stderr =\n%s\nwant\n%s", got.stderr, want.stderr)
	}
}

func TestValidateJSONInvalid(t *testing.T) {
	got := runMain(map[string]string{"infra.yml": "{}\n"}, nil, "validate", "--json")
	if got.code != 1 || got.stderr != "" {
		t.Fatalf("code %d, stderr %q", got.code, got.stderr)
	}
	var doc struct {
		Valid  bool `json:"valid"`
		Errors []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Col     int    `json:"col"`
			Path    string `json:"path"`
			Message string `json:"message"`
		} `json:"errors"`
		Warnings []any `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(got.stdout), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, got.stdout)
	}
	if doc.Valid || len(doc.Errors) != 3 || doc.Warnings == nil {
		t.Fatalf("doc = %+v", doc)
	}
	e := doc.Errors[2]
	if e.File != "infra.yml" || e.Line != 1 || e.Col != 1 || e.Path != "(root)" || e.Message != `missing required key "project_name"` {
		t.Errorf("errors[2] = %+v", e)
	}
}

func TestOtherCommands(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want run
	}{
		{
			name: "version",
			args: []string{"version"},
			want: run{stdout: "anklume 1.2.3 (commit abc1234, " + goosArch() + ")\n"},
		},
		{
			name: "schema prints the whole schema with a final newline",
			args: []string{"schema"},
			want: run{stdout: "{\n  \"$schema\": \"x\"\n}\n"},
		},
		{
			name: "schema --part domains",
			args: []string{"schema", "--part", "domains"},
			want: run{stdout: "{\"part\": \"domains\"}\n"},
		},
		{
			name: "schema --part base fails in the schema package",
			args: []string{"schema", "--part", "base"},
			want: run{code: 1, stderr: "error: schema part \"base\": no such part\n"},
		},
		{
			name: "--verbose with --quiet",
			args: []string{"version", "-v", "-q"},
			want: run{code: 1, stderr: "error: --verbose and --quiet cannot be used together\nRun 'anklume version --help' for usage.\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertRun(t, runMain(nil, nil, tt.args...), tt.want)
		})
	}
}

// TestUsageErrors checks that flag and argument errors print "error: …"
// and one line naming the command's --help, and exit 1.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args    []string
		first   string
		command string
	}{
		{[]string{"schema", "--part", "nope"}, `error: invalid --part "nope": must be one of base, domains, policies`, "schema"},
		{[]string{"validate", "--bogus"}, "error: unknown flag: --bogus", "validate"},
		{[]string{"validate", "extra"}, `error: validate: expected no arguments, got 1 ("extra")`, "validate"},
		{[]string{"frobnicate"}, `error: unknown command "frobnicate" for "anklume"`, ""}, // far from every command name: no did-you-mean
		{[]string{"valdate"}, `error: unknown command "valdate" for "anklume"; did you mean "validate"?`, ""},
		{[]string{"snapshot", "creat"}, `error: unknown command "creat" for "anklume snapshot"; did you mean "create"?`, "snapshot"},
		{[]string{"nftables", "bogus"}, `error: unknown command "bogus" for "anklume nftables"`, "nftables"},
		{[]string{"golden", "create"}, `error: golden create: expected 1 argument (MACHINE), got 0`, "golden create"},
		{[]string{"golden", "derive", "a"}, `error: golden derive: expected 2 arguments (MACHINE NEW), got 1`, "golden derive"},
		{[]string{"snapshot", "rollback", "a", "b"}, `error: snapshot rollback: expected at most 1 argument (TIMESTAMP), got 2`, "snapshot rollback"},
		{[]string{"completion"}, "error: completion: expected 1 argument (SHELL), got 0", "completion"},
		{[]string{"completion", "tcsh"}, `error: unsupported shell "tcsh": expected bash, zsh, fish or powershell`, "completion"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got := runMain(nil, nil, tt.args...)
			if got.code != 1 || got.stdout != "" {
				t.Errorf("code %d, stdout %q", got.code, got.stdout)
			}
			want := tt.first + "\nRun 'anklume " + tt.command + " --help' for usage.\n"
			if tt.command == "" {
				want = tt.first + "\nRun 'anklume --help' for usage.\n"
			}
			if got.stderr != want {
				t.Errorf("stderr =\n%s\nwant\n%s", got.stderr, want)
			}
		})
	}
}

// TestVersionFlag: anklume --version prints what anklume version prints.
func TestVersionFlag(t *testing.T) {
	got := runMain(nil, nil, "--version")
	want := runMain(nil, nil, "version")
	if got.code != 0 || got.stdout != want.stdout || got.stdout != "anklume 1.2.3 (commit abc1234, "+goosArch()+")\n" {
		t.Errorf("--version: %+v, version: %+v", got, want)
	}
}

func TestVersionJSON(t *testing.T) {
	got := runMain(nil, nil, "version", "--json")
	var v map[string]string
	if err := json.Unmarshal([]byte(got.stdout), &v); err != nil || got.code != 0 {
		t.Fatalf("code %d, %v: %s", got.code, err, got.stdout)
	}
	if v["version"] != "1.2.3" || v["commit"] != "abc1234" || v["goos"] == "" || v["goarch"] == "" {
		t.Errorf("version json = %v", v)
	}
}

func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		got := runMain(nil, nil, "completion", sh)
		if got.code != 0 || !strings.Contains(got.stdout, "anklume") || got.stderr != "" {
			t.Errorf("%s: code %d, stderr %q, %d bytes", sh, got.code, got.stderr, len(got.stdout))
		}
	}
}

func TestHelpGoesToStdout(t *testing.T) {
	got := runMain(nil, nil, "--help")
	if got.code != 0 || !strings.Contains(got.stdout, "validate") || got.stderr != "" {
		t.Errorf("code %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
}

func TestColorEnabled(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		tty     bool
		noColor bool
		want    bool
	}{
		{"tty", map[string]string{}, true, false, true},
		{"not a tty", map[string]string{}, false, false, false},
		{"§16 #72: NO_COLOR empty", map[string]string{"NO_COLOR": ""}, true, false, false},
		{"TERM=dumb", map[string]string{"TERM": "dumb"}, true, false, false},
		{"--no-color", map[string]string{}, true, true, false},
	}
	for _, tt := range tests {
		f, _, _ := newFactory(nil, tt.env)
		f.Globals.NoColor = tt.noColor
		if got := f.ColorEnabled(tt.tty); got != tt.want {
			t.Errorf("%s: ColorEnabled = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRemoteFromEnv(t *testing.T) {
	f, _, _ := newFactory(nil, map[string]string{"ANKLUME_REMOTE": "lab"})
	if got := f.Remote(); got != "lab" {
		t.Errorf("Remote() = %q", got)
	}
	f.Globals.Remote = "prod"
	if got := f.Remote(); got != "prod" {
		t.Errorf("Remote() with --remote = %q", got)
	}
}

func goosArch() string { return runtime.GOOS + "/" + runtime.GOARCH }
