package examples

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/hostenv"
)

// testHost returns the host context of SPEC.md §16: no host subnet check,
// an empty context directory, and cpu=10,memory=40GiB.
func testHost(t *testing.T) host.Options {
	t.Helper()
	env := map[string]string{
		hostenv.EnvSkipSubnet:    "1",
		hostenv.EnvContextDir:    t.TempDir(),
		hostenv.EnvHostResources: "cpu=10,memory=40GiB",
	}
	sys := hostenv.Sys{
		Getenv:     func(k string) string { return env[k] },
		ReadFile:   os.ReadFile,
		Interfaces: func() ([]host.Interface, error) { return nil, nil },
	}
	opts, err := hostenv.Gather(sys, false)
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

type wantMachine struct {
	name, typ, ip string
}

type wantDomain struct {
	name, trust, subnet string
	ephemeral           bool
	egress              bool
	machines            []wantMachine
}

type wantExample struct {
	domains  []wantDomain
	policies int
	// warnings are the expected warning messages, in printed order.
	warnings []string
}

func lxc(name, ip string) wantMachine { return wantMachine{name, model.LXC, ip} }
func vm(name, ip string) wantMachine  { return wantMachine{name, model.VM, ip} }

func admin(machine string) wantDomain {
	return wantDomain{"anklume", "admin", "10.100.0.0/24", false, true, []wantMachine{lxc(machine, "10.100.0.1")}}
}

// expected is SPEC.md §15, example by example.
var expected = map[string]wantExample{
	"student-sysadmin": {
		domains: []wantDomain{
			admin("sa-admin"),
			{"lab", "semi-trusted", "10.120.0.0/24", false, true, []wantMachine{
				lxc("lab-web", "10.120.0.1"), lxc("lab-db", "10.120.0.2"), lxc("lab-client", "10.120.0.3")}},
			{"sandbox", "disposable", "10.150.0.0/24", true, true, []wantMachine{vm("sbx-vm", "10.150.0.1")}},
		},
		policies: 1,
	},
	"teacher-lab": {
		domains: []wantDomain{
			{"teacher", "trusted", "10.110.0.0/24", false, true, []wantMachine{lxc("teacher-ws", "10.110.0.1")}},
			{"student-01", "semi-trusted", "10.120.0.0/24", true, true, []wantMachine{lxc("s01-web", "10.120.0.1"), lxc("s01-shell", "10.120.0.2")}},
			{"student-02", "semi-trusted", "10.120.1.0/24", true, true, []wantMachine{lxc("s02-web", "10.120.1.1"), lxc("s02-shell", "10.120.1.2")}},
			{"student-03", "semi-trusted", "10.120.2.0/24", true, true, []wantMachine{lxc("s03-web", "10.120.2.1"), lxc("s03-shell", "10.120.2.2")}},
		},
		policies: 3,
	},
	"pro-workstation": {
		domains: []wantDomain{
			admin("anklume-instance"),
			{"perso", "trusted", "10.110.0.0/24", false, true, []wantMachine{lxc("perso-desktop", "10.110.0.1")}},
			{"pro", "trusted", "10.110.1.0/24", false, true, []wantMachine{lxc("pro-dev", "10.110.1.1"), lxc("pro-mail", "10.110.1.2")}},
			{"shared", "semi-trusted", "10.120.0.0/24", false, true, []wantMachine{lxc("shared-print", "10.120.0.1")}},
			{"browsing", "untrusted", "10.140.0.0/24", false, true, []wantMachine{vm("browse-vm", "10.140.0.1")}},
		},
		policies: 2,
	},
	"sandbox-isolation": {
		domains: []wantDomain{
			admin("sbx-admin"),
			{"sandbox", "disposable", "10.150.0.0/24", true, false, []wantMachine{
				lxc("sbx-test", "10.150.0.1"), vm("sbx-vm", "10.150.0.2"), lxc("sbx-monitor", "10.150.0.3")}},
		},
		warnings: []string{
			`domain "sandbox" is disposable but machine "sbx-test" uses LXC; consider type: vm for stronger isolation`,
			`domain "sandbox" is disposable but machine "sbx-monitor" uses LXC; consider type: vm for stronger isolation`,
		},
	},
	"llm-supervisor": {
		domains: []wantDomain{
			admin("anklume-instance"),
			{"ai-tools", "semi-trusted", "10.120.0.0/24", false, true, []wantMachine{
				lxc("llm-main", "10.120.0.1"), lxc("llm-supervisor", "10.120.0.2"), lxc("llm-ui", "10.120.0.3")}},
		},
		policies: 1,
		warnings: []string{
			`2 instances share the GPU (llm-main, llm-supervisor); consumer GPUs offer no VRAM isolation`,
		},
	},
	"developer": {
		domains: []wantDomain{
			admin("anklume-instance"),
			{"dev", "trusted", "10.110.0.0/24", false, true, []wantMachine{
				lxc("dev-ws", "10.110.0.1"), lxc("dev-db", "10.110.0.2"), vm("dev-test", "10.110.0.3")}},
		},
		policies: 2,
	},
	"ai-tools": {
		domains: []wantDomain{
			admin("anklume-instance"),
			{"ai-tools", "semi-trusted", "10.120.0.0/24", false, true, []wantMachine{
				lxc("gpu-server", "10.120.0.1"), lxc("ai-openwebui", "10.120.0.2"), lxc("ai-lobechat", "10.120.0.3"),
				lxc("ai-opencode", "10.120.0.4"), lxc("ai-coder", "10.120.0.5"), lxc("ai-openclaw", "10.120.0.6")}},
		},
		policies: 2,
		warnings: []string{
			`machine "ai-openclaw" has role openclaw_server but no network policy starts from it or its domain`,
		},
	},
	"tor-gateway": {
		domains: []wantDomain{
			{"anonymous", "untrusted", "10.140.0.0/24", false, false, []wantMachine{vm("anon-ws", "10.140.0.1")}},
			{"tor-gateway", "untrusted", "10.140.1.0/24", false, true, []wantMachine{lxc("tor-gw", "10.140.1.1")}},
		},
		policies: 1,
		warnings: []string{
			`domain "tor-gateway" is untrusted but machine "tor-gw" uses LXC; consider type: vm for stronger isolation`,
		},
	},
	"sys-print": {
		domains: []wantDomain{
			{"perso", "trusted", "10.110.0.0/24", false, true, []wantMachine{lxc("perso-ws", "10.110.0.1")}},
			{"pro", "trusted", "10.110.1.0/24", false, true, []wantMachine{lxc("pro-ws", "10.110.1.1")}},
			{"sys-print", "semi-trusted", "10.120.0.0/24", false, true, []wantMachine{lxc("print-server", "10.120.0.1")}},
		},
		policies: 2,
	},
	"firewall-vm": {
		domains: []wantDomain{
			{"anklume", "admin", "10.100.0.0/24", false, true, []wantMachine{
				lxc("anklume-instance", "10.100.0.1"), vm("anklume-firewall", "10.100.0.253")}},
			{"pro", "trusted", "10.110.1.0/24", false, true, []wantMachine{lxc("pro-ws", "10.110.1.1")}},
			{"perso", "trusted", "10.110.0.0/24", false, true, []wantMachine{lxc("perso-ws", "10.110.0.1")}},
			{"browsing", "untrusted", "10.140.0.0/24", false, true, []wantMachine{vm("browse-vm", "10.140.0.1")}},
		},
		policies: 3,
	},
	"shared-services": {
		domains: []wantDomain{
			{"pro", "trusted", "10.110.0.0/24", false, true, []wantMachine{lxc("pro-ws", "10.110.0.1")}},
			{"perso", "semi-trusted", "10.120.0.0/24", false, true, []wantMachine{lxc("perso-ws", "10.120.0.1")}},
			{"shared", "semi-trusted", "10.120.1.0/24", false, true, []wantMachine{lxc("shared-print", "10.120.1.1"), lxc("shared-dns", "10.120.1.2")}},
		},
		policies: 4,
	},
}

func TestNames(t *testing.T) {
	want := []string{"ai-tools", "developer", "firewall-vm", "llm-supervisor", "pro-workstation", "sandbox-isolation",
		"shared-services", "student-sysadmin", "sys-print", "teacher-lab", "tor-gateway"}
	if got := Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
	if _, ok := expected[Default]; !ok {
		t.Errorf("Default %q is not an example", Default)
	}
}

// TestExamples compiles every shipped example (§15, §16 #2) and checks the
// diagnostics and the resolved addressing.
func TestExamples(t *testing.T) {
	if len(Names()) == 0 {
		t.Fatal("no examples found")
	}
	opts := testHost(t)
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			want, ok := expected[name]
			if !ok {
				t.Fatalf("no expectations for example %q", name)
			}
			res, dl, err := compiler.Compile(FS(), compiler.Input{Path: name + "/infra.yml", Display: name + "/infra.yml"}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if dl.HasErrors() || res == nil {
				var b bytes.Buffer
				dl.Print(&b)
				t.Fatalf("example does not validate:\n%s", b.String())
			}
			var warnings []string
			for _, d := range sorted(dl.Filter(diag.Warning)) {
				warnings = append(warnings, d.Msg)
			}
			if !reflect.DeepEqual(warnings, want.warnings) {
				t.Errorf("warnings =\n%q\nwant\n%q", warnings, want.warnings)
			}
			if infos := dl.Filter(diag.Info); len(infos) > 0 {
				t.Errorf("unexpected info lines: %v", infos)
			}
			checkModel(t, res.Model, want)
		})
	}
}

