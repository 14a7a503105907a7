package e2e

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit"
	"github.com/anklume/anklume/compiler/emit/ansible"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/examples"
)

// needTools skips t, saying why, unless every tool is in PATH.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			skip(t, "%s is not installed; .ci/run installs it", tool)
		}
	}
}

// writeAnsibleTree compiles the PSOT src in process and writes its Ansible
// files (ansible.Files) to a new temporary directory, as sync does.
func writeAnsibleTree(t *testing.T, src []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "infra.yml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	fsys := os.DirFS(dir)
	opts := host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
	res, dl, err := compiler.Compile(fsys, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, opts)
	if err != nil || res == nil {
		t.Fatalf("compile: %v\n%v", err, dl)
	}
	plan, err := tree.NewPlan(dir, ansible.Files(res.Model), false)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if err := plan.Apply(io.Discard, tree.Options{}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	// Play 3 loads incus/desired-state.yml at run time; another back end
	// writes it, and the syntax check does not need it.
	return dir
}

// writeWholeTree compiles the PSOT src in process and writes every file
// sync writes (emit.Tree) to a new temporary directory.
func writeWholeTree(t *testing.T, src []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "infra.yml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
	res, dl, err := compiler.Compile(os.DirFS(dir), compiler.Input{Path: "infra.yml", Display: "infra.yml"}, opts)
	if err != nil || res == nil {
		t.Fatalf("compile: %v\n%v", err, dl)
	}
	plan, err := tree.NewPlan(dir, emit.Tree(res.Model), false)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if err := plan.Apply(io.Discard, tree.Options{}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return dir
}

// ansibleEnv runs Ansible tools in dir with its ansible.cfg and without
// reaching the network or the user's configuration.
func ansibleEnv(dir string) []string {
	return append(os.Environ(),
		"ANSIBLE_CONFIG="+filepath.Join(dir, "ansible.cfg"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, ".ansible-tmp"),
		"ANSIBLE_REMOTE_TMP="+filepath.Join(dir, ".ansible-remote-tmp"),
		"ANSIBLE_NOCOLOR=1",
		"NO_COLOR=1",
		"HOME="+dir,
	)
}

func run(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = ansibleEnv(dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestAnsibleTreeSyntax: for every example, the generated tree passes
// `ansible-playbook --syntax-check` on ansible-core without
// community.general (SPEC.md §16 #46), and ansible-lint with the
// production profile.
func TestAnsibleTreeSyntax(t *testing.T) {
	needTools(t, "ansible-playbook")
	for _, name := range examples.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, err := examples.Read(name)
			if err != nil {
				t.Fatal(err)
			}
			dir := writeAnsibleTree(t, src)
			out, err := run(t, dir, "ansible-playbook", "-i", "inventory", "site.yml", "--syntax-check")
			if err != nil {
				t.Fatalf("ansible-playbook --syntax-check: %v\n%s", err, out)
			}
		})
	}
}

// TestAnsibleLint runs ansible-lint (production profile, offline) on the
// whole synced tree of every example (incus/ and nftables/ included), as
// users run it: from a directory that git does not ignore (a fresh
// repository), where ansible-lint lints every YAML file it finds.
func TestAnsibleLint(t *testing.T) {
	needTools(t, "ansible-lint", "git")
	for _, name := range examples.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, err := examples.Read(name)
			if err != nil {
				t.Fatal(err)
			}
			dir := writeWholeTree(t, src)
			if out, err := run(t, dir, "git", "init", "-q", "."); err != nil {
				t.Fatalf("git init: %v\n%s", err, out)
			}
			out, err := run(t, dir, "ansible-lint", "--offline", "--profile", "production", "--nocolor")
			if err != nil {
				t.Fatalf("ansible-lint: %v\n%s", err, out)
			}
		})
	}
}

// TestConnectionPluginListed: `ansible-doc -t connection -l`, run in the
// base directory, lists the bundled anklume_incus plugin, which play 1
// relies on (SPEC.md §6.7 item 4).
func TestConnectionPluginListed(t *testing.T) {
	needTools(t, "ansible-doc")
	src, err := examples.Read(examples.Default)
	if err != nil {
		t.Fatal(err)
	}
	dir := writeAnsibleTree(t, src)
	out, err := run(t, dir, "ansible-doc", "-t", "connection", "-l")
	if err != nil {
		t.Fatalf("ansible-doc -l: %v\n%s", err, out)
	}
	found := false
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == ansible.BundledConnection || f[0] == "ansible.legacy."+ansible.BundledConnection) {
			found = true
		}
	}
	if !found {
		t.Fatalf("ansible-doc -t connection -l does not list %s:\n%s", ansible.BundledConnection, out)
	}
	if out, err := run(t, dir, "ansible-doc", "-t", "connection", ansible.BundledConnection); err != nil {
		t.Fatalf("ansible-doc -t connection %s: %v\n%s", ansible.BundledConnection, err, out)
	}
}

// fakeIncus is an `incus` stand-in for the connection tests: it logs its
// argument vector, one line per call, then runs `exec` commands and copies
// `file push`/`pull` files on this machine. The instance "missing" does
// not exist.
const fakeIncus = `#!/bin/sh
printf '%s\n' "$*" >> "$ANKLUME_FAKE_INCUS_LOG"
[ "$1" = --project ] || { echo "Error: expected --project first" >&2; exit 90; }
shift 2
case "$1 $2 $3" in
*local:missing*) echo "Error: Instance not found" >&2; exit 1 ;;
esac
case "$1" in
exec)
	case "$2" in *:*) ;; *) echo "Error: expected <remote>:<name>" >&2; exit 91 ;; esac
	[ "$3" = -- ] || { echo "Error: expected --" >&2; exit 92; }
	shift 3
	exec "$@" ;;
file)
	case "$2" in
	push) cp "$3" "/${4#*/}" ;;
	pull) cp "/${3#*/}" "$4" ;;
	*) exit 93 ;;
	esac ;;
*) exit 94 ;;
esac
`

