// Package apply executes a plan (internal/plan) on an Incus server, as
// SPEC.md §9.5 steps 7–10 say: host directories, pre-apply snapshots, the
// four phases (release; create and update in priority order; claim;
// delete the rest in reverse priority), then the starts, stops and
// restarts that make each instance's status match its state, and the
// nesting context files of the instances created in the run (§9.9).
//
// Inside a phase, up to Jobs actions run at once. An action whose
// dependency failed is skipped; other domains carry on. Every change
// prints one progress line when it finishes (on a terminal, a live line
// shows it meanwhile: package progress), and Result holds the counts and
// failures for the final summary.
package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/internal/hostdirs"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/plan"
	"github.com/anklume/anklume/internal/progress"
)

// DefaultJobs is the default -j.
const DefaultJobs = 4

// SnapshotPrefix starts every pre-apply snapshot name (§9.5 step 8).
const SnapshotPrefix = "anklume-pre-"

// KeepSnapshots is how many pre-apply snapshots each instance keeps.
const KeepSnapshots = 3

// Nesting is the host's nesting context (§2.14), from which the context
// files of new instances are derived (§9.9).
type Nesting struct {
	Level         int
	RelativeLevel int
	VMNested      bool
	Yolo          bool
}

// Options configure Execute.
type Options struct {
	Server incusx.Server
	// Jobs bounds the actions that run at once inside a phase (DefaultJobs).
	Jobs int
	// NoRestart leaves restart-needed instances running, with a warning.
	NoRestart bool
	// NoSnapshot skips the pre-apply snapshots.
	NoSnapshot bool
	// Out receives the progress lines, ErrOut the warnings.
	Out, ErrOut io.Writer
	// TTY prefixes the progress lines with a [k/n] counter.
	TTY bool
	// Progress shows the running changes (their step, the image download
	// percent the daemon reports, the elapsed time) and prints the
	// finished lines; nil prints only the finished lines on Out. Execute
	// does not close it.
	Progress *progress.Display
	// Now is the clock (time.Now), used for snapshot names and durations.
	Now func() time.Time
	// StopTimeout is how long a clean stop may take before it is forced
	// (30 s).
	StopTimeout time.Duration
	// HostDirs are the host directories to create before any instance
	// (§4.11): only with the local daemon. See package hostdirs for their
	// owner and mode.
	HostDirs []hostdirs.Dir
	// MakeDir creates one missing host directory, or hands over one that
	// an older anklume made, and returns a note for the user when it did
	// the latter (hostdirs.Ensure with the containers' root from
	// /etc/subuid and /etc/subgid).
	MakeDir func(hostdirs.Dir) (string, error)
	// MoveDir moves the persistent data of an instance that moves to
	// another domain, after its release and before its move
	// (hostdirs.MoveDir).
	MoveDir func(hostdirs.Move) error
	// Nesting, when not nil, makes the instances created in this run get
	// their context files once running (§9.9).
	Nesting *Nesting
	// VMAgentWait bounds the wait for a new VM to accept files (120 s).
	VMAgentWait time.Duration
}

func (o *Options) defaults() {
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.ErrOut == nil {
		o.ErrOut = io.Discard
	}
	if o.Progress == nil {
		o.Progress = progress.Plain(o.Out)
	}
	// A warning printed while the live block is on screen goes above it.
	o.ErrOut = o.Progress.Wrap(o.ErrOut)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 30 * time.Second
	}
	if o.MakeDir == nil {
		root := hostdirs.ContainerRoot(os.ReadFile)
		o.MakeDir = func(d hostdirs.Dir) (string, error) { return hostdirs.Ensure(d, root) }
	}
	if o.MoveDir == nil {
		o.MoveDir = hostdirs.MoveDir
	}
	if o.VMAgentWait <= 0 {
		o.VMAgentWait = 120 * time.Second
	}
}

// Failure is one failed action. A Failure without Kind is a failure of
// the run itself (provisioning), printed as `error: <Err>`.
type Failure struct {
	Kind plan.Kind
	Name string
	// Op is what was being done: create, update, delete, start, …
	Op  string
	Err error
}

