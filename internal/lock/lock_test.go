package lock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/internal/incusx"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

func opts(srv incusx.Server, owner string, now time.Time, warn *bytes.Buffer) Options {
	o := Options{
		Server: srv, Command: "apply", Owner: owner, Host: "here",
		Now: func() time.Time { return now }, Alive: func(pid int) bool { return pid == 100 },
		Interval: time.Hour,
	}
	if warn != nil {
		o.Warn = warn
	}
	return o
}

func lockConfig(t *testing.T, f *incusx.Fake) api.ConfigMap {
	t.Helper()
	p, _, err := f.Project(context.Background(), Project)
	if err != nil {
		t.Fatal(err)
	}
	return p.Config
}

// TestAcquireRelease: Acquire is one request, the create of the lock
// project with every feature false and the five keys; Release renames it to
// its tombstone, checks it and deletes it, leaving no project behind.
func TestAcquireRelease(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	l, err := Acquire(ctx, opts(f, "alice@here:100", t0, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Log().Strings(); !slices.Equal(got, []string{"POST /1.0/projects"}) {
		t.Errorf("acquire requests %q, want the create alone", got)
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
	f.Log().Reset()
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("second release: %v", err)
	}
	wantReqs := []string{"POST /1.0/projects/anklume-lock", "GET /1.0/operations/ID/wait?timeout=-1",
		"GET /1.0/projects/" + Tombstone(l.ID()), "DELETE /1.0/projects/" + Tombstone(l.ID())}
	if got := normOps(f.Log().Strings()); !slices.Equal(got, wantReqs) {
		t.Errorf("release requests\n got %q\nwant %q", got, wantReqs)
	}
	if names := projectNames(t, f); !slices.Equal(names, []string{"default"}) {
		t.Errorf("projects after release %q, want default alone", names)
	}
}

// normOps replaces the fake's operation ids.
func normOps(reqs []string) []string {
	out := slices.Clone(reqs)
	for i, r := range out {
		if strings.HasPrefix(r, "GET /1.0/operations/") {
			out[i] = "GET /1.0/operations/ID/wait" + r[strings.Index(r, "/wait")+len("/wait"):]
		}
	}
	return out
}

func projectNames(t *testing.T, f *incusx.Fake) []string {
	t.Helper()
	ps, err := f.Projects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
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

// TestConcurrentRuns: runs that acquire and release at the same time are
// never two inside the lock at once, and each ends holding it or with the
// lock message.
func TestConcurrentRuns(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	var inside, most, won atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				l, err := Acquire(ctx, opts(f, fmt.Sprintf("r%d@there:%d", i, i), t0, nil))
				var held *HeldError
				if errors.As(err, &held) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				won.Add(1)
				inside.Add(-1)
				if err := l.Release(ctx); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if most.Load() != 1 || won.Load() == 0 {
		t.Errorf("at most %d holders at once (want 1), %d acquisitions", most.Load(), won.Load())
	}
	if names := projectNames(t, f); !slices.Equal(names, []string{"default"}) {
		t.Errorf("projects after the runs %q", names)
	}
}

// TestTakeoverRace: runs that take over the same stale lock at once end
// with one holder at a time; and a run that read the stale lock and acts
// only after another took it over cannot remove the new lock (the
// tombstone of the old one is in the way), which a takeover by delete
// would do.
func TestTakeoverRace(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	dead, err := Acquire(ctx, opts(f, "bob@here:999", t0, nil))
	if err != nil {
		t.Fatal(err)
	}
	dead.stopHeartbeat()
	var inside, most, won atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := Acquire(ctx, opts(f, fmt.Sprintf("r%d@here:100", i), t0, nil))
			var held *HeldError
			if errors.As(err, &held) {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			won.Add(1)
			inside.Add(-1)
			l.stopHeartbeat() // keep it: the others must find it held
		}()
	}
	wg.Wait()
	if most.Load() != 1 || won.Load() != 1 {
		t.Fatalf("%d holders at most at once, %d won; want exactly one", most.Load(), won.Load())
	}
	cur := lockConfig(t, f)
	if cur[KeyID] == dead.ID() {
		t.Fatal("the stale lock is still there")
	}
	tomb, _, err := f.Project(ctx, Tombstone(dead.ID()))
	if err != nil || tomb.Config[KeyID] != dead.ID() || tomb.Config[KeyRemoved] == "" {
		t.Fatalf("tombstone of the stale lock: %+v, %v", tomb, err)
	}
	// A late taker that read the stale lock before the takeover.
	late := opts(f, "late@here:100", t0, nil)
	late.defaults()
	if err := remove(ctx, late, dead.ID(), Tombstone(dead.ID()), true); !errors.Is(err, errMoved) {
		t.Fatalf("late removal: %v, want errMoved", err)
	}
	if got := lockConfig(t, f)[KeyID]; got != cur[KeyID] {
		t.Fatalf("the late taker removed the new lock (id %q, want %q)", got, cur[KeyID])
	}
	// The stale holder, were it still running, cannot release it either.
	if err := dead.remove(ctx); err == nil {
		t.Fatal("the old holder removed the new lock")
	}
	if got := lockConfig(t, f)[KeyID]; got != cur[KeyID] {
		t.Fatal("the old holder removed the new lock")
	}
}

// remove is Release without the heartbeat.
func (l *Lock) remove(ctx context.Context) error {
	return remove(ctx, l.opts, l.id, Tombstone(l.id), false)
}

// TestForceUnlockLiveHolder: unlock --force on a live run keeps the
// tombstone; a third run takes the lock; the forced run's Release then
// fails with who holds it and leaves that lock alone.
func TestForceUnlockLiveHolder(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	a, err := Acquire(ctx, opts(f, "alice@there:1", t0, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := Unlock(ctx, opts(f, "x@here:1", t0, nil), true); !ok || err != nil {
		t.Fatalf("force unlock: %v %v", ok, err)
	}
	c, err := Acquire(ctx, opts(f, "carol@there:3", t0, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.stopHeartbeat()
	if err := a.Release(ctx); err == nil || !strings.Contains(err.Error(), "carol@there:3") {
		t.Fatalf("release of the forced run: %v, want taken over by carol", err)
	}
	if lockConfig(t, f)[KeyID] != c.ID() {
		t.Fatal("the forced run removed the new lock")
	}
}

// TestOlderLockProject: the lock project of an older anklume (no id) is
// not a held lock: it is moved away and the lock taken.
func TestOlderLockProject(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	if err := f.CreateProject(ctx, api.ProjectsPost{Name: Project}); err != nil {
		t.Fatal(err)
	}
	var warn bytes.Buffer
	l, err := Acquire(ctx, opts(f, "alice@here:100", t0, &warn))
	if err != nil {
		t.Fatal(err)
	}
	defer l.stopHeartbeat()
	if warn.Len() != 0 {
		t.Errorf("warning for an older lock project: %q", warn.String())
	}
	if got := lockConfig(t, f)[KeyID]; got != l.ID() {
		t.Fatalf("lock id %q, want %q", got, l.ID())
	}
	if names := projectNames(t, f); !slices.Contains(names, "anklume-lock-old-"+l.ID()) {
		t.Errorf("projects %q, want the older one kept as anklume-lock-old-<id>", names)
	}
	// Older and newer versions sharing a server: another older project
	// later is moved away too.
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.CreateProject(ctx, api.ProjectsPost{Name: Project}); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(ctx, opts(f, "alice@here:100", t0, nil))
	if err != nil {
		t.Fatal(err)
	}
	l2.stopHeartbeat()
}

// TestCollect: tombstones older than KeepTombstone are deleted by the next
// takeover or unlock, younger ones kept, and a project that only looks
// like one (no lock keys) is never touched.
func TestCollect(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	mk := func(name string, cfg map[string]string) {
		t.Helper()
		if err := f.CreateProject(ctx, api.ProjectsPost{Name: name, ProjectPut: api.ProjectPut{Config: cfg}}); err != nil {
			t.Fatal(err)
		}
	}
	mk("anklume-lock-aa", map[string]string{KeyID: "aa", KeyRemoved: stamp(t0.Add(-21 * time.Minute))})
	mk("anklume-lock-bb", map[string]string{KeyID: "bb", KeyRemoved: stamp(t0.Add(-19 * time.Minute))})
	mk("anklume-lock-cc", map[string]string{KeyID: "cc", KeyHeartbeat: stamp(t0.Add(-30 * time.Minute))})
	mk("anklume-lock-mine", map[string]string{"user.x": "1"})
	stale, err := Acquire(ctx, opts(f, "bob@here:999", t0, nil))
	if err != nil {
		t.Fatal(err)
	}
	stale.stopHeartbeat()
	if _, ok, err := Unlock(ctx, opts(f, "x@here:1", t0, nil), false); !ok || err != nil {
		t.Fatalf("unlock: %v %v", ok, err)
	}
	want := []string{"anklume-lock-bb", "anklume-lock-mine", Tombstone(stale.ID()), "default"}
	slices.Sort(want)
	if got := projectNames(t, f); !slices.Equal(got, want) {
		t.Errorf("projects after unlock\n got %q\nwant %q", got, want)
	}
}

func TestIsLockProject(t *testing.T) {
	for name, want := range map[string]bool{"anklume-lock": true, "anklume-lock-0f": true, "anklume-locks": false, "lab": false} {
		if got := IsLockProject(name); got != want {
			t.Errorf("IsLockProject(%q) = %v", name, got)
		}
	}
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
	if _, _, err := f.Project(ctx, Project); !incusx.IsNotFound(err) {
		t.Fatalf("lock still there after unlock --force: %v", err)
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
