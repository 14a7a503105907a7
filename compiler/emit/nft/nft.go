// Package nft renders the nftables isolation ruleset, table inet anklume,
// from the resolved model (SPEC.md §7.2–§7.6). It is pure: it reads the
// model and returns bytes; deploying them is internal/nftables' job.
//
// Every string that reaches the ruleset is either built from names the
// compiler has already constrained (domain names match
// ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$, bridge names derive from them, IPs are
// netip values) or passes through Sanitize, whose alphabet has no quote,
// brace, backslash or newline, so no input can break out of its token.
package nft

import (
	"sort"
	"strconv"
	"strings"

	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
)

// Path is the managed file that sync writes and deploy loads (§6.2).
const Path = "nftables/anklume-isolation.nft"

// Table is the family and name of the one table anklume owns.
const Table = "inet anklume"

// CommentPrefix starts the table comment; deploy reads what follows it to
// tell which infrastructure a loaded table belongs to (§7.7).
const CommentPrefix = "anklume infra="

// maxInfraName is the number of characters of the sanitised project_name
// kept in the table comment: nft limits a comment to 128 bytes (§7.2).
const maxInfraName = 114

// File returns the managed file of §6.2 for sync: nftables/
// anklume-isolation.nft, whose managed section holds Render(m).
func File(m *model.Infra) tree.File {
	return tree.File{Path: Path, Content: Render(m), Class: tree.Managed, Kind: tree.NFT}
}

// Sanitize turns a description into the text of one comment line (§7.5):
// `\r` and `\n` become spaces, every character outside
// [a-zA-Z0-9 _.,:;/<>()@#+-] is removed, and leading and trailing spaces
// are trimmed. Runs of spaces inside are kept.
func Sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\r' || r == '\n':
			b.WriteByte(' ')
		case allowed(r):
			b.WriteRune(r)
		}
	}
	return strings.Trim(b.String(), " ")
}

// allowed reports whether r is in the comment alphabet of §7.5.
func allowed(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune(" _.,:;/<>()@#+-", r)
}

// TableComment returns the table comment for projectName, without quotes:
// "anklume infra=" followed by the sanitised name cut to its first 114
// characters (§7.2).
func TableComment(projectName string) string {
	name := Sanitize(projectName)
	if len(name) > maxInfraName { // the alphabet is ASCII: bytes are characters
		name = name[:maxInfraName]
	}
	return CommentPrefix + name
}

// Render returns the ruleset of m: the content between the markers of
// nftables/anklume-isolation.nft, ending with a newline (§7.2). The table
// is declared, deleted and defined again, so `nft -f` replaces it in one
// transaction.
func Render(m *model.Infra) []byte {
	r := newRenderer(m)
	var b strings.Builder
	b.WriteString("table " + Table + "\n")
	b.WriteString("delete table " + Table + "\n")
	b.WriteString("table " + Table + " {\n")
	b.WriteString("\tcomment " + quote(TableComment(m.ProjectName)) + "\n")
	b.WriteString("\tchain isolation {\n")
	b.WriteString("\t\ttype filter hook forward priority -1; policy accept;\n")
	for _, line := range r.forward() {
		b.WriteString("\t\t" + line + "\n")
	}
	b.WriteString("\t}\n")
	if r.hostInput() {
		b.WriteString("\tchain host_input {\n")
		b.WriteString("\t\ttype filter hook input priority -1; policy accept;\n")
		for _, line := range r.input() {
			b.WriteString("\t\t" + line + "\n")
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// renderer holds what both chains need: the domains sorted by bridge and
// the wildcard.
type renderer struct {
	m *model.Infra
	// domains holds every domain, enabled or disabled, in byte-wise order
	// of bridge name (§7.1).
	domains []*model.Domain
	// wild is the quoted wildcard <W>, "<prefix>net-*".
	wild string
}

func newRenderer(m *model.Infra) *renderer {
	ds := append([]*model.Domain(nil), m.Domains...)
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].Bridge < ds[j].Bridge })
	return &renderer{m: m, domains: ds, wild: quote(m.Prefix + "net-*")}
}

// forward returns the rules of chain isolation in the order of §7.3.
func (r *renderer) forward() []string {
	out := []string{
		"ct state established,related accept",
		"ct state invalid drop",
	}
	for _, d := range r.domains {
		b := quote(d.Bridge)
		out = append(out, "iifname "+b+" oifname "+b+" accept")
	}
	for _, p := range r.m.Policies {
		if p.From.Kind == model.HostEndpoint || p.To.Kind == model.HostEndpoint || p.TouchesDisabled() {
			continue
		}
		out = append(out, policyRules(p, true)...)
	}
	out = append(out, "iifname != "+r.wild+" oifname "+r.wild+" ct state new drop")
	if len(r.domains) >= 2 {
		set := r.bridgeSet()
		out = append(out, "iifname "+set+" oifname "+set+" drop")
	}
	out = append(out, "iifname "+r.wild+" oifname "+r.wild+" drop")
	for _, d := range r.domains {
		if d.Egress {
			continue
		}
		b := quote(d.Bridge)
		out = append(out,
			"iifname "+b+" oifname != "+r.wild+" drop",
			"iifname != "+r.wild+" oifname "+b+" drop")
	}
	return out
}

