// Package verify proves the isolation on the live host: it probes real
// connections between the running machines, from the host into each
// source container's network namespace, and compares what gets through
// with the reachability matrix computed from the PSOT (compiler/reach). It
// also checks the preconditions that silently break the isolation: the
// nftables table loaded and identical to the file, bridge netfilter on,
// the anti-spoofing filters on every NIC, and no NIC on another domain's
// bridge.
//
// Nothing runs inside the guests: the probe joins the namespace of the
// container's init process (its pid from the Incus instance state) on a
// locked OS thread, with setns(2), and opens the connection there. A TCP
// accept or refusal means reachable (the firewall let the SYN through), a
// timeout means dropped; UDP counts an answer or an ICMP port unreachable
// as reachable; ICMP sends one echo request on a raw socket.
//
// Probes only go to the machines of this host, to the host's bridge
// addresses, and, for the egress probes, to a network namespace that
// verify creates for the run (198.18.255.254, the benchmarking range of
// RFC 2544, on a veth pair it removes afterwards): no probe leaves the
// machine.
//
// The result of the last run is recorded in <state dir>/verify/<infra>.json
// (state dir: $ANKLUME_STATE_DIR, default /var/lib/anklume), written
// atomically, for `anklume status`. A file rather than an Incus key: the
// result is a fact about this host's kernel (its nftables, its sysctls),
// not about the Incus objects, and a key on a project would show up as
// drift to the reconciler.
package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/nft"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/reach"
	nftsys "github.com/anklume/anklume/internal/nftables"
)

// Defaults of the bounds.
const (
	DefaultTimeout = 1500 * time.Millisecond
	DefaultBudget  = 2 * time.Minute
	// DefaultJobs: a dropped probe only waits for its timeout, so the
	// run takes about (dropped probes / jobs) timeouts; 64 keeps a sample
	// of about fifty probes to one timeout (BenchmarkVerify30: 30 machines,
	// 49 probes, probes 3.0 s with 16 jobs, 1.5 s with 64).
	DefaultJobs = 64
	// DefaultBridgeDir holds the bridge netfilter sysctls.
	DefaultBridgeDir = "/proc/sys/net/bridge"
	// DefaultStateDir is where the last result is recorded.
	DefaultStateDir = "/var/lib/anklume"
	// OutsideAddr is the address of the throwaway outside namespace.
	OutsideAddr = "198.18.255.254"
)

// Options are the inputs of Run.
type Options struct {
	Model *model.Infra
	// Instances lists the instances with their live state (one request).
	Instances func(ctx context.Context) ([]api.InstanceFull, error)
	// NFTStatus compares the live table with the rendered ruleset.
	NFTStatus func(ctx context.Context, ruleset []byte) (nftsys.State, []byte, error)
	// BridgeDir holds the bridge netfilter sysctls (DefaultBridgeDir).
	BridgeDir string
	// Domains limits the probes to pairs touching these domains.
	Domains []string
	// MaxPairs > 0 probes at most that many pairs.
	MaxPairs int
	Timeout  time.Duration
	Budget   time.Duration
	Jobs     int
	// NoOutside skips the egress probes (and the namespace they need).
	NoOutside bool
	// Progress receives a progress line; TTY rewrites it in place.
	Progress io.Writer
	TTY      bool
}

// Result is one probe's outcome.
type Result struct {
	Probe   Probe
	Outcome string
	Detail  string
	// Mismatch is true when the outcome contradicts the expectation.
	Mismatch bool
}

// Report is the outcome of a run.
type Report struct {
	Checks    []Check
	Results   []Result
	Pairs     int
	NotProbed []NotProbed
	// NotRun counts the probes the budget cut off.
	NotRun   int
	Duration time.Duration
	// Phases times the parts of the run, in order: the table comparison,
	// the sysctls and the instance listing ("checks"), the outside
	// namespace ("outside") and the probes ("probes").
	Phases []Phase
}

// Phase is the duration of one part of a run.
type Phase struct {
	Name     string
	Duration time.Duration
}

// Mismatches counts failed checks and mismatched probes.
func (r *Report) Mismatches() int {
	n := 0
	for _, c := range r.Checks {
		if !c.OK {
			n++
		}
	}
	for _, x := range r.Results {
		if x.Mismatch {
			n++
		}
	}
	return n
}

