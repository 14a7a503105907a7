package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// psot30 is 6 domains of 5 machines, the 30-machine file of issue 12's
// figures.
func psot30() string {
	levels := []string{"admin", "trusted", "semi-trusted", "untrusted", "disposable"}
	var b strings.Builder
	b.WriteString("format_version: 1\nproject_name: bench\nglobal:\n  addressing: {}\n  default_os_image: images:debian/13\ndomains:\n")
	for d := range 6 {
		fmt.Fprintf(&b, "  d%03d:\n    description: domain %d\n    trust_level: %s\n    machines:\n", d, d, levels[d%len(levels)])
		for m := range 5 {
			fmt.Fprintf(&b, "      m%03d-%02d:\n        type: lxc\n        roles: [base_system]\n        config:\n          limits.cpu: \"1\"\n          limits.memory: 512MiB\n", d, m)
		}
	}
	return b.String()
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

// BenchmarkProcess runs the anklume binary, built as `make build` builds
// it, the way a user does, process start included: `version`, and
// `validate` of a 30-machine file (issue 12: ≤ 20 ms on an idle machine).
// It prints the wall time and the CPU time (user + system, from rusage:
// less sensitive than the wall time to the load of a shared machine) per
// run, with the load average.
func BenchmarkProcess(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "anklume")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building anklume: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "infra.yml"), []byte(psot30()), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, args := range [][]string{{"version"}, {"validate", "-q"}} {
		b.Run(args[0], func(b *testing.B) {
			var cpu, wall time.Duration
			for b.Loop() {
				cmd := exec.Command(bin, args...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "ANKLUME_SKIP_HOST_SUBNET_CHECK=1")
				start := time.Now()
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("anklume %v: %v\n%s", args, err, out)
				}
				wall += time.Since(start)
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
					cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
				}
			}
			n := float64(b.N)
			b.ReportMetric(wall.Seconds()*1000/n, "wall-ms")
			b.ReportMetric(cpu.Seconds()*1000/n, "cpu-ms")
			b.Logf("anklume %s: %.1f ms wall, %.1f ms CPU per run; load %s", strings.Join(args, " "), wall.Seconds()*1000/n, cpu.Seconds()*1000/n, loadAvg())
		})
	}
}
