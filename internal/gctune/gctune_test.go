package gctune

import (
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
// is back.
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
}
