package verifycmd

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/anklume/anklume/cmd/cmdutil"
	snapshotcmd "github.com/anklume/anklume/cmd/snapshot"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/reach"
	"github.com/anklume/anklume/examples"
	"github.com/anklume/anklume/internal/goldenflag"
)

// exampleOptions returns Options that compile an example from memory.
func exampleOptions(t *testing.T, psot []byte) (*Options, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &snapshotcmd.Env{
		IO:      &cmdutil.IOStreams{Out: &out, ErrOut: &errOut},
		Globals: &cmdutil.GlobalOptions{},
		Source: func() (fs.FS, compiler.Input, []string, error) {
			return fstest.MapFS{"infra.yml": {Data: psot}}, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, nil, nil
		},
		Host: func(bool) (host.Options, error) {
			return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}, nil
		},
		Remote: func() string { return "" },
	}
	return &Options{Env: env}, &out, &errOut
}

// TestExpectedGolden: `verify --expected --json` of every example equals
// testdata/expected/<example>.json (go test ./cmd/verify -update rewrites
// them), and the table form has one line per pair.
func TestExpectedGolden(t *testing.T) {
	for _, name := range examples.Names() {
		t.Run(name, func(t *testing.T) {
			data, err := examples.Read(name)
			if err != nil {
				t.Fatal(err)
			}
			opts, out, errOut := exampleOptions(t, data)
			opts.Expected, opts.JSON = true, true
			if err := Run(context.Background(), opts); err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			golden := filepath.Join("testdata", "expected", name+".json")
			if *goldenflag.Update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/verify -update)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("verify --expected --json differs from %s:\n%s", golden, out)
			}
			var mx reach.Matrix
			if err := json.Unmarshal(out.Bytes(), &mx); err != nil || len(mx.Pairs) == 0 {
				t.Fatalf("not a matrix (%v)", err)
			}

			opts, out, _ = exampleOptions(t, data)
			opts.Expected = true
			if err := Run(context.Background(), opts); err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(out.Bytes(), []byte("\n")); n != len(mx.Pairs)+1 {
				t.Errorf("table has %d lines, want %d", n, len(mx.Pairs)+1)
			}
		})
	}
}

// TestFlags: the flags reach Options.
func TestFlags(t *testing.T) {
	var out bytes.Buffer
	f := &cmdutil.Factory{IO: &cmdutil.IOStreams{Out: &out, ErrOut: &out}, Globals: &cmdutil.GlobalOptions{}}
	var got *Options
	cmd := NewCmdVerify(f, func(o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--expected", "--json"})
	if err := cmd.Execute(); err != nil || got == nil || !got.Expected || !got.JSON {
		t.Fatalf("err %v, opts %+v", err, got)
	}
	got = nil
	cmd = NewCmdVerify(f, func(o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--json", "--limit", "a", "--limit", "b", "--pairs", "5", "-j", "3", "--budget", "10s", "--timeout", "200ms"})
	if err := cmd.Execute(); err != nil || got == nil || got.Expected || !got.JSON || len(got.Limit) != 2 || got.Pairs != 5 ||
		got.Jobs != 3 || got.Budget != 10*time.Second || got.Timeout != 200*time.Millisecond {
		t.Fatalf("live --json: err %v, opts %+v", err, got)
	}
	cmd = NewCmdVerify(f, func(o *Options) error { return nil })
	cmd.SetArgs([]string{"extra"})
	if err := cmd.Execute(); err == nil {
		t.Error("an argument was accepted")
	}
}
