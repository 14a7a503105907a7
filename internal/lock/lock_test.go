package lock

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/internal/incusx"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

func opts(srv incusx.Server, owner string, now time.Time, warn *bytes.Buffer) Options {
	return Options{
		Server: srv, Command: "apply", Owner: owner, Host: "here",
		Now: func() time.Time { return now }, Alive: func(pid int) bool { return pid == 100 },
		Interval: time.Hour, Warn: warn,
	}
}

func lockConfig(t *testing.T, f *incusx.Fake) api.ConfigMap {
	t.Helper()
	p, _, err := f.Project(context.Background(), Project)
	if err != nil {
		t.Fatal(err)
	}
	return p.Config
}

// TestAcquireRelease: the lock project is created on demand with every
// feature false, holds the five keys while locked and none after release
// (SPEC.md §9.7, §16 #61).
func TestAcquireRelease(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	l, err := Acquire(ctx, opts(f, "alice@here:100", t0, nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg := lockConfig(t, f)
	for _, k := range features {
		if cfg[k] != "false" {
			t.Errorf("%s = %q, want false", k, cfg[k])
		}
	}
	want := map[string]string{KeyOwner: "alice@here:100", KeyCommand: "apply",
		KeyAcquired: "2026-11-29T10:00:00Z", KeyHeartbeat: "2026-11-29T10:00:00Z", KeyID: l.ID()}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("%s = %q, want %q", k, cfg[k], v)
		}
	}
	if len(l.ID()) != 32 {
		t.Errorf("id %q is not 128-bit hex", l.ID())
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("second release: %v", err)
	}
	for k := range want {
		if _, ok := lockConfig(t, f)[k]; ok {
			t.Errorf("%s still set after release", k)
		}
	}
	// Every write carried an ETag: the fake refuses stale ones, and no
	// PATCH was ever sent.
	for _, r := range f.Log().Strings() {
		if strings.HasPrefix(r, "PATCH") {
			t.Errorf("PATCH sent: %s", r)
		}
	}
}

