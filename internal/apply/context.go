package apply

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/internal/incusx"
)

// ContextDir is the nesting context directory inside an instance (§9.9).
const ContextDir = "/etc/anklume"

// ContextFile is one nesting context file.
type ContextFile struct {
	Path  string
	Value string
}

// ContextFiles returns the four §9.9 files of an instance, in table order.
func ContextFiles(n Nesting, vm bool) []ContextFile {
	rel := n.RelativeLevel + 1
	if vm {
		rel = 0
	}
	return []ContextFile{
		{ContextDir + "/absolute_level", strconv.Itoa(n.Level + 1)},
		{ContextDir + "/relative_level", strconv.Itoa(rel)},
		{ContextDir + "/vm_nested", strconv.FormatBool(vm || n.VMNested)},
		{ContextDir + "/yolo", strconv.FormatBool(n.Yolo)},
	}
}

// ContextTarget is an instance that gets the nesting context files.
type ContextTarget struct {
	Project, Name string
	VM            bool
}

// context lists the instances created in this run that are now running
// (Result.Started) and writes the context files of the virtual machines
// among them (§9.5 step 10). A container got its files in the worker that
// started it, before the start (contextBeforeStart), so creation runs at
// the API's pace instead of ending with a phase of five requests per
// instance; a VM keeps this last phase because its file API waits for its
// agent, which would hold a worker for up to VMAgentWait.
func (e *executor) context(ctx context.Context) {
	var targets []ContextTarget
	for _, ch := range e.chs {
		if !ch.created || !ch.done || !ch.running {
			continue
		}
		d, ok := ch.c.Desired.(*incus.Instance)
		if !ok {
			continue
		}
		e.res.Started = append(e.res.Started, d.Project+"/"+d.Name)
		if d.Type == "virtual-machine" {
			targets = append(targets, ContextTarget{Project: d.Project, Name: d.Name, VM: true})
		}
	}
	if e.opts.Nesting == nil || len(targets) == 0 {
		return
	}
	WriteContext(ctx, e.opts, *e.opts.Nesting, targets)
}

// contextBeforeStart writes the context files of a container created in
// this run (or never started since an earlier run created it) into the
// stopped container, in the worker of its start step, just before the
// start: Incus's file API works on a stopped container. The files are
// there from the container's first start on, so a run cut at any point
// converges with them: cut before the start, the next run still sees the
// container never started (volatile.apply_template) and writes them again
// before starting it; cut after it, they were written already. (Written
// after the start, as the context phase of §9.9 once did, a cut between
// the start and the files lost them for good: the next run sees a started
// container and writes nothing.) A VM returns nil: its file API needs its
// agent, so it keeps the phase after every start (context), and a cut
// between a VM's start and its files still loses them until apply
// --refresh-context. A failure is returned for contextAfterStart to retry.
func (e *executor) contextBeforeStart(ctx context.Context, t ContextTarget) error {
	if e.opts.Nesting == nil || t.VM {
		return nil
	}
	fw, ok := e.opts.Server.(incusx.FileWriter)
	if !ok {
		return errors.New("the Incus connection has no file API")
	}
	return writeContext(ctx, fw, *e.opts.Nesting, t)
}

// contextAfterStart retries, once the container runs, a write that failed
// before its start (first is that failure). A second failure is a
// warning, never a failure of the start.
func (e *executor) contextAfterStart(ctx context.Context, t ContextTarget, first error) {
	err := first
	if fw, ok := e.opts.Server.(incusx.FileWriter); ok {
		err = writeContext(ctx, fw, *e.opts.Nesting, t)
	}
	if err != nil {
		e.mu.Lock()
		defer e.mu.Unlock()
		fmt.Fprintf(e.opts.ErrOut, "warning: instance %s/%s: writing the nesting context: %s\n", t.Project, t.Name, incusError(err))
	}
}

// writeContext writes the directory and the four files into one instance,
// in one session when the connection can (incusx.DirWriter).
func writeContext(ctx context.Context, fw incusx.FileWriter, n Nesting, t ContextTarget) error {
	var files []incusx.NewFile
	for _, f := range ContextFiles(n, t.VM) {
		files = append(files, incusx.NewFile{Path: f.Path, Content: []byte(f.Value + "\n"), Mode: 0o644})
	}
	if dw, ok := fw.(incusx.DirWriter); ok {
		return dw.WriteInstanceDir(ctx, t.Project, t.Name, ContextDir, 0o755, files)
	}
	if err := fw.MakeInstanceDir(ctx, t.Project, t.Name, ContextDir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := fw.WriteInstanceFile(ctx, t.Project, t.Name, f.Path, f.Content, f.Mode); err != nil {
			return err
		}
	}
	return nil
}

// WriteContext writes the nesting context files into every target, up to
// Jobs at once. A VM is retried until its agent answers, at most
// VMAgentWait. A failure is a warning on ErrOut, never an error (§9.9).
func WriteContext(ctx context.Context, opts Options, n Nesting, targets []ContextTarget) {
	opts.defaults()
	e := &executor{opts: opts}
	fw, ok := opts.Server.(incusx.FileWriter)
	var mu sync.Mutex
	warn := func(t ContextTarget, err error) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(opts.ErrOut, "warning: instance %s/%s: writing the nesting context: %s\n", t.Project, t.Name, incusError(err))
	}
	e.parallel(len(targets), func(i int) {
		t := targets[i]
		if !ok {
			warn(t, errors.New("the Incus connection has no file API"))
			return
		}
		write := func() error { return writeContext(ctx, fw, n, t) }
		err := write()
		deadline := opts.Now().Add(opts.VMAgentWait)
		for err != nil && t.VM && opts.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(2 * time.Second)
			err = write()
		}
		if err != nil {
			warn(t, err)
		}
	})
}
