package sync_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/sync"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/internal/hostenv"
)

// stampPSOT has a warning (W16: the role mine is nowhere) so that the
// shortcut must print the diagnostics of the run it stands for.
const stampPSOT = `project_name: demo
global:
  addressing: {}
domains:
  work:
    trust_level: trusted
    machines:
      web:
        type: lxc
        roles: [base_system, mine]
`

// stampRun is one `anklume sync` through sync.Run with a cache directory.
type stampRun struct {
	t     testing.TB
	dir   string
	cache string
	// later moves the clock this far forward: the time that passes
	// between two syncs (0: they follow each other at once).
	later time.Duration
	quiet bool
	flags func(*sync.Options)
}

// run syncs, fails the test if sync fails, and returns stdout, stderr and
// whether the stamp's shortcut was taken.
func (r *stampRun) run() (string, string, bool) {
	r.t.Helper()
	out, errOut, hit, err := r.runErr()
	if err != nil {
		r.t.Fatalf("sync: %v\n%s\n%s", err, out, errOut)
	}
	return out, errOut, hit
}

// runErr is run, the error of sync returned.
func (r *stampRun) runErr() (string, string, bool, error) {
	r.t.Helper()
	env := map[string]string{
		hostenv.EnvSkipSubnet:    "1",
		hostenv.EnvContextDir:    r.t.TempDir(),
		hostenv.EnvHostResources: "cpu=10,memory=40GiB",
		"XDG_CACHE_HOME":         r.cache,
	}
	var out, errOut bytes.Buffer
	f := &cmdutil.Factory{
		IO:      &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Getenv:  func(k string) string { return env[k] },
		Getwd:   func() (string, error) { return r.dir, nil },
		FS:      func(d string) fs.FS { return os.DirFS(d) },
		Globals: &cmdutil.GlobalOptions{File: "infra.yml", Quiet: r.quiet},
		Host: func(remote bool) (host.Options, error) {
			return hostenv.Gather(hostenv.Sys{Getenv: func(k string) string { return env[k] }, ReadFile: os.ReadFile}, remote)
		},
	}
	hit := false
	opts := &sync.Options{IO: f.IO, Globals: f.Globals, Source: f.Source, Host: f.Host, Remote: f.Remote,
		Getwd: f.Getwd, Getenv: f.Getenv,
		Now:     func() time.Time { return time.Now().Add(r.later) },
		OnStamp: func(h bool) { hit = h }}
	if r.flags != nil {
		r.flags(opts)
	}
	err := sync.Run(opts)
	return out.String(), errOut.String(), hit, err
}

// newStampRun writes stampPSOT into a fresh directory and syncs it once.
func newStampRun(t *testing.T) *stampRun {
	t.Helper()
	r := &stampRun{t: t, dir: setup(t, map[string]string{"infra.yml": stampPSOT}), cache: t.TempDir()}
	if _, _, hit := r.run(); hit {
		t.Fatal("the first sync took the shortcut")
	}
	return r
}

// TestStampShortcut: a re-sync of an unchanged tree takes the stamp's
// shortcut and prints exactly what the full re-sync printed (the warning,
// the summary); -q prints neither the warning nor the summary.
func TestStampShortcut(t *testing.T) {
	r := newStampRun(t)
	// The stamp of the first sync was taken as its files were written:
	// they are not trusted yet, and this re-sync, a minute later, takes
	// the full path and takes a new stamp.
	r.later = time.Minute
	out, errOut, hit := r.run()
	if hit {
		t.Fatal("the stamp of a sync that wrote the tree was trusted")
	}
	if !strings.Contains(errOut, `role "mine" was not found`) || !strings.HasPrefix(out, "sync: 0 created, 0 updated, ") {
		t.Fatalf("full re-sync printed\n%s\n%s", out, errOut)
	}
	out2, errOut2, hit := r.run()
	if !hit {
		t.Fatal("the re-sync of an unchanged tree did not take the shortcut")
	}
	if out2 != out || errOut2 != errOut {
		t.Errorf("the shortcut printed\n%s\n%s\nthe full path\n%s\n%s", out2, errOut2, out, errOut)
	}
	r.quiet = true
	if out, errOut, hit := r.run(); !hit || out != "" || errOut != "" {
		t.Errorf("-q: hit %v, printed %q %q", hit, out, errOut)
	}
}

