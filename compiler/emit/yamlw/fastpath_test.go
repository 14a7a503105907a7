package yamlw

import (
	"strings"
	"testing"
)

// TestMayResolve checks that the fast pre-check never skips a string the
// resolver expression matches: every keyword, and every string made of a
// first byte and a tail that the expression could complete.
func TestMayResolve(t *testing.T) {
	tails := []string{"", "0", "1_0", "x1F", "b01", "o17", ":30", ".5", "e+3", "-01-02", "ull", "es", "rue", "alse", "n", "ff",
		"ULL", "RUE", "ALSE", "inf", "nan", "<", "1:20:30.5", "2024-1-2 10:20:30Z", "2024-1-2t10:20:30.25 +01:00", "2024-01-02T1:02:03.5-1", "ebian/13", "0.1.2", "12MiB", "_1:2:3.4", "1e5", ".5E-3"}
	var cases []string
	for c := 0x20; c < 0x7f; c++ {
		for _, tail := range tails {
			cases = append(cases, string(rune(c))+tail)
		}
	}
	cases = append(cases, strings.Split("~ null Null NULL y Y n N yes Yes YES no No NO true True TRUE false False FALSE on On ON off Off OFF << = .inf -.Inf +.INF .nan .NaN 0o17 0x1F 2024-01-02", " ")...)
	matched := 0
	for _, s := range cases {
		if resolverRe().MatchString(s) {
			matched++
			if !mayResolve(s) {
				t.Errorf("mayResolve(%q) = false, but the resolver expression matches it", s)
			}
		}
	}
	if matched < 50 {
		t.Fatalf("only %d resolver matches: the test lost its teeth", matched)
	}
}
