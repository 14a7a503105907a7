// Package console builds and keeps up to date the tmux session of
// `anklume console`: one window per domain, in zone then seq order, named
// after the domain, and one pane per machine, sorted by name, each running
// a shell in its machine.
//
// What a guest cannot spoof. Everything the user reads to know where a
// pane leads is set by anklume through the tmux server, which no guest can
// reach: the pane border shows the pane option @anklume_label
// ("<domain>/<machine>"), never pane_title (which a guest sets with an
// escape sequence); each window has allow-rename and automatic-rename off,
// so its name stays the domain's; the session has set-titles off, so a
// guest cannot retitle the outer terminal either. window-status-style and
// the pane borders use the domain's trust colour (internal/trust).
//
// An existing session is reused: windows and panes are found by the user
// options @anklume_domain and @anklume_machine, the missing ones are
// added, dead panes (remain-on-exit keeps them, so an error stays
// readable) are respawned, and every option is set again. Panes that the
// user added by hand are left alone.
//
// tmux 3.2 or later is required (new-session -e, to hand the pane its
// environment even when a tmux server already runs).
package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/target"
	"github.com/anklume/anklume/internal/trust"
)

// Session is the name of the tmux session.
const Session = "anklume"

// User options anklume sets on the objects it made.
const (
	OptDomain  = "@anklume_domain"
	OptMachine = "@anklume_machine"
	OptLabel   = "@anklume_label"
)

// Window is one domain's window.
type Window struct {
	Domain  string
	Palette trust.Palette
	Panes   []Pane
}

// Pane is one machine's pane.
type Pane struct {
	Machine string
	// Label is "<domain>/<machine>", shown on the pane border.
	Label string
	// Command is the argument vector the pane runs (executed directly by
	// tmux, never through a shell).
	Command []string
}

// Layout returns the windows of m: enabled domains with machines (only
// those of limit when it is not empty), in zone then seq order, each with
// its machines sorted by name; command gives each machine's pane command.
func Layout(m *model.Infra, limit []string, command func(*model.Machine) []string) ([]Window, error) {
	domains, err := target.Domains(m, limit)
	if err != nil {
		return nil, err
	}
	var out []Window
	for _, d := range domains {
		w := Window{Domain: d.Name, Palette: trust.ForDomain(d)}
		for _, mc := range target.SortedMachines(d) {
			w.Panes = append(w.Panes, Pane{Machine: mc.Name, Label: d.Name + "/" + mc.Name, Command: command(mc)})
		}
		out = append(out, w)
	}
	return out, nil
}

// WindowOptions returns the window options anklume sets on a domain's
// window, as name/value pairs.
func WindowOptions(w Window) [][2]string {
	p := w.Palette
	return [][2]string{
		{OptDomain, w.Domain},
		{"allow-rename", "off"},
		{"automatic-rename", "off"},
		{"window-status-style", "fg=colour255,bg=" + p.Tmux},
		{"window-status-current-style", "fg=colour255,bg=" + p.Tmux + ",bold,underscore"},
		{"pane-border-style", "fg=" + p.Border},
		{"pane-active-border-style", "fg=" + p.Border + ",bold"},
		{"pane-border-status", "top"},
		{"pane-border-format", " #{" + OptLabel + "} "},
		{"remain-on-exit", "on"},
	}
}

// Tmux runs tmux commands on one server.
type Tmux struct {
	// Bin is the tmux binary ("tmux" when empty).
	Bin string
	// Socket is the server socket name (tmux -L); "" is tmux's default.
	Socket string
}

// Args returns the arguments that precede a tmux command: -L SOCKET.
func (t Tmux) Args() []string {
	if t.Socket == "" {
		return nil
	}
	return []string{"-L", t.Socket}
}

// Binary returns the tmux binary.
func (t Tmux) Binary() string {
	if t.Bin == "" {
		return "tmux"
	}
	return t.Bin
}

// Run runs one tmux command and returns its standard output.
func (t Tmux) Run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, t.Binary(), append(t.Args(), args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errOut.String())
		if msg == "" {
			msg = err.Error()
		}
		return out.String(), fmt.Errorf("tmux %s: %s", args[0], msg)
	}
	return out.String(), nil
}

// CheckVersion fails unless tmux is installed and at least 3.2.
func (t Tmux) CheckVersion(ctx context.Context) error {
	if _, err := exec.LookPath(t.Binary()); err != nil {
		return errors.New("tmux is not installed (install it: apt install tmux)")
	}
	out, err := exec.CommandContext(ctx, t.Binary(), "-V").Output()
	if err != nil {
		return fmt.Errorf("running tmux -V: %w", err)
	}
	v := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "tmux "))
	v = strings.TrimPrefix(v, "next-")
	major, rest, _ := strings.Cut(v, ".")
	minor := rest
	for i, r := range rest {
		if r < '0' || r > '9' {
			minor = rest[:i]
			break
		}
	}
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("cannot read the tmux version from %q", strings.TrimSpace(string(out)))
	}
	if ma < 3 || ma == 3 && mi < 2 {
		return fmt.Errorf("tmux %s is too old: the console needs tmux 3.2 or later", v)
	}
	return nil
}

// Result says what Ensure did.
type Result struct {
	// Created is true when the session did not exist.
	Created bool
	// Windows and Panes count those anklume manages in the session now.
	Windows, Panes int
	// NewWindows, NewPanes and Respawned count what this run added or
	// restarted.
	NewWindows, NewPanes, Respawned int
}

