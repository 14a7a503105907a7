// Package lock is the advisory lock that mutating commands (apply,
// destroy, flush, snapshot rollback) take on the Incus server.
//
// # The lock is a project that exists
//
// Holding the lock means having created the project anklume-lock (every
// feature false, so it holds nothing of its own). Acquire creates it with
// the holder in its config (user.anklume.lock.id, a random 128-bit hex id;
// .owner "<user>@<host>:<pid>"; .command; .acquired and .heartbeat, RFC 3339
// UTC) in one POST. Incus inserts a project and its config in one database
// transaction under a UNIQUE name, so of any number of runs that create it
// at the same moment exactly one succeeds: mutual exclusion is the
// database's, with no ETag and no wait. (Incus 6.0 compares ETags outside
// the transaction that writes, so the former lock, a PUT of these keys with
// an ETag, could be won by two runs and needed a 300 ms settle and a
// re-read.) A failed create is not trusted for its status code (6.0 answers
// 500 "UNIQUE constraint failed"): the run reads the project and finds the
// holder, or finds it gone and creates again.
//
// # A lock leaves only by a rename to its tombstone
//
// The lock with id X stops being the lock in one way only: the project is
// renamed to its tombstone anklume-lock-X, by its holder's Release, by a
// run taking over a stale lock, or by anklume unlock. Incus renames in one
// transaction that checks that the new name is free and the old one exists.
// Hence:
//
//   - of two runs removing the same lock X at the same time (two runs
//     taking over the same stale lock, or the holder releasing while
//     unlock --force removes it), one renames it and the other fails, and
//     neither touches anything else;
//   - a run that read X and acts late cannot remove the newer lock Y that
//     replaced X: X's tombstone exists, so renaming anklume-lock to it
//     fails. Deleting by name instead would delete Y, and both runs would
//     then create a lock and believe they hold it: that is the race a
//     delete-based takeover loses.
//
// After a failed rename a run reads the lock again and starts over. The
// tombstone of a takeover or an unlock is kept (with user.anklume.lock.removed)
// for 2×StaleAfter, so that a late remover finds it, then deleted by a later
// takeover or unlock; the holder's Release deletes its own tombstone at
// once (a late remover of a lock that was released normally would have
// judged a live run stale, see below). After a rename the run reads the
// tombstone back: if it holds another id than the one meant, the
// assumptions below were broken, and the run renames it back.
//
// # Stale locks
//
// A lock is stale when its heartbeat (refreshed every Interval, 60 s) is
// more than StaleAfter (10 minutes) old, or when its owner names this host
// and no process with its pid is alive (an apply killed with SIGKILL does
// not block the next one for ten minutes). Exclusion holds as long as a live
// run is never silent for StaleAfter (its heartbeat would make it look
// dead) and unlock --force is not used on a live run: that run goes on
// without the lock, by the user's decision; it notices at its next
// heartbeat, and its Release then leaves the new lock alone.
package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/internal/incusx"
)

// Project is the project whose existence is the lock.
const Project = "anklume-lock"

// IsLockProject reports whether a project is the lock or one of its
// tombstones (anklume-lock-<id>): never a domain, an import or an orphan.
func IsLockProject(name string) bool {
	return name == Project || strings.HasPrefix(name, Project+"-")
}

// Tombstone is the name a lock with id takes when it is removed.
func Tombstone(id string) string { return Project + "-" + id }

// tombstoneOf is where a run moves the lock id: its tombstone, or for the
// lock project of an older anklume (no id, and no lock: that anklume kept
// the project and only set and removed keys in it) a name of this run,
// anklume-lock-old-<run id>, since such projects come and go under the
// same (empty) id while older and newer versions share a server. Two runs
// moving the same older project both succeed only if the second moves the
// first one's new lock; its check of the tombstone then sees an id and
// puts it back.
func tombstoneOf(id, run string) string {
	if id == "" {
		return Tombstone("old-" + run)
	}
	return Tombstone(id)
}

