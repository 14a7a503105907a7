package semantic

import "testing"

func TestLevenshtein(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"kitten", "sitting", 3},
		{"type", "tpye", 2},
		{"héllo", "hello", 1}, // code points, not bytes
		{"日本語", "日本", 1},
	} {
		if got := Levenshtein(tc.a, tc.b); got != tc.want {
			t.Errorf("Levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestSuggest follows §16 item 76: a 7-code-point key gets a suggestion at
// distance 2 but not 3, a 9-code-point key gets one at distance 3.
func TestSuggest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		k     string
		known []string
		want  string
		ok    bool
	}{
		{"item76 7 runes distance 2", "abcdefg", []string{"abcdexy"}, "abcdexy", true},
		{"item76 7 runes distance 3", "abcdefg", []string{"abcdxyz"}, "", false},
		{"item76 9 runes distance 3", "abcdefghi", []string{"abcdefxyz"}, "abcdefxyz", true},
		{"item76 9 runes distance 4", "abcdefghi", []string{"abcdewxyz"}, "", false},
		{"item76 code points", "ééééééé", []string{"éééééab"}, "éééééab", true},
		{"tie goes byte-wise first", "pro", []string{"prb", "pra"}, "pra", true},
		{"closest wins", "perso", []string{"pers", "perso-ws"}, "pers", true},
		{"none", "x", nil, "", false},
	} {
		got, ok := Suggest(tc.k, tc.known)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: Suggest(%q) = %q, %v; want %q, %v", tc.name, tc.k, got, ok, tc.want, tc.ok)
		}
	}
}
