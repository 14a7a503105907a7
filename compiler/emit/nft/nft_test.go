package nft

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/examples"
	"github.com/anklume/anklume/internal/goldenflag"
)

var update = goldenflag.Update

// testOptions are the host options of the §16 preamble: no host subnet
// check, 10 CPUs and 40 GiB, an empty context.
func testOptions() host.Options {
	return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
}

// compile compiles the PSOT y and fails the test on any error.
func compile(t testing.TB, y string) *model.Infra {
	t.Helper()
	fsys := fstest.MapFS{"infra.yml": {Data: []byte(y)}}
	res, dl, err := compiler.Compile(fsys, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, testOptions())
	if err != nil || res == nil {
		t.Fatalf("compile: %v\n%s\n--- input:\n%s", err, dl, y)
	}
	return res.Model
}

// workedExample is the model of SPEC.md §7.6 written as a PSOT.
const workedExample = `format_version: 1
project_name: demo
global:
  addressing: {}
  default_os_image: images:debian/13
domains:
  anklume:
    trust_level: admin
    machines:
      admin-ctl: {}
  perso:
    trust_level: trusted
    machines:
      perso-ws: {}
  pro:
    trust_level: trusted
    machines:
      pro-dev: {}
  sandbox:
    trust_level: disposable
    egress: false
    machines:
      sbx-one: {}
network_policies:
  - description: "Admin SSH to pro"
    from: anklume
    to: pro
    ports: [22]
  - description: "Pro and perso"
    from: pro
    to: perso
    ports: all
    bidirectional: true
  - description: "apt cache"
    from: pro-dev
    to: host
    ports: [3142]
  - description: "web"
    from: admin-ctl
    to: pro-dev
    ports: [80, 443]
`

// TestWorkedExample: the model of §7.6 renders exactly the text shown there
// (§16 #47). testdata/spec-7.6.nft is copied byte for byte from SPEC.md.
func TestWorkedExample(t *testing.T) {
	m := compile(t, workedExample)
	if got := m.Machine("pro-dev").IP.String(); got != "10.110.1.1" {
		t.Fatalf("pro-dev is %s, the example needs 10.110.1.1", got)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "spec-7.6.nft"))
	if err != nil {
		t.Fatal(err)
	}
	if got := Render(m); !bytes.Equal(got, want) {
		t.Fatalf("§7.6 mismatch:\n%s", tree.UnifiedDiff("spec-7.6.nft", want, false, got))
	}
}

// TestExamplesGolden compares the ruleset of every shipped example with
// testdata/<example>.nft; -update rewrites them. A missing example list is
// a failure.
func TestExamplesGolden(t *testing.T) {
	names := examples.Names()
	if len(names) == 0 {
		t.Fatal("no examples found")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			res, dl, err := compiler.Compile(examples.FS(), compiler.Input{Path: name + "/infra.yml", Display: "infra.yml"}, testOptions())
			if err != nil || res == nil {
				t.Fatalf("compile: %v\n%s", err, dl)
			}
			got := Render(res.Model)
			golden := filepath.Join("testdata", name+".nft")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs:\n%s", golden, tree.UnifiedDiff(golden, want, false, got))
			}
			if again := Render(res.Model); !bytes.Equal(got, again) {
				t.Error("Render is not deterministic")
			}
		})
	}
}

// lines returns the rule lines of ruleset s, trimmed of their indentation.
func lines(s []byte) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(s), "\n"), "\n") {
		out = append(out, strings.TrimLeft(l, "\t"))
	}
	return out
}

// count returns how many lines of s equal line.
func count(s []byte, line string) int {
	n := 0
	for _, l := range lines(s) {
		if l == line {
			n++
		}
	}
	return n
}

// chain returns the rule lines of chain name (without its header and
// closing brace), or nil when the chain is absent.
func chain(s []byte, name string) []string {
	ls := lines(s)
	for i, l := range ls {
		if l != "chain "+name+" {" {
			continue
		}
		for j := i + 2; j < len(ls); j++ {
			if ls[j] == "}" {
				return ls[i+2 : j]
			}
		}
	}
	return nil
}

// psot builds a zone-mode PSOT from domain and policy blocks.
func psot(global, domains, policies string) string {
	s := "format_version: 1\nproject_name: t\nglobal:\n  addressing: {}\n" + global + "domains:\n" + domains
	if policies != "" {
		s += "network_policies:\n" + policies
	}
	return s
}

