package reach_test

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/nft"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/reach"
	"github.com/anklume/anklume/compiler/reach/nfteval"
	"github.com/anklume/anklume/examples"
	_ "github.com/anklume/anklume/internal/goldenflag"
)

// compile resolves a PSOT held in memory.
func compile(t *testing.T, psot []byte) *model.Infra {
	t.Helper()
	fsys := fstest.MapFS{"infra.yml": {Data: psot}}
	res, dl, err := compiler.Compile(fsys, compiler.Input{Path: "infra.yml", Display: "infra.yml"},
		host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}})
	if err != nil || dl.HasErrors() || res == nil || res.Model == nil {
		var b bytes.Buffer
		dl.Print(&b)
		t.Fatalf("compile: %v\n%s", err, b.String())
	}
	return res.Model
}

// probePoints are the connections checked for every pair: each port a
// policy names, the host service ports, two ports nothing names, ICMP.
func probePoints(m *model.Infra) [][2]any {
	ports := map[int]bool{53: true, 67: true, 1: true, 65535: true}
	for _, p := range m.Policies {
		for _, x := range p.Ports {
			ports[x] = true
		}
	}
	var out [][2]any
	for x := range ports {
		out = append(out, [2]any{reach.TCP, x}, [2]any{reach.UDP, x})
	}
	return append(out, [2]any{reach.ICMP, 0})
}

// crossCheck compares every pair of the matrix of m with the verdict of
// the rendered ruleset, read by nfteval, at every probe point.
func crossCheck(t *testing.T, m *model.Infra) int {
	t.Helper()
	rs, err := nfteval.Parse(nft.Render(m))
	if err != nil {
		t.Fatalf("parsing the rendered ruleset: %v", err)
	}
	mx := reach.Compute(m)
	n := 0
	for _, p := range mx.Pairs {
		src := mx.Machine(p.From)
		for _, pt := range probePoints(m) {
			proto, port := pt[0].(string), pt[1].(int)
			pkt := nfteval.Packet{Iif: src.Bridge, Proto: proto, Dport: port}
			pkt.Saddr, _ = netip.ParseAddr(src.IP)
			chain := nfteval.Forward
			switch p.Kind {
			case reach.ToMachine:
				pkt.Oif = mx.Machine(p.To).Bridge
				pkt.Daddr, _ = netip.ParseAddr(p.ToIP)
			case reach.ToHost:
				chain = nfteval.Input
				pkt.Daddr, _ = netip.ParseAddr(p.ToIP)
			case reach.ToOutside:
				pkt.Oif = "eth0"
				pkt.Daddr = netip.MustParseAddr("192.0.2.1")
			}
			want, rule := rs.Eval(chain, pkt)
			got := p.Decide(proto, port)
			n++
			if (got.Verdict == reach.Allow) != want {
				t.Errorf("%s -> %s %s/%d: matrix says %s (%s), ruleset says accept=%v (rule %q)",
					p.From, p.To, proto, port, got.Verdict, got.Reason.Text, want, rule)
			}
		}
	}
	return n
}

// TestMatrixAgreesWithRuleset is the cross-check for every example: the
// matrix and the ruleset the nft emitter renders decide every probe
// point the same way.
func TestMatrixAgreesWithRuleset(t *testing.T) {
	for _, name := range examples.Names() {
		t.Run(name, func(t *testing.T) {
			data, err := examples.Read(name)
			if err != nil {
				t.Fatal(err)
			}
			m := compile(t, data)
			if n := crossCheck(t, m); n == 0 {
				t.Fatal("no probe point checked")
			}
		})
	}
}

