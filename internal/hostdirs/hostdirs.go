// Package hostdirs creates the host directories behind shared volumes
// and persistent data, owned so that unprivileged containers can use them.
//
// # Design
//
// A shared volume (`shared_volumes.<v>`) and a persistent-data entry
// (`persistent_data.<v>`) are plain host directories, bind-mounted into
// the containers as `disk` devices whose `source` is a host path:
// `<shared_volumes_base>/<v>` (or the volume's `source`) and
// `<persistent_data_base>/<domain>/<machine>/<v>`. Every domain's project
// lists exactly its own sources in `restricted.devices.disk.paths`, so
// Incus itself refuses a disk device of that project that points at an
// undeclared host path, at another domain's persistent data or, since
// the project keeps `features.storage.volumes`, at a volume of another
// project.
//
// Incus 6.0 refuses `shift` on a disk whose source is under
// `restricted.devices.disk.paths` ("The "shift" property cannot be used
// with a restricted source path"), so the directories are mounted with the
// containers' id mapping as they are. Every unprivileged container that
// does not ask for an isolated id map gets the same map: container id N is
// host id B+N, where B is the start of root's range in /etc/subuid and
// /etc/subgid (1000000 when there is none, as Incus does). anklume creates
// each missing directory owned by B:B (the containers' root), so:
//
//   - a shared volume is mode 1777 (like /tmp): every user of every rw
//     consumer, whatever its domain, creates files there, and a file keeps
//     its owner across containers (uid 1000 in one is uid 1000 in all);
//     only its owner or a container's root removes it; ro consumers get
//     `readonly: "true"` and read-only mounts (EROFS);
//   - a persistent-data directory is mode 0755, owned by the container's
//     root, who may chown it further from inside (ids stay in the range);
//   - on the host, the administrator reads and backs up the data as root
//     at those same paths; files show host ids B+N (`ls -n`). The parents
//     that anklume creates (the base directories, `<domain>/<machine>`)
//     are mode 0750, owned by root, so no other host user reaches the
//     world-writable shared directories.
//
// anklume never changes the owner or mode of a directory that exists,
// with one exception: a directory at a path anklume chose (persistent
// data, a shared volume without `source`) that is owned by root:root with
// mode 0750 was made by an older anklume, before this design; no
// container could use it. Apply hands it over (Repair): the final mode,
// then the containers' root as owner, and a note says so. Its contents
// keep their owners (the note gives the `chown -R` that hands them over
// too): only the host could write there, so they are the administrator's.
// A `source` the user points at keeps what the user gave it.
//
// A machine that moves to another domain takes its persistent data along
// (MoveDir): the directory is renamed, once the instance is stopped and no
// longer mounts it, to its path under the new domain, never copied and
// never merged into a directory that holds files.
//
// A directory
// appears at its final path only once its owner and mode are set (made
// under a temporary name, then renamed), so an interrupted apply leaves
// either nothing or a finished directory.
//
// Rejected alternatives: Incus custom volumes with `security.shifted`
// cannot be shared between projects while keeping
// `features.storage.volumes`, and turning that feature off exposes every
// volume of the default project to every domain, which no
// `restricted.*` key limits; a `dir` pool on shared_volumes_base hides the
// data under Incus' own layout (`custom/<project>_<volume>`); relaxing
// `restricted.devices.disk.paths` to allow `shift` would let a container's
// root write host-root-owned files, and any project user mount any path.
package hostdirs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Kind tells what a directory is for, which sets its mode.
type Kind int

// Directory kinds.
const (
	Shared     Kind = iota // a shared volume: mode 1777
	Persistent             // persistent data: mode 0755
)

// Mode is the permission of a directory of kind k.
func (k Kind) Mode() fs.FileMode {
	if k == Shared {
		return 0o777 | fs.ModeSticky
	}
	return 0o755
}

// ParentMode is the permission of the parent directories anklume creates.
const ParentMode fs.FileMode = 0o750

// Dir is one host directory to provide.
type Dir struct {
	Path string
	Kind Kind
	// Chosen is true when anklume chose Path (persistent data, a shared
	// volume without `source`): only then may Repair change it.
	Chosen bool
}

// Owner is a host uid and gid.
type Owner struct{ UID, GID int }

// DefaultBase is the first host id of the containers' map when
// /etc/subuid or /etc/subgid has no range for root (Incus' default).
const DefaultBase = 1000000

// ContainerRoot returns the host ids of the root user of unprivileged,
// non-isolated containers: the start of root's first range in /etc/subuid
// and /etc/subgid, read through readFile, or DefaultBase.
func ContainerRoot(readFile func(string) ([]byte, error)) Owner {
	return Owner{UID: subidBase(readFile, "/etc/subuid"), GID: subidBase(readFile, "/etc/subgid")}
}

func subidBase(readFile func(string) ([]byte, error), path string) int {
	data, err := readFile(path)
	if err != nil {
		return DefaultBase
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(f) != 3 || (f[0] != "root" && f[0] != "0") {
			continue
		}
		base, err1 := strconv.Atoi(f[1])
		size, err2 := strconv.Atoi(f[2])
		if err1 == nil && err2 == nil && base > 0 && size >= 65536 {
			return base
		}
	}
	return DefaultBase
}