// Run checks the preconditions, then probes a sample of pairs.
func Run(ctx context.Context, opts Options) (*Report, error) {
	start := time.Now()
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Budget <= 0 {
		opts.Budget = DefaultBudget
	}
	if opts.Jobs <= 0 {
		opts.Jobs = DefaultJobs
	}
	if opts.BridgeDir == "" {
		opts.BridgeDir = DefaultBridgeDir
	}
	m := opts.Model
	rep := &Report{}

	st, _, err := opts.NFTStatus(ctx, nft.Render(m))
	if err != nil {
		return nil, fmt.Errorf("checking the nftables table: %w", err)
	}
	c := Check{Name: "table inet anklume loaded and identical to the PSOT", OK: st == nftsys.InSync}
	if !c.OK {
		c.Detail = st.String() + " (anklume nftables status shows the difference; anklume nftables deploy reloads it)"
	}
	rep.Checks = append(rep.Checks, c)
	rep.Checks = append(rep.Checks, bridgeNFChecks(opts.BridgeDir)...)

	lap := start
	phase := func(name string) {
		now := time.Now()
		rep.Phases = append(rep.Phases, Phase{name, now.Sub(lap)})
		lap = now
	}
	insts, err := opts.Instances(ctx)
	if err != nil {
		return nil, err
	}
	rep.Checks = append(rep.Checks, nicChecks(m, insts)...)

	mx := reach.Compute(m)
	live, pids := liveMachines(m, insts)
	rep.NotProbed = notProbed(m, live)
	probes, pairs := Sample(mx, live, opts.Domains, opts.MaxPairs)
	rep.Pairs = pairs

	phase("checks")
	outside := netip.Addr{}
	if !opts.NoOutside {
		addr, cleanup, err := setupOutside(ctx)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		outside = addr
	} else {
		kept := probes[:0]
		for _, p := range probes {
			if p.Pair.Kind != reach.ToOutside {
				kept = append(kept, p)
			}
		}
		probes = kept
	}

	phase("outside")
	rep.Results = make([]Result, len(probes))
	bctx, cancel := context.WithTimeout(ctx, opts.Budget)
	defer cancel()
	var done, next atomic.Int64
	var wg sync.WaitGroup
	var pmu sync.Mutex
	progress := func() {
		if opts.Progress == nil {
			return
		}
		pmu.Lock()
		defer pmu.Unlock()
		n := done.Load()
		line := fmt.Sprintf("verify: %d/%d probes", n, len(probes))
		switch {
		case opts.TTY:
			fmt.Fprintf(opts.Progress, "\r%s", line)
			if int(n) == len(probes) {
				fmt.Fprintln(opts.Progress)
			}
		case n%25 == 0 || int(n) == len(probes):
			fmt.Fprintln(opts.Progress, line)
		}
	}
	// ICMP echo identifiers start at a random base for each run: with fixed
	// ones, an echo flow that conntrack still remembers from an earlier run
	// (say, one made while the table was missing) matches "established" and a
	// denied path looks open for up to 30 seconds.
	icmpBase := uint16(rand.Uint32())
	for w := 0; w < opts.Jobs; w++ {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(probes) {
					return
				}
				if bctx.Err() != nil {
					rep.Results[i] = Result{Probe: probes[i], Outcome: "not run", Detail: "the time budget ran out"}
					continue
				}
				var stuck bool
				rep.Results[i], stuck = runProbe(probes[i], pids, outside, opts.Timeout, icmpBase+uint16(i+1))
				done.Add(1)
				progress()
				if stuck {
					return // the thread is retired with this goroutine
				}
			}
		})
	}
	wg.Wait()
	for i, r := range rep.Results {
		if r.Outcome == "" { // every worker ended early
			rep.Results[i] = Result{Probe: probes[i], Outcome: "not run", Detail: "no probe thread left"}
		}
		if rep.Results[i].Outcome == "not run" {
			rep.NotRun++
		}
	}
	phase("probes")
	rep.Duration = time.Since(start)
	return rep, nil
}

// runProbe runs one probe and compares it with its expectation.
func runProbe(p Probe, pids map[string]int, outside netip.Addr, timeout time.Duration, id uint16) (Result, bool) {
	var dst netip.Addr
	switch p.Pair.Kind {
	case reach.ToOutside:
		dst = outside
	default:
		dst, _ = netip.ParseAddr(p.Pair.ToIP)
	}
	res := Result{Probe: p}
	if !dst.IsValid() {
		res.Outcome, res.Detail = Failed, "no target address"
		res.Mismatch = true
		return res, false
	}
	var stuck bool
	res.Outcome, res.Detail, stuck = inNetns(pids[p.Pair.From], func() (string, string) {
		switch p.Proto {
		case reach.UDP:
			return probeUDP(dst, p.Port, timeout)
		case reach.ICMP:
			return probeICMP(dst, id, timeout)
		}
		return probeTCP(dst, p.Port, timeout)
	})
	want := p.Expect.Verdict == reach.Allow
	res.Mismatch = res.Outcome == Failed || Reachable(res.Outcome) != want
	return res, stuck
}