// Ensure makes the session match windows: it creates the session when
// missing, adds missing windows and panes, respawns dead panes and sets
// every option. Panes start in dir with env (NAME=value) added to their
// environment.
func Ensure(ctx context.Context, t Tmux, windows []Window, dir string, env []string) (Result, error) {
	var r Result
	if len(windows) == 0 {
		return r, errors.New("no machine to show: no enabled domain has machines")
	}
	// Every pane starts with a placeholder (cat, which waits on the
	// terminal) and is respawned with its command once its options are
	// set: a command that ends at once (a stopped machine) then stays
	// readable under remain-on-exit instead of closing its window.
	start := func(pid string, p Pane) error {
		args := []string{"respawn-pane", "-k", "-t", pid, "-c", dir}
		for _, e := range env {
			args = append(args, "-e", e)
		}
		_, err := t.Run(ctx, append(append(args, "--"), p.Command...)...)
		return err
	}
	var fresh []string // pane ids to start, with their panes
	var freshPanes []Pane
	if _, err := t.Run(ctx, "has-session", "-t", "="+Session); err != nil {
		w := windows[0]
		out, err := t.Run(ctx, "new-session", "-d", "-s", Session, "-n", w.Domain,
			"-x", "200", "-y", "50", "-P", "-F", "#{window_id} #{pane_id}", "cat")
		if err != nil {
			return r, err
		}
		wid, pid, _ := strings.Cut(strings.TrimSpace(out), " ")
		if err := t.tagPane(ctx, pid, w.Panes[0]); err != nil {
			return r, err
		}
		if err := t.setWindow(ctx, wid, w); err != nil {
			return r, err
		}
		fresh, freshPanes = append(fresh, pid), append(freshPanes, w.Panes[0])
		r.Created = true
		r.NewWindows = 1
	}
	if _, err := t.Run(ctx, "set-option", "-t", "="+Session+":", "set-titles", "off"); err != nil {
		return r, err
	}
	existing, err := t.windows(ctx)
	if err != nil {
		return r, err
	}
	for _, w := range windows {
		wid, ok := existing[w.Domain]
		if !ok {
			out, err := t.Run(ctx, "new-window", "-d", "-t", "="+Session+":", "-n", w.Domain,
				"-P", "-F", "#{window_id} #{pane_id}", "cat")
			if err != nil {
				return r, err
			}
			var pid string
			wid, pid, _ = strings.Cut(strings.TrimSpace(out), " ")
			if err := t.tagPane(ctx, pid, w.Panes[0]); err != nil {
				return r, err
			}
			fresh, freshPanes = append(fresh, pid), append(freshPanes, w.Panes[0])
			r.NewWindows++
		}
		if err := t.setWindow(ctx, wid, w); err != nil {
			return r, err
		}
		panes, err := t.panes(ctx, wid)
		if err != nil {
			return r, err
		}
		for _, p := range w.Panes {
			st, ok := panes[p.Machine]
			switch {
			case !ok:
				out, err := t.Run(ctx, "split-window", "-d", "-t", wid, "-P", "-F", "#{pane_id}", "cat")
				if err != nil {
					return r, err
				}
				pid := strings.TrimSpace(out)
				if err := t.tagPane(ctx, pid, p); err != nil {
					return r, err
				}
				if _, err := t.Run(ctx, "select-layout", "-t", wid, "tiled"); err != nil {
					return r, err
				}
				fresh, freshPanes = append(fresh, pid), append(freshPanes, p)
			case st.dead:
				if err := t.tagPane(ctx, st.id, p); err != nil {
					return r, err
				}
				if err := start(st.id, p); err != nil {
					return r, err
				}
				r.Respawned++
			default:
				if err := t.tagPane(ctx, st.id, p); err != nil {
					return r, err
				}
			}
		}
		r.Windows++
		r.Panes += len(w.Panes)
	}
	for i, pid := range fresh {
		if err := start(pid, freshPanes[i]); err != nil {
			return r, err
		}
	}
	r.NewPanes = len(fresh)
	return r, nil
}

// setWindow sets the window options of w on the window wid.
func (t Tmux) setWindow(ctx context.Context, wid string, w Window) error {
	for _, o := range WindowOptions(w) {
		if _, err := t.Run(ctx, "set-option", "-w", "-t", wid, o[0], o[1]); err != nil {
			return err
		}
	}
	return nil
}

// tagPane sets the pane options of p on the pane pid.
func (t Tmux) tagPane(ctx context.Context, pid string, p Pane) error {
	for _, o := range [][2]string{{OptMachine, p.Machine}, {OptLabel, p.Label}} {
		if _, err := t.Run(ctx, "set-option", "-p", "-t", pid, o[0], o[1]); err != nil {
			return err
		}
	}
	return nil
}

// windows maps @anklume_domain to the window id of the session's windows
// that anklume made.
func (t Tmux) windows(ctx context.Context) (map[string]string, error) {
	out, err := t.Run(ctx, "list-windows", "-t", "="+Session, "-F", "#{window_id}\t#{"+OptDomain+"}")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		id, dom, _ := strings.Cut(line, "\t")
		if dom != "" {
			if _, dup := m[dom]; !dup {
				m[dom] = id
			}
		}
	}
	return m, nil
}

// paneState is one pane anklume made.
type paneState struct {
	id   string
	dead bool
}

// panes maps @anklume_machine to the panes of window wid.
func (t Tmux) panes(ctx context.Context, wid string) (map[string]paneState, error) {
	out, err := t.Run(ctx, "list-panes", "-t", wid, "-F", "#{pane_id}\t#{pane_dead}\t#{"+OptMachine+"}")
	if err != nil {
		return nil, err
	}
	m := map[string]paneState{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 3 && f[2] != "" {
			if _, dup := m[f[2]]; !dup {
				m[f[2]] = paneState{id: f[0], dead: f[1] == "1"}
			}
		}
	}
	return m, nil
}
