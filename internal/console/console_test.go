package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anklume/anklume/compiler/model"
	. "github.com/anklume/anklume/internal/console"
	"github.com/anklume/anklume/internal/desktest"
	_ "github.com/anklume/anklume/internal/goldenflag" // accept go test ./... -update
	"github.com/anklume/anklume/internal/trust"
)

// needTmux skips without tmux, or fails under ANKLUME_E2E_REQUIRE (CI
// installs tmux).
func needTmux(t *testing.T) Tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("ANKLUME_E2E_REQUIRE") != "" {
			t.Fatal("tmux is not installed (and ANKLUME_E2E_REQUIRE is set)")
		}
		t.Skip("skipped: tmux is not installed; .ci/run installs it")
	}
	tm := Tmux{Socket: fmt.Sprintf("anklume-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))}
	t.Cleanup(func() { _, _ = tm.Run(context.Background(), "kill-server") })
	return tm
}

func run(t *testing.T, tm Tmux, args ...string) string {
	t.Helper()
	out, err := tm.Run(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitFor polls the panes until every line of list-panes -a with format
// satisfies ok, or fails after 5 s.
func waitFor(t *testing.T, tm Tmux, format string, ok func(string) bool) string {
	t.Helper()
	var out string
	for range 100 {
		out = run(t, tm, "list-panes", "-a", "-F", format)
		if ok(out) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("panes never got there:\n%s", out)
	return ""
}

func sh(script string) []string { return []string{"sh", "-c", script} }

// TestEnsure drives a real tmux server: layout, colours, labels, the
// commands run as argument vectors, a guest that tries to retitle its
// pane and rename its window, then reuse (nothing created again), a dead
// pane respawned and a new machine added.
func TestEnsure(t *testing.T) {
	tm := needTmux(t)
	ctx := context.Background()
	admin, _ := trust.Of("admin")
	untrusted, _ := trust.Of("untrusted")
	spoof := `printf '\033]2;admin/fake\033\\'; printf '\033kadm\033\\'; echo spoofed; exec sleep 300`
	windows := []Window{
		{Domain: "adm", Palette: admin, Panes: []Pane{
			{Machine: "a1", Label: "adm/a1", Command: sh("echo one $X; exec sleep 300")},
			{Machine: "a2", Label: "adm/a2", Command: sh("exit 7")},
		}},
		{Domain: "bad", Palette: untrusted, Panes: []Pane{
			{Machine: "b1", Label: "bad/b1", Command: sh(spoof)},
		}},
	}
	r, err := Ensure(ctx, tm, windows, t.TempDir(), []string{"X=from-env"})
	if err != nil {
		t.Fatal(err)
	}
	if r != (Result{Created: true, Windows: 2, Panes: 3, NewWindows: 2, NewPanes: 3}) {
		t.Errorf("first Ensure: %+v", r)
	}
	if got := run(t, tm, "list-windows", "-t", "=anklume", "-F", "#{window_index}:#{window_name}"); got != "0:adm\n1:bad\n" {
		t.Errorf("windows:\n%s", got)
	}
	opts := run(t, tm, "show-options", "-w", "-t", "=anklume:bad")
	for _, want := range []string{
		"window-status-style fg=colour255,bg=colour52", `pane-border-style "fg=#cc3333"`,
		"allow-rename off", "automatic-rename off", `pane-border-format " #{@anklume_label} "`,
		"@anklume_domain bad", "remain-on-exit on", "pane-border-status top",
	} {
		if !strings.Contains(opts, want+"\n") {
			t.Errorf("window bad lacks %q:\n%s", want, opts)
		}
	}
	if got := run(t, tm, "show-options", "-t", "=anklume:", "set-titles"); got != "set-titles off\n" {
		t.Errorf("set-titles: %q", got)
	}
	panes := waitFor(t, tm, "#{window_name}|#{@anklume_label}|#{pane_dead}|#{pane_dead_status}|#{pane_start_command}", func(s string) bool {
		return strings.Contains(s, "adm/a2|1|7|")
	})
	want := []string{
		`adm|adm/a1|0||sh -c "echo one \$X; exec sleep 300"`,
		`adm|adm/a2|1|7|sh -c "exit 7"`,
	}
	for _, w := range want {
		if !strings.Contains(panes, w+"\n") {
			t.Errorf("panes lack %q:\n%s", w, panes)
		}
	}
	waitCapture(t, tm, "=anklume:adm.0", "one from-env")
	waitCapture(t, tm, "=anklume:bad.0", "spoofed")
	// The guest's escape sequences changed pane_title only, which nothing
	// shows; the window name and the label are anklume's.
	got := run(t, tm, "list-panes", "-t", "=anklume:bad", "-F", "#{window_name}|#{pane_title}|#{@anklume_label}")
	if got != "bad|admin/fake|bad/b1\n" {
		t.Errorf("after the spoof attempt: %q (want window bad, label bad/b1; the title may change)", got)
	}

	// Reuse: a2 is dead and respawned, c1 is added, nothing else is made.
	windows[0].Panes[1].Command = sh("exec sleep 301")
	windows[0].Panes = append(windows[0].Panes, Pane{Machine: "c1", Label: "adm/c1", Command: sh("exec sleep 302")})
	r, err = Ensure(ctx, tm, windows, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r != (Result{Windows: 2, Panes: 4, NewPanes: 1, Respawned: 1}) {
		t.Errorf("second Ensure: %+v", r)
	}
	panes = waitFor(t, tm, "#{@anklume_label}|#{pane_dead}|#{pane_start_command}", func(s string) bool {
		return strings.Contains(s, "adm/a2|0|sh -c \"exec sleep 301\"") && strings.Contains(s, "adm/c1|0|")
	})
	if n := len(strings.Split(strings.TrimSpace(panes), "\n")); n != 4 {
		t.Errorf("%d panes after reuse, want 4:\n%s", n, panes)
	}
}

// waitCapture waits until pane target shows text.
func waitCapture(t *testing.T, tm Tmux, target, text string) string {
	t.Helper()
	var out string
	for range 100 {
		out = run(t, tm, "capture-pane", "-p", "-t", target)
		if strings.Contains(out, text) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pane %s never showed %q:\n%s", target, text, out)
	return ""
}

// TestLayout: windows in zone then seq order (not declaration order),
// panes sorted by name, labels domain/machine, colours from the trust
// table, disabled and empty domains left out, --limit checked.
func TestLayout(t *testing.T) {
	e := desktest.New(t, `format_version: 1
project_name: i14-layout
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: anklume-test
domains:
  risky:
    trust_level: untrusted
    machines:
      r-zed: {}
      r-alpha: {}
  work2:
    trust_level: trusted
    subnet_id: 5
    machines:
      w2: {}
  work1:
    trust_level: trusted
    subnet_id: 3
    machines:
      w1: {}
  empty:
    trust_level: admin
  off:
    enabled: false
    trust_level: admin
    machines:
      o1: {}
`)
	cmd := func(mc *model.Machine) []string { return []string{"shell", mc.Name} }
	ws, err := Layout(e.Model, nil, cmd)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range ws {
		var ps []string
		for _, p := range w.Panes {
			ps = append(ps, p.Label+"="+strings.Join(p.Command, " "))
		}
		got = append(got, w.Domain+"("+w.Palette.Tmux+"): "+strings.Join(ps, ", "))
	}
	want := []string{
		"work1(colour22): work1/w1=shell w1",
		"work2(colour22): work2/w2=shell w2",
		"risky(colour52): risky/r-alpha=shell r-alpha, risky/r-zed=shell r-zed",
	}
	if !slices.Equal(got, want) {
		t.Errorf("layout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ws, err := Layout(e.Model, []string{"risky"}, cmd); err != nil || len(ws) != 1 || ws[0].Domain != "risky" {
		t.Errorf("--limit risky: %v %v", ws, err)
	}
	for limit, msg := range map[string]string{
		"riskz": `--limit: unknown domain "riskz" (did you mean "risky"?)`,
		"off":   `--limit: domain "off" is disabled`,
	} {
		if _, err := Layout(e.Model, []string{limit}, cmd); err == nil || err.Error() != msg {
			t.Errorf("--limit %s: %v, want %s", limit, err, msg)
		}
	}
}