// Line is the stderr line of §9.5: `error: <kind> <name>: <operation>:
// <Incus error>`, or `error: domain <d>: <message>`.
func (f Failure) Line() string {
	if f.Kind == "" {
		return "error: " + f.Err.Error()
	}
	if f.Kind == plan.KindDomain {
		return fmt.Sprintf("error: domain %s: %s", f.Name, f.Err)
	}
	return fmt.Sprintf("error: %s %s: %s: %s", f.Kind, f.Name, f.Op, incusError(f.Err))
}

// incusError is the Incus message of err without the wrapping that names
// the request (the progress line already names the object).
func incusError(err error) string {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Error()
	}
	return err.Error()
}

// Result is what Execute did.
type Result struct {
	Created, Updated, Deleted int
	Failed, Skipped           int
	// Failures in the order they happened, plan-time domain failures
	// first.
	Failures []Failure
	// Started lists the instances created in this run that are running,
	// as "<project>/<name>".
	Started []string
	// Unknown lists the domains placed on an offline cluster member:
	// nothing was planned or done for them. They do not make the run
	// fail (everything else was applied), but the run is not complete.
	Unknown []plan.UnknownDomain
}

// OK reports whether nothing failed or was skipped.
func (r *Result) OK() bool { return r.Failed == 0 && r.Skipped == 0 }

// Summary is the final line of §9.5.
func (r *Result) Summary() string {
	if r.OK() && len(r.Unknown) > 0 {
		return fmt.Sprintf("Apply incomplete: %d created, %d updated, %d deleted, %d %s unknown (cluster member offline).",
			r.Created, r.Updated, r.Deleted, len(r.Unknown), map[bool]string{true: "domain", false: "domains"}[len(r.Unknown) == 1])
	}
	if r.OK() {
		return fmt.Sprintf("Apply complete: %d created, %d updated, %d deleted.", r.Created, r.Updated, r.Deleted)
	}
	return fmt.Sprintf("Apply failed: %d created, %d updated, %d deleted, %d failed, %d skipped.",
		r.Created, r.Updated, r.Deleted, r.Failed, r.Skipped)
}

// Report prints the summary line on out and one error line per failure on
// errOut.
func (r *Result) Report(out, errOut io.Writer) {
	fmt.Fprintln(out, r.Summary())
	for _, u := range r.Unknown {
		fmt.Fprintf(errOut, "warning: domain %s: not applied: %s\n", u.Domain, u.Message)
	}
	for _, f := range r.Failures {
		fmt.Fprintln(errOut, f.Line())
	}
}

// state of one change during the run.
type change struct {
	c     *plan.Change
	id    string // for the progress display
	steps int    // steps not yet run
	begin time.Time
	// outcome
	failed  bool
	skipped *change // the failed change it depends on
	done    bool
	// running tracks the instance status through the run.
	running bool
	created bool
}

func (ch *change) finished() bool { return ch.failed || ch.skipped != nil || ch.done }

// step is one action of one change in one phase.
type step struct {
	ch  *change
	op  string
	run func(ctx context.Context) error
}

type executor struct {
	opts Options
	p    *plan.Plan
	chs  []*change

	mu  sync.Mutex
	k   int
	res *Result
}

// Execute runs p on opts.Server and returns what happened. It never stops
// at the first failure: independent changes go on.
func Execute(ctx context.Context, p *plan.Plan, opts Options) *Result {
	opts.defaults()
	e := &executor{opts: opts, p: p, res: &Result{Unknown: p.Unknown}}
	for _, fd := range p.Failed {
		e.res.Failed++
		e.res.Failures = append(e.res.Failures, Failure{Kind: plan.KindDomain, Name: fd.Domain, Err: errors.New(fd.Message)})
	}
	for i := range p.Changes {
		c := &p.Changes[i]
		ch := &change{c: c, id: fmt.Sprint(i)}
		if li := liveInstance(c.Live); li != nil {
			ch.running = li.StatusCode == api.Running || li.Status == "Running"
		}
		e.chs = append(e.chs, ch)
	}
	e.hostDirs()
	if !opts.NoSnapshot {
		e.snapshots(ctx)
	}
	for _, batch := range e.batches() {
		e.run(ctx, batch)
	}
	e.context(ctx)
	return e.res
}

// ---- host directories and snapshots ----

