package compiler

import (
	"errors"
	"io/fs"
	"reflect"
	"testing"
	"testing/fstest"
)

// TestSelect covers every row of SPEC.md §2.1 (§16 #24).
func TestSelect(t *testing.T) {
	file := &fstest.MapFile{Data: []byte("{}\n")}
	dir := &fstest.MapFile{Mode: fs.ModeDir | 0o755}
	tests := []struct {
		name     string
		fs       fstest.MapFS
		flag     string
		flagSet  bool
		want     Input
		warnings []string
		err      string
	}{
		{
			name:    "-f regular file is single-file mode",
			fs:      fstest.MapFS{"conf/my.yml": file},
			flag:    "conf/my.yml",
			flagSet: true,
			want:    Input{Path: "conf/my.yml", Display: "conf/my.yml"},
		},
		{
			name:    "-f ./file is cleaned",
			fs:      fstest.MapFS{"my.yml": file},
			flag:    "./my.yml",
			flagSet: true,
			want:    Input{Path: "my.yml", Display: "my.yml"},
		},
		{
			name:    "-f directory is directory mode",
			fs:      fstest.MapFS{"site/base.yml": file},
			flag:    "site",
			flagSet: true,
			want:    Input{Path: "site", Display: "site", Dir: true},
		},
		{
			name:    "-f directory holding infra.yml is a project directory",
			fs:      fstest.MapFS{"lab/infra.yml": file},
			flag:    "lab",
			flagSet: true,
			want:    Input{Path: "lab/infra.yml", Display: "lab/infra.yml"},
		},
		{
			name:    "-f . holding infra.yml",
			fs:      fstest.MapFS{"infra.yml": file},
			flag:    ".",
			flagSet: true,
			want:    Input{Path: "infra.yml", Display: "infra.yml"},
		},
		{
			name:    "-f project directory holding infra/",
			fs:      fstest.MapFS{"lab/infra/base.yml": file},
			flag:    "lab",
			flagSet: true,
			want:    Input{Path: "lab/infra", Display: "lab/infra", Dir: true},
		},
		{
			name:     "-f project directory holding both",
			fs:       fstest.MapFS{"lab/infra.yml": file, "lab/infra/base.yml": file},
			flag:     "lab/",
			flagSet:  true,
			want:     Input{Path: "lab/infra.yml", Display: "lab/infra.yml"},
			warnings: []string{"both lab/infra.yml and lab/infra/ exist; using lab/infra.yml"},
		},
		{
			name:    "-f directory holding base.yml and infra.yml is directory mode",
			fs:      fstest.MapFS{"site/base.yml": file, "site/infra.yml": file},
			flag:    "site",
			flagSet: true,
			want:    Input{Path: "site", Display: "site", Dir: true},
		},
		{
			name:    "-f directory holding none of them",
			fs:      fstest.MapFS{"empty/notes.txt": file},
			flag:    "empty",
			flagSet: true,
			err:     "empty: no infra.yml, no infra/ and no base.yml in this directory (-f takes a PSOT file, a project directory or an infra/ directory)",
		},
		{
			name:    "-f directory with trailing slash",
			fs:      fstest.MapFS{"site/base.yml": file},
			flag:    "site/",
			flagSet: true,
			want:    Input{Path: "site", Display: "site", Dir: true},
		},
		{
			name:    "-f missing path is an error (no PATH.yml or PATH/ fallback)",
			fs:      fstest.MapFS{"prod.yml": file, "prod/base.yml": file},
			flag:    "prod.yaml",
			flagSet: true,
			err:     "prod.yaml: no such file or directory",
		},
		{
			name:    "-f missing path that v1 would have completed",
			fs:      fstest.MapFS{"prod.yml": file},
			flag:    "prod",
			flagSet: true,
			err:     "prod: no such file or directory",
		},
		{
			name:    "-f path escaping the fs is not found",
			fs:      fstest.MapFS{"prod.yml": file},
			flag:    "../prod.yml",
			flagSet: true,
			err:     "../prod.yml: no such file or directory",
		},
		{
			name:    "-f absolute path on an fs rooted at /",
			fs:      fstest.MapFS{"srv/lab/infra.yml": file},
			flag:    "/srv/lab/infra.yml",
			flagSet: true,
			want:    Input{Path: "srv/lab/infra.yml", Display: "/srv/lab/infra.yml"},
		},
		{
			name:    "-f absolute directory on an fs rooted at /",
			fs:      fstest.MapFS{"srv/lab/infra/base.yml": file},
			flag:    "/srv/lab/infra",
			flagSet: true,
			want:    Input{Path: "srv/lab/infra", Display: "/srv/lab/infra", Dir: true},
		},
		{
			name:    "-f given wins over ./infra.yml",
			fs:      fstest.MapFS{"infra.yml": file, "other.yml": file},
			flag:    "other.yml",
			flagSet: true,
			want:    Input{Path: "other.yml", Display: "other.yml"},
		},
		{
			name:    "-f with an empty value",
			fs:      fstest.MapFS{"infra.yml": file},
			flag:    "",
			flagSet: true,
			err:     "-f: empty path",
		},
		{
			name: "no -f, ./infra.yml exists",
			fs:   fstest.MapFS{"infra.yml": file},
			want: Input{Path: "infra.yml", Display: "infra.yml"},
		},
		{
			name: "no -f, only ./infra/ exists",
			fs:   fstest.MapFS{"infra/base.yml": file},
			want: Input{Path: "infra", Display: "infra", Dir: true},
		},
		{
			name: "no -f, empty ./infra/ directory is still directory mode",
			fs:   fstest.MapFS{"infra": dir},
			want: Input{Path: "infra", Display: "infra", Dir: true},
		},
		{
			name:     "no -f, both exist: infra.yml plus a warning",
			fs:       fstest.MapFS{"infra.yml": file, "infra/base.yml": file},
			want:     Input{Path: "infra.yml", Display: "infra.yml"},
			warnings: []string{"both infra.yml and infra/ exist; using infra.yml"},
		},
		{
			name: "no -f, neither exists",
			fs:   fstest.MapFS{"README.md": file},
			err:  "no infra.yml or infra/ directory in the current directory (use -f PATH)",
		},
		{
			name: "no -f, ./infra is a file, not a directory",
			fs:   fstest.MapFS{"infra": file},
			err:  "no infra.yml or infra/ directory in the current directory (use -f PATH)",
		},
		{
			name: "no -f, flag value ignored when not set",
			fs:   fstest.MapFS{"infra.yml": file},
			flag: "ignored.yml",
			want: Input{Path: "infra.yml", Display: "infra.yml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings, err := Select(tt.fs, tt.flag, tt.flagSet)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tt.want {
				t.Errorf("input = %+v, want %+v", got, tt.want)
			}
			if !reflect.DeepEqual(warnings, tt.warnings) {
				t.Errorf("warnings = %q, want %q", warnings, tt.warnings)
			}
		})
	}
}

