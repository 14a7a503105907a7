package desktop_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/examples"
	"github.com/anklume/anklume/internal/desktest"
	"github.com/anklume/anklume/internal/desktop"
	"github.com/anklume/anklume/internal/goldenflag"
)

func compileExample(t *testing.T, name string) *model.Infra {
	t.Helper()
	res, dl, err := compiler.Compile(examples.FS(), compiler.Input{Path: name + "/infra.yml", Display: "infra.yml"}, desktest.HostOptions())
	if err != nil || res == nil || res.Model == nil {
		t.Fatalf("compile %s: %v %v", name, err, dl)
	}
	return res.Model
}

// TestGolden compares the sway, i3 and tmux output of every example with
// testdata/<example>.<kind> (go test -update rewrites them), and checks
// that every enabled domain has its rule, matched on the app id or class.
func TestGolden(t *testing.T) {
	for _, name := range examples.Names() {
		m := compileExample(t, name)
		for _, kind := range desktop.Kinds {
			got, err := desktop.Render(kind, m)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+"."+kind)
			if *goldenflag.Update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file:\n%s", path, got)
			}
			for _, d := range m.Domains {
				var rule string
				switch kind {
				case "sway":
					rule = `for_window [app_id="^anklume\.` + d.Name + `(\..+)?$"]`
				case "i3":
					rule = `for_window [class="^anklume\.` + d.Name + `(\..+)?$"]`
				default:
					rule = `set -g @anklume-domain-` + d.Name + ` "`
				}
				if strings.Contains(string(got), rule) != d.Enabled {
					t.Errorf("%s: rule for %s present=%v, enabled=%v", path, d.Name, !d.Enabled, d.Enabled)
				}
			}
			if strings.Contains(string(got), "title=") {
				t.Errorf("%s matches on a title", path)
			}
		}
	}
}

// needTool skips without tool, or fails under ANKLUME_E2E_REQUIRE.
func needTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("ANKLUME_E2E_REQUIRE") != "" {
			t.Fatalf("%s is not installed (and ANKLUME_E2E_REQUIRE is set)", tool)
		}
		t.Skipf("skipped: %s is not installed; .ci/run installs it", tool)
	}
}

// TestValidate has the window managers check every example's output:
// `sway -C -c FILE` (headless backend, as nobody: sway refuses root) and
// `i3 -C -c FILE`. Both check the criteria and syntax of for_window; the
// command list of a for_window rule is only checked when it runs.
func TestValidate(t *testing.T) {
	for _, kind := range []string{"sway", "i3"} {
		t.Run(kind, func(t *testing.T) {
			needTool(t, kind)
			// Not t.TempDir: its parent is private to root, and sway runs
			// as nobody.
			dir, err := os.MkdirTemp("", "anklume-desktop-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, name := range append(examples.Names(), "broken") {
				var out []byte
				if name == "broken" { // the check can fail
					out = []byte(`for_window [nosuchcriterion="x"] border normal 3` + "\n")
				} else {
					var err error
					if out, err = desktop.Render(kind, compileExample(t, name)); err != nil {
						t.Fatal(err)
					}
				}
				file := filepath.Join(dir, name+"."+kind)
				if kind == "i3" {
					out = append([]byte("# i3 config file (v4)\n"), out...)
				}
				if err := os.WriteFile(file, out, 0o644); err != nil {
					t.Fatal(err)
				}
				var cmd *exec.Cmd
				if kind == "sway" {
					cmd = swayCheck(t, dir, file)
				} else {
					cmd = exec.Command("i3", "-C", "-c", file)
				}
				b, err := cmd.CombinedOutput()
				if (err == nil) != (name != "broken") {
					t.Errorf("%s -C %s: %v\n%s", kind, name, err, b)
				}
			}
		})
	}
}

// swayCheck is `sway -C -c file` on the headless backend, as nobody when
// run as root.
func swayCheck(t *testing.T, dir, file string) *exec.Cmd {
	t.Helper()
	run, err := os.MkdirTemp(dir, "run-") // a fresh runtime directory each time
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"sway", "-C", "-c", file}
	if os.Geteuid() == 0 {
		needTool(t, "setpriv")
		if err := os.Chown(run, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+run, "HOME="+run, "WLR_BACKENDS=headless",
		"WLR_LIBINPUT_NO_DEVICES=1", "WLR_RENDERER=pixman")
	return cmd
}

// TestInstall: the managed section is created, replaced in place with the
// user's text around it kept, left alone when unchanged, and a broken
// section is refused without writing.
func TestInstall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sway", "config.d", "anklume.conf")
	if changed, err := desktop.Install(path, []byte("rule one\n")); err != nil || !changed {
		t.Fatalf("first install: %v %v", changed, err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != desktop.Begin+"\nrule one\n"+desktop.End+"\n" {
		t.Errorf("new file:\n%s", b)
	}
	user := "# mine before\nbindsym x exec y\n" + string(b) + "# mine after\n"
	if err := os.WriteFile(path, []byte(user), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := desktop.Install(path, []byte("rule two\n")); err != nil || !changed {
		t.Fatalf("second install: %v %v", changed, err)
	}
	b, _ = os.ReadFile(path)
	want := "# mine before\nbindsym x exec y\n" + desktop.Begin + "\nrule two\n" + desktop.End + "\n# mine after\n"
	if string(b) != want {
		t.Errorf("after reinstall:\n%s\nwant:\n%s", b, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want the user's 0600", fi.Mode())
	}
	if changed, err := desktop.Install(path, []byte("rule two\n")); err != nil || changed {
		t.Errorf("same content: changed=%v %v", changed, err)
	}
	broken := "x\n" + desktop.Begin + "\nold\n"
	if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := desktop.Install(path, []byte("new\n")); err == nil || !strings.Contains(err.Error(), "is not closed") {
		t.Errorf("unclosed section: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != broken {
		t.Errorf("a refused install wrote:\n%s", b)
	}
	appended, err := desktop.Splice("f", []byte("no newline"), []byte("r\n"))
	if err != nil || string(appended) != "no newline\n\n"+desktop.Begin+"\nr\n"+desktop.End+"\n" {
		t.Errorf("append to a file without a section: %q %v", appended, err)
	}
}
