// Package transfer decides and records the moves of data between
// compartments that `anklume copy` and `anklume clipboard` make.
//
// The rule. Data may go from a source side to a destination side (a
// machine, or the host) when:
//
//   - both are the same machine, or machines of the same domain; or
//   - a network policy lets the source open connections to the
//     destination: its from names the source (the machine, its domain, or
//     host) and its to names the destination, or it is bidirectional and
//     names them the other way round. Ports do not matter: the policy
//     already lets that data flow in that direction; or
//   - the file portals agree: the destination path is in the file_portal
//     of the destination's domain, and the source path is in the
//     file_portal of the source's domain and that portal is not read_only
//     (an inbox takes files in, never lets them out). The host has no
//     portal: its side always agrees, since the user who runs anklume on
//     the host is the one moving the data.
//
// Anything else is refused before any byte is read.
//
// The record. Every attempt, allowed or refused, is appended as one JSON
// line to <base directory>/.anklume/transfers.log (next to the PSOT unless
// --base-dir says otherwise; mode 0600): the time, the local user, the
// operation, both ends, the decision and its reason, and for a done
// transfer its size and SHA-256. The log is opened before anything moves,
// so nothing is copied that could not be recorded.
package transfer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/anklume/anklume/compiler/model"
)

// Side is one end of a transfer: a machine and a path in it, or the host
// (Machine nil).
type Side struct {
	Machine *model.Machine
	Path    string
}

// String is "domain/machine:/path" or "host:<path>".
func (s Side) String() string {
	if s.Machine == nil {
		return "host:" + s.Path
	}
	return s.Machine.Domain.Name + "/" + s.Machine.Name + ":" + s.Path
}

// Decide applies the rule of the package doc to a transfer from src to
// dst in m, and says why.
func Decide(m *model.Infra, src, dst Side) (ok bool, reason string) {
	if src.Machine != nil && dst.Machine != nil && src.Machine.Domain == dst.Machine.Domain {
		return true, "same domain"
	}
	for _, p := range m.Policies {
		if names(p.From, src) && names(p.To, dst) || p.Bidirectional && names(p.From, dst) && names(p.To, src) {
			return true, fmt.Sprintf("network policy %d (%s -> %s)", p.Index, p.From.Name, p.To.Name)
		}
	}
	dstOK := dst.Machine == nil || dst.Machine.Domain.FilePortal.Contains(dst.Path)
	srcOK := src.Machine == nil ||
		src.Machine.Domain.FilePortal.Contains(src.Path) && !src.Machine.Domain.FilePortal.ReadOnly
	if dstOK && srcOK {
		return true, "file_portal"
	}
	return false, fmt.Sprintf("no network policy from %s to %s and no file_portal allows it", endName(src), endName(dst)) +
		portalHint(src, dst, srcOK, dstOK)
}

// names reports whether the policy endpoint e names side s.
func names(e model.Endpoint, s Side) bool {
	switch e.Kind {
	case model.HostEndpoint:
		return s.Machine == nil
	case model.DomainEndpoint:
		return s.Machine != nil && s.Machine.Domain.Name == e.Name
	case model.MachineEndpoint:
		return s.Machine != nil && s.Machine.Name == e.Name
	}
	return false
}

func endName(s Side) string {
	if s.Machine == nil {
		return "the host"
	}
	return s.Machine.Name + " (domain " + s.Machine.Domain.Name + ")"
}

// portalHint says which portal is missing.
func portalHint(src, dst Side, srcOK, dstOK bool) string {
	switch {
	case !dstOK:
		return fmt.Sprintf(" (%s is not in a file_portal of domain %s)", dst.Path, dst.Machine.Domain.Name)
	case src.Machine.Domain.FilePortal.Contains(src.Path):
		return fmt.Sprintf(" (the file_portal of domain %s is read_only: files enter it, never leave)", src.Machine.Domain.Name)
	default:
		return fmt.Sprintf(" (%s is not in a file_portal of domain %s)", src.Path, src.Machine.Domain.Name)
	}
}

// Entry is one line of the transfer log.
type Entry struct {
	Time    string `json:"time"`
	User    string `json:"user"`
	Op      string `json:"op"`
	From    string `json:"from"`
	To      string `json:"to"`
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
	Bytes   *int   `json:"bytes,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Log is an open transfer log.
type Log struct{ f *os.File }

// LogPath is the log file of a base directory.
func LogPath(baseDir string) string { return filepath.Join(baseDir, ".anklume", "transfers.log") }

// OpenLog opens (creating it and its directory) the log of baseDir for
// appending.
func OpenLog(baseDir string) (*Log, error) {
	p := LogPath(baseDir)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("opening the transfer log: %w", err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the transfer log: %w", err)
	}
	return &Log{f: f}, nil
}

// Record appends e (Time and User filled in) as one line, in one write.
func (l *Log) Record(e Entry, data []byte, now time.Time) error {
	e.Time = now.UTC().Format(time.RFC3339Nano)
	e.User = "unknown"
	if u, err := user.Current(); err == nil {
		e.User = u.Username
	}
	if data != nil && e.Error == "" && e.Allowed {
		n := len(data)
		sum := sha256.Sum256(data)
		e.Bytes, e.SHA256 = &n, hex.EncodeToString(sum[:])
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing the transfer log: %w", err)
	}
	return nil
}

// Close closes the log.
func (l *Log) Close() error { return l.f.Close() }
