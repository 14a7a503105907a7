package reach

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/anklume/anklume/compiler/reach/nfteval"
)

// Change is a path a new ruleset opens or closes for one pair.
type Change struct {
	From, To string
	// Opened and Closed list the traffic, as "tcp/22,80", "udp/53",
	// "icmp", "tcp/other" (every port no rule names).
	Opened, Closed []string
	// Why is the reason of the new verdict for the first opened (or
	// closed) traffic.
	Why string
}

// Changes compares the matrix mx (the desired state) with the ruleset
// prev (the ruleset last deployed), pair by pair: every port named by a
// policy of either side, the host service ports, one port neither names
// ("other") and ICMP. The pairs are mx's: a machine only in prev is gone,
// and its paths with it.
func Changes(mx *Matrix, prev *nfteval.Ruleset) []Change {
	ports := map[int]bool{53: true}
	for _, p := range mx.Pairs {
		for _, r := range p.Rules {
			for _, x := range r.Ports {
				ports[x] = true
			}
		}
	}
	for _, x := range prev.Ports() {
		ports[x] = true
	}
	other := 1
	for ports[other] {
		other++
	}
	sorted := make([]int, 0, len(ports)+1)
	for x := range ports {
		sorted = append(sorted, x)
	}
	slices.Sort(sorted)
	sorted = append(sorted, other)

	var out []Change
	for _, p := range mx.Pairs {
		src := mx.Machine(p.From)
		if src == nil {
			continue
		}
		pkt := nfteval.Packet{Iif: src.Bridge}
		pkt.Saddr, _ = netip.ParseAddr(src.IP)
		chain := nfteval.Forward
		switch p.Kind {
		case ToMachine:
			dst := mx.Machine(p.To)
			pkt.Oif = dst.Bridge
			pkt.Daddr, _ = netip.ParseAddr(p.ToIP)
		case ToHost:
			chain = nfteval.Input
			pkt.Daddr, _ = netip.ParseAddr(p.ToIP)
		case ToOutside:
			pkt.Oif, pkt.Daddr = "outside", netip.MustParseAddr("192.0.2.1")
		}
		c := Change{From: p.From, To: p.To}
		opened, closed := map[string][]string{}, map[string][]string{}
		check := func(proto string, port int, label string) {
			q := pkt
			q.Proto, q.Dport = proto, port
			was, _ := prev.Eval(chain, q)
			d := p.Decide(proto, port)
			now := d.Verdict == Allow
			if was == now {
				return
			}
			if c.Why == "" {
				c.Why = d.Reason.Text
			}
			if now {
				opened[proto] = append(opened[proto], label)
			} else {
				closed[proto] = append(closed[proto], label)
			}
		}
		for _, proto := range []string{TCP, UDP} {
			for _, x := range sorted {
				label := strconv.Itoa(x)
				if x == other {
					label = "other"
				}
				check(proto, x, label)
			}
		}
		check(ICMP, 0, "")
		c.Opened, c.Closed = specs(opened), specs(closed)
		if len(c.Opened)+len(c.Closed) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// specs turns proto → ports into "tcp/22,other", "icmp".
func specs(m map[string][]string) []string {
	var out []string
	for _, proto := range []string{TCP, UDP, ICMP} {
		ps, ok := m[proto]
		if !ok {
			continue
		}
		if proto == ICMP {
			out = append(out, ICMP)
			continue
		}
		out = append(out, proto+"/"+strings.Join(ps, ","))
	}
	return out
}

// WriteChanges prints the "Reachability changes" section, or nothing when
// cs is empty.
func WriteChanges(w io.Writer, cs []Change) error {
	if len(cs) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("\nReachability changes (against the rules last deployed on this host):\n")
	for _, c := range cs {
		if len(c.Opened) > 0 {
			fmt.Fprintf(&b, "  + %s -> %s opens %s (%s)\n", c.From, c.To, strings.Join(c.Opened, " "), c.Why)
		}
		if len(c.Closed) > 0 {
			fmt.Fprintf(&b, "  - %s -> %s closes %s\n", c.From, c.To, strings.Join(c.Closed, " "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
