package cmdutil

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
)

const good = `format_version: 1
project_name: ld
global:
  addressing: {base_octet: 10, zone_base: 200}
domains:
  work:
    trust_level: trusted
    machines:
      web: {}
`

// TestLoad: the shared start of the commands prints the selection
// warnings, then the compiler's diagnostics, and says how it ended.
func TestLoad(t *testing.T) {
	okHost := func(bool) (host.Options, error) {
		return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}, nil
	}
	extra := func(compiler.Input, *compiler.Result) diag.List {
		return diag.List{{Severity: diag.Warning, Msg: "extra warning"}}
	}
	for _, c := range []struct {
		name     string
		psot     string
		host     func(bool) (host.Options, error)
		quiet    bool
		wantErr  error
		wantOut  []string // in order
		notInOut []string
	}{
		{name: "valid", psot: good, host: okHost, wantOut: []string{"warning: both infra.yml and infra/ exist", "warning: extra warning"}},
		{name: "quiet", psot: good, host: okHost, quiet: true, notInOut: []string{"warning"}},
		{name: "invalid", psot: strings.Replace(good, "trusted", "trustd", 1), host: okHost, wantErr: ErrSilent,
			wantOut: []string{"warning: both infra.yml", `infra.yml:7:18: domains.work.trust_level`}, notInOut: []string{"extra warning"}},
		{name: "host fails", psot: good, host: func(bool) (host.Options, error) { return host.Options{}, errors.New("no host") },
			wantErr: errors.New("no host"), wantOut: []string{"warning: both infra.yml"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys := fstest.MapFS{"infra.yml": {Data: []byte(c.psot)}, "infra/base.yml": {Data: []byte("x")}}
			var errOut bytes.Buffer
			l, err := Load(context.Background(), LoadOptions{
				Source: func() (fs.FS, compiler.Input, []string, error) {
					in, w, err := compiler.Select(fsys, "", false)
					return fsys, in, w, err
				},
				Host: c.host, Extra: extra, ErrOut: &errOut, Globals: &GlobalOptions{Quiet: c.quiet},
			})
			if (err == nil) != (c.wantErr == nil) || err != nil && err.Error() != c.wantErr.Error() {
				t.Fatalf("err %v, want %v\n%s", err, c.wantErr, errOut.String())
			}
			if err == nil && (l.Model == nil || l.Model.Domain("work") == nil || l.Input.Path != "infra.yml") {
				t.Errorf("loaded %+v", l)
			}
			rest := errOut.String()
			for _, w := range c.wantOut {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("%q missing or out of order in:\n%s", w, errOut.String())
				}
				rest = rest[i+len(w):]
			}
			for _, w := range c.notInOut {
				if strings.Contains(errOut.String(), w) {
					t.Errorf("%q in:\n%s", w, errOut.String())
				}
			}
		})
	}
}
