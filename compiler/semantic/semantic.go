// Package semantic runs stage S2: the rules of SPEC.md §3.5 and the
// warnings of §3.6 that need no resolution.
package semantic

import (
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/load"
)

// Check runs stage S2 on root, skipping the nodes in bad and everything
// under them. STUB.
func Check(root *load.Node, bad load.NodeSet, opts host.Options) diag.List { return nil }
