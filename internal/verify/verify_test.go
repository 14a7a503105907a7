package verify

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/reach"
	"github.com/anklume/anklume/internal/goldenflag"
)

const psot = `format_version: 1
project_name: t
global:
  addressing: {}
domains:
  a:
    trust_level: admin
    machines:
      a-1: {}
      a-2: {}
      a-vm: {type: vm}
  b:
    trust_level: trusted
    egress: false
    machines:
      b-1: {}
      b-2: {}
  c:
    trust_level: untrusted
    machines:
      c-1: {}
network_policies:
  - {description: web, from: a, to: b, ports: [8080]}
  - {description: m, from: a-2, to: c-1, protocol: udp, ports: [5353]}
  - {description: both, from: b-2, to: c-1, ports: [9000], bidirectional: true}
  - {description: apt, from: c-1, to: host, ports: [3142]}
`

func compile(t *testing.T) *model.Infra {
	t.Helper()
	res, dl, err := compiler.Compile(fstest.MapFS{"infra.yml": {Data: []byte(psot)}},
		compiler.Input{Path: "infra.yml", Display: "infra.yml"},
		host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}})
	if err != nil || dl.HasErrors() {
		t.Fatalf("%v %v", err, dl)
	}
	return res.Model
}

func allLive(m *model.Infra) Live {
	l := Live{Source: map[string]bool{}, Target: map[string]bool{}}
	for _, x := range m.Machines {
		l.Target[x.Name] = true
		if x.Type == model.LXC {
			l.Source[x.Name] = true
		}
	}
	return l
}

// TestSampleCovers: the sample exercises every policy in every direction
// it opens, every ordered pair of domains, same domain, host and outside
// from every domain, and never uses a VM as a source.
func TestSampleCovers(t *testing.T) {
	m := compile(t)
	mx := reach.Compute(m)
	probes, pairs := Sample(mx, allLive(m), nil, 0)
	dom := map[string]string{}
	for _, x := range mx.Machines {
		dom[x.Name] = x.Domain
	}
	policies := map[string]bool{}
	dpairs := map[string]bool{}
	for _, p := range probes {
		if p.Pair.From == "a-vm" {
			t.Errorf("a VM is a source: %+v", p)
		}
		if p.Proto == reach.UDP && p.Port == 67 {
			t.Error("DHCP probed")
		}
		if n := p.Expect.Reason.Policy; n > 0 && p.Expect.Verdict == reach.Allow {
			policies[dom[p.Pair.From]+string(rune('0'+n))] = true
		}
		to := p.Pair.To
		if p.Pair.Kind == reach.ToMachine {
			to = dom[to]
		}
		dpairs[dom[p.Pair.From]+">"+to] = true
		if wantTo := map[bool]string{true: dom[p.Pair.To]}[p.Pair.Kind == reach.ToMachine]; p.FromDomain != dom[p.Pair.From] || p.ToDomain != wantTo {
			t.Errorf("%s -> %s: domains %q -> %q", p.Pair.From, p.Pair.To, p.FromDomain, p.ToDomain)
		}
	}
	for _, want := range []string{"a1", "a2", "b3", "c3", "c4"} {
		if !policies[want] {
			t.Errorf("policy %s (source domain, index) not probed as allowed; got %v", want, policies)
		}
	}
	for _, a := range []string{"a", "b", "c"} {
		for _, b := range []string{"a", "b", "c", "host", "outside"} {
			if !dpairs[a+">"+b] && a+b != "cc" { // c has one machine: no same-domain pair
				t.Errorf("no probe %s -> %s", a, b)
			}
		}
	}
	if pairs == 0 || len(probes) < pairs {
		t.Errorf("%d probes over %d pairs", len(probes), pairs)
	}

	limited, n := Sample(mx, allLive(m), []string{"c"}, 0)
	for _, p := range limited {
		if dom[p.Pair.From] != "c" && dom[p.Pair.To] != "c" {
			t.Errorf("--limit c probed %s -> %s", p.Pair.From, p.Pair.To)
		}
	}
	if n == 0 || n >= pairs {
		t.Errorf("--limit c: %d pairs of %d", n, pairs)
	}
	if _, n := Sample(mx, allLive(m), nil, 3); n != 3 {
		t.Errorf("--pairs 3 gave %d pairs", n)
	}
	live := allLive(m)
	live.Target["b-1"] = false
	few, _ := Sample(mx, live, nil, 0)
	for _, p := range few {
		if p.Pair.To == "b-1" {
			t.Error("a stopped machine is a target")
		}
	}
}

