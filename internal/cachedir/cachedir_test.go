package cachedir

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDir(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_CACHE_HOME": "/c", "HOME": "/h"}, "/c/anklume"},
		{map[string]string{"XDG_CACHE_HOME": "rel", "HOME": "/h"}, "/h/.cache/anklume"},
		{map[string]string{"HOME": "/h"}, "/h/.cache/anklume"},
		{map[string]string{"HOME": "h"}, ""},
		{map[string]string{}, ""},
	}
	for _, tc := range tests {
		if got := Dir(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.env, got, tc.want)
		}
	}
	if Dir(nil) != "" {
		t.Error("Dir(nil) is not empty")
	}
}

// TestWriteFile: the directory is created (0700), the entry replaced
// whole, no temporary file left; when the rename cannot happen (the entry
// is a non-empty directory) the error is returned and nothing is left.
func TestWriteFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	for _, data := range []string{"first", "2nd"} {
		if err := WriteFile(dir, "e", []byte(data)); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "e")); string(got) != data {
			t.Errorf("entry %q, want %q", got, data)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v %v", fi.Mode(), err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "d", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dir, "d", []byte("x")); err == nil {
		t.Error("renaming over a non-empty directory succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("directory holds %v, want e and d", ents)
	}
}
