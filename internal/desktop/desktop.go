// Package desktop renders the desktop side of the trust colours: window
// rules for sway and i3, and a tmux palette, all from anklume's one colour
// table (internal/trust), and installs them into a managed section of the
// user's include file.
//
// What the rules match. A window title is whatever the program inside the
// guest sets, so it is never used. The sway rules match the Wayland
// app_id and the i3 rules the X11 WM_CLASS class, "anklume.<domain>" or
// "anklume.<domain>.<machine>", which must be set by a program running on
// the host: the terminal that runs `anklume shell MACHINE` (each rule
// block lists its launcher line, e.g. `foot --app-id=anklume.work.web
// anklume shell web` or `xterm -class anklume.work.web -e anklume shell
// web`), or a host-side viewer window for a guest's graphical programs.
// A program inside the guest cannot change the app_id or class of a host
// window. A guest program connected straight to the host compositor or X
// server could claim any app_id or class, "anklume.admin" included:
// such connections defeat the marking and must not be given to a guest.
//
// How the colour shows. Stock sway and i3 have no per-window border
// colour (client.* colours are global), so each rule gives the window a
// title bar with a `[domain]` tag in the trust colour (pango markup in
// title_format; the title itself is escaped by the window manager) and a
// 3-pixel border. The tag needs a pango font (font pango:…), the default
// in sway.
package desktop

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/target"
	"github.com/anklume/anklume/internal/trust"
)

// Kinds are the outputs of `anklume desktop`.
var Kinds = []string{"sway", "i3", "tmux"}

// Render returns the configuration snippet of kind for m's enabled
// domains, in address order.
func Render(kind string, m *model.Infra) ([]byte, error) {
	var domains []*model.Domain
	for _, d := range m.Domains {
		if d.Enabled {
			domains = append(domains, d)
		}
	}
	sorted, err := target.Domains(m, nil)
	if err != nil {
		return nil, err
	}
	// Domains with machines first in address order, then the empty ones.
	seen := map[string]bool{}
	for _, d := range sorted {
		seen[d.Name] = true
	}
	for _, d := range domains {
		if !seen[d.Name] {
			sorted = append(sorted, d)
		}
	}
	var b bytes.Buffer
	switch kind {
	case "sway", "i3":
		renderWM(&b, kind, m.ProjectName, sorted)
	case "tmux":
		renderTmux(&b, m.ProjectName, sorted)
	default:
		return nil, fmt.Errorf("unknown desktop %q (want sway, i3 or tmux)", kind)
	}
	return b.Bytes(), nil
}

// AppID is the app_id (sway) or class (i3) of a host-side window that
// shows machine mc.
func AppID(mc *model.Machine) string { return "anklume." + mc.Domain.Name + "." + mc.Name }

func renderWM(b *bytes.Buffer, kind, infra string, domains []*model.Domain) {
	crit, launcher := "app_id", "foot --app-id=%s anklume shell %s"
	if kind == "i3" {
		crit, launcher = "class", "xterm -class %s -e anklume shell %s"
	}
	fmt.Fprintf(b, "# anklume trust colours for infrastructure %s (anklume desktop %s).\n", infra, kind)
	fmt.Fprintf(b, "# Windows are matched on their %s, \"anklume.<domain>\" or\n", crit)
	fmt.Fprintf(b, "# \"anklume.<domain>.<machine>\", set by the host-side program that opens them,\n")
	fmt.Fprintf(b, "# never on their title. Each gets a [domain] tag in its trust colour.\n")
	for _, d := range domains {
		p := trust.ForDomain(d)
		fmt.Fprintf(b, "\n# %s: %s (%s)\n", d.Name, p.Level, p.Name)
		for _, mc := range target.SortedMachines(d) {
			fmt.Fprintf(b, "#   launch %s: "+launcher+"\n", mc.Name, AppID(mc), mc.Name)
		}
		fg := "#ffffff"
		if p.Level == "semi-trusted" || p.Level == "trusted" {
			fg = "#000000" // dark text on the light yellow and green
		}
		fmt.Fprintf(b, "for_window [%s=\"^anklume\\.%s(\\..+)?$\"] border normal 3, title_format \"<span background='%s' foreground='%s'> [%s] </span> %%title\"\n",
			crit, regexpQuote(d.Name), p.Border, fg, d.Name)
	}
}

