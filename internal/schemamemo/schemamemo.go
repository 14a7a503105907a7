// Package schemamemo remembers on disk the PSOTs that stage S1 (the
// JSON Schema) accepted, so that checking an unchanged PSOT again skips
// parsing and compiling the schema, converting and validating (about
// 15 ms of CPU for 30 machines, half of a `validate` run's own work).
//
// What is remembered: keys, one per accepted document, in one file
// (schema-accepted) of the user's cache directory (internal/cachedir). A
// key is a hash of the identity of the running executable and of the
// loaded document tree (structure.Key: every node framed by its kind,
// tag, text and length, positions left out). Only clean outcomes are
// remembered (structure.CheckMemo): a document with any diagnostic of S1
// is checked on every run, so a hit returns exactly what a check would,
// no diagnostics, and the diagnostics of an invalid PSOT, positions
// included, are always computed afresh.
//
// Why a hit is safe: the outcome of S1 is a function of the schema, the
// conversion and validation code and the tree; positions only appear in
// diagnostics, which a remembered outcome has none of. The schema is
// embedded in the executable and the code linked into it, so both are
// covered by the executable's identity: its path and the stat of the
// file it resolves to (device, inode, size, mtime, ctime). Rebuilding or
// upgrading anklume writes another file (new inode or ctime; ctime cannot
// be set by a program), so every entry of an older build misses. The
// tree is covered by its hash: changing any byte of the PSOT that reaches
// the tree changes the key. An executable whose identity cannot be read
// disables the memo.
//
// Writes go through cachedir.WriteFile (temporary file, then rename): a
// run that dies mid-write leaves the old file or the new one. The file is
// checked as a whole: a wrong first line or any malformed line makes it
// empty (every key misses, the next Accept rewrites it). Two runs
// accepting at the same time may lose one of their keys (the last rename
// wins): that run's PSOT is checked once more. The file keeps the Keep
// most recent keys.
package schemamemo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/anklume/anklume/internal/cachedir"
)

// File is the name of the memo in the cache directory, and header its
// first line.
const (
	File   = "schema-accepted"
	header = "anklume schema-accepted 1"
)

// Keep is how many keys the memo keeps (the most recent): one per PSOT
// state checked, so a few per infrastructure being edited.
const Keep = 64

// Memo is the memo of one cache directory. It implements structure.Memo.
// It reads its file at most once; the zero value, or a nil *Memo,
// remembers nothing.
type Memo struct {
	dir string
	exe func() ([]byte, error)

	once sync.Once
	salt []byte   // the executable's identity; nil disables the memo
	keys []string // hex keys, oldest first
	mu   sync.Mutex
}

// New returns the memo in dir ("" remembers nothing), keyed by the
// identity exe returns (Executable in production).
func New(dir string, exe func() ([]byte, error)) *Memo {
	return &Memo{dir: dir, exe: exe}
}

// Executable returns the identity of the running executable: the path it
// resolves to and that file's device, inode, size, mtime and ctime.
func Executable() ([]byte, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil {
		return nil, fmt.Errorf("reading the anklume executable %s: %w", exe, err)
	}
	return fmt.Appendf(nil, "%s\x00%d %d %d %d.%d %d.%d", exe, st.Dev, st.Ino, st.Size,
		st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec), nil
}

// load reads the identity and the file, once.
func (m *Memo) load() {
	m.once.Do(func() {
		if m.dir == "" || m.exe == nil {
			return
		}
		salt, err := m.exe()
		if err != nil || len(salt) == 0 {
			return
		}
		m.salt = salt
		m.keys = parse(filepath.Join(m.dir, File))
	})
}

// parse reads the keys of the memo file at path; a missing, unreadable or
// malformed file holds none.
func parse(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) < 2 || string(lines[0]) != header || len(lines[len(lines)-1]) != 0 {
		return nil
	}
	keys := make([]string, 0, len(lines)-2)
	for _, l := range lines[1 : len(lines)-1] {
		if len(l) != 2*sha256.Size {
			return nil
		}
		if _, err := hex.DecodeString(string(l)); err != nil {
			return nil
		}
		keys = append(keys, string(l))
	}
	return keys
}

// key mixes the executable's identity into an instance key.
func (m *Memo) key(inst [32]byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", len(m.salt))
	h.Write(m.salt)
	h.Write(inst[:])
	return hex.EncodeToString(h.Sum(nil))
}

// Accepted implements structure.Memo.
func (m *Memo) Accepted(inst [32]byte) bool {
	if m == nil {
		return false
	}
	m.load()
	if m.salt == nil {
		return false
	}
	k := m.key(inst)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, have := range m.keys {
		if have == k {
			return true
		}
	}
	return false
}

// Accept implements structure.Memo: it adds the key and rewrites the file,
// keeping the Keep most recent keys. A file that cannot be written is left
// as it was.
func (m *Memo) Accept(inst [32]byte) {
	if m == nil {
		return
	}
	m.load()
	if m.salt == nil {
		return
	}
	k := m.key(inst)
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.keys)+1)
	for _, have := range m.keys {
		if have != k {
			keys = append(keys, have)
		}
	}
	keys = append(keys, k)
	if len(keys) > Keep {
		keys = keys[len(keys)-Keep:]
	}
	m.keys = keys
	var b bytes.Buffer
	b.WriteString(header + "\n")
	for _, k := range keys {
		b.WriteString(k + "\n")
	}
	_ = cachedir.WriteFile(m.dir, File, b.Bytes())
}
