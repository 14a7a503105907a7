package desiredstate

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/examples"
	"github.com/anklume/anklume/internal/goldenflag"
)

var update = goldenflag.Update

// testOptions are the §16 host options; level sets the nesting level.
func testOptions(level int) host.Options {
	return host.Options{
		SkipHostSubnetCheck: true,
		Resources:           &host.Resources{CPU: 10, Memory: 40 << 30},
		Context:             host.Context{Level: level},
	}
}

func compileFS(t *testing.T, fsys fstest.MapFS, path string, level int) *model.Infra {
	t.Helper()
	res, dl, err := compiler.Compile(fsys, compiler.Input{Path: path, Display: "infra.yml"}, testOptions(level))
	if err != nil || res == nil {
		t.Fatalf("compile %s: %v\n%s", path, err, dl)
	}
	return res.Model
}

func compileExample(t *testing.T, name string) *model.Infra {
	t.Helper()
	res, dl, err := compiler.Compile(examples.FS(), compiler.Input{Path: name + "/infra.yml", Display: "infra.yml"}, testOptions(0))
	if err != nil || res == nil {
		t.Fatalf("compile example %s: %v\n%s", name, err, dl)
	}
	return res.Model
}

// demoPSOT has a nesting prefix, a domain profile without devices, a
// storage volume and a host policy.
const demoPSOT = `format_version: 1
project_name: demo
global:
  addressing: {}
domains:
  work:
    description: "Work"
    trust_level: trusted
    profiles:
      big:
        config: {limits.cpu: 2}
    machines:
      work-a:
        profiles: [default, big]
        config: {security.nesting: true}
        storage_volumes: {cache: {size: 1GiB}}
        roles: [base_system]
network_policies:
  - {from: host, to: work-a, ports: [22]}
`

// TestGolden compares the whole §6.6 document of demoPSOT at nesting
// level 1 with testdata/demo.yml, byte for byte.
func TestGolden(t *testing.T) {
	m := compileFS(t, fstest.MapFS{"infra.yml": {Data: []byte(demoPSOT)}}, "infra.yml", 1)
	got := RenderModel(m)
	golden := filepath.Join("testdata", "demo.yml")
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
		t.Errorf("desired-state differs from %s:\n--- got\n%s", golden, got)
	}
}

// doc mirrors the §6.6 shape for decoding.
type doc struct {
	Format      int       `yaml:"format"`
	Infra       string    `yaml:"infra"`
	Prefix      string    `yaml:"prefix"`
	StoragePool string    `yaml:"storage_pool"`
	Disabled    []string  `yaml:"disabled_domains"`
	SharedBase  string    `yaml:"shared_volumes_base"`
	Networks    []netDoc  `yaml:"networks"`
	Projects    []projDoc `yaml:"projects"`
}

type netDoc struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Config      map[string]string `yaml:"config"`
}

type projDoc struct {
	Name           string            `yaml:"name"`
	Domain         string            `yaml:"domain"`
	Description    string            `yaml:"description"`
	Target         string            `yaml:"target"`
	Peers          []string          `yaml:"peers"`
	Config         map[string]string `yaml:"config"`
	Profiles       []profDoc         `yaml:"profiles"`
	StorageVolumes []volDoc          `yaml:"storage_volumes"`
	Instances      []instDoc         `yaml:"instances"`
}

type profDoc struct {
	Name        string                       `yaml:"name"`
	Description string                       `yaml:"description"`
	Config      map[string]string            `yaml:"config"`
	Devices     map[string]map[string]string `yaml:"devices"`
}

type volDoc struct {
	Pool   string            `yaml:"pool"`
	Name   string            `yaml:"name"`
	Config map[string]string `yaml:"config"`
}

type instDoc struct {
	Name        string                       `yaml:"name"`
	Machine     string                       `yaml:"machine"`
	Type        string                       `yaml:"type"`
	State       string                       `yaml:"state"`
	Description string                       `yaml:"description"`
	Source      string                       `yaml:"source"`
	Target      string                       `yaml:"target"`
	Profiles    []string                     `yaml:"profiles"`
	Config      map[string]string            `yaml:"config"`
	Devices     map[string]map[string]string `yaml:"devices"`
}

// checkNode walks a decoded document: `format` is the only integer, every
// other scalar is a string, and the keys of every map under `config` or
// `devices` are sorted byte-wise.
func checkNode(t *testing.T, n *yaml.Node, path string, sortedKeys bool) {
	t.Helper()
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			checkNode(t, c, path, false)
		}
	case yaml.MappingNode:
		var keys []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			keys = append(keys, k.Value)
			if k.Tag != "!!str" {
				t.Errorf("%s: key %q has tag %s", path, k.Value, k.Tag)
			}
			if path == "" && k.Value == "format" {
				if v.Tag != "!!int" || v.Value != "1" {
					t.Errorf("format = %s %q, want !!int 1", v.Tag, v.Value)
				}
				continue
			}
			sub := sortedKeys || k.Value == "config" || k.Value == "devices"
			checkNode(t, v, path+"."+k.Value, sub)
		}
		if sortedKeys && !sort.StringsAreSorted(keys) {
			t.Errorf("%s: keys not sorted: %v", path, keys)
		}
	case yaml.ScalarNode:
		// !unsafe (a string Ansible never templates) only on strings
		// holding "{", and always on those.
		want := "!!str"
		if strings.Contains(n.Value, "{") {
			want = "!unsafe"
		}
		if n.Tag != want {
			t.Errorf("%s: value %q has tag %s, want %s", path, n.Value, n.Tag, want)
		}
	default:
		t.Errorf("%s: unexpected node kind %v", path, n.Kind)
	}
}

