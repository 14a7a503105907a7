package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The operator's desk live scenario (console, shell, dashboard, clipboard,
// copy) uses its own namespace: projects dk-a and dk-b, bridges net-dk-a
// (10.200.50.0/24) and net-dk-b (10.240.51.0/24), infrastructures named
// dk-<random>. Egress is off: no NAT, nothing leaves the host.
func deskPSOT(infra string) string {
	return `format_version: 1
project_name: ` + infra + `
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: images:debian/13
domains:
  dk-b:
    trust_level: untrusted
    subnet_id: 51
    egress: false
    ephemeral: true
    machines:
      dk-b1:
        description: "<script>alert('dk')</script> & \"quoted\""
  dk-a:
    trust_level: admin
    subnet_id: 50
    egress: false
    ephemeral: true
    machines:
      dk-a2: {}
      dk-a1: {}
network_policies:
  - description: dk admin to b1
    from: dk-a
    to: dk-b1
    ports: [8080]
  - {from: host, to: dk-a2, ports: [22]}
`
}

// deskCleanup deletes everything the desk scenario may have created.
func deskCleanup() {
	cleanupDomains([]string{"dk-a", "dk-b"})
}

// TestDeskLive applies the desk scenario once, then runs each desk
// command against it.
func TestDeskLive(t *testing.T) {
	needIncus(t)
	deskCleanup()
	t.Cleanup(deskCleanup)
	infra := scName(t, "dk")
	dir := writePSOT(t, deskPSOT(infra))
	out, errOut, code := runAnklume(t, binary(t), dir, nil, "apply", "--yes", "--no-nftables", "--no-provision", "--no-snapshot")
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	// The busybox image's hostname is the image's: a marker file tells
	// the containers apart.
	for _, m := range []struct{ p, n string }{{"dk-a", "dk-a1"}, {"dk-a", "dk-a2"}, {"dk-b", "dk-b1"}} {
		cmd := exec.Command("incus", "file", "push", "--project", m.p, "-", m.n+"/etc/dk-marker")
		cmd.Stdin = strings.NewReader("marker-" + m.n + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pushing the marker into %s: %v %s", m.n, err, out)
		}
	}
	t.Run("shell", func(t *testing.T) { deskShell(t, dir) })
	t.Run("console", func(t *testing.T) { deskConsole(t, dir) })
	t.Run("dashboard", func(t *testing.T) { deskDashboard(t, dir) })
	t.Run("copy", func(t *testing.T) { deskCopy(t, dir) })
	t.Run("clipboard", func(t *testing.T) { deskClipboard(t, dir) })
}

// pull reads a file of a live container; ok is false when it is absent.
func pull(project, inst, path string) (string, bool) {
	out, err := exec.Command("incus", "file", "pull", "--project", project, inst+path, "-").Output()
	return string(out), err == nil
}

// deskCopy: a copy along the policy lands byte for byte; against it, it is
// refused and nothing is written; both are logged.
func deskCopy(t *testing.T, dir string) {
	bin := binary(t)
	out, errOut, code := runAnklume(t, bin, dir, nil, "copy", "dk-a1:/etc/dk-marker", "dk-b1:/tmp/from-a1")
	if got, ok := pull("dk-b", "dk-b1", "/tmp/from-a1"); code != 0 || !ok || got != "marker-dk-a1\n" {
		t.Errorf("copy along the policy: exit %d %q %q; file %v %q", code, out, errOut, ok, got)
	}
	_, errOut, code = runAnklume(t, bin, dir, nil, "copy", "dk-b1:/etc/dk-marker", "dk-a1:/tmp/from-b1")
	if code != 1 || !strings.Contains(errOut, "error: copy refused: no network policy from dk-b1 (domain dk-b) to dk-a1 (domain dk-a)") {
		t.Errorf("copy against the policy: exit %d %q", code, errOut)
	}
	if _, ok := pull("dk-a", "dk-a1", "/tmp/from-b1"); ok {
		t.Error("a refused copy wrote its destination")
	}
	log, err := os.ReadFile(filepath.Join(dir, ".anklume", "transfers.log"))
	if err != nil || strings.Count(string(log), "\n") != 2 || !strings.Contains(string(log), `"allowed":false`) {
		t.Errorf("transfer log: %v\n%s", err, log)
	}
}