func TestSelectNotFoundIsTyped(t *testing.T) {
	_, _, err := Select(fstest.MapFS{}, "nope.yml", true)
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Path != "nope.yml" {
		t.Fatalf("err = %#v, want *NotFoundError{nope.yml}", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) = false")
	}
}

func TestSourceRoot(t *testing.T) {
	tests := []struct {
		cwd, flag, root, path string
	}{
		{"/home/u/lab", "infra.yml", "/home/u/lab", "infra.yml"},
		{"/home/u/lab", "sub/x.yml", "/home/u/lab", "sub/x.yml"},
		{"/home/u/lab", "/home/u/lab/infra.yml", "/home/u/lab", "infra.yml"},
		{"/home/u/lab", "/home/u/lab", "/home/u/lab", "."},
		{"/home/u/lab", "/home/u/lab2/infra.yml", "/", "/home/u/lab2/infra.yml"},
		{"/home/u/lab", "../other/infra.yml", "/", "/home/u/other/infra.yml"},
		{"/home/u/lab", "sub/../../lab/x.yml", "/home/u/lab", "x.yml"},
		{"/home/u/lab", "..", "/", "/home/u"},
		{"/", "/etc/anklume/infra.yml", "/", "etc/anklume/infra.yml"},
		{"/home/u/lab", "", "/home/u/lab", ""},
	}
	for _, tt := range tests {
		root, p := SourceRoot(tt.cwd, tt.flag)
		if root != tt.root || p != tt.path {
			t.Errorf("SourceRoot(%q, %q) = (%q, %q), want (%q, %q)", tt.cwd, tt.flag, root, p, tt.root, tt.path)
		}
	}
}

// TestSourceRootThenSelect checks that a path SourceRoot brings back under
// cwd is found by Select on an fs rooted at cwd.
func TestSourceRootThenSelect(t *testing.T) {
	fsys := fstest.MapFS{"x.yml": &fstest.MapFile{Data: []byte("{}")}}
	root, p := SourceRoot("/home/u/lab", "sub/../../lab/x.yml")
	if root != "/home/u/lab" {
		t.Fatalf("root = %q", root)
	}
	in, _, err := Select(fsys, p, true)
	if err != nil || in != (Input{Path: "x.yml", Display: "x.yml"}) {
		t.Fatalf("Select(%q) = %+v, %v", p, in, err)
	}
}

func TestBaseDir(t *testing.T) {
	tests := []struct {
		in       Input
		override string
		want     string
	}{
		{Input{Path: "infra.yml", Display: "infra.yml"}, "", "."},
		{Input{Path: "infra", Display: "infra", Dir: true}, "", "."},
		{Input{Path: "lab/infra.yml", Display: "lab/infra.yml"}, "", "lab"},
		{Input{Path: "lab/infra", Display: "lab/infra", Dir: true}, "", "lab"},
		{Input{Path: "srv/lab/infra", Display: "/srv/lab/infra", Dir: true}, "", "/srv/lab"},
		{Input{Path: "srv/lab/x.yml", Display: "/srv/lab/x.yml"}, "", "/srv/lab"},
		{Input{Path: ".", Display: ".", Dir: true}, "", ".."},
		{Input{Path: "infra.yml", Display: "infra.yml"}, "/tmp/out", "/tmp/out"},
	}
	for _, tt := range tests {
		if got := BaseDir(tt.in, tt.override); got != tt.want {
			t.Errorf("BaseDir(%+v, %q) = %q, want %q", tt.in, tt.override, got, tt.want)
		}
	}
}
