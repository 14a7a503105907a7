// Package goldenflag registers the `-update` test flag once for the whole
// module, so that `go test ./... -update` rewrites every golden file and
// is accepted by every test package, including those without golden files
// (they import this package for its side effect).
package goldenflag

import "flag"

// Update reports whether golden files should be rewritten from the actual
// output instead of compared with it.
var Update = flag.Bool("update", false, "rewrite golden files from the actual output")
