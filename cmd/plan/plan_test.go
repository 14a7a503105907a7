package plancmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/cmd/cmdutil"
	plancmd "github.com/anklume/anklume/cmd/plan"
	"github.com/anklume/anklume/cmd/root"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/hostenv"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/schema"
)

const psot = `project_name: demo
global:
  addressing: {zone_base: 200}
domains:
  work:
    trust_level: trusted
    egress: false
    machines:
      web: {}
  lab:
    trust_level: admin
    egress: false
    machines:
      box: {os_image: nope}
`

type result struct {
	code           cmdutil.ExitCode
	stdout, stderr string
}

// run runs `anklume args…` in a directory holding infra.yml = src, against
// the fake, with env added to the test host environment.
func run(t *testing.T, f *incusx.Fake, src string, tty bool, env map[string]string, args ...string) result {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "infra.yml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	e := map[string]string{
		hostenv.EnvSkipSubnet:    "1",
		hostenv.EnvContextDir:    t.TempDir(),
		hostenv.EnvHostResources: "cpu=10,memory=40GiB",
		hostenv.EnvImageMap:      "images:debian/13=anklume-test",
	}
	for k, v := range env {
		e[k] = v
	}
	var out, errOut bytes.Buffer
	fac := &cmdutil.Factory{
		IO:        &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, OutTTY: tty},
		Getenv:    func(k string) string { return e[k] },
		LookupEnv: func(k string) (string, bool) { v, ok := e[k]; return v, ok },
		Getwd:     func() (string, error) { return dir, nil },
		FS:        func(d string) fs.FS { return os.DirFS(d) },
		Host: func(remote bool) (host.Options, error) {
			return hostenv.Gather(hostenv.Sys{
				Getenv:     func(k string) string { return e[k] },
				ReadFile:   os.ReadFile,
				Interfaces: func() ([]host.Interface, error) { return nil, nil },
			}, remote)
		},
		Schema:     schema.JSON,
		SchemaPart: schema.Part,
		Globals:    &cmdutil.GlobalOptions{},
		Incus: func(ctx context.Context, remote string) (incusx.Server, error) {
			return f, nil
		},
	}
	code := root.Main(fac, args)
	return result{code, out.String(), errOut.String()}
}

// TestPlanCommand: output, exit codes and stderr of `anklume plan`
// (SPEC.md §16 #56, #57, #62, §9.4, §13).
func TestPlanCommand(t *testing.T) {
	fixed := strings.Replace(psot, "{os_image: nope}", "{}", 1)
	tests := []struct {
		name       string
		src        string
		args       []string
		tty        bool
		env        map[string]string
		code       cmdutil.ExitCode
		stdoutHas  []string
		stdoutNot  []string
		stderrWant string
	}{
		{
			name: "failed domain", src: psot, args: []string{"plan"}, code: 1,
			stdoutHas: []string{"Domain lab (project lab, network net-lab)\n  ! domain lab: failed: image alias \"nope\" not found on the Incus server; add it (incus image copy images:debian/13 local: --alias nope) or use a remote image such as images:debian/13\n",
				"  + instance work/web (lxc, anklume-test, 10.210.0.1)\n", "Plan: 4 to create, 0 to update, 0 to delete.\n"},
			stderrWant: "error: domain lab: image alias \"nope\" not found on the Incus server; add it (incus image copy images:debian/13 local: --alias nope) or use a remote image such as images:debian/13\n",
		},
		{
			name: "creates", src: fixed, args: []string{"plan"}, code: 0,
			stdoutHas:  []string{"! image images:debian/13: mapped to anklume-test by ANKLUME_IMAGE_MAP\n", "Plan: 8 to create, 0 to update, 0 to delete.\n"},
			stdoutNot:  []string{"\x1b["},
			stderrWant: "",
		},
		{name: "detailed exit code", src: fixed, args: []string{"plan", "--detailed-exitcode"}, code: 2},
		{
			name: "limit", src: fixed, args: []string{"plan", "--limit", "work"}, code: 0,
			stdoutHas: []string{"Plan: 4 to create, 0 to update, 0 to delete.\n"}, stdoutNot: []string{"lab"},
		},
		{name: "unknown limit", src: fixed, args: []string{"plan", "--limit", "nope"}, code: 1,
			stderrWant: "error: --limit: unknown domain \"nope\"\n"},
		{name: "mistyped limit", src: fixed, args: []string{"plan", "--limit", "wrok"}, code: 1,
			stderrWant: "error: --limit: unknown domain \"wrok\"; did you mean \"work\"?\n"},
		{name: "colour on a TTY", src: fixed, args: []string{"plan"}, tty: true, code: 0,
			stdoutHas: []string{"  \x1b[32m+\x1b[0m project work\n", "\x1b[35m!\x1b[0m image"}},
		{name: "NO_COLOR", src: fixed, args: []string{"plan"}, tty: true, env: map[string]string{"NO_COLOR": ""}, code: 0,
			stdoutNot: []string{"\x1b["}},
		{name: "--no-color", src: fixed, args: []string{"plan", "--no-color"}, tty: true, code: 0, stdoutNot: []string{"\x1b["}},
		{name: "no domain, nothing live", src: "project_name: demo\nglobal: {}\ndomains: {}\n", args: []string{"plan", "--detailed-exitcode"},
			code: 0, stdoutHas: []string{"No changes. Incus matches the configuration.\n"}},
		{name: "invalid PSOT", src: "project_name: demo\n", args: []string{"plan"}, code: 1, stdoutNot: []string{"Plan"}},
		{name: "malformed image map", src: fixed, args: []string{"plan"}, env: map[string]string{hostenv.EnvImageMap: "x"}, code: 1,
			stderrWant: "error: ANKLUME_IMAGE_MAP: expected <ref>=<ref>[,…], got \"x\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, incusx.NewFake(), tt.src, tt.tty, tt.env, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, s := range tt.stdoutHas {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range tt.stdoutNot {
				if strings.Contains(r.stdout, s) {
					t.Errorf("stdout has %q:\n%s", s, r.stdout)
				}
			}
			if tt.stderrWant != "" && r.stderr != tt.stderrWant {
				t.Errorf("stderr = %q, want %q", r.stderr, tt.stderrWant)
			}
		})
	}
}

