package compiler

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/internal/synthinfra"
)

// TestAllErrorsAtOnce: five independent errors of stages S1 and S2, spread
// over directory-mode files, are all reported in one run, in position
// order with the file load order first (SPEC.md §3.1, §3.2, §16 #5).
func TestAllErrorsAtOnce(t *testing.T) {
	fsys := fstest.MapFS{
		"infra/base.yml": {Data: []byte("project_name: lab\nglobal:\n  addressing: {}\n  gpu_policy: maybe\n")},
		"infra/domains/a.yml": {Data: []byte(`work:
  machines:
    web: {tpye: vm}
    db: {ip: "10.120.0.0"}
`)},
		"infra/domains/b.yml": {Data: []byte(`perso:
  machines:
    web: {}
`)},
		"infra/policies.yml": {Data: []byte("network_policies:\n  - {from: host, to: host}\n")},
	}
	res, dl, err := Compile(fsys, Input{Path: "infra", Display: "infra", Dir: true}, benchOptions())
	if err != nil || res != nil {
		t.Fatalf("err=%v res=%v, want diagnostics", err, res)
	}
	var out bytes.Buffer
	dl.Print(&out)
	want := `infra/base.yml:4:15: global.gpu_policy: must be one of exclusive, shared; got "maybe"
infra/domains/a.yml:3:11: domains.work.machines.web.tpye: unknown key "tpye"
  hint: did you mean "type"?
infra/domains/a.yml:4:14: domains.work.machines.db.ip: ip 10.120.0.0 is the network address
infra/domains/b.yml:3:5: domains.perso.machines.web: machine name "web" is already used in domain "work"
infra/policies.yml:2:22: network_policies[0].to: from and to cannot both be "host"
validation failed: 5 errors
`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// TestResolutionRunsOnlyWhenValid: S3 errors (N22) are not reported while
// an S1 error is present, and are once it is fixed (SPEC.md §3.1).
func TestResolutionRunsOnlyWhenValid(t *testing.T) {
	var b strings.Builder
	b.WriteString("project_name: p\nglobal: {addressing: {}}\ndomains:\n  d:\n    machines:\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "      m%03d: {}\n", i)
	}
	good := b.String()
	bad := strings.Replace(good, "project_name: p", "project_name: 5", 1)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"S1 error hides S3", bad, "project_name: must be a string, got integer 5"},
		{"S3 runs", good, `ran out of static IPs (.1-.99) for machine "m099"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dl, err := Compile(fstest.MapFS{"infra.yml": {Data: []byte(tc.in)}}, Input{Path: "infra.yml", Display: "infra.yml"}, benchOptions())
			if err != nil {
				t.Fatal(err)
			}
			if errs := dl.Filter(diag.Error); len(errs) != 1 || !strings.Contains(errs[0].String(), tc.want) {
				t.Fatalf("got %v, want one error containing %q", dl, tc.want)
			}
		})
	}
}

// FuzzCompile runs the whole pipeline on arbitrary input: it must never
// panic, and it returns either a model or at least one error.
func FuzzCompile(f *testing.F) {
	f.Add([]byte(synthinfra.Zones(2, 2)))
	f.Add([]byte("project_name: p\nglobal: {firewall_mode: vm, resource_policy: true}\ndomains:\n  anklume: {machines: {a: {gpu: true}}}\n"))
	f.Add([]byte("project_name: p\nglobal: {}\ndomains:\n  d: {subnet_id: 1, machines: {m: {ip: 10.100.1.2}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			t.Skip("input capped at 64 KiB")
		}
		res, dl, err := Compile(fstest.MapFS{"infra.yml": {Data: data}}, Input{Path: "infra.yml", Display: "infra.yml"}, benchOptions())
		if err == nil && res == nil && !dl.HasErrors() {
			t.Fatal("no model and no error")
		}
	})
}