// hostInput reports whether chain host_input is present (§7.4).
func (r *renderer) hostInput() bool {
	if r.m.Global.HostIsolation {
		return true
	}
	for _, d := range r.domains {
		if !d.Egress {
			return true
		}
	}
	return false
}

// input returns the rules of chain host_input in the order of §7.4.
func (r *renderer) input() []string {
	out := []string{"ct state established,related accept"}
	for _, p := range r.m.Policies {
		// Host-originated traffic is never filtered, so a policy from the
		// host (or one mirrored back to it) emits nothing.
		if p.To.Kind != model.HostEndpoint || p.From.Kind == model.HostEndpoint || p.TouchesDisabled() {
			continue
		}
		out = append(out, policyRules(p, false)...)
	}
	for _, d := range r.domains {
		if d.Egress {
			continue
		}
		b := quote(d.Bridge)
		out = append(out,
			"iifname "+b+" udp dport 53 drop",
			"iifname "+b+" tcp dport 53 drop")
	}
	if !r.m.Global.HostIsolation {
		return out
	}
	for _, d := range r.domains {
		b := quote(d.Bridge)
		gw := d.Gateway.String()
		out = append(out,
			"iifname "+b+" ip daddr "+gw+" udp dport 53 accept",
			"iifname "+b+" ip daddr "+gw+" tcp dport 53 accept",
			"iifname "+b+" udp dport 67 accept",
			"iifname "+b+" meta l4proto { icmp, ipv6-icmp } accept")
	}
	return append(out, "iifname "+r.wild+" drop")
}

// bridgeSet returns the anonymous set of every bridge, in order.
func (r *renderer) bridgeSet() string {
	names := make([]string, len(r.domains))
	for i, d := range r.domains {
		names[i] = quote(d.Bridge)
	}
	return "{ " + strings.Join(names, ", ") + " }"
}

// policyRules returns the comment line (when the sanitised description is
// not empty) and the rules of one policy (§7.3 row 4, §7.4 row 2).
// forward selects the forward shape (with oifname and ip daddr, and the
// mirrored rule when bidirectional); otherwise the input shape towards the
// host. ports: [] gives the comment alone.
func policyRules(p *model.Policy, forward bool) []string {
	var out []string
	if c := Sanitize(p.Description); c != "" {
		out = append(out, "# "+c)
	}
	match := ""
	if !p.AllPorts {
		ports := p.UniquePorts()
		if len(ports) == 0 {
			return out
		}
		strs := make([]string, len(ports))
		for i, x := range ports {
			strs[i] = strconv.Itoa(x)
		}
		match = " " + p.Protocol + " dport { " + strings.Join(strs, ", ") + " }"
	}
	if !forward {
		rule, ok := inputRule(p.From, match)
		if ok {
			out = append(out, rule)
		}
		return out
	}
	if rule, ok := forwardRule(p.From, p.To, match); ok {
		out = append(out, rule)
	}
	if p.Bidirectional {
		if rule, ok := forwardRule(p.To, p.From, match); ok {
			out = append(out, rule)
		}
	}
	return out
}

// forwardRule renders `iifname "<FB>" oifname "<TB>" [ip saddr <FIP>]
// [ip daddr <TIP>]<match> accept`. ok is false when an endpoint cannot be
// resolved (a machine without an IP, which N11 rejects); the rule is then
// left out rather than widened to the whole bridge.
func forwardRule(from, to model.Endpoint, match string) (string, bool) {
	if from.Domain == nil || to.Domain == nil {
		return "", false
	}
	s := "iifname " + quote(from.Domain.Bridge) + " oifname " + quote(to.Domain.Bridge)
	if from.Kind == model.MachineEndpoint {
		if !from.IP.IsValid() {
			return "", false
		}
		s += " ip saddr " + from.IP.String()
	}
	if to.Kind == model.MachineEndpoint {
		if !to.IP.IsValid() {
			return "", false
		}
		s += " ip daddr " + to.IP.String()
	}
	return s + match + " accept", true
}

// inputRule renders `iifname "<FB>" [ip saddr <FIP>]<match> accept` for a
// policy towards the host.
func inputRule(from model.Endpoint, match string) (string, bool) {
	if from.Domain == nil {
		return "", false
	}
	s := "iifname " + quote(from.Domain.Bridge)
	if from.Kind == model.MachineEndpoint {
		if !from.IP.IsValid() {
			return "", false
		}
		s += " ip saddr " + from.IP.String()
	}
	return s + match + " accept", true
}

// quote wraps s in double quotes. Every caller passes a bridge name, the
// wildcard or a sanitised comment, none of which can hold a quote.
func quote(s string) string { return `"` + s + `"` }
