package validate

import (
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/load"
)

// Structure runs stage S1 on root. STUB: replaced by the schema-based checker.
func Structure(root *load.Node) (diag.List, Bad) { return nil, Bad{} }
