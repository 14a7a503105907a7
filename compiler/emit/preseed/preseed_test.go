package preseed

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/lxc/incus/v6/shared/api"
	yamlv2 "gopkg.in/yaml.v2"
	"gopkg.in/yaml.v3"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/examples"
	"github.com/anklume/anklume/internal/goldenflag"
)

var update = goldenflag.Update

func testOptions() host.Options {
	return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
}

func compileFS(t *testing.T, fsys fstest.MapFS, path string) *model.Infra {
	t.Helper()
	res, dl, err := compiler.Compile(fsys, compiler.Input{Path: path, Display: "infra.yml"}, testOptions())
	if err != nil || res == nil {
		t.Fatalf("compile %s: %v\n%s", path, err, dl)
	}
	return res.Model
}

// fwPSOT has firewall_mode vm and a domain profile, so the preseed holds
// default, a domain profile and firewall-multi-nic.
const fwPSOT = `format_version: 1
project_name: fw
global:
  addressing: {}
  firewall_mode: vm
domains:
  anklume:
    description: Admin
    trust_level: admin
    profiles:
      tools:
        description: "Tools: yes"
        config: {security.nesting: true, limits.cpu: 1}
        devices: {usb1: {type: usb, vendorid: "04b8"}}
    machines:
      adm:
        profiles: [default, tools]
  work:
    trust_level: trusted
    machines:
      work-a: {}
`

// TestGolden compares Block of fwPSOT with testdata/fw.yml byte for byte
// (§8).
func TestGolden(t *testing.T) {
	got := Block(compileFS(t, fstest.MapFS{"infra.yml": {Data: []byte(fwPSOT)}}, "infra.yml"))
	golden := filepath.Join("testdata", "fw.yml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("preseed block differs from %s:\n--- got\n%s", golden, got)
	}
}

// allStrings checks that every scalar under n is a !!str and that the keys
// of every config and devices map are sorted.
func allStrings(t *testing.T, n *yaml.Node, path string, sorted bool) {
	t.Helper()
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			allStrings(t, c, path, false)
		}
	case yaml.MappingNode:
		var keys []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			keys = append(keys, k.Value)
			allStrings(t, n.Content[i+1], path+"."+k.Value, sorted || k.Value == "config" || k.Value == "devices")
		}
		if sorted && !sort.StringsAreSorted(keys) {
			t.Errorf("%s: keys not sorted: %v", path, keys)
		}
	case yaml.ScalarNode:
		if n.Tag != "!!str" {
			t.Errorf("%s: %q is %s, want !!str", path, n.Value, n.Tag)
		}
	}
}

// TestExamples is the offline half of §16 #54: for every example, the
// whole preseed file that sync writes (the block spliced into a new
// file) is read by Incus's own parser (yaml.v2 UnmarshalStrict into
// api.InitPreseed, as `incus admin init --preseed` does), every value is a
// string, and the objects have the §8 shape and order.
func TestExamples(t *testing.T) {
	for _, name := range examples.Names() {
		t.Run(name, func(t *testing.T) {
			res, dl, err := compiler.Compile(examples.FS(), compiler.Input{Path: name + "/infra.yml", Display: "infra.yml"}, testOptions())
			if err != nil || res == nil {
				t.Fatalf("compile: %v\n%s", err, dl)
			}
			block := Block(res.Model)
			file, err := tree.Splice("incus/preseed.yml", nil, false, block, tree.Preseed)
			if err != nil {
				t.Fatal(err)
			}
			var p api.InitPreseed
			if err := yamlv2.UnmarshalStrict(file, &p); err != nil {
				t.Fatalf("incus would reject the preseed: %v\n%s", err, file)
			}
			var root yaml.Node
			if err := yaml.Unmarshal(block, &root); err != nil {
				t.Fatal(err)
			}
			allStrings(t, &root, "", false)
			var keys []string
			for i := 0; i < len(root.Content[0].Content); i += 2 {
				keys = append(keys, root.Content[0].Content[i].Value)
			}
			if !reflect.DeepEqual(keys, []string{"networks", "projects", "profiles"}) {
				t.Errorf("top-level keys = %v", keys)
			}

			s := incus.Desired(res.Model)
			var nets, projs, profs []string
			for _, n := range p.Networks {
				if n.Type != "bridge" || n.Project != "default" {
					t.Errorf("network %s: type %q project %q", n.Name, n.Type, n.Project)
				}
				nets = append(nets, n.Name)
			}
			var wantNets, wantProjs, wantProfs []string
			for _, d := range res.Model.EnabledDomains() {
				wantNets = append(wantNets, d.Bridge)
				wantProjs = append(wantProjs, d.Project)
				wantProfs = append(wantProfs, d.Project+"/default")
				for _, x := range d.Profiles {
					wantProfs = append(wantProfs, d.Project+"/"+x.Name)
				}
				if d.FirewallProfile != nil {
					wantProfs = append(wantProfs, d.Project+"/"+model.FirewallProfileName)
				}
			}
			for i, x := range p.Projects {
				projs = append(projs, x.Name)
				if want := s.Projects[i]; !reflect.DeepEqual(x.Config, want.Config) || x.Description != want.Description {
					t.Errorf("project %s differs from incus.Desired:\n%v\n%v", x.Name, x.Config, want.Config)
				}
			}
			for _, x := range p.Profiles {
				profs = append(profs, x.Project+"/"+x.Name)
				want := s.Project(x.Project).Profile(x.Name)
				if !reflect.DeepEqual(x.Config, want.Config) || !reflect.DeepEqual(x.Devices, want.Devices) || x.Description != want.Description {
					t.Errorf("profile %s/%s differs from incus.Desired", x.Project, x.Name)
				}
			}
			if !reflect.DeepEqual(nets, wantNets) || !reflect.DeepEqual(projs, wantProjs) || !reflect.DeepEqual(profs, wantProfs) {
				t.Errorf("order:\n nets %v / %v\n projects %v / %v\n profiles %v / %v", nets, wantNets, projs, wantProjs, profs, wantProfs)
			}
			if len(p.StorageVolumes) != 0 || len(p.StoragePools) != 0 || p.Cluster != nil {
				t.Error("the block holds only networks, projects and profiles")
			}
		})
	}
}

