// Package nfteval evaluates the anklume isolation ruleset, as text, for
// one new connection: which verdict the chain isolation (forward hook) or
// host_input (input hook) gives it. It reads the rule shapes that
// compiler/emit/nft renders and the ones `nft list table` prints for them
// (a single set element without braces, for example); it is not a general
// nftables interpreter, and it says so: a rule with a statement it does not
// know is an error, never silently skipped.
//
// It exists to check compiler/reach against the ruleset with a second,
// independent reading of the rules, and to compare the reachability of the
// ruleset last deployed with the one a plan would deploy.
package nfteval

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Chains of the anklume table.
const (
	Forward = "isolation"
	Input   = "host_input"
)

// Packet is the first packet of a new connection.
type Packet struct {
	// Iif and Oif are the input and output interface names (Oif is ""
	// for the input hook).
	Iif, Oif     string
	Saddr, Daddr netip.Addr
	// Proto is "tcp", "udp" or "icmp".
	Proto string
	// Dport is the destination port (0 for icmp).
	Dport int
}

// Ruleset is a parsed table inet anklume.
type Ruleset struct {
	chains map[string]*chain
}

type chain struct {
	policyAccept bool
	rules        []rule
}

type rule struct {
	line    int
	text    string
	matches []match
	accept  bool
	ports   []int
}

// match is one condition of a rule.
type match func(Packet) bool

// Parse reads a ruleset: the managed file (markers and comments allowed),
// the rendered block or a `nft list table inet anklume` listing.
func Parse(text []byte) (*Ruleset, error) {
	rs := &Ruleset{chains: map[string]*chain{}}
	var cur *chain
	sc := bufio.NewScanner(bytes.NewReader(text))
	n := 0
	for sc.Scan() {
		n++
		l := strings.TrimSpace(sc.Text())
		if i := strings.Index(l, " # handle "); i >= 0 {
			l = strings.TrimSpace(l[:i])
		}
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
			continue
		case strings.HasPrefix(l, "chain ") && strings.HasSuffix(l, "{"):
			name := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(l, "chain "), "{"))
			cur = &chain{policyAccept: true}
			rs.chains[name] = cur
			continue
		case cur == nil:
			continue // table statements, comment
		case l == "}":
			cur = nil
			continue
		case strings.HasPrefix(l, "type filter hook"):
			cur.policyAccept = !strings.Contains(l, "policy drop")
			continue
		}
		r, err := parseRule(l)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q: %w", n, l, err)
		}
		r.ports = dports(l)
		r.line = n
		cur.rules = append(cur.rules, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return rs, nil
}

// Ports returns every destination port a rule names, in rule order.
func (rs *Ruleset) Ports() []int {
	var out []int
	for _, name := range []string{Forward, Input} {
		if c, ok := rs.chains[name]; ok {
			for _, r := range c.rules {
				out = append(out, r.ports...)
			}
		}
	}
	return out
}

// dports returns the ports of the `tcp dport` and `udp dport` matches of
// a rule line.
func dports(l string) []int {
	toks := tokenize(l)
	var out []int
	for i := 0; i+2 < len(toks); i++ {
		if (toks[i] == "tcp" || toks[i] == "udp") && toks[i+1] == "dport" {
			v := toks[i+2]
			if v == "!=" && i+3 < len(toks) {
				v = toks[i+3]
			}
			for _, x := range values(v) {
				if n, err := strconv.Atoi(x); err == nil {
					out = append(out, n)
				}
			}
		}
	}
	return out
}

// HasChain reports whether the ruleset defines chain name.
func (rs *Ruleset) HasChain(name string) bool { _, ok := rs.chains[name]; return ok }

// Eval returns whether chain accepts p, and the rule that decided ("" for
// the chain policy or an absent chain, which accepts).
func (rs *Ruleset) Eval(chainName string, p Packet) (accept bool, decidedBy string) {
	c, ok := rs.chains[chainName]
	if !ok {
		return true, ""
	}
	for _, r := range c.rules {
		all := true
		for _, m := range r.matches {
			if !m(p) {
				all = false
				break
			}
		}
		if all {
			return r.accept, r.text
		}
	}
	return c.policyAccept, ""
}

// parseRule reads `<matches…> accept|drop`.
func parseRule(l string) (rule, error) {
	toks := tokenize(l)
	if len(toks) == 0 {
		return rule{}, fmt.Errorf("empty rule")
	}
	r := rule{text: l}
	switch toks[len(toks)-1] {
	case "accept":
		r.accept = true
	case "drop":
	default:
		return rule{}, fmt.Errorf("unknown verdict %q", toks[len(toks)-1])
	}
	toks = toks[:len(toks)-1]
	for len(toks) > 0 {
		var m match
		var err error
		m, toks, err = parseMatch(toks)
		if err != nil {
			return rule{}, err
		}
		r.matches = append(r.matches, m)
	}
	return r, nil
}

