package sync_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/root"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/internal/hostenv"
	"github.com/anklume/anklume/schema"
)

// psot is a small valid infra: two domains, one protected machine and one
// ephemeral machine.
const psot = `project_name: demo
global:
  addressing: {}
domains:
  work:
    trust_level: trusted
    machines:
      web:
        type: lxc
  lab:
    trust_level: disposable
    ephemeral: true
    machines:
      box:
        type: vm
`

type result struct {
	code   cmdutil.ExitCode
	stdout string
	stderr string
}

// runIn runs `anklume args…` with dir as the current directory and the
// host context of SPEC.md §16.
func runIn(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx := t.TempDir()
	env := map[string]string{
		hostenv.EnvSkipSubnet:    "1",
		hostenv.EnvContextDir:    ctx,
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

// setup writes files (relative paths) into a fresh directory.
func setup(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, data := range files {
		write(t, dir, p, data)
	}
	return dir
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

func read(t *testing.T, dir, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// generated returns the paths sync writes for the PSOT text, in write
// order.
func generated(t *testing.T, text string) []string {
	t.Helper()
	res, dl, err := compiler.Compile(fstest.MapFS{"infra.yml": {Data: []byte(text)}},
		compiler.Input{Path: "infra.yml", Display: "infra.yml"},
		host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}})
	if err != nil || res == nil {
		t.Fatalf("compile: %v %v", err, dl)
	}
	var out []string
	for _, f := range emit.Tree(res.Model) {
		out = append(out, f.Path)
	}
	return out
}

// lines renders one "<prefix><path>\n" line per path.
func lines(prefix string, paths []string) string {
	var b strings.Builder
	for _, p := range paths {
		b.WriteString(prefix + p + "\n")
	}
	return b.String()
}

type fileState struct {
	data  string
	mtime time.Time
	ino   uint64
	mode  fs.FileMode
}

// snapshot records every file under dir.
func snapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := fileState{mtime: info.ModTime(), mode: info.Mode()}
		if s, ok := info.Sys().(*syscall.Stat_t); ok {
			st.ino = s.Ino
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			st.data = string(b)
		}
		out[filepath.ToSlash(rel)] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails when a file or directory was added, removed or changed in
// bytes, mtime, inode or mode.
func sameTree(t *testing.T, before, after map[string]fileState) {
	t.Helper()
	for p, a := range after {
		b, ok := before[p]
		if !ok {
			t.Errorf("%s appeared", p)
			continue
		}
		if a != b {
			t.Errorf("%s changed (bytes equal %v, mtime %v→%v, inode %d→%d)", p, a.data == b.data, b.mtime, a.mtime, b.ino, a.ino)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s disappeared", p)
		}
	}
}

func check(t *testing.T, got, want result) {
	t.Helper()
	if got.code != want.code {
		t.Errorf("exit code %d, want %d", got.code, want.code)
	}
	if got.stdout != want.stdout {
		t.Errorf("stdout:\n%s\nwant:\n%s", got.stdout, want.stdout)
	}
	if got.stderr != want.stderr {
		t.Errorf("stderr:\n%s\nwant:\n%s", got.stderr, want.stderr)
	}
}

// TestSyncTwice: §16 #34 (the tree is produced, every framework file
// carries the header) and #35 (a second sync changes nothing and says so).
func TestSyncTwice(t *testing.T) {
	dir := setup(t, map[string]string{"infra.yml": psot})
	paths := generated(t, psot)
	got := runIn(t, dir, "sync")
	check(t, got, result{stdout: kinds(paths) + "sync: " + itoa(len(paths)) + " created, 0 updated, 0 unchanged\n"})

	files := emitted(t, psot)
	for _, f := range files {
		data := read(t, dir, f.Path)
		switch f.Class {
		case tree.Framework:
			if _, under := roleFilesDir(f.Path); !under && !tree.HasHeader(f.Path, []byte(data)) {
				t.Errorf("§16 #34: framework file %s has no header", f.Path)
			}
		case tree.Managed:
			if strings.Count(data, tree.Begin+"\n") != 1 || strings.Count(data, tree.End+"\n") != 1 {
				t.Errorf("§16 #37: %s does not hold exactly one block", f.Path)
			}
		}
	}

	before := snapshot(t, dir)
	time.Sleep(10 * time.Millisecond) // a rewrite would show in the mtime
	got = runIn(t, dir, "sync")
	check(t, got, result{stdout: "sync: 0 created, 0 updated, " + itoa(len(paths)) + " unchanged\n"})
	sameTree(t, before, snapshot(t, dir))
}

// roleFilesDir reports whether p lies under roles/<r>/files/, which carry
// no header (§6.2).
func roleFilesDir(p string) (string, bool) {
	parts := strings.Split(p, "/")
	if len(parts) >= 4 && parts[0] == "roles" && parts[2] == "files" {
		return parts[1], true
	}
	return "", false
}

func emitted(t *testing.T, text string) []tree.File {
	t.Helper()
	res, dl, err := compiler.Compile(fstest.MapFS{"infra.yml": {Data: []byte(text)}},
		compiler.Input{Path: "infra.yml", Display: "infra.yml"},
		host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}})
	if err != nil || res == nil {
		t.Fatalf("compile: %v %v", err, dl)
	}
	return emit.Tree(res.Model)
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestUnclosedMarkerWritesNothing: §16 #39.
func TestUnclosedMarkerWritesNothing(t *testing.T) {
	dir := setup(t, map[string]string{"infra.yml": psot})
	if r := runIn(t, dir, "sync"); r.code != 0 {
		t.Fatalf("first sync: %+v", r)
	}
	// Break web's block, and change the PSOT so that other files would be
	// updated.
	write(t, dir, "host_vars/web.yml", "---\n"+tree.Begin+"\nx: 1\n")
	write(t, dir, "infra.yml", strings.Replace(psot, "project_name: demo", "project_name: demo2", 1))
	before := snapshot(t, dir)
	got := runIn(t, dir, "sync")
	check(t, got, result{code: 1, stderr: "error: host_vars/web.yml: managed section is not closed (BEGIN at line 2, no END after it)\n"})
	sameTree(t, before, snapshot(t, dir))
}

// TestDryRunAndDiff: §16 #41.
func TestDryRunAndDiff(t *testing.T) {
	dir := setup(t, map[string]string{"infra.yml": psot})
	paths := generated(t, psot)
	before := snapshot(t, dir)
	got := runIn(t, dir, "sync", "--dry-run")
	check(t, got, result{stdout: lines("[dry-run] would create: ", paths) +
		"[dry-run] sync: " + itoa(len(paths)) + " to create, 0 to update, 0 unchanged\n"})
	sameTree(t, before, snapshot(t, dir))

	got = runIn(t, dir, "sync", "--dry-run", "--diff")
	if got.code != 0 || got.stderr != "" {
		t.Fatalf("dry-run diff: %+v", got)
	}
	for _, p := range paths {
		head := "[dry-run] would create: " + p + "\n--- /dev/null\n+++ b/" + p + "\n"
		if !strings.Contains(got.stdout, head) {
			t.Errorf("no diff header for %s in:\n%s", p, got.stdout)
		}
	}
	sameTree(t, before, snapshot(t, dir))

	// --diff on a real run: an update shows a/ and b/ labels.
	if r := runIn(t, dir, "sync"); r.code != 0 {
		t.Fatalf("sync: %+v", r)
	}
	write(t, dir, "infra.yml", strings.Replace(psot, "project_name: demo", "project_name: demo2", 1))
	got = runIn(t, dir, "sync", "--diff")
	if got.code != 0 || !strings.Contains(got.stdout, "updated: group_vars/all.yml\n--- a/group_vars/all.yml\n+++ b/group_vars/all.yml\n") ||
		!strings.Contains(got.stdout, "\n-project_name: demo\n+project_name: demo2\n") {
		t.Errorf("sync --diff:\n%+v", got)
	}
}

// TestNothingToGenerate: §16 #45.
func TestNothingToGenerate(t *testing.T) {
	tests := []struct {
		name, text string
	}{
		{"empty domains", "project_name: demo\nglobal:\n  addressing: {}\ndomains: {}\n"},
		{"null domains", "project_name: demo\nglobal:\n  addressing: {}\ndomains:\n"},
		{"all disabled", strings.Replace(strings.Replace(psot, "    trust_level: trusted\n", "    enabled: false\n    trust_level: trusted\n", 1),
			"    trust_level: disposable\n", "    enabled: false\n    trust_level: disposable\n", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := setup(t, map[string]string{"infra.yml": tt.text})
			before := snapshot(t, dir)
			check(t, runIn(t, dir, "sync"), result{stdout: "nothing to generate: no enabled domains\n"})
			sameTree(t, before, snapshot(t, dir))
		})
	}
}

// TestInvalidWritesNothing: §6.1 step 1.
func TestInvalidWritesNothing(t *testing.T) {
	dir := setup(t, map[string]string{"infra.yml": strings.Replace(psot, "type: lxc\n  lab", "type: lcx\n  lab", 1)})
	before := snapshot(t, dir)
	got := runIn(t, dir, "sync")
	if got.code != 1 || got.stdout != "" || !strings.HasSuffix(got.stderr, "validation failed: 1 error\n") ||
		!strings.HasPrefix(got.stderr, "infra.yml:9:15: domains.work.machines.web.type: ") {
		t.Errorf("got %+v", got)
	}
	sameTree(t, before, snapshot(t, dir))
}

// TestFrameworkWithoutHeader: §16 #79.
func TestFrameworkWithoutHeader(t *testing.T) {
	dir := setup(t, map[string]string{"infra.yml": psot, "site.yml": "- hosts: all\n"})
	if err := os.Chmod(filepath.Join(dir, "site.yml"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	got := runIn(t, dir, "sync")
	check(t, got, result{code: 1, stderr: "error: refusing to overwrite site.yml: not generated by anklume\n" +
		"  hint: move it away, or pass --force to replace it; the old file is then kept as site.yml.bak\n"})
	sameTree(t, before, snapshot(t, dir))

	got = runIn(t, dir, "sync", "--force")
	if got.code != 0 || got.stderr != "" || !strings.HasPrefix(got.stdout, "saved: site.yml.bak\nchanged: ") {
		t.Fatalf("sync --force: %+v", got)
	}
	if b := read(t, dir, "site.yml.bak"); b != "- hosts: all\n" {
		t.Errorf("site.yml.bak = %q", b)
	}
	if s := read(t, dir, "site.yml"); !tree.HasHeader("site.yml", []byte(s)) {
		t.Errorf("site.yml has no header:\n%s", s)
	}
	info, err := os.Stat(filepath.Join(dir, "site.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("site.yml mode %v, want 0600 kept", info.Mode().Perm())
	}
}

// TestOrphans: §16 #44.
func TestOrphans(t *testing.T) {
	const extra = `  old:
    trust_level: semi-trusted
    machines:
      keep-me:
        type: lxc
      drop-me:
        type: lxc
        ephemeral: true
`
	withOld := strings.Replace(psot, "  lab:\n", extra+"  lab:\n", 1)
	dir := setup(t, map[string]string{"infra.yml": withOld})
	if r := runIn(t, dir, "sync"); r.code != 0 {
		t.Fatalf("first sync: %+v", r)
	}
	// Right after a sync there is no orphan.
	if r := runIn(t, dir, "sync"); strings.Contains(r.stdout, "orphan") {
		t.Errorf("orphans right after a sync:\n%s", r.stdout)
	}
	// Files that never held a block are never orphans; nor is roles/.
	write(t, dir, "host_vars/hand-written.yml", "foo: 1\n")
	write(t, dir, "roles/custom/tasks/main.yml", "---\n"+tree.Begin+"\n"+tree.End+"\n")
	write(t, dir, "infra.yml", psot)
	paths := generated(t, psot)

	// The old domain is now unknown: its group_vars says
	// domain_ephemeral: false, so it is protected; keep-me's host_vars says
	// instance_ephemeral: false; drop-me is ephemeral.
	// The inventory maps only `all`, so it is not protected.
	wantOrphans := "orphan: inventory/old.yml\n" +
		"orphan (protected, ephemeral=false): group_vars/old.yml; remove it by hand\n" +
		"orphan: host_vars/drop-me.yml\n" +
		"orphan (protected, ephemeral=false): host_vars/keep-me.yml; remove it by hand\n"
	summary := "sync: 0 created, 0 updated, " + itoa(len(paths)) + " unchanged\n"
	// The first sync after the domain left rewrites the whole-infra files
	// (preseed, desired state); the orphans are checked on the next ones.
	runIn(t, dir, "sync")
	before := snapshot(t, dir)
	check(t, runIn(t, dir, "sync"), result{stdout: summary + wantOrphans})
	sameTree(t, before, snapshot(t, dir))

	// --clean-orphans under --dry-run deletes nothing.
	cleanLines := func(prefix string) string {
		var b strings.Builder
		for _, l := range strings.SplitAfter(wantOrphans, "\n") {
			if l == "" {
				continue
			}
			b.WriteString(l)
			p := strings.TrimSuffix(l, "\n")
			if strings.HasPrefix(p, "orphan (protected") {
				p = strings.TrimSuffix(strings.TrimPrefix(p, "orphan (protected, ephemeral=false): "), "; remove it by hand")
				b.WriteString("kept (protected): " + p + "\n")
			} else {
				b.WriteString(prefix + strings.TrimPrefix(p, "orphan: ") + "\n")
			}
		}
		return b.String()
	}
	check(t, runIn(t, dir, "sync", "--dry-run", "--clean-orphans"),
		result{stdout: "[dry-run] sync: 0 to create, 0 to update, " + itoa(len(paths)) + " unchanged\n" + cleanLines("[dry-run] would delete: ")})
	sameTree(t, before, snapshot(t, dir))

	check(t, runIn(t, dir, "sync", "--clean-orphans"), result{stdout: summary + cleanLines("deleted: ")})
	if _, err := os.Stat(filepath.Join(dir, "host_vars/drop-me.yml")); !os.IsNotExist(err) {
		t.Errorf("host_vars/drop-me.yml not deleted: %v", err)
	}
	for _, p := range []string{"host_vars/keep-me.yml", "group_vars/old.yml", "host_vars/hand-written.yml", "roles/custom/tasks/main.yml"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// TestDisabledDomainFilesKept: §6.9, files of a disabled domain are neither
// orphans nor updated.
func TestDisabledDomainFilesKept(t *testing.T) {
	dir := setup(t, map[string]string{"infra.yml": psot})
	if r := runIn(t, dir, "sync"); r.code != 0 {
		t.Fatalf("first sync: %+v", r)
	}
	disabled := strings.Replace(psot, "    trust_level: disposable\n", "    enabled: false\n    trust_level: disposable\n", 1)
	write(t, dir, "infra.yml", disabled)
	paths := generated(t, disabled)
	labFiles := []string{"inventory/lab.yml", "group_vars/lab.yml", "host_vars/box.yml"}
	old := map[string]string{}
	for _, p := range labFiles {
		old[p] = read(t, dir, p)
	}
	got := runIn(t, dir, "sync")
	if got.code != 0 || strings.Contains(got.stdout, "orphan") || strings.Contains(got.stdout, "lab.yml") || strings.Contains(got.stdout, "box.yml") {
		t.Errorf("got %+v", got)
	}
	if !strings.HasSuffix(got.stdout, " unchanged\n") || len(paths) == 0 {
		t.Errorf("stdout %q", got.stdout)
	}
	for _, p := range labFiles {
		if read(t, dir, p) != old[p] {
			t.Errorf("%s changed", p)
		}
	}
}

// TestBaseDir: §2.1, the base directory is the directory of the PSOT, or
// --base-dir.
func TestBaseDir(t *testing.T) {
	dir := setup(t, map[string]string{"sub/infra.yml": psot})
	if r := runIn(t, dir, "sync", "-f", "sub/infra.yml"); r.code != 0 {
		t.Fatalf("sync -f: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub/group_vars/all.yml")); err != nil {
		t.Errorf("-f sub/infra.yml: %v", err)
	}
	if r := runIn(t, dir, "sync", "-f", "sub/infra.yml", "--base-dir", "out"); r.code != 0 {
		t.Fatalf("sync --base-dir: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "out/group_vars/all.yml")); err != nil {
		t.Errorf("--base-dir out: %v", err)
	}
	abs := filepath.Join(t.TempDir(), "abs")
	if r := runIn(t, dir, "sync", "-f", filepath.Join(dir, "sub/infra.yml"), "--base-dir", abs); r.code != 0 {
		t.Fatalf("sync --base-dir abs: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(abs, "group_vars/all.yml")); err != nil {
		t.Errorf("--base-dir %s: %v", abs, err)
	}
}

// kinds returns the summary line of a default (not -v) sync that creates
// or updates paths: the count per first path element, sorted.
func kinds(paths []string) string {
	n := map[string]int{}
	var ks []string
	for _, p := range paths {
		k, _, _ := strings.Cut(p, "/")
		if n[k] == 0 {
			ks = append(ks, k)
		}
		n[k]++
	}
	sort.Strings(ks)
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = k + " " + itoa(n[k])
	}
	return "changed: " + strings.Join(parts, ", ") + " (-v lists the files)\n"
}

// TestSyncVerbose: -v lists every created file, then the summary line.
func TestSyncVerbose(t *testing.T) {
	dir := setup(t, map[string]string{"infra.yml": psot})
	paths := generated(t, psot)
	got := runIn(t, dir, "sync", "-v")
	if want := lines("created: ", paths) + "sync: " + itoa(len(paths)) + " created, 0 updated, 0 unchanged\n"; got.code != 0 || got.stdout != want {
		t.Fatalf("sync -v: exit %d, stdout:\n%s\nwant:\n%s", got.code, got.stdout, want)
	}
}

// TestUserTextKept: §16 #36 through the command: text outside the block
// survives, an edit inside it is replaced, and the edited file is kept as
// .bak with a message; a sync that changes nothing writes no .bak.
func TestUserTextKept(t *testing.T) {
	dir := setup(t, map[string]string{"infra.yml": psot})
	if r := runIn(t, dir, "sync"); r.code != 0 {
		t.Fatalf("first sync: %+v", r)
	}
	orig := read(t, dir, "host_vars/web.yml")
	edited := "# mine, before\n" + strings.Replace(orig, tree.Notice+"\n", tree.Notice+"\nhacked: true\n", 1) + "my_var: 1\n"
	write(t, dir, "host_vars/web.yml", edited)

	got := runIn(t, dir, "sync", "--dry-run")
	if got.code != 0 || !strings.HasPrefix(got.stdout, "[dry-run] would keep the old version: host_vars/web.yml -> host_vars/web.yml.bak\n") {
		t.Fatalf("sync --dry-run: %+v", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "host_vars/web.yml.bak")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("--dry-run wrote a .bak: %v", err)
	}

	got = runIn(t, dir, "sync")
	if got.code != 0 || !strings.HasPrefix(got.stdout, "kept the old version: host_vars/web.yml -> host_vars/web.yml.bak\nchanged: host_vars 1") {
		t.Fatalf("got %+v", got)
	}
	want := "# mine, before\n" + orig + "my_var: 1\n"
	if s := read(t, dir, "host_vars/web.yml"); s != want {
		t.Errorf("host_vars/web.yml:\n%s\nwant:\n%s", s, want)
	}
	if s := read(t, dir, "host_vars/web.yml.bak"); s != edited {
		t.Errorf("host_vars/web.yml.bak:\n%s\nwant the hand edit:\n%s", s, edited)
	}

	// A framework file edited by hand (header kept) is kept the same way.
	site := read(t, dir, "site.yml")
	write(t, dir, "site.yml", site+"# my play\n")
	if err := os.Remove(filepath.Join(dir, "host_vars/web.yml.bak")); err != nil {
		t.Fatal(err)
	}
	got = runIn(t, dir, "sync", "-v")
	if got.code != 0 || !strings.HasPrefix(got.stdout, "kept the old version: site.yml -> site.yml.bak\nupdated: site.yml\n") {
		t.Fatalf("sync after a site.yml edit: %+v", got)
	}
	if s := read(t, dir, "site.yml.bak"); s != site+"# my play\n" {
		t.Errorf("site.yml.bak does not hold the edit:\n%s", s)
	}

	// Nothing changes: no .bak is written.
	got = runIn(t, dir, "sync")
	if got.code != 0 || strings.Contains(got.stdout, "kept") || !strings.Contains(got.stdout, " 0 created, 0 updated, ") {
		t.Fatalf("unchanged re-sync: %+v", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "host_vars/web.yml.bak")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an unchanged sync wrote host_vars/web.yml.bak: %v", err)
	}
}

// TestSymlinkedInventoryRefused: `inventory -> /elsewhere` is refused with a
// clear error and exit 1; nothing is written, in the base or elsewhere.
func TestSymlinkedInventoryRefused(t *testing.T) {
	dir := setup(t, map[string]string{"infra.yml": psot})
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(dir, "inventory")); err != nil {
		t.Fatal(err)
	}
	got := runIn(t, dir, "sync")
	check(t, got, result{code: 1, stderr: "error: refusing to use inventory: it is a symbolic link, and sync never follows links below the base directory\n" +
		"  hint: replace the link with a real directory or file (or point --base-dir at the link's target)\n"})
	for _, d := range []string{dir, elsewhere} {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if want := map[string]string{dir: "infra.yml inventory", elsewhere: ""}[d]; strings.Join(names, " ") != want {
			t.Errorf("%s holds %v, want %q", d, names, want)
		}
	}
}

// TestUnknownRole: W16. A role that is neither built in, nor a directory
// of roles_custom/ or roles_vendor/, nor a collection role is a warning
// of sync (once per machine and role, at the machine), and sync still
// writes the tree.
func TestUnknownRole(t *testing.T) {
	dir := setup(t, map[string]string{
		"infra.yml": "project_name: demo\nglobal:\n  addressing: {}\ndomains:\n  lab:\n    machines:\n      lab-a:\n" +
			"        roles: [base_system, base_sytem, mine, vendored, community.general.x, base_sytem]\n",
		"roles_custom/mine/tasks/main.yml":     "---\n[]\n",
		"roles_vendor/vendored/tasks/main.yml": "---\n[]\n",
	})
	got := runIn(t, dir, "sync")
	want := `warning: infra.yml:7:7: domains.lab.machines.lab-a.roles[1]: role "base_sytem" was not found in roles_custom/ or the built-in roles` + "\n"
	if got.code != 0 || got.stderr != want {
		t.Errorf("code %d, stderr:\n%s\nwant:\n%s", got.code, got.stderr, want)
	}
	if read(t, dir, "site.yml") == "" {
		t.Error("site.yml not written")
	}
	// Once the role exists in roles_custom/, the warning is gone.
	write(t, dir, "roles_custom/base_sytem/tasks/main.yml", "---\n[]\n")
	if got := runIn(t, dir, "sync"); got.code != 0 || strings.Contains(got.stderr, "warning") {
		t.Errorf("after adding the role: %+v", got)
	}
}
