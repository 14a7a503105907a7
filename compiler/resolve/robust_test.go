package resolve

import (
	"testing"

	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/load"
)

// Resolve runs only on valid trees, but it must never panic on odd ones.
func TestNoPanicOnOddShapes(t *testing.T) {
	inputs := []string{
		"",
		"[]",
		"project_name: t\nglobal: 5\ndomains: [a]\n",
		"project_name: t\nglobal: {addressing: 1, firewall_mode: vm, resource_policy: true}\ndomains: {a: 1, b: null}\n",
		"project_name: t\nglobal: {addressing: {zone_base: 250}}\ndomains: {a: {trust_level: disposable, machines: {m: {ip: 5, devices: {gpu: 1}, gpu: true}}}}\n",
		"project_name: t\nglobal: {base_subnet: x}\ndomains: {a: {machines: [1], profiles: 3}}\nnetwork_policies: [1, {from: a, to: b, ports: x}]\nshared_volumes: {v: {consumers: [a]}}\n",
		"project_name: t\nglobal: {addressing: {}, resource_policy: {host_reserve: {cpu: 100%, memory: abc}}}\ndomains: {a: {machines: {m: {config: {limits.memory: 99ZB}}}}}\n",
		"project_name: t\nglobal: {addressing: {}, firewall_mode: vm}\ndomains: {anklume: {subnet_id: 300, machines: {m: {devices: {n: {type: nic, network: [x]}}}}}}\n",
	}
	opts := host.Options{Resources: &host.Resources{CPU: 1, Memory: 1}, Interfaces: []host.Interface{{Name: "x", CIDR: "bad"}}}
	for _, in := range inputs {
		root, _ := load.Parse([]byte(in), "infra.yml", 0)
		if root == nil {
			continue
		}
		Resolve(root, opts)
		Resolve(nil, opts)
	}
}

// FuzzResolve checks that Resolve never panics, whatever the tree.
func FuzzResolve(f *testing.F) {
	f.Add("project_name: t\nglobal: {addressing: {}, firewall_mode: vm, resource_policy: true}\ndomains: {anklume: {machines: {a: {gpu: true}}}}\n")
	f.Add("project_name: t\nglobal: {}\ndomains: {a: {subnet_id: 1, machines: {m: {ip: \"10.100.1.1\"}}}}\nshared_volumes: {v: {consumers: {a: ro}}}\n")
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 64<<10 {
			return
		}
		root, _ := load.Parse([]byte(in), "infra.yml", 0)
		if root == nil {
			return
		}
		Resolve(root, host.Options{Resources: &host.Resources{CPU: 4, Memory: 8 << 30}})
	})
}
