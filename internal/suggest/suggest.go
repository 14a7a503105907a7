// Package suggest finds the known name closest to a mistyped one, for
// "did you mean" hints in error messages.
package suggest

import (
	"sort"
	"strconv"
	"strings"
)

// Closest returns the candidate nearest to name: one that starts with name
// (case-insensitively), else one at edit distance at most 2 (1 for names
// of up to 3 characters). Among equals the first in sorted order wins. It
// returns "" when no candidate is close enough, or when name is one of
// them.
func Closest(name string, candidates []string) string {
	if name == "" {
		return ""
	}
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	low := strings.ToLower(name)
	for _, c := range sorted {
		if c == name {
			return ""
		}
	}
	for _, c := range sorted {
		if strings.HasPrefix(strings.ToLower(c), low) {
			return c
		}
	}
	limit := 2
	if len([]rune(name)) <= 3 {
		limit = 1
	}
	best, bestD := "", limit+1
	for _, c := range sorted {
		if d := distance(low, strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// Hint returns `; did you mean "x"?` for the closest candidate, or "".
func Hint(name string, candidates []string) string {
	if c := Closest(name, candidates); c != "" {
		return "; did you mean " + strconv.Quote(c) + "?"
	}
	return ""
}

// distance is the edit distance between a and b, in runes, where an
// insertion, a deletion, a substitution and the swap of two adjacent runes
// each count 1 (optimal string alignment).
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
