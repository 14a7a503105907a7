package reconcile

import (
	"slices"
	"strings"
	"testing"
)

// splitMatch is metaMatch written with strings.Split, the reference.
func splitMatch(listed, key string) bool {
	ls, ks := strings.Split(listed, "."), strings.Split(key, ".")
	for i, l := range ls {
		wild := l == "*" || (strings.HasPrefix(l, "<") && strings.HasSuffix(l, ">"))
		if i == len(ls)-1 && l == "*" {
			return len(ks) >= len(ls)
		}
		if i >= len(ks) || (!wild && l != ks[i]) {
			return false
		}
	}
	return len(ks) == len(ls)
}

// TestMetaMatch: listed keys with fixed, `*` and `<name>` segments and a
// final `*`, against keys of more, fewer and empty segments.
func TestMetaMatch(t *testing.T) {
	want := []struct {
		listed, key string
		match       bool
	}{
		{"limits.cpu", "limits.cpu", true},
		{"limits.cpu", "limits.cpus", false},
		{"limits.cpu", "limits.cpu.x", false},
		{"limits.cpu", "limits", false},
		{"volatile.<name>.hwaddr", "volatile.eth0.hwaddr", true},
		{"volatile.<name>.hwaddr", "volatile.eth0", false},
		{"volatile.<name>.hwaddr", "volatile..hwaddr", true},
		{"environment.*", "environment.HOME", true},
		{"environment.*", "environment.a.b", true},
		{"environment.*", "environment", false},
		{"environment.*", "environment.", true},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.b.d", false},
		{"*", "anything", true},
		{"*", "", true},
		{"", "", true},
		{"", "a", false},
		{"<", "x", false},
		{"<>", "x", true},
	}
	for _, c := range want {
		if got := metaMatch(c.listed, c.key); got != c.match {
			t.Errorf("metaMatch(%q, %q) = %v, want %v", c.listed, c.key, got, c.match)
		}
	}
	keys := []string{"", ".", "a", "a.", ".a", "a.b", "a.b.c", "a..c", "x.b.c", "a.b.c.d", "user.x"}
	listed := append(slices.Clone(keys), "*", "a.*", "a.<n>", "a.<n>.c", "<n>.b.*", "*.b", "a.*.*", "<x>")
	for _, l := range listed {
		for _, k := range keys {
			if got, ref := metaMatch(l, k), splitMatch(l, k); got != ref {
				t.Errorf("metaMatch(%q, %q) = %v, the split form says %v", l, k, got, ref)
			}
		}
	}
}
