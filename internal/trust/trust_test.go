package trust

import (
	"testing"

	"github.com/anklume/anklume/compiler/model"
)

// TestTable pins the palette users learn (border, background, tmux) for
// each level.
func TestTable(t *testing.T) {
	want := map[string][3]string{
		"admin":        {"#3333ff", "#0a0a2a", "colour17"},
		"trusted":      {"#33cc33", "#0a1a0a", "colour22"},
		"semi-trusted": {"#cccc33", "#1a1a0a", "colour58"},
		"untrusted":    {"#cc3333", "#1a0a0a", "colour52"},
		"disposable":   {"#cc33cc", "#1a0a1a", "colour53"},
	}
	if got := len(Levels()); got != len(want) {
		t.Fatalf("%d levels, want %d", got, len(want))
	}
	for level, w := range want {
		p, ok := Of(level)
		if !ok || [3]string{p.Border, p.Background, p.Tmux} != w {
			t.Errorf("Of(%q) = %+v, %v; want %v", level, p, ok, w)
		}
	}
	if _, ok := Of("trustd"); ok {
		t.Error(`Of("trustd") found a palette`)
	}
}

// TestLevel covers the legacy-mode rule for domains without trust_level.
func TestLevel(t *testing.T) {
	for _, tc := range []struct {
		d    model.Domain
		want string
	}{
		{model.Domain{Name: "work", TrustLevel: "untrusted"}, "untrusted"},
		{model.Domain{Name: "my-admin", TrustLevel: "untrusted"}, "untrusted"},
		{model.Domain{Name: "sys-admin"}, "admin"},
		{model.Domain{Name: "anklume"}, "admin"},
		{model.Domain{Name: "anklume", Ephemeral: true}, "admin"},
		{model.Domain{Name: "tmp", Ephemeral: true}, "disposable"},
		{model.Domain{Name: "work"}, "trusted"},
	} {
		if got := Level(&tc.d); got != tc.want {
			t.Errorf("Level(%+v) = %q, want %q", tc.d, got, tc.want)
		}
		if got := ForDomain(&tc.d).Level; got != tc.want {
			t.Errorf("ForDomain(%+v).Level = %q, want %q", tc.d, got, tc.want)
		}
	}
}