// The config keys of the lock.
const (
	KeyID        = "user.anklume.lock.id"
	KeyOwner     = "user.anklume.lock.owner"
	KeyCommand   = "user.anklume.lock.command"
	KeyAcquired  = "user.anklume.lock.acquired"
	KeyHeartbeat = "user.anklume.lock.heartbeat"
	// KeyRemoved is when a takeover or an unlock made the lock a
	// tombstone.
	KeyRemoved = "user.anklume.lock.removed"
)

// Timing.
const (
	// DefaultInterval is the heartbeat period.
	DefaultInterval = 60 * time.Second
	// StaleAfter is the age of a heartbeat that makes a lock stale.
	StaleAfter = 10 * time.Minute
	// KeepTombstone is how long the tombstone of a takeover or an unlock
	// is kept.
	KeepTombstone = 2 * StaleAfter
)

// attempts bounds the create, read, take over loop of Acquire: each round
// either takes the lock, finds it held, or sees another run remove it.
const attempts = 5

// features are the project features, all "false" so that the lock project
// holds nothing of its own.
var features = []string{
	"features.images", "features.networks", "features.networks.zones",
	"features.profiles", "features.storage.buckets", "features.storage.volumes",
}

// Info is a lock as stored on the server.
type Info struct {
	ID        string
	Owner     string
	Command   string
	Acquired  string
	Heartbeat string
}

// HeldError is a fresh lock held by another run.
type HeldError struct{ Info Info }

// Error returns the lock message (without `error: `).
func (e *HeldError) Error() string {
	return fmt.Sprintf("another anklume run holds the lock on this Incus server (%s, %s, since %s); retry later, or run anklume unlock if it is stale",
		e.Info.Owner, e.Info.Command, e.Info.Acquired)
}

