// Package validate runs stages S1 (structure: the embedded JSON Schema plus
// the stricter typing of SPEC.md §2.2) and S2 (the semantic rules that need
// no resolution) over a loaded PSOT.
package validate

import "github.com/anklume/anklume/compiler/load"

// Bad is the set of nodes that carry an S1 error. S2 skips them and
// everything under them (SPEC.md §3.1).
type Bad map[*load.Node]bool

// Has reports whether n was marked bad.
func (b Bad) Has(n *load.Node) bool { return b[n] }

// Part selects the schema a document is checked against.
type Part string

// Schema parts: the whole PSOT, or one directory-mode file (§3.3 item 2).
const (
	PartAll      Part = ""
	PartBase     Part = "base"
	PartDomains  Part = "domains"
	PartPolicies Part = "policies"
)
