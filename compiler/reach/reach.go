// Package reach computes the expected reachability matrix of an
// infrastructure from its resolved model alone: for every ordered pair of
// machines, and from every machine to the host and to the outside world,
// which new connections the nftables isolation ruleset lets through, and
// why (same domain, a named policy, the AI exclusive policy, the host
// services, egress), and which it drops.
//
// The matrix mirrors the ruleset that compiler/emit/nft renders, rule for
// rule and in the same first-match order; reach_test.go checks it against
// an independent evaluation of the rendered ruleset (package nfteval) for
// every example. It is pure: no Incus, no host.
//
// Choices the specification leaves open:
//
//   - Only machines of enabled domains appear. A disabled domain has no
//     Incus objects that anklume manages, and its policies are skipped by
//     the ruleset.
//   - The host is the address of the source's own bridge gateway (the
//     .254): that is the host address a machine reaches first, and the one
//     the host services rules (DNS) name. Connections from the host are
//     never filtered, so host → machine does not appear.
//   - "outside" is any address beyond the anklume bridges. Whether a packet
//     that passes the forward chain then reaches the Internet depends on
//     the host's routing and NAT, which are out of anklume's scope.
//   - A firewall VM (firewall_mode: vm) appears with its eth0 only; its
//     extra NICs sit on the other bridges, where the same-domain rule
//     applies to them.
package reach

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/anklume/anklume/compiler/model"
)

// FormatVersion is the format_version of the JSON document.
const FormatVersion = 1

// Target kinds.
const (
	// ToMachine is a pair between two machines.
	ToMachine = "machine"
	// ToHost is a machine towards the host (its bridge gateway).
	ToHost = "host"
	// ToOutside is a machine towards an address beyond the anklume
	// bridges.
	ToOutside = "outside"
)

// Verdicts.
const (
	Allow = "allow"
	Deny  = "deny"
)

// Protocols. All matches every protocol (a policy with ports: all).
const (
	All  = "all"
	TCP  = "tcp"
	UDP  = "udp"
	ICMP = "icmp"
)

// Reason kinds: what decided a verdict.
const (
	SameDomain   = "same-domain"
	Policy       = "policy"
	AIPolicy     = "ai-policy"
	HostService  = "host-service"
	HostOpen     = "host-open"
	HostDrop     = "host-isolation"
	AirGapDNS    = "air-gapped-dns"
	CrossDomain  = "cross-domain"
	Egress       = "egress"
	EgressDenied = "egress-off"
)

// Matrix is the expected reachability of an infrastructure.
type Matrix struct {
	FormatVersion int       `json:"format_version"`
	Infra         string    `json:"infra"`
	Machines      []Machine `json:"machines"`
	Pairs         []Pair    `json:"pairs"`
}

// Machine is one machine of an enabled domain.
type Machine struct {
	Name     string `json:"name"`
	Domain   string `json:"domain"`
	Project  string `json:"project"`
	Instance string `json:"instance"`
	Bridge   string `json:"bridge"`
	Type     string `json:"type"`
	// IP is "" when the machine has no static address (legacy mode).
	IP string `json:"ip"`
	// Gateway is the host's address on the machine's bridge.
	Gateway string `json:"gateway"`
	// Egress is false for an air-gapped domain.
	Egress bool `json:"egress"`
}

// Pair is what one source may open towards one target: Rules are tried in
// order and the first that matches a connection decides; a connection no
// rule matches gets Default.
type Pair struct {
	From string `json:"from"`
	// To is a machine name, "host" or "outside".
	To   string `json:"to"`
	Kind string `json:"kind"`
	// ToIP is the target address ("" for outside, or for a machine
	// without a static address).
	ToIP    string   `json:"to_ip"`
	Rules   []Rule   `json:"rules"`
	Default Decision `json:"default"`
}

// Decision is a verdict and why.
type Decision struct {
	Verdict string `json:"verdict"`
	Reason  Reason `json:"reason"`
}

// Reason says which part of the PSOT decided a verdict.
type Reason struct {
	// Kind is one of the reason kinds (SameDomain, Policy, …).
	Kind string `json:"kind"`
	// Text is a sentence for people.
	Text string `json:"text"`
	// Policy is the 1-based index of the policy in the resolved list, 0
	// when no policy decided.
	Policy int `json:"policy,omitempty"`
	// At is the position of the policy in the PSOT ("" for the AI
	// auto-policy and for non-policy reasons).
	At string `json:"at,omitempty"`
}