func renderTmux(b *bytes.Buffer, infra string, domains []*model.Domain) {
	fmt.Fprintf(b, "# anklume trust palette for tmux, infrastructure %s (anklume desktop tmux).\n", infra)
	fmt.Fprintf(b, "# The console uses the same colours: @anklume-tmux-* for window tabs,\n")
	fmt.Fprintf(b, "# @anklume-border-* for pane borders, @anklume-bg-* as terminal backgrounds.\n")
	for _, p := range trust.Levels() {
		fmt.Fprintf(b, "set -g @anklume-tmux-%s \"%s\"\n", p.Level, p.Tmux)
		fmt.Fprintf(b, "set -g @anklume-border-%s \"%s\"\n", p.Level, p.Border)
		fmt.Fprintf(b, "set -g @anklume-bg-%s \"%s\"\n", p.Level, p.Background)
	}
	fmt.Fprintf(b, "# Trust level of each domain; e.g. a background for a pane of domain D:\n")
	fmt.Fprintf(b, "#   tmux select-pane -P \"bg=$(tmux show -gv @anklume-bg-$(tmux show -gv @anklume-domain-D))\"\n")
	for _, d := range domains {
		fmt.Fprintf(b, "set -g @anklume-domain-%s \"%s\"\n", d.Name, trust.Level(d))
	}
}

// regexpQuote escapes the regexp metacharacters a domain name can hold
// (names are [a-z0-9-], so none today; kept for safety).
func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$"`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Managed-section markers of an installed snippet.
const (
	Begin = "# === BEGIN ANKLUME DESKTOP (anklume desktop --install rewrites this section) ==="
	End   = "# === END ANKLUME DESKTOP ==="
)

// DefaultPath returns the include file --install writes for kind, under
// the configuration directory configDir ($XDG_CONFIG_HOME or ~/.config),
// and the line the user's main configuration needs to include it.
func DefaultPath(kind, configDir string) (path, include string) {
	switch kind {
	case "sway":
		path = filepath.Join(configDir, "sway", "config.d", "anklume.conf")
		return path, "include " + path
	case "i3":
		path = filepath.Join(configDir, "i3", "config.d", "anklume.conf")
		return path, "include " + path
	default:
		path = filepath.Join(configDir, "tmux", "anklume.conf")
		return path, "source-file " + path
	}
}

// Splice returns old with its managed section replaced by content (or,
// without one, content's section appended after old's text). A BEGIN
// without END, or two BEGINs, is an error: nothing is guessed.
func Splice(path string, old []byte, content []byte) ([]byte, error) {
	block := Begin + "\n" + strings.TrimRight(string(content), "\n") + "\n" + End + "\n"
	text := string(old)
	b := strings.Index(text, Begin)
	if b < 0 {
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		if text != "" {
			text += "\n"
		}
		return []byte(text + block), nil
	}
	if b > 0 && text[b-1] != '\n' {
		return nil, fmt.Errorf("%s: the BEGIN ANKLUME DESKTOP marker is not at the start of a line", path)
	}
	if strings.Contains(text[b+len(Begin):], Begin) {
		return nil, fmt.Errorf("%s: more than one anklume desktop section", path)
	}
	e := strings.Index(text[b:], "\n"+End)
	if e < 0 {
		return nil, fmt.Errorf("%s: the anklume desktop section is not closed (no %q line after BEGIN)", path, End)
	}
	rest := text[b+e+1+len(End):]
	rest = strings.TrimPrefix(rest, "\n")
	return []byte(text[:b] + block + rest), nil
}

// Install writes content into the managed section of path, creating the
// file (and its directory) when missing. The file is replaced atomically
// (a temporary file renamed over it), keeping its mode. changed is false
// when the file already held exactly this.
func Install(path string, content []byte) (changed bool, err error) {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return false, err
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	data, err := Splice(path, old, content)
	if err != nil {
		return false, err
	}
	if bytes.Equal(data, old) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	return true, os.Rename(tmp.Name(), path)
}