// hostDirs creates the missing host directories and hands over those an
// older anklume made (§4.11, step 7).
func (e *executor) hostDirs() {
	for _, d := range e.opts.HostDirs {
		note, err := e.opts.MakeDir(d)
		if err != nil {
			e.res.Failed++
			e.res.Failures = append(e.res.Failures, Failure{Kind: plan.KindDir, Name: d.Path, Op: "create", Err: err})
		}
		if note != "" {
			fmt.Fprintf(e.opts.ErrOut, "note: %s\n", note)
		}
	}
}

// snapshotted reports whether c takes a pre-apply snapshot: an existing
// instance that the plan updates, restarts, renumbers or moves.
func snapshotted(c *plan.Change) bool {
	return c.Kind == plan.KindInstance && c.Live != nil &&
		(c.Action == plan.Update || c.Action == plan.Renumber || c.Action == plan.Move)
}

// SnapshotName is the pre-apply snapshot name for t (UTC).
func SnapshotName(t time.Time) string {
	return SnapshotPrefix + t.UTC().Format("20060102-150405")
}

// snapshots takes the pre-apply snapshots (step 8), with no expiry, and
// keeps the KeepSnapshots newest per instance. A failure is a warning.
func (e *executor) snapshots(ctx context.Context) {
	name := SnapshotName(e.opts.Now())
	var todo []*change
	for _, ch := range e.chs {
		if snapshotted(ch.c) {
			todo = append(todo, ch)
		}
	}
	var mu sync.Mutex
	e.parallel(len(todo), func(i int) {
		c := todo[i].c
		li := liveInstance(c.Live)
		project := li.Project
		if project == "" {
			project = c.Project
		}
		id := "snapshot " + todo[i].id
		e.opts.Progress.Start(id, "snapshot instance "+c.Name)
		defer e.opts.Progress.End(id, "")
		if err := Snapshot(ctx, e.opts.Server, project, li.Name, name); err != nil {
			mu.Lock()
			fmt.Fprintf(e.opts.ErrOut, "warning: instance %s: pre-apply snapshot failed: %s\n", c.Name, incusError(err))
			mu.Unlock()
		}
	})
}

// Snapshot takes the pre-apply snapshot name of an instance, with the zero
// expiry (never, §12.4), then deletes all but the KeepSnapshots newest
// anklume-pre-* snapshots.
func Snapshot(ctx context.Context, srv incusx.Server, project, instance, name string) error {
	never := time.Time{}
	if err := srv.CreateSnapshot(ctx, project, instance, api.InstanceSnapshotsPost{Name: name, ExpiresAt: &never}); err != nil {
		return err
	}
	snaps, err := srv.Snapshots(ctx, project, instance)
	if err != nil {
		return err
	}
	var pre []api.InstanceSnapshot
	for _, s := range snaps {
		if strings.HasPrefix(s.Name, SnapshotPrefix) {
			pre = append(pre, s)
		}
	}
	sort.SliceStable(pre, func(i, j int) bool {
		if !pre[i].CreatedAt.Equal(pre[j].CreatedAt) {
			return pre[i].CreatedAt.Before(pre[j].CreatedAt)
		}
		return pre[i].Name < pre[j].Name
	})
	for len(pre) > KeepSnapshots {
		if err := srv.DeleteSnapshot(ctx, project, instance, pre[0].Name); err != nil {
			return err
		}
		pre = pre[1:]
	}
	return nil
}

// ---- scheduling ----

// parallel runs f(0..n-1) with at most Jobs at once.
func (e *executor) parallel(n int, f func(i int)) {
	sem := make(chan struct{}, e.opts.Jobs)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}(i)
	}
	wg.Wait()
}