// probeInventory has two hosts with roles and one without; they stand for
// instances of project "proj".
const probeInventory = `all:
  hosts:
    h1:
      instance_name: inst-h1
      incus_project: proj
      instance_roles: [probe_role]
    h2:
      instance_name: inst-h2
      incus_project: proj
      instance_roles: [probe_role]
    h3:
      instance_name: inst-h3
      incus_project: proj
`

// withFakeIncus writes fakeIncus into dir/bin and returns the environment
// that puts it first in PATH, and the path of its log.
func withFakeIncus(t *testing.T, dir string) (env []string, log string) {
	t.Helper()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "incus"), []byte(fakeIncus), 0o755); err != nil {
		t.Fatal(err)
	}
	log = filepath.Join(dir, "incus.log")
	env = append(ansibleEnv(dir), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "ANKLUME_FAKE_INCUS_LOG="+log)
	return env, log
}

func runEnv(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestProvisioningConnection runs play 1 and the always-tagged pre_tasks
// of play 4 of a generated site.yml against a fake incus CLI, on
// ansible-core without community.general (SPEC.md §16 #67, §6.7 item 4):
// play 1 computes anklume_connection once for every host; with
// default_connection community.general.incus it warns and falls back to
// anklume_incus; play 4 then reaches each instance with
// `incus --project proj exec local:<instance> -- /bin/sh -c <cmd>` and
// pushes module files with `incus file push`; the host without roles is
// skipped.
func TestProvisioningConnection(t *testing.T) {
	needTools(t, "ansible-playbook", "ansible-doc")
	tests := []struct {
		name     string
		extra    []string
		wantWarn bool
	}{
		{name: "no default_connection"},
		{name: "unavailable default_connection", extra: []string{"-e", "psot_default_connection=community.general.incus"}, wantWarn: true},
		{name: "available default_connection", extra: []string{"-e", "psot_default_connection=anklume_incus"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := examples.Read(examples.Default)
			if err != nil {
				t.Fatal(err)
			}
			dir := writeAnsibleTree(t, src)
			if err := os.WriteFile(filepath.Join(dir, "probe.yml"), []byte(probeInventory), 0o644); err != nil {
				t.Fatal(err)
			}
			env, log := withFakeIncus(t, dir)
			args := append([]string{"-i", "probe.yml", "site.yml", "--tags", "always"}, tt.extra...)
			out, err := runEnv(dir, env, "ansible-playbook", args...)
			if err != nil {
				t.Fatalf("ansible-playbook: %v\n%s", err, out)
			}
			warn := "default_connection community.general.incus is not available; using anklume_incus"
			if got := strings.Contains(out, warn); got != tt.wantWarn {
				t.Errorf("warning printed = %v, want %v\n%s", got, tt.wantWarn, out)
			}
			data, err := os.ReadFile(log)
			if err != nil {
				t.Fatalf("the fake incus was never run: %v\n%s", err, out)
			}
			calls := string(data)
			for _, want := range []string{
				"--project proj exec local:inst-h1 -- /bin/sh -c ",
				"--project proj exec local:inst-h2 -- /bin/sh -c ",
				"--project proj file push ",
			} {
				if !strings.Contains(calls, want) {
					t.Errorf("no incus call %q in:\n%s", want, calls)
				}
			}
			if strings.Contains(calls, "inst-h3") {
				t.Errorf("h3 has no roles and must be skipped:\n%s", calls)
			}
		})
	}
}

// TestConnectionPluginFiles: the plugin fetches files with `incus file
// pull`, and an instance Incus does not know is unreachable, not failed.
func TestConnectionPluginFiles(t *testing.T) {
	needTools(t, "ansible")
	src, err := examples.Read(examples.Default)
	if err != nil {
		t.Fatal(err)
	}
	dir := writeAnsibleTree(t, src)
	env, log := withFakeIncus(t, dir)
	from := filepath.Join(dir, "remote.txt")
	if err := os.WriteFile(from, []byte("pulled\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(dir, "fetched.txt")
	common := []string{"-i", "inst,", "-c", ansible.BundledConnection, "-e", "ansible_incus_project=proj",
		"-e", "ansible_python_interpreter=/usr/bin/python3"}
	out, err := runEnv(dir, env, "ansible", append([]string{"all"}, append(common,
		"-m", "ansible.builtin.fetch", "-a", "src="+from+" dest="+to+" flat=true")...)...)
	if err != nil {
		t.Fatalf("ansible -m fetch: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(to); err != nil || string(got) != "pulled\n" {
		t.Errorf("fetched %q, %v; want %q", got, err, "pulled\n")
	}
	calls, _ := os.ReadFile(log)
	if !strings.Contains(string(calls), "--project proj file pull local:inst"+from+" ") {
		t.Errorf("no incus file pull in:\n%s", calls)
	}

	out, err = runEnv(dir, env, "ansible", append([]string{"all"}, append([]string{"-i", "missing,", "-c", ansible.BundledConnection},
		"-m", "ansible.builtin.ping")...)...)
	if err == nil || !strings.Contains(out, "UNREACHABLE") || !strings.Contains(out, "Instance not found") {
		t.Errorf("ping of a missing instance: err %v, want UNREACHABLE with the Incus error:\n%s", err, out)
	}
}
