package disp

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/model"
	_ "github.com/anklume/anklume/internal/goldenflag"
	"github.com/anklume/anklume/internal/incusx"
)

// TestRun is §16 #71: the command runs as an argument vector in an
// ephemeral instance that carries disp, infra and domain keys and no
// managed key; its status is returned and the instance is gone.
func TestRun(t *testing.T) {
	tests := []struct {
		argv []string
		code int
		out  string
	}{
		{[]string{"sh", "-c", "exit 3"}, 3, ""},
		{[]string{"echo", "a b", "c"}, 0, "a b c\n"},
		{[]string{"true"}, 0, ""},
	}
	for _, tc := range tests {
		f := incusx.NewFake()
		d := &model.Domain{Name: "default", Project: "default", Enabled: true, TrustLevel: Disposable}
		var out bytes.Buffer
		name := Name("001-", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		if name != "001-disp-20260102-030405" {
			t.Fatalf("Name = %s", name)
		}
		r := Request{Infra: "t", Domain: d, Name: name, Image: "anklume-test", Argv: tc.argv,
			IO: incusx.ExecIO{Stdout: &out}}
		req := r.InstancesPost(incusxSource())
		if !req.Ephemeral || req.Config["user.anklume.disp"] != "true" || req.Config["user.anklume.infra"] != "t" ||
			req.Config["user.anklume.domain"] != "default" || req.Config["user.anklume.managed"] != "" {
			t.Errorf("create request %+v", req)
		}
		code, err := Run(context.Background(), f, r)
		if err != nil || code != tc.code || out.String() != tc.out {
			t.Errorf("%v: code %d, out %q, err %v", tc.argv, code, out.String(), err)
		}
		if insts, _ := f.Instances(context.Background()); len(insts) != 0 {
			t.Errorf("%v: instances left: %v", tc.argv, insts)
		}
	}
}

func TestDomain(t *testing.T) {
	m := &model.Infra{Domains: []*model.Domain{
		{Name: "a", Enabled: true, TrustLevel: "trusted"},
		{Name: "b", Enabled: false, TrustLevel: Disposable},
		{Name: "c", Enabled: true, TrustLevel: Disposable},
		{Name: "d", Enabled: true, TrustLevel: Disposable},
	}}
	m.Build()
	if d, err := Domain(m, ""); err != nil || d.Name != "c" {
		t.Errorf("Domain() = %v %v, want c", d, err)
	}
	if d, err := Domain(m, "a"); err != nil || d.Name != "a" {
		t.Errorf("Domain(a) = %v %v", d, err)
	}
	m2 := &model.Infra{Domains: m.Domains[:1]}
	m2.Build()
	if _, err := Domain(m2, ""); err == nil || err.Error() != "no disposable domain; pass --domain" {
		t.Errorf("Domain() without a disposable domain = %v", err)
	}
}

func incusxSource() (s apiSource) { return apiSource{Type: "image", Alias: "anklume-test"} }

type apiSource = api.InstanceSource
