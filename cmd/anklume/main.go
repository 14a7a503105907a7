// Command anklume compiles infra.yml into compartmentalised Incus
// infrastructure. See README.md and SPEC.md.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"

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
	stop := cpuProfile(os.Getenv("ANKLUME_CPUPROFILE"))
	bi, _ := debug.ReadBuildInfo()
	f := root.NewFactory(versioncmd.Resolve(version, commit, bi), schema.JSON, schema.Part)
	code := root.Main(f, os.Args[1:])
	stop()
	os.Exit(int(code))
}

// cpuProfile writes a CPU profile of the whole run to path when path is
// not empty (ANKLUME_CPUPROFILE, a debugging aid: `go tool pprof` reads
// it; profiles of many short runs merge). It returns the function that
// ends the profile. A profile that cannot be written is reported on
// stderr and the run goes on without it.
func cpuProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "warning: ANKLUME_CPUPROFILE: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
