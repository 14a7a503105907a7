package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/reconcile"
)

// TestStatusCluster: on a cluster each domain shows its member, and a
// domain on an offline member says its state is unknown.
func TestStatusCluster(t *testing.T) {
	src := strings.Replace(twoDomains, "    trust_level: trusted\n", "    trust_level: trusted\n    target: m1\n", 1)
	src = strings.Replace(src, "    trust_level: untrusted\n", "    trust_level: untrusted\n    target: \"@lab\"\n", 1)
	m := compile(t, src)
	f := incusx.NewFake()
	for _, name := range []string{"m1", "m2", "m3"} {
		f.AddClusterMember(name)
	}
	f.AddClusterGroup("lab", "m2", "m3")
	appliedOn(t, f, m)
	f.SetMemberStatus("m2", "Offline")
	r, warns, err := Status(context.Background(), f, m, StatusOptions{Observe: reconcile.ObserveOptions{Pools: []string{"default"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || warns[0].Msg != "domain lab: unknown: cluster member m2 is offline; nothing is planned for this domain (nothing is deleted or re-created elsewhere)" {
		t.Errorf("warnings: %+v", warns)
	}
	var text bytes.Buffer
	if err := RenderStatus(&text, r, "nftables: not loaded"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Domain work (trusted)\n  project work: present\n  network net-work: present\n  member m1: online\n",
		"Domain lab (untrusted)\n  project lab: present\n  network net-lab: present\n  member m2: offline, state unknown\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, text.String())
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"network_exists":true,"member":"m2","member_offline":true,`) {
		t.Errorf("json: %s", b)
	}
}
