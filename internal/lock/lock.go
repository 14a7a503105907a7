// Package lock is the advisory lock that mutating commands take on the
// Incus server (SPEC.md §9.7). The lock lives in the config of a dedicated
// project, anklume-lock, and every write carries the project's ETag, so two
// runs that race for it cannot both win: the loser gets 412, reads again and
// finds the winner's lock.
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

// Project is the project that holds the lock.
const Project = "anklume-lock"

// The config keys of the lock.
const (
	KeyID        = "user.anklume.lock.id"
	KeyOwner     = "user.anklume.lock.owner"
	KeyCommand   = "user.anklume.lock.command"
	KeyAcquired  = "user.anklume.lock.acquired"
	KeyHeartbeat = "user.anklume.lock.heartbeat"
)

// Timing of SPEC.md §9.7.
const (
	// DefaultInterval is the heartbeat period.
	DefaultInterval = 60 * time.Second
	// StaleAfter is the age of a heartbeat that makes a lock stale.
	StaleAfter = 10 * time.Minute
)

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

// Error returns the message of §9.7 (without `error: `).
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
	// Settle is how long Acquire waits after its write before it reads
	// the lock back (DefaultSettle; negative: no wait). See Acquire.
	Settle time.Duration
}

// DefaultSettle is the wait between taking the lock and checking it.
const DefaultSettle = 300 * time.Millisecond

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
	if o.Settle == 0 {
		o.Settle = DefaultSettle
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

// infoOf reads the lock keys of a project config; ok is false without a lock.
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
	err  error // last heartbeat error
}

// ensureProject returns the lock project and its ETag, creating the
// project (all features false) when it is missing.
func ensureProject(ctx context.Context, srv incusx.Server) (*api.Project, string, error) {
	p, etag, err := srv.Project(ctx, Project)
	if err == nil {
		return p, etag, nil
	}
	if !incusx.IsNotFound(err) {
		return nil, "", fmt.Errorf("reading the lock: %w", err)
	}
	cfg := api.ConfigMap{}
	for _, k := range features {
		cfg[k] = "false"
	}
	req := api.ProjectsPost{Name: Project, ProjectPut: api.ProjectPut{
		Description: "anklume lock (do not use)", Config: cfg}}
	if err := srv.CreateProject(ctx, req); err != nil && !incusx.IsConflict(err) {
		return nil, "", fmt.Errorf("creating the lock project: %w", err)
	}
	p, etag, err = srv.Project(ctx, Project)
	if err != nil {
		return nil, "", fmt.Errorf("reading the lock: %w", err)
	}
	return p, etag, nil
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
// *HeldError.
func Acquire(ctx context.Context, opts Options) (*Lock, error) {
	opts.defaults()
	id, err := newID()
	if err != nil {
		return nil, err
	}
	warned := false
	for attempt := 0; ; attempt++ {
		p, etag, err := ensureProject(ctx, opts.Server)
		if err != nil {
			return nil, err
		}
		now := opts.Now()
		if cur, held := infoOf(p.Config); held {
			if !Stale(cur, now, opts.Host, opts.Alive) {
				return nil, &HeldError{Info: cur}
			}
			if !warned {
				fmt.Fprintf(opts.Warn, "warning: taking over stale lock held by %s since %s\n", cur.Owner, cur.Acquired)
				warned = true
			}
		}
		put := p.Writable()
		put.Config = cloneConfig(put.Config)
		put.Config[KeyID] = id
		put.Config[KeyOwner] = opts.Owner
		put.Config[KeyCommand] = opts.Command
		put.Config[KeyAcquired] = stamp(now)
		put.Config[KeyHeartbeat] = stamp(now)
		err = opts.Server.UpdateProject(ctx, Project, put, etag)
		if err == nil {
			// Incus 6.0 compares the ETag and writes in two steps, so two
			// runs that PUT at the same moment with the same ETag can
			// both succeed; the last write wins. Read the lock back after
			// a short wait: only the run whose id is still there holds it.
			if err := verify(ctx, opts, id); err != nil {
				return nil, err
			}
			break
		}
		if !incusx.IsPreconditionFailed(err) || attempt > 0 {
			return nil, fmt.Errorf("taking the lock: %w", err)
		}
	}
	l := &Lock{opts: opts, id: id, stop: make(chan struct{}), done: make(chan struct{})}
	go l.heartbeat(ctx)
	return l, nil
}

// verify waits opts.Settle and checks that the lock still carries id. A
// lock that another run wrote over is reported as held by that run.
func verify(ctx context.Context, opts Options, id string) error {
	if opts.Settle > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(opts.Settle):
		}
	}
	p, _, err := opts.Server.Project(ctx, Project)
	if err != nil {
		return fmt.Errorf("checking the lock: %w", err)
	}
	if p.Config[KeyID] == id {
		return nil
	}
	if cur, held := infoOf(p.Config); held {
		return &HeldError{Info: cur}
	}
	return fmt.Errorf("checking the lock: it was released by another run while being taken; retry")
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
			err := l.update(context.WithoutCancel(ctx), func(cfg api.ConfigMap) {
				cfg[KeyHeartbeat] = stamp(l.opts.Now())
			})
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
		}
	}
}

// Beat refreshes the heartbeat once, now (the heartbeat goroutine does it
// every Interval).
func (l *Lock) Beat(ctx context.Context) error {
	return l.update(ctx, func(cfg api.ConfigMap) { cfg[KeyHeartbeat] = stamp(l.opts.Now()) })
}

// update applies edit to the lock project's config if the lock is still
// this one, with the ETag, retrying once on 412.
func (l *Lock) update(ctx context.Context, edit func(api.ConfigMap)) error {
	for attempt := 0; ; attempt++ {
		p, etag, err := l.opts.Server.Project(ctx, Project)
		if err != nil {
			return fmt.Errorf("reading the lock: %w", err)
		}
		if p.Config[KeyID] != l.id {
			return fmt.Errorf("the lock was taken over by %s", p.Config[KeyOwner])
		}
		put := p.Writable()
		put.Config = cloneConfig(put.Config)
		edit(put.Config)
		err = l.opts.Server.UpdateProject(ctx, Project, put, etag)
		if err == nil {
			return nil
		}
		if !incusx.IsPreconditionFailed(err) || attempt > 0 {
			return fmt.Errorf("updating the lock: %w", err)
		}
	}
}

// Release stops the heartbeat and removes the lock keys, if the lock is
// still this one. It is safe to call more than once.
func (l *Lock) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		err = l.update(ctx, removeKeys)
	})
	return err
}

func removeKeys(cfg api.ConfigMap) {
	for _, k := range []string{KeyID, KeyOwner, KeyCommand, KeyAcquired, KeyHeartbeat} {
		delete(cfg, k)
	}
}

// Unlock removes a lock from the server for `anklume unlock`: a stale lock
// only, or any lock with force. It returns the removed lock and false when
// there was none. A fresh lock without force gives a *HeldError.
func Unlock(ctx context.Context, opts Options, force bool) (Info, bool, error) {
	opts.defaults()
	for attempt := 0; ; attempt++ {
		p, etag, err := opts.Server.Project(ctx, Project)
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
		put := p.Writable()
		put.Config = cloneConfig(put.Config)
		removeKeys(put.Config)
		err = opts.Server.UpdateProject(ctx, Project, put, etag)
		if err == nil {
			return cur, true, nil
		}
		if !incusx.IsPreconditionFailed(err) || attempt > 0 {
			return cur, false, fmt.Errorf("removing the lock: %w", err)
		}
	}
}
