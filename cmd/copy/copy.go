// Package copycmd implements `anklume copy SRC_MACHINE:PATH
// DST_MACHINE:PATH`: one file from a machine to another, through the Incus
// file API (never a shell), allowed and logged as internal/transfer says.
//
// The destination PATH names the file to write; when it ends with "/" the
// source's base name is added. The file is written as root with the
// source's permission bits (setuid, setgid and sticky bits dropped),
// replacing an existing file. Files up to 512 MiB are copied (they pass
// through memory); directories and symlinks are refused. The Incus file
// API writes in place: a copy interrupted half-way can leave a partial
// destination file.
package copycmd

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/target"
	"github.com/anklume/anklume/internal/transfer"
)

// MaxSize is the largest file anklume copy moves.
const MaxSize = 512 << 20

// Options are the inputs of copy.
type Options struct {
	*snapshotcmd.Env
	Src, Dst string
}

// NewCmdCopy builds the copy command. runF replaces the run function in
// tests; nil runs the real one.
func NewCmdCopy(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Env: snapshotcmd.NewEnv(f)}
	cmd := &cobra.Command{
		Use:   "copy SRC_MACHINE:PATH DST_MACHINE:PATH",
		Short: "Copy a file from one machine to another, across domains when allowed",
		Long: "Copy one file from a machine to another through Incus (no shell in either).\n" +
			"Between two domains the copy is refused unless a network policy lets the source\n" +
			"reach the destination, or the destination path is in the file_portal of its\n" +
			"domain and the source path in the file_portal of its own (one that is not\n" +
			"read_only). Every attempt, allowed or not, is recorded in .anklume/transfers.log\n" +
			"next to infra.yml. A destination ending in / keeps the source's file name.",
		Example: "  anklume copy pro-dev:/home/user/report.pdf perso-desktop:/home/user/Inbox/\n" +
			"  anklume copy anklume-instance:/srv/prompt.txt gpu-server:/srv/ai-tools/inbox/prompt.txt",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 2 {
				return cmdutil.FlagErrorf("copy needs two arguments: anklume copy SRC_MACHINE:PATH DST_MACHINE:PATH")
			}
			opts.Src, opts.Dst = args[0], args[1]
			return nil
		},
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(c.Context(), opts)
		},
	}
	return cmd
}

// ParseEnd splits "MACHINE:/path".
func ParseEnd(arg string) (machine, p string, err error) {
	machine, p, ok := strings.Cut(arg, ":")
	if !ok || machine == "" || !path.IsAbs(p) {
		return "", "", cmdutil.FlagErrorf("%q: want MACHINE:/absolute/path", arg)
	}
	return machine, p, nil
}

// Run is `anklume copy`.
func Run(ctx context.Context, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	srcName, srcPath, err := ParseEnd(opts.Src)
	if err != nil {
		return err
	}
	dstName, dstPath, err := ParseEnd(opts.Dst)
	if err != nil {
		return err
	}
	if strings.HasSuffix(dstPath, "/") {
		dstPath += path.Base(srcPath)
	}
	srcPath, dstPath = path.Clean(srcPath), path.Clean(dstPath)
	m, in, err := opts.Model()
	if err != nil {
		return err
	}
	srcM, err := target.Machine(m, srcName)
	if err != nil {
		return err
	}
	dstM, err := target.Machine(m, dstName)
	if err != nil {
		return err
	}
	return Move(ctx, opts.Env, m, in, "copy", transfer.Side{Machine: srcM, Path: srcPath}, transfer.Side{Machine: dstM, Path: dstPath}, Files{
		Read: func(ctx context.Context, srv incusx.Server) ([]byte, int, error) {
			r, ok := srv.(incusx.FileReader)
			if !ok {
				return nil, 0, fmt.Errorf("the Incus connection cannot read instance files")
			}
			return r.ReadInstanceFile(ctx, srcM.Domain.Project, srcM.Instance, srcPath, MaxSize)
		},
		Write: func(ctx context.Context, srv incusx.Server, data []byte, mode int) error {
			w, ok := srv.(incusx.FileWriter)
			if !ok {
				return fmt.Errorf("the Incus connection cannot write instance files")
			}
			return w.WriteInstanceFile(ctx, dstM.Domain.Project, dstM.Instance, dstPath, data, mode&0o777)
		},
	})
}

// Files are the two ends of a Move.
type Files struct {
	// Read returns the data and its mode.
	Read func(ctx context.Context, srv incusx.Server) ([]byte, int, error)
	// Write stores the data.
	Write func(ctx context.Context, srv incusx.Server, data []byte, mode int) error
}

// Move decides, logs and makes one transfer: the log is opened first, a
// refused transfer is logged and returned as an error before anything is
// read, and a done or failed one is logged with its outcome.
func Move(ctx context.Context, env *snapshotcmd.Env, m *model.Infra, in compiler.Input, op string, src, dst transfer.Side, files Files) error {
	base, err := env.BaseDir(in)
	if err != nil {
		return err
	}
	log, err := transfer.OpenLog(base)
	if err != nil {
		return err
	}
	defer log.Close()
	entry := transfer.Entry{Op: op, From: src.String(), To: dst.String()}
	entry.Allowed, entry.Reason = transfer.Decide(m, src, dst)
	if !entry.Allowed {
		if err := log.Record(entry, nil, env.Now()); err != nil {
			return err
		}
		return fmt.Errorf("%s refused: %s", op, entry.Reason)
	}
	srv, err := env.Connect(ctx)
	if err != nil {
		return err
	}
	data, mode, err := files.Read(ctx, srv)
	if err == nil {
		err = files.Write(ctx, srv, data, mode)
	}
	if err != nil {
		entry.Error = err.Error()
	}
	if lerr := log.Record(entry, data, env.Now()); lerr != nil && err == nil {
		err = lerr
	}
	if err != nil {
		return err
	}
	if !env.Quiet() {
		fmt.Fprintf(env.IO.ErrOut, "info: %s: %s -> %s (%d bytes; %s)\n", op, src, dst, len(data), entry.Reason)
	}
	return nil
}
