// Package initcmd implements `anklume init [--example NAME] [--list]
// [--force]` (SPEC.md §12.8): it writes a starter infra.yml from an
// embedded example, with a unique project_name, and the JSON Schema its
// modeline points at.
package initcmd

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/yamlw"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/examples"
)

// SchemaPath is where init writes the schema, the path the examples'
// modeline names (relative to the directory of infra.yml).
const SchemaPath = ".anklume/infra.schema.json"

// suffixAlphabet and suffixLen make the random part of project_name
// (§12.8).
const (
	suffixAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	suffixLen      = 6
	// maxProjectName is the longest project_name the schema accepts (§2.3).
	maxProjectName = 128
	// fallbackName replaces a directory name that is empty once its
	// control characters are removed.
	fallbackName = "anklume"
)

// Options are the inputs of init.
type Options struct {
	IO      *cmdutil.IOStreams
	Globals *cmdutil.GlobalOptions
	// Getwd returns the current directory (absolute).
	Getwd func() (string, error)
	// Schema returns the embedded JSON Schema.
	Schema func() []byte
	// Rand is the source of the project_name suffix (crypto/rand when
	// nil).
	Rand io.Reader

	Example string
	List    bool
	Force   bool
}

// NewCmdInit builds the init command. runF replaces the run function in
// tests; nil runs the real one.
func NewCmdInit(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Globals: f.Globals, Getwd: f.Getwd, Schema: f.Schema}
	cmd := &cobra.Command{
		Use: "init",
		Example: "  anklume init\n" +
			"  anklume init --list\n" +
			"  anklume init --example tor-gateway",
		Short: "Write a starter infra.yml from an embedded example",
		Long: "Write infra.yml in the current directory (or --base-dir) from one of the embedded\n" +
			"examples (default " + examples.Default + "), with a project_name made unique for this\n" +
			"directory, and " + SchemaPath + ", the JSON Schema its modeline points at.\n" +
			"An existing infra.yml is never replaced without --force.",
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Globals != nil && opts.Globals.FileSet {
				return cmdutil.FlagErrorf("init does not read -f/--file; it writes infra.yml in the current directory or in --base-dir")
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Example, "example", examples.Default, "the example to start from (see --list)")
	fl.BoolVar(&opts.List, "list", false, "print the example names and exit")
	fl.BoolVar(&opts.Force, "force", false, "replace an existing infra.yml (kept as infra.yml.bak) and a schema file anklume did not write")
	return cmd
}

// Run writes infra.yml and the schema. Every check happens before the
// first write.
func Run(opts *Options) error {
	if opts.List {
		for _, n := range examples.Names() {
			fmt.Fprintln(opts.IO.Out, n)
		}
		return nil
	}
	data, err := examples.Read(opts.Example)
	if err != nil {
		return fmt.Errorf("unknown example %q (available: %s)", opts.Example, strings.Join(examples.Names(), ", "))
	}
	dir, err := opts.targetDir()
	if err != nil {
		return err
	}
	target := filepath.Join(dir, compiler.DefaultFile)
	old, exists, err := readRegular(target)
	if err != nil {
		return err
	}
	if exists && !opts.Force {
		fmt.Fprintf(opts.IO.ErrOut, "error: refusing to overwrite %s: it already exists\n", compiler.DefaultFile)
		fmt.Fprintf(opts.IO.ErrOut, "  hint: edit it, or pass --force to replace it; the old file is then kept as %s.bak\n", compiler.DefaultFile)
		return cmdutil.ErrSilent
	}
	if !exists && !opts.Force {
		if info, err := os.Stat(filepath.Join(dir, compiler.DefaultDir)); err == nil && info.IsDir() {
			fmt.Fprintf(opts.IO.ErrOut, "error: refusing to write %s: %s/ already holds the PSOT\n", compiler.DefaultFile, compiler.DefaultDir)
			fmt.Fprintf(opts.IO.ErrOut, "  hint: pass --force to write %s anyway; it then takes precedence over %s/\n", compiler.DefaultFile, compiler.DefaultDir)
			return cmdutil.ErrSilent
		}
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	name, err := ProjectName(dir, rnd)
	if err != nil {
		return err
	}
	content, err := SetProjectName(data, name)
	if err != nil {
		return fmt.Errorf("example %s: %w", opts.Example, err)
	}
	plan, err := tree.NewPlan(dir, []tree.File{{Path: SchemaPath, Content: opts.Schema(), Class: tree.Framework}}, opts.Force)
	if err != nil {
		printPlanErrors(opts.IO.ErrOut, err)
		return cmdutil.ErrSilent
	}

	if exists {
		if err := writeFile(target+".bak", old); err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.Out, "saved: %s.bak\n", compiler.DefaultFile)
	}
	if err := writeFile(target, content); err != nil {
		return err
	}
	verb := "created"
	if exists {
		verb = "updated"
	}
	fmt.Fprintf(opts.IO.Out, "%s: %s (example %s, project_name %s)\n", verb, compiler.DefaultFile, opts.Example, name)
	if err := plan.Apply(io.Discard, tree.Options{}); err != nil {
		return err
	}
	for _, c := range plan.Changes {
		if c.Backup {
			fmt.Fprintf(opts.IO.Out, "saved: %s.bak\n", c.Path)
		}
		switch c.Action {
		case tree.Create:
			fmt.Fprintf(opts.IO.Out, "created: %s\n", c.Path)
		case tree.Update:
			fmt.Fprintf(opts.IO.Out, "updated: %s\n", c.Path)
		}
	}
	return nil
}