// TestRuleShapes checks the shapes of §7.3 and §7.4 one by one (§16 #48).
func TestRuleShapes(t *testing.T) {
	twenty := ""
	for i := 0; i < 20; i++ {
		twenty += "  d" + string(rune('a'+i)) + ":\n    trust_level: trusted\n    machines: {}\n"
	}
	two := "  web:\n    trust_level: trusted\n    machines:\n      web-1: {}\n      web-2: {}\n" +
		"  db:\n    trust_level: semi-trusted\n    machines:\n      db-1: {}\n"
	tests := []struct {
		name       string
		in         string
		want       []string // lines that must be present, each exactly once
		wantCount  map[string]int
		notContain []string
	}{
		{
			name: "20 bridges, 20 same-bridge rules",
			in:   psot("", twenty, ""),
			wantCount: map[string]int{
				`iifname "net-da" oifname "net-da" accept`: 1,
				`iifname "net-dt" oifname "net-dt" accept`: 1,
			},
		},
		{
			name: "one bridge: no set drop, still the row-5 rule",
			in:   psot("", "  solo:\n    machines:\n      solo-1: {}\n", ""),
			want: []string{
				`iifname != "net-*" oifname "net-*" ct state new drop`,
				`iifname "net-*" oifname "net-*" drop`,
			},
			notContain: []string{`iifname { `},
		},
		{
			name: "bidirectional gives 2 rules; all has no dport",
			in:   psot("", two, "  - {from: web, to: db, bidirectional: true}\n"),
			want: []string{
				`iifname "net-web" oifname "net-db" accept`,
				`iifname "net-db" oifname "net-web" accept`,
			},
			notContain: []string{"dport {"},
		},
		{
			name: "udp, single port keeps braces, machine endpoints",
			in:   psot("", two, "  - {from: web-2, to: db-1, ports: [53], protocol: udp}\n"),
			want: []string{`iifname "net-web" oifname "net-db" ip saddr 10.110.0.2 ip daddr 10.120.0.1 udp dport { 53 } accept`},
		},
		{
			name: "machine to domain adds only ip saddr; duplicates dropped",
			in:   psot("", two, "  - {from: web-1, to: db, ports: [5432, 22, 5432]}\n"),
			want: []string{`iifname "net-web" oifname "net-db" ip saddr 10.110.0.1 tcp dport { 5432, 22 } accept`},
		},
		{
			name: "domain to machine, bidirectional mirrors addresses",
			in:   psot("", two, "  - {from: web, to: db-1, ports: [1], bidirectional: true}\n"),
			want: []string{
				`iifname "net-web" oifname "net-db" ip daddr 10.120.0.1 tcp dport { 1 } accept`,
				`iifname "net-db" oifname "net-web" ip saddr 10.120.0.1 tcp dport { 1 } accept`,
			},
		},
		{
			name: "descriptions sanitised; one that sanitises to nothing gives no comment",
			in: psot("", two, "  - {description: \"  a\\\"b}\\n{c;  d \", from: web, to: db, ports: [1]}\n"+
				"  - {description: \"日本\", from: db, to: web, ports: [2]}\n"),
			want: []string{"# ab c;  d"},
			wantCount: map[string]int{
				`iifname "net-db" oifname "net-web" tcp dport { 2 } accept`: 1,
			},
			notContain: []string{"#  ", "# \n", "日本"},
		},
		{
			name: "ports [] emits the comment only",
			in:   psot("", two, "  - {description: nothing, from: web, to: db, ports: []}\n"),
			want: []string{"# nothing"},
			notContain: []string{
				`iifname "net-web" oifname "net-db" accept`,
				`iifname "net-web" oifname "net-db" tcp`,
			},
		},
		{
			name: "host DNS accepts carry the gateway; table comment",
			in:   psot("", two, ""),
			want: []string{
				`iifname "net-db" ip daddr 10.120.0.254 udp dport 53 accept`,
				`iifname "net-web" ip daddr 10.110.0.254 tcp dport 53 accept`,
				`comment "anklume infra=t"`,
				`iifname "net-*" drop`,
			},
		},
		{
			name:       "from host emits nothing",
			in:         psot("", two, "  - {description: hostpol, from: host, to: web-1, ports: [22]}\n"),
			notContain: []string{"# hostpol", "10.110.0.1"},
		},
		{
			name: "to host: input rule with ip saddr, ports all without dport",
			in: psot("", two, "  - {from: web-1, to: host}\n"+
				"  - {from: db, to: host, ports: [3142]}\n"),
			want: []string{
				`iifname "net-web" ip saddr 10.110.0.1 accept`,
				`iifname "net-db" tcp dport { 3142 } accept`,
			},
		},
		{
			name: "a policy inside one bridge is still emitted; duplicates emit again",
			in: psot("", two, "  - {from: web-1, to: web-2, ports: [80]}\n"+
				"  - {from: web-1, to: web-2, ports: [80]}\n"),
			wantCount: map[string]int{
				`iifname "net-web" oifname "net-web" ip saddr 10.110.0.1 ip daddr 10.110.0.2 tcp dport { 80 } accept`: 2,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Render(compile(t, tt.in))
			for _, w := range tt.want {
				if n := count(got, w); n != 1 {
					t.Errorf("%q appears %d times, want 1\n%s", w, n, got)
				}
			}
			for w, n := range tt.wantCount {
				if c := count(got, w); c != n {
					t.Errorf("%q appears %d times, want %d\n%s", w, c, n, got)
				}
			}
			for _, w := range tt.notContain {
				if strings.Contains(string(got), w) {
					t.Errorf("ruleset contains %q\n%s", w, got)
				}
			}
		})
	}
}