// Rule is one first-match entry of a pair.
type Rule struct {
	Verdict string `json:"verdict"`
	// Proto is All, TCP, UDP or ICMP.
	Proto string `json:"proto"`
	// Ports is empty for every port of Proto (and always for All and
	// ICMP).
	Ports  []int  `json:"ports,omitempty"`
	Reason Reason `json:"reason"`
}

// Matches reports whether r applies to a connection of proto to port.
func (r Rule) Matches(proto string, port int) bool {
	if r.Proto == All {
		return true
	}
	if r.Proto != proto {
		return false
	}
	if len(r.Ports) == 0 || proto == ICMP {
		return true
	}
	for _, p := range r.Ports {
		if p == port {
			return true
		}
	}
	return false
}

// Decide returns the decision for a new connection of proto (TCP, UDP or
// ICMP) to port (ignored for ICMP) from the pair's source to its target.
func (p Pair) Decide(proto string, port int) Decision {
	for _, r := range p.Rules {
		if r.Matches(proto, port) {
			return Decision{Verdict: r.Verdict, Reason: r.Reason}
		}
	}
	return p.Default
}

// Compute returns the matrix of m.
func Compute(m *model.Infra) *Matrix {
	mx := &Matrix{FormatVersion: FormatVersion, Infra: m.ProjectName, Machines: []Machine{}, Pairs: []Pair{}}
	var src []*model.Machine
	for _, d := range m.EnabledDomains() {
		for _, x := range d.Machines {
			src = append(src, x)
			mx.Machines = append(mx.Machines, machineOf(x))
		}
	}
	for _, s := range src {
		for _, d := range src {
			if s == d {
				continue
			}
			mx.Pairs = append(mx.Pairs, machinePair(m, s, d))
		}
		mx.Pairs = append(mx.Pairs, hostPair(m, s), outsidePair(s))
	}
	for i := range mx.Pairs {
		if mx.Pairs[i].Rules == nil {
			mx.Pairs[i].Rules = []Rule{}
		}
	}
	return mx
}

func machineOf(x *model.Machine) Machine {
	out := Machine{
		Name: x.Name, Domain: x.Domain.Name, Project: x.Domain.Project, Instance: x.Instance,
		Bridge: x.Domain.Bridge, Type: x.Type, Gateway: x.Domain.Gateway.String(), Egress: x.Domain.Egress,
	}
	if x.IP.IsValid() {
		out.IP = x.IP.String()
	}
	return out
}

func ipString(a netip.Addr) string {
	if a.IsValid() {
		return a.String()
	}
	return ""
}

// machinePair follows the forward chain: same bridge accepted (row 3),
// then the policy rules in order (row 4), then the cross-bridge drop.
func machinePair(m *model.Infra, s, d *model.Machine) Pair {
	p := Pair{From: s.Name, To: d.Name, Kind: ToMachine, ToIP: ipString(d.IP)}
	if s.Domain.Bridge == d.Domain.Bridge {
		p.Default = Decision{Allow, Reason{Kind: SameDomain, Text: "same domain " + s.Domain.Name + " (bridge " + s.Domain.Bridge + ")"}}
		return p
	}
	for _, pol := range m.Policies {
		if pol.From.Kind == model.HostEndpoint || pol.To.Kind == model.HostEndpoint || pol.TouchesDisabled() {
			continue
		}
		matches := endpointMatches(pol.From, s) && endpointMatches(pol.To, d)
		if !matches && pol.Bidirectional {
			matches = endpointMatches(pol.To, s) && endpointMatches(pol.From, d)
		}
		if !matches {
			continue
		}
		if done := addPolicy(&p, pol); done {
			return p
		}
	}
	p.Default = Decision{Deny, Reason{Kind: CrossDomain, Text: "cross-domain drop: no policy opens " + s.Domain.Name + " -> " + d.Domain.Name}}
	return p
}

// endpointMatches reports whether the forward rule side of e covers
// machine x: the same bridge and, for a machine endpoint, its address.
func endpointMatches(e model.Endpoint, x *model.Machine) bool {
	if e.Domain == nil || e.Domain.Bridge != x.Domain.Bridge {
		return false
	}
	if e.Kind == model.MachineEndpoint {
		return e.IP.IsValid() && x.IP.IsValid() && e.IP == x.IP
	}
	return true
}

// addPolicy appends the rules of pol to p. It returns true when the policy
// covers every protocol: later rules can never match, so it becomes the
// default.
func addPolicy(p *Pair, pol *model.Policy) bool {
	r := policyReason(pol)
	if pol.AllPorts {
		p.Default = Decision{Allow, r}
		return true
	}
	ports := pol.UniquePorts()
	if len(ports) == 0 {
		return false // ports: [] opens nothing
	}
	p.Rules = append(p.Rules, Rule{Verdict: Allow, Proto: pol.Protocol, Ports: ports, Reason: r})
	return false
}

