package apply

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anklume/anklume/internal/hostdirs"
	"github.com/anklume/anklume/internal/reconcile"
)

// dataDomains is twoDomains with persistent data on a2, under base.
func dataDomains(base string, moved bool) string {
	y := strings.Replace(twoDomains, "  default_os_image: anklume-test\n",
		"  default_os_image: anklume-test\n  persistent_data_base: "+base+"\n", 1)
	if moved {
		y = strings.Replace(y, "      a2: {ip: 10.200.0.12}\n", "", 1)
		return strings.Replace(y, "      b1: {}\n", "      b1: {}\n      a2: {persistent_data: {home: {path: /home}}}\n", 1)
	}
	return strings.Replace(y, "a2: {ip: 10.200.0.12}", "a2: {ip: 10.200.0.12, persistent_data: {home: {path: /home}}}", 1)
}

// hostOpts are the host facts `anklume plan` gives the reconciler.
func hostOpts() reconcile.Options {
	return reconcile.Options{
		DirExists: func(p string) bool { _, err := os.Lstat(p); return err == nil },
		EmptyDir:  hostdirs.EmptyOrMissing,
	}
}

// TestMoveCarriesData: a machine that moves to another domain takes its
// persistent data along: the plan says so, apply renames the directory to
// its path under the new domain and mounts it there. A run cut after the
// release (before the data moved) and one cut after the data moved
// (before the instance did) both converge on the next plan and apply; the
// user's file is, at every point, at exactly one of the two paths. A
// destination that already holds files fails the plan and nothing moves.
func TestMoveCarriesData(t *testing.T) {
	base := t.TempDir()
	from, to := filepath.Join(base, "a", "a2", "home"), filepath.Join(base, "b", "a2", "home")
	f := applied(t, desired(t, dataDomains(base, false)))
	if err := os.MkdirAll(from, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(from, "notes"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := desired(t, dataDomains(base, true))
	mine := func(where string) {
		t.Helper()
		at := map[string]bool{}
		for _, p := range []string{from, to} {
			b, err := os.ReadFile(filepath.Join(p, "notes"))
			at[p] = err == nil && string(b) == "mine"
		}
		if !at[where] || at[from] && at[to] {
			t.Fatalf("%s: the file should be at %s only: %v", where, where, at)
		}
	}
	// apply runs with the desired directories made first, as cmd/apply does.
	makeDirs := func(o *Options) {
		o.HostDirs = []hostdirs.Dir{{Path: to, Kind: hostdirs.Persistent, Chosen: true}}
		o.MakeDir = func(d hostdirs.Dir) (string, error) {
			return "", hostdirs.Create(d, hostdirs.Owner{UID: os.Getuid(), GID: os.Getgid()})
		}
	}
	wantReason := "(move: a -> b; persistent data " + from + " moves to " + to + ")"

	// Cut after the release: the instance no longer mounts the data, which
	// has not moved.
	p := planFor(t, f, s, hostOpts())
	if !strings.Contains(planText(p), wantReason) {
		t.Fatalf("plan lacks %q:\n%s", wantReason, planText(p))
	}
	r, _, _ := run(t, f, p, func(o *Options) {
		makeDirs(o)
		o.MoveDir = func(hostdirs.Move) error { return errors.New("cut") }
	})
	if r.OK() {
		t.Fatal("the cut run succeeded")
	}
	mine(from)
	if live := liveInst(t, f, "a", "a2"); live.Devices["pd-home"] != nil {
		t.Errorf("released instance still mounts its data: %v", live.Devices)
	}

	// The next plan finds the old directory from the old domain's name;
	// cut after the data moved, before the instance.
	p = planFor(t, f, s, hostOpts())
	if !strings.Contains(planText(p), wantReason) {
		t.Fatalf("plan after the first cut lacks %q:\n%s", wantReason, planText(p))
	}
	f.Fail("MoveInstance", "a/a2", errors.New("connection lost"))
	if r, _, _ := run(t, f, p, makeDirs); r.OK() {
		t.Fatal("the cut run succeeded")
	}
	f.Fail("MoveInstance", "a/a2", nil)
	mine(to)

	// Nothing left to move: a plain move, then no changes.
	p = planFor(t, f, s, hostOpts())
	if text := planText(p); !strings.Contains(text, "(move: a -> b)") {
		t.Fatalf("plan after the second cut:\n%s", text)
	}
	if r, out, errOut := run(t, f, p, makeDirs); !r.OK() {
		t.Fatalf("%s\n%s", out, errOut)
	}
	mine(to)
	if live := liveInst(t, f, "b", "a2"); live.Devices["pd-home"]["source"] != to || live.Status != "Running" {
		t.Errorf("moved instance: %s %v", live.Status, live.Devices)
	}
	if p := planFor(t, f, s, hostOpts()); len(p.Changes) > 0 {
		t.Errorf("plan after the move is not empty:\n%s", planText(p))
	}
}

// TestMoveDataDestinationFull: the plan of a move whose destination
// already holds files fails, and MoveDir itself refuses it (a directory
// filled between plan and apply): nothing moves.
func TestMoveDataDestinationFull(t *testing.T) {
	base := t.TempDir()
	from, to := filepath.Join(base, "a", "a2", "home"), filepath.Join(base, "b", "a2", "home")
	f := applied(t, desired(t, dataDomains(base, false)))
	for _, p := range []string{from, to} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "notes"), []byte(p), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	obs, err := reconcile.Observe(context.Background(), f, reconcile.ObserveOptions{Pools: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = reconcile.Diff(desired(t, dataDomains(base, true)), obs, hostOpts())
	if errs := reconcile.Errors(err); len(errs) != 1 || !strings.Contains(errs[0].Msg, "which exists and is not empty") {
		t.Errorf("plan: %v", err)
	}
	err = hostdirs.MoveDir(hostdirs.Move{From: from, To: to})
	if !errors.Is(err, hostdirs.ErrNotEmpty) {
		t.Errorf("MoveDir onto files: %v", err)
	}
	for _, p := range []string{from, to} {
		if b, err := os.ReadFile(filepath.Join(p, "notes")); err != nil || string(b) != p {
			t.Errorf("%s changed: %q %v", p, b, err)
		}
	}
}
