package lifecycle

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// GeneratedPaths returns the generated paths that `flush --files`
// deletes (SPEC.md §12.2 step 9), relative to the base directory.
// Directories end with a slash.
func GeneratedPaths() []string {
	return []string{"inventory/", "group_vars/", "host_vars/", "nftables/anklume-isolation.nft"}
}

// RemoveFiles deletes the GeneratedPaths under base (step 9) and prints
// `removed: <path>` for each one that existed. A missing path is not an
// error; each failure is returned, the others are still removed.
func RemoveFiles(base string, out io.Writer) []error {
	var errs []error
	for _, rel := range GeneratedPaths() {
		p := filepath.Join(base, filepath.FromSlash(rel))
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", rel, err))
			continue
		}
		fmt.Fprintf(out, "removed: %s\n", rel)
	}
	return errs
}
