package resolve

import (
	"fmt"
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
)

// §16 #26, #27: zone addressing, per-zone domain_seq, explicit ids first,
// byte-wise order, disabled domains included.
func TestZoneAddressing_16_26(t *testing.T) {
	tests := []struct {
		name string
		y    string
		want map[string]string // domain -> subnet/gateway
	}{
		{
			name: "perso and pro",
			y: `project_name: t
global: {addressing: {}}
domains:
  pro: {trust_level: trusted}
  perso: {trust_level: trusted}
`,
			want: map[string]string{"perso": "10.110.0.0/24 10.110.0.254 0", "pro": "10.110.1.0/24 10.110.1.254 1"},
		},
		{
			name: "explicit id 0 on pro",
			y: `project_name: t
global: {addressing: {}}
domains:
  perso: {trust_level: trusted}
  pro: {trust_level: trusted, subnet_id: 0}
`,
			want: map[string]string{"perso": "10.110.1.0/24 10.110.1.254 1", "pro": "10.110.0.0/24 10.110.0.254 0"},
		},
		{
			name: "every zone and the semi-trusted default",
			y: `project_name: t
global: {addressing: {}}
domains:
  a: {trust_level: admin}
  t: {trust_level: trusted}
  s: {}
  u: {trust_level: untrusted}
  d: {trust_level: disposable}
`,
			want: map[string]string{"a": "10.100.0.0/24 10.100.0.254 0", "t": "10.110.0.0/24 10.110.0.254 0",
				"s": "10.120.0.0/24 10.120.0.254 0", "u": "10.140.0.0/24 10.140.0.254 0", "d": "10.150.0.0/24 10.150.0.254 0"},
		},
		{
			name: "zone_base 200, disabled domain keeps its seq (#27), skip taken ids",
			y: `project_name: t
global: {addressing: {zone_base: 200}}
domains:
  c: {}
  b: {enabled: false}
  a: {subnet_id: 1}
  z: {subnet_id: 0}
`,
			want: map[string]string{"a": "10.220.1.0/24 10.220.1.254 1", "b": "10.220.2.0/24 10.220.2.254 2",
				"c": "10.220.3.0/24 10.220.3.254 3", "z": "10.220.0.0/24 10.220.0.254 0"},
		},
		{
			name: "byte-wise order puts digits and dash before letters",
			y: `project_name: t
global: {addressing: {}}
domains:
  web: {}
  web-1: {}
  1web: {}
`,
			want: map[string]string{"1web": "10.120.0.0/24 10.120.0.254 0", "web": "10.120.1.0/24 10.120.1.254 1", "web-1": "10.120.2.0/24 10.120.2.254 2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := mustResolve(t, tt.y, skip)
			if m.Addressing != model.ZoneMode {
				t.Errorf("addressing = %q", m.Addressing)
			}
			for name, want := range tt.want {
				d := m.Domain(name)
				if d == nil {
					t.Fatalf("no domain %s", name)
				}
				got := fmt.Sprintf("%s %s %d", d.CIDR(), d.Gateway, d.Seq)
				if got != want {
					t.Errorf("%s: got %s, want %s", name, got, want)
				}
			}
		})
	}
}

// §16 #28: automatic IPs in declaration order, skipping explicit ones.
func TestAutoIPs_16_28(t *testing.T) {
	y := `project_name: t
global: {addressing: {}}
domains:
  work:
    trust_level: trusted
    machines:
      a: {}
      b: {}
      c: {ip: "10.110.0.30"}
      d: {}
      e: {ip: "10.110.0.3"}
      f: {}
`
	m, _ := mustResolve(t, y, skip)
	want := map[string]string{"a": "10.110.0.1", "b": "10.110.0.2", "c": "10.110.0.30", "d": "10.110.0.4", "e": "10.110.0.3", "f": "10.110.0.5"}
	for n, w := range want {
		if got := ipOf(m, n); got != w {
			t.Errorf("%s: got %s, want %s", n, got, w)
		}
		if x := m.Machine(n); x.IPExplicit != (n == "c" || n == "e") {
			t.Errorf("%s: IPExplicit = %v", n, x.IPExplicit)
		}
	}
}