// tokenize splits on spaces, keeping a brace set `{ a, b }` as one token
// and dropping the quotes of strings.
func tokenize(l string) []string {
	var out []string
	for i := 0; i < len(l); {
		switch {
		case l[i] == ' ':
			i++
		case l[i] == '{':
			j := strings.IndexByte(l[i:], '}')
			if j < 0 {
				j = len(l) - i - 1
			}
			out = append(out, l[i:i+j+1])
			i += j + 1
		default:
			j := strings.IndexByte(l[i:], ' ')
			if j < 0 {
				j = len(l) - i
			}
			out = append(out, l[i:i+j])
			i += j
		}
	}
	return out
}

// values returns the elements of a value token: a set `{ a, b }` or a
// single value, unquoted.
func values(tok string) []string {
	tok = strings.TrimSpace(tok)
	if strings.HasPrefix(tok, "{") {
		tok = strings.TrimSuffix(strings.TrimPrefix(tok, "{"), "}")
	}
	var out []string
	for _, v := range strings.Split(tok, ",") {
		v = strings.Trim(strings.TrimSpace(v), `"`)
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// operand reads `[!=] VALUE` from toks.
func operand(toks []string) (neg bool, vals []string, rest []string, err error) {
	if len(toks) > 0 && toks[0] == "!=" {
		neg, toks = true, toks[1:]
	}
	if len(toks) == 0 {
		return false, nil, nil, fmt.Errorf("missing value")
	}
	return neg, values(toks[0]), toks[1:], nil
}

// parseMatch reads one match from the front of toks.
func parseMatch(toks []string) (match, []string, error) {
	if len(toks) < 2 {
		return nil, nil, fmt.Errorf("unknown statement %q", strings.Join(toks, " "))
	}
	switch toks[0] {
	case "iifname", "oifname":
		neg, vals, rest, err := operand(toks[1:])
		if err != nil {
			return nil, nil, err
		}
		in := toks[0] == "iifname"
		return func(p Packet) bool {
			name := p.Oif
			if in {
				name = p.Iif
			}
			return anyName(vals, name) != neg
		}, rest, nil
	case "ip":
		if len(toks) < 3 || (toks[1] != "saddr" && toks[1] != "daddr") {
			return nil, nil, fmt.Errorf("unknown ip match")
		}
		neg, vals, rest, err := operand(toks[2:])
		if err != nil {
			return nil, nil, err
		}
		var addrs []netip.Prefix
		for _, v := range vals {
			pf, err := netip.ParsePrefix(v)
			if err != nil {
				a, err2 := netip.ParseAddr(v)
				if err2 != nil {
					return nil, nil, fmt.Errorf("bad address %q", v)
				}
				pf = netip.PrefixFrom(a, a.BitLen())
			}
			addrs = append(addrs, pf)
		}
		src := toks[1] == "saddr"
		return func(p Packet) bool {
			a := p.Daddr
			if src {
				a = p.Saddr
			}
			hit := false
			for _, pf := range addrs {
				if a.IsValid() && pf.Contains(a) {
					hit = true
				}
			}
			return hit != neg
		}, rest, nil
	case "tcp", "udp":
		if len(toks) < 3 || toks[1] != "dport" {
			return nil, nil, fmt.Errorf("unknown %s match", toks[0])
		}
		neg, vals, rest, err := operand(toks[2:])
		if err != nil {
			return nil, nil, err
		}
		ports := map[int]bool{}
		for _, v := range vals {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, nil, fmt.Errorf("bad port %q", v)
			}
			ports[n] = true
		}
		proto := toks[0]
		return func(p Packet) bool { return p.Proto == proto && ports[p.Dport] != neg }, rest, nil
	case "meta":
		if len(toks) < 3 || toks[1] != "l4proto" {
			return nil, nil, fmt.Errorf("unknown meta match")
		}
		neg, vals, rest, err := operand(toks[2:])
		if err != nil {
			return nil, nil, err
		}
		return func(p Packet) bool {
			hit := false
			for _, v := range vals {
				if v == p.Proto || (v == "ipv6-icmp" && p.Proto == "icmpv6") {
					hit = true
				}
			}
			return hit != neg
		}, rest, nil
	case "ct":
		if len(toks) < 3 || toks[1] != "state" {
			return nil, nil, fmt.Errorf("unknown ct match")
		}
		neg, vals, rest, err := operand(toks[2:])
		if err != nil {
			return nil, nil, err
		}
		// Every packet evaluated here opens a new connection.
		newConn := false
		for _, v := range vals {
			if v == "new" {
				newConn = true
			}
		}
		return func(Packet) bool { return newConn != neg }, rest, nil
	}
	return nil, nil, fmt.Errorf("unknown statement %q", toks[0])
}

// anyName reports whether name matches one of pats, where a trailing *
// is a prefix wildcard (as nft reads "net-*").
func anyName(pats []string, name string) bool {
	for _, p := range pats {
		if pre, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(name, pre) {
				return true
			}
		} else if p == name {
			return true
		}
	}
	return false
}
