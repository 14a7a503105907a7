// Package desktest runs anklume commands in tests of the operator's desk
// commands (shell, console, dashboard, clipboard, copy, ai): a PSOT in a
// temporary directory, applied to an in-memory Incus (incusx.Fake), and
// the command run through cmd/root.Main with captured streams.
package desktest

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/root"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/apply"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/reconcile"
)

// Env is one test infrastructure.
type Env struct {
	Dir   string
	Fake  *incusx.Fake
	Model *model.Infra
	// Environ is the environment the commands see (Getenv, LookupEnv).
	Environ map[string]string
}

// HostOptions are the host options of the acceptance tests.
func HostOptions() host.Options {
	return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
}

// Compile compiles the infra.yml of dir.
func Compile(t testing.TB, dir string) *model.Infra {
	t.Helper()
	res, dl, err := compiler.Compile(os.DirFS(dir), compiler.Input{Path: "infra.yml", Display: "infra.yml"}, HostOptions())
	if err != nil || res == nil || res.Model == nil {
		t.Fatalf("compile: %v %v", err, dl)
	}
	return res.Model
}

// New writes psot as infra.yml and applies it to a new fake.
func New(t testing.TB, psot string) *Env {
	t.Helper()
	e := &Env{Dir: t.TempDir(), Fake: incusx.NewFake(), Environ: map[string]string{}}
	if err := os.WriteFile(filepath.Join(e.Dir, "infra.yml"), []byte(psot), 0o644); err != nil {
		t.Fatal(err)
	}
	e.Model = Compile(t, e.Dir)
	ctx := context.Background()
	obs, err := reconcile.Observe(ctx, e.Fake, reconcile.ObserveOptions{Pools: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := reconcile.Diff(incus.Desired(e.Model), obs, reconcile.Options{Model: e.Model, ResolveImage: e.Fake.ResolveImage})
	if err != nil {
		t.Fatal(err)
	}
	if r := apply.Execute(ctx, p, apply.Options{Server: e.Fake, NoSnapshot: true}); !r.OK() {
		t.Fatalf("apply: %+v", r)
	}
	e.Fake.Log().Reset()
	return e
}

// Result is what a command did.
type Result struct {
	Code           cmdutil.ExitCode
	Stdout, Stderr string
}

// Factory returns the Factory the commands of e run with, stdin in.
func (e *Env) Factory(in io.Reader, out, errOut io.Writer) *cmdutil.Factory {
	return &cmdutil.Factory{
		IO:        &cmdutil.IOStreams{In: in, Out: out, ErrOut: errOut},
		Getenv:    func(k string) string { return e.Environ[k] },
		LookupEnv: func(k string) (string, bool) { v, ok := e.Environ[k]; return v, ok },
		Getwd:     func() (string, error) { return e.Dir, nil },
		FS:        func(d string) fs.FS { return os.DirFS(d) },
		Host:      func(bool) (host.Options, error) { return HostOptions(), nil },
		Globals:   &cmdutil.GlobalOptions{},
		Incus:     func(context.Context, string) (incusx.Server, error) { return e.Fake, nil },
	}
}

// Run runs `anklume args…` with stdin in.
func (e *Env) Run(in io.Reader, args ...string) Result {
	var out, errOut bytes.Buffer
	if in == nil {
		in = bytes.NewReader(nil)
	}
	code := root.Main(e.Factory(in, &out, &errOut), args)
	return Result{code, out.String(), errOut.String()}
}
