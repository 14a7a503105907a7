package semantic

import (
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/load"
)

// nodeAt follows mapping keys from root.
func nodeAt(t *testing.T, root *load.Node, keys ...string) *load.Node {
	t.Helper()
	n := root
	for _, k := range keys {
		n = n.Val(k)
		if n == nil {
			t.Fatalf("no node at %v", keys)
		}
	}
	return n
}

// TestSkipsBadNodes checks that nodes carrying an S1 error, and everything
// under them, are skipped (SPEC.md §3.1).
func TestSkipsBadNodes(t *testing.T) {
	src := `project_name: p
global:
  addressing: {}
  gpu_policy: exclusive
domains:
  pro:
    machines:
      web: {ip: 10.110.0.0, gpu: true}
      gpu2: {gpu: true}
  perso:
    machines:
      web: {}
network_policies:
  - {from: nowhere, to: pro}
`
	for _, tc := range []struct {
		name string
		bad  [][]string
		want []string
	}{
		{name: "nothing bad", want: []string{
			"infra.yml:8:17: domains.pro.machines.web.ip: ip 10.110.0.0 is the network address",
			"infra.yml:9:7: domains.pro.machines.gpu2: gpu_policy is \"exclusive\" but 2 instances have GPU access: web, gpu2\n  hint: set global.gpu_policy: shared",
			"infra.yml:12:7: domains.perso.machines.web: machine name \"web\" is already used in domain \"pro\"",
			"infra.yml:14:12: network_policies[0].from: \"nowhere\" is not a known domain, machine or \"host\"",
		}},
		{name: "bad ip and gpu_policy", bad: [][]string{{"domains", "pro", "machines", "web", "ip"}, {"global", "gpu_policy"}}, want: []string{
			"infra.yml:12:7: domains.perso.machines.web: machine name \"web\" is already used in domain \"pro\"",
			"infra.yml:14:12: network_policies[0].from: \"nowhere\" is not a known domain, machine or \"host\"",
		}},
		{name: "bad domain hides its machines and unknown names", bad: [][]string{{"domains", "pro"}}},
		{name: "bad root", bad: [][]string{{}}},
		{name: "bad network_policies", bad: [][]string{{"network_policies"}}, want: []string{
			"infra.yml:8:17: domains.pro.machines.web.ip: ip 10.110.0.0 is the network address",
			"infra.yml:9:7: domains.pro.machines.gpu2: gpu_policy is \"exclusive\" but 2 instances have GPU access: web, gpu2\n  hint: set global.gpu_policy: shared",
			"infra.yml:12:7: domains.perso.machines.web: machine name \"web\" is already used in domain \"pro\"",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, dl := load.Parse([]byte(src), "infra.yml", 0)
			if dl.HasErrors() {
				t.Fatal(render(dl))
			}
			bad := load.NodeSet{}
			for _, keys := range tc.bad {
				bad[nodeAt(t, root, keys...)] = true
			}
			got := render(Check(root, bad, host.Options{}))
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestOddShapes feeds trees S1 would reject; S2 must not panic.
func TestOddShapes(t *testing.T) {
	for _, src := range []string{
		``,
		`[]`,
		`"x"`,
		`{}`,
		`{domains: [a, b], global: 3, network_policies: {a: 1}, shared_volumes: [1]}`,
		`{global: {addressing: 1, firewall_mode: [], gpu_policy: {}}, domains: {a: 1, b: [], c: null, d: {machines: 3}}}`,
		`{domains: {a: {machines: {m: 1, n: [], o: null, p: {config: [], devices: 3, profiles: x, ip: {}, roles: {}}}}}}`,
		`{domains: {a: {profiles: [], machines: {m: {profiles: [1, [], {}], persistent_data: [], storage_volumes: {v: 1, w: {path: [], size: 3}}}}}}}`,
		`{domains: {a: {machines: {m: {devices: {d: 1, e: {path: 3}}, persistent_data: {x: 1, y: {path: []}}}}}}, shared_volumes: {s: 1, t: {consumers: []}, u: {consumers: {a: [], zz: 1}, path: 3}}}`,
		`{global: {ai_access_policy: exclusive, ai_access_default: []}, network_policies: [1, null, [], {from: [], to: {}, ports: 3, protocol: []}, {from: a, to: a, ports: [[], x, 1, 1]}]}`,
		`{global: {ai_access_policy: exclusive}, domains: null}`,
		`{global: {addressing: null}, domains: {a: {subnet_id: "1"}, b: {subnet_id: 1.5}, c: {subnet_id: 010}, d: {subnet_id: 8}, e: {subnet_id: 8, trust_level: 3}}}`,
		`{domains: {a: {machines: {m: {snapshots_schedule: 3, snapshots_expiry: [], config: {security.privileged: []}}}}}}`,
	} {
		for _, opts := range []host.Options{{}, {Context: host.Context{Level: 3, VMNested: boolp(false), Yolo: true}}} {
			root, dl := load.Parse([]byte(src), "infra.yml", 0)
			if dl.HasErrors() {
				t.Fatalf("%q: %v", src, render(dl))
			}
			_ = Check(root, nil, opts)
		}
	}
}
