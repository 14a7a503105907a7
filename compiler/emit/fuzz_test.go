package emit_test

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
)

// hostileSeeds are inputs that once passed validate and broke an emitter
// or a reader of the generated files; each must now be rejected or give
// valid output.
var hostileSeeds = []string{
	// N5: second octet over 255.
	"project_name: t\nglobal: {addressing: {zone_base: 206}}\ndomains:\n  lab: {trust_level: disposable, machines: {lab-a: {}}}\n",
	// A shortened bridge name equal to another domain's plain one.
	"project_name: t\nglobal: {base_subnet: \"10.100\"}\ndomains:\n  a-rather-long-domain-name: {subnet_id: 1}\n  5ef76c36046: {subnet_id: 2}\n",
	// Explicit tags.
	"project_name: t\nglobal: {addressing: {}, host_isolation: !!bool yes}\ndomains:\n  lab: {enabled: !!bool \"maybe\"}\n",
	// Characters PyYAML refuses, a config key over 1024 characters.
	"project_name: t\nglobal: {addressing: {}}\ndomains:\n  lab:\n    description: \"a\\uFFFEb\\uFEFF\"\n    machines:\n      lab-a: {config: {user." + strings.Repeat("k", 1100) + ": \"\\uFFFF\"}}\n",
	// Ansible-reserved group names.
	"project_name: t\nglobal: {addressing: {}}\ndomains:\n  all: {}\n  ungrouped: {}\n",
	// Commas in joined lists.
	"project_name: t\nglobal: {addressing: {}}\ndomains:\n  lab:\n    machines:\n      lab-a:\n        devices:\n          n: {type: nic, nictype: macvlan, parent: \"eth0,net-lab\"}\n          d: {type: disk, source: \"/srv/code,/\", path: /c}\n",
	// Jinja in every string.
	"project_name: t\nglobal: {addressing: {}, default_connection: \"{{ lookup('pipe','id') }}\"}\ndomains:\n  lab:\n    description: \"{% raw %}\"\n    machines:\n      lab-a: {description: \"{{ x }}\", config: {user.a: \"{#\"}}\nnetwork_policies:\n  - {description: \"}}{{\", from: lab, to: host, ports: [22]}\n",
}

// fuzzSeeds returns the examples, the test PSOTs of testdata/ and the
// hostile inputs.
func fuzzSeeds() []string {
	seeds := append([]string(nil), hostileSeeds...)
	for _, glob := range []string{
		filepath.Join("..", "..", "examples", "*", "infra.yml"),
		filepath.Join("..", "..", "testdata", "*", "*", "infra.yml"),
	} {
		files, _ := filepath.Glob(glob)
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				seeds = append(seeds, string(b))
			}
		}
	}
	return seeds
}

// fuzzOptions turns the fuzzer's option byte into a host context: bit 0
// sets nesting level 1 (prefixed names), bit 1 leaves the host resources
// unknown.
func fuzzOptions(opt byte) host.Options {
	o := host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
	if opt&1 != 0 {
		no := false
		o.Context = host.Context{Level: 1, VMNested: &no}
	}
	if opt&2 != 0 {
		o.Resources = nil
	}
	return o
}

// FuzzPipeline takes an arbitrary infra.yml through validate, resolve and
// every emitter. Whenever validate accepts, every output must be valid: no
// panic, every generated file writable under the base directory and, for
// YAML, readable; no "invalid" address in the ruleset; no two Incus
// objects of one kind with one name; no comma-joined restricted.* list
// with an entry nobody wrote. TestFuzzCorpusReaders runs the corpus
// through PyYAML and `nft -c`.
func FuzzPipeline(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s), byte(0))
		f.Add([]byte(s), byte(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, opt byte) {
		if len(data) > 64<<10 {
			return
		}
		m := compileFuzz(data, opt)
		if m == nil || len(m.EnabledDomains()) == 0 {
			return
		}
		files := emit.Tree(m)
		checkOutputs(t, m, files)
		syncDir(t, t.TempDir(), files)
	})
}

// compileFuzz compiles data as infra.yml; nil when validate rejects it.
func compileFuzz(data []byte, opt byte) *model.Infra {
	res, _, err := compiler.Compile(fstest.MapFS{"infra.yml": {Data: data}},
		compiler.Input{Path: "infra.yml", Display: "infra.yml"}, fuzzOptions(opt))
	if err != nil || res == nil {
		return nil
	}
	return res.Model
}

// checkOutputs asserts the invariants of FuzzPipeline on the files of m.
func checkOutputs(t *testing.T, m *model.Infra, files []tree.File) {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range files {
		if f.Path == "" || path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || strings.HasPrefix(f.Path, "../") || seen[f.Path] {
			t.Fatalf("bad or repeated path %q", f.Path)
		}
		seen[f.Path] = true
		switch {
		case strings.HasSuffix(f.Path, ".yml") || strings.HasSuffix(f.Path, ".yaml"):
			var n yaml.Node
			if err := yaml.Unmarshal(f.Content, &n); err != nil {
				t.Fatalf("%s is not YAML: %v\n%s", f.Path, err, f.Content)
			}
		case strings.HasSuffix(f.Path, ".nft"):
			if s := string(f.Content); strings.Contains(s, "invalid IP") || strings.Contains(s, "invalid Prefix") {
				t.Fatalf("%s holds an invalid value:\n%s", f.Path, f.Content)
			}
		}
	}
	st := incus.Desired(m)
	names := map[string]string{}
	claim := func(kind, name string) {
		if name == "" {
			t.Fatalf("%s without a name", kind)
		}
		if prev, dup := names[kind+"\x00"+name]; dup {
			t.Fatalf("two %ss named %q (%s)", kind, name, prev)
		}
		names[kind+"\x00"+name] = kind
	}
	written := map[string]bool{}
	subnets := map[string]bool{}
	for _, n := range st.Networks {
		claim("network", n.Name)
		written[n.Name] = true
		a := n.Config["ipv4.address"]
		if subnets[a] {
			t.Fatalf("two networks with address %s", a)
		}
		subnets[a] = true
	}
	// Every value a user wrote that may enter a restricted.* list.
	addDevs := func(ds model.Devices) {
		for _, d := range ds {
			for _, k := range []string{"parent", "network", "source"} {
				if v, ok := d.Props.Get(k); ok {
					written[v] = true
				}
			}
		}
	}
	for _, d := range m.Domains {
		written[m.Global.PersistentDataBase+"/"+d.Name] = true
		for _, p := range d.Profiles {
			addDevs(p.Devices)
		}
		if d.FirewallProfile != nil {
			addDevs(d.FirewallProfile.Devices)
		}
		for _, x := range d.Machines {
			addDevs(x.InstanceDevices())
		}
	}
	for _, p := range st.Projects {
		claim("project", p.Name)
		for _, k := range []string{"restricted.networks.access", "restricted.devices.disk.paths"} {
			v := p.Config[k]
			if v == "" {
				continue
			}
			for _, e := range strings.Split(v, ",") {
				if !written[e] {
					t.Fatalf("project %s: %s has entry %q that no device, volume or bridge holds (%q)", p.Name, k, e, v)
				}
			}
		}
		for _, pr := range p.Profiles {
			claim("profile in "+p.Name, pr.Name)
		}
		for _, x := range p.Instances {
			claim("instance in "+p.Name, x.Name)
		}
		for _, v := range p.StorageVolumes {
			claim("volume in "+p.Name+"/"+v.Pool, v.Name)
		}
	}
}