// deskClipboard: a fake wl-paste/wl-copy first on PATH; the host
// clipboard goes into dk-a2 (host -> dk-a2 policy), and dk-b1's clipboard
// may not come out (no dk-b1 -> host policy).
func deskClipboard(t *testing.T, dir string) {
	tools := t.TempDir()
	clip := filepath.Join(tools, "clip")
	for name, script := range map[string]string{
		"wl-paste": "#!/bin/sh\nexec cat " + clip + "\n",
		"wl-copy":  "#!/bin/sh\nexec cat > " + clip + "\n",
	} {
		if err := os.WriteFile(filepath.Join(tools, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	content := "clip; $(touch /tmp/pwned) `id`\n"
	if err := os.WriteFile(clip, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + tools + ":" + os.Getenv("PATH")}
	_, errOut, code := runAnklume(t, binary(t), dir, env, "clipboard", "to", "dk-a2")
	if got, ok := pull("dk-a", "dk-a2", "/tmp/anklume-clipboard"); code != 0 || !ok || got != content {
		t.Errorf("clipboard to dk-a2: exit %d %q; guest file %v %q", code, errOut, ok, got)
	}
	if _, ok := pull("dk-a", "dk-a2", "/tmp/pwned"); ok {
		t.Error("the clipboard text was run by a shell")
	}
	_, errOut, code = runAnklume(t, binary(t), dir, env, "clipboard", "from", "dk-b1")
	if code != 1 || !strings.Contains(errOut, "clipboard-from refused") {
		t.Errorf("clipboard from dk-b1: exit %d %q", code, errOut)
	}
	if b, _ := os.ReadFile(clip); string(b) != content {
		t.Errorf("the host clipboard changed to %q", b)
	}
}

// chromium runs headless Chromium with args, offline and throwaway.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.Command("chromium", append(base, args...)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// deskDashboard starts the dashboard against the live daemon, opens it
// in headless Chromium (DOM after the page's script ran, and a
// screenshot), and checks the read-only and loopback rules.
func deskDashboard(t *testing.T, dir string) {
	needTools(t, "chromium")
	_, errOut, code := runAnklume(t, binary(t), dir, nil, "dashboard", "--listen", "0.0.0.0:0")
	if code != 1 || !strings.Contains(errOut, `error: --listen "0.0.0.0:0" is not a loopback address`) {
		t.Errorf("dashboard on 0.0.0.0 without --allow-remote: exit %d %q", code, errOut)
	}
	cmd := scCommand(t, binary(t), dir, nil, "dashboard", "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errBuf strings.Builder
	cmd.Stderr = &errBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	m := regexp.MustCompile(`on (http://127\.0\.0\.1:\d+/) `).FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("dashboard did not start: %q %v %s", line, err, errBuf.String())
	}
	url := m[1]
	res, err := http.Post(url, "text/plain", strings.NewReader("x"))
	if err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %v %v", res, err)
	}
	res, err = http.Get(url + "api/policies")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /api/policies: %v %v", res, err)
	}
	res.Body.Close()

	dom := chromium(t, "--virtual-time-budget=8000", "--dump-dom", url)
	for _, want := range []string{
		`id="domain-dk-a"`, `id="domain-dk-b"`,
		`data-machine="dk-a1"`, `data-machine="dk-a2"`, `data-machine="dk-b1"`,
		`id="policy-0" data-from="dk-a" data-to="dk-b1"`,
		`<body data-live="ok">`,
		`&lt;script&gt;alert('dk')&lt;/script&gt; &amp; "quoted"`,
		`<td data-field="state" class="state-Running">Running</td>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %s", want)
		}
	}
	if strings.Contains(dom, "<script>alert") {
		t.Error("the hostile description reached the DOM as markup")
	}
	// The live IP of dk-b1 came from the daemon (the leases take a moment;
	// the page's script fills them in on its next poll).
	if !regexp.MustCompile(`data-field="ip">10\.240\.51\.\d+<`).MatchString(dom) {
		t.Errorf("DOM shows no live IP for dk-b1")
	}
	shot := filepath.Join(os.TempDir(), "anklume-dashboard-e2e.png")
	chromium(t, "--virtual-time-budget=8000", "--window-size=1400,1000", "--hide-scrollbars", "--screenshot="+shot, url)
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10000 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}

// deskShell: names from infra.yml, the exit status, and stdin.
func deskShell(t *testing.T, dir string) {
	out, errOut, code := runAnklume(t, binary(t), dir, nil, "shell", "dk-b1", "--", "cat", "/etc/dk-marker")
	if code != 0 || out != "marker-dk-b1\n" {
		t.Errorf("shell dk-b1 -- cat /etc/dk-marker: exit %d %q %q", code, out, errOut)
	}
	_, _, code = runAnklume(t, binary(t), dir, nil, "shell", "dk-a1", "--", "sh", "-c", "exit 42")
	if code != 42 {
		t.Errorf("shell -- sh -c 'exit 42': exit %d", code)
	}
	// On a terminal (script gives it one): the command gets a terminal
	// too, and its status comes back.
	needTools(t, "script")
	cmd := scCommand(t, "script", dir, nil, "-qec", binary(t)+" shell dk-a2 -- sh -c 'test -t 0 && cat /etc/dk-marker; exit 6'", "/dev/null")
	b, err := cmd.CombinedOutput()
	if code := exitCode(t, err, cmd.Args); code != 6 || !strings.Contains(string(b), "marker-dk-a2") {
		t.Errorf("shell on a terminal: exit %d, output %q", code, b)
	}
}

// tmuxOut runs tmux on the test socket.
func tmuxOut(t *testing.T, sock string, args ...string) string {
	t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// waitPane waits until capture-pane of target contains text.
func waitPane(t *testing.T, sock, target, text string) string {
	t.Helper()
	var out string
	for range 150 {
		out = tmuxOut(t, sock, "capture-pane", "-p", "-t", target)
		if strings.Contains(out, text) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("pane %s never showed %q:\n%s", target, text, out)
	return ""
}

// deskConsole: console --no-attach builds the session on its own tmux
// socket: windows in address order with the trust colours, one pane per
// machine running `anklume shell MACHINE`, labels set by anklume; a pane
// really is a shell in its container, follows a resize, and its exit
// status shows; a second console reuses the session and respawns it.
func deskConsole(t *testing.T, dir string) {
	needTools(t, "tmux")
	sock := fmt.Sprintf("anklume-e2e-%d", os.Getpid())
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", sock, "kill-server").Run() })
	bin := binary(t)
	out, errOut, code := runAnklume(t, bin, dir, nil, "console", "--no-attach", "--socket", sock)
	if code != 0 || out != `console: created tmux session "anklume": 2 windows, 3 panes (3 new, 0 restarted)`+"\nattach with: tmux -L "+sock+" attach -t anklume\n" {
		t.Fatalf("console: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := tmuxOut(t, sock, "list-windows", "-t", "=anklume", "-F", "#{window_name}"); got != "dk-a\ndk-b\n" {
		t.Errorf("windows %q, want dk-a (10.200.50) then dk-b (10.240.51)", got)
	}
	panes := tmuxOut(t, sock, "list-panes", "-a", "-F", "#{window_name}|#{@anklume_label}|#{pane_start_command}")
	for _, m := range []string{"dk-a/dk-a1", "dk-a/dk-a2", "dk-b/dk-b1"} {
		w, mc, _ := strings.Cut(m, "/")
		if want := w + "|" + m + "|" + bin + " shell " + mc + "\n"; !strings.Contains(panes, want) {
			t.Errorf("no pane %q in:\n%s", want, panes)
		}
	}
	for w, want := range map[string][]string{
		"dk-a": {"window-status-style fg=colour255,bg=colour17", `pane-border-style "fg=#3333ff"`},
		"dk-b": {"window-status-style fg=colour255,bg=colour52", `pane-border-style "fg=#cc3333"`},
	} {
		opts := tmuxOut(t, sock, "show-options", "-w", "-t", "=anklume:"+w)
		for _, o := range append(want, `pane-border-format " #{@anklume_label} "`, "allow-rename off") {
			if !strings.Contains(opts, o+"\n") {
				t.Errorf("window %s lacks %q:\n%s", w, o, opts)
			}
		}
	}
	target := "=anklume:dk-b.0"
	tmuxOut(t, sock, "send-keys", "-t", target, "cat /etc/dk-marker", "Enter")
	waitPane(t, sock, target, "\nmarker-dk-b1\n")
	tmuxOut(t, sock, "resize-window", "-t", "=anklume:dk-b", "-x", "91", "-y", "27")
	size := strings.TrimSpace(tmuxOut(t, sock, "display-message", "-p", "-t", target, "#{pane_height} #{pane_width}"))
	tmuxOut(t, sock, "send-keys", "-t", target, "stty size", "Enter")
	waitPane(t, sock, target, "\n"+size+"\n")
	tmuxOut(t, sock, "send-keys", "-t", target, "exit 5", "Enter")
	// tmux 3.3 loses pane_dead_status when output and exit come
	// together, so only the death is checked here; the exit status of an
	// interactive shell is checked through script(1) in deskShell.
	var st string
	for range 100 {
		st = tmuxOut(t, sock, "display-message", "-p", "-t", target, "#{pane_dead}")
		if st == "1\n" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st != "1\n" {
		t.Errorf("after exit 5 in the pane: pane_dead = %q", st)
	}
	out, errOut, code = runAnklume(t, bin, dir, nil, "console", "--no-attach", "--socket", sock, "-q")
	if code != 0 || out != "" {
		t.Errorf("second console: exit %d %q %q", code, out, errOut)
	}
	tmuxOut(t, sock, "send-keys", "-t", target, "cat /etc/dk-marker", "Enter")
	waitPane(t, sock, target, "\nmarker-dk-b1\n")
	if got := tmuxOut(t, sock, "list-panes", "-a", "-F", "#{pane_id}"); strings.Count(got, "\n") != 3 {
		t.Errorf("panes after reuse:\n%s", got)
	}
}