// §16 #28, N22: the 100th automatic IP fails at the machine name key.
func TestAutoIPsExhausted_N22(t *testing.T) {
	var b strings.Builder
	b.WriteString("project_name: t\nglobal: {addressing: {}}\ndomains:\n  work:\n    machines:\n")
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&b, "      m%03d: {}\n", i)
	}
	m, dl := run(t, b.String(), skip)
	if m != nil {
		t.Fatal("expected no model")
	}
	want := `infra.yml:105:7: domains.work.machines.m100: domain "work" ran out of static IPs (.1-.99) for machine "m100"` + "\n"
	if got := only(dl, 0); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// N24: a zone with no free seq left, anchored at the domain name key.
func TestZoneFull_N24(t *testing.T) {
	var b strings.Builder
	b.WriteString("project_name: t\nglobal: {addressing: {}}\ndomains:\n")
	for i := 0; i <= 254; i++ {
		fmt.Fprintf(&b, "  d%03d: {trust_level: untrusted, subnet_id: %d}\n", i, i)
	}
	b.WriteString("  last: {trust_level: untrusted}\n  other: {}\n")
	m, dl := run(t, b.String(), skip)
	if m != nil {
		t.Fatal("expected no model")
	}
	want := `infra.yml:259:3: domains.last: zone "untrusted" has no free subnet id left for domain "last"` + "\n"
	if got := only(dl, 0); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// §16 #29: legacy mode.
func TestLegacyMode_16_29(t *testing.T) {
	y := `project_name: t
global: {base_subnet: "172.16"}
domains:
  lab:
    subnet_id: 5
    machines:
      web: {}
      db: {ip: "172.16.5.7"}
  adm:
    subnet_id: 9
    trust_level: admin
`
	m, _ := mustResolve(t, y, skip)
	if m.Addressing != model.LegacyMode {
		t.Errorf("addressing = %q", m.Addressing)
	}
	lab := m.Domain("lab")
	if lab.CIDR() != "172.16.5.0/24" || lab.Gateway.String() != "172.16.5.254" || lab.Seq != 5 || lab.TrustLevel != "" {
		t.Errorf("lab: %s %s %d %q", lab.CIDR(), lab.Gateway, lab.Seq, lab.TrustLevel)
	}
	if got := m.Domain("adm").TrustLevel; got != "admin" {
		t.Errorf("adm trust = %q", got)
	}
	if ipOf(m, "web") != "" || ipOf(m, "db") != "172.16.5.7" {
		t.Errorf("ips: web %q db %q", ipOf(m, "web"), ipOf(m, "db"))
	}
	// Default base_subnet.
	m, _ = mustResolve(t, "project_name: t\nglobal: {}\ndomains: {a: {subnet_id: 3}}\n", skip)
	if got := m.Domain("a").CIDR(); got != "10.100.3.0/24" {
		t.Errorf("default base_subnet: %s", got)
	}
}

// §16 #14 and #30: bridge names, shortening with W18, nesting prefix.
func TestNames_16_14_16_30(t *testing.T) {
	const long = "abcdefghijkl"
	h := sha256Hex(long)
	tests := []struct {
		name, domain, global string
		level                int
		project, bridge      string
		w18                  bool
	}{
		{"11 chars fits", "abcdefghijk", "{}", 0, "abcdefghijk", "net-abcdefghijk", false},
		{"12 chars shortened", long, "{}", 0, long, "net-" + h[:11], true},
		{"level 0 no prefix", "work", "{}", 0, "work", "net-work", false},
		{"level 1 prefix", "work", "{}", 1, "001-work", "001-net-work", false},
		{"nesting_prefix false", "work", "{nesting_prefix: false}", 2, "work", "net-work", false},
		{"level 12 with 8 chars", "abcdefgh", "{}", 12, "012-abcdefgh", "012-net-" + sha256Hex("abcdefgh")[:7], true},
		{"level 1 with 7 chars fits", "abcdefg", "{}", 1, "001-abcdefg", "001-net-abcdefg", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := fmt.Sprintf("project_name: t\nglobal: %s\ndomains:\n  %s:\n    subnet_id: 1\n    machines: {m1: {}}\n", tt.global, tt.domain)
			m, dl := mustResolve(t, y, host.Options{SkipHostSubnetCheck: true, Context: host.Context{Level: tt.level}})
			d := m.Domain(tt.domain)
			if d.Project != tt.project || d.Bridge != tt.bridge || d.BridgeShortened != tt.w18 {
				t.Errorf("got project %q bridge %q short %v", d.Project, d.Bridge, d.BridgeShortened)
			}
			wantInst := strings.TrimSuffix(tt.project, tt.domain) + "m1"
			if got := m.Machine("m1").Instance; got != wantInst {
				t.Errorf("instance %q, want %q", got, wantInst)
			}
			var want string
			if tt.w18 {
				want = fmt.Sprintf("warning: infra.yml:4:3: domains.%s: bridge for domain %q is named %q: Linux limits interface names to 15 characters\n", tt.domain, tt.domain, tt.bridge)
			}
			if got := only(dl, 1); got != want {
				t.Errorf("warnings:\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// §16 #31: ephemeral defaults to false, is inherited and overridden both
// ways; protection is its inverse.
func TestEphemeral_16_31(t *testing.T) {
	y := `project_name: t
global: {addressing: {}}
domains:
  keep:
    machines:
      k1: {}
      k2: {ephemeral: true}
  tmp:
    ephemeral: true
    machines:
      t1: {}
      t2: {ephemeral: false}
`
	m, _ := mustResolve(t, y, skip)
	want := map[string]bool{"k1": false, "k2": true, "t1": true, "t2": false}
	for n, eph := range want {
		x := m.Machine(n)
		if x.Ephemeral != eph || x.Protected == eph {
			t.Errorf("%s: ephemeral %v protected %v", n, x.Ephemeral, x.Protected)
		}
		pd, _ := x.InstanceConfig().Get("security.protection.delete")
		if pd != fmt.Sprint(!eph) {
			t.Errorf("%s: security.protection.delete = %q", n, pd)
		}
	}
	if m.Domain("keep").Ephemeral || !m.Domain("tmp").Ephemeral {
		t.Error("domain ephemeral wrong")
	}
}

// N5: a trust zone in use whose second octet would pass 255 is an error
// at zone_base, and the model is nil (no emitter sees the domain); a zone
// not in use does not count.
func TestZoneBaseOverflow(t *testing.T) {
	tests := []struct {
		name, y, want string
	}{
		{"disposable over", `project_name: t
global: {addressing: {zone_base: 206}}
domains:
  lab: {trust_level: disposable}
`, `infra.yml:2:34: global.addressing.zone_base: zone "disposable" would use second octet 256 (zone_base 206 + 50); the maximum is 255` + "\n"},
		{"two zones over", `project_name: t
global: {addressing: {zone_base: 245}}
domains:
  a: {trust_level: untrusted}
  b: {}
  c: {trust_level: admin}
`, `infra.yml:2:34: global.addressing.zone_base: zone "semi-trusted" would use second octet 265 (zone_base 245 + 20); the maximum is 255
infra.yml:2:34: global.addressing.zone_base: zone "untrusted" would use second octet 285 (zone_base 245 + 40); the maximum is 255
`},
		{"unused zone does not count", `project_name: t
global: {addressing: {zone_base: 206}}
domains:
  a: {trust_level: untrusted}
`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, dl := run(t, tt.y, skip)
			if got := only(dl, diag.Error); got != tt.want {
				t.Fatalf("errors:\n%s\nwant:\n%s", got, tt.want)
			}
			if (tt.want != "") != (m == nil) {
				t.Fatalf("model nil = %v with errors %q", m == nil, tt.want)
			}
		})
	}
}