// semantics exercises every rule kind in one infrastructure.
const semantics = `format_version: 1
project_name: sem
global:
  addressing: {}
  ai_access_policy: exclusive
  ai_access_default: lab
domains:
  lab:
    trust_level: trusted
    machines:
      lab-1: {}
      lab-2: {}
  work:
    trust_level: trusted
    machines:
      work-1: {}
      work-2: {}
  ai-tools:
    trust_level: semi-trusted
    machines:
      ai-1: {}
  vault:
    trust_level: disposable
    egress: false
    machines:
      vault-1: {}
  off:
    enabled: false
    trust_level: trusted
    machines:
      off-1: {}
network_policies:
  - description: "lab-1 reaches work-1 on 8080"
    from: lab-1
    to: work-1
    ports: [8080, 8080]
  - {description: dns, from: work, to: vault, protocol: udp, ports: [5353], bidirectional: true}
  - {description: apt, from: work-2, to: host, ports: [3142]}
  - {description: nothing, from: lab, to: vault, ports: []}
  - {description: to the disabled, from: lab, to: off}
`

// TestSemantics checks the decisions and reasons users rely on.
func TestSemantics(t *testing.T) {
	m := compile(t, []byte(semantics))
	if n := crossCheck(t, m); n == 0 {
		t.Fatal("nothing checked")
	}
	mx := reach.Compute(m)
	tests := []struct {
		from, to, proto string
		port            int
		verdict, kind   string
		policy          int
	}{
		{"lab-1", "lab-2", reach.TCP, 1, reach.Allow, reach.SameDomain, 0},
		{"lab-1", "lab-2", reach.ICMP, 0, reach.Allow, reach.SameDomain, 0},
		{"lab-1", "work-1", reach.TCP, 8080, reach.Allow, reach.Policy, 1},
		{"lab-1", "work-1", reach.UDP, 8080, reach.Deny, reach.CrossDomain, 0},
		{"lab-1", "work-1", reach.TCP, 80, reach.Deny, reach.CrossDomain, 0},
		{"lab-2", "work-1", reach.TCP, 8080, reach.Deny, reach.CrossDomain, 0},
		{"lab-1", "work-2", reach.TCP, 8080, reach.Deny, reach.CrossDomain, 0},
		{"work-1", "lab-1", reach.TCP, 8080, reach.Deny, reach.CrossDomain, 0},
		{"work-1", "vault-1", reach.UDP, 5353, reach.Allow, reach.Policy, 2},
		{"vault-1", "work-2", reach.UDP, 5353, reach.Allow, reach.Policy, 2},
		{"vault-1", "work-2", reach.TCP, 5353, reach.Deny, reach.CrossDomain, 0},
		{"lab-1", "vault-1", reach.TCP, 22, reach.Deny, reach.CrossDomain, 0},
		{"lab-2", "ai-1", reach.TCP, 443, reach.Allow, reach.AIPolicy, 6},
		{"lab-2", "ai-1", reach.ICMP, 0, reach.Allow, reach.AIPolicy, 6},
		{"ai-1", "lab-2", reach.TCP, 443, reach.Deny, reach.CrossDomain, 0},
		{"work-2", "host", reach.TCP, 3142, reach.Allow, reach.Policy, 3},
		{"work-1", "host", reach.TCP, 3142, reach.Deny, reach.HostDrop, 0},
		{"work-1", "host", reach.UDP, 53, reach.Allow, reach.HostService, 0},
		{"work-1", "host", reach.UDP, 67, reach.Allow, reach.HostService, 0},
		{"work-1", "host", reach.ICMP, 0, reach.Allow, reach.HostService, 0},
		{"vault-1", "host", reach.UDP, 53, reach.Deny, reach.AirGapDNS, 0},
		{"vault-1", "host", reach.TCP, 53, reach.Deny, reach.AirGapDNS, 0},
		{"vault-1", "host", reach.ICMP, 0, reach.Allow, reach.HostService, 0},
		{"lab-1", "outside", reach.TCP, 443, reach.Allow, reach.Egress, 0},
		{"vault-1", "outside", reach.TCP, 443, reach.Deny, reach.EgressDenied, 0},
	}
	for _, tt := range tests {
		p, ok := mx.Lookup(tt.from, tt.to)
		if !ok {
			t.Errorf("%s -> %s: no pair", tt.from, tt.to)
			continue
		}
		d := p.Decide(tt.proto, tt.port)
		if d.Verdict != tt.verdict || d.Reason.Kind != tt.kind || d.Reason.Policy != tt.policy {
			t.Errorf("%s -> %s %s/%d: got %s %s #%d (%s), want %s %s #%d",
				tt.from, tt.to, tt.proto, tt.port, d.Verdict, d.Reason.Kind, d.Reason.Policy, d.Reason.Text,
				tt.verdict, tt.kind, tt.policy)
		}
	}
	if mx.Machine("off-1") != nil {
		t.Error("a machine of a disabled domain is in the matrix")
	}
	// 6 machines: 6*5 machine pairs, plus host and outside for each.
	if got := len(mx.Pairs); got != 6*5+2*6 {
		t.Errorf("%d pairs, want %d", got, 6*5+2*6)
	}
	p, _ := mx.Lookup("lab-1", "work-1")
	if d := p.Decide(reach.TCP, 8080); d.Reason.At != "infra.yml:33:5" ||
		!strings.Contains(d.Reason.Text, `"lab-1 reaches work-1 on 8080"`) {
		t.Errorf("policy reason %+v", d.Reason)
	}
	if got := p.Rules[0].Ports; len(got) != 1 {
		t.Errorf("duplicate port kept: %v", got)
	}
}