// TestPlanJSON: --json prints one document of the §9.4 schema and nothing
// else on stdout (SPEC.md §16 #57).
func TestPlanJSON(t *testing.T) {
	r := run(t, incusx.NewFake(), psot, false, nil, "plan", "--json")
	if r.code != 1 {
		t.Errorf("exit %d with a failed domain", r.code)
	}
	var doc struct {
		FormatVersion int `json:"format_version"`
		Changes       []struct {
			Action, Kind, Name, Project, Domain, Reason string
			Restart                                     bool
			Diff                                        []any
		}
		Notes         []map[string]string
		FailedDomains []map[string]string `json:"failed_domains"`
		Summary       map[string]int
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not the plan document: %v\n%s", err, r.stdout)
	}
	if dec.More() {
		t.Error("more than one document")
	}
	if doc.FormatVersion != 1 || len(doc.Changes) != 4 || doc.Summary["create"] != 4 ||
		len(doc.FailedDomains) != 1 || doc.FailedDomains[0]["domain"] != "lab" {
		t.Errorf("doc = %+v", doc)
	}
}

// TestPlanErrors: plan errors are printed with their hints and exit 1
// (SPEC.md §16 #88, §9.2).
func TestPlanErrors(t *testing.T) {
	f := incusx.NewFake()
	if err := f.CreateProject(context.Background(), api.ProjectsPost{Name: "work"}); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(psot, "{os_image: nope}", "{}", 1)
	r := run(t, f, src, false, nil, "plan")
	want := "error: project work exists and is not managed by anklume\n  hint: pass --adopt to take it over, or rename the domain or machine\n"
	if r.code != 1 || r.stderr != want || r.stdout != "" {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, f, src, false, nil, "plan", "--adopt")
	if r.code != 0 || !strings.Contains(r.stdout, "  ~ project work (adopt)\n") {
		t.Errorf("--adopt: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestPlanFlags: every flag reaches the options.
func TestPlanFlags(t *testing.T) {
	var got *plancmd.Options
	fac := &cmdutil.Factory{IO: &cmdutil.IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, Globals: &cmdutil.GlobalOptions{}}
	cmd := plancmd.NewCmdPlan(fac, func(o *plancmd.Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--limit", "a", "--limit", "b", "--adopt", "--allow-empty", "--prune-volumes", "--force", "--json", "--detailed-exitcode"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Limit, []string{"a", "b"}) || !got.Adopt || !got.AllowEmpty || !got.PruneVolumes || !got.Force || !got.JSON || !got.DetailedExitCode {
		t.Errorf("options %+v", got)
	}
}

// TestPlanRemoteResources: with --remote and a resource_policy, the host
// resources come from GET /1.0/resources, read once with the plan's
// requests, and the directories are listed as "must exist on the Incus
// host" (SPEC.md §9.1 item 11, §2.14, §4.11).
func TestPlanRemoteResources(t *testing.T) {
	f := incusx.NewFake()
	src := strings.Replace(strings.Replace(psot, "{os_image: nope}", "{persistent_data: {home: {path: /home}}}", 1),
		"global:\n", "global:\n  resource_policy: true\n", 1)
	r := run(t, f, src, false, map[string]string{hostenv.EnvHostResources: ""}, "plan", "--remote", "far")
	if r.code != 0 || strings.Contains(r.stderr, "could not detect host resources") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "! directory /srv/anklume/data/lab/box/home: must exist on the Incus host\n") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	n := 0
	for _, req := range f.Log().Strings() {
		if req == "GET /1.0/resources" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("GET /1.0/resources sent %d times:\n%s", n, strings.Join(f.Log().Strings(), "\n"))
	}
	// Without a resource policy, no resources request.
	f = incusx.NewFake()
	run(t, f, strings.Replace(psot, "{os_image: nope}", "{}", 1), false, map[string]string{hostenv.EnvHostResources: ""}, "plan", "--remote", "far")
	if slices.Contains(f.Log().Strings(), "GET /1.0/resources") {
		t.Error("resources read without a resource policy")
	}
}

// TestRemoteResourcesSameLimits: with --remote and a resource_policy,
// validate and sync read the Incus host's resources as plan does: neither
// warns that detection failed (cmd/apply's TestApplyRemoteResources shows
// that apply does the same and leaves nothing to plan).
func TestRemoteResourcesSameLimits(t *testing.T) {
	f := incusx.NewFake()
	var res api.Resources
	res.CPU.Total = 8
	res.Memory.Total = 16 << 30
	f.SetResources(res)
	src := strings.Replace(strings.Replace(psot, "{os_image: nope}", "{}", 1),
		"global:\n", "global:\n  resource_policy: true\n", 1)
	noLocal := map[string]string{hostenv.EnvHostResources: ""}
	for _, args := range [][]string{{"validate"}, {"sync"}, {"plan"}} {
		r := run(t, f, src, false, noLocal, append(args, "--remote", "far")...)
		if r.code != 0 || strings.Contains(r.stderr, "could not detect host resources") {
			t.Errorf("%v --remote: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
}