// TestNicChecks: a missing filter and a nic on another domain's bridge
// are named with the instance and device.
func TestNicChecks(t *testing.T) {
	m := compile(t)
	nic := func(network string, filters bool) map[string]string {
		d := map[string]string{"type": "nic", "network": network}
		if filters {
			d["security.mac_filtering"], d["security.ipv4_filtering"], d["security.ipv6_filtering"] = "true", "true", "true"
		}
		return d
	}
	inst := func(project, name string, devs map[string]map[string]string) api.InstanceFull {
		var i api.InstanceFull
		i.Project, i.Name, i.ExpandedDevices = project, name, devs
		return i
	}
	good := []api.InstanceFull{
		inst("a", "a-1", map[string]map[string]string{"eth0": nic("net-a", true), "root": {"type": "disk"}}),
		inst("b", "b-1", map[string]map[string]string{"eth0": nic("net-b", true)}),
		inst("default", "other", map[string]map[string]string{"eth0": nic("incusbr0", false)}),
	}
	for _, c := range nicChecks(m, good) {
		if !c.OK {
			t.Errorf("intact: %+v", c)
		}
	}
	bad := []api.InstanceFull{
		inst("a", "a-1", map[string]map[string]string{"eth0": nic("net-a", false)}),
		inst("b", "b-1", map[string]map[string]string{"eth0": nic("net-c", true)}),
		inst("default", "spy", map[string]map[string]string{"eth1": nic("net-a", false)}),
	}
	cs := nicChecks(m, bad)
	if cs[0].OK || !strings.Contains(cs[0].Detail, "a/a-1 eth0 lacks security.mac_filtering, security.ipv4_filtering, security.ipv6_filtering") {
		t.Errorf("filters: %+v", cs[0])
	}
	if cs[1].OK || !strings.Contains(cs[1].Detail, "b/b-1 eth0 is on net-c, the bridge of domain c") ||
		!strings.Contains(cs[1].Detail, "default/spy eth1 is on net-a, the bridge of domain a") {
		t.Errorf("foreign: %+v", cs[1])
	}
}

// TestBridgeNFChecks reads the sysctls from a directory.
func TestBridgeNFChecks(t *testing.T) {
	dir := t.TempDir()
	if cs := bridgeNFChecks(filepath.Join(dir, "absent")); cs[0].OK || !strings.Contains(cs[0].Detail, "br_netfilter is not loaded") {
		t.Errorf("absent: %+v", cs)
	}
	os.WriteFile(filepath.Join(dir, "bridge-nf-call-iptables"), []byte("0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bridge-nf-call-ip6tables"), []byte("1\n"), 0o644)
	cs := bridgeNFChecks(dir)
	if cs[0].OK || cs[0].Detail != "is 0 (sysctl -w net.bridge.bridge-nf-call-iptables=1)" || !cs[1].OK {
		t.Errorf("%+v", cs)
	}
}

// TestRecord: Save then Load, and none before.
func TestRecord(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := Load(dir, "x"); ok || err != nil {
		t.Fatalf("before: %v %v", ok, err)
	}
	doc := Document{FormatVersion: 1, Infra: "x", Time: time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC), OK: false, Probes: 40, Mismatches: 2,
		Results: []ResultJSON{{From: "a-1", To: "b-1", Outcome: Timeout, Mismatch: true}}}
	if err := Save(dir, doc); err != nil {
		t.Fatal(err)
	}
	got, ok, err := Load(dir, "x")
	want := Record{Infra: "x", Time: doc.Time, OK: false, Probes: 40, Mismatches: 2}
	if !ok || err != nil || got != want {
		t.Errorf("got %+v %v %v", got, ok, err)
	}
	full, ok, err := LoadDocument(dir, "x")
	if !ok || err != nil || len(full.Results) != 1 || full.Results[0] != doc.Results[0] {
		t.Errorf("LoadDocument: %+v %v %v", full, ok, err)
	}
	if err := os.WriteFile(RecordPath(dir, "x"), []byte("{half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(dir, "x"); err == nil || !strings.Contains(err.Error(), "x.json") {
		t.Errorf("a corrupt record: %v", err)
	}
}