// TestCheckOutside is §16 #55: user keys outside the block are kept (no
// error); networks, projects or profiles outside it are reported with
// their position.
func TestCheckOutside(t *testing.T) {
	block := string(tree.Block([]byte("networks: []\nprojects: []\nprofiles: []\n")))
	msg := ": key outside the managed section conflicts with anklume"
	tests := []struct {
		name string
		file string
		want string
	}{
		{"new file", "---\n" + block + "\n\n# Your custom preseed keys below (config:, storage_pools:, cluster:, ...):\n", ""},
		{"user keys kept", "---\n" + block + "\n\nconfig:\n  core.https_address: ':8443'\nstorage_pools:\n  - name: default\n    driver: dir\n", ""},
		{"networks after the block", "---\n" + block + "\n\nconfig: {}\nnetworks:\n  - name: br0\n",
			"incus/preseed.yml:10:1: networks" + msg},
		{"profiles before the block", "---\nprofiles: []\n" + block + "\n", "incus/preseed.yml:2:1: profiles" + msg},
		{"projects in flow style", "---\n" + block + "\n{projects: []}\n", "incus/preseed.yml:8:2: projects" + msg},
		{"quoted key", "---\n" + block + "\n\"networks\": []\n", "incus/preseed.yml:8:1: networks" + msg},
		{"nested key is not top level", "---\n" + block + "\nconfig:\n  networks: x\n", ""},
		{"no block at all", "networks: []\n", "incus/preseed.yml:1:1: networks" + msg},
		{"CRLF", "---\r\n" + strings.ReplaceAll(block, "\n", "\r\n") + "\r\n\r\nprofiles: []\r\n", "incus/preseed.yml:9:1: profiles" + msg},
		{"BOM", "\xef\xbb\xbf---\n" + block + "\nnetworks: []\n", "incus/preseed.yml:8:1: networks" + msg},
		{"markers with trailing spaces", "---\n" + strings.Replace(block, tree.End, tree.End+" \t", 1) + "\nconfig: {}\n", ""},
		{"second document", "---\n" + block + "\n---\nprojects: []\n", "incus/preseed.yml:9:1: projects" + msg},
		{"unclosed block is left to splice", "---\n" + tree.Begin + "\nnetworks: []\n", ""},
		{"two blocks are left to splice", "---\n" + block + "\n" + block + "\n", ""},
		{"empty file", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckOutside("incus/preseed.yml", []byte(tc.file))
			got := ""
			if err != nil {
				got = err.Error()
				var ce *ConflictError
				if !errors.As(err, &ce) {
					t.Errorf("error %T is not a *ConflictError", err)
				}
			}
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestCheckOutsideBadYAML: an unreadable user part is an error naming the
// file, not a panic.
func TestCheckOutsideBadYAML(t *testing.T) {
	err := CheckOutside("incus/preseed.yml", []byte("---\nconfig: [\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "incus/preseed.yml: ") {
		t.Fatalf("err = %v", err)
	}
}

// TestSplicedBlockIsIgnored: the block Block produces, spliced into a user
// file, never trips CheckOutside (a sync run followed by another).
func TestSplicedBlockIsIgnored(t *testing.T) {
	m := compileFS(t, fstest.MapFS{"infra.yml": {Data: []byte(fwPSOT)}}, "infra.yml")
	old := []byte("config:\n  core.https_address: '[::]:8443'\n")
	file, err := tree.Splice("incus/preseed.yml", old, true, Block(m), tree.Preseed)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckOutside("incus/preseed.yml", file); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(file, old) {
		t.Errorf("user keys not kept byte for byte:\n%s", file)
	}
	var p api.InitPreseed
	if err := yamlv2.UnmarshalStrict(file, &p); err != nil {
		t.Fatalf("incus would reject the preseed: %v", err)
	}
	if p.Config["core.https_address"] != "[::]:8443" || len(p.Profiles) != 4 {
		t.Errorf("parsed preseed: config %v, %d profiles", p.Config, len(p.Profiles))
	}
}