// Options configure Acquire and Unlock. Only Server is required.
type Options struct {
	Server incusx.Server
	// Command is the command recorded in the lock ("apply").
	Command string
	// Owner is "<user>@<host>:<pid>"; empty means this process.
	Owner string
	// Host is this machine's host name, compared with the owner of a lock
	// to find one left by a dead process; empty means os.Hostname.
	Host string
	// Now is the clock (time.Now).
	Now func() time.Time
	// Alive reports whether a process of this host is alive (kill -0).
	Alive func(pid int) bool
	// Interval is the heartbeat period (DefaultInterval).
	Interval time.Duration
	// Warn receives the takeover warning.
	Warn io.Writer
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Alive == nil {
		o.Alive = pidAlive
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.Owner == "" {
		name := "unknown"
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		o.Owner = fmt.Sprintf("%s@%s:%d", name, o.Host, os.Getpid())
	}
	if o.Warn == nil {
		o.Warn = io.Discard
	}
}

// pidAlive reports whether a process with pid exists on this host.
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// infoOf reads the lock keys of a project config; ok is false without a
// lock id (a lock project left by an older anklume).
func infoOf(cfg map[string]string) (Info, bool) {
	i := Info{ID: cfg[KeyID], Owner: cfg[KeyOwner], Command: cfg[KeyCommand],
		Acquired: cfg[KeyAcquired], Heartbeat: cfg[KeyHeartbeat]}
	return i, i.ID != ""
}

// Stale reports whether a lock may be taken over: its heartbeat is more
// than StaleAfter old (or unreadable), or its owner names host and no
// process with its pid is alive.
func Stale(i Info, now time.Time, host string, alive func(int) bool) bool {
	hb, err := time.Parse(time.RFC3339, i.Heartbeat)
	if err != nil || now.Sub(hb) > StaleAfter {
		return true
	}
	rest, pidText, ok := cutLast(i.Owner, ":")
	if !ok {
		return false
	}
	_, ownerHost, ok := cutLast(rest, "@")
	if !ok || ownerHost != host {
		return false
	}
	pid, err := strconv.Atoi(pidText)
	return err == nil && !alive(pid)
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// Lock is a held lock. Release it when the command ends.
type Lock struct {
	opts Options
	id   string

	stop chan struct{}
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	err  error  // last heartbeat error
	lost string // owner of the lock that replaced this one, once seen
}

// newID returns a random 128-bit hex id.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating a lock id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Acquire takes the lock, taking over a stale one with a warning, and
// starts the heartbeat. A fresh lock held by another run gives a
// *HeldError. The common case is one request: the create that succeeds.
func Acquire(ctx context.Context, opts Options) (*Lock, error) {
	opts.defaults()
	id, err := newID()
	if err != nil {
		return nil, err
	}
	warned := false
	var last error
	for range attempts {
		now := opts.Now()
		cfg := api.ConfigMap{KeyID: id, KeyOwner: opts.Owner, KeyCommand: opts.Command,
			KeyAcquired: stamp(now), KeyHeartbeat: stamp(now)}
		for _, k := range features {
			cfg[k] = "false"
		}
		req := api.ProjectsPost{Name: Project, ProjectPut: api.ProjectPut{
			Description: "anklume lock (do not use)", Config: cfg}}
		cerr := opts.Server.CreateProject(ctx, req)
		if cerr == nil {
			l := &Lock{opts: opts, id: id, stop: make(chan struct{}), done: make(chan struct{})}
			go l.heartbeat(ctx)
			return l, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("taking the lock: %w", ctx.Err())
		}
		p, _, err := opts.Server.Project(ctx, Project)
		if incusx.IsNotFound(err) {
			last = cerr // released between the create and the read
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("taking the lock: %w", errors.Join(cerr, err))
		}
		cur, held := infoOf(p.Config)
		if held && !Stale(cur, now, opts.Host, opts.Alive) {
			return nil, &HeldError{Info: cur}
		}
		if held && !warned {
			fmt.Fprintf(opts.Warn, "warning: taking over stale lock held by %s since %s\n", cur.Owner, cur.Acquired)
			warned = true
		}
		// Either this run removes cur, or another one did: both end with
		// a new round.
		if err := remove(ctx, opts, cur.ID, tombstoneOf(cur.ID, id), true); err != nil {
			last = err
			continue
		}
		collect(ctx, opts)
	}
	return nil, fmt.Errorf("taking the lock: gave up after %d attempts: %w", attempts, last)
}

// errMoved is a rename that did not happen: another run removed the lock
// first.
var errMoved = errors.New("the lock changed while it was being removed")

// remove renames the lock with id to its tombstone tomb (see the package doc),
// checks that the tombstone holds id, and either deletes it (!keep) or
// stamps it with KeyRemoved. A failed rename is errMoved wrapping the
// Incus error: read the lock again.
func remove(ctx context.Context, opts Options, id, tomb string, keep bool) error {
	if err := opts.Server.RenameProject(ctx, Project, tomb); err != nil {
		return fmt.Errorf("%w: %w", errMoved, err)
	}
	p, etag, err := opts.Server.Project(ctx, tomb)
	if err != nil {
		return fmt.Errorf("checking the removed lock: %w", err)
	}
	if got := p.Config[KeyID]; got != id {
		// Only possible if the tombstone of id was collected while a run
		// still meant to remove id: put the lock it moved back.
		if err := opts.Server.RenameProject(ctx, tomb, Project); err != nil {
			return fmt.Errorf("the lock of %s was removed by mistake and could not be put back (%w); if no run holds it, delete the project %s",
				p.Config[KeyOwner], err, tomb)
		}
		return errMoved
	}
	if !keep {
		if err := opts.Server.DeleteProject(ctx, tomb); err != nil {
			return fmt.Errorf("releasing the lock: %w", err)
		}
		return nil
	}
	put := p.Writable()
	put.Config = cloneConfig(put.Config)
	put.Config[KeyRemoved] = stamp(opts.Now())
	if err := opts.Server.UpdateProject(ctx, tomb, put, etag); err != nil {
		fmt.Fprintf(opts.Warn, "warning: stamping the removed lock %s: %s\n", tomb, err)
	}
	return nil
}

// collect deletes the tombstones kept longer than KeepTombstone (best
// effort: a failure leaves them for the next takeover or unlock).
func collect(ctx context.Context, opts Options) {
	ps, err := opts.Server.Projects(ctx)
	if err != nil {
		return
	}
	now := opts.Now()
	for _, p := range ps {
		if p.Name == Project || !IsLockProject(p.Name) || (p.Config[KeyID] == "" && p.Config[KeyRemoved] == "") {
			continue
		}
		when := p.Config[KeyRemoved]
		if when == "" {
			when = p.Config[KeyHeartbeat] // a release that died before its delete
		}
		t, err := time.Parse(time.RFC3339, when)
		if err == nil && now.Sub(t) <= KeepTombstone {
			continue
		}
		_ = opts.Server.DeleteProject(ctx, p.Name)
	}
}

func cloneConfig(c map[string]string) api.ConfigMap {
	out := api.ConfigMap{}
	for k, v := range c {
		out[k] = v
	}
	return out
}

// ID returns the lock id.
func (l *Lock) ID() string { return l.id }

// heartbeat refreshes the heartbeat key every Interval until Release.
func (l *Lock) heartbeat(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			err := l.Beat(context.WithoutCancel(ctx))
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
		}
	}
}

