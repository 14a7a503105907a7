package tree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// newFileMode is the mode of a file sync creates (§6.8).
const newFileMode = 0o644

// dirMode is the mode of a directory sync creates (§6.8).
const dirMode = 0o755

// writeAtomic writes data to the slash path p under base as §6.8 asks: a
// temporary `.<name>.tmp-<random>` in the same directory, fsync, the mode,
// owner and group of old (the existing file, or nil for 0644 and the
// running user), then a rename over the target. On any failure the
// temporary file is removed and the target is left as it was.
func writeAtomic(base, p string, data []byte, old fs.FileInfo, beforeRename func(string) error) (err error) {
	full := filepath.Join(base, filepath.FromSlash(p))
	dir, name := filepath.Split(full)
	if err := mkdirAll(filepath.Clean(dir)); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	mode := fs.FileMode(newFileMode)
	if old != nil {
		mode = old.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("writing %s: fsync: %w", p, err)
	}
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("writing %s: keeping the mode: %w", p, err)
	}
	if old != nil {
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			if err = f.Chown(int(st.Uid), int(st.Gid)); err != nil {
				return fmt.Errorf("writing %s: keeping the owner: %w", p, err)
			}
		}
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if beforeRename != nil {
		if err = beforeRename(tmp); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
	}
	if err = os.Rename(tmp, full); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// syncDir fsyncs a directory so that the renames into it are durable. It
// is best effort: some file systems refuse to fsync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// mkdirAll creates dir and its missing parents with mode 0755, whatever
// the umask.
func mkdirAll(dir string) error {
	info, err := os.Stat(dir)
	if err == nil {
		if !info.IsDir() {
			return fmt.Errorf("%s: not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, dirMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return os.Chmod(dir, dirMode)
}
