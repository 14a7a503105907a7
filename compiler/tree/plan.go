package tree

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	gosync "sync"
)

// Class tells a managed-section file from a framework file (§6.2).
type Class int

const (
	// Managed files hold a managed section; every byte outside it is the
	// user's.
	Managed Class = iota
	// Framework files are owned wholly by sync and carry the header.
	Framework
)

// File is one desired output of sync.
type File struct {
	// Path is relative to the base directory and uses `/`.
	Path string
	// Content is the managed section's content (Managed) or the whole file
	// (Framework; the header is added when missing, see AddHeader).
	Content []byte
	Class   Class
	// Kind is the layout of a Managed file.
	Kind Kind
	// Check, when set, inspects the existing file before anything is
	// written (for example the preseed's keys outside the block, §8); an
	// error fails the plan like a marker error does.
	Check func(old []byte) error
}

// Action is what Apply does to one file.
type Action int

const (
	// Unchanged files are not opened for writing.
	Unchanged Action = iota
	// Create writes a file that does not exist.
	Create
	// Update replaces a file whose bytes differ.
	Update
)

// Change is the planned outcome for one file.
type Change struct {
	Path   string
	Action Action
	Old    []byte      // current bytes; nil when the file is absent
	New    []byte      // bytes after sync
	Info   fs.FileInfo // the existing file; nil when absent
	// Backup is set when --force replaces a framework file that does not
	// carry the header: Apply first copies it to Path + ".bak".
	Backup bool
}

// Plan is the complete, checked set of changes of one sync, computed
// before anything is written (§6.1 step 2).
type Plan struct {
	Base    string
	Changes []Change

	// beforeRename, when set (tests only), runs before each rename and
	// can make the write fail.
	beforeRename func(tmp string) error
}

// NewPlan reads every existing target of files under base and computes its
// new bytes: the §6.3 splice for a managed file, the header check of §6.2
// for a framework file (a file without the header is refused unless force
// is set, in which case it is saved to `.bak` first). Every file is checked;
// when any check fails NewPlan returns all the errors, joined, and no plan,
// so nothing is written. The problems users can fix are *Error values.
func NewPlan(base string, files []File, force bool) (*Plan, error) {
	p := &Plan{Base: base}
	errs := make([]error, len(files))
	changes := make([]Change, len(files))
	seen := make(map[string]bool, len(files))
	var todo []int
	for i, f := range files {
		if err := checkPath(f.Path); err != nil {
			errs[i] = err
			continue
		}
		if seen[f.Path] {
			errs[i] = fmt.Errorf("planning %s: the path is generated twice", f.Path)
			continue
		}
		seen[f.Path] = true
		todo = append(todo, i)
	}
	// Reading and splicing are independent per file: a few readers at once
	// hide most of the file system latency.
	jobs := make(chan int)
	var wg gosync.WaitGroup
	for range min(writers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				changes[i], errs[i] = p.plan(files[i], force)
			}
		}()
	}
	for _, i := range todo {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p.Changes = changes
	return p, nil
}

// checkPath accepts clean relative slash paths that stay under the base.
func checkPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "\\") {
		return fmt.Errorf("planning %q: not a clean relative path", p)
	}
	return nil
}

// read returns the bytes and info of the file at the slash path p under
// base; exists is false when it is absent.
func read(base, p string) (data []byte, info fs.FileInfo, exists bool, err error) {
	full := filepath.Join(base, filepath.FromSlash(p))
	info, err = os.Stat(full)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("reading %s: %w", p, err)
	}
	if !info.Mode().IsRegular() {
		return nil, nil, false, fmt.Errorf("reading %s: not a regular file", p)
	}
	data, err = os.ReadFile(full)
	if err != nil {
		return nil, nil, false, fmt.Errorf("reading %s: %w", p, err)
	}
	return data, info, true, nil
}

