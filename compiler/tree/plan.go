package tree

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	gosync "sync"

	"golang.org/x/sys/unix"
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
	r, err := openRoot(base)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r = nil // nothing exists yet: every file is created
	case err != nil:
		return nil, err
	default:
		defer r.close()
	}
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
	for range min(readers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				changes[i], errs[i] = p.plan(r, files[i], force)
			}
		}()
	}
	for _, i := range todo {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(dedupe(errs)...); err != nil {
		return nil, err
	}
	p.Changes = changes
	return p, nil
}

// dedupe drops the errors whose message repeats an earlier one (a
// symbolic link in place of a directory fails every file below it).
func dedupe(errs []error) []error {
	seen := map[string]bool{}
	out := errs[:0:0]
	for _, e := range errs {
		if e == nil || seen[e.Error()] {
			continue
		}
		seen[e.Error()] = true
		out = append(out, e)
	}
	return out
}

// checkPath accepts clean relative slash paths that stay under the base.
func checkPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "\\") {
		return fmt.Errorf("planning %q: not a clean relative path", p)
	}
	return nil
}

// read returns the bytes and info of the file at the slash path p under
// r (nil: the base does not exist); exists is false when it is absent. A
// symbolic link at p or on the way to it is an error.
func read(r *root, p string) (data []byte, info fs.FileInfo, exists bool, err error) {
	if r == nil {
		return nil, nil, false, nil
	}
	data, info, exists, err = r.readFile(p)
	if err != nil {
		var te *Error
		if errors.As(err, &te) {
			return nil, nil, false, err
		}
		return nil, nil, false, fmt.Errorf("reading %w", err)
	}
	return data, info, exists, nil
}

