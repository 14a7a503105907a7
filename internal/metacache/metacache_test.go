package metacache

import (
	"os"
	"path/filepath"
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
