// Package gctune sets the garbage collector of the anklume process for a
// command-line tool that usually ends within a fraction of a second.
//
// With Go's default (GOGC=100 and a 4 MiB first goal), a validate or a
// no-op plan runs several collections while its heap grows from nothing to
// a few MiB, and their mark workers cost a fifth to a third of the CPU
// time of the whole run (measured: validate of 30 machines, 80 ms of CPU
// with the default against 51 ms without collection, on a loaded 2-core
// machine). Start therefore turns the collector off below a soft memory
// limit, Limit: a short command never collects, and a longer one collects
// when the process reaches Limit. After each collection a watcher looks
// at the live heap: once it passes Limit/2, the run is a big one (a sync
// of thousands of files, a lab of hundreds of instances), and the default
// collector (GOGC=100, no limit) is put back, so that a live heap near the
// limit never makes the collector run back to back. The peak memory of a
// small run is thus at most about Limit, and that of a big one what the
// default gives.
//
// GOGC or GOMEMLIMIT in the environment wins: Start then changes nothing.
package gctune

import (
	"math"
	"runtime"
	"runtime/debug"
)

// Limit is the soft memory limit below which the collector stays off.
const Limit = 64 << 20

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

// watch arms a finalizer that runs after the next collection: it puts the
// default collector back once the live heap passes Limit/2, else arms
// itself again.
func watch() {
	sentinel := new([16]byte)
	runtime.SetFinalizer(sentinel, func(*[16]byte) {
		if liveHeap() > Limit/2 {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(math.MaxInt64)
			return
		}
		watch()
	})
}

// liveHeap returns the bytes of heap objects right after the last
// collection: the watcher runs just after one, when HeapAlloc is the live
// heap plus what was allocated since. runtime.ReadMemStats rather than
// runtime/metrics, whose package init (about half a millisecond) every
// run of the command would pay; the stop of the world it costs happens
// only after a collection, which a short command never runs.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
