package validate

import (
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/load"
)

// Semantics runs stage S2 on root, skipping bad nodes. STUB.
func Semantics(root *load.Node, bad Bad, opts host.Options) diag.List { return nil }