// TestTwentyBridges: 20 bridges give exactly 20 same-bridge rules and one
// set drop naming the 20 bridges (§16 #48).
func TestTwentyBridges(t *testing.T) {
	doms := ""
	for i := 0; i < 20; i++ {
		doms += "  d" + string(rune('a'+i)) + ":\n    trust_level: trusted\n    machines: {}\n"
	}
	got := Render(compile(t, psot("", doms, "")))
	same := 0
	for _, l := range chain(got, "isolation") {
		f := strings.Fields(l)
		if len(f) == 5 && f[0] == "iifname" && f[2] == "oifname" && f[1] == f[3] && f[4] == "accept" {
			same++
		}
	}
	if same != 20 {
		t.Errorf("%d same-bridge rules, want 20", same)
	}
	for _, l := range chain(got, "isolation") {
		if strings.HasPrefix(l, "iifname { ") && strings.Count(l, `"net-d`) != 40 {
			t.Errorf("set drop does not name the 20 bridges twice: %s", l)
		}
	}
}

// TestEgressAndHostInput covers §16 #49 and the presence rule of §7.4.
func TestEgressAndHostInput(t *testing.T) {
	air := "  air:\n    trust_level: untrusted\n    egress: false\n    machines:\n      air-1: {}\n" +
		"  net:\n    trust_level: trusted\n    machines:\n      net-1: {}\n"
	open := "  one:\n    trust_level: trusted\n    machines:\n      one-1: {}\n"
	tests := []struct {
		name      string
		in        string
		wantInput []string // nil: no host_input chain
		wantFwd   []string // rules expected at the end of isolation
	}{
		{
			name: "egress false, host_isolation false: forward drops and DNS drops only",
			in:   psot("  host_isolation: false\n", air, ""),
			wantInput: []string{
				"ct state established,related accept",
				`iifname "net-air" udp dport 53 drop`,
				`iifname "net-air" tcp dport 53 drop`,
			},
			wantFwd: []string{
				`iifname "net-*" oifname "net-*" drop`,
				`iifname "net-air" oifname != "net-*" drop`,
				`iifname != "net-*" oifname "net-air" drop`,
			},
		},
		{
			name:    "host_isolation false without air gap: no host_input",
			in:      psot("  host_isolation: false\n", open, ""),
			wantFwd: []string{`iifname "net-*" oifname "net-*" drop`},
		},
		{
			name: "host_isolation default true",
			in:   psot("", open, ""),
			wantInput: []string{
				"ct state established,related accept",
				`iifname "net-one" ip daddr 10.110.0.254 udp dport 53 accept`,
				`iifname "net-one" ip daddr 10.110.0.254 tcp dport 53 accept`,
				`iifname "net-one" udp dport 67 accept`,
				`iifname "net-one" meta l4proto { icmp, ipv6-icmp } accept`,
				`iifname "net-*" drop`,
			},
			wantFwd: []string{`iifname "net-*" oifname "net-*" drop`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Render(compile(t, tt.in))
			in := chain(got, "host_input")
			if strings.Join(in, "\n") != strings.Join(tt.wantInput, "\n") {
				t.Errorf("host_input:\n%s\nwant\n%s", strings.Join(in, "\n"), strings.Join(tt.wantInput, "\n"))
			}
			if tt.wantInput == nil && strings.Contains(string(got), "host_input") {
				t.Errorf("unexpected host_input chain:\n%s", got)
			}
			fwd := chain(got, "isolation")
			if len(fwd) < len(tt.wantFwd) {
				t.Fatalf("isolation too short:\n%s", got)
			}
			tail := fwd[len(fwd)-len(tt.wantFwd):]
			if strings.Join(tail, "\n") != strings.Join(tt.wantFwd, "\n") {
				t.Errorf("isolation ends with\n%s\nwant\n%s", strings.Join(tail, "\n"), strings.Join(tt.wantFwd, "\n"))
			}
		})
	}
}

