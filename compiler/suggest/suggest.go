// Package suggest computes did-you-mean hints (SPEC.md §3.4).
package suggest

import "unicode/utf8"

// Distance returns the edit distance between a and b, counted in Unicode
// code points (SPEC.md §3.4).
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// Closest returns the entry of known closest to k for a did-you-mean hint:
// the smallest Levenshtein distance, provided it is at most
// max(2, floor(runes(k)/3)); ties go to the byte-wise first entry. It
// reports false when no entry is close enough.
func Closest(k string, known []string) (string, bool) {
	limit := max(2, utf8.RuneCountInString(k)/3)
	best, bestD := "", -1
	for _, s := range known {
		d := Distance(k, s)
		if d > limit {
			continue
		}
		if bestD < 0 || d < bestD || (d == bestD && s < best) {
			best, bestD = s, d
		}
	}
	return best, bestD >= 0
}
