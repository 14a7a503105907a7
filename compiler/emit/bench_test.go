package emit_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/internal/synthinfra"
)

// syncOnce is one whole `anklume sync` without the CLI: compile, emit,
// plan and apply under base. It returns the number of files in the tree.
func syncOnce(b *testing.B, fsys fstest.MapFS, base string) int {
	res, dl, err := compiler.Compile(fsys, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, testOptions())
	if err != nil || res == nil {
		b.Fatalf("compile: %v\n%v", err, dl)
	}
	files := emit.Tree(res.Model)
	p, err := tree.NewPlan(base, files, false)
	if err != nil {
		b.Fatalf("plan: %v", err)
	}
	if err := p.Apply(io.Discard, tree.Options{}); err != nil {
		b.Fatalf("apply: %v", err)
	}
	return len(files)
}

// BenchmarkSyncCold200x20 measures a first sync of 200 domains × 20
// machines (about 4400 files) into an empty directory. Issue 3 target:
// 30× faster than v1's 4.6 s, that is under about 150 ms.
func BenchmarkSyncCold200x20(b *testing.B) {
	fsys := fstest.MapFS{"infra.yml": {Data: []byte(synthinfra.Zones(200, 20))}}
	root := b.TempDir()
	n, i := 0, 0
	for b.Loop() {
		b.StopTimer()
		base := filepath.Join(root, fmt.Sprint(i))
		i++
		b.StartTimer()
		n = syncOnce(b, fsys, base)
		b.StopTimer()
		if err := os.RemoveAll(base); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n), "files/op")
}

// BenchmarkSyncNoChange200x20 measures a re-sync of an up-to-date tree of
// the same size: everything is read and compared, nothing is written.
// Issue 3 target: 30× faster than v1's 3.7 s, that is under about 120 ms.
func BenchmarkSyncNoChange200x20(b *testing.B) {
	fsys := fstest.MapFS{"infra.yml": {Data: []byte(synthinfra.Zones(200, 20))}}
	base := b.TempDir()
	n := syncOnce(b, fsys, base)
	for b.Loop() {
		syncOnce(b, fsys, base)
	}
	b.ReportMetric(float64(n), "files/op")
}

// BenchmarkTree200x20 measures emit.Tree alone on the resolved 200 × 20
// model (the share of rendering in a sync).
func BenchmarkTree200x20(b *testing.B) {
	m := compileText(b, []byte(synthinfra.Zones(200, 20)))
	n := 0
	for b.Loop() {
		n = len(emit.Tree(m))
	}
	b.ReportMetric(float64(n), "files/op")
}

// BenchmarkPlanNoChange200x20 measures tree.NewPlan alone over an
// up-to-date tree (reading and splicing every file).
func BenchmarkPlanNoChange200x20(b *testing.B) {
	files := emit.Tree(compileText(b, []byte(synthinfra.Zones(200, 20))))
	base := b.TempDir()
	syncDir(b, base, files)
	for b.Loop() {
		if _, err := tree.NewPlan(base, files, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(files)), "files/op")
}

// writeFloor writes every file of p's new generation to the same paths
// under base with plain writes (MkdirAll + WriteFile), then one syncfs: the
// least a sync that leaves the bytes on disk can cost. It returns the time
// of the writes and of the whole.
func writeFloor(b *testing.B, base string, files []tree.File) (writes, total time.Duration) {
	p, err := tree.NewPlan(base, files, false) // the bytes sync would write, computed untimed
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for _, c := range p.Changes {
		full := filepath.Join(base, filepath.FromSlash(c.Path))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(full, c.New, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	writes = time.Since(start)
	d, err := os.Open(base)
	if err != nil {
		b.Fatal(err)
	}
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		b.Fatal(err)
	}
	_ = d.Close()
	return writes, time.Since(start)
}

// BenchmarkSyncVsFloor200x20 prints, side by side and per iteration, the
// floor (the same bytes written to the same paths with plain writes, then
// one syncfs), a cold `anklume sync` (compile, emit, plan, write) into an
// empty directory of the same disk, and a re-sync with nothing to change.
// Figures: floor-ms, floor-writes-ms (without the syncfs), cold-ms,
// resync-ms and cold/floor.
func BenchmarkSyncVsFloor200x20(b *testing.B) {
	fsys := fstest.MapFS{"infra.yml": {Data: []byte(synthinfra.Zones(200, 20))}}
	files := emit.Tree(compileText(b, []byte(synthinfra.Zones(200, 20))))
	root := b.TempDir()
	var floor, floorW, cold, resync time.Duration
	n, i := 0, 0
	for b.Loop() {
		fb, sb := filepath.Join(root, fmt.Sprint("floor", i)), filepath.Join(root, fmt.Sprint("sync", i))
		i++
		w, f := writeFloor(b, fb, files)
		floorW += w
		floor += f
		start := time.Now()
		n = syncOnce(b, fsys, sb)
		cold += time.Since(start)
		start = time.Now()
		syncOnce(b, fsys, sb)
		resync += time.Since(start)
		b.StopTimer()
		for _, d := range []string{fb, sb} {
			if err := os.RemoveAll(d); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(i) }
	b.ReportMetric(ms(floor), "floor-ms")
	b.ReportMetric(ms(floorW), "floor-writes-ms")
	b.ReportMetric(ms(cold), "cold-ms")
	b.ReportMetric(ms(resync), "resync-ms")
	b.ReportMetric(float64(cold)/float64(floor), "cold/floor")
	b.ReportMetric(float64(n), "files")
	b.Logf("%d files: floor %.0f ms (plain writes %.0f ms + one syncfs), cold sync %.0f ms (%.2f× the floor), re-sync %.0f ms",
		n, ms(floor), ms(floorW), ms(cold), float64(cold)/float64(floor), ms(resync))
}
