package metacache

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"
)

func TestDefault(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_CACHE_HOME": "/c", "HOME": "/h"}, "/c/anklume"},
		{map[string]string{"XDG_CACHE_HOME": "rel", "HOME": "/h"}, "/h/.cache/anklume"},
		{map[string]string{"HOME": "/h"}, "/h/.cache/anklume"},
		{map[string]string{}, ""},
	}
	for _, tc := range tests {
		if got := Default(func(k string) string { return tc.env[k] }).Dir; got != tc.want {
			t.Errorf("%v: %q, want %q", tc.env, got, tc.want)
		}
	}
}

// TestStoreLoad: an entry reads back; a key of another version misses; a
// store leaves no temporary file; the zero Cache caches nothing.
func TestStoreLoad(t *testing.T) {
	c := Cache{Dir: filepath.Join(t.TempDir(), "a", "b")}
	s1 := &api.Server{Environment: api.ServerEnvironment{Server: "incus", ServerVersion: "6.0.4"}}
	s1.APIExtensions = []string{"x", "y"}
	s2 := &api.Server{Environment: api.ServerEnvironment{Server: "incus", ServerVersion: "6.0.5"}}
	s2.APIExtensions = []string{"x", "y"}
	m := &api.MetadataConfiguration{Config: api.MetadataConfig{"instance": {}}}
	if err := c.Store(Key(s1), m); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Load(Key(s1)); !ok || got.Config["instance"] == nil {
		t.Fatalf("load: %v %v", got, ok)
	}
	if _, ok := c.Load(Key(s2)); ok || Key(s1) == Key(s2) {
		t.Fatal("another server version hit the entry")
	}
	ents, _ := os.ReadDir(c.Dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d files, want the entry alone", len(ents))
	}
	if err := (Cache{}).Store("k", m); err != nil {
		t.Fatal(err)
	}
	if _, ok := (Cache{}).Load("k"); ok {
		t.Fatal("zero cache hit")
	}
}

// TestNamesRoundTrip: an entry gives back the key names of every group,
// without descriptions, and is small; a file of another shape (the full
// answer of earlier builds) is a miss.
func TestNamesRoundTrip(t *testing.T) {
	c := Cache{Dir: t.TempDir()}
	d := api.MetadataConfigKey{LongDescription: "a long text", Type: "string"}
	m := &api.MetadataConfiguration{Config: api.MetadataConfig{
		"instance": {"resource-limits": {Keys: []map[string]api.MetadataConfigKey{{"limits.cpu": d}, {"limits.memory": d}}}},
		"devices":  {"disk": {Keys: []map[string]api.MetadataConfigKey{{"path": d, "source": d}}}, "none": {}},
	}}
	if err := c.Store("k", m); err != nil {
		t.Fatal(err)
	}
	got, ok := c.Load("k")
	if !ok {
		t.Fatal("miss")
	}
	names := func(m *api.MetadataConfiguration, bare bool) map[string][]string {
		out := map[string][]string{}
		for e, gs := range m.Config {
			for g, grp := range gs {
				id := string(e) + "/" + string(g)
				out[id] = []string{}
				for _, k := range grp.Keys {
					for n, v := range k {
						if bare && v != (api.MetadataConfigKey{}) {
							t.Errorf("%s %s: description kept", id, n)
						}
						out[id] = append(out[id], n)
					}
				}
				slices.Sort(out[id])
			}
		}
		return out
	}
	if g, w := names(got, true), names(m, false); !reflect.DeepEqual(g, w) {
		t.Errorf("names %v, want %v", g, w)
	}
	b, _ := os.ReadFile(filepath.Join(c.Dir, "metadata-k.json"))
	if strings.Contains(string(b), "long text") {
		t.Errorf("entry %s", b)
	}
	full, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(c.Dir, "metadata-old.json"), full, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Load("old"); ok {
		t.Error("an entry of another shape was read")
	}
}