// TestExamples: the desired-state of every example is byte-stable, reads
// back as YAML with the §6.6 shape and types, and holds exactly the values
// of incus.Desired, in domain and declaration order.
func TestExamples(t *testing.T) {
	for _, name := range examples.Names() {
		t.Run(name, func(t *testing.T) {
			m := compileExample(t, name)
			out := RenderModel(m)
			if again := RenderModel(compileExample(t, name)); !bytes.Equal(out, again) {
				t.Fatal("two renders differ")
			}
			var root yaml.Node
			if err := yaml.Unmarshal(out, &root); err != nil {
				t.Fatalf("not YAML: %v\n%s", err, out)
			}
			checkNode(t, &root, "", false)
			top := root.Content[0]
			var keys []string
			for i := 0; i < len(top.Content); i += 2 {
				keys = append(keys, top.Content[i].Value)
			}
			if want := []string{"format", "infra", "prefix", "storage_pool", "disabled_domains", "shared_volumes_base", "networks", "projects"}; !reflect.DeepEqual(keys, want) {
				t.Errorf("top-level keys %v, want %v", keys, want)
			}
			var d doc
			dec := yaml.NewDecoder(bytes.NewReader(out))
			dec.KnownFields(true)
			if err := dec.Decode(&d); err != nil {
				t.Fatalf("decode: %v", err)
			}
			s := incus.Desired(m)
			if d.SharedBase != s.SharedVolumesBase || d.SharedBase == "" {
				t.Errorf("shared_volumes_base %q, want %q", d.SharedBase, s.SharedVolumesBase)
			}
			if !slices.Equal(d.Disabled, s.DisabledDomains) {
				t.Errorf("disabled_domains %v, want %v", d.Disabled, s.DisabledDomains)
			}
			if d.Infra != s.Infra || d.Prefix != s.Prefix || d.StoragePool != s.StoragePool || d.Format != 1 {
				t.Errorf("header = %+v", d)
			}
			if len(d.Networks) != len(s.Networks) || len(d.Projects) != len(s.Projects) {
				t.Fatalf("%d networks, %d projects; want %d, %d", len(d.Networks), len(d.Projects), len(s.Networks), len(s.Projects))
			}
			for i, n := range s.Networks {
				if g := d.Networks[i]; g.Name != n.Name || g.Description != n.Description || !reflect.DeepEqual(g.Config, map[string]string(n.Config)) {
					t.Errorf("network %d = %+v", i, g)
				}
			}
			for i, p := range s.Projects {
				g := d.Projects[i]
				if g.Name != p.Name || g.Domain != p.Domain || g.Description != p.Description || !reflect.DeepEqual(g.Config, map[string]string(p.Config)) {
					t.Errorf("project %d = %+v", i, g)
				}
				if g.Target != p.Target || !slices.Equal(g.Peers, p.Peers) || g.Peers == nil {
					t.Errorf("project %s: target %q peers %v, want %q %v", p.Name, g.Target, g.Peers, p.Target, p.Peers)
				}
				if len(g.Profiles) != len(p.Profiles) || len(g.Instances) != len(p.Instances) || len(g.StorageVolumes) != len(p.StorageVolumes) {
					t.Fatalf("project %s: object counts differ", p.Name)
				}
				for j, x := range p.Profiles {
					gp := g.Profiles[j]
					if gp.Name != x.Name || gp.Description != x.Description || !reflect.DeepEqual(gp.Config, map[string]string(x.Config)) ||
						!reflect.DeepEqual(gp.Devices, map[string]map[string]string(x.Devices)) {
						t.Errorf("profile %s/%s = %+v", p.Name, x.Name, gp)
					}
				}
				for j, x := range p.Instances {
					gi := g.Instances[j]
					want := instDoc{
						Name: x.Name, Machine: x.Machine, Type: string(x.Type), State: x.State,
						Description: x.Description, Source: x.Image, Target: x.Target, Profiles: x.Profiles,
						Config: x.Config, Devices: x.Devices,
					}
					if len(want.Devices) == 0 {
						want.Devices = map[string]map[string]string{}
					}
					if !reflect.DeepEqual(gi, want) {
						t.Errorf("instance %s:\n got %+v\nwant %+v", x.Name, gi, want)
					}
				}
			}
		})
	}
}

// TestEmpty: a nil state renders the header and empty lists.
func TestEmpty(t *testing.T) {
	got := string(Render(nil))
	want := "format: 1\ninfra: ''\nprefix: ''\nstorage_pool: ''\ndisabled_domains: []\nshared_volumes_base: ''\nnetworks: []\nprojects: []\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