// TestReportWrite: a mismatch names the rule that should have applied.
func TestReportWrite(t *testing.T) {
	m := compile(t)
	mx := reach.Compute(m)
	p, _ := mx.Lookup("a-1", "b-1")
	rep := &Report{
		Checks:  []Check{{Name: "c1", OK: true}, {Name: "c2", Detail: "broken"}},
		Results: []Result{{Probe: Probe{Pair: p, Proto: reach.TCP, Port: 8080, Expect: p.Decide(reach.TCP, 8080)}, Outcome: Timeout, Mismatch: true}},
		Pairs:   1,
	}
	var b bytes.Buffer
	rep.Write(&b, false)
	want := "FAIL c2: broken\n" +
		`MISMATCH a-1 -> b-1 (10.110.0.1) tcp/8080: expected allow by policy #1 (a -> b) "web" at infra.yml:23:5; got timeout` + "\n" +
		"verify: 2 checks (1 failed), 1 probes over 1 pairs, 1 mismatches in 0s\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	if rep.Mismatches() != 2 {
		t.Errorf("Mismatches %d", rep.Mismatches())
	}
	rep.Phases = []Phase{{"checks", 1234 * time.Millisecond}, {"probes", 1500 * time.Millisecond}}
	b.Reset()
	rep.Write(&b, true)
	if !strings.HasPrefix(b.String(), "ok   c1\n") || !strings.Contains(b.String(), "\ntime: checks 1.23s, probes 1.5s\nverify: ") {
		t.Errorf("verbose:\n%s", b.String())
	}
}

// TestDocument: the JSON document of a report (verify --json, and the
// record) has the documented shape: testdata/document.json (go test
// ./internal/verify -update rewrites it); arrays are never null, host and
// outside targets name their kind as to_domain, and the summary is what
// status reads.
func TestDocument(t *testing.T) {
	m := compile(t)
	mx := reach.Compute(m)
	ab, _ := mx.Lookup("a-1", "b-1")
	host, _ := mx.Lookup("c-1", "host")
	rep := &Report{
		Checks: []Check{{Name: "c1", OK: true}, {Name: "c2", Detail: "broken"}},
		Results: []Result{
			{Probe: Probe{Pair: ab, Proto: reach.TCP, Port: 8080, Expect: ab.Decide(reach.TCP, 8080), FromDomain: "a", ToDomain: "b"}, Outcome: Timeout, Mismatch: true},
			{Probe: Probe{Pair: host, Proto: reach.ICMP, Expect: host.Decide(reach.ICMP, 0), FromDomain: "c"}, Outcome: Accepted},
			{Probe: Probe{Pair: host, Proto: reach.TCP, Port: 9, Expect: host.Decide(reach.TCP, 9), FromDomain: "c"}, Outcome: "not run", Detail: "the time budget ran out"},
		},
		Pairs:     2,
		NotRun:    1,
		NotProbed: []NotProbed{{"a-vm", "a VM: its network namespace is in its own kernel"}},
		Duration:  3317 * time.Millisecond,
	}
	doc := rep.Document("t", time.Date(2026, 12, 5, 19, 0, 0, 900, time.FixedZone("x", 3600)))
	var b bytes.Buffer
	if err := doc.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "document.json")
	if *goldenflag.Update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./internal/verify -update)", err)
	}
	if b.String() != string(want) {
		t.Errorf("document:\n%s\nwant (%s):\n%s", b.String(), golden, want)
	}
	if doc.OK || doc.Probes != 2 || doc.Mismatches != 2 || doc.Time.Format(time.RFC3339) != "2026-12-05T18:00:00Z" ||
		doc.Results[1].ToDomain != "host" || doc.Results[0].Expected.Reason.Policy != 1 {
		t.Errorf("document: %+v", doc)
	}
	empty := (&Report{}).Document("t", time.Time{})
	var e bytes.Buffer
	_ = empty.WriteJSON(&e)
	if strings.Contains(e.String(), "null") || !empty.OK {
		t.Errorf("empty report: %s", e.String())
	}
}
