// Package structure runs stage S1: the embedded JSON Schema plus the
// stricter typing of SPEC.md §2.2, with the messages of §3.4.
package structure

import (
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/load"
)

// Check runs stage S1 on root and returns its diagnostics and the set of
// nodes that carry an error. STUB: replaced by the schema-based checker.
func Check(root *load.Node) (diag.List, load.NodeSet) { return nil, load.NodeSet{} }
