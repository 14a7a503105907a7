// Package syncstamp lets `anklume sync` skip the work of a re-sync that
// would change nothing: compiling the PSOT, rendering the tree, reading
// and comparing every file.
//
// A stamp is written at the end of a sync that left the tree up to date.
// It holds a key (a hash of everything the run read apart from the tree:
// the anklume executable, the PSOT bytes, the host context, the base
// directory), what the run printed (diagnostics and output), the W16
// outcome of every role that depends on the base directory, and the
// lstat of every file of the tree, of every directory on the way to them
// and of every other entry of the directories whose listing matters
// (inventory/, group_vars/, host_vars/: the orphan search). The next sync
// computes the key, lstats those paths and, when everything matches,
// prints the recorded diagnostics and output and stops: about one lstat
// per file instead of a compile, a render and a read of every file.
//
// Why a matching lstat means an unchanged file: any write, truncate,
// rename, chmod or link count change sets the inode's ctime to the
// current time, and ctime cannot be set by a program (only by changing
// the system clock); a file replaced by another has another inode or
// ctime; a symbolic link put in place of a file or directory has another
// mode. The one gap is the timestamp granularity: a change made after the
// stat but within the same clock tick as the file's last change keeps the
// same ctime (git calls such an entry "racily clean"). So a stamp trusts
// an entry only when its ctime is at least Margin older than the moment
// the stamp's stats were taken; any younger entry sends the run down the
// full path, which writes a fresh stamp (trusted once the files are
// Margin old). Margin covers the coarsest timestamps in common use
// (FAT's 2 s).
//
// The stamp is a cache: it lives in $XDG_CACHE_HOME/anklume (else
// ~/.cache/anklume), one file per base directory, written to a temporary
// file and renamed, without fsync. Losing it, or any part of it being
// unreadable, costs one full sync, never a wrong answer: a stamp whose key
// or stats do not match is ignored.
package syncstamp

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/anklume/anklume/compiler/diag"
)

// Margin is how much older than the stamp's stats an entry's ctime must
// be for the stamp to trust it (see the package comment).
const Margin = 2 * time.Second

// format is the first line of a stamp file; a change of the layout
// changes it, and an older stamp is then a miss.
const format = "anklume-sync-stamp 1"

// Role is the W16 outcome of one role that depends on the base directory.
type Role struct {
	Name  string
	Found bool
}

// Entry is the lstat of one path under the base directory.
type Entry struct {
	Path   string // relative to the base directory, with "/"
	Absent bool
	Mode   uint32
	Dev    uint64
	Ino    uint64
	Size   int64
	Mtime  int64 // nanoseconds
	Ctime  int64 // nanoseconds
}

// Stamp is what one up-to-date sync read and printed.
type Stamp struct {
	Key string
	// Taken is when the stats were taken (Unix nanoseconds), read before
	// the first lstat.
	Taken  int64
	Roles  []Role
	Diags  diag.List
	Output string
	// Entries are sorted by path.
	Entries []Entry
}

// header is the JSON line after the format line.
type header struct {
	Key     string
	Taken   int64
	Roles   []Role    `json:",omitempty"`
	Diags   diag.List `json:",omitempty"`
	Output  string
	Entries int
}

// Store is a stamp directory. The zero value stores nothing.
type Store struct {
	Dir string
}

// Default returns the store in $XDG_CACHE_HOME/anklume, else
// ~/.cache/anklume, as getenv reads them; without either, or without
// getenv, it stores nothing.
func Default(getenv func(string) string) Store {
	if getenv == nil {
		return Store{}
	}
	if d := getenv("XDG_CACHE_HOME"); filepath.IsAbs(d) {
		return Store{Dir: filepath.Join(d, "anklume")}
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return Store{Dir: filepath.Join(h, ".cache", "anklume")}
	}
	return Store{}
}

// Enabled reports whether s stores anything.
func (s Store) Enabled() bool { return s.Dir != "" }

// file is the stamp file of the absolute base directory base.
func (s Store) file(base string) string {
	sum := sha256.Sum256([]byte(base))
	return filepath.Join(s.Dir, "sync-"+hex.EncodeToString(sum[:16])+".stamp")
}

