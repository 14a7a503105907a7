// Package schemamemo remembers on disk the PSOTs that the JSON Schema
// accepted (stage S1), so that validating an unchanged PSOT again skips
// compiling the schema and validating (about 9 ms and 3 ms of CPU for 30
// machines, a fifth of a `validate` run).
//
// What is remembered: keys, one per accepted instance, in one file
// (schema-accepted) of the user's cache directory (internal/cachedir). A
// key is a hash of the identity of the running executable and of the
// converted instance (structure.Key, which frames every value by its type
// and length). Only clean outcomes are remembered (structure.CheckMemo):
// an instance with any diagnostic is validated on every run, so a hit
// returns exactly what a validation would, no diagnostics, and the
// diagnostics of an invalid or warned-about PSOT, positions included,
// are always computed afresh.
//
// Why a hit is safe: the outcome of S1 is a function of the schema, the
// validator's code and the instance. The schema is embedded in the
// executable and the validator linked into it, so both are covered by the
// executable's identity: its path and the lstat of the file it resolves
// to (device, inode, size, mtime, ctime). Rebuilding or upgrading anklume
// writes another file (new inode or ctime; ctime cannot be set by a
// program), so every entry of an older build misses. The instance is
// covered by its hash: changing any byte that reaches the validator
// changes the key. An executable whose identity cannot be read disables
// the memo.
//
// Writes go through cachedir.WriteFile (temporary file, then rename): a
// run that dies mid-write leaves the old file or the new one. The file is
// checked as a whole: a wrong first line or any malformed line makes it
// empty (every key misses, the next Accept rewrites it). Two runs
// accepting at the same time may lose one of their keys (the last rename
// wins): that run's PSOT is validated once more. The file keeps the Keep
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
// state validated, so a few per infrastructure being edited.
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
