package root

import (
	"context"
	"io/fs"
	"os"

	"golang.org/x/term"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/cachedir"
	"github.com/anklume/anklume/internal/hostenv"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/schemamemo"
)

// NewFactory returns the Factory of the real process: the OS streams,
// environment, file system and host. schemaJSON and schemaPart come from
// the embedded schema package (wired by main).
//
// Every compile of the process shares one memo of the PSOTs the schema
// accepted (internal/schemamemo, in the user's cache directory).
func NewFactory(build cmdutil.BuildInfo, schemaJSON func() []byte, schemaPart func(string) ([]byte, error)) *cmdutil.Factory {
	memo := schemamemo.New(cachedir.Dir(os.Getenv), schemamemo.Executable)
	return &cmdutil.Factory{
		IO: &cmdutil.IOStreams{
			In:     os.Stdin,
			Out:    os.Stdout,
			ErrOut: os.Stderr,
			OutTTY: isTerminal(os.Stdout),
			ErrTTY: isTerminal(os.Stderr),
			OutWidth: func() int {
				w, _, err := term.GetSize(int(os.Stdout.Fd()))
				if err != nil {
					return 0
				}
				return w
			},
		},
		Getenv:    os.Getenv,
		LookupEnv: os.LookupEnv,
		Getwd:     os.Getwd,
		FS:        func(dir string) fs.FS { return os.DirFS(dir) },
		Host: func(remote bool) (host.Options, error) {
			o, err := hostenv.Gather(hostenv.OS(), remote)
			o.SchemaMemo = memo
			return o, err
		},
		Schema:     schemaJSON,
		SchemaPart: schemaPart,
		Build:      build,
		Incus: func(ctx context.Context, remote string) (incusx.Server, error) {
			return incusx.Connect(ctx, incusx.Options{Remote: remote, UserAgent: "anklume/" + build.Version})
		},
		Remotes: func() []string { return incusx.RemoteNames("") },
		Globals: &cmdutil.GlobalOptions{},
	}
}

// isTerminal reports whether f is a terminal (golang.org/x/term, which
// asks the tty driver: /dev/null is a character device but no terminal).
func isTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}
