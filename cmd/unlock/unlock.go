// Package unlock implements `anklume unlock [--force]` (SPEC.md §9.7,
// §12.8): it removes a stale lock from the Incus server, or any lock with
// --force.
package unlock

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/lock"
)

// HintFresh is printed under the §9.7 message when the lock is fresh.
const HintFresh = "the lock is fresh; pass --force to remove it anyway"

// Options are the inputs of unlock.
type Options struct {
	IO     *cmdutil.IOStreams
	Remote func() string
	// Incus connects to the server (the Fake in tests).
	Incus func(ctx context.Context, remote string) (incusx.Server, error)
	// Lock tweaks the lock options (tests: clock, host, liveness).
	Lock func(*lock.Options)

	Force bool
}

// NewCmdUnlock builds the unlock command. runF replaces the run function
// in tests; nil runs the real one.
func NewCmdUnlock(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Remote: f.Remote, Incus: f.Incus}
	cmd := &cobra.Command{
		Use: "unlock",
		Example: "  anklume unlock\n" +
			"  anklume unlock --force",
		Short: "Remove a stale anklume lock from the Incus server",
		Long: "Remove the lock that apply, flush, destroy and snapshot rollback take on the Incus\n" +
			"server, when its heartbeat is more than 10 minutes old or its process on this host\n" +
			"is gone. With --force, remove it whatever its state.",
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "remove the lock even if it is fresh")
	return cmd
}

// Run is `anklume unlock`. It prints `unlocked: removed the lock held by
// <owner> (<command>, since <acquired>)`, or `no lock is held`.
func Run(ctx context.Context, opts *Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	srv, err := opts.Incus(ctx, opts.Remote())
	if err != nil {
		return err
	}
	lopts := lock.Options{Server: srv, Command: "unlock", Warn: opts.IO.ErrOut}
	if opts.Lock != nil {
		opts.Lock(&lopts)
	}
	info, removed, err := lock.Unlock(ctx, lopts, opts.Force)
	var held *lock.HeldError
	if errors.As(err, &held) {
		fmt.Fprintf(opts.IO.ErrOut, "error: %s\n  hint: %s\n", held, HintFresh)
		return cmdutil.ErrSilent
	}
	if err != nil {
		return err
	}
	if !removed {
		fmt.Fprintln(opts.IO.Out, "no lock is held")
		return nil
	}
	fmt.Fprintf(opts.IO.Out, "unlocked: removed the lock held by %s (%s, since %s)\n", info.Owner, info.Command, info.Acquired)
	return nil
}
