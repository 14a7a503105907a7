// Package version implements `anklume version [--json]` (SPEC.md §12.8).
package version

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
)

// Options are the inputs of version.
type Options struct {
	IO     *cmdutil.IOStreams
	Build  cmdutil.BuildInfo
	GOOS   string
	GOARCH string

	JSON bool
}

// Info is the `version --json` document.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	GOOS    string `json:"goos"`
	GOARCH  string `json:"goarch"`
	Go      string `json:"go"`
}

// NewCmdVersion builds the version command. runF replaces the run function
// in tests; nil runs the real one.
func NewCmdVersion(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Build: f.Build, GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
	cmd := &cobra.Command{
		Use: "version",
		Long: "Print the version of anklume, the commit it was built from, and the platform.\n" +
			"The same line is printed by anklume --version.",
		Example: "  anklume version\n" +
			"  anklume version --json\n" +
			"  anklume --version",
		Short: "Print the version of anklume",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the version as JSON")
	return cmd
}

// String is the version as `anklume --version` prints it after
// "anklume ": "<semver> (commit <sha>, <goos>/<goarch>)".
func String(b cmdutil.BuildInfo) string {
	v, c := b.Version, b.Commit
	if v == "" {
		v = "dev"
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("%s (commit %s, %s/%s)", v, c, runtime.GOOS, runtime.GOARCH)
}

// Run prints `anklume <semver> (commit <sha>, <goos>/<goarch>)`.
func Run(opts *Options) error {
	v, c := opts.Build.Version, opts.Build.Commit
	if v == "" {
		v = "dev"
	}
	if c == "" {
		c = "unknown"
	}
	if opts.JSON {
		b, err := json.Marshal(Info{Version: v, Commit: c, GOOS: opts.GOOS, GOARCH: opts.GOARCH, Go: runtime.Version()})
		if err != nil {
			return fmt.Errorf("encoding the version: %w", err)
		}
		_, err = fmt.Fprintf(opts.IO.Out, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintf(opts.IO.Out, "anklume %s (commit %s, %s/%s)\n", v, c, opts.GOOS, opts.GOARCH)
	return err
}

// Resolve returns the build identity: the -ldflags values when they were
// given, else what the Go toolchain recorded in the binary (bi, from
// debug.ReadBuildInfo): the module version for `go install …@v1.2.3`, the
// VCS revision (with "-dirty" for uncommitted changes) for a build in a
// checkout. A field known from neither is empty (printed as dev and
// unknown).
func Resolve(ldVersion, ldCommit string, bi *debug.BuildInfo) cmdutil.BuildInfo {
	b := cmdutil.BuildInfo{Version: ldVersion, Commit: ldCommit}
	if bi == nil {
		return b
	}
	if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	if b.Commit == "" {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && dirty {
			rev += "-dirty"
		}
		b.Commit = rev
	}
	return b
}