// Load reads the stamp of base; a missing or unreadable stamp is nil.
func (s Store) Load(base string) *Stamp {
	if !s.Enabled() {
		return nil
	}
	data, err := os.ReadFile(s.file(base))
	if err != nil {
		return nil
	}
	st, err := decode(data)
	if err != nil {
		return nil
	}
	return st
}

// Save writes the stamp of base (temporary file, rename; no fsync).
func (s Store) Save(base string, st *Stamp) error {
	if !s.Enabled() {
		return nil
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("saving the sync stamp: %w", err)
	}
	data, err := encode(st)
	if err != nil {
		return err
	}
	f := s.file(base)
	tmp, err := os.CreateTemp(s.Dir, filepath.Base(f)+".tmp-*")
	if err != nil {
		return fmt.Errorf("saving the sync stamp: %w", err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("saving the sync stamp: %w", err)
	}
	if err := os.Rename(tmp.Name(), f); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("saving the sync stamp: %w", err)
	}
	s.prune()
	return nil
}

// Keep bounds the stamps of a store: one per base directory synced, and
// every temporary tree (tests, scratch directories) leaves one behind.
// Save keeps the Keep most recently written and none older than MaxAge;
// a pruned stamp costs its directory one full sync.
const (
	Keep   = 64
	MaxAge = 30 * 24 * time.Hour
)

// prune deletes the stamps beyond Keep (oldest first) and those older
// than MaxAge, and the temporary files of saves that died.
func (s Store) prune() {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return
	}
	type stamp struct {
		name string
		mod  time.Time
	}
	var all []stamp
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "sync-") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		age := time.Since(info.ModTime())
		switch {
		case strings.HasSuffix(name, ".stamp") && age > MaxAge:
			_ = os.Remove(filepath.Join(s.Dir, name))
		case strings.HasSuffix(name, ".stamp"):
			all = append(all, stamp{name, info.ModTime()})
		case strings.Contains(name, ".stamp.tmp-") && age > time.Hour:
			_ = os.Remove(filepath.Join(s.Dir, name)) // a save that died
		}
	}
	if len(all) <= Keep {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mod.After(all[j].mod) })
	for _, st := range all[Keep:] {
		_ = os.Remove(filepath.Join(s.Dir, st.name))
	}
}

// Remove deletes the stamp of base, if any.
func (s Store) Remove(base string) {
	if s.Enabled() {
		_ = os.Remove(s.file(base))
	}
}