// plan computes the change for one file.
func (p *Plan) plan(r *root, f File, force bool) (Change, error) {
	old, info, exists, err := read(r, f.Path)
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
			gen, err := generated(r, f.Path, old)
			if err != nil {
				return Change{}, err
			}
			if !gen {
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
func generated(r *root, fp string, old []byte) (bool, error) {
	tasks, ok := roleFile(fp)
	if !ok {
		return HasHeader(fp, old), nil
	}
	data, _, exists, err := read(r, tasks)
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

// readers is how many files NewPlan reads at once: a few readers hide
// most of the file system latency of a cold cache.
const readers = 8

// Options control Apply.
type Options struct {
	// DryRun writes nothing and creates no directory (§6.8).
	DryRun bool
	// Diff prints a unified diff after each created or updated line.
	Diff bool
	// Brief leaves out the per-file `created:`/`updated:` lines and prints
	// instead, before the summary line, how many files of each kind (the
	// first path element: host_vars, roles, site.yml...) change. sync
	// asks for it unless -v, --dry-run or --diff is given: a first sync
	// writes well over a hundred files and the list drowns the messages
	// that matter.
	Brief bool
	// KeepOld copies the old bytes of every file it replaces to
	// `<path>.bak` first (atomically, like `anklume upgrade`) and says so
	// with `kept the old version: <path> -> <path>.bak`. sync has no record
	// of what it wrote last, so it cannot tell a hand edit inside a
	// managed section or a framework file from a change of the PSOT: it
	// keeps the old bytes whenever they are replaced, so that a hand edit
	// is never lost silently (--diff shows what changed). A created file,
	// or one whose bytes do not change, gets no .bak.
	KeepOld bool
	// Pause, when set, is called with "staged" once every new file is
	// written to its temporary file and before anything is renamed (a
	// test hook: a test kills the process there).
	Pause func(step string)
}

// Apply removes the temporary files an interrupted sync left in the
// directories of the plan, writes the changed files as described at the
// top of write.go (all staged, then all renamed; on failure the tree is
// put back to its old generation), and prints to w one line per removed
// temporary file, `saved: <path>.bak` before a forced replacement (or the
// KeepOld line), one line per changed file (or, with Brief, one line of
// counts per kind of file), the diffs when asked, and the summary line. When the
// write fails nothing but the error is reported.
func (p *Plan) Apply(w io.Writer, opts Options) error {
	forced := make([]bool, len(p.Changes))
	for i := range p.Changes {
		forced[i] = p.Changes[i].Backup
		if opts.KeepOld && p.Changes[i].Action == Update {
			p.Changes[i].Backup = true
		}
	}
	if !opts.DryRun {
		removed, err := p.write(opts.Pause)
		for _, r := range removed {
			fmt.Fprintf(w, "removed: %s (temporary file of an interrupted sync)\n", r)
		}
		if err != nil {
			return err
		}
	}
	var kinds []string
	perKind := map[string]int{}
	for i, c := range p.Changes {
		if c.Action == Unchanged {
			continue
		}
		kind, _, _ := strings.Cut(c.Path, "/")
		if perKind[kind] == 0 {
			kinds = append(kinds, kind)
		}
		perKind[kind]++
		verb := "created"
		if c.Action == Update {
			verb = "updated"
		}
		kept := c.Backup && !forced[i]
		switch {
		case opts.DryRun && kept:
			fmt.Fprintf(w, "[dry-run] would keep the old version: %s -> %s.bak\n", c.Path, c.Path)
		case kept:
			fmt.Fprintf(w, "kept the old version: %s -> %s.bak\n", c.Path, c.Path)
		case c.Backup && !opts.DryRun:
			fmt.Fprintf(w, "saved: %s.bak\n", c.Path)
		}
		if opts.Brief {
			continue
		}
		if opts.DryRun {
			fmt.Fprintf(w, "[dry-run] would %s: %s\n", strings.TrimSuffix(verb, "d"), c.Path)
		} else {
			fmt.Fprintf(w, "%s: %s\n", verb, c.Path)
		}
		if opts.Diff {
			_, _ = w.Write(UnifiedDiff(c.Path, c.Old, c.Action == Create, c.New))
		}
	}
	if opts.Brief && len(kinds) > 0 {
		sort.Strings(kinds)
		parts := make([]string, len(kinds))
		for i, k := range kinds {
			parts[i] = fmt.Sprintf("%s %d", k, perKind[k])
		}
		fmt.Fprintf(w, "changed: %s (-v lists the files)\n", strings.Join(parts, ", "))
	}
	created, updated, unchanged := p.Counts()
	if opts.DryRun {
		fmt.Fprintf(w, "[dry-run] sync: %d to create, %d to update, %d unchanged\n", created, updated, unchanged)
	} else {
		fmt.Fprintf(w, "sync: %d created, %d updated, %d unchanged\n", created, updated, unchanged)
	}
	return nil
}

// write removes stale temporary files, then stages, syncs and renames
// every create and update of the plan (see the top of write.go). It
// returns the stale files it removed.
func (p *Plan) write(pause func(string)) (removed []string, err error) {
	if err := mkdirAll(p.Base); err != nil {
		return nil, fmt.Errorf("creating the base directory: %w", err)
	}
	r, err := openRoot(p.Base)
	if err != nil {
		return nil, err
	}
	defer r.close()

	seen := map[string]bool{}
	var dirs []string
	changed := false
	for _, c := range p.Changes {
		if d, _ := split(c.Path); !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
		changed = changed || c.Action != Unchanged
	}
	if removed, err = r.removeStale(dirs); err != nil || !changed {
		return removed, err
	}

	// 1. Stage.
	st, err := r.stageAll(p.Changes)
	if err != nil {
		return removed, err
	}
	discardAll := func() {
		for _, s := range st {
			s.discard()
		}
	}
	if pause != nil {
		pause("staged")
	}
	// 2. Make the staged bytes durable, rename, make the renames durable.
	if err := r.syncfs(); err != nil {
		discardAll()
		return removed, err
	}
	for k, s := range st {
		err := error(nil)
		if p.beforeRename != nil {
			if herr := p.beforeRename(s.tmp); herr != nil {
				err = fmt.Errorf("writing %s: %w", s.path, herr)
			}
		}
		if err == nil {
			err = s.rename()
		}
		if err != nil {
			for _, rest := range st[k:] {
				rest.discard()
			}
			return removed, p.undo(r, st[:k], err)
		}
	}
	return removed, r.syncfs()
}

// undo puts back the old generation of the files in done (renamed already,
// in order) after the write failure cause, and returns the error to
// report: cause and what the tree now holds.
func (p *Plan) undo(r *root, done []staged, cause error) error {
	var left []string
	for k := len(done) - 1; k >= 0; k-- {
		s := done[k]
		if s.change < 0 {
			continue // a .bak copy holds the old bytes: harmless to keep
		}
		c := p.Changes[s.change]
		var err error
		if c.Action == Create {
			err = unix.Unlinkat(int(s.dir.Fd()), s.name, 0)
		} else {
			var back staged
			if back, err = r.stage(c.Path, c.Old, c.Info); err == nil {
				if err = back.rename(); err != nil {
					back.discard()
				}
			}
		}
		if err != nil {
			left = append(left, c.Path)
		}
	}
	_ = r.syncfs()
	if len(left) > 0 {
		return fmt.Errorf("%w; these files could not be put back and hold the new version: %s", cause, strings.Join(left, ", "))
	}
	return cause
}