func sorted(l diag.List) diag.List {
	l.Sort()
	return l
}

func checkModel(t *testing.T, m *model.Infra, want wantExample) {
	t.Helper()
	if m.Addressing != model.ZoneMode {
		t.Errorf("addressing = %q, want zone", m.Addressing)
	}
	if len(m.Domains) != len(want.domains) {
		t.Fatalf("%d domains, want %d", len(m.Domains), len(want.domains))
	}
	for i, wd := range want.domains {
		d := m.Domains[i]
		if d.Name != wd.name || d.TrustLevel != wd.trust || d.CIDR() != wd.subnet {
			t.Errorf("domain %d = %s (%s, %s), want %s (%s, %s)", i, d.Name, d.TrustLevel, d.CIDR(), wd.name, wd.trust, wd.subnet)
		}
		if d.Ephemeral != wd.ephemeral || d.Egress != wd.egress || !d.Enabled {
			t.Errorf("domain %s: ephemeral %v egress %v enabled %v, want %v %v true", d.Name, d.Ephemeral, d.Egress, d.Enabled, wd.ephemeral, wd.egress)
		}
		if d.Bridge != "net-"+d.Name || d.BridgeShortened {
			t.Errorf("domain %s: bridge %q (shortened %v)", d.Name, d.Bridge, d.BridgeShortened)
		}
		if len(d.Machines) != len(wd.machines) {
			t.Errorf("domain %s: %d machines, want %d", d.Name, len(d.Machines), len(wd.machines))
			continue
		}
		for j, wm := range wd.machines {
			mc := d.Machines[j]
			if mc.Name != wm.name || mc.Type != wm.typ || mc.IP.String() != wm.ip {
				t.Errorf("domain %s machine %d = %s (%s, %s), want %s (%s, %s)", d.Name, j, mc.Name, mc.Type, mc.IP, wm.name, wm.typ, wm.ip)
			}
			if mc.Image != "images:debian/13" {
				t.Errorf("machine %s: image %q", mc.Name, mc.Image)
			}
			if len(mc.Roles) == 0 || mc.Roles[0] != "base_system" {
				t.Errorf("machine %s: roles %q, want base_system first", mc.Name, mc.Roles)
			}
		}
	}
	if got := len(m.Policies); got != want.policies {
		t.Errorf("%d policies, want %d", got, want.policies)
	}
}

