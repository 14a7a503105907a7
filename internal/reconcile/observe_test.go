package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/metacache"
)

// synthetic returns nd domains of nm machines each.
func synthetic(nd, nm int) string {
	var b strings.Builder
	for d := range nd {
		fmt.Fprintf(&b, "  d%d:\n    trust_level: trusted\n    egress: false\n    ephemeral: true\n    machines:\n", d)
		for m := range nm {
			fmt.Fprintf(&b, "      m%d-%d: {}\n", d, m)
		}
	}
	return b.String()
}

// planRequests converges a fake on an nd×nm PSOT, then returns the
// requests of one plan.
func planRequests(t *testing.T, nd, nm int) []string {
	t.Helper()
	f := incusx.NewFake()
	m, want := compile(t, psot(synthetic(nd, nm)))
	converge(t, f, mustPlan(t, f, m, want, Options{}))
	f.Log().Reset()
	assertEmpty(t, f, m, want, Options{})
	return slices.Sorted(slices.Values(f.Log().Strings()))
}

// TestObserveRequests: a plan issues exactly the requests of §9.1 (in any
// order but GET /1.0 first: they are sent at once), and 20 domains × 10
// machines issue the same ones as 1 × 1 (SPEC.md §16 #63).
func TestObserveRequests(t *testing.T) {
	want := []string{
		"GET /1.0",
		"GET /1.0/images/aliases?recursion=1",
		"GET /1.0/instances?all-projects=true&recursion=1",
		"GET /1.0/metadata/configuration",
		"GET /1.0/networks?recursion=1",
		"GET /1.0/profiles?all-projects=true&recursion=1",
		"GET /1.0/projects?recursion=1",
		"GET /1.0/storage-pools/default/volumes/custom?all-projects=true&recursion=1",
		"GET /1.0/storage-pools?recursion=1",
	}
	small := planRequests(t, 1, 1)
	if !slices.Equal(small, want) {
		t.Errorf("1×1 requests:\n%s", strings.Join(small, "\n"))
	}
	big := planRequests(t, 20, 10)
	if !slices.Equal(big, small) {
		t.Errorf("20×10 requests differ from 1×1:\n%s", strings.Join(big, "\n"))
	}
}

// TestObserveConditional: cluster members only on a
// clustered server, resources only when asked, a pool whose used_by names
// a custom volume is listed (SPEC.md §9.1).
func TestObserveConditional(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	f.AddStoragePool("fast", "dir")
	must(t, f.CreateStorageVolume(ctx, "default", "fast", api.StorageVolumesPost{Name: "v"}))
	f.Log().Reset()
	_, err := Observe(ctx, f, ObserveOptions{Resources: true})
	must(t, err)
	got := f.Log().Strings()
	if !slices.Contains(got, "GET /1.0/storage-pools/fast/volumes/custom?all-projects=true&recursion=1") ||
		slices.Contains(got, "GET /1.0/storage-pools/default/volumes/custom?all-projects=true&recursion=1") ||
		slices.Contains(got, "GET /1.0/cluster/members?recursion=1") ||
		!slices.Contains(got, "GET /1.0/resources") {
		t.Errorf("requests:\n%s", strings.Join(got, "\n"))
	}
	f.AddClusterMember("n1")
	f.Log().Reset()
	_, err = Observe(ctx, f, ObserveOptions{})
	must(t, err)
	if !slices.Contains(f.Log().Strings(), "GET /1.0/cluster/members?recursion=1") {
		t.Errorf("members not listed:\n%s", strings.Join(f.Log().Strings(), "\n"))
	}
}

// TestObserveMissingExtension: without a required extension the plan
// fails with the exact message (SPEC.md §9.1).
func TestObserveMissingExtension(t *testing.T) {
	for _, ext := range []string{"instance_all_projects", "profiles_all_projects", "storage_volumes_all_projects"} {
		f := incusx.NewFake()
		f.SetServer(func(s *api.Server) {
			s.APIExtensions = slices.DeleteFunc(s.APIExtensions, func(e string) bool { return e == ext })
		})
		_, err := Observe(context.Background(), f, ObserveOptions{})
		if err == nil || err.Error() != fmt.Sprintf("the Incus server lacks the API extension %q", ext) {
			t.Errorf("%s: %v", ext, err)
		}
	}
}

// TestObserveFirstAndErrors: GET /1.0 comes before every other read but
// the instance list, and of several failing reads the error reported is
// the first in the order of §9.1, whatever order they failed in.
func TestObserveFirstAndErrors(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	if _, err := Observe(ctx, f, ObserveOptions{Pools: []string{"default"}}); err != nil {
		t.Fatal(err)
	}
	got := slices.DeleteFunc(f.Log().Strings(), func(r string) bool {
		return r == "GET /1.0/instances?all-projects=true&recursion=1"
	})
	if len(got) == 0 || got[0] != "GET /1.0" {
		t.Errorf("first request %q, want GET /1.0", got)
	}
	f.Fail("Instances", "", api.StatusErrorf(500, "instances down"))
	f.Fail("Projects", "", api.StatusErrorf(500, "projects down"))
	f.Fail("StorageVolumes", "", api.StatusErrorf(500, "volumes down"))
	for range 20 {
		_, err := Observe(ctx, f, ObserveOptions{Pools: []string{"default"}})
		if err == nil || !strings.Contains(err.Error(), "projects down") {
			t.Fatalf("err %v, want the projects error", err)
		}
	}
}

