// Command anklume compiles infra.yml into compartmentalised Incus
// infrastructure. See README.md and SPEC.md.
package main

import (
	"os"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/root"
	"github.com/anklume/anklume/schema"
)

// Set with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	f := root.NewFactory(cmdutil.BuildInfo{Version: version, Commit: commit}, schema.JSON, schema.Part)
	os.Exit(int(root.Main(f, os.Args[1:])))
}
