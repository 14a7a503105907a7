package verify

import (
	"slices"

	"github.com/anklume/anklume/compiler/reach"
)

// Probe is one connection attempt and what the matrix expects of it.
type Probe struct {
	Pair reach.Pair
	// Proto is reach.TCP, reach.UDP or reach.ICMP; Port is 0 for ICMP.
	Proto string
	Port  int
	// Expect is the matrix's decision for this connection.
	Expect reach.Decision
	// FromDomain is the source's domain; ToDomain the target's, "" when
	// the target is the host or the outside.
	FromDomain, ToDomain string
}

// Live is what the sampler knows of the live instances: which machines
// can be a probe source (a running container with an init pid) and which
// can be a target (running).
type Live struct {
	Source map[string]bool
	Target map[string]bool
}

// otherPort is the port probed for "the rest" of a pair: one no rule
// names (9, discard, unless a rule names it).
func otherPort(p reach.Pair) int {
	for port := 9; ; port++ {
		named := false
		for _, r := range p.Rules {
			if slices.Contains(r.Ports, port) {
				named = true
			}
		}
		if !named {
			return port
		}
	}
}

// Sample picks the pairs to probe so that every rule of the matrix is
// exercised at least once: the pairs that each policy decides (one per
// direction of a bidirectional policy), one pair for every ordered pair of
// domains (a domain with itself included: same-domain), and for every
// domain one machine towards the host and towards the outside. Sources are
// running containers (a VM runs its own kernel: its namespace cannot be
// entered from the host); targets are running machines. domains, when not
// empty, keeps the pairs whose source or target is in one of them; maxPairs
// > 0 keeps the first maxPairs pairs. Each pair gives one probe per rule
// (its first port), one for the rest at a port no rule names, and one ICMP
// echo; DHCP (udp/67) is not probed, since a DHCP server stays silent on a
// malformed request.
func Sample(mx *reach.Matrix, live Live, domains []string, maxPairs int) (probes []Probe, pairs int) {
	domainOf := map[string]string{}
	for _, m := range mx.Machines {
		domainOf[m.Name] = m.Domain
	}
	usable := func(p reach.Pair) bool {
		if !live.Source[p.From] {
			return false
		}
		if p.Kind == reach.ToMachine && (!live.Target[p.To] || p.ToIP == "") {
			return false
		}
		if len(domains) > 0 && !slices.Contains(domains, domainOf[p.From]) &&
			!(p.Kind == reach.ToMachine && slices.Contains(domains, domainOf[p.To])) {
			return false
		}
		return true
	}
	var picked []reach.Pair
	seen := map[[2]string]bool{}
	pick := func(p reach.Pair) {
		if k := [2]string{p.From, p.To}; !seen[k] {
			seen[k] = true
			picked = append(picked, p)
		}
	}
	// Every policy, in each direction it opens.
	covered := map[[2]string]bool{} // policy index and source domain
	for _, p := range mx.Pairs {
		if !usable(p) {
			continue
		}
		for _, d := range decisions(p) {
			if d.Reason.Policy == 0 {
				continue
			}
			k := [2]string{string(rune(d.Reason.Policy)), domainOf[p.From]}
			if !covered[k] {
				covered[k] = true
				pick(p)
			}
		}
	}
	// Every ordered pair of domains, same domain included, then the host
	// and the outside from every domain.
	dpair := map[[2]string]bool{}
	for _, p := range mx.Pairs {
		if !usable(p) {
			continue
		}
		to := p.To
		if p.Kind == reach.ToMachine {
			to = domainOf[p.To]
		}
		k := [2]string{domainOf[p.From], p.Kind + ":" + to}
		if !dpair[k] {
			dpair[k] = true
			pick(p)
		}
	}
	if maxPairs > 0 && len(picked) > maxPairs {
		picked = picked[:maxPairs]
	}
	for _, p := range picked {
		for _, q := range pointsOf(p) {
			q.FromDomain = domainOf[p.From]
			if p.Kind == reach.ToMachine {
				q.ToDomain = domainOf[p.To]
			}
			probes = append(probes, q)
		}
	}
	return probes, len(picked)
}

// decisions returns every decision a pair can give: its rules' and its
// default.
func decisions(p reach.Pair) []reach.Decision {
	out := make([]reach.Decision, 0, len(p.Rules)+1)
	for _, r := range p.Rules {
		out = append(out, reach.Decision{Verdict: r.Verdict, Reason: r.Reason})
	}
	return append(out, p.Default)
}

// pointsOf returns the probes of one pair.
func pointsOf(p reach.Pair) []Probe {
	var out []Probe
	add := func(proto string, port int) {
		for _, q := range out {
			if q.Proto == proto && q.Port == port {
				return
			}
		}
		out = append(out, Probe{Pair: p, Proto: proto, Port: port, Expect: p.Decide(proto, port)})
	}
	for _, r := range p.Rules {
		switch {
		case r.Proto == reach.ICMP:
			add(reach.ICMP, 0)
		case r.Proto == reach.All:
			add(reach.TCP, otherPort(p))
		case len(r.Ports) > 0 && !(r.Proto == reach.UDP && r.Ports[0] == 67):
			add(r.Proto, r.Ports[0])
		}
	}
	add(reach.TCP, otherPort(p))
	add(reach.ICMP, 0)
	return out
}
