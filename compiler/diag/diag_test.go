package diag

import (
	"bytes"
	"testing"
)

func TestPath(t *testing.T) {
	tests := []struct {
		p    Path
		want string
	}{
		{Path(""), "(root)"},
		{Path("").Key("domains").Key("work").Key("machines").Key("web").Key("ip"), "domains.work.machines.web.ip"},
		{Path("").Key("network_policies").Index(2).Key("ports").Index(0), "network_policies[2].ports[0]"},
		{Path("").Key("domains").Key("work").Key("machines").Key("web").Key("config").Key("limits.cpu"), `domains.work.machines.web.config["limits.cpu"]`},
		{Root.Key("Key"), `["Key"]`},
		{Root.Index(1), "[1]"},
	}
	for _, tc := range tests {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// TestPrint checks the §3.2 layout: warnings before errors, sorted by file
// load order, line, column and message, hints indented by two spaces, and
// the count line.
func TestPrint(t *testing.T) {
	var l List
	l.Errorf(Pos{File: "infra/policies.yml", FileIndex: 2, Line: 1, Col: 1}, "network_policies", "", "z")
	l.Errorf(Pos{File: "infra/base.yml", FileIndex: 0, Line: 9, Col: 3}, "global", "fix it", "b")
	l.Errorf(Pos{File: "infra/base.yml", FileIndex: 0, Line: 9, Col: 3}, "global", "", "a")
	l.Errorf(Pos{File: "infra/domains/a.yml", FileIndex: 1, Line: 2, Col: 1}, "domains.a", "", "c")
	l.Warnf(Pos{File: "infra/base.yml", Line: 4, Col: 2}, "global.zone_step", "", "w")
	l.Warnf(Pos{}, "", "", "no position")
	l.Infof("added")
	var b bytes.Buffer
	l.Print(&b)
	want := `info: added
warning: no position
warning: infra/base.yml:4:2: global.zone_step: w
infra/base.yml:9:3: global: a
infra/base.yml:9:3: global: b
  hint: fix it
infra/domains/a.yml:2:1: domains.a: c
infra/policies.yml:1:1: network_policies: z
validation failed: 4 errors
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	var one List
	one.Errorf(Pos{}, "", "", "boom")
	b.Reset()
	one.Print(&b)
	if b.String() != "error: boom\nvalidation failed: 1 error\n" {
		t.Fatalf("got %q", b.String())
	}
}

func TestReport(t *testing.T) {
	var l List
	l.Errorf(Pos{File: "infra.yml", Line: 1, Col: 1}, "(root)", "", `missing required key "global"`)
	got := string(l.MarshalReport())
	want := `{"valid":false,"errors":[{"file":"infra.yml","line":1,"col":1,"path":"(root)","message":"missing required key \"global\"","hint":""}],"warnings":[]}` + "\n"
	if got != want {
		t.Fatalf("got %s want %s", got, want)
	}
}
