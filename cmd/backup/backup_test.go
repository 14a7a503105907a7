package backupcmd_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/root"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/apply"
	_ "github.com/anklume/anklume/internal/goldenflag" // accept go test ./... -update
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/reconcile"
)

const psot = `format_version: 1
project_name: h19-backup
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: anklume-test
domains:
  work:
    trust_level: trusted
    egress: false
    ephemeral: true
    machines:
      web: {ip: 10.210.0.11}
  lab:
    trust_level: semi-trusted
    egress: false
    ephemeral: true
    machines:
      lab-1: {}
`

type env struct {
	dir      string
	fake     *incusx.Fake
	connects int
}

func hostOpts() host.Options {
	return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
}

// newEnv writes psot and applies it to a new fake; web holds a file so
// that a backup has content to compare.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), fake: incusx.NewFake()}
	if err := os.WriteFile(filepath.Join(e.dir, "infra.yml"), []byte(psot), 0o644); err != nil {
		t.Fatal(err)
	}
	res, dl, err := compiler.Compile(os.DirFS(e.dir), compiler.Input{Path: "infra.yml", Display: "infra.yml"}, hostOpts())
	if err != nil || res == nil || res.Model == nil {
		t.Fatalf("compile: %v %v", err, dl)
	}
	ctx := context.Background()
	obs, err := reconcile.Observe(ctx, e.fake, reconcile.ObserveOptions{Pools: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := reconcile.Diff(incus.Desired(res.Model), obs, reconcile.Options{Model: res.Model, ResolveImage: e.fake.ResolveImage})
	if err != nil {
		t.Fatal(err)
	}
	if r := apply.Execute(ctx, p, apply.Options{Server: e.fake, NoSnapshot: true}); !r.OK() {
		t.Fatalf("apply: %+v", r)
	}
	if err := e.fake.WriteInstanceFile(ctx, "work", "web", "/etc/secret", []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.fake.Log().Reset()
	return e
}

type result struct {
	code           cmdutil.ExitCode
	stdout, stderr string
}

// run runs `anklume args…` through the root command.
func (e *env) run(args ...string) result {
	var out, errOut bytes.Buffer
	code := e.runIO(&cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args...)
	return result{code, out.String(), errOut.String()}
}

// runIO runs `anklume args…` with the streams s and returns the exit
// code.
func (e *env) runIO(s *cmdutil.IOStreams, args ...string) cmdutil.ExitCode {
	f := &cmdutil.Factory{
		IO:        s,
		Getenv:    func(string) string { return "" },
		LookupEnv: func(string) (string, bool) { return "", false },
		Getwd:     func() (string, error) { return e.dir, nil },
		FS:        func(d string) fs.FS { return os.DirFS(d) },
		Host:      func(bool) (host.Options, error) { return hostOpts(), nil },
		Globals:   &cmdutil.GlobalOptions{},
		Incus:     func(context.Context, string) (incusx.Server, error) { e.connects++; return e.fake, nil },
	}
	return root.Main(f, args)
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// backupPath checks that stdout is exactly "backup: <dir>/<machine>-<stamp><ext>\n"
// with a stamp (UTC) between before and after, and returns the path.
func backupPath(t *testing.T, got result, dir, machine, ext string, before, after time.Time) string {
	t.Helper()
	re := regexp.MustCompile(`^backup: ` + regexp.QuoteMeta(dir+string(filepath.Separator)+machine+"-") + `(\d{8}-\d{6})` + regexp.QuoteMeta(ext) + "\n$")
	m := re.FindStringSubmatch(got.stdout)
	if got.code != 0 || got.stderr != "" || m == nil {
		t.Fatalf("backup create: %+v, want backup: %s/%s-YYYYMMDD-HHMMSS%s", got, dir, machine, ext)
	}
	ts, err := time.Parse("20060102-150405", m[1])
	if err != nil || ts.Before(before.UTC().Truncate(time.Second)) || ts.After(after.UTC()) {
		t.Errorf("stamp %s not between %s and %s", m[1], before.UTC(), after.UTC())
	}
	return strings.TrimSuffix(strings.TrimPrefix(got.stdout, "backup: "), "\n")
}

// secretOf returns /etc/secret from a fake backup tarball.
func secretOf(t *testing.T, data []byte) string {
	t.Helper()
	files, err := incusx.FakeBackupFiles(data)
	if err != nil {
		t.Fatalf("not a backup: %v", err)
	}
	return string(files["/etc/secret"])
}

// TestBackupCreate is §16 #71: the default directory backups/ under the
// base directory (mode 0700), the file name, mode 0600, the refusal to
// overwrite and --force (SPEC.md §12.7).
func TestBackupCreate(t *testing.T) {
	e := newEnv(t)
	before := time.Now()
	got := e.run("backup", "create", "web")
	after := time.Now()
	dir := filepath.Join(e.dir, "backups")
	path := backupPath(t, got, dir, "web", ".tar.gz", before, after)
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("backups/ mode %o, want 700", m)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("backup mode %o, want 600", m)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s := secretOf(t, data); s != "s3cr3t\n" {
		t.Errorf("backup holds /etc/secret %q", s)
	}

	// --base-dir moves the default directory.
	got = e.run("backup", "create", "lab-1", "--base-dir", "gen")
	backupPath(t, got, filepath.Join(e.dir, "gen", "backups"), "lab-1", ".tar.gz", before, time.Now())

	// Occupy every name the next run can take (one per second for 20
	// seconds), world-readable, to see both the refusal and --force.
	out := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < 20; i++ {
		p := filepath.Join(out, "web-"+start.Add(time.Duration(i)*time.Second).UTC().Format("20060102-150405")+".tar.gz")
		if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.fake.Log().Reset()
	got = e.run("backup", "create", "web", "--output", out)
	re := regexp.MustCompile(`^error: (` + regexp.QuoteMeta(out) + `/web-\d{8}-\d{6}\.tar\.gz) already exists; pass --force to overwrite it\n$`)
	m := re.FindStringSubmatch(got.stderr)
	if got.code != 1 || got.stdout != "" || m == nil {
		t.Fatalf("create over an existing file: %+v", got)
	}
	if b, err := os.ReadFile(m[1]); err != nil || string(b) != "old" {
		t.Errorf("existing file changed: %q %v", b, err)
	}
	for _, r := range e.fake.Log().Strings() {
		if strings.Contains(r, "/backups") {
			t.Errorf("exported although the file exists: %s", r)
		}
	}
	if time.Since(start) > 15*time.Second {
		t.Skip("too slow to check --force against the occupied names")
	}
	got = e.run("backup", "create", "web", "--output", out, "--force")
	if got.code != 0 || got.stderr != "" || !strings.HasPrefix(got.stdout, "backup: "+out+"/web-") {
		t.Fatalf("create --force: %+v", got)
	}
	path = strings.TrimSuffix(strings.TrimPrefix(got.stdout, "backup: "), "\n")
	if m := mode(t, path); m != 0o600 {
		t.Errorf("overwritten backup mode %o, want 600", m)
	}
	if data, err := os.ReadFile(path); err != nil || secretOf(t, data) != "s3cr3t\n" {
		t.Errorf("overwritten backup: %v", err)
	}
	if m := mode(t, out); m != 0o755 {
		t.Errorf("an existing --output directory changed mode to %o", m)
	}
}

// TestBackupCreateErrors: an unusable recipient is refused before any
// export; an unknown machine is an error; no file is left (SPEC.md §12.7).
func TestBackupCreateErrors(t *testing.T) {
	e := newEnv(t)
	rf := filepath.Join(e.dir, "recipients.txt")
	if err := os.WriteFile(rf, []byte("# team\n\nage1notakey\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"backup", "create", "web", "--recipient", "bogus"}, "error: invalid recipient \"bogus\"\n"},
		{[]string{"backup", "create", "web", "--recipient", "ssh-ed25519 AAAA"}, "error: invalid recipient \"ssh-ed25519 AAAA\"\n"},
		{[]string{"backup", "create", "web", "--recipients-file", rf}, "error: invalid recipient \"age1notakey\"\n"},
		{[]string{"backup", "create", "nope"}, "error: unknown machine \"nope\"\n"},
	}
	for _, tc := range tests {
		e.fake.Log().Reset()
		if got := e.run(tc.args...); got != (result{1, "", tc.want}) {
			t.Errorf("%v:\n got %+v\nwant stderr %q", tc.args, got, tc.want)
		}
		if e.fake.Log().Len() != 0 {
			t.Errorf("%v: Incus contacted: %v", tc.args, e.fake.Log().Strings())
		}
	}
	if _, err := os.Stat(filepath.Join(e.dir, "backups")); err == nil {
		if entries, _ := os.ReadDir(filepath.Join(e.dir, "backups")); len(entries) != 0 {
			t.Errorf("files left: %v", entries)
		}
	}
	got := e.run("backup", "create")
	if got.code != 1 || got.stderr != "error: backup create: expected 1 argument (MACHINE), got 0\nRun 'anklume backup create --help' for usage.\n" {
		t.Errorf("backup create without MACHINE: %+v", got)
	}
}

// TestBackupEncrypted is §16 #71: with --recipient age1… (or a
// recipients file) the backup is a .tar.gz.age of mode 0600 with no
// plaintext; restore needs --identity, with the exact error, and then
// restores the instance (SPEC.md §12.7).
func TestBackupEncrypted(t *testing.T) {
	e := newEnv(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(e.dir, "key.txt")
	if err := os.WriteFile(idFile, []byte("# key\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rf := filepath.Join(e.dir, "recipients.txt")
	if err := os.WriteFile(rf, []byte("# team\n\n"+id.Recipient().String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(e.dir, "enc")

	for _, args := range [][]string{
		{"backup", "create", "web", "--output", out, "--recipient", id.Recipient().String()},
		{"backup", "create", "lab-1", "--output", out, "--recipients-file", rf},
	} {
		before := time.Now()
		got := e.run(args...)
		path := backupPath(t, got, out, args[2], ".tar.gz.age", before, time.Now())
		if m := mode(t, path); m != 0o600 {
			t.Errorf("%s: mode %o, want 600", path, m)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte("age-encryption.org/v1\n")) || bytes.Contains(data, []byte("s3cr3t")) {
			t.Errorf("%s is not an age file", path)
		}
		r, err := age.Decrypt(bytes.NewReader(data), id)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"web": "s3cr3t\n", "lab-1": ""}[args[2]]; secretOf(t, plain) != want {
			t.Errorf("%s decrypts to a backup without the file", path)
		}
	}
	entries, err := os.ReadDir(out)
	if err != nil || len(entries) != 2 {
		t.Fatalf("files in --output: %v %v", entries, err)
	}
	webFile := filepath.Join(out, entries[1].Name())
	if !strings.HasPrefix(entries[1].Name(), "web-") {
		webFile = filepath.Join(out, entries[0].Name())
	}

	// Without --identity: the exact error, before Incus is contacted.
	e.connects = 0
	got := e.run("backup", "restore", webFile, "--name", "web9")
	if got != (result{1, "", "error: " + webFile + " is encrypted; pass --identity FILE\n"}) || e.connects != 0 {
		t.Errorf("restore without --identity: %+v (%d connections)", got, e.connects)
	}

	// A wrong identity cannot decrypt; nothing is created.
	other, _ := age.GenerateX25519Identity()
	otherFile := filepath.Join(e.dir, "other.txt")
	if err := os.WriteFile(otherFile, []byte(other.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got = e.run("backup", "restore", webFile, "--name", "web9", "--identity", otherFile)
	if got.code != 1 || !strings.HasPrefix(got.stderr, "error: decrypting "+webFile+": ") {
		t.Errorf("restore with a wrong identity: %+v", got)
	}
	if _, _, err := e.fake.Instance(context.Background(), "work", "web9"); !incusx.IsNotFound(err) {
		t.Errorf("web9 exists after a failed restore: %v", err)
	}

	// With it: a copy that is not in the PSOT loses its ownership keys.
	got = e.run("backup", "restore", webFile, "--name", "web9", "--identity", idFile)
	want := result{0, "restored: work/web9\n",
		"warning: instance work/web9 is not machine \"web9\" of domain \"work\" in infra.yml: its ownership keys and static IP were removed, so apply will not delete it\n"}
	if got != want {
		t.Errorf("restore --identity:\n got %+v\nwant %+v", got, want)
	}
	inst, _, err := e.fake.Instance(context.Background(), "work", "web9")
	if err != nil {
		t.Fatal(err)
	}
	for k := range inst.Config {
		if strings.HasPrefix(k, "user.anklume.") {
			t.Errorf("web9 keeps %s", k)
		}
	}
	if _, ok := inst.Devices["eth0"]; ok || inst.Status != "Running" {
		t.Errorf("web9: eth0 %v, status %s", inst.Devices["eth0"], inst.Status)
	}
}

// TestBackupRestore: restore under the machine's own name keeps the
// ownership keys, an existing instance is an error, --domain moves the
// copy, and a file name without a machine needs --name (SPEC.md §12.7).
func TestBackupRestore(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	out := filepath.Join(e.dir, "b")
	got := e.run("backup", "create", "web", "--output", out)
	if got.code != 0 {
		t.Fatalf("backup create: %+v", got)
	}
	file := strings.TrimSuffix(strings.TrimPrefix(got.stdout, "backup: "), "\n")

	if got := e.run("backup", "restore", file); got != (result{1, "", "error: instance work/web already exists\n"}) {
		t.Errorf("restore over web: %+v", got)
	}

	orig, _, err := e.fake.Instance(ctx, "work", "web")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.fake.UpdateInstanceState(ctx, "work", "web", api.InstanceStatePut{Action: "stop", Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.DeleteInstance(ctx, "work", "web"); err != nil {
		t.Fatal(err)
	}
	if got := e.run("backup", "restore", file); got != (result{0, "restored: work/web\n", ""}) {
		t.Errorf("restore of a deleted machine: %+v", got)
	}
	inst, _, err := e.fake.Instance(ctx, "work", "web")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"user.anklume.managed", "user.anklume.infra", "user.anklume.domain"} {
		if inst.Config[k] == "" || inst.Config[k] != orig.Config[k] {
			t.Errorf("restored web: %s=%q, want %q", k, inst.Config[k], orig.Config[k])
		}
	}
	if inst.Devices["eth0"]["ipv4.address"] != "10.210.0.11" || inst.Status != "Running" {
		t.Errorf("restored web: eth0 %v, status %s", inst.Devices["eth0"], inst.Status)
	}

	got = e.run("backup", "restore", file, "--domain", "lab")
	want := result{0, "restored: lab/web\n",
		"warning: instance lab/web is not machine \"web\" of domain \"lab\" in infra.yml: its ownership keys and static IP were removed, so apply will not delete it\n"}
	if got != want {
		t.Errorf("restore --domain lab:\n got %+v\nwant %+v", got, want)
	}

	odd := filepath.Join(out, "snapshot.tar.gz")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(odd, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want result
	}{
		{[]string{"backup", "restore", odd}, result{1, "", "error: cannot tell the machine name from " + odd + "; pass --name\n"}},
		{[]string{"backup", "restore", odd, "--name", "zz"}, result{1, "", "error: \"zz\" is not a machine of infra.yml; pass --domain D\n"}},
		{[]string{"backup", "restore", file, "--domain", "nope"}, result{1, "", "error: --domain: unknown domain \"nope\"\n"}},
	}
	for _, tc := range tests {
		if got := e.run(tc.args...); got != tc.want {
			t.Errorf("%v:\n got %+v\nwant %+v", tc.args, got, tc.want)
		}
	}
}