// Beat refreshes the heartbeat once, now (the heartbeat goroutine does it
// every Interval). A lock that is no longer this one is remembered as lost:
// Release then leaves it alone.
func (l *Lock) Beat(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		p, etag, err := l.opts.Server.Project(ctx, Project)
		if incusx.IsNotFound(err) {
			return l.markLost("nobody (it was removed)")
		}
		if err != nil {
			return fmt.Errorf("reading the lock: %w", err)
		}
		if p.Config[KeyID] != l.id {
			return l.markLost(p.Config[KeyOwner])
		}
		put := p.Writable()
		put.Config = cloneConfig(put.Config)
		put.Config[KeyHeartbeat] = stamp(l.opts.Now())
		err = l.opts.Server.UpdateProject(ctx, Project, put, etag)
		if err == nil {
			return nil
		}
		if !incusx.IsPreconditionFailed(err) || attempt > 0 {
			return fmt.Errorf("updating the lock: %w", err)
		}
	}
}

func (l *Lock) markLost(owner string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if owner == "" {
		owner = "an older anklume"
	}
	l.lost = owner
	return fmt.Errorf("the lock was taken over by %s", owner)
}

// Release stops the heartbeat and removes the lock, if it is still this
// one. It is safe to call more than once.
func (l *Lock) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		lost := l.lost
		l.mu.Unlock()
		if lost != "" {
			err = fmt.Errorf("the lock was taken over by %s", lost)
			return
		}
		err = remove(ctx, l.opts, l.id, Tombstone(l.id), false)
		if errors.Is(err, errMoved) {
			// Removed by someone else (unlock --force, or a takeover):
			// say by whom if it is still there.
			p, _, rerr := l.opts.Server.Project(ctx, Project)
			switch {
			case incusx.IsNotFound(rerr):
				err = errors.New("the lock was removed by another run")
			case rerr == nil && p.Config[KeyID] != l.id:
				err = fmt.Errorf("the lock was taken over by %s", p.Config[KeyOwner])
			}
		}
	})
	return err
}

// Unlock removes a lock from the server for `anklume unlock`: a stale lock
// only, or any lock with force. It returns the removed lock and false when
// there was none. A fresh lock without force gives a *HeldError. The lock
// is renamed to its tombstone, which is kept so that its holder, if it is
// still running, cannot remove a newer lock on release.
func Unlock(ctx context.Context, opts Options, force bool) (Info, bool, error) {
	opts.defaults()
	p, _, err := opts.Server.Project(ctx, Project)
	if incusx.IsNotFound(err) {
		return Info{}, false, nil
	}
	if err != nil {
		return Info{}, false, fmt.Errorf("reading the lock: %w", err)
	}
	cur, held := infoOf(p.Config)
	if !held {
		return Info{}, false, nil
	}
	if !force && !Stale(cur, opts.Now(), opts.Host, opts.Alive) {
		return cur, false, &HeldError{Info: cur}
	}
	if err := remove(ctx, opts, cur.ID, Tombstone(cur.ID), true); err != nil {
		return cur, false, fmt.Errorf("removing the lock: %w; run anklume unlock again", err)
	}
	collect(ctx, opts)
	return cur, true, nil
}
