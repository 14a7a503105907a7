package apply

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/lxc/incus/v6/shared/api"

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

// contextBeforeStart prepares the context files of a container created
// in this run (or never started since an earlier run created it) in the
// worker of its start step, just before the start, so that the container
// has them from its first start on. It adds them as templates that Incus
// renders inside the first start itself (incusx.FirstStartWriter: two
// plain requests, and no file server started in the container, which the
// start would wait for), and reports templated; a connection without that
// API, or a failure of it, writes them into the stopped container through
// the file API in one SFTP session instead (Incus's file API works on a
// stopped container). A VM returns nil: its file API needs its agent, so
// it keeps the phase after every start (context).
//
// A run cut at any point converges with the files. Cut before the start,
// the next run still sees the container never started
// (volatile.apply_template is "create") and prepares them again, which
// replaces the entries or rewrites the files; a cut between the template
// file and the metadata entries leaves an unused template file, never an
// entry without its template. Cut during or after the start, Incus
// rendered the files before it dropped volatile.apply_template, in the
// same start. (Written after the start, as the context phase of §9.9 once
// did, a cut between the start and the files lost them for good: the next
// run sees a started container and writes nothing.) A cut between a VM's
// start and its files still loses them until apply --refresh-context.
// A failure is returned for contextAfterStart to retry.
func (e *executor) contextBeforeStart(ctx context.Context, t ContextTarget) (templated bool, err error) {
	if e.opts.Nesting == nil || t.VM {
		return false, nil
	}
	if fsw, ok := e.opts.Server.(incusx.FirstStartWriter); ok {
		if err := fsw.WriteAtFirstStart(ctx, t.Project, t.Name, contextNewFiles(*e.opts.Nesting, t)); err == nil {
			return true, nil
		}
	}
	return false, e.contextByFiles(ctx, t)
}

// contextByFiles writes the context files of t through the file API.
func (e *executor) contextByFiles(ctx context.Context, t ContextTarget) error {
	fw, ok := e.opts.Server.(incusx.FileWriter)
	if !ok {
		return errors.New("the Incus connection has no file API")
	}
	return writeContext(ctx, fw, *e.opts.Nesting, t)
}

// startUntemplated is the second start of a container whose first one
// failed with its context files as templates (first is that failure):
// Incus fails a start on a template it cannot render (a regular file
// where /etc/anklume should be a directory), and the context files are
// never worth a failed start (their failure is a warning, §9.9). It drops
// the entries, writes the files through the file API (the error it
// returns is for contextAfterStart) and starts the container once more;
// the start's error is that second start's, or first when the entries
// cannot be dropped. A start that failed for another reason fails twice.
func (e *executor) startUntemplated(ctx context.Context, t ContextTarget, first error) (ctxErr, err error) {
	fsw, ok := e.opts.Server.(incusx.FirstStartWriter)
	if !ok {
		return nil, first
	}
	if err := fsw.DropFirstStartFiles(ctx, t.Project, t.Name); err != nil {
		return nil, first
	}
	ctxErr = e.contextByFiles(ctx, t)
	return ctxErr, e.srv().UpdateInstanceState(ctx, t.Project, t.Name, api.InstanceStatePut{Action: incusx.ActionStart})
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

// contextNewFiles returns the four context files of t as files to write:
// mode 0644, each value and a newline.
func contextNewFiles(n Nesting, t ContextTarget) []incusx.NewFile {
	var files []incusx.NewFile
	for _, f := range ContextFiles(n, t.VM) {
		files = append(files, incusx.NewFile{Path: f.Path, Content: []byte(f.Value + "\n"), Mode: 0o644})
	}
	return files
}

// writeContext writes the directory and the four files into one instance,
// in one session when the connection can (incusx.DirWriter).
func writeContext(ctx context.Context, fw incusx.FileWriter, n Nesting, t ContextTarget) error {
	files := contextNewFiles(n, t)
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
