package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/internal/incusx"
)

// The scale benchmark (`make bench-scale`) is a teacher's lab: scaleDomains
// student domains sk0…sk99 of scaleMachines busybox containers each (300
// instances, 100 bridges net-sk0…net-sk99), in the trusted zone of
// zone_base 150: 10.160.0.0/24 … 10.160.99.0/24, apart from every other
// live test. `make bench-scale` runs it on a standalone daemon of its own
// (scripts/scale-daemon.sh, pointed at with INCUS_SOCKET), so that 300
// instances never load or lock the shared one; run by hand on the shared
// daemon it needs the live lock. It deletes what it created, and only that
// (projects sk<n>, bridges net-sk<n>).
const scaleMachines = 3

// scaleDomains is the number of domains: 100, or ANKLUME_BENCH_DOMAINS
// (1–100) for a smaller trial run.
var scaleDomains = func() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("ANKLUME_BENCH_DOMAINS"), &n); err == nil && n >= 1 && n <= 100 {
		return n
	}
	return 100
}()

// scalePSOT is the lab, with one more machine in sk0 when extra.
func scalePSOT(infra string, extra bool) string {
	var b strings.Builder
	b.WriteString("format_version: 1\nproject_name: " + infra + "\nglobal:\n" +
		"  addressing: {base_octet: 10, zone_base: 150}\n  default_os_image: images:debian/13\ndomains:\n")
	for d := range scaleDomains {
		fmt.Fprintf(&b, "  sk%d:\n    trust_level: trusted\n    subnet_id: %d\n    egress: false\n    ephemeral: true\n    machines:\n", d, d)
		for m := range scaleMachines {
			fmt.Fprintf(&b, "      sk%d-%d: {}\n", d, m)
		}
		if extra && d == 0 {
			b.WriteString("      sk0-extra: {}\n")
		}
	}
	return b.String()
}

// measured is one anklume process: its output, wall time and peak RSS.
type measured struct {
	out, errOut string
	code        int
	wall        time.Duration
	cpu         time.Duration // user + system
	maxRSS      int64         // bytes
}

