package cmdutil

// Accept `go test ./... -update`: this package has no golden files.
import _ "github.com/anklume/anklume/internal/goldenflag"
