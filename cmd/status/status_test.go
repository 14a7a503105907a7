package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/incusx"
	nftsys "github.com/anklume/anklume/internal/nftables"
	"github.com/anklume/anklume/internal/verify"
)

const psot = `format_version: 1
project_name: st
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: anklume-test
domains:
  work:
    trust_level: trusted
    machines:
      web: {}
`

// TestStatusCommand: the nftables line is last, --json has the §12.1
// keys, --remote gives "not checked (remote)" and null, and a failed
// check gives a warning and exit 0 (SPEC.md §12.1, §16 #93).
func TestStatusCommand(t *testing.T) {
	tests := []struct {
		name     string
		remote   string
		json     bool
		nftErr   error
		wantLast string
	}{
		{"text", "", false, nil, "nftables: drift"},
		{"remote", "r", false, nil, NFTRemote},
		{"check fails", "", false, errors.New("nft not found in PATH"), "nftables: not checked (nft not found in PATH)"},
		{"json", "", true, nil, `"nftables":"drift"`},
		{"json remote", "r", true, nil, `"nftables":null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			mfs := fstest.MapFS{"infra.yml": {Data: []byte(psot)}}
			opts := &Options{
				IO: &cmdutil.IOStreams{Out: &out, ErrOut: &errOut},
				Source: func() (fs.FS, compiler.Input, []string, error) {
					return mfs, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, nil, nil
				},
				Host: func(bool) (host.Options, error) {
					return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}, nil
				},
				Remote: func() string { return tt.remote },
				Incus:  func(context.Context, string) (incusx.Server, error) { return incusx.NewFake(), nil },
				NFTStatus: func(context.Context, []byte) (nftsys.State, []byte, error) {
					return nftsys.Drift, nil, tt.nftErr
				},
				JSON: tt.json,
			}
			if err := Run(context.Background(), opts); err != nil {
				t.Fatalf("%v\n%s", err, errOut.String())
			}
			if tt.json {
				var doc map[string]any
				if err := json.Unmarshal(out.Bytes(), &doc); err != nil || !strings.Contains(out.String(), tt.wantLast) ||
					!strings.HasPrefix(out.String(), `{"format_version":1,"infra":"st","nftables":`) {
					t.Errorf("json: %v\n%s", err, out.String())
				}
				return
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if lines[len(lines)-1] != tt.wantLast || !strings.Contains(out.String(), "  web      lxc   Absent  -   *\n") {
				t.Errorf("output:\n%s", out.String())
			}
			if (tt.nftErr != nil) != strings.Contains(errOut.String(), "warning: checking the nftables table:") {
				t.Errorf("stderr %q", errOut.String())
			}
		})
	}
}

// TestStatusLastVerify: the last verify recorded in the state directory
// is the last line, and the "verify" object of --json; without a record
// the line says so and the JSON has no "verify".
func TestStatusLastVerify(t *testing.T) {
	state := t.TempDir()
	t.Setenv("ANKLUME_STATE_DIR", state)
	run := func(asJSON bool) string {
		var out, errOut bytes.Buffer
		opts := &Options{
			IO: &cmdutil.IOStreams{Out: &out, ErrOut: &errOut},
			Source: func() (fs.FS, compiler.Input, []string, error) {
				return fstest.MapFS{"infra.yml": {Data: []byte(psot)}}, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, nil, nil
			},
			Host: func(bool) (host.Options, error) {
				return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}, nil
			},
			Remote:     func() string { return "" },
			Incus:      func(context.Context, string) (incusx.Server, error) { return incusx.NewFake(), nil },
			NFTStatus:  func(context.Context, []byte) (nftsys.State, []byte, error) { return nftsys.InSync, nil, nil },
			LastVerify: verifyLine,
			JSON:       asJSON,
		}
		if err := Run(context.Background(), opts); err != nil {
			t.Fatalf("%v\n%s", err, errOut.String())
		}
		return out.String()
	}
	if got := run(false); !strings.HasSuffix(got, "\nverify: never run on this host\nnftables: in sync\n") {
		t.Errorf("no record:\n%s", got)
	}
	if got := run(true); strings.Contains(got, `"verify"`) {
		t.Errorf("no record, json: %s", got)
	}
	doc := verify.Document{FormatVersion: 1, Infra: "st", Time: time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC), Probes: 40, Mismatches: 2,
		Results: []verify.ResultJSON{{From: "a", To: "b", Outcome: verify.Timeout}}}
	if err := verify.Save(state, doc); err != nil {
		t.Fatal(err)
	}
	if got := run(false); !strings.HasSuffix(got, "\nverify: 2 mismatches (40 probes) at 2026-12-05T18:00:00Z\nnftables: in sync\n") {
		t.Errorf("record:\n%s", got)
	}
	if got := run(true); !strings.Contains(got, `"verify":{"infra":"st","time":"2026-12-05T18:00:00Z","ok":false,"probes":40,"mismatches":2}`) {
		t.Errorf("record, json: %s", got)
	}
}
