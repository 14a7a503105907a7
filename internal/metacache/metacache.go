// Package metacache keeps the answer of GET /1.0/metadata/configuration on
// disk. The configuration metadata of an Incus server only changes when
// the server is upgraded, so it is cached under a key made of the server
// version and its API extension list: an upgrade changes one of them and
// the next run fetches it again.
//
// The cache directory is $XDG_CACHE_HOME/anklume, else ~/.cache/anklume
// (Default). An entry keeps the key names of each group, without their
// descriptions (all a plan reads). Each entry is one file,
// metadata-<key>.json, written to a
// temporary file in the same directory and renamed over the entry, so a
// reader sees the old file or the new one, never a part. An entry that
// cannot be read or decoded is a miss: the caller fetches again and
// overwrites it. A cache that cannot be written is not an error (the run
// goes on with what it fetched); no fsync: a cache lost in a crash costs
// one request.
package metacache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/internal/cachedir"
)

// Cache is a cache directory. The zero value caches nothing.
type Cache struct {
	// Dir is the directory of the entries; empty disables the cache.
	Dir string
}

// Default returns the cache in $XDG_CACHE_HOME/anklume, else
// ~/.cache/anklume, as getenv reads them. Without either, or without
// getenv, it caches nothing.
func Default(getenv func(string) string) Cache {
	return Cache{Dir: cachedir.Dir(getenv)}
}

// entryFormat names what an entry holds. It is part of the key, so that
// an entry written in another form is never read: entries of earlier
// builds held the whole 68 KB answer, then every key with empty
// descriptions (12 KB of nested objects); every plan decoded them.
// Changing what is stored means changing it.
const entryFormat = "key names by entity and group"

// entry is what a file holds: the key names of each group of each
// entity, sorted; no descriptions.
type entry map[api.MetadataConfigEntityName]map[api.MetadataConfigGroupName][]string

// Key is the cache key of a server: a hash of its version and API
// extensions (and of the entry format).
func Key(info *api.Server) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", entryFormat, info.Environment.Server, info.Environment.ServerVersion, strings.Join(info.APIExtensions, "\n"))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func (c Cache) path(key string) string {
	return filepath.Join(c.Dir, "metadata-"+key+".json")
}

// Load returns the entry of key, or false when there is none or it is
// unreadable. It holds key names only: each group's keys come back in one
// map, with empty descriptions.
func (c Cache) Load(key string) (*api.MetadataConfiguration, bool) {
	if c.Dir == "" {
		return nil, false
	}
	b, err := os.ReadFile(c.path(key))
	if err != nil {
		return nil, false
	}
	var e entry
	if err := json.Unmarshal(b, &e); err != nil || e == nil {
		return nil, false
	}
	m := &api.MetadataConfiguration{Config: make(api.MetadataConfig, len(e))}
	for entity, groups := range e {
		gs := make(map[api.MetadataConfigGroupName]api.MetadataConfigGroup, len(groups))
		for group, names := range groups {
			keys := make(map[string]api.MetadataConfigKey, len(names))
			for _, n := range names {
				keys[n] = api.MetadataConfigKey{}
			}
			gs[group] = api.MetadataConfigGroup{Keys: []map[string]api.MetadataConfigKey{keys}}
		}
		m.Config[entity] = gs
	}
	return m, true
}

// Store writes the key names of m under key (temporary file, then
// rename).
func (c Cache) Store(key string, m *api.MetadataConfiguration) error {
	if c.Dir == "" {
		return nil
	}
	e := entry{}
	for entity, groups := range m.Config {
		gs := make(map[api.MetadataConfigGroupName][]string, len(groups))
		for group, g := range groups {
			names := []string{}
			for _, k := range g.Keys {
				for n := range k {
					names = append(names, n)
				}
			}
			slices.Sort(names)
			gs[group] = names
		}
		e[entity] = gs
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("caching the configuration metadata: %w", err)
	}
	if err := cachedir.WriteFile(c.Dir, "metadata-"+key+".json", b); err != nil {
		return fmt.Errorf("caching the configuration metadata: %w", err)
	}
	return nil
}
