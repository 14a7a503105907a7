package compiler

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Default source names looked up in the current directory (SPEC.md §2.1).
const (
	DefaultFile = "infra.yml"
	DefaultDir  = "infra"
)

// Select chooses the PSOT source as SPEC.md §2.1 says. fsys is rooted at
// the current directory; flagPath is the value of -f/--file and flagSet
// tells whether the flag was given at all.
//
// A relative flagPath is looked up in fsys. An absolute flagPath (starting
// with "/") is looked up in fsys with the leading "/" removed, so the caller
// passes an fs.FS rooted at "/" for it (see SourceRoot, which picks the
// root and rewrites a path that lies under the current directory).
//
// The returned warnings are messages without the "warning: " prefix; a
// returned error is a fatal, non-positional problem whose text is printed
// after "error: ".
func Select(fsys fs.FS, flagPath string, flagSet bool) (Input, []string, error) {
	if flagSet {
		return selectFlag(fsys, flagPath)
	}
	fileOK := isFile(fsys, DefaultFile)
	dirOK := isDir(fsys, DefaultDir)
	switch {
	case fileOK && dirOK:
		return Input{Path: DefaultFile, Display: DefaultFile},
			[]string{"both infra.yml and infra/ exist; using infra.yml"}, nil
	case fileOK:
		return Input{Path: DefaultFile, Display: DefaultFile}, nil, nil
	case dirOK:
		return Input{Path: DefaultDir, Display: DefaultDir, Dir: true}, nil, nil
	}
	return Input{}, nil, errors.New("no infra.yml or infra/ directory in the current directory (use -f PATH)")
}

// NotFoundError is the error of a -f PATH that does not exist (§2.1).
type NotFoundError struct {
	// Path is the path as the user gave it.
	Path string
}

func (e *NotFoundError) Error() string { return e.Path + ": no such file or directory" }

// Unwrap lets errors.Is(err, fs.ErrNotExist) match.
func (e *NotFoundError) Unwrap() error { return fs.ErrNotExist }

func selectFlag(fsys fs.FS, flagPath string) (Input, []string, error) {
	if flagPath == "" {
		return Input{}, nil, errors.New("-f: empty path")
	}
	name := fsPath(flagPath)
	display := displayPath(flagPath)
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) {
			return Input{}, nil, &NotFoundError{Path: flagPath}
		}
		return Input{}, nil, fmt.Errorf("%s: %w", flagPath, unwrapPathError(err))
	}
	switch {
	case fi.Mode().IsRegular():
		return Input{Path: name, Display: display}, nil, nil
	case fi.IsDir():
		return selectDir(fsys, name, display, flagPath)
	}
	return Input{}, nil, fmt.Errorf("%s: not a regular file or directory", flagPath)
}

// selectDir picks the source of -f DIR. A directory holding base.yml is
// an infra/ directory (directory mode). Any other directory is a project
// directory: its infra.yml, else its infra/, is the PSOT, with the same
// choice and warning as in the current directory without -f. So
// `anklume -f ~/lab` works whether ~/lab holds infra.yml or infra/, and
// `-f ~/lab/infra` still names the infra/ directory itself.
func selectDir(fsys fs.FS, name, display, flagPath string) (Input, []string, error) {
	if isFile(fsys, path.Join(name, "base.yml")) {
		return Input{Path: name, Display: display, Dir: true}, nil, nil
	}
	file, dir := path.Join(name, DefaultFile), path.Join(name, DefaultDir)
	fileOK, dirOK := isFile(fsys, file), isDir(fsys, dir)
	switch {
	case fileOK && dirOK:
		return Input{Path: file, Display: path.Join(display, DefaultFile)},
			[]string{fmt.Sprintf("both %s and %s/ exist; using %s", path.Join(display, DefaultFile), path.Join(display, DefaultDir), path.Join(display, DefaultFile))}, nil
	case fileOK:
		return Input{Path: file, Display: path.Join(display, DefaultFile)}, nil, nil
	case dirOK:
		return Input{Path: dir, Display: path.Join(display, DefaultDir), Dir: true}, nil, nil
	}
	return Input{}, nil, fmt.Errorf("%s: no infra.yml, no infra/ and no base.yml in this directory (-f takes a PSOT file, a project directory or an infra/ directory)", flagPath)
}

// fsPath turns a -f value into a name inside the fs.FS: cleaned, with a
// leading "/" removed ("/" itself becomes ".").
func fsPath(p string) string {
	c := path.Clean(p)
	if strings.HasPrefix(c, "/") {
		c = strings.TrimPrefix(c, "/")
		if c == "" {
			c = "."
		}
	}
	return c
}

// displayPath is the name diagnostics use: the cleaned path as given.
func displayPath(p string) string { return path.Clean(p) }

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func isFile(fsys fs.FS, name string) bool {
	fi, err := fs.Stat(fsys, name)
	return err == nil && !fi.IsDir()
}

func isDir(fsys fs.FS, name string) bool {
	fi, err := fs.Stat(fsys, name)
	return err == nil && fi.IsDir()
}

// SourceRoot prepares a -f value for Select. cwd is the absolute current
// directory (slash-separated). It returns the directory the fs.FS passed to
// Select must be rooted at, and the flag value to pass with it:
//
//   - a relative path that stays under cwd: (cwd, path) unchanged;
//   - an absolute path under cwd: (cwd, path relative to cwd), so that
//     diagnostics name the file relative to the current directory (§3.2);
//   - any other path ("../x", "/etc/x"): ("/", absolute path).
func SourceRoot(cwd, flagPath string) (root, p string) {
	if flagPath == "" {
		return cwd, flagPath
	}
	abs := flagPath
	if !path.IsAbs(abs) {
		c := path.Clean(flagPath)
		if c != ".." && !strings.HasPrefix(c, "../") {
			return cwd, flagPath
		}
		abs = path.Join(cwd, flagPath)
	}
	abs = path.Clean(abs)
	if rel, ok := under(cwd, abs); ok {
		return cwd, rel
	}
	return "/", abs
}

// under reports whether abs lies under dir (or is dir) and returns the
// relative path.
func under(dir, abs string) (string, bool) {
	dir = path.Clean(dir)
	if abs == dir {
		return ".", true
	}
	prefix := dir + "/"
	if dir == "/" {
		prefix = "/"
	}
	if strings.HasPrefix(abs, prefix) {
		return strings.TrimPrefix(abs, prefix), true
	}
	return "", false
}

// BaseDir returns the base directory of SPEC.md §2.1, where generated files
// go: override (--base-dir) when it is not empty, else the directory that
// contains the file, or the parent of the infra/ directory. The result is
// in the same terms as in.Display (relative to the current directory, or
// absolute).
func BaseDir(in Input, override string) string {
	if override != "" {
		return override
	}
	d := path.Clean(in.Display)
	if in.Dir && (d == "." || d == ".." || strings.HasSuffix(d, "/..")) {
		return path.Join(d, "..")
	}
	return path.Dir(d)
}