// encode writes the format line, the header as JSON, then one line per
// entry: mode dev ino size mtime ctime and the quoted path ("-" for an
// absent path, with no numbers).
func encode(st *Stamp) ([]byte, error) {
	h, err := json.Marshal(header{Key: st.Key, Taken: st.Taken, Roles: st.Roles, Diags: st.Diags, Output: st.Output, Entries: len(st.Entries)})
	if err != nil {
		return nil, fmt.Errorf("saving the sync stamp: %w", err)
	}
	var b bytes.Buffer
	b.Grow(len(h) + 80*len(st.Entries))
	b.WriteString(format + "\n")
	b.Write(h)
	b.WriteByte('\n')
	var num [20]byte
	for _, e := range st.Entries {
		if e.Absent {
			b.WriteString("- ")
		} else {
			for _, n := range []uint64{uint64(e.Mode), e.Dev, e.Ino, uint64(e.Size), uint64(e.Mtime), uint64(e.Ctime)} {
				b.Write(strconv.AppendUint(num[:0], n, 10))
				b.WriteByte(' ')
			}
		}
		b.WriteString(strconv.Quote(e.Path))
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// decode parses what encode wrote.
func decode(data []byte) (*Stamp, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), len(data)+1)
	if !sc.Scan() || sc.Text() != format {
		return nil, errors.New("not a sync stamp of this version")
	}
	if !sc.Scan() {
		return nil, io.ErrUnexpectedEOF
	}
	var h header
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
		return nil, err
	}
	st := &Stamp{Key: h.Key, Taken: h.Taken, Roles: h.Roles, Diags: h.Diags, Output: h.Output, Entries: make([]Entry, 0, h.Entries)}
	for sc.Scan() {
		line := sc.Text()
		var e Entry
		if rest, ok := strings.CutPrefix(line, "- "); ok {
			e.Absent = true
			line = rest
		} else {
			var n [6]uint64
			for i := range n {
				f, rest, ok := strings.Cut(line, " ")
				if !ok {
					return nil, errors.New("truncated entry")
				}
				v, err := strconv.ParseUint(f, 10, 64)
				if err != nil {
					return nil, err
				}
				n[i], line = v, rest
			}
			e.Mode, e.Dev, e.Ino, e.Size, e.Mtime, e.Ctime = uint32(n[0]), n[1], n[2], int64(n[3]), int64(n[4]), int64(n[5])
		}
		p, err := strconv.Unquote(line)
		if err != nil {
			return nil, err
		}
		e.Path = p
		st.Entries = append(st.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(st.Entries) != h.Entries {
		return nil, errors.New("truncated stamp")
	}
	return st, nil
}

// Paths returns files (slash paths under the base directory) with every
// directory on the way to them, sorted, once each.
func Paths(files []string) []string {
	seen := make(map[string]bool, len(files)+len(files)/8)
	out := make([]string, 0, len(files)+len(files)/8)
	for _, f := range files {
		for p := f; p != "." && p != "/" && p != "" && !seen[p]; p = path.Dir(p) {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// lstat returns the entry of the slash path p under base.
func lstat(base, p string) (Entry, error) {
	var st unix.Stat_t
	err := unix.Lstat(filepath.Join(base, filepath.FromSlash(p)), &st)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return Entry{Path: p, Absent: true}, nil
	}
	if err != nil {
		return Entry{}, fmt.Errorf("reading %s: %w", p, err)
	}
	return Entry{Path: p, Mode: st.Mode, Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}, nil
}

// Record lstats paths under base (see Paths) and returns the entries and
// the time taken before the first lstat.
func Record(base string, paths []string, now func() time.Time) ([]Entry, int64, error) {
	taken := now().UnixNano()
	out := make([]Entry, 0, len(paths))
	for _, p := range paths {
		e, err := lstat(base, p)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, e)
	}
	return out, taken, nil
}

// Young reports whether the entry p under base changed less than Margin
// before now: a stamp taken now could not trust it, so a run that just
// wrote p need not take one (Record would lstat every path for a stamp
// the next run must ignore). An entry that cannot be read counts as
// young.
func Young(base, p string, now func() time.Time) bool {
	e, err := lstat(base, p)
	if err != nil || e.Absent {
		return true
	}
	return e.Ctime >= now().UnixNano()-int64(Margin)
}

// Fresh reports whether st describes base as it is now under key: the same
// key, every entry's lstat unchanged and older than Taken by Margin, and
// every role's outcome (found reports it now) unchanged.
func (st *Stamp) Fresh(base, key string, found func(role string) bool) bool {
	if st == nil || st.Key != key {
		return false
	}
	limit := st.Taken - int64(Margin)
	for _, e := range st.Entries {
		if !e.Absent && e.Ctime >= limit {
			return false
		}
	}
	// The lstats, a few at once (each one is a system call that mostly
	// waits on the path lookup); the first difference stops them all.
	var changed atomic.Bool
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), 4, 1+len(st.Entries)/256)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(st.Entries) && !changed.Load(); i += workers {
				e := st.Entries[i]
				if now, err := lstat(base, e.Path); err != nil || now != e {
					changed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if changed.Load() {
		return false
	}
	for _, r := range st.Roles {
		if found(r.Name) != r.Found {
			return false
		}
	}
	return true
}

// Key hashes parts, each framed by its length, into a stamp key.
func Key(parts ...[]byte) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		l := uint64(len(p))
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Executable returns the identity of the running executable (path and
// lstat of the file it resolves to): a rebuilt or upgraded anklume has
// another, so a stamp written by another build never matches.
func Executable() ([]byte, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	e, err := lstat(filepath.Dir(exe), filepath.Base(exe))
	if err != nil || e.Absent {
		return nil, fmt.Errorf("reading the anklume executable %s: %v", exe, err)
	}
	return fmt.Appendf(nil, "%s %+v", exe, e), nil
}
