package plancmd_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/internal/incusx"
)

// TestPlanClusterOffline: a domain placed on an offline cluster member is
// unknown: a warning, a line in the plan and in --json, and
// --detailed-exitcode exits 2 even with no change.
func TestPlanClusterOffline(t *testing.T) {
	src := "project_name: demo\nglobal:\n  addressing: {zone_base: 200}\ndomains:\n  work:\n    target: \"@lab\"\n"
	f := incusx.NewFake()
	for _, m := range []string{"m1", "m2", "m3"} {
		f.AddClusterMember(m)
	}
	f.AddClusterGroup("lab", "m2", "m3")
	if err := f.CreateProject(context.Background(), api.ProjectsPost{Name: "work", ProjectPut: api.ProjectPut{Config: api.ConfigMap{
		incus.KeyManaged: "true", incus.KeyInfra: "demo", incus.KeyDomain: "work", incus.KeyMember: "m3"}}}); err != nil {
		t.Fatal(err)
	}
	f.SetMemberStatus("m3", "Offline")
	r := run(t, f, src, false, nil, "plan", "--detailed-exitcode")
	const msg = "cluster member m3 is offline; nothing is planned for this domain (nothing is deleted or re-created elsewhere)"
	if r.code != cmdutil.ExitPending || !strings.Contains(r.stderr, "warning: domain work: unknown: "+msg) ||
		!strings.Contains(r.stdout, "Domain work (project work, network net-work, member m3)\n  ! domain work: unknown: "+msg+"\n") ||
		!strings.HasSuffix(r.stdout, "No changes for the domains that could be read; 1 domain is unknown (cluster member offline).\n") {
		t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, f, src, false, nil, "plan", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"unknown_domains":[{"domain":"work","member":"m3","message":"`+msg+`"}]`) {
		t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