// policyReason names a policy: its 1-based index, its description and its
// position.
func policyReason(pol *model.Policy) Reason {
	r := Reason{Kind: Policy, Policy: pol.Index + 1}
	if pol.Auto {
		r.Kind = AIPolicy
	} else if pol.Pos.Line > 0 {
		r.At = pol.Pos.String()
	}
	desc := strings.TrimSpace(pol.Description)
	text := "policy #" + strconv.Itoa(pol.Index+1)
	if pol.Auto {
		text = "AI exclusive policy"
	}
	text += " (" + pol.From.Name + " -> " + pol.To.Name
	if pol.Bidirectional {
		text = strings.Replace(text, " -> ", " <-> ", 1)
	}
	text += ")"
	if desc != "" {
		text += fmt.Sprintf(" %q", desc)
	}
	r.Text = text
	return r
}

// hostPair follows the input chain host_input (present when host_isolation
// is true or a domain has egress: false).
func hostPair(m *model.Infra, s *model.Machine) Pair {
	p := Pair{From: s.Name, To: ToHost, Kind: ToHost, ToIP: s.Domain.Gateway.String()}
	if !hostChain(m) {
		p.Default = Decision{Allow, Reason{Kind: HostOpen, Text: "host_isolation is off: the host's own firewall decides"}}
		return p
	}
	for _, pol := range m.Policies {
		if pol.To.Kind != model.HostEndpoint || pol.From.Kind == model.HostEndpoint || pol.TouchesDisabled() {
			continue
		}
		if !endpointMatches(pol.From, s) {
			continue
		}
		if done := addPolicy(&p, pol); done {
			return p
		}
	}
	if !s.Domain.Egress {
		r := Reason{Kind: AirGapDNS, Text: "air-gapped domain " + s.Domain.Name + ": no DNS relay"}
		p.Rules = append(p.Rules,
			Rule{Verdict: Deny, Proto: UDP, Ports: []int{53}, Reason: r},
			Rule{Verdict: Deny, Proto: TCP, Ports: []int{53}, Reason: r})
	}
	if !m.Global.HostIsolation {
		p.Default = Decision{Allow, Reason{Kind: HostOpen, Text: "host_isolation is off: the host's own firewall decides"}}
		return p
	}
	if s.Domain.Egress { // an air-gapped domain's DNS was dropped just above
		dns := Reason{Kind: HostService, Text: "host service: DNS on the bridge gateway"}
		p.Rules = append(p.Rules,
			Rule{Verdict: Allow, Proto: UDP, Ports: []int{53}, Reason: dns},
			Rule{Verdict: Allow, Proto: TCP, Ports: []int{53}, Reason: dns})
	}
	p.Rules = append(p.Rules,
		Rule{Verdict: Allow, Proto: UDP, Ports: []int{67}, Reason: Reason{Kind: HostService, Text: "host service: DHCP"}},
		Rule{Verdict: Allow, Proto: ICMP, Reason: Reason{Kind: HostService, Text: "host service: ICMP"}})
	p.Default = Decision{Deny, Reason{Kind: HostDrop, Text: "host_isolation: the host drops the rest from the anklume bridges"}}
	return p
}

// hostChain reports whether the ruleset has the chain host_input.
func hostChain(m *model.Infra) bool {
	if m.Global.HostIsolation {
		return true
	}
	for _, d := range m.Domains {
		if !d.Egress {
			return true
		}
	}
	return false
}

// outsidePair is the forward chain towards an interface that is not an
// anklume bridge: only egress: false drops it (row 8).
func outsidePair(s *model.Machine) Pair {
	p := Pair{From: s.Name, To: ToOutside, Kind: ToOutside}
	if s.Domain.Egress {
		p.Default = Decision{Allow, Reason{Kind: Egress, Text: "domain " + s.Domain.Name + " has egress"}}
	} else {
		p.Default = Decision{Deny, Reason{Kind: EgressDenied, Text: "domain " + s.Domain.Name + " is air-gapped (egress: false)"}}
	}
	return p
}

// Lookup returns the pair from → to, and whether it exists.
func (mx *Matrix) Lookup(from, to string) (Pair, bool) {
	for _, p := range mx.Pairs {
		if p.From == from && p.To == to {
			return p, true
		}
	}
	return Pair{}, false
}

// Machine returns the machine named name, or nil.
func (mx *Matrix) Machine(name string) *Machine {
	for i := range mx.Machines {
		if mx.Machines[i].Name == name {
			return &mx.Machines[i]
		}
	}
	return nil
}