// runMeasured runs the anklume binary and reads its peak RSS from rusage.
func runMeasured(b *testing.B, bin, dir string, env []string, args ...string) measured {
	b.Helper()
	cmd := scCommand(b, bin, dir, env, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	m := measured{out: out.String(), errOut: errOut.String(), wall: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		m.code = ee.ExitCode()
	case err != nil:
		b.Fatalf("running anklume %v: %v", args, err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.maxRSS = ru.Maxrss * 1024
		m.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return m
}

// scaleClean deletes the instances, projects and bridges of the lab, 8
// requests at once.
func scaleClean(ctx context.Context, srv *incusx.Client, instancesOnly bool) error {
	ours := func(project string) bool {
		var n int
		_, err := fmt.Sscanf(project, "sk%d", &n)
		return err == nil && project == fmt.Sprintf("sk%d", n) && n < 100
	}
	all, err := srv.Instances(ctx)
	if err != nil {
		return err
	}
	var live []api.Instance
	for _, i := range all {
		if ours(i.Project) {
			live = append(live, i)
		}
	}
	err = forEach(live, 8, func(i api.Instance) error {
		if i.StatusCode != api.Stopped {
			if err := srv.UpdateInstanceState(ctx, i.Project, i.Name,
				api.InstanceStatePut{Action: incusx.ActionStop, Force: true}); err != nil {
				return err
			}
		}
		return srv.DeleteInstance(ctx, i.Project, i.Name)
	})
	if err != nil || instancesOnly {
		return err
	}
	ps, err := srv.Projects(ctx)
	if err != nil {
		return err
	}
	var projects []string
	for _, p := range ps {
		if ours(p.Name) {
			projects = append(projects, p.Name)
		}
	}
	if err := forEach(projects, 8, func(p string) error {
		profiles, err := srv.Profiles(ctx)
		if err != nil {
			return err
		}
		for _, pr := range profiles {
			if pr.Project == p && pr.Name != "default" {
				if err := srv.DeleteProfile(ctx, p, pr.Name); err != nil {
					return err
				}
			}
		}
		return srv.DeleteProject(ctx, p)
	}); err != nil {
		return err
	}
	ns, err := srv.Networks(ctx)
	if err != nil {
		return err
	}
	var nets []string
	for _, n := range ns {
		if rest, ok := strings.CutPrefix(n.Name, "net-"); ok && ours(rest) {
			nets = append(nets, n.Name)
		}
	}
	// One at a time: Incus 6.0 deleting bridges concurrently fails now and
	// then listing the children of another bridge being deleted.
	return forEach(nets, 1, func(n string) error { return srv.DeleteNetwork(ctx, n) })
}

// BenchmarkScale measures the teacher's lab on the local daemon:
//
//   - create/incus-api: the projects, bridges and profiles by
//     `incus admin init --preseed`, then the 300 containers created and
//     started through the API by benchJobs goroutines;
//   - create/anklume: `anklume apply -j benchJobs` from empty (everything);
//   - noop: a no-op apply (wall time, requests through a socket proxy);
//   - status; plan after one change (a machine added to sk0);
//   - the peak RSS of every anklume process.
//
// It prints the figures; it asserts only that each command did its job.
func BenchmarkScale(b *testing.B) {
	benchNeedIncus(b)
	bin := benchBinary(b)
	ctx := context.Background()
	srv, err := incusx.Connect(ctx, incusx.Options{})
	if err != nil {
		b.Fatal(err)
	}
	infra := scName(b, "sk")
	src := scalePSOT(infra, false)
	e := &benchEnv{ctx: ctx, srv: srv, bin: bin, infra: infra, src: src,
		state: benchDesired(b, src), dir: b.TempDir()}
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(e.dir, "infra.yml"), []byte(s), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	write(src)
	if err := scaleClean(ctx, srv, false); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := scaleClean(ctx, srv, false); err != nil {
			b.Errorf("cleaning up the lab: %v", err)
		}
	})
	b.ReportMetric(float64(scaleDomains*scaleMachines), "instances")
	var peak int64
	report := func(what string, m measured) {
		peak = max(peak, m.maxRSS)
		b.Logf("%-26s %7.3f s  peak RSS %5.1f MB  load %s", what, m.wall.Seconds(), float64(m.maxRSS)/(1<<20), loadAvg())
	}
	b.StopTimer()
	for range b.N {
		start := time.Now()
		e.preseed(b)
		pre := time.Since(start)
		e.direct(b)
		raw := time.Since(start)
		b.Logf("%-26s %7.3f s  (preseed %.3f s)  load %s", "create/incus-api", raw.Seconds(), pre.Seconds(), loadAvg())
		if err := scaleClean(ctx, srv, false); err != nil {
			b.Fatal(err)
		}

		m := runMeasured(b, bin, e.dir, nil, scApplyArgs("--no-nftables", "-j", fmt.Sprint(benchJobs))...)
		if m.code != 0 || !strings.Contains(m.out, "Apply complete: ") || !strings.Contains(m.out, fmt.Sprintf("sk%d-%d: done", scaleDomains-1, scaleMachines-1)) {
			b.Fatalf("apply from empty: exit %d\n%s\n%s", m.code, tail(m.out), m.errOut)
		}
		report("create/anklume", m)
		b.Logf("create: anklume / raw API = %.2f", m.wall.Seconds()/raw.Seconds())
		b.ReportMetric(m.wall.Seconds()/raw.Seconds(), "create-ratio")

		var log incusx.RequestLog
		p, err := incusx.NewSocketProxy(incusSocket(), filepath.Join(b.TempDir(), "incus.socket"), &log)
		if err != nil {
			b.Fatal(err)
		}
		for i := range 3 {
			log.Reset()
			m = runMeasured(b, bin, e.dir, []string{"INCUS_SOCKET=" + p.Path}, scApplyArgs("--no-nftables")...)
			if m.code != 0 || !strings.Contains(m.out, "No changes.") {
				b.Fatalf("no-op apply: exit %d\n%s\n%s", m.code, m.out, m.errOut)
			}
			report(fmt.Sprintf("noop/anklume #%d", i+1), m)
		}
		b.ReportMetric(m.wall.Seconds(), "noop-s")
		b.Logf("no-op apply: %d requests (time each took in Incus):\n%s", log.Len(), timings(&log))
		_ = p.Close()
		// The floor: a plan reads every instance, and Incus lists them
		// project by project (100 here), so no honest no-op apply is
		// faster than GET /1.0/instances?all-projects=true&recursion=1
		// alone, timed here straight on the socket, best of 3.
		var floor time.Duration
		for i := range 3 {
			start := time.Now()
			if _, err := srv.Instances(ctx); err != nil {
				b.Fatal(err)
			}
			if d := time.Since(start); i == 0 || d < floor {
				floor = d
			}
		}
		b.ReportMetric(floor.Seconds(), "instance-list-s")
		b.Logf("%-26s %7.3f s  (best of 3; no-op apply %.2f× that)  load %s", "GET instances alone", floor.Seconds(),
			m.wall.Seconds()/floor.Seconds(), loadAvg())

		m = runMeasured(b, bin, e.dir, nil, "status")
		if m.code != 0 {
			b.Fatalf("status: exit %d\n%s\n%s", m.code, tail(m.out), m.errOut)
		}
		report("status", m)
		b.ReportMetric(m.wall.Seconds(), "status-s")

		write(scalePSOT(infra, true))
		m = runMeasured(b, bin, e.dir, nil, "plan")
		if m.code != 0 || !strings.Contains(m.out, "sk0-extra") {
			b.Fatalf("plan after one change: exit %d\n%s\n%s", m.code, tail(m.out), m.errOut)
		}
		report("plan (one change)", m)
		b.ReportMetric(m.wall.Seconds(), "plan-s")
		write(src)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MB")
	b.Logf("peak RSS of the anklume processes: %.1f MB", float64(peak)/(1<<20))
}

// timings lists the requests of log, one a line, with the time each took.
func timings(log *incusx.RequestLog) string {
	var b strings.Builder
	for _, r := range log.Requests() {
		fmt.Fprintf(&b, "  %8.3f s  %s\n", r.Duration.Seconds(), r)
	}
	return b.String()
}

// tail returns the last lines of a long output.
func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
