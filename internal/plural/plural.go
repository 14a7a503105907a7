// Package plural writes counts of things in English: "1 domain",
// "2 domains", "1 policy", "0 policies".
package plural

import "fmt"

// N returns n followed by word, or by its plural when n is not 1. The
// plural is word+"s" unless given.
func N(n int, word string, pluralForm ...string) string {
	if n == 1 {
		return "1 " + word
	}
	if len(pluralForm) > 0 {
		return fmt.Sprintf("%d %s", n, pluralForm[0])
	}
	return fmt.Sprintf("%d %ss", n, word)
}
