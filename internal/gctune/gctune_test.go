package gctune

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// percent returns the current GC percent (debug.SetGCPercent sets and
// returns the old one: set it back).
func percent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestEnvironmentWins: with GOGC or GOMEMLIMIT set, nothing changes.
func TestEnvironmentWins(t *testing.T) {
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		if Start(func(n string) string {
			if n == k {
				return "50"
			}
			return ""
		}) {
			t.Errorf("%s set: Start changed the collector", k)
		}
	}
}

// TestBigRunGetsTheDefault: the collector is off at first; once a
// collection finds more than Limit/2 of live heap, the default collector
// is back; once the live heap is small again, the goal is back at Limit.
func TestBigRunGetsTheDefault(t *testing.T) {
	defer debug.SetGCPercent(percent())
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	if !Start(func(string) string { return "" }) {
		t.Fatal("Start changed nothing")
	}
	if p := percent(); p != -1 {
		t.Fatalf("GC percent %d after Start, want off (-1)", p)
	}
	live := make([][]byte, 0, 64)
	for range 48 {
		live = append(live, make([]byte, 1<<20))
	}
	for i := 0; i < 100 && percent() != 100; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if p := percent(); p != 100 {
		t.Errorf("GC percent %d with %d MiB live, want the default 100", p, len(live))
	}
	runtime.KeepAlive(live)
	live = nil
	// With a few MiB live, the next goal is Limit again: a GOGC well
	// above the default.
	for i := 0; i < 100 && percent() <= 100; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if p := percent(); p <= 400 {
		t.Errorf("GC percent %d with a small live heap, want the goal back at Limit (GOGC above 400)", p)
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("memory limit %d after a collection, want none", l)
	}
}

// TestBackgroundCollection: after collections the program did not ask
// for (which leave garbage unswept), a small live heap still gets a goal
// of Limit: the watcher does not take the unswept garbage for live heap.
func TestBackgroundCollection(t *testing.T) {
	defer debug.SetGCPercent(percent())
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	if !Start(func(string) string { return "" }) {
		t.Fatal("Start changed nothing")
	}
	live := make([][]byte, 0, 8)
	for range 8 {
		live = append(live, make([]byte, 1<<20))
	}
	var sink []byte
	var ms runtime.MemStats
	for i := 0; i < 2000; i++ {
		sink = make([]byte, 1<<20) // garbage at once
		if i%16 == 15 {
			// At the pace of a program that does something with what
			// it allocates: what is allocated while a collection marks
			// counts as live for that collection.
			time.Sleep(time.Millisecond)
		}
		if i%100 == 99 {
			runtime.ReadMemStats(&ms)
			if ms.NumGC >= before.NumGC+3 && ms.NumForcedGC == before.NumForcedGC {
				break
			}
		}
	}
	_ = sink
	time.Sleep(20 * time.Millisecond) // the finalizer runs on its own goroutine
	runtime.ReadMemStats(&ms)
	if ms.NumGC < before.NumGC+3 {
		t.Fatalf("%d collections ran, want 3", ms.NumGC-before.NumGC)
	}
	if p := percent(); p <= 300 {
		t.Errorf("GC percent %d with 8 MiB live after background collections, want the goal at Limit (GOGC above 300)", p)
	}
	runtime.KeepAlive(live)
}

// TestPercentFor: the next goal is max(Limit, 2 × live).
func TestPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, maxPercent},
		{1, maxPercent},
		{1 << 20, 6300},
		{8 << 20, 700},
		{16 << 20, 300},
		{Limit/2 - 1, 100},
		{Limit / 2, 100},
		{Limit, 100},
		{10 * Limit, 100},
	} {
		if got := percentFor(c.live); got != c.want {
			t.Errorf("percentFor(%d) = %d, want %d", c.live, got, c.want)
		}
	}
}