// TestExampleHeader checks the first lines every example must have (§15).
func TestExampleHeader(t *testing.T) {
	for _, name := range Names() {
		data, err := Read(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		var lines []string
		for sc.Scan() && len(lines) < 2 {
			lines = append(lines, sc.Text())
		}
		if len(lines) < 2 || lines[0] != "# yaml-language-server: $schema=.anklume/infra.schema.json" || lines[1] != "format_version: 1" {
			t.Errorf("%s: first lines %q", name, lines)
		}
		if !bytes.Contains(data, []byte("\n  default_os_image: images:debian/13\n")) {
			t.Errorf("%s: no default_os_image: images:debian/13", name)
		}
		if !bytes.Contains(data, []byte("\nproject_name: "+name+"\n")) {
			t.Errorf("%s: project_name is not the example name", name)
		}
	}
}

// TestTeacherLabUsesMergeKeys checks the §15 requirement that the student
// blocks are built with << from anchors under the top-level x-student key.
func TestTeacherLabUsesMergeKeys(t *testing.T) {
	data, err := Read("teacher-lab")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if !strings.Contains(s, "\nx-student:\n") || strings.Count(s, "<<: *student-machine") != 6 || strings.Count(s, "<<: *student-domain") != 3 {
		t.Errorf("teacher-lab does not build its students with << from x-student anchors")
	}
}

// TestV1Examples loads the upstream v1 example files unchanged (SPEC.md
// §0 item 2: any file v1 accepted is accepted) and expects zero errors.
func TestV1Examples(t *testing.T) {
	v1 := os.DirFS("../testdata/v1")
	entries, err := fs.ReadDir(v1, ".")
	if err != nil {
		t.Fatal(err)
	}
	opts := testHost(t)
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n++
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			res, dl, err := compiler.Compile(v1, compiler.Input{Path: name + "/infra.yml", Display: name + "/infra.yml"}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if dl.HasErrors() || res == nil {
				var b bytes.Buffer
				dl.Print(&b)
				t.Fatalf("v1 example does not validate:\n%s", b.String())
			}
		})
	}
	if n != 10 {
		t.Errorf("%d v1 examples, want 10", n)
	}
}

// TestExamplesRunTheirRoles: each example does what its name says: the
// machine that gives it its name runs the role that does the work.
func TestExamplesRunTheirRoles(t *testing.T) {
	opts := testHost(t)
	for _, c := range []struct{ example, machine, role string }{
		{"tor-gateway", "tor-gw", "tor_gateway"},
		{"sys-print", "print-server", "print_server"},
		{"firewall-vm", "anklume-firewall", "firewall_router"},
		{"developer", "dev-ws", "dev_agent_runner"},
		{"developer", "dev-test", "dev_test_runner"},
	} {
		res, _, err := compiler.Compile(FS(), compiler.Input{Path: c.example + "/infra.yml", Display: c.example + "/infra.yml"}, opts)
		if err != nil || res == nil {
			t.Fatalf("%s: %v", c.example, err)
		}
		x := res.Model.Machine(c.machine)
		if x == nil || !slices.Contains(x.Roles, c.role) {
			t.Errorf("%s: machine %s does not run %s", c.example, c.machine, c.role)
		}
	}
}
