package tree

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	gosync "sync"

	"golang.org/x/sys/unix"
)

// root gives access to the tree under one base directory without ever
// following a symbolic link below it. The base directory itself may be a
// link (the user named it); below it, every directory is opened one
// component at a time relative to its parent's descriptor with
// O_NOFOLLOW|O_DIRECTORY, and every file is opened, created, renamed or
// removed relative to its directory's descriptor (openat, renameat,
// unlinkat). A link put in place of a directory or a file, before sync
// starts or while it runs, therefore makes the call fail instead of
// leading outside the base: there is no window between a check and a use
// because the check is the open itself.
//
// Descriptors are cached per directory for the life of the root; a root is
// safe for concurrent use. A directory found missing by a lookup that does
// not create is remembered as missing until a lookup creates it: a plan
// (which only reads) of thousands of files in a new tree then looks for
// host_vars/ once, not once per file.
type root struct {
	base    string
	mu      gosync.Mutex
	dirs    map[string]*os.File // slash path relative to base ("." for base) → open directory
	missing map[string]bool     // directories a lookup without create found absent
}

// openRoot opens base (which must exist) as a root.
func openRoot(base string) (*root, error) {
	fd, err := unix.Open(base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the base directory %s: %w", base, err)
	}
	return &root{base: base, dirs: map[string]*os.File{".": os.NewFile(uintptr(fd), base)}}, nil
}

// close releases every cached descriptor.
func (r *root) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.dirs {
		_ = f.Close()
	}
	r.dirs = nil
}

// linkError is the error for a symbolic link found at the slash path p.
func linkError(p string) error {
	return &Error{
		Path: p,
		Msg:  "refusing to use " + p + ": it is a symbolic link, and sync never follows links below the base directory",
		Hint: "replace the link with a real directory or file (or point --base-dir at the link's target)",
	}
}

// dir returns the open directory at the slash path d (relative to base,
// "." for base). When create is set, missing directories are made with
// mode 0755 whatever the umask; otherwise a missing one gives an error
// that wraps fs.ErrNotExist. A symbolic link on the way gives linkError.
func (r *root) dir(d string, create bool) (*os.File, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dirs == nil {
		return nil, errors.New("root closed")
	}
	if f, ok := r.dirs[d]; ok {
		return f, nil
	}
	if !create && r.missing[d] {
		return nil, fmt.Errorf("%s: %w", d, fs.ErrNotExist)
	}
	parent, name := path.Split(d)
	parent = strings.TrimSuffix(parent, "/")
	if parent == "" {
		parent = "."
	}
	r.mu.Unlock()
	pf, err := r.dir(parent, create)
	r.mu.Lock()
	if err != nil {
		return nil, err
	}
	if f, ok := r.dirs[d]; ok { // opened meanwhile by another goroutine
		return f, nil
	}
	pfd := int(pf.Fd())
	open := func() (int, error) {
		return unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	fd, err := open()
	if errors.Is(err, unix.ENOENT) && create {
		if err = unix.Mkdirat(pfd, name, dirMode); err == nil || errors.Is(err, unix.EEXIST) {
			if fd, err = open(); err == nil {
				err = unix.Fchmod(fd, dirMode)
			}
		}
	}
	if err != nil {
		err = r.classify(pfd, name, d, err)
		if !create && errors.Is(err, fs.ErrNotExist) {
			if r.missing == nil {
				r.missing = map[string]bool{}
			}
			r.missing[d] = true
		}
		return nil, err
	}
	f := os.NewFile(uintptr(fd), d)
	r.dirs[d] = f
	return f, nil
}

// classify turns the error of an openat of name in the directory dfd (the
// slash path p) into linkError, fs.ErrNotExist or a "not a directory"
// message.
func (r *root) classify(dfd int, name, p string, err error) error {
	var st unix.Stat_t
	if serr := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); serr == nil {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			return linkError(p)
		case unix.S_IFDIR:
		default:
			if errors.Is(err, unix.ENOTDIR) {
				return fmt.Errorf("%s: not a directory", p)
			}
		}
	}
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	}
	return fmt.Errorf("%s: %w", p, err)
}

// split returns the directory and the base name of the slash path p.
func split(p string) (dir, name string) {
	dir, name = path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	return dir, name
}

// readFile returns the bytes and info of the regular file at the slash
// path p; exists is false when it (or its directory) is absent. A
// symbolic link, at p or on the way, is an error.
func (r *root) readFile(p string) (data []byte, info fs.FileInfo, exists bool, err error) {
	d, name := split(p)
	df, err := r.dir(d, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, nil
	}
	if err != nil {
		var te *Error
		if errors.As(err, &te) {
			return nil, nil, false, err
		}
		return nil, nil, false, fmt.Errorf("%s: %w", p, err)
	}
	fd, err := unix.Openat(int(df.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil, false, nil
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, nil, false, linkError(p)
		}
		return nil, nil, false, fmt.Errorf("%s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	info, err = f.Stat()
	if err != nil {
		return nil, nil, false, fmt.Errorf("%s: %w", p, err)
	}
	if !info.Mode().IsRegular() {
		return nil, nil, false, fmt.Errorf("%s: not a regular file", p)
	}
	data = make([]byte, 0, info.Size()+1)
	for {
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, false, fmt.Errorf("%s: %w", p, err)
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
	return data, info, true, nil
}

// list returns the names in the directory at the slash path d, sorted
// byte-wise; the error wraps fs.ErrNotExist when it is absent.
func (r *root) list(d string) ([]string, error) {
	df, err := r.dir(d, false)
	if err != nil {
		return nil, err
	}
	// A fresh descriptor: reading entries moves the cached one's offset.
	fd, err := unix.Openat(int(df.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	lf := os.NewFile(uintptr(fd), d)
	defer lf.Close()
	names, err := lf.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	slices.Sort(names)
	return names, nil
}

// lstat reports the type of the entry at the slash path p without
// following it; exists is false when it (or its directory) is absent.
func (r *root) lstat(p string) (mode uint32, exists bool, err error) {
	d, name := split(p)
	df, err := r.dir(d, false)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var st unix.Stat_t
	err = unix.Fstatat(int(df.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", p, err)
	}
	return st.Mode & unix.S_IFMT, true, nil
}
