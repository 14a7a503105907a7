package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/reconcile"
)

// TestStatus: states, IPs, drift markers and the §12.1 JSON shape, with
// one state read (recursion=2) in place of the §9.1 instance list
// (§16 #93).
func TestStatus(t *testing.T) {
	m := compile(t, twoDomains)
	f := applied(t, m)
	ctx := context.Background()
	if err := f.UpdateInstanceState(ctx, "work", "db", api.InstanceStatePut{Action: incusx.ActionStop, Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.UpdateInstanceState(ctx, "work", "web", api.InstanceStatePut{Action: incusx.ActionStop, Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.DeleteInstance(ctx, "work", "web"); err != nil {
		t.Fatal(err)
	}
	f.Log().Reset()
	r, warns, err := Status(ctx, f, m, StatusOptions{Observe: reconcile.ObserveOptions{Pools: []string{"default"}}})
	if err != nil || len(warns) != 0 {
		t.Fatalf("status: %v %v", err, warns)
	}
	state, lists := 0, 0
	for _, req := range f.Log().Strings() {
		if strings.HasPrefix(req, "GET /1.0/instances") && strings.Contains(req, "recursion=2") {
			state++
		}
		if strings.HasPrefix(req, "GET /1.0/instances?") {
			lists++
		}
		if !strings.HasPrefix(req, "GET ") {
			t.Errorf("status changed something: %s", req)
		}
	}
	if state != 1 || lists != 1 {
		t.Errorf("%d instance lists, %d with state, want the one with state: %q", lists, state, f.Log().Strings())
	}

	var text bytes.Buffer
	if err := RenderStatus(&text, r, "nftables: not loaded"); err != nil {
		t.Fatal(err)
	}
	want := `Domain work (trusted)
  project work: present
  network net-work: present
  MACHINE  TYPE  STATE    IP  DRIFT
  web      lxc   Absent   -   *
  db       lxc   Stopped  -   *
Domain lab (untrusted)
  project lab: present
  network net-lab: present
  MACHINE  TYPE  STATE    IP          DRIFT
  lab-1    lxc   Running  10.240.0.1
nftables: not loaded
`
	if text.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", text.String(), want)
	}

	nft := "not loaded"
	r.NFTables = &nft
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"format_version":1,"infra":"lc","nftables":"not loaded","domains":[` +
		`{"name":"work","enabled":true,"trust_level":"trusted","project":"work","project_exists":true,"network":"net-work","network_exists":true,"machines":[` +
		`{"name":"web","instance":"web","type":"lxc","desired_state":"running","state":"Absent","ip":null,"drift":true},` +
		`{"name":"db","instance":"db","type":"lxc","desired_state":"running","state":"Stopped","ip":null,"drift":true}]},` +
		`{"name":"lab","enabled":true,"trust_level":"untrusted","project":"lab","project_exists":true,"network":"net-lab","network_exists":true,"machines":[` +
		`{"name":"lab-1","instance":"lab-1","type":"lxc","desired_state":"running","state":"Running","ip":"10.240.0.1","drift":false}]}]}`
	if string(b) != wantJSON {
		t.Errorf("json:\n%s\nwant:\n%s", b, wantJSON)
	}
}

// TestStatusEmpty: nothing applied, every object absent.
func TestStatusEmpty(t *testing.T) {
	m := compile(t, twoDomains)
	r, _, err := Status(context.Background(), incusx.NewFake(), m, StatusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range r.Domains {
		if d.ProjectExists || d.NetworkExists {
			t.Errorf("%s: exists", d.Name)
		}
		for _, x := range d.Machines {
			if x.State != StateAbsent || x.IP != nil || !x.Drift {
				t.Errorf("%s: %+v", x.Name, x)
			}
		}
	}
}