// plan computes the change for one file.
func (p *Plan) plan(f File, force bool) (Change, error) {
	old, info, exists, err := read(p.Base, f.Path)
	if err != nil {
		return Change{}, err
	}
	c := Change{Path: f.Path, Old: old, Info: info}
	if exists && f.Check != nil {
		if err := f.Check(old); err != nil {
			return Change{}, err
		}
	}
	switch f.Class {
	case Managed:
		c.New, err = Splice(f.Path, old, exists, f.Content, f.Kind)
		if err != nil {
			return Change{}, err
		}
	case Framework:
		c.New = AddHeader(f.Path, f.Content)
		if exists {
			generated, err := p.generated(f.Path, old)
			if err != nil {
				return Change{}, err
			}
			if !generated {
				if !force {
					return Change{}, &Error{
						Path: f.Path,
						Msg:  "refusing to overwrite " + f.Path + ": not generated by anklume",
						Hint: "move it away, or pass --force to replace it; the old file is then kept as " + f.Path + ".bak",
					}
				}
				c.Backup = true
			}
		}
	default:
		return Change{}, fmt.Errorf("planning %s: unknown file class %d", f.Path, f.Class)
	}
	switch {
	case !exists:
		c.Action = Create
	case c.Backup || !bytes.Equal(old, c.New):
		c.Action = Update
	default:
		c.Action = Unchanged
	}
	return c, nil
}

// generated reports whether the existing framework file at p (bytes old)
// was written by anklume: it carries the header, or, under
// roles/<r>/files/, roles/<r>/tasks/main.yml on disk carries it.
func (p *Plan) generated(fp string, old []byte) (bool, error) {
	tasks, ok := roleFile(fp)
	if !ok {
		return HasHeader(fp, old), nil
	}
	data, _, exists, err := read(p.Base, tasks)
	if err != nil {
		return false, err
	}
	return exists && HasHeader(tasks, data), nil
}

// Counts returns how many files the plan creates, updates and leaves
// unchanged.
func (p *Plan) Counts() (created, updated, unchanged int) {
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			created++
		case Update:
			updated++
		default:
			unchanged++
		}
	}
	return created, updated, unchanged
}

// Options control Apply.
type Options struct {
	// DryRun writes nothing and creates no directory (§6.8).
	DryRun bool
	// Diff prints a unified diff after each created or updated line.
	Diff bool
}

// Apply writes the changed files in plan order (§6.8) and prints to w one
// line per changed file, `saved: <path>.bak` before a forced replacement,
// the diffs when asked, and the summary line. It stops at the first write
// that fails; that file is left intact and no temporary file remains.
func (p *Plan) Apply(w io.Writer, opts Options) error {
	var errs []error
	if !opts.DryRun {
		errs = p.write()
	}
	for i, c := range p.Changes {
		if c.Action == Unchanged {
			continue
		}
		verb := "created"
		if c.Action == Update {
			verb = "updated"
		}
		if opts.DryRun {
			fmt.Fprintf(w, "[dry-run] would %s: %s\n", strings.TrimSuffix(verb, "d"), c.Path)
		} else {
			if errs[i] != nil {
				continue
			}
			if c.Backup {
				fmt.Fprintf(w, "saved: %s.bak\n", c.Path)
			}
			fmt.Fprintf(w, "%s: %s\n", verb, c.Path)
		}
		if opts.Diff {
			_, _ = w.Write(UnifiedDiff(c.Path, c.Old, c.Action == Create, c.New))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	created, updated, unchanged := p.Counts()
	if opts.DryRun {
		fmt.Fprintf(w, "[dry-run] sync: %d to create, %d to update, %d unchanged\n", created, updated, unchanged)
	} else {
		fmt.Fprintf(w, "sync: %d created, %d updated, %d unchanged\n", created, updated, unchanged)
	}
	return nil
}

// writers is how many files Apply writes at once. Each write waits for an
// fsync, so a few concurrent writers hide most of the disk latency.
const writers = 16

// write performs every create and update of the plan, writers at a time,
// then fsyncs each directory it wrote into once. It returns one error slot
// per change (nil on success). Every file is replaced atomically on its
// own, so a failure leaves each target either old or new, never partial.
func (p *Plan) write() []error {
	errs := make([]error, len(p.Changes))
	jobs := make(chan int)
	var wg gosync.WaitGroup
	for range min(writers, len(p.Changes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				c := p.Changes[i]
				if c.Backup {
					if err := writeAtomic(p.Base, c.Path+".bak", c.Old, c.Info, p.beforeRename); err != nil {
						errs[i] = err
						continue
					}
				}
				errs[i] = writeAtomic(p.Base, c.Path, c.New, c.Info, p.beforeRename)
			}
		}()
	}
	dirs := map[string]bool{}
	for i, c := range p.Changes {
		if c.Action == Unchanged {
			continue
		}
		dirs[filepath.Dir(filepath.Join(p.Base, filepath.FromSlash(c.Path)))] = true
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	for d := range dirs {
		syncDir(d)
	}
	return errs
}
