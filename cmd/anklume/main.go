// Command anklume compiles infra.yml into compartmentalised Incus
// infrastructure. See README.md and SPEC.md.
package main

import (
	"os"
	"runtime/debug"

	"github.com/anklume/anklume/cmd/root"
	versioncmd "github.com/anklume/anklume/cmd/version"
	"github.com/anklume/anklume/internal/gctune"
	"github.com/anklume/anklume/schema"
)

// Set with -ldflags "-X main.version=… -X main.commit=…"; without them the
// version and commit come from the build information Go records.
var (
	version string
	commit  string
)

func main() {
	gctune.Start(os.Getenv)
	bi, _ := debug.ReadBuildInfo()
	f := root.NewFactory(versioncmd.Resolve(version, commit, bi), schema.JSON, schema.Part)
	os.Exit(int(root.Main(f, os.Args[1:])))
}