// setupOutside creates a throwaway network namespace on a veth pair,
// 198.18.255.252/30, that stands for "outside" in the egress probes; the
// host routes the /30 to it, so a probe that passes the forward chain ends
// there (and gets a RST) instead of leaving the machine.
func setupOutside(ctx context.Context) (netip.Addr, func(), error) {
	pid := strconv.Itoa(os.Getpid())
	ns, veth := "anklume-verify-"+pid, "ankv"+pid
	if len(veth) > 15 {
		veth = veth[:15]
	}
	run := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	cleanup := func() {
		_ = exec.Command("ip", "link", "del", veth).Run()
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"addr", "add", "198.18.255.253/30", "dev", veth},
		{"link", "set", veth, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", OutsideAddr + "/30", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "route", "add", "default", "via", "198.18.255.253"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			cleanup()
			return netip.Addr{}, nil, fmt.Errorf("creating the outside namespace for the egress probes (--no-outside skips them): %w", err)
		}
	}
	return netip.MustParseAddr(OutsideAddr), cleanup, nil
}

// Record is the summary of the last verify that status shows: the first
// fields of the recorded Document.
type Record struct {
	Infra      string    `json:"infra"`
	Time       time.Time `json:"time"`
	OK         bool      `json:"ok"`
	Probes     int       `json:"probes"`
	Mismatches int       `json:"mismatches"`
}

// RecordPath returns where the result of infra is recorded.
func RecordPath(stateDir, infra string) string {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	return filepath.Join(stateDir, "verify", strings.ReplaceAll(infra, "/", "_")+".json")
}

// Save records doc atomically (temporary file and rename): a reader sees
// the previous run or this one, never half of one.
func Save(stateDir string, doc Document) error {
	p := RecordPath(stateDir, doc.Infra)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("recording the verify result: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	tmp := p + ".tmp-" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("recording the verify result: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("recording the verify result: %w", err)
	}
	return nil
}

// Load reads the summary of the last result of infra; ok is false when
// there is none.
func Load(stateDir, infra string) (rec Record, ok bool, err error) {
	doc, ok, err := LoadDocument(stateDir, infra)
	if !ok || err != nil {
		return Record{}, ok, err
	}
	return doc.Record(), true, nil
}

// LoadDocument reads the last result of infra in full; ok is false when
// there is none.
func LoadDocument(stateDir, infra string) (doc Document, ok bool, err error) {
	b, err := os.ReadFile(RecordPath(stateDir, infra))
	if os.IsNotExist(err) {
		return Document{}, false, nil
	}
	if err != nil {
		return Document{}, false, fmt.Errorf("reading the last verify result: %w", err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return Document{}, false, fmt.Errorf("reading %s: %w", RecordPath(stateDir, infra), err)
	}
	return doc, true, nil
}

// Write prints the report: failed checks, mismatches, a summary line.
func (r *Report) Write(w io.Writer, verbose bool) {
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		if c.OK && !verbose {
			continue
		}
		fmt.Fprintf(w, "%s %s", mark, c.Name)
		if c.Detail != "" {
			fmt.Fprintf(w, ": %s", c.Detail)
		}
		fmt.Fprintln(w)
	}
	for _, x := range r.Results {
		p := x.Probe
		if !x.Mismatch && !verbose {
			continue
		}
		mark := "ok      "
		if x.Mismatch {
			mark = "MISMATCH"
		}
		to := p.Pair.To
		if p.Pair.ToIP != "" {
			to += " (" + p.Pair.ToIP + ")"
		}
		what := p.Proto
		if p.Proto != reach.ICMP {
			what += "/" + strconv.Itoa(p.Port)
		}
		got := x.Outcome
		if x.Detail != "" {
			got += ": " + x.Detail
		}
		fmt.Fprintf(w, "%s %s -> %s %s: expected %s by %s", mark, p.Pair.From, to, what, p.Expect.Verdict, p.Expect.Reason.Text)
		if p.Expect.Reason.At != "" {
			fmt.Fprintf(w, " at %s", p.Expect.Reason.At)
		}
		fmt.Fprintf(w, "; got %s\n", got)
	}
	for _, n := range r.NotProbed {
		if verbose {
			fmt.Fprintf(w, "not a probe source: %s (%s)\n", n.Machine, n.Reason)
		}
	}
	if verbose && len(r.Phases) > 0 {
		parts := make([]string, len(r.Phases))
		for i, ph := range r.Phases {
			parts[i] = ph.Name + " " + ph.Duration.Round(10*time.Millisecond).String()
		}
		fmt.Fprintf(w, "time: %s\n", strings.Join(parts, ", "))
	}
	failed := 0
	for _, c := range r.Checks {
		if !c.OK {
			failed++
		}
	}
	fmt.Fprintf(w, "verify: %d checks (%d failed), %d probes over %d pairs, %d mismatches",
		len(r.Checks), failed, len(r.Results)-r.NotRun, r.Pairs, r.Mismatches()-failed)
	if r.NotRun > 0 {
		fmt.Fprintf(w, ", %d not run (time budget)", r.NotRun)
	}
	fmt.Fprintf(w, " in %s\n", r.Duration.Round(10*time.Millisecond))
}
