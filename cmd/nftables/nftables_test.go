package nftables

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/nft"
	"github.com/anklume/anklume/compiler/host"
	nftsys "github.com/anklume/anklume/internal/nftables"
)

// TestNewCmdNftablesFlags checks subcommands and flags through the
// injected run function.
func TestNewCmdNftablesFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    Options
		wantErr bool
	}{
		{args: []string{"render"}, want: Options{Action: Render}},
		{args: []string{"render", "-o", "x.nft"}, want: Options{Action: Render, Output: "x.nft"}},
		{args: []string{"deploy"}, want: Options{Action: Deploy}},
		{args: []string{"deploy", "--dry-run", "--no-persist", "--skip-preflight"}, want: Options{Action: Deploy, DryRun: true, NoPersist: true, SkipPreflight: true}},
		{args: []string{"status"}, want: Options{Action: Status}},
		{args: []string{"status", "--dry-run"}, wantErr: true},
		{args: []string{"render", "extra"}, wantErr: true},
		{args: []string{"bogus"}, wantErr: true},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		f := &cmdutil.Factory{IO: &cmdutil.IOStreams{Out: &out, ErrOut: &errOut}, Globals: &cmdutil.GlobalOptions{}}
		var got *Options
		cmd := NewCmdNftables(f, func(o *Options) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		err := cmd.Execute()
		if tt.wantErr {
			if err == nil {
				t.Errorf("%q: no error", tt.args)
			}
			continue
		}
		if err != nil || got == nil {
			t.Fatalf("%q: err %v, run called %v", tt.args, err, got != nil)
		}
		if got.Action != tt.want.Action || got.Output != tt.want.Output || got.DryRun != tt.want.DryRun ||
			got.NoPersist != tt.want.NoPersist || got.SkipPreflight != tt.want.SkipPreflight {
			t.Errorf("%q: got %+v", tt.args, got)
		}
	}
}

const psot = `format_version: 1
project_name: demo
global:
  addressing: {}
domains:
  lab:
    trust_level: trusted
    machines:
      lab-1: {}
`

// testOptions returns Options that compile psot from memory, with the
// given action; remote is the --remote value.
func testOptions(t *testing.T, action, remote string) (*Options, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	var out, errOut bytes.Buffer
	wd := t.TempDir()
	return &Options{
		IO:      &cmdutil.IOStreams{Out: &out, ErrOut: &errOut},
		Globals: &cmdutil.GlobalOptions{},
		Source: func() (fs.FS, compiler.Input, []string, error) {
			return fstest.MapFS{"infra.yml": {Data: []byte(psot)}}, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, nil, nil
		},
		Host: func(bool) (host.Options, error) {
			return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}, nil
		},
		Remote: func() string { return remote },
		Getwd:  func() (string, error) { return wd, nil },
		Action: action,
	}, &out, &errOut
}

// TestRender prints the ruleset, or writes it with -o.
func TestRender(t *testing.T) {
	opts, out, _ := testOptions(t, Render, "")
	if err := Run(opts); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out.Bytes(), []byte("table inet anklume\ndelete table inet anklume\n")) ||
		!bytes.Contains(out.Bytes(), []byte(`comment "anklume infra=demo"`)) {
		t.Errorf("stdout:\n%s", out)
	}
	first := out.String()

	opts, out, _ = testOptions(t, Render, "")
	opts.Output = "rules.nft"
	if err := Run(opts); err != nil {
		t.Fatal(err)
	}
	wd, _ := opts.Getwd()
	data, err := os.ReadFile(filepath.Join(wd, "rules.nft"))
	if err != nil || string(data) != first || out.Len() != 0 {
		t.Errorf("-o wrote %q (%v), stdout %q", data, err, out)
	}
}

// fakeStatus is a System whose nft reports a fixed table.
func fakeStatus(tables, live, canonical string) nftsys.System {
	return nftsys.System{
		NFT:      "nft",
		LookPath: func(string) (string, error) { return "/usr/sbin/nft", nil },
		Run: func(_ context.Context, name string, args ...string) ([]byte, []byte, error) {
			switch {
			case name == "unshare":
				return []byte(canonical), nil, nil
			case len(args) > 0 && args[0] == "list":
				return []byte(tables), nil, nil
			case len(args) > 0 && args[0] == "-s":
				return []byte(live), nil, nil
			}
			return nil, nil, errors.New("unexpected")
		},
	}
}

// TestStatusExitCodes: in sync exits 0, drift and not loaded exit 2 with
// no flag (§7.8, §13); --remote is refused.
func TestStatusExitCodes(t *testing.T) {
	table := "table inet anklume {\n\tchain isolation {\n\t}\n}\n"
	tests := []struct {
		name    string
		sys     nftsys.System
		remote  string
		wantOut string
		wantErr string
		code    cmdutil.ExitCode
	}{
		{name: "in sync", sys: fakeStatus("table inet anklume\n", table, table), wantOut: "nftables: in sync\n"},
		{name: "not loaded", sys: fakeStatus("", "", table), wantOut: "nftables: not loaded\n", code: 2},
		{
			name: "drift", sys: fakeStatus("table inet anklume\n", "table inet anklume {\n}\n", table), code: 2,
			wantOut: "nftables: drift\n--- live table inet anklume\n+++ rendered from the PSOT\n@@ -1,2 +1,4 @@\n table inet anklume {\n+\tchain isolation {\n+\t}\n }\n",
		},
		{name: "remote", remote: "r", wantErr: nftsys.MsgRemote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, out, _ := testOptions(t, Status, tt.remote)
			opts.System = tt.sys
			err := Run(opts)
			var ee *cmdutil.ExitError
			switch {
			case tt.wantErr != "":
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
			case tt.code != 0:
				if !errors.As(err, &ee) || ee.Code != tt.code {
					t.Fatalf("err = %v, want exit %d", err, tt.code)
				}
			case err != nil:
				t.Fatal(err)
			}
			if out.String() != tt.wantOut {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, tt.wantOut)
			}
		})
	}
}

// TestDeployHintAndDryRun: an error with a hint is printed with it, and
// --dry-run prints the refreshed file and writes nothing (§16 #51).
func TestDeployHintAndDryRun(t *testing.T) {
	opts, _, errOut := testOptions(t, Deploy, "")
	opts.System = nftsys.System{NFT: "nft", LookPath: func(string) (string, error) { return "", os.ErrNotExist }, Privileged: func() bool { return true }}
	if err := Run(opts); !errors.Is(err, cmdutil.ErrSilent) {
		t.Fatalf("err = %v", err)
	}
	if want := "error: nft not found in PATH\n  hint: install nftables\n"; errOut.String() != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}

	opts, out, _ := testOptions(t, Deploy, "")
	opts.DryRun, opts.SkipPreflight = true, true
	opts.System = fakeStatus("", "", "")
	opts.System.Run = func(_ context.Context, name string, args ...string) ([]byte, []byte, error) {
		if len(args) > 0 && args[0] == "-f" {
			t.Errorf("dry run loaded the rules")
		}
		return nil, nil, nil
	}
	opts.System.TempDir = t.TempDir()
	if err := Run(opts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out.Bytes(), []byte("# === MANAGED BY infra.yml ===\n")) || !bytes.Contains(out.Bytes(), []byte("table inet anklume {")) {
		t.Errorf("dry run printed:\n%s", out)
	}
	wd, _ := opts.Getwd()
	if _, err := os.Stat(filepath.Join(wd, filepath.FromSlash(nft.Path))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dry run wrote %s: %v", nft.Path, err)
	}
}