// serverInfoAfterInstances is a Server whose GET /1.0 answers only once
// the instance list has been asked for (or fails after a second).
type serverInfoAfterInstances struct {
	incusx.Server
	asked chan struct{}
	once  sync.Once
}

func (s *serverInfoAfterInstances) Instances(ctx context.Context) ([]api.Instance, error) {
	s.once.Do(func() { close(s.asked) })
	return s.Server.Instances(ctx)
}

func (s *serverInfoAfterInstances) ServerInfo(ctx context.Context) (*api.Server, error) {
	select {
	case <-s.asked:
		return s.Server.ServerInfo(ctx)
	case <-time.After(time.Second):
		return nil, errors.New("GET /1.0 was asked before the instance list and nothing else came")
	}
}

// TestObserveInstancesFirst: the instance list, the slowest read, is sent
// without waiting for GET /1.0's answer; when GET /1.0 then fails, that
// error is the one reported.
func TestObserveInstancesFirst(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	if _, err := Observe(ctx, &serverInfoAfterInstances{Server: f, asked: make(chan struct{})}, ObserveOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Fail("ServerInfo", "", api.StatusErrorf(500, "server down"))
	if _, err := Observe(ctx, f, ObserveOptions{}); err == nil || !strings.Contains(err.Error(), "server down") {
		t.Errorf("err %v, want GET /1.0's", err)
	}
}

// TestObserveMetadataCache: the configuration metadata is fetched once per
// server version and extension list and then read from the cache; another
// version fetches again; a corrupt entry is fetched again and rewritten.
func TestObserveMetadataCache(t *testing.T) {
	ctx := context.Background()
	f := incusx.NewFake()
	f.SetMetadataConfiguration(api.MetadataConfiguration{Config: api.MetadataConfig{"instance": {}}})
	cache := metacache.Cache{Dir: t.TempDir()}
	const get = "GET /1.0/metadata/configuration"
	fetched := func() bool {
		t.Helper()
		f.Log().Reset()
		obs, err := Observe(ctx, f, ObserveOptions{MetadataCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		if obs.Metadata == nil || len(obs.Metadata.Config) == 0 {
			t.Fatal("no metadata")
		}
		return slices.Contains(f.Log().Strings(), get)
	}
	if !fetched() {
		t.Fatal("cold cache: not fetched")
	}
	if fetched() {
		t.Fatal("warm cache: fetched again")
	}
	f.SetServer(func(s *api.Server) { s.Environment.ServerVersion = "9.9" })
	if !fetched() {
		t.Fatal("new server version: not fetched")
	}
	entries, _ := filepath.Glob(filepath.Join(cache.Dir, "metadata-*.json"))
	if len(entries) != 2 {
		t.Fatalf("entries %q, want one per version", entries)
	}
	for _, e := range entries {
		if err := os.WriteFile(e, []byte(`{"configs": {`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if !fetched() {
		t.Fatal("corrupt entry: not fetched")
	}
	if fetched() {
		t.Fatal("corrupt entry not rewritten")
	}
}

// TestKeysOnly: the cached metadata gives the plan the same instance keys
// and device properties as the full answer, without the descriptions and
// the entities a plan never reads.
func TestKeysOnly(t *testing.T) {
	key := api.MetadataConfigKey{LongDescription: "a long text", Default: "a default text", Type: "string"}
	full := &api.MetadataConfiguration{Config: api.MetadataConfig{
		"instance": {
			"resource-limits": {Keys: []map[string]api.MetadataConfigKey{{"limits.cpu": key}, {"limits.memory": key}}},
			"volatile":        {Keys: []map[string]api.MetadataConfigKey{{"volatile.<name>.hwaddr": key}}},
		},
		"devices": {
			"nic_bridged":     {Keys: []map[string]api.MetadataConfigKey{{"network": key, "ipv4.address": key}}},
			"unix-char-block": {Keys: []map[string]api.MetadataConfigKey{{"source": key}}},
		},
		"server": {"core": {Keys: []map[string]api.MetadataConfigKey{{"core.https_address": key}}}},
	}}
	slim := keysOnly(full)
	wantInst, wantDevs := metaKeys(full)
	gotInst, gotDevs := metaKeys(slim)
	if !slices.Equal(gotInst, wantInst) || !reflect.DeepEqual(gotDevs, wantDevs) {
		t.Errorf("keys %v %v, want %v %v", gotInst, gotDevs, wantInst, wantDevs)
	}
	if _, ok := slim.Config["server"]; ok {
		t.Error("the server entity is kept")
	}
	b, err := json.Marshal(slim)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "long text") || strings.Contains(string(b), "default text") {
		t.Errorf("descriptions kept: %s", b)
	}
}
