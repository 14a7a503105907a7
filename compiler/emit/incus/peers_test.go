package incus

import (
	"slices"
	"testing"
)

// peersPSOT has four enabled domains and a disabled one: policies from
// machine to domain, from domain to domain both ways, inside one domain,
// to the host and to the disabled domain.
const peersPSOT = `format_version: 1
project_name: t
global:
  addressing: {}
domains:
  a:
    trust_level: trusted
    machines:
      a1: {}
  b:
    trust_level: trusted
    machines:
      b1: {}
  c:
    trust_level: trusted
    machines:
      c1: {}
  d:
    trust_level: trusted
    machines:
      d1: {}
  off:
    enabled: false
    trust_level: trusted
    machines:
      off1: {}
network_policies:
  - {from: c1, to: a, ports: [22]}
  - {from: a, to: b, ports: [80]}
  - {from: b, to: a, ports: [443]}
  - {from: a1, to: a, ports: [8080]}
  - {from: d, to: host, ports: [53]}
  - {from: d, to: off, ports: [53]}
`

// TestPeers: Project.Peers lists, in policy order and once each, the
// enabled domains a policy links the domain to in either direction; a
// policy inside the domain, to the host or touching a disabled domain
// links nothing.
func TestPeers(t *testing.T) {
	s := Desired(compile(t, peersPSOT))
	for _, c := range []struct {
		domain string
		want   []string
	}{
		{"a", []string{"c", "b"}},
		{"b", []string{"a"}},
		{"c", []string{"a"}},
		{"d", nil},
	} {
		p := s.DomainProject(c.domain)
		if p == nil {
			t.Fatalf("no project for domain %s", c.domain)
		}
		if !slices.Equal(p.Peers, c.want) {
			t.Errorf("domain %s: peers %q, want %q", c.domain, p.Peers, c.want)
		}
	}
}
