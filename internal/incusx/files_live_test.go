package incusx

import (
	"context"
	"io"
	"testing"

	"github.com/lxc/incus/v6/shared/api"
)

// TestWriteInstanceDirLive: on the real daemon, WriteInstanceDir creates
// the directory and the files owned by root with their modes, keeps an
// existing directory, and replaces a longer file whole (truncated, not
// overwritten in place); a missing instance is an error naming it.
func TestWriteInstanceDirLive(t *testing.T) {
	c := realServer(t, &RequestLog{})
	ctx := context.Background()
	n := newNames(t)
	t.Cleanup(func() { purge(t, c, []string{n.project}, nil) })
	must := mustOK(t)
	src := containerProject(t, c, n)
	must("create instance", c.CreateInstance(ctx, n.project, api.InstancesPost{Name: "c1", Type: api.InstanceTypeContainer,
		Source: src, InstancePut: api.InstancePut{Devices: map[string]map[string]string{
			"root": {"type": "disk", "pool": "default", "path": "/"}}}}))
	must("start", c.UpdateInstanceState(ctx, n.project, "c1", api.InstanceStatePut{Action: ActionStart}))

	write := func(content string) {
		t.Helper()
		must("write", c.WriteInstanceDir(ctx, n.project, "c1", "/etc/itx", 0o750, []NewFile{
			{Path: "/etc/itx/a", Content: []byte(content), Mode: 0o640},
			{Path: "/etc/itx/b", Content: []byte("b\n"), Mode: 0o644},
		}))
	}
	write("a longer first version\n")
	write("1\n")
	srv := c.in(n.project)
	for p, want := range map[string]struct {
		content string
		mode    int
		dir     bool
	}{"/etc/itx": {"", 0o750, true}, "/etc/itx/a": {"1\n", 0o640, false}, "/etc/itx/b": {"b\n", 0o644, false}} {
		rc, resp, err := srv.GetInstanceFile("c1", p)
		must("read "+p, err)
		var got []byte
		if rc != nil {
			got, _ = io.ReadAll(rc)
			_ = rc.Close()
		}
		if resp.UID != 0 || resp.GID != 0 || resp.Mode != want.mode || (resp.Type == "directory") != want.dir {
			t.Errorf("%s: uid %d gid %d mode %o type %s, want root, %o", p, resp.UID, resp.GID, resp.Mode, resp.Type, want.mode)
		}
		if !want.dir && string(got) != want.content {
			t.Errorf("%s = %q, want %q", p, got, want.content)
		}
	}
	err := c.WriteInstanceDir(ctx, n.project, "nope", "/etc/itx", 0o755, nil)
	if err == nil || !IsNotFound(err) {
		t.Errorf("missing instance: %v", err)
	}
}