// TestHostIsolationOff: without host_isolation and without an air-gapped
// domain there is no host_input chain and the host accepts everything;
// with an air-gapped domain only its DNS is dropped.
func TestHostIsolationOff(t *testing.T) {
	psot := `format_version: 1
project_name: open
global:
  addressing: {}
  host_isolation: false
domains:
  a:
    trust_level: trusted
    machines:
      a-1: {}
  g:
    trust_level: disposable
    egress: false
    machines:
      g-1: {}
`
	m := compile(t, []byte(psot))
	crossCheck(t, m)
	mx := reach.Compute(m)
	p, _ := mx.Lookup("a-1", "host")
	if p.Allowed() != "all" || p.Decide(reach.TCP, 22).Reason.Kind != reach.HostOpen {
		t.Errorf("a-1 -> host: %s (%s)", p.Allowed(), p.Why())
	}
	p, _ = mx.Lookup("g-1", "host")
	if p.Allowed() != "all except udp/53 tcp/53" {
		t.Errorf("g-1 -> host: %s", p.Allowed())
	}
}

// TestWriteTable prints one line per pair with the summary and reasons.
func TestWriteTable(t *testing.T) {
	m := compile(t, []byte(semantics))
	var b bytes.Buffer
	if err := reach.Compute(m).WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 1+6*5+2*6 || !strings.HasPrefix(lines[0], "FROM") {
		t.Fatalf("table:\n%s", b.String())
	}
	for _, want := range []string{
		`lab-1    work-1 (10.110.2.1)`,
		`tcp/8080`,
		`policy #1 (lab-1 -> work-1) "lab-1 reaches work-1 on 8080"; rest: cross-domain drop: no policy opens lab -> work`,
		`vault-1  outside`,
		"udp/67 icmp  ", "not udp/53 tcp/53: air-gapped domain vault: no DNS relay; host service: DHCP",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestChanges: against the ruleset of the previous PSOT, a new policy
// shows as opened with its reason and a removed one as closed; the same
// PSOT shows nothing.
func TestChanges(t *testing.T) {
	before := compile(t, []byte(semantics))
	prev, err := nfteval.Parse(nft.Render(before))
	if err != nil {
		t.Fatal(err)
	}
	if cs := reach.Changes(reach.Compute(before), prev); len(cs) != 0 {
		t.Fatalf("no change expected, got %+v", cs)
	}
	after := strings.Replace(semantics, `  - {description: apt, from: work-2, to: host, ports: [3142]}
`, `  - {description: ssh, from: ai-tools, to: lab-2, ports: [22]}
`, 1)
	cs := reach.Changes(reach.Compute(compile(t, []byte(after))), prev)
	var b bytes.Buffer
	if err := reach.WriteChanges(&b, cs); err != nil {
		t.Fatal(err)
	}
	want := "\nReachability changes (against the rules last deployed on this host):\n" +
		"  - work-2 -> host closes tcp/3142\n" +
		"  + ai-1 -> lab-2 opens tcp/22 (policy #3 (ai-tools -> lab-2) \"ssh\")\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