// run runs one batch of steps in parallel. A step whose change already
// failed is dropped; one whose dependency failed marks its change skipped.
func (e *executor) run(ctx context.Context, batch []*step) {
	var ready []*step
	for _, s := range batch {
		e.mu.Lock()
		if s.ch.finished() {
			e.mu.Unlock()
			continue
		}
		if dep := e.failedDep(s.ch); dep != nil {
			s.ch.skipped = dep
			e.res.Skipped++
			e.line(s.ch, fmt.Sprintf("skipped (depends on failed %s %s)", dep.c.Kind, dep.c.Name))
			e.mu.Unlock()
			continue
		}
		e.mu.Unlock()
		ready = append(ready, s)
	}
	e.parallel(len(ready), func(i int) {
		s := ready[i]
		e.mu.Lock()
		if s.ch.begin.IsZero() {
			s.ch.begin = e.opts.Now()
		}
		e.mu.Unlock()
		pr := e.opts.Progress
		pr.Start(s.ch.id, label(s.ch.c))
		pr.Step(s.ch.id, doing(s.op))
		sctx := ctx
		if pr.Live() {
			sctx = incusx.WithProgress(ctx, func(text string) { pr.Detail(s.ch.id, text) })
		}
		err := s.run(sctx)
		e.mu.Lock()
		defer e.mu.Unlock()
		s.ch.steps--
		if err == nil && s.ch.steps > 0 {
			pr.Step(s.ch.id, "waiting for the next phase")
		}
		if err != nil {
			op := s.op
			var oe *opError
			if errors.As(err, &oe) {
				op, err = oe.op, oe.err
			}
			s.ch.failed = true
			e.res.Failed++
			e.res.Failures = append(e.res.Failures, Failure{Kind: s.ch.c.Kind, Name: s.ch.c.Name, Op: op, Err: err})
			e.line(s.ch, "failed: "+incusError(err))
			return
		}
		if s.ch.steps == 0 {
			s.ch.done = true
			e.count(s.ch.c)
			secs := e.opts.Now().Sub(s.ch.begin).Seconds()
			e.line(s.ch, fmt.Sprintf("done (%.1fs)", secs))
		}
	})
}

// count adds a finished change to the summary counts (§9.4).
func (e *executor) count(c *plan.Change) {
	switch c.Action {
	case plan.Create:
		e.res.Created++
	case plan.Delete:
		e.res.Deleted++
	case plan.Replace:
		e.res.Created++
		e.res.Deleted++
	default:
		e.res.Updated++
	}
}

// line ends the change's live line and prints its finished line; e.mu
// is held.
func (e *executor) line(ch *change, text string) {
	e.k++
	prefix := ""
	if e.opts.TTY {
		prefix = fmt.Sprintf("[%d/%d] ", e.k, len(e.chs))
	}
	e.opts.Progress.End(ch.id, prefix+label(ch.c)+": "+text)
}

// label names a change as its lines do: `+ instance work-a`.
func label(c *plan.Change) string {
	return fmt.Sprintf("%s %s %s", c.Action.Symbol(), c.Kind, c.Name)
}

// doing is the live display's word for a step.
func doing(op string) string {
	switch op {
	case "create", "update", "delete", "move", "release", "restrict", "repair":
		return strings.TrimSuffix(op, "e") + "ing"
	case "start", "restart":
		return op + "ing"
	case "stop":
		return "stopping"
	}
	return op
}

// isDelete reports whether c removes its object (a replace removes the old
// instance in phase 1 too).
func isDelete(c *plan.Change) bool { return c.Action == plan.Delete }

// deleteOrder is the order of phase 4: volumes, profiles, projects,
// networks (instances are deleted in phase 1).
func deleteOrder(k plan.Kind) int {
	switch k {
	case plan.KindInstance:
		return -1
	case plan.KindVolume:
		return 0
	case plan.KindProfile:
		return 1
	case plan.KindProject:
		return 2
	case plan.KindNetwork:
		return 3
	}
	return 4
}

// failedDep returns a failed (or skipped) change that ch depends on: for a
// create or update, a change of a lower tier in the same domain; for a
// delete, a delete that must happen before it in the same domain. e.mu is
// held.
func (e *executor) failedDep(ch *change) *change {
	for _, o := range e.chs {
		if o == ch || (!o.failed && o.skipped == nil) || o.c.Domain != ch.c.Domain {
			continue
		}
		dep := false
		if isDelete(ch.c) {
			dep = (isDelete(o.c) || o.c.Action == plan.Replace || o.c.Action == plan.Move) &&
				deleteOrder(o.c.Kind) < deleteOrder(ch.c.Kind)
		} else {
			dep = !isDelete(o.c) && o.c.Kind.Priority() < ch.c.Kind.Priority()
		}
		if dep {
			if o.skipped != nil {
				return o.skipped
			}
			return o
		}
	}
	return nil
}
