package resolve

import (
	"fmt"
	"testing"

	"github.com/anklume/anklume/compiler/host"
)

func res(cpu, memGiB int64) host.Options {
	return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: cpu, Memory: memGiB << 30}}
}

// §16 #33: both reference vectors of §4.9, every mode, exactly.
func TestResourceVectors_16_33(t *testing.T) {
	tests := []struct {
		name     string
		cpu, mem int64
		policy   string
		a, b     string // generated config of the weight-1 and weight-3 containers
	}{
		{"v1 count", 10, 40, "{cpu_mode: count}",
			"limits.cpu=2 limits.memory=8GiB limits.memory.enforce=soft", "limits.cpu=6 limits.memory=24GiB limits.memory.enforce=soft"},
		{"v1 allowance (default)", 10, 40, "true",
			"limits.cpu.allowance=20% limits.memory=8GiB limits.memory.enforce=soft", "limits.cpu.allowance=60% limits.memory=24GiB limits.memory.enforce=soft"},
		{"v1 equal count", 10, 40, "{mode: equal, cpu_mode: count}",
			"limits.cpu=4 limits.memory=16GiB limits.memory.enforce=soft", "limits.cpu=4 limits.memory=16GiB limits.memory.enforce=soft"},
		{"v1 equal allowance", 10, 40, "{mode: equal}",
			"limits.cpu.allowance=40% limits.memory=16GiB limits.memory.enforce=soft", "limits.cpu.allowance=40% limits.memory=16GiB limits.memory.enforce=soft"},
		{"v2 count", 7, 10, "{cpu_mode: count, memory_enforce: hard}",
			"limits.cpu=1 limits.memory=2GiB", "limits.cpu=4 limits.memory=6GiB"},
		{"v2 allowance gives 60% not 59%", 7, 10, "{}",
			"limits.cpu.allowance=20% limits.memory=2GiB limits.memory.enforce=soft", "limits.cpu.allowance=60% limits.memory=6GiB limits.memory.enforce=soft"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := fmt.Sprintf(`project_name: t
global:
  addressing: {}
  resource_policy: %s
domains:
  work:
    machines:
      a: {}
      b: {weight: 3}
  off:
    enabled: false
    machines:
      z: {weight: 100}
`, tt.policy)
			m, dl := mustResolve(t, y, res(tt.cpu, tt.mem))
			if got := kvString(m.Machine("a").Config); got != tt.a {
				t.Errorf("a: %s\nwant %s", got, tt.a)
			}
			if got := kvString(m.Machine("b").Config); got != tt.b {
				t.Errorf("b: %s\nwant %s", got, tt.b)
			}
			if got := kvString(m.Machine("z").Config); got != "" {
				t.Errorf("disabled machine got limits: %s", got)
			}
			if len(dl) != 0 {
				t.Errorf("diagnostics:\n%s", render(dl))
			}
		})
	}
}

// §16 #33: a VM always gets a CPU count and never the enforce key;
// explicit limits are kept and still get the enforce key on containers;
// user keys come first; memory has a 128 MiB floor and MiB formatting.
func TestResourceDetails_16_33(t *testing.T) {
	y := `project_name: t
global:
  addressing: {}
  resource_policy: {overcommit: true}
domains:
  work:
    machines:
      vm1: {type: vm, config: {security.secureboot: false}}
      c1: {config: {limits.memory: 1GiB, boot.foo: 1}}
      c2: {config: {limits.cpu: "2", limits.memory.enforce: hard}}
`
	m, _ := mustResolve(t, y, res(10, 40))
	want := map[string]string{
		"vm1": "security.secureboot=false limits.cpu=4 limits.memory=16GiB",
		"c1":  "limits.memory=1GiB boot.foo=1 limits.cpu.allowance=40% limits.memory.enforce=soft",
		"c2":  "limits.cpu=2 limits.memory.enforce=hard limits.memory=16GiB",
	}
	for n, w := range want {
		if got := kvString(m.Machine(n).Config); got != w {
			t.Errorf("%s: %s\nwant %s", n, got, w)
		}
	}

	// 128 MiB floor and MiB formatting: 1 GiB available over 3 machines.
	y = `project_name: t
global:
  addressing: {}
  resource_policy: {host_reserve: {memory: "1GiB", cpu: 1}, cpu_mode: count, overcommit: true}
domains:
  w:
    machines:
      a: {}
      b: {}
      c: {}
      d: {weight: 100}
`
	m, _ = mustResolve(t, y, res(2, 2))
	if got := kvString(m.Machine("a").Config); got != "limits.cpu=1 limits.memory=128MiB limits.memory.enforce=soft" {
		t.Errorf("a: %s", got)
	}
	if got := kvString(m.Machine("d").Config); got != "limits.cpu=1 limits.memory=994MiB limits.memory.enforce=soft" {
		t.Errorf("d: %s", got)
	}
}

// §16 #33: N23 when overcommit is false, W6 when true, W7 without host
// resources; allowances never cause N23.
func TestResourceOvercommit_N23_W6_W7(t *testing.T) {
	base := `project_name: t
global:
  addressing: {}
  resource_policy: {cpu_mode: %s, overcommit: %s}
domains:
  work:
    machines:
      big: {config: {limits.cpu: "7", limits.memory: 40GiB}}
      small: {config: {limits.memory: 1GiB}}
      tiny: {type: vm, config: {limits.memory: 1GiB, limits.cpu.allowance: 90%%}}
`
	tests := []struct {
		name, mode, over string
		opts             host.Options
		errs, warns      string
	}{
		{"N23", "count", "false", res(2, 4), `infra.yml:4:3: global.resource_policy: resource overcommit: CPU: 8 cores > 1.6 available; memory: 42GiB > 3276MiB available
  hint: set global.resource_policy.overcommit: true to allow it
`, ""},
		{"W6", "count", "true", res(2, 4), "", `warning: infra.yml:4:3: global.resource_policy: resource overcommit allowed: CPU: 8 cores > 1.6 available; memory: 42GiB > 3276MiB available
`},
		{"allowance only memory", "allowance", "false", res(10, 60), "", ""},
		{"allowance memory overcommit", "allowance", "false", res(100, 40), `infra.yml:4:3: global.resource_policy: resource overcommit: memory: 42GiB > 32GiB available
  hint: set global.resource_policy.overcommit: true to allow it
`, ""},
		{"W7 none", "count", "false", host.Options{SkipHostSubnetCheck: true}, "", `warning: infra.yml:4:3: global.resource_policy: could not detect host resources; resource_policy skipped
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, dl := run(t, fmt.Sprintf(base, tt.mode, tt.over), tt.opts)
			if got := only(dl, 0); got != tt.errs {
				t.Errorf("errors:\n%s\nwant\n%s", got, tt.errs)
			}
			if got := only(dl, 1); got != tt.warns {
				t.Errorf("warnings:\n%s\nwant\n%s", got, tt.warns)
			}
			if (m == nil) != (tt.errs != "") {
				t.Errorf("model nil = %v", m == nil)
			}
		})
	}
}

// Absent resource_policy adds nothing.
func TestResourceAbsent(t *testing.T) {
	m, dl := mustResolve(t, "project_name: t\nglobal: {addressing: {}}\ndomains: {w: {machines: {a: {}}}}\n", res(10, 40))
	if len(m.Machine("a").Config) != 0 || len(dl) != 0 {
		t.Errorf("config %v diags %v", m.Machine("a").Config, dl)
	}
}
