package sync

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/emit"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/resolve"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/internal/aiaccess"
	"github.com/anklume/anklume/internal/syncstamp"
)

// orphanDirs are the directories whose listing decides the orphan report
// (tree.FindOrphans): a stamp records their entries too.
var orphanDirs = []string{"inventory", "group_vars", "host_vars"}

// stamper is the sync stamp of one run (package syncstamp): a re-sync
// whose inputs and tree are unchanged since an up-to-date sync prints what
// that sync printed and stops, without compiling, rendering or reading the
// tree. Only a plain sync uses and writes stamps: --dry-run, --diff,
// --clean-orphans, -v and --remote (whose resources come from the Incus
// server) always take the full path, and so does a run without a cache
// directory or whose executable cannot be identified.
type stamper struct {
	store syncstamp.Store
	base  string
	key   string
	old   *syncstamp.Stamp
	ok    bool
	now   func() time.Time
}

// stamper computes the key of this run and loads the stamp of its base
// directory.
func (opts *Options) stamper(fsys fs.FS, in compiler.Input, warnings []string, hopts host.Options, remote string) *stamper {
	s := &stamper{store: syncstamp.Default(opts.Getenv), now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if !s.store.Enabled() || opts.DryRun || opts.Diff || opts.CleanOrphans || opts.verbose() || remote != "" {
		return s
	}
	base, err := opts.baseDir(in)
	if err != nil {
		return s
	}
	exe, err := syncstamp.Executable()
	if err != nil {
		return s
	}
	src, err := sourceBytes(fsys, in)
	if err != nil {
		return s
	}
	// The interfaces V31 ignores (anklume's bridges, which come and go
	// with every apply) are left out of the key.
	var kept []host.Interface
	for _, ifc := range hopts.Interfaces {
		if !resolve.HostSubnetIgnored(ifc.Name) {
			kept = append(kept, ifc)
		}
	}
	hopts.Interfaces = kept
	h, err := json.Marshal(hopts)
	if err != nil {
		return s
	}
	s.base, s.ok = base, true
	s.key = syncstamp.Key(exe, []byte(base), fmt.Appendf(nil, "%q %q %v %v", in.Path, in.Display, in.Dir, opts.Force),
		[]byte(strings.Join(warnings, "\n")), h, src)
	s.old = s.store.Load(base)
	return s
}

// fresh reports whether the stamp says the tree is up to date.
func (s *stamper) fresh() bool {
	if !s.ok || s.old == nil {
		return false
	}
	return s.old.Fresh(s.base, s.key, func(r string) bool { return compiler.RoleFound(os.DirFS(s.base), r) })
}

// save records the stamp of a sync that left the tree up to date: the
// diagnostics dl it printed after the PSOT's own warnings, and the output
// the next run would print (every one of the n files unchanged, and the
// orphan report). A failure only costs the next run its shortcut.
//
// An infrastructure with an exclusive AI access gets no stamp: its tree
// follows the holder recorded in Incus (package aiaccess), which an
// `anklume ai switch` from anywhere changes without touching the PSOT or
// the tree.
//
// Nor does a run that has just written a file (wrote, "" if none): the
// stamp could not trust that file for another Margin, so the next run
// would go the full way anyway, and taking it would cost an lstat of
// every file of the tree (a fifth of the rendering of 200 × 20). The run
// after next takes it.
func (s *stamper) save(m *model.Infra, files []tree.File, dl diag.List, n int, wrote string) {
	if !s.ok {
		return
	}
	if aiaccess.Exclusive(m) || (wrote != "" && syncstamp.Young(s.base, wrote, s.now)) {
		s.store.Remove(s.base)
		return
	}
	paths := make([]string, 0, len(files))
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	// Every other entry of the orphan directories: adding a managed
	// section to one makes it an orphan, and their protection is read
	// from their bytes.
	for _, d := range orphanDirs {
		ents, err := os.ReadDir(s.base + "/" + d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			paths = append(paths, path.Join(d, e.Name()))
		}
	}
	paths = append(paths, orphanDirs...)
	entries, taken, err := syncstamp.Record(s.base, syncstamp.Paths(paths), s.now)
	if err != nil {
		s.store.Remove(s.base)
		return
	}
	domains, machines := emit.KnownNames(m)
	orphans, err := tree.FindOrphans(s.base, domains, machines)
	if err != nil {
		s.store.Remove(s.base)
		return
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "sync: 0 created, 0 updated, %d unchanged\n", n)
	if err := tree.ReportOrphans(&out, s.base, orphans, false, false); err != nil {
		s.store.Remove(s.base)
		return
	}
	var roles []syncstamp.Role
	for _, r := range compiler.CustomRoles(m) {
		roles = append(roles, syncstamp.Role{Name: r, Found: compiler.RoleFound(os.DirFS(s.base), r)})
	}
	st := &syncstamp.Stamp{Key: s.key, Taken: taken, Roles: roles, Diags: dl, Output: out.String(), Entries: entries}
	if err := s.store.Save(s.base, st); err != nil {
		s.store.Remove(s.base)
	}
}

// sourceBytes returns the bytes of the PSOT: the file, or every entry of
// the infra/ directory (path, type and bytes), in lexical order.
func sourceBytes(fsys fs.FS, in compiler.Input) ([]byte, error) {
	if !in.Dir {
		return fs.ReadFile(fsys, in.Path)
	}
	var b bytes.Buffer
	err := fs.WalkDir(fsys, in.Path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%q %v\n", p, d.Type())
		if d.IsDir() {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%d\n", len(data))
		b.Write(data)
		return nil
	})
	return b.Bytes(), err
}
