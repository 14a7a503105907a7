package resolve

import (
	"fmt"
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/load"
)

// S4 checks: V13 (§16 #13, generated IPs included), V14, N26 (§16 #77).
func TestPostResolutionChecks(t *testing.T) {
	tests := []struct {
		name string
		y    string
		want string
	}{
		{
			name: "V13 two explicit ips in one domain; generated ones skip them",
			y: `project_name: t
global: {addressing: {}}
domains:
  w:
    machines:
      a: {}
      b: {ip: "10.120.0.1"}
      c: {ip: "10.120.0.1"}
`,
			want: `infra.yml:8:15: domains.w.machines.c.ip: ip 10.120.0.1 is already used by machine "b"` + "\n",
		},
		{
			name: "V14 explicit ip outside its domain subnet",
			y: `project_name: t
global: {addressing: {}}
domains:
  w:
    machines:
      a: {ip: "10.120.0.1"}
  v:
    machines:
      c: {}
`,
			// w sorts after v: v gets seq 0, w seq 1, so a (10.120.0.1) is
			// outside w's subnet, and c gets 10.120.0.1 too.
			want: `infra.yml:6:15: domains.w.machines.a.ip: ip 10.120.0.1 is not in subnet 10.120.1.0/24 of domain "w"
infra.yml:9:7: domains.v.machines.c: ip 10.120.0.1 is already used by machine "a"
`,
		},
		{
			name: "V13 across domains, anchored at the second",
			y: `project_name: t
global: {addressing: {}}
domains:
  x:
    subnet_id: 5
    machines:
      a: {ip: "10.120.5.9"}
  y:
    machines:
      b: {ip: "10.120.5.9"}
`,
			want: `infra.yml:10:15: domains.y.machines.b.ip: ip 10.120.5.9 is already used by machine "a"
infra.yml:10:15: domains.y.machines.b.ip: ip 10.120.5.9 is not in subnet 10.120.0.0/24 of domain "y"
`,
		},
		{
			name: "V13 generated ip at the machine name key",
			y: `project_name: t
global: {addressing: {}}
domains:
  x:
    subnet_id: 0
    machines:
      a: {}
  y:
    trust_level: semi-trusted
    machines:
      b: {ip: "10.120.0.1"}
      c: {}
`,
			want: `infra.yml:11:15: domains.y.machines.b.ip: ip 10.120.0.1 is already used by machine "a"
infra.yml:11:15: domains.y.machines.b.ip: ip 10.120.0.1 is not in subnet 10.120.1.0/24 of domain "y"
`,
		},
		{
			name: "V14 legacy",
			y: `project_name: t
global: {}
domains:
  w:
    subnet_id: 1
    machines:
      a: {ip: "10.100.2.1"}
`,
			want: `infra.yml:7:15: domains.w.machines.a.ip: ip 10.100.2.1 is not in subnet 10.100.1.0/24 of domain "w"` + "\n",
		},
		{
			name: "N26 machine and profile nic on another domain's bridge",
			y: `project_name: t
global: {addressing: {}}
domains:
  w:
    profiles:
      p:
        devices:
          n1: {type: nic, network: net-v}
          ok: {type: nic, network: net-w}
    machines:
      a:
        devices:
          eth1: {type: nic, parent: net-v, name: eth1}
          d: {type: disk, source: net-v, path: /x}
          ext: {type: nic, parent: eth0}
  v: {}
`,
			want: `infra.yml:8:11: domains.w.profiles.p.devices.n1: nic device "n1" uses the bridge "net-v" of domain "v"; a machine can only join its own domain's bridge
  hint: open the traffic with a network policy instead
infra.yml:13:11: domains.w.machines.a.devices.eth1: nic device "eth1" uses the bridge "net-v" of domain "v"; a machine can only join its own domain's bridge
  hint: open the traffic with a network policy instead
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, dl := run(t, tt.y, skip)
			dl.Sort()
			if got := only(dl, 0); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			if m != nil {
				t.Error("model returned despite errors")
			}
		})
	}
}

// The V13 anchor for a generated IP is the machine name key.
func TestV13GeneratedAnchor(t *testing.T) {
	y := `project_name: t
global: {addressing: {}}
domains:
  y:
    machines:
      b: {ip: "10.120.0.1"}
  x:
    subnet_id: 0
    trust_level: semi-trusted
    machines:
      a: {}
`
	// y gets seq 1 (0 is taken by x), so b is outside y's subnet, and a is
	// generated as 10.120.0.1: the duplicate is a, reported at its key.
	_, dl := run(t, y, skip)
	dl.Sort()
	want := `infra.yml:6:15: domains.y.machines.b.ip: ip 10.120.0.1 is not in subnet 10.120.1.0/24 of domain "y"
infra.yml:11:7: domains.x.machines.a: ip 10.120.0.1 is already used by machine "b"
`
	if got := only(dl, 0); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// §16 #19: V31 with fake interfaces; lo and anklume bridges are skipped;
// the skip flag and --remote.
func TestHostSubnets_V31(t *testing.T) {
	zone := `project_name: t
global: {addressing: {}}
domains:
  work: {}
  off: {enabled: false, subnet_id: 9}
`
	ifaces := []host.Interface{
		{Name: "lo", CIDR: "127.0.0.1/8"},
		{Name: "net-work", CIDR: "10.120.0.254/24"},
		{Name: "001-net-x", CIDR: "10.120.0.254/24"},
		{Name: "dummy0", CIDR: "10.120.0.5/24"},
		{Name: "wide", CIDR: "10.0.0.1/8"},
		{Name: "v6", CIDR: "fd00::1/64"},
		{Name: "other", CIDR: "10.120.9.1/24"},
	}
	_, dl := run(t, zone, host.Options{Interfaces: ifaces})
	const hint = "  hint: choose another global.addressing.zone_base, or set ANKLUME_SKIP_HOST_SUBNET_CHECK=1\n"
	want := `infra.yml:4:3: domains.work: subnet conflict: 10.120.0.0/24 overlaps host interface "dummy0" (10.120.0.5/24)
` + hint + `infra.yml:4:3: domains.work: subnet conflict: 10.120.0.0/24 overlaps host interface "wide" (10.0.0.1/8)
` + hint
	if got := only(dl, 0); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	m, dl := run(t, zone, host.Options{Interfaces: ifaces, SkipHostSubnetCheck: true})
	if m == nil || len(dl) != 0 {
		t.Errorf("skip: %s", render(dl))
	}
	m, dl = run(t, zone, host.Options{Interfaces: ifaces, Remote: true})
	if m == nil || render(dl) != "warning: --remote: the host subnet check (V31) is skipped; it can only see this machine's interfaces\n" {
		t.Errorf("remote: %q", render(dl))
	}

	legacy := "project_name: t\nglobal: {}\ndomains:\n  w: {subnet_id: 0}\n"
	_, dl = run(t, legacy, host.Options{Interfaces: []host.Interface{{Name: "eth0", CIDR: "10.100.0.7/16"}}})
	want = `infra.yml:4:3: domains.w: subnet conflict: 10.100.0.0/24 overlaps host interface "eth0" (10.100.0.7/16)
  hint: choose another global.base_subnet such as "10.200"
`
	if got := only(dl, 0); got != want {
		t.Errorf("legacy got\n%s\nwant\n%s", got, want)
	}
}

// The model carries the globals and is deterministic.
func TestGlobalsAndDeterminism(t *testing.T) {
	y := `project_name: demo
global:
  addressing: {zone_base: 100, x-a: 1}
  default_connection: community.general.incus
  default_user: admin
  storage_pool: fast
  host_isolation: false
  gpu_policy: shared
domains:
  b: {description: B, egress: false, ai_provider: cloud, machines: {m2: {}}}
  a: {ai_sanitize: always, machines: {m1: {roles: [base_system]}}}
`
	m1, _ := mustResolve(t, y, skip)
	g := m1.Global
	if m1.ProjectName != "demo" || m1.StoragePool != "fast" || g.HostIsolation || g.GPUPolicy != "shared" ||
		g.DefaultConnection != "community.general.incus" || g.DefaultUser != "admin" || !g.AIVRAMFlush ||
		g.FirewallMode != "host" || g.AIAccessPolicy != "open" || g.SharedVolumesBase != "/srv/anklume/shares" ||
		g.PersistentDataBase != "/srv/anklume/data" || kvString(g.AddressingKeys) != "zone_base=100" || m1.Prefix != "" {
		t.Errorf("globals %+v", m1)
	}
	b := m1.Domain("b")
	if b.Description != "B" || b.Egress || b.AISanitize != "true" || m1.Domain("a").AISanitize != "always" ||
		m1.Domain("a").AIProvider != "local" {
		t.Errorf("domain b %+v", b)
	}
	if names := []string{m1.Domains[0].Name, m1.Machines[0].Name}; strings.Join(names, ",") != "b,m2" {
		t.Errorf("declaration order %v", names)
	}
	m2, _ := mustResolve(t, y, skip)
	if fmt.Sprintf("%v %v", m1.Domains[0].Subnet, m1.Machines[1].IP) != fmt.Sprintf("%v %v", m2.Domains[0].Subnet, m2.Machines[1].IP) {
		t.Error("not deterministic")
	}
}

// BenchmarkResolve200x20 measures load.Parse + Resolve on 200 domains of
// 20 machines each.
func BenchmarkResolve200x20(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("project_name: bench\nglobal:\n  addressing: {}\n  resource_policy: {overcommit: true}\ndomains:\n")
	levels := []string{"admin", "trusted", "semi-trusted", "untrusted", "disposable"}
	for d := 0; d < 200; d++ {
		fmt.Fprintf(&sb, "  dom%03d:\n    trust_level: %s\n    machines:\n", d, levels[d%5])
		for m := 0; m < 20; m++ {
			fmt.Fprintf(&sb, "      m%03d-%02d:\n        roles: [base_system]\n        config: {security.nesting: true}\n", d, m)
		}
	}
	data := []byte(sb.String())
	opts := host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 64, Memory: 256 << 30}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		root, dl := load.Parse(data, "infra.yml", 0)
		if root == nil {
			b.Fatal(dl)
		}
		m, dl := Resolve(root, opts)
		if m == nil {
			b.Fatal(render(dl))
		}
	}
}

// Two domains never share a bridge: a domain spelled like the shortened
// "net-<sha>" name of a long domain is an error at the later domain, and
// the model is nil. The same pair in the other order fails too.
func TestBridgeNameCollision(t *testing.T) {
	const long = "a-rather-long-domain-name" // bridge net-5ef76c36046
	for _, order := range [][2]string{{long, "5ef76c36046"}, {"5ef76c36046", long}} {
		y := "project_name: t\nglobal: {base_subnet: \"10.100\"}\ndomains:\n  " + order[0] + ": {subnet_id: 1}\n  " + order[1] + ": {subnet_id: 2}\n"
		m, dl := run(t, y, skip)
		want := `infra.yml:5:3: domains.` + order[1] + `: domain "` + order[1] + `" would use Incus network "net-5ef76c36046", which is already the network of domain "` + order[0] + `"` + "\n  hint: rename one of them\n"
		if got := only(dl, diag.Error); got != want || m != nil {
			t.Errorf("order %v: model nil %v, errors:\n%s\nwant:\n%s", order, m == nil, got, want)
		}
	}
	// Distinct names stay valid.
	mustResolve(t, "project_name: t\nglobal: {base_subnet: \"10.100\"}\ndomains:\n  "+long+": {subnet_id: 1}\n  5ef76c36047: {subnet_id: 2}\n", skip)
}