// Create makes d.Path when it is missing: its missing parents with
// ParentMode and owned by the caller, then the directory itself with
// d.Kind.Mode() and owned by o. The directory is prepared under a
// temporary name next to it and renamed into place, so it never exists
// with the wrong owner. An existing d.Path is left as it is.
func Create(d Dir, o Owner) error {
	if _, err := os.Lstat(d.Path); err == nil {
		return nil
	}
	parent := filepath.Dir(d.Path)
	if err := os.MkdirAll(parent, ParentMode); err != nil {
		return err
	}
	tmp := filepath.Join(parent, "."+filepath.Base(d.Path)+".anklume-new")
	// Left over by an interrupted run: it is empty (nothing mounted it).
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove leftover %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	err := os.Chown(tmp, o.UID, o.GID)
	if err == nil {
		err = os.Chmod(tmp, d.Kind.Mode())
	}
	if err == nil {
		// RENAME_NOREPLACE: a directory that appeared meanwhile wins.
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, d.Path, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EEXIST) {
			err = nil
		}
	}
	_ = os.Remove(tmp) // gone after a rename; empty otherwise
	return err
}

// legacyMode is the mode older anklume versions gave the directories.
const legacyMode fs.FileMode = 0o750

// Ensure creates d when it is missing (Create), or repairs it when an
// older anklume made it (Repair). It returns a note for the user when it
// repaired d, "" otherwise.
func Ensure(d Dir, o Owner) (string, error) {
	if _, err := os.Lstat(d.Path); errors.Is(err, fs.ErrNotExist) {
		return "", Create(d, o)
	}
	return repair(d, o, Owner{})
}

// Legacy reports whether d, as it is on disk, is a directory made by an
// older anklume that Repair would hand over: at a path anklume chose, a
// real directory (not a link), owned by legacy (root:root for Repair) with
// mode 0750, or already with its final mode when an earlier repair was cut
// before the owner changed.
func Legacy(d Dir) bool { return legacy(d, Owner{}) }

func legacy(d Dir, old Owner) bool {
	if !d.Chosen {
		return false
	}
	st, err := os.Lstat(d.Path)
	if err != nil || !st.IsDir() {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || int(sys.Uid) != old.UID || int(sys.Gid) != old.GID {
		return false
	}
	m := st.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetuid | fs.ModeSetgid)
	return m == legacyMode || m == d.Kind.Mode()
}

// Repair hands a directory made by an older anklume (Legacy) to o: first
// its final mode, then its owner, so a run cut in between leaves a
// directory that is still Legacy and is finished by the next run. Its
// contents are not touched. It returns the note for the user, "" when d
// is not Legacy.
func Repair(d Dir, o Owner) (string, error) { return repair(d, o, Owner{}) }

func repair(d Dir, o, old Owner) (string, error) {
	if !legacy(d, old) {
		return "", nil
	}
	if err := os.Chmod(d.Path, d.Kind.Mode()); err != nil {
		return "", err
	}
	if err := os.Lchown(d.Path, o.UID, o.GID); err != nil {
		return "", err
	}
	return fmt.Sprintf("directory %s was made by an older anklume (owner root, mode 0750), which no container can use; "+
		"it now belongs to the containers' root %d:%d, mode %s. The files in it keep their owners: "+
		"chown -R %d:%d %s hands them over too", d.Path, o.UID, o.GID, d.Kind.Octal(), o.UID, o.GID, d.Path), nil
}

// Octal is Mode() as chmod writes it: 1777 or 0755.
func (k Kind) Octal() string {
	if k == Shared {
		return "1777"
	}
	return "0755"
}

// Move is the move of one persistent-data directory when its machine
// moves to another domain: from <base>/<old domain>/<machine>/<v> to
// <base>/<new domain>/<machine>/<v>.
type Move struct{ From, To string }

// ErrNotEmpty is returned by MoveDir when the destination already holds
// files: anklume never merges two data directories nor overwrites one.
var ErrNotEmpty = errors.New("destination exists and is not empty")

// MoveDir moves the persistent data of a machine that changes domain with
// one rename(2), so the data is, at every instant, whole at exactly one of
// the two paths (both are under persistent_data_base, one filesystem):
//
//   - From missing: nothing to move (an earlier run moved it, or the
//     machine never had the directory), nil;
//   - To missing or an empty directory (apply creates the desired
//     directories before any instance, so it usually is one): From is
//     renamed onto it (rename(2) replaces an empty directory atomically),
//     after creating To's missing parents with ParentMode;
//   - To not empty: ErrNotEmpty, and nothing is changed.
//
// The directory keeps its owner, mode and contents. The emptied parents
// under the old domain stay (anklume never deletes host directories).
func MoveDir(m Move) error {
	if _, err := os.Lstat(m.From); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if empty, err := emptyOrMissing(m.To); err != nil {
		return err
	} else if !empty {
		return fmt.Errorf("move %s to %s: %s: %w", m.From, m.To, m.To, ErrNotEmpty)
	}
	if err := os.MkdirAll(filepath.Dir(m.To), ParentMode); err != nil {
		return err
	}
	err := unix.Renameat2(unix.AT_FDCWD, m.From, unix.AT_FDCWD, m.To, 0)
	switch {
	case errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST):
		// Filled between the check and the rename: rename(2) refused.
		return fmt.Errorf("move %s to %s: %s: %w", m.From, m.To, m.To, ErrNotEmpty)
	case err != nil:
		return fmt.Errorf("move %s to %s: %w", m.From, m.To, err)
	}
	return nil
}

// EmptyOrMissing reports whether path is missing or an empty directory:
// where MoveDir may put a directory. A file or a link is not empty.
func EmptyOrMissing(path string) bool {
	ok, err := emptyOrMissing(path)
	return err == nil && ok
}

func emptyOrMissing(path string) (bool, error) {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if !st.IsDir() {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return len(names) == 0, nil
}
