package incusx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	incus "github.com/lxc/incus/v6/client"
	"github.com/lxc/incus/v6/shared/api"
)

// InstanceOps is what the lifecycle commands of SPEC.md §12.5–§12.7 (disp,
// golden, backup) need beyond Server: instance backups as a tarball,
// copies from a snapshot, images published from a snapshot and commands
// run in an instance. Both Client and Fake implement it; commands get it
// from a Server with a type assertion.
type InstanceOps interface {
	Server
	// ExportInstance streams a backup of the instance (without its
	// snapshots, gzip-compressed tarball) to w. The backup is made on the
	// server, downloaded, then deleted from the server.
	ExportInstance(ctx context.Context, project, name string, w io.Writer) error
	// ImportInstance creates the instance name in project from a backup
	// tarball that ExportInstance wrote. The new instance is stopped.
	ImportInstance(ctx context.Context, project, name string, r io.Reader) error
	// CopySnapshot creates the stopped instance newName in the same
	// project as a copy of <instance>/<snapshot>: the config, devices and
	// profiles of the snapshot, without its volatile.* keys.
	CopySnapshot(ctx context.Context, project, instance, snapshot, newName string) error
	// PublishSnapshot publishes <instance>/<snapshot> as an image with the
	// alias.
	PublishSnapshot(ctx context.Context, project, instance, snapshot, alias string) error
	// Exec runs argv in a running instance, as an argument vector (never
	// through a shell), with the streams of req, and returns the command's
	// exit status.
	Exec(ctx context.Context, project, instance string, argv []string, req ExecIO) (int, error)
}

// ExecIO are the streams of Exec. A nil Stdin reads nothing.
type ExecIO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Interactive allocates a terminal in the instance (stdout and stderr
	// are then one stream, Stdout).
	Interactive bool
	// Env is extra environment for the command.
	Env map[string]string
	// Width and Height are the terminal size of an Interactive command
	// (0 leaves Incus's default, 80x25).
	Width, Height int
	// Resize, when not nil, carries new terminal sizes to an Interactive
	// command while it runs (the exec control channel's window-resize).
	Resize <-chan TermSize
}

// TermSize is a terminal size in columns and rows.
type TermSize struct{ Width, Height int }

var (
	_ InstanceOps = (*Client)(nil)
	_ InstanceOps = (*Fake)(nil)
)

// noSeek adapts an io.Writer to the io.WriteSeeker that the Incus client
// asks for when it downloads a backup; it only writes.
type noSeek struct{ io.Writer }

func (noSeek) Seek(int64, int) (int64, error) {
	return 0, errors.New("backup stream is not seekable")
}

