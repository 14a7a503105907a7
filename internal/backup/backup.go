// Package backup implements `anklume backup create|restore` (SPEC.md
// §12.7): an instance exported to <dir>/<machine>-YYYYMMDD-HHMMSS.tar.gz,
// or streamed through filippo.io/age into ….tar.gz.age so that no
// plaintext touches the disk, and imported back. Every backup file is
// created with mode 0600, and an existing one is refused unless forced.
package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/agessh"

	"github.com/anklume/anklume/internal/incusx"
)

// File name suffixes.
const (
	Ext    = ".tar.gz"
	AgeExt = ".age"
)

// Modes of SPEC.md §12.7.
const (
	FileMode fs.FileMode = 0o600
	DirMode  fs.FileMode = 0o700
)

// InvalidRecipientError is an unusable --recipient or recipients-file
// line.
type InvalidRecipientError struct{ Recipient string }

func (e *InvalidRecipientError) Error() string {
	return fmt.Sprintf("invalid recipient %q", e.Recipient)
}

// ParseRecipient parses an age public key (age1…) or an SSH public key
// (ssh-ed25519 …, ssh-rsa …).
func ParseRecipient(s string) (age.Recipient, error) {
	s = strings.TrimSpace(s)
	var r age.Recipient
	var err error
	switch {
	case strings.HasPrefix(s, "age1"):
		r, err = age.ParseX25519Recipient(s)
	case strings.HasPrefix(s, "ssh-"):
		r, err = agessh.ParseRecipient(s)
	default:
		err = errors.New("unknown recipient type")
	}
	if err != nil {
		return nil, &InvalidRecipientError{Recipient: s}
	}
	return r, nil
}

// ReadRecipients reads one recipient per line, skipping blank lines and
// `#` comments, as `age -R` does.
func ReadRecipients(r io.Reader) ([]age.Recipient, error) {
	var out []age.Recipient
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rc, err := ParseRecipient(line)
		if err != nil {
			return nil, err
		}
		out = append(out, rc)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading recipients: %w", err)
	}
	return out, nil
}

// ReadIdentities reads an age identity file, or else an SSH private key
// (unencrypted).
func ReadIdentities(path string) ([]age.Identity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading identity file: %w", err)
	}
	if ids, err := age.ParseIdentities(strings.NewReader(string(data))); err == nil {
		return ids, nil
	}
	id, err := agessh.ParseIdentity(data)
	if err != nil {
		return nil, fmt.Errorf("reading identity file %s: not an age identity file or a usable SSH private key: %w", path, err)
	}
	return []age.Identity{id}, nil
}

// FileName is the backup file name of a machine at t.
func FileName(machine string, t time.Time, encrypted bool) string {
	name := machine + "-" + t.UTC().Format("20060102-150405") + Ext
	if encrypted {
		name += AgeExt
	}
	return name
}

// ExistsError is a backup file that already exists without --force.
type ExistsError struct{ Path string }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("%s already exists; pass --force to overwrite it", e.Path)
}

// CreateOptions describe one backup.
type CreateOptions struct {
	// Project and Instance name the instance; Machine names the file.
	Project, Instance, Machine string
	// Dir is the output directory, created with DirMode when missing.
	Dir string
	// Recipients encrypt the export with age when not empty.
	Recipients []age.Recipient
	// Force overwrites an existing file.
	Force bool
	// Now is the time in the file name.
	Now time.Time
	// Progress hears the phases: "exporting" while the daemon builds the
	// tarball (its own progress text as the detail), then "downloading"
	// with the bytes received so far.
	Progress Progress
}

// Create exports the instance into a new backup file and returns its
// path. The file is created with mode 0600 before any byte is written; a
// failed export removes it.
func Create(ctx context.Context, srv incusx.InstanceOps, o CreateOptions) (string, error) {
	if err := os.MkdirAll(o.Dir, DirMode); err != nil {
		return "", fmt.Errorf("creating backup directory: %w", err)
	}
	path := filepath.Join(o.Dir, FileName(o.Machine, o.Now, len(o.Recipients) > 0))
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if o.Force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, FileMode)
	if errors.Is(err, fs.ErrExist) {
		return "", &ExistsError{Path: path}
	}
	if err != nil {
		return "", fmt.Errorf("creating backup file: %w", err)
	}
	// An overwritten file keeps its old mode: set it.
	if err := f.Chmod(FileMode); err != nil {
		f.Close()
		return "", fmt.Errorf("creating backup file: %w", err)
	}
	err = export(ctx, srv, o, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing backup file: %w", cerr)
	}
	if err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}

func export(ctx context.Context, srv incusx.InstanceOps, o CreateOptions, f *os.File) error {
	bw := bufio.NewWriterSize(f, 1<<20)
	var w io.Writer = bw
	var enc io.WriteCloser
	if len(o.Recipients) > 0 {
		var err error
		enc, err = age.Encrypt(bw, o.Recipients...)
		if err != nil {
			return fmt.Errorf("encrypting backup: %w", err)
		}
		w = enc
	}
	o.Progress.step("exporting")
	if o.Progress.Detail != nil {
		ctx = incusx.WithProgress(ctx, o.Progress.Detail)
	}
	cw := &countWriter{w: w, report: func(n int64) {
		o.Progress.step("downloading")
		o.Progress.detail(mib(n))
	}}
	if err := srv.ExportInstance(ctx, o.Project, o.Instance, cw); err != nil {
		return err
	}
	if enc != nil {
		if err := enc.Close(); err != nil {
			return fmt.Errorf("encrypting backup: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing backup file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing backup file: %w", err)
	}
	return nil
}

// EncryptedError is an encrypted backup restored without --identity.
type EncryptedError struct{ Path string }

func (e *EncryptedError) Error() string {
	return fmt.Sprintf("%s is encrypted; pass --identity FILE", e.Path)
}

// Encrypted reports whether a backup path names an age file.
func Encrypted(path string) bool { return strings.HasSuffix(path, AgeExt) }

// MachineOf returns the machine name of a backup file name
// (<machine>-YYYYMMDD-HHMMSS.tar.gz[.age]), or "" when it does not have
// that shape.
func MachineOf(path string) string {
	base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), AgeExt), Ext)
	// -YYYYMMDD-HHMMSS is 16 bytes.
	if len(base) <= 16 || base[len(base)-16] != '-' || base[len(base)-7] != '-' {
		return ""
	}
	return base[:len(base)-16]
}

// Open opens a backup file for reading, decrypting a .age file with the
// identities while it streams.
func Open(path string, identities []age.Identity) (io.ReadCloser, error) {
	return open(path, identities, nil)
}

// open is Open with read(n, size) told how many bytes of the file were
// read so far (before decryption) and its size; read may be nil.
func open(path string, identities []age.Identity, read func(n, size int64)) (io.ReadCloser, error) {
	if Encrypted(path) && len(identities) == 0 {
		return nil, &EncryptedError{Path: path}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening backup: %w", err)
	}
	var src io.Reader = f
	if read != nil {
		var size int64
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		src = &countReader{r: f, report: func(n int64) { read(n, size) }}
	}
	if !Encrypted(path) {
		return struct {
			io.Reader
			io.Closer
		}{src, f}, nil
	}
	r, err := age.Decrypt(bufio.NewReaderSize(src, 1<<20), identities...)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("decrypting %s: %w", path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}
