package nfteval

import (
	"net/netip"
	"strings"
	"testing"

	_ "github.com/anklume/anklume/internal/goldenflag"
)

// listing is a `nft -a list table` style listing: single set elements
// without braces, handles, a != match and an input chain with drop.
const listing = `table inet anklume { # handle 7
	comment "anklume infra=x"
	chain isolation { # handle 1
		type filter hook forward priority -1; policy accept;
		ct state established,related accept # handle 2
		ct state invalid drop # handle 3
		iifname "net-a" oifname "net-a" accept # handle 4
		iifname "net-a" oifname "net-b" ip saddr 10.1.0.1 ip daddr 10.2.0.1 tcp dport 22 accept # handle 5
		iifname "net-b" oifname "net-a" udp dport { 53, 5353 } accept # handle 6
		iifname != "net-*" oifname "net-*" ct state new drop # handle 8
		iifname { "net-a", "net-b" } oifname { "net-a", "net-b" } drop # handle 9
		iifname "net-b" oifname != "net-*" drop # handle 10
	}
	chain host_input {
		type filter hook input priority -1; policy accept;
		iifname "net-a" ip daddr 10.1.0.254 udp dport 53 accept
		iifname "net-a" meta l4proto { icmp, ipv6-icmp } accept
		iifname "net-*" drop
	}
}
`

func TestEval(t *testing.T) {
	rs, err := Parse([]byte(listing))
	if err != nil {
		t.Fatal(err)
	}
	a1, a2, b1 := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr("10.2.0.1")
	gw := netip.MustParseAddr("10.1.0.254")
	out := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name  string
		chain string
		p     Packet
		want  bool
	}{
		{"same bridge", Forward, Packet{"net-a", "net-a", a1, a2, "tcp", 9}, true},
		{"policy", Forward, Packet{"net-a", "net-b", a1, b1, "tcp", 22}, true},
		{"policy other source", Forward, Packet{"net-a", "net-b", a2, b1, "tcp", 22}, false},
		{"policy other port", Forward, Packet{"net-a", "net-b", a1, b1, "tcp", 23}, false},
		{"policy udp set", Forward, Packet{"net-b", "net-a", b1, a1, "udp", 5353}, true},
		{"policy udp set, tcp", Forward, Packet{"net-b", "net-a", b1, a1, "tcp", 5353}, false},
		{"outside in", Forward, Packet{"eth0", "net-a", out, a1, "tcp", 22}, false},
		{"egress a", Forward, Packet{"net-a", "eth0", a1, out, "tcp", 443}, true},
		{"egress off b", Forward, Packet{"net-b", "eth0", b1, out, "icmp", 0}, false},
		{"dns gateway", Input, Packet{"net-a", "", a1, gw, "udp", 53}, true},
		{"dns other address", Input, Packet{"net-a", "", a1, b1, "udp", 53}, false},
		{"icmp", Input, Packet{"net-a", "", a1, gw, "icmp", 0}, true},
		{"host other", Input, Packet{"net-b", "", b1, gw, "icmp", 0}, false},
		{"not anklume", Input, Packet{"eth0", "", out, gw, "tcp", 22}, true},
	}
	for _, tt := range tests {
		if got, rule := rs.Eval(tt.chain, tt.p); got != tt.want {
			t.Errorf("%s: accept=%v (rule %q), want %v", tt.name, got, rule, tt.want)
		}
	}
	if !rs.HasChain(Input) || rs.HasChain("other") {
		t.Error("HasChain")
	}
	if got, _ := (&Ruleset{chains: map[string]*chain{}}).Eval(Forward, Packet{Iif: "net-a", Oif: "net-b"}); !got {
		t.Error("an absent chain must accept")
	}
}

// TestUnknownStatement: a rule the evaluator cannot read is an error,
// never skipped.
func TestUnknownStatement(t *testing.T) {
	for _, rule := range []string{
		`iifname "net-a" counter accept`,
		`iifname "net-a" jump other`,
		`ip6 saddr ::1 accept`,
	} {
		_, err := Parse([]byte("chain isolation {\n" + rule + "\n}\n"))
		if err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%s: err %v", rule, err)
		}
	}
}
