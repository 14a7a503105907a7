package incusx

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"
)

func TestProgressText(t *testing.T) {
	for _, c := range []struct {
		meta map[string]any
		want string
	}{
		{nil, ""},
		{map[string]any{"download_progress": "rootfs: 45% (3.20MB/s)"}, "rootfs: 45% (3.20MB/s)"},
		{map[string]any{"create_instance_from_image_unpack_progress": "Unpacking image: 80%", "other": "x"}, "Unpacking image: 80%"},
		// Several keys: name order, so the text does not flicker between them.
		{map[string]any{"fs_progress": "b", "block_progress": "a"}, "a"},
		{map[string]any{"block_progress": 3, "fs_progress": "b"}, "b"},
	} {
		if got := ProgressText(c.meta); got != c.want {
			t.Errorf("ProgressText(%v) = %q, want %q", c.meta, got, c.want)
		}
	}
}

// TestProgressFake: the fake reports the texts set for a call to the
// context's ProgressFunc, as the daemon's operation events do.
func TestProgressFake(t *testing.T) {
	f := NewFake()
	ctx := context.Background()
	if err := f.CreateProject(ctx, api.ProjectsPost{Name: "p", ProjectPut: api.ProjectPut{Config: api.ConfigMap{"features.images": "false"}}}); err != nil {
		t.Fatal(err)
	}
	f.AddImageAlias("img")
	f.SetProgress("CreateInstance", "p/c1", 0, "rootfs: 50%", "rootfs: 100%")
	var got []string
	pctx := WithProgress(ctx, func(s string) { got = append(got, s) })
	if err := f.CreateInstance(pctx, "p", api.InstancesPost{Name: "c1", Source: api.InstanceSource{Type: "image", Alias: "img"},
		InstancePut: api.InstancePut{Devices: map[string]map[string]string{"root": {"type": "disk", "pool": "default", "path": "/"}}}}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1] != "rootfs: 100%" {
		t.Errorf("progress %q", got)
	}
}

// TestProgressLive: on the real daemon, an instance created with a
// ProgressFunc in its context is created as without one (the event
// handler never gets in the way of the operation); the progress texts the
// daemon sent are logged.
func TestProgressLive(t *testing.T) {
	c := realServer(t, &RequestLog{})
	n := newNames(t)
	t.Cleanup(func() { purge(t, c, []string{n.project}, nil) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.CreateProject(ctx, api.ProjectsPost{Name: n.project, ProjectPut: api.ProjectPut{
		Config: api.ConfigMap{"features.images": "false", "features.profiles": "true"}}}); err != nil {
		t.Fatal(err)
	}
	prof, etag, err := c.Profile(ctx, n.project, "default")
	if err != nil {
		t.Fatal(err)
	}
	put := prof.Writable()
	put.Devices = map[string]map[string]string{"root": {"type": "disk", "pool": "default", "path": "/"}}
	if err := c.UpdateProfile(ctx, n.project, "default", put, etag); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var texts []string
	pctx := WithProgress(ctx, func(s string) { mu.Lock(); texts = append(texts, s); mu.Unlock() })
	src, err := c.ResolveImage(testImage)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateInstance(pctx, n.project, api.InstancesPost{Name: "p1", Type: api.InstanceTypeContainer, Source: src}); err != nil {
		t.Fatalf("create with progress: %v", err)
	}
	if _, _, err := c.Instance(ctx, n.project, "p1"); err != nil {
		t.Fatalf("instance not there after the create: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("progress texts from the daemon: %q", texts)
}
