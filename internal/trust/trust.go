// Package trust holds anklume's one table of trust-level colours: the
// window border, terminal background and tmux colour of each trust level.
// The console, the dashboard and the desktop integrations all read it, so
// a domain has the same colour everywhere the user meets it.
package trust

import (
	"strings"

	"github.com/anklume/anklume/compiler/model"
)

// Palette is how one trust level looks.
type Palette struct {
	// Level is the trust level: admin, trusted, semi-trusted, untrusted
	// or disposable.
	Level string
	// Name is the colour's plain name (blue, green, …).
	Name string
	// Border is the window-border colour, "#rrggbb".
	Border string
	// Background is the terminal background, "#rrggbb".
	Background string
	// Tmux is the tmux colour, "colourNNN".
	Tmux string
}

// levels are the trust levels from most to least trusted, with their
// colours.
var levels = [...]Palette{
	{Level: "admin", Name: "blue", Border: "#3333ff", Background: "#0a0a2a", Tmux: "colour17"},
	{Level: "trusted", Name: "green", Border: "#33cc33", Background: "#0a1a0a", Tmux: "colour22"},
	{Level: "semi-trusted", Name: "yellow", Border: "#cccc33", Background: "#1a1a0a", Tmux: "colour58"},
	{Level: "untrusted", Name: "red", Border: "#cc3333", Background: "#1a0a0a", Tmux: "colour52"},
	{Level: "disposable", Name: "magenta", Border: "#cc33cc", Background: "#1a0a1a", Tmux: "colour53"},
}

// Levels returns every trust level's palette, most trusted first.
func Levels() []Palette { return append([]Palette(nil), levels[:]...) }

// Of returns the palette of a trust level; ok is false for an unknown one.
func Of(level string) (p Palette, ok bool) {
	for _, l := range levels {
		if l.Level == level {
			return l, true
		}
	}
	return Palette{}, false
}

// Level returns the trust level a domain is shown with: its trust_level
// when set; otherwise (legacy mode) admin when its name contains "admin"
// or "anklume", disposable when it is ephemeral, and trusted for the rest.
func Level(d *model.Domain) string {
	if _, ok := Of(d.TrustLevel); ok {
		return d.TrustLevel
	}
	switch {
	case strings.Contains(d.Name, "admin") || strings.Contains(d.Name, "anklume"):
		return "admin"
	case d.Ephemeral:
		return "disposable"
	}
	return "trusted"
}

// ForDomain returns the palette a domain is shown with (see Level).
func ForDomain(d *model.Domain) Palette {
	p, _ := Of(Level(d))
	return p
}
