// Package version implements `anklume version [--json]` (SPEC.md §12.8).
package version

import (
	"encoding/json"
	"fmt"
	"runtime"

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
		Use:   "version",
		Short: "Print the version of anklume",
		Args:  cobra.NoArgs,
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
