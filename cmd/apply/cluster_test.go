package apply

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/anklume/anklume/cmd/cmdutil"
)

// TestApplyCluster: on a cluster apply warns that the rules are loaded on
// this host only, or with --deploy-members runs the members play of
// site.yml before any Incus change but the lock; a domain on an offline
// member is left alone and apply exits 2.
func TestApplyCluster(t *testing.T) {
	e := newEnv(t, strings.Replace(psot, "    trust_level: trusted\n", "    trust_level: trusted\n    target: \"@lab\"\n", 1))
	for _, m := range []string{"m1", "m2", "m3"} {
		e.fake.AddClusterMember(m)
	}
	e.fake.AddClusterGroup("lab", "m2", "m3")
	if err := Run(context.Background(), e.opts(func(o *Options) { o.NoProvision = true })); err != nil {
		t.Fatalf("apply: %v\n%s\n%s", err, e.out.String(), e.err.String())
	}
	if !strings.Contains(e.err.String(), "warning: "+MsgMembersNotLoaded+"\n  hint: run ansible-playbook site.yml --tags members in "+e.dir) {
		t.Errorf("no members warning:\n%s", e.err.String())
	}
	if !strings.Contains(e.out.String(), "Domain work (project work, network net-work, member m2)") {
		t.Errorf("plan without the member:\n%s", e.out.String())
	}

	e.write(t, strings.Replace(psot, "    trust_level: admin\n", "    trust_level: admin\n    description: changed\n", 1))
	e.fake.SetMemberStatus("m2", "Offline")
	e.runs = nil
	err := Run(context.Background(), e.opts(func(o *Options) { o.NoProvision = true; o.DeployMembers = true }))
	var ee *cmdutil.ExitError
	if !errors.As(err, &ee) || ee.Code != cmdutil.ExitPending {
		t.Fatalf("apply with m2 offline: %v\n%s\n%s", err, e.out.String(), e.err.String())
	}
	if len(e.runs) != 1 || strings.Join(e.runs[0], " ") != e.dir+" ansible-playbook site.yml --tags members" {
		t.Errorf("runs %q", e.runs)
	}
	for _, want := range []string{"~ project admin", "Apply incomplete: 0 created, 2 updated, 0 deleted, 1 domain unknown (cluster member offline).\n"} {
		if !strings.Contains(e.out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, e.out.String())
		}
	}
	if !strings.Contains(e.err.String(), "warning: domain work: not applied: cluster member m2 is offline") {
		t.Errorf("stderr:\n%s", e.err.String())
	}
}
