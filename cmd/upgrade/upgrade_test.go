package upgrade_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/root"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/hostenv"
	"github.com/anklume/anklume/schema"
)

const psot = `project_name: upg
global:
  addressing: {}
domains:
  work:
    trust_level: trusted
    machines:
      web:
        type: lxc
`

type result struct {
	code   cmdutil.ExitCode
	stdout string
	stderr string
}

// run runs `anklume args…` in dir with the host context of SPEC.md §16.
func run(t *testing.T, dir string, args ...string) result {
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

func read(t *testing.T, dir, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func write(t *testing.T, dir, p, data string) {
	t.Helper()
	full := filepath.Join(dir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// synced returns a directory holding psot and its synced tree.
func synced(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write(t, dir, "infra.yml", psot)
	if r := run(t, dir, "sync"); r.code != 0 {
		t.Fatalf("sync: %d %s", r.code, r.stderr)
	}
	return dir
}

// TestUpgrade is §16 #82: a changed framework file is rewritten and its
// previous version kept as <path>.bak; managed sections (and the user's
// text around them), infra.yml, roles_custom/ and roles_vendor/ are not
// touched.
func TestUpgrade(t *testing.T) {
	dir := synced(t)
	site := read(t, dir, "site.yml")
	oldSite := site + "# from an older anklume\n"
	write(t, dir, "site.yml", oldSite)
	hostVars := read(t, dir, "host_vars/web.yml")
	// The managed block edited by hand: only sync may rewrite it.
	hostVars = strings.Replace(hostVars, "instance_name: web", "instance_name: edited", 1) + "mine: 1\n"
	write(t, dir, "host_vars/web.yml", hostVars)
	user := map[string]string{
		"infra.yml":                        psot,
		"roles_custom/r/tasks/main.yml":    "- name: custom\n",
		"roles_vendor/v/tasks/main.yml":    "- name: vendor\n",
		"host_vars/web.yml":                hostVars,
		"group_vars/all.yml":               read(t, dir, "group_vars/all.yml"),
		"nftables/anklume-isolation.nft":   read(t, dir, "nftables/anklume-isolation.nft"),
		"incus/preseed.yml":                read(t, dir, "incus/preseed.yml"),
		"roles/base_system/tasks/main.yml": read(t, dir, "roles/base_system/tasks/main.yml"),
		".anklume/infra.schema.json":       read(t, dir, ".anklume/infra.schema.json"),
	}
	for p, data := range user {
		write(t, dir, p, data)
	}

	r := run(t, dir, "upgrade")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("upgrade: exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "upgraded: site.yml (previous version saved as site.yml.bak)\nupgrade: 0 created, 1 upgraded, ") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if got := read(t, dir, "site.yml"); got != site {
		t.Errorf("site.yml was not rewritten with this version")
	}
	if got := read(t, dir, "site.yml.bak"); got != oldSite {
		t.Errorf("site.yml.bak = %q, want the previous site.yml", got)
	}
	for p, data := range user {
		if got := read(t, dir, p); got != data {
			t.Errorf("%s was touched:\n%s", p, got)
		}
	}

	// A second run changes nothing and writes no .bak.
	r = run(t, dir, "upgrade")
	if r.code != 0 || strings.Contains(r.stdout, "upgraded:") || !strings.Contains(r.stdout, "upgrade: 0 created, 0 upgraded, ") {
		t.Errorf("second upgrade: exit %d\n%s", r.code, r.stdout)
	}
}

// TestUpgradeRefusesForeignFile: a framework file without the header is
// refused as sync refuses it, nothing is written, and --force replaces it
// keeping the old file as .bak.
func TestUpgradeRefusesForeignFile(t *testing.T) {
	dir := synced(t)
	site := read(t, dir, "site.yml")
	write(t, dir, "site.yml", "- hosts: all\n")
	write(t, dir, "ansible.cfg", read(t, dir, "ansible.cfg")+"# old\n")
	cfg := read(t, dir, "ansible.cfg")

	r := run(t, dir, "upgrade")
	wantErr := "error: refusing to overwrite site.yml: not generated by anklume\n" +
		"  hint: move it away, or pass --force to replace it; the old file is then kept as site.yml.bak\n"
	if r.code != 1 || r.stderr != wantErr || r.stdout != "" {
		t.Errorf("upgrade: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	if read(t, dir, "ansible.cfg") != cfg {
		t.Errorf("ansible.cfg was written although the plan failed")
	}

	r = run(t, dir, "upgrade", "--force")
	want := "upgraded: ansible.cfg (previous version saved as ansible.cfg.bak)\n" +
		"upgraded: site.yml (previous version saved as site.yml.bak)\n"
	if r.code != 0 || !strings.HasPrefix(r.stdout, want) {
		t.Errorf("upgrade --force: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if read(t, dir, "site.yml") != site || read(t, dir, "site.yml.bak") != "- hosts: all\n" {
		t.Errorf("site.yml not replaced, or its .bak is wrong")
	}
}
