package unlock

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/lock"
)

// TestUnlock: no lock; a fresh lock refused without --force (the §9.7
// message); removed with --force (SPEC.md §9.7, §12.8).
func TestUnlock(t *testing.T) {
	f := incusx.NewFake()
	var out, errOut bytes.Buffer
	opts := &Options{IO: &cmdutil.IOStreams{Out: &out, ErrOut: &errOut}, Remote: func() string { return "" },
		Incus: func(context.Context, string) (incusx.Server, error) { return f, nil }}
	if err := Run(context.Background(), opts); err != nil || out.String() != "no lock is held\n" {
		t.Fatalf("no lock: %v %q", err, out.String())
	}
	if _, err := lock.Acquire(context.Background(), lock.Options{Server: f, Command: "apply", Owner: "bob@far:1"}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err := Run(context.Background(), opts)
	if !errors.Is(err, cmdutil.ErrSilent) || !strings.HasPrefix(errOut.String(), "error: another anklume run holds the lock on this Incus server (bob@far:1, apply, since ") ||
		!strings.HasSuffix(errOut.String(), "  hint: "+HintFresh+"\n") {
		t.Fatalf("fresh lock: %v %q", err, errOut.String())
	}
	opts.Force = true
	if err := Run(context.Background(), opts); err != nil || !strings.HasPrefix(out.String(), "unlocked: removed the lock held by bob@far:1 (apply, since ") {
		t.Fatalf("--force: %v %q", err, out.String())
	}
}