// ExportInstance implements InstanceOps.
func (c *Client) ExportInstance(ctx context.Context, project, name string, w io.Writer) error {
	fail := func(err error) error { return wrap(err, "exporting", "instance", project, name) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	srv := c.in(project)
	backup := fmt.Sprintf("anklume-export-%d", time.Now().UnixNano())
	op, err := srv.CreateInstanceBackup(name, api.InstanceBackupsPost{
		Name: backup, ExpiresAt: time.Now().Add(24 * time.Hour), InstanceOnly: true,
		CompressionAlgorithm: "gzip",
	})
	if err := wait(ctx, op, err); err != nil {
		return fail(err)
	}
	_, gerr := srv.GetInstanceBackupFile(name, backup, &incus.BackupFileRequest{BackupFile: noSeek{w}})
	dop, derr := srv.DeleteInstanceBackup(name, backup)
	derr = wait(context.WithoutCancel(ctx), dop, derr)
	if gerr != nil {
		return fail(gerr)
	}
	if derr != nil {
		return wrap(derr, "deleting the export backup of", "instance", project, name)
	}
	return nil
}

// RestoreStagePrefix starts the name of the temporary instance that
// ImportInstance imports a backup as, before it moves and renames it; a
// decimal number follows. One left behind is the trace of a restore that
// did not finish.
const RestoreStagePrefix = "anklume-restore-"

// ImportInstance implements InstanceOps.
//
// Incus 6.0 refuses to import a backup into a restricted project (every
// anklume project): it checks the volatile.* keys it sets itself against
// restricted.containers.lowlevel ("Setting \"volatile.uuid\" … is
// forbidden"). So the backup is imported into the default project under a
// unique staging name, moved to the project (a move is allowed) and
// renamed. A failure deletes the staged instance.
func (c *Client) ImportInstance(ctx context.Context, project, name string, r io.Reader) error {
	fail := func(err error) error { return wrap(err, "importing", "instance", project, name) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if project == "" || project == DefaultProject {
		op, err := c.srv.CreateInstanceFromBackup(incus.InstanceBackupArgs{BackupFile: r, Name: name})
		return fail(wait(ctx, op, err))
	}
	stage := fmt.Sprintf("%s%d", RestoreStagePrefix, time.Now().UnixNano())
	op, err := c.srv.CreateInstanceFromBackup(incus.InstanceBackupArgs{BackupFile: r, Name: stage})
	if err := wait(ctx, op, err); err != nil {
		return fail(err)
	}
	at := DefaultProject
	err = c.MoveInstance(ctx, DefaultProject, stage, project)
	if err == nil {
		at = project
		err = c.RenameInstance(ctx, project, stage, name)
	}
	if err != nil {
		_ = c.DeleteInstance(context.WithoutCancel(ctx), at, stage)
		return fail(err)
	}
	return nil
}

// CopySnapshot implements InstanceOps.
func (c *Client) CopySnapshot(ctx context.Context, project, instance, snapshot, newName string) error {
	fail := func(err error) error {
		return wrap(err, fmt.Sprintf("copying snapshot %q of", snapshot), "instance", project, instance)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	req := api.InstancesPost{Name: newName, Source: api.InstanceSource{
		Type: "copy", Source: instance + "/" + snapshot, Project: project,
	}}
	op, err := c.in(project).CreateInstance(req)
	return fail(wait(ctx, op, err))
}

// PublishSnapshot implements InstanceOps.
func (c *Client) PublishSnapshot(ctx context.Context, project, instance, snapshot, alias string) error {
	fail := func(err error) error {
		return wrap(err, fmt.Sprintf("publishing snapshot %q of", snapshot), "instance", project, instance)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	op, err := c.in(project).CreateImage(api.ImagesPost{
		Source:  &api.ImagesPostSource{Type: "snapshot", Name: instance + "/" + snapshot, Project: project},
		Aliases: []api.ImageAlias{{Name: alias}},
	}, nil)
	return fail(wait(ctx, op, err))
}

// Exec implements InstanceOps.
func (c *Client) Exec(ctx context.Context, project, instance string, argv []string, req ExecIO) (int, error) {
	fail := func(err error) (int, error) {
		return -1, wrap(err, "running a command in", "instance", project, instance)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	stdin := req.Stdin
	if stdin == nil {
		stdin = eofReader{}
	}
	done := make(chan bool)
	post := api.InstanceExecPost{Command: argv, WaitForWS: true, Interactive: req.Interactive, Environment: req.Env,
		Width: req.Width, Height: req.Height}
	args := &incus.InstanceExecArgs{Stdin: stdin, Stdout: req.Stdout, Stderr: req.Stderr, DataDone: done}
	finished := make(chan struct{})
	defer close(finished)
	if req.Resize != nil && req.Interactive {
		args.Control = func(conn *websocket.Conn) { forwardResizes(conn, req.Resize, finished) }
	}
	op, err := c.in(project).ExecInstance(instance, post, args)
	if err != nil {
		return fail(err)
	}
	if err := op.WaitContext(ctx); err != nil {
		return fail(err)
	}
	<-done
	code, ok := op.Get().Metadata["return"].(float64)
	if !ok {
		return fail(errors.New("the exec operation returned no exit status"))
	}
	return int(code), nil
}

// forwardResizes sends each size of sizes as a window-resize message on
// the exec control channel until finished is closed or sizes is.
func forwardResizes(conn *websocket.Conn, sizes <-chan TermSize, finished <-chan struct{}) {
	for {
		select {
		case <-finished:
			return
		case s, ok := <-sizes:
			if !ok {
				return
			}
			msg := api.InstanceExecControl{Command: "window-resize", Args: map[string]string{
				"width": strconv.Itoa(s.Width), "height": strconv.Itoa(s.Height),
			}}
			if conn.WriteJSON(msg) != nil {
				return // the command ended and the channel closed
			}
		}
	}
}

// eofReader is an empty stdin.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
