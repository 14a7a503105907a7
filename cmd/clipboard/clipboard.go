// Package clipboardcmd implements `anklume clipboard to|from MACHINE
// [--path P]`: the host clipboard copied into a machine, or a machine's
// clipboard file into the host clipboard.
//
// Host side: wl-paste/wl-copy when they are on PATH (Wayland), else xclip
// on the CLIPBOARD selection, run as argument vectors. Guest side: the
// file P (default /tmp/anklume-clipboard), read or written through the
// Incus file API, never through a shell; it is written as root with mode
// 0600. Text up to 16 MiB is moved. The transfer is allowed and logged as
// internal/transfer says: `to` goes from the host to the machine, `from`
// from the machine to the host.
package clipboardcmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	copycmd "github.com/anklume/anklume/cmd/copy"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/target"
	"github.com/anklume/anklume/internal/transfer"
)

// DefaultPath is the guest's clipboard file.
const DefaultPath = "/tmp/anklume-clipboard"

// MaxSize is the largest clipboard moved.
const MaxSize = 16 << 20

// Options are the inputs of clipboard.
type Options struct {
	*snapshotcmd.Env
	// Direction is "to" (host -> machine) or "from" (machine -> host).
	Direction string
	Machine   string
	Path      string
	// LookPath finds the clipboard tools (exec.LookPath).
	LookPath func(string) (string, error)
}

// NewCmdClipboard builds the clipboard command. runF replaces the run
// function in tests; nil runs the real one.
func NewCmdClipboard(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Env: snapshotcmd.NewEnv(f), LookPath: exec.LookPath}
	cmd := &cobra.Command{
		Use:   "clipboard to|from MACHINE [--path P]",
		Short: "Copy the host clipboard into a machine, or a machine's clipboard out",
		Long: "\"to\" puts the host clipboard into the file P in MACHINE (default\n" +
			"/tmp/anklume-clipboard, readable by root only); \"from\" puts that file into the\n" +
			"host clipboard. The host side uses wl-copy/wl-paste (Wayland) or xclip (X11),\n" +
			"whichever is installed. The copy is refused unless a network policy lets the\n" +
			"source reach the destination (host -> machine for \"to\", machine -> host for\n" +
			"\"from\"), or P is in the file_portal of the machine's domain (and, for \"from\",\n" +
			"that portal is not read_only). Every attempt is recorded in\n" +
			".anklume/transfers.log next to infra.yml.",
		Example: "  anklume clipboard to perso-desktop\n" +
			"  anklume clipboard from browse-vm --path /srv/portal/clipboard",
		ValidArgs: []string{"to", "from"},
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 2 || args[0] != "to" && args[0] != "from" {
				return cmdutil.FlagErrorf("clipboard needs a direction and a machine: anklume clipboard to|from MACHINE")
			}
			opts.Direction, opts.Machine = args[0], args[1]
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(c.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Path, "path", DefaultPath, "clipboard file inside the machine")
	return cmd
}

// Tool is the host clipboard program.
type Tool struct {
	Paste, Copy []string
}

// FindTool picks wl-paste/wl-copy, else xclip.
func FindTool(lookPath func(string) (string, error)) (Tool, error) {
	wlPaste, err1 := lookPath("wl-paste")
	wlCopy, err2 := lookPath("wl-copy")
	if err1 == nil && err2 == nil {
		return Tool{Paste: []string{wlPaste, "--no-newline"}, Copy: []string{wlCopy}}, nil
	}
	if x, err := lookPath("xclip"); err == nil {
		return Tool{Paste: []string{x, "-selection", "clipboard", "-o"}, Copy: []string{x, "-selection", "clipboard", "-i"}}, nil
	}
	return Tool{}, errors.New("no clipboard tool: install wl-clipboard (Wayland) or xclip (X11)")
}

// Run is `anklume clipboard`.
func Run(ctx context.Context, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if !path.IsAbs(opts.Path) {
		return cmdutil.FlagErrorf("--path %q: want an absolute path", opts.Path)
	}
	p := path.Clean(opts.Path)
	tool, err := FindTool(opts.LookPath)
	if err != nil {
		return err
	}
	m, in, err := opts.Model()
	if err != nil {
		return err
	}
	mc, err := target.Machine(m, opts.Machine)
	if err != nil {
		return err
	}
	guest := transfer.Side{Machine: mc, Path: p}
	host := transfer.Side{Path: "clipboard"}
	readFile := func(ctx context.Context, srv incusx.Server) ([]byte, int, error) {
		r, ok := srv.(incusx.FileReader)
		if !ok {
			return nil, 0, fmt.Errorf("the Incus connection cannot read instance files")
		}
		return r.ReadInstanceFile(ctx, mc.Domain.Project, mc.Instance, p, MaxSize)
	}
	writeFile := func(ctx context.Context, srv incusx.Server, data []byte, _ int) error {
		w, ok := srv.(incusx.FileWriter)
		if !ok {
			return fmt.Errorf("the Incus connection cannot write instance files")
		}
		return w.WriteInstanceFile(ctx, mc.Domain.Project, mc.Instance, p, data, 0o600)
	}
	if opts.Direction == "to" {
		return copycmd.Move(ctx, opts.Env, m, in, "clipboard-to", host, guest, copycmd.Files{
			Read: func(ctx context.Context, _ incusx.Server) ([]byte, int, error) {
				b, err := run(ctx, tool.Paste, nil)
				if len(b) > MaxSize {
					return nil, 0, fmt.Errorf("the clipboard holds more than %d bytes", MaxSize)
				}
				return b, 0o600, err
			},
			Write: writeFile,
		})
	}
	return copycmd.Move(ctx, opts.Env, m, in, "clipboard-from", guest, host, copycmd.Files{
		Read: readFile,
		Write: func(ctx context.Context, _ incusx.Server, data []byte, _ int) error {
			_, err := run(ctx, tool.Copy, data)
			return err
		},
	})
}

// run runs argv with stdin and returns its stdout.
func run(ctx context.Context, argv []string, stdin []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", path.Base(argv[0]), err, bytes.TrimSpace(errOut.Bytes()))
	}
	return out.Bytes(), nil
}
