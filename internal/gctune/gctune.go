// Package gctune sets the garbage collector of the anklume process for a
// command-line tool that usually ends within a fraction of a second.
//
// With Go's default (GOGC=100 and a 4 MiB first goal), a validate or a
// no-op plan runs several collections while its heap grows from nothing to
// a few MiB, and their mark workers cost a fifth to a third of the CPU
// time of the whole run (measured: validate of 30 machines, 80 ms of CPU
// with the default against 51 ms without collection, on a loaded 2-core
// machine). A big run suffers the same way whenever its live heap is
// small: a sync of 4,500 files drops to a few MiB of live heap after
// compiling, and with GOGC=100 it then collects every few MiB of output,
// each time handing pages back to the system that the next megabytes of
// output fault in again (the rendering of 200 domains × 20 machines took
// 110 ms against 75 ms with a larger goal, most of the difference in page
// faults).
//
// The policy is therefore: the heap goal is never below Limit, and above
// it the default holds.
//   - Start turns the collector off below a soft memory limit of Limit: a
//     short command never collects.
//   - After every collection a watcher reads the live heap and sets the
//     next goal to max(Limit, 2 × live): GOGC = 100 × (Limit − live) / live
//     while the live heap is under Limit/2, the default GOGC=100 above,
//     and no memory limit (a live heap near a limit would make the
//     collector run back to back).
//
// The peak heap of a run is thus about max(Limit, twice its live heap):
// at most Limit for a small run, what the default gives for a big one.
//
// GOGC or GOMEMLIMIT in the environment wins: Start then changes nothing.
package gctune

import (
	"math"
	"runtime"
	"runtime/debug"
)

// Limit is the heap goal below which the collector never runs.
const Limit = 64 << 20

// maxPercent bounds the GOGC the watcher sets for a tiny live heap.
const maxPercent = 100 * Limit / (1 << 20)

// Start applies the policy of the package comment unless getenv finds
// GOGC or GOMEMLIMIT set. It reports whether it changed anything.
func Start(getenv func(string) string) bool {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return false
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(Limit)
	watch()
	return true
}

// watch arms a finalizer that runs after the next collection: it sets
// the next heap goal from the live heap, then arms itself again.
func watch() {
	sentinel := new([16]byte)
	runtime.SetFinalizer(sentinel, func(*[16]byte) {
		// The limit first: whoever sees the new GOGC sees no limit.
		debug.SetMemoryLimit(math.MaxInt64)
		debug.SetGCPercent(maxPercent)
		debug.SetGCPercent(percentFor(heapGoal() * 100 / (100 + maxPercent)))
		watch()
	})
}

// percentFor returns the GOGC that makes the next heap goal
// max(Limit, 2 × live).
func percentFor(live uint64) int {
	if live >= Limit/2 {
		return 100
	}
	if live == 0 {
		return maxPercent
	}
	return min(int(100*(Limit-live)/live), maxPercent)
}

// heapGoal returns the heap size at which the next collection starts.
// With GOGC=p and no limit it is (100 + p)/100 times the heap the last
// collection found live (plus the stacks and globals), which is how the
// watcher reads the live heap: it sets GOGC to maxPercent, reads the goal
// and divides. HeapAlloc, right after a collection that ran in the
// background, still counts the garbage not yet swept (a sync with 11 MB
// live read 52 MB). The watcher goes through maxPercent, the highest GOGC
// it ever sets, so that no goal lower than the one it settles on holds
// for a moment: a lower one could start a collection while the watcher
// reads (the old way went through GOGC=100, twice the live heap, and a
// program allocating fast right after a collection could cross it).
// runtime.ReadMemStats rather than runtime/metrics, whose package init
// (0.25 ms, 95 allocations) every run of the command would pay; the stop
// of the world it costs happens only after a collection, which a short
// command never runs.
func heapGoal() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NextGC
}