// TestAcquireHeldStale: a fresh lock of another run refuses with the exact
// message; a heartbeat 11 minutes old, or a dead pid of this host, is taken
// over at once with the warning; a live pid on another host is respected
// (SPEC.md §16 #61).
func TestAcquireHeldStale(t *testing.T) {
	tests := []struct {
		name     string
		owner    string
		age      time.Duration
		wantHeld bool
	}{
		{"fresh, live pid here", "bob@here:100", time.Minute, true},
		{"fresh, other host", "bob@there:999", 9 * time.Minute, true},
		{"heartbeat 11 minutes old", "bob@there:999", 11 * time.Minute, false},
		{"dead pid on this host", "bob@here:999", time.Second, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := incusx.NewFake()
			then := t0.Add(-tc.age)
			first, err := Acquire(ctx, opts(f, tc.owner, then, nil))
			if err != nil {
				t.Fatal(err)
			}
			defer first.stopHeartbeat()
			var warn bytes.Buffer
			l, err := Acquire(ctx, opts(f, "alice@here:100", t0, &warn))
			if tc.wantHeld {
				var held *HeldError
				if !errors.As(err, &held) {
					t.Fatalf("err = %v, want HeldError", err)
				}
				want := "another anklume run holds the lock on this Incus server (" + tc.owner +
					", apply, since " + stamp(then) + "); retry later, or run anklume unlock if it is stale"
				if err.Error() != want {
					t.Errorf("message\n got %s\nwant %s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.stopHeartbeat()
			want := "warning: taking over stale lock held by " + tc.owner + " since " + stamp(then) + "\n"
			if warn.String() != want {
				t.Errorf("warning %q, want %q", warn.String(), want)
			}
			if got := lockConfig(t, f)[KeyOwner]; got != "alice@here:100" {
				t.Errorf("owner %q after takeover", got)
			}
			// The old holder can no longer release the new lock.
			if err := first.Release(ctx); err == nil {
				t.Error("old holder released the new lock")
			}
			if lockConfig(t, f)[KeyID] != l.ID() {
				t.Error("old holder removed the new lock")
			}
		})
	}
}

// stopHeartbeat stops the heartbeat goroutine without touching the server.
func (l *Lock) stopHeartbeat() {
	l.once.Do(func() { close(l.stop); <-l.done })
}

// racer writes a competing lock just before the first PUT of the lock
// project, so that PUT fails with 412.
type racer struct {
	incusx.Server
	raced bool
	owner string
}

func (r *racer) UpdateProject(ctx context.Context, name string, put api.ProjectPut, etag string) error {
	if !r.raced {
		r.raced = true
		p, et, err := r.Server.Project(ctx, name)
		if err != nil {
			return err
		}
		cfg := p.Writable()
		cfg.Config = cloneConfig(cfg.Config)
		cfg.Config[KeyID], cfg.Config[KeyOwner], cfg.Config[KeyCommand] = "ffff", r.owner, "destroy"
		cfg.Config[KeyAcquired], cfg.Config[KeyHeartbeat] = stamp(t0), stamp(t0)
		if err := r.Server.UpdateProject(ctx, name, cfg, et); err != nil {
			return err
		}
	}
	return r.Server.UpdateProject(ctx, name, put, etag)
}

// TestAcquireRace: a PUT that loses the race gets 412, re-reads, and sees
// the winner's lock; a stale winner is taken over on the retry.
func TestAcquireRace(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	if _, err := ensureProjectFor(ctx, f); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(ctx, opts(&racer{Server: f, owner: "carol@there:5"}, "alice@here:100", t0, nil))
	var held *HeldError
	if !errors.As(err, &held) || held.Info.Owner != "carol@there:5" || held.Info.Command != "destroy" {
		t.Fatalf("err = %v, want the winner's lock", err)
	}

	f2 := incusx.NewFake()
	if _, err := ensureProjectFor(ctx, f2); err != nil {
		t.Fatal(err)
	}
	var warn bytes.Buffer
	l, err := Acquire(ctx, opts(&racer{Server: f2, owner: "carol@here:999"}, "alice@here:100", t0, &warn))
	if err != nil {
		t.Fatalf("stale winner: %v", err)
	}
	l.stopHeartbeat()
	if !strings.Contains(warn.String(), "carol@here:999") {
		t.Errorf("no takeover warning: %q", warn.String())
	}
}

func ensureProjectFor(ctx context.Context, srv incusx.Server) (*api.Project, error) {
	p, _, err := ensureProject(ctx, srv)
	return p, err
}

// TestHeartbeat: the heartbeat key advances every interval.
func TestHeartbeat(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	var mu = make(chan time.Time, 1)
	now := t0
	mu <- now
	o := opts(f, "alice@here:100", t0, nil)
	o.Interval = 5 * time.Millisecond
	o.Now = func() time.Time {
		n := <-mu
		n = n.Add(time.Minute)
		mu <- n
		return n
	}
	l, err := Acquire(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	acquired := lockConfig(t, f)[KeyHeartbeat]
	deadline := time.Now().Add(5 * time.Second)
	for lockConfig(t, f)[KeyHeartbeat] == acquired {
		if time.Now().After(deadline) {
			t.Fatal("heartbeat never advanced")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestUnlock: unlock refuses a fresh lock, removes a stale one, and with
// force removes any lock.
func TestUnlock(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	if _, ok, err := Unlock(ctx, opts(f, "x@here:1", t0, nil), false); ok || err != nil {
		t.Fatalf("no lock project: ok=%v err=%v", ok, err)
	}
	l, err := Acquire(ctx, opts(f, "bob@there:7", t0, nil))
	if err != nil {
		t.Fatal(err)
	}
	l.stopHeartbeat()
	var held *HeldError
	if _, ok, err := Unlock(ctx, opts(f, "x@here:1", t0.Add(time.Minute), nil), false); ok || !errors.As(err, &held) {
		t.Fatalf("fresh lock: ok=%v err=%v", ok, err)
	}
	info, ok, err := Unlock(ctx, opts(f, "x@here:1", t0.Add(time.Minute), nil), true)
	if !ok || err != nil || info.Owner != "bob@there:7" {
		t.Fatalf("force: %+v ok=%v err=%v", info, ok, err)
	}
	if _, held := infoOf(lockConfig(t, f)); held {
		t.Fatal("lock still held after unlock --force")
	}
	l2, err := Acquire(ctx, opts(f, "bob@there:7", t0, nil))
	if err != nil {
		t.Fatal(err)
	}
	l2.stopHeartbeat()
	if _, ok, err := Unlock(ctx, opts(f, "x@here:1", t0.Add(11*time.Minute), nil), false); !ok || err != nil {
		t.Fatalf("stale: ok=%v err=%v", ok, err)
	}
}

// overwriter is a Server whose project update succeeds and is then written
// over by another run, as happens on Incus 6.0 when two runs PUT with the
// same ETag at once (the ETag check is not atomic there).
type overwriter struct {
	incusx.Server
	done bool
}

func (o *overwriter) UpdateProject(ctx context.Context, name string, put api.ProjectPut, etag string) error {
	if err := o.Server.UpdateProject(ctx, name, put, etag); err != nil || o.done {
		return err
	}
	o.done = true
	p, et, err := o.Server.Project(ctx, name)
	if err != nil {
		return err
	}
	other := p.Writable()
	other.Config = cloneConfig(other.Config)
	other.Config[KeyID] = "ffff"
	other.Config[KeyOwner] = "bob@there:7"
	other.Config[KeyCommand] = "apply"
	return o.Server.UpdateProject(ctx, name, other, et)
}

// TestAcquireLostWrite: a run whose successful write was overwritten by a
// concurrent one does not believe it holds the lock; it reports the
// winner (SPEC.md §9.7, §16 #61).
func TestAcquireLostWrite(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	o := opts(&overwriter{Server: f}, "alice@here:100", t0, nil)
	o.Settle = time.Millisecond
	_, err := Acquire(ctx, o)
	var held *HeldError
	if !errors.As(err, &held) || held.Info.Owner != "bob@there:7" {
		t.Fatalf("err = %v, want the lock held by bob", err)
	}
	if got := lockConfig(t, f)[KeyID]; got != "ffff" {
		t.Fatalf("the winner's lock was changed: id %q", got)
	}
}
