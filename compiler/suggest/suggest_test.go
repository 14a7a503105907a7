package suggest

import "testing"

func TestDistance(t *testing.T) {
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
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestSuggest follows §16 item 76: a 7-code-point key gets a suggestion at
// distance 2 but not 3, a 9-code-point key gets one at distance 3.
func TestClosest(t *testing.T) {
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
		got, ok := Closest(tc.k, tc.known)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: Closest(%q) = %q, %v; want %q, %v", tc.name, tc.k, got, ok, tc.want, tc.ok)
		}
	}
}

// TestClosestThresholds covers §16 #76: 7 code points allow distance 2,
// 9 allow 3.
func TestClosestThresholds(t *testing.T) {
	for _, tc := range []struct {
		k    string
		cand []string
		want string
	}{
		{"tpye", []string{"type", "ip"}, "type"},
		{"gp", []string{"ip", "gpu"}, "gpu"},
		{"abcdefg", []string{"abcdexy"}, "abcdexy"},
		{"abcdefg", []string{"abcdxyz"}, ""},
		{"abcdefghi", []string{"abcdefxyz"}, "abcdefxyz"},
		{"", []string{"tcp"}, ""},
	} {
		got, ok := Closest(tc.k, tc.cand)
		if !ok {
			got = ""
		}
		if got != tc.want {
			t.Errorf("Closest(%q, %v) = %q, want %q", tc.k, tc.cand, got, tc.want)
		}
	}
	if d := Distance("éphémèral", "ephemeral"); d != 3 {
		t.Errorf("levenshtein counts code points: got %d", d)
	}
}