// targetDir is --base-dir, resolved against the current directory, or the
// current directory.
func (opts *Options) targetDir() (string, error) {
	wd, err := opts.Getwd()
	if err != nil {
		return "", fmt.Errorf("reading the current directory: %w", err)
	}
	if opts.Globals != nil && opts.Globals.BaseDir != "" {
		if filepath.IsAbs(opts.Globals.BaseDir) {
			return filepath.Clean(opts.Globals.BaseDir), nil
		}
		return filepath.Join(wd, opts.Globals.BaseDir), nil
	}
	return filepath.Clean(wd), nil
}

// ProjectName returns the project_name init writes for a PSOT in dir
// (§12.8): the directory's name with control characters removed (or
// "anklume" when that leaves nothing), "-", and 6 random characters from
// a–z and 0–9 read from r. The name is cut so that the whole stays within
// the 128 characters project_name allows.
func ProjectName(dir string, r io.Reader) (string, error) {
	base := filepath.Base(filepath.Clean(dir))
	if base == string(filepath.Separator) || base == "." {
		base = ""
	}
	base = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) || c == utf8.RuneError {
			return -1
		}
		return c
	}, base)
	if base == "" {
		base = fallbackName
	}
	if limit := maxProjectName - 1 - suffixLen; utf8.RuneCountInString(base) > limit {
		base = string([]rune(base)[:limit])
	}
	suffix, err := randomSuffix(r)
	if err != nil {
		return "", err
	}
	return base + "-" + suffix, nil
}

// randomSuffix draws suffixLen characters of suffixAlphabet from r without
// modulo bias.
func randomSuffix(r io.Reader) (string, error) {
	const limit = 256 - 256%len(suffixAlphabet)
	out := make([]byte, 0, suffixLen)
	buf := make([]byte, 16)
	for len(out) < suffixLen {
		n, err := io.ReadFull(r, buf)
		if err != nil && n == 0 {
			return "", fmt.Errorf("making a project_name: reading random bytes: %w", err)
		}
		for _, b := range buf[:n] {
			if int(b) < limit && len(out) < suffixLen {
				out = append(out, suffixAlphabet[int(b)%len(suffixAlphabet)])
			}
		}
	}
	return string(out), nil
}

// SetProjectName replaces the top-level `project_name:` line of the
// example text data with name, quoted by the rules of §6.4. Every other
// byte is kept.
func SetProjectName(data []byte, name string) ([]byte, error) {
	text := string(data)
	start := 0
	for start < len(text) {
		end := strings.IndexByte(text[start:], '\n')
		if end < 0 {
			end = len(text)
		} else {
			end += start
		}
		if strings.HasPrefix(text[start:end], "project_name:") {
			return []byte(text[:start] + "project_name: " + yamlw.Quote(name) + text[end:]), nil
		}
		start = end + 1
	}
	return nil, errors.New("no top-level project_name line")
}

// readRegular returns the bytes of the file at p and whether it exists.
func readRegular(p string) ([]byte, bool, error) {
	info, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", p, err)
	}
	if !info.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%s exists and is not a regular file", p)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", p, err)
	}
	return data, true, nil
}

// writeFile writes data to p atomically (a temporary file in the same
// directory renamed over p), creating the directory with mode 0755.
func writeFile(p string, data []byte) (err error) {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("writing %s: fsync: %w", p, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err = os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// printPlanErrors prints each problem as `error: MSG` with its hint.
func printPlanErrors(w io.Writer, err error) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		fmt.Fprintf(w, "error: %s\n", e)
		var te *tree.Error
		if errors.As(e, &te) && te.Hint != "" {
			fmt.Fprintf(w, "  hint: %s\n", te.Hint)
		}
	}
}
