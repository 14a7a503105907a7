package suggest

import "testing"

func TestClosest(t *testing.T) {
	names := []string{"work", "perso", "sandbox", "web", "db"}
	tests := []struct{ in, want string }{
		{"wrok", "work"},      // transposition: distance 2
		{"sandbx", "sandbox"}, // one deletion
		{"per", "perso"},      // prefix
		{"SAND", "sandbox"},   // prefix, any case
		{"wbe", "web"},        // short name: distance 1 (a swap)
		{"xyz", ""},           // short name: distance 2 is too far
		{"sndbx", "sandbox"},  // longer name: distance 2 is close enough
		{"dc", "db"},
		{"nothing", ""},
		{"work", ""}, // exact: no hint
		{"", ""},
	}
	for _, tc := range tests {
		if got := Closest(tc.in, names); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Hint("wrok", names); got != `; did you mean "work"?` {
		t.Errorf("Hint = %q", got)
	}
	if got := Hint("zzz", names); got != "" {
		t.Errorf("Hint(zzz) = %q", got)
	}
}