// TestStampMisses: every change that could change what sync does sends it
// down the full path: the PSOT, a generated file (same size), a new file
// in host_vars/ (an orphan), a role directory appearing, a directory
// replaced by a symbolic link, a corrupt stamp, and the flags that print
// more than the summary. (TestStampShortcut covers the files too young to
// be trusted.)
func TestStampMisses(t *testing.T) {
	type step struct {
		name   string
		change func(r *stampRun)
		check  func(t *testing.T, out, errOut string)
	}
	steps := []step{
		{"psot", func(r *stampRun) {
			write(t, r.dir, "infra.yml", strings.Replace(stampPSOT, "web:", "www:", 1))
		}, func(t *testing.T, out, errOut string) {
			if !strings.Contains(out, "host_vars/web.yml; remove it by hand") {
				t.Errorf("out %q", out)
			}
		}},
		{"generated file", func(r *stampRun) {
			p := filepath.Join(r.dir, "site.yml")
			b, _ := os.ReadFile(p)
			b = bytes.Replace(b, []byte("- "), []byte("-\t"), 1)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, out, errOut string) {
			if !strings.Contains(out, "kept the old version: site.yml -> site.yml.bak") {
				t.Errorf("out %q", out)
			}
		}},
		{"orphan", func(r *stampRun) {
			write(t, r.dir, "host_vars/gone.yml", tree.Begin+"\nx: 1\n"+tree.End+"\n")
		}, func(t *testing.T, out, errOut string) {
			if !strings.Contains(out, "orphan: host_vars/gone.yml") {
				t.Errorf("out %q", out)
			}
		}},
		{"role", func(r *stampRun) {
			if err := os.MkdirAll(filepath.Join(r.dir, "roles_custom", "mine"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, out, errOut string) {
			if strings.Contains(errOut, `role "mine"`) {
				t.Errorf("stale W16: %q", errOut)
			}
		}},
		{"link", func(r *stampRun) {
			hv := filepath.Join(r.dir, "host_vars")
			if err := os.Rename(hv, hv+".moved"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("host_vars.moved", hv); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, out, errOut string) {
			if !strings.Contains(errOut, "symbolic link") {
				t.Errorf("stderr %q", errOut)
			}
		}},
		{"corrupt stamp", func(r *stampRun) {
			ms, _ := filepath.Glob(filepath.Join(r.cache, "anklume", "sync-*.stamp"))
			if len(ms) != 1 {
				t.Fatalf("stamps %v", ms)
			}
			if err := os.WriteFile(ms[0], []byte("anklume-sync-stamp 1\n{"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"verbose", func(r *stampRun) { r.flags = func(o *sync.Options) { o.Globals.Verbose = true } }, nil},
		{"dry-run", func(r *stampRun) { r.flags = func(o *sync.Options) { o.DryRun = true } }, nil},
		{"diff", func(r *stampRun) { r.flags = func(o *sync.Options) { o.Diff = true } }, nil},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := newStampRun(t)
			r.later = time.Minute
			if _, _, hit := r.run(); hit {
				t.Fatal("the second sync hit")
			}
			if _, _, hit := r.run(); !hit {
				t.Fatal("the third sync missed")
			}
			s.change(r)
			out, errOut, hit, err := r.runErr()
			if (err != nil) != (s.name == "link") {
				t.Fatalf("sync: %v\n%s\n%s", err, out, errOut)
			}
			if hit {
				t.Fatalf("took the shortcut after the change\n%s\n%s", out, errOut)
			}
			if s.check != nil {
				s.check(t, out, errOut)
			}
		})
	}
}

// TestNoStampAfterWriting: a sync that has just written files takes no
// stamp (it could not trust them for syncstamp.Margin), and removes the
// one an earlier run left; once its files are older than the margin, a
// sync that writes nothing takes one.
func TestNoStampAfterWriting(t *testing.T) {
	stamps := func(r *stampRun) []string {
		ms, _ := filepath.Glob(filepath.Join(r.cache, "anklume", "sync-*.stamp"))
		return ms
	}
	r := newStampRun(t)
	if ms := stamps(r); len(ms) != 0 {
		t.Fatalf("the first sync, which wrote every file, left stamps %v", ms)
	}
	r.later = time.Minute
	r.run()
	if ms := stamps(r); len(ms) != 1 {
		t.Fatalf("a sync that wrote nothing over old files left stamps %v, want one", ms)
	}
	// A new machine: this sync writes its host_vars and drops the stamp.
	psot := stampPSOT + "      db:\n        type: lxc\n"
	if err := os.WriteFile(filepath.Join(r.dir, "infra.yml"), []byte(psot), 0o644); err != nil {
		t.Fatal(err)
	}
	r.later = 0
	r.run()
	if ms := stamps(r); len(ms) != 0 {
		t.Errorf("a sync that wrote a file left stamps %v", ms)
	}
}

// TestStampNotForExclusiveAI: the tree of an infrastructure with an
// exclusive AI access follows the holder recorded in Incus, which changes
// without the PSOT or the tree: its syncs never take the shortcut.
func TestStampNotForExclusiveAI(t *testing.T) {
	psot := strings.Replace(stampPSOT, "  addressing: {}\n", "  addressing: {}\n  ai_access_policy: exclusive\n  ai_access_default: work\n", 1) +
		"  ai-tools:\n    trust_level: semi-trusted\n    machines:\n      chat: {type: lxc}\n"
	r := &stampRun{t: t, dir: setup(t, map[string]string{"infra.yml": psot}), cache: t.TempDir()}
	for i := range 3 {
		r.later = time.Duration(i) * time.Minute
		if _, errOut, hit := r.run(); hit {
			t.Fatalf("sync %d took the shortcut\n%s", i, errOut)
		}
	}
	if ms, _ := filepath.Glob(filepath.Join(r.cache, "anklume", "sync-*.stamp")); len(ms) != 0 {
		t.Errorf("stamps %v", ms)
	}
}
