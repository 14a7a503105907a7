// Package cachedir is the user's cache directory of anklume and the one
// way its caches write a file there.
//
// The directory is $XDG_CACHE_HOME/anklume, else ~/.cache/anklume (Dir).
// Every cache in it is a cache: losing a file, or finding it unreadable,
// costs the work it saved and never changes a result. WriteFile writes a
// temporary file in the same directory and renames it over the entry, so
// a reader sees the old file or the new one, never a part, even when the
// writer dies; no fsync: a file lost in a crash costs its work once. A
// temporary file left by a writer that died is named "."+name+".tmp-*".
package cachedir

import (
	"errors"
	"os"
	"path/filepath"
)

// Dir returns $XDG_CACHE_HOME/anklume, else ~/.cache/anklume, as getenv
// reads them; "" (caching nothing) without either, or without getenv.
func Dir(getenv func(string) string) string {
	if getenv == nil {
		return ""
	}
	if d := getenv("XDG_CACHE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "anklume")
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".cache", "anklume")
	}
	return ""
}

// WriteFile writes data to dir/name, creating dir (0700) when needed,
// through a temporary file renamed over the entry. On failure the
// temporary file is removed and the entry is left as it was.
func WriteFile(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	if err := errors.Join(werr, tmp.Close()); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return nil
}