// TestDisabledDomain: a disabled domain keeps its bridge rules, and
// policies naming it are not rendered (§16 #27, §7.1).
func TestDisabledDomain(t *testing.T) {
	doms := "  on:\n    trust_level: trusted\n    machines:\n      on-1: {}\n" +
		"  off:\n    trust_level: trusted\n    enabled: false\n    egress: false\n    machines:\n      off-1: {}\n"
	m := compile(t, psot("", doms,
		"  - {description: gone, from: on, to: off, ports: [22]}\n"+
			"  - {description: gone too, from: off-1, to: host}\n"))
	got := Render(m)
	gw := m.Domain("off").Gateway.String()
	for _, w := range []string{
		`iifname "net-off" oifname "net-off" accept`,
		`iifname { "net-off", "net-on" } oifname { "net-off", "net-on" } drop`,
		`iifname "net-off" oifname != "net-*" drop`,
		`iifname "net-off" udp dport 53 drop`,
		`iifname "net-off" ip daddr ` + gw + ` udp dport 53 accept`,
	} {
		if count(got, w) != 1 {
			t.Errorf("missing %q\n%s", w, got)
		}
	}
	if strings.Contains(string(got), "gone") || strings.Contains(string(got), "dport { 22 }") {
		t.Errorf("a policy naming a disabled domain was rendered:\n%s", got)
	}
}

// TestNestingPrefix: with a prefix the wildcard is "<prefix>net-*" and the
// bridges carry the prefix (§4.5).
func TestNestingPrefix(t *testing.T) {
	m := compile(t, psot("", "  a:\n    trust_level: trusted\n    machines:\n      a-1: {}\n", ""))
	for _, d := range m.Domains {
		d.Bridge = "001-" + d.Bridge
	}
	m.Prefix = "001-"
	got := Render(m)
	for _, w := range []string{
		`iifname "001-net-a" oifname "001-net-a" accept`,
		`iifname != "001-net-*" oifname "001-net-*" ct state new drop`,
		`iifname "001-net-*" drop`,
	} {
		if count(got, w) != 1 {
			t.Errorf("missing %q\n%s", w, got)
		}
	}
}

// TestTableComment: the project name is sanitised and cut at 114
// characters (§7.2).
func TestTableComment(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct{ in, want string }{
		{"demo", "anklume infra=demo"},
		{`my "lab"; flush ruleset`, "anklume infra=my lab; flush ruleset"},
		{"  日本 lab\n2 ", "anklume infra=lab 2"},
		{long, "anklume infra=" + long[:114]},
		{"é" + long, "anklume infra=" + long[:114]},
	}
	for _, tt := range tests {
		if got := TableComment(tt.in); got != tt.want {
			t.Errorf("TableComment(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := TableComment(tt.in); len(got) > 128 {
			t.Errorf("comment of %q is %d bytes", tt.in, len(got))
		}
	}
}

// TestSanitize checks §7.5 on single descriptions.
func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Admin SSH to pro", "Admin SSH to pro"},
		{"a\r\nb", "a  b"},
		{"  x  ", "x"},
		{"日本", ""},
		{`"}; flush ruleset; table ip x {`, "; flush ruleset; table ip x"},
		{"keep: [a-z] @host #1 (x) <y> /z +w, v.", "keep: a-z @host #1 (x) <y> /z +w, v."},
		{"tab\there", "tabhere"},
	}
	for _, tt := range tests {
		if got := Sanitize(tt.in); got != tt.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzSanitize: whatever the description, the comment is one line of the
// §7.5 alphabet, so it cannot leave its comment (issue 4 item 5).
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", "a\nb", `"}`, "日本", "\x00\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Sanitize(s)
		for _, r := range got {
			if !allowed(r) {
				t.Fatalf("Sanitize(%q) = %q holds %q", s, got, r)
			}
		}
		if strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") {
			t.Fatalf("Sanitize(%q) = %q is not trimmed", s, got)
		}
		if c := TableComment(s); len(c) > 128 || strings.ContainsAny(c, "\"\\\n{}") {
			t.Fatalf("TableComment(%q) = %q", s, c)
		}
	})
}

// TestFile: the managed file is nftables/anklume-isolation.nft with the
// ruleset as its content.
func TestFile(t *testing.T) {
	m := compile(t, workedExample)
	f := File(m)
	if f.Path != "nftables/anklume-isolation.nft" || f.Class != tree.Managed || f.Kind != tree.NFT || !bytes.Equal(f.Content, Render(m)) {
		t.Errorf("File = %+v", f)
	}
}
