// Package schema implements `anklume schema [--part base|domains|policies]`
// (SPEC.md §3.3).
package schema

import (
	"bytes"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
)

// Parts are the directory-mode files `--part` accepts, in help order.
var Parts = []string{"base", "domains", "policies"}

// Options are the inputs of schema.
type Options struct {
	IO         *cmdutil.IOStreams
	Schema     func() []byte
	SchemaPart func(name string) ([]byte, error)

	Part string
}

// NewCmdSchema builds the schema command. runF replaces the run function
// in tests; nil runs the real one.
func NewCmdSchema(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Schema: f.Schema, SchemaPart: f.SchemaPart}
	cmd := &cobra.Command{
		Use: "schema",
		Example: "  anklume schema > infra.schema.json\n" +
			"  anklume schema --part domains",
		Short: "Print the JSON Schema of infra.yml",
		Long: "Print the embedded JSON Schema (draft 2020-12) of infra.yml, or with --part the\n" +
			"schema of one directory-mode file: infra/base.yml, infra/domains/*.yml or infra/policies.yml.",
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Part != "" && !validPart(opts.Part) {
				return cmdutil.FlagErrorf("invalid --part %q: must be one of base, domains, policies", opts.Part)
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Part, "part", "", "print the schema of one directory-mode file: base, domains or policies")
	return cmd
}

func validPart(p string) bool {
	for _, q := range Parts {
		if p == q {
			return true
		}
	}
	return false
}

// Run prints the schema.
func Run(opts *Options) error {
	var b []byte
	if opts.Part == "" {
		b = opts.Schema()
	} else {
		var err error
		if b, err = opts.SchemaPart(opts.Part); err != nil {
			return fmt.Errorf("schema part %q: %w", opts.Part, err)
		}
	}
	return write(opts.IO.Out, b)
}

// write prints b and ends it with exactly one newline.
func write(w io.Writer, b []byte) error {
	b = append(bytes.TrimRight(b, "\n"), '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing the schema: %w", err)
	}
	return nil
}
