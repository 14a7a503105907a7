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
// near Limit: the watcher does not take the unswept garbage for live heap.
//
// The heap goal is sampled after every MiB, over six collections, and
// the lowest must stay near Limit. A watcher that reads HeapAlloc (the old
// bug) reads anything from the live heap to the goal, depending on how far
// the sweep got: this test catches it in about one run of three (one of
// five on a loaded machine). A watcher that goes through a low goal while
// it reads (the way before that) fails it one run in two. The program sleeps a millisecond after each MiB it throws
// away, at the pace of a program that does something with what it
// allocates: what is allocated while a collection marks counts as live
// for that collection, and a tight allocation loop on a loaded machine
// would make 8 MiB look like 17.
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
	const collections = 6
	var sink []byte
	var ms runtime.MemStats
	lowest := uint64(math.MaxUint64)
	for i := 0; i < 4000; i++ {
		sink = make([]byte, 1<<20) // garbage at once
		time.Sleep(time.Millisecond)
		runtime.ReadMemStats(&ms)
		if ms.NumForcedGC != before.NumForcedGC {
			t.Fatal("a collection was forced: the test cannot tell what the watcher set")
		}
		if ms.NumGC > before.NumGC {
			lowest = min(lowest, ms.NextGC)
		}
		if ms.NumGC >= before.NumGC+collections {
			break
		}
	}
	_ = sink
	if n := ms.NumGC - before.NumGC; n < collections {
		t.Fatalf("%d collections ran, want %d", n, collections)
	}
	if lowest < Limit*3/4 {
		t.Errorf("heap goal %.1f MiB with 8 MiB live between background collections, want about %d MiB",
			float64(lowest)/(1<<20), Limit>>20)
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
