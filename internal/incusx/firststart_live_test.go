package incusx

import (
	"context"
	"io"
	"testing"

	"github.com/lxc/incus/v6/shared/api"
)

// TestWriteAtFirstStartLive: on the real daemon, the files added with
// WriteAtFirstStart to a never started container are there once it runs,
// owned by root with their modes, in a directory of mode 0755, with
// content that looks like template markup written verbatim; the image's
// own templates are kept; written twice, the second version wins; and
// DropFirstStartFiles leaves a second container's start with no file and
// no entry of ours.
func TestWriteAtFirstStartLive(t *testing.T) {
	c := realServer(t, &RequestLog{})
	ctx := context.Background()
	n := newNames(t)
	t.Cleanup(func() { purge(t, c, []string{n.project}, nil) })
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("create project", c.CreateProject(ctx, api.ProjectsPost{Name: n.project, ProjectPut: api.ProjectPut{
		Config: api.ConfigMap{"features.images": "false", "features.profiles": "true"}}}))
	src, err := c.ResolveImage(testImage)
	must("resolve image", err)
	srv := c.in(n.project)
	for _, name := range []string{"c1", "c2"} {
		must("create "+name, c.CreateInstance(ctx, n.project, api.InstancesPost{Name: name, Type: api.InstanceTypeContainer,
			Source: src, InstancePut: api.InstancePut{Devices: map[string]map[string]string{
				"root": {"type": "disk", "pool": "default", "path": "/"}}}}))
	}
	before, _, err := srv.GetInstanceMetadata("c1")
	must("metadata", err)
	files := func(a string) []NewFile {
		return []NewFile{
			{Path: "/etc/fsx/deeper/a", Content: []byte(a), Mode: 0o600},
			{Path: "/etc/fsx/b", Content: []byte("{{ config }} {% if x %}\n"), Mode: 0o644},
		}
	}
	must("first write", c.WriteAtFirstStart(ctx, n.project, "c1", files("first, longer\n")))
	must("second write", c.WriteAtFirstStart(ctx, n.project, "c1", files("2\n")))
	after, _, err := srv.GetInstanceMetadata("c1")
	must("metadata", err)
	for p := range before.Templates {
		if after.Templates[p] == nil {
			t.Errorf("the image's template %s is gone", p)
		}
	}
	must("start c1", c.UpdateInstanceState(ctx, n.project, "c1", api.InstanceStatePut{Action: ActionStart}))
	for p, want := range map[string]struct {
		content string
		mode    int
		dir     bool
	}{
		"/etc/fsx": {"", 0o755, true}, "/etc/fsx/deeper": {"", 0o755, true},
		"/etc/fsx/deeper/a": {"2\n", 0o600, false}, "/etc/fsx/b": {"{{ config }} {% if x %}\n", 0o644, false},
	} {
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

	must("write c2", c.WriteAtFirstStart(ctx, n.project, "c2", files("x\n")))
	must("drop c2", c.DropFirstStartFiles(ctx, n.project, "c2"))
	md, _, err := srv.GetInstanceMetadata("c2")
	must("metadata", err)
	for p, e := range md.Templates {
		if e.Template == FirstStartTemplate {
			t.Errorf("entry %s still there after the drop", p)
		}
	}
	must("start c2", c.UpdateInstanceState(ctx, n.project, "c2", api.InstanceStatePut{Action: ActionStart}))
	if _, _, err := srv.GetInstanceFile("c2", "/etc/fsx"); err == nil {
		t.Error("c2 got /etc/fsx after the drop")
	}
	if err := c.WriteAtFirstStart(ctx, n.project, "nope", files("x\n")); err == nil || !IsNotFound(err) {
		t.Errorf("missing instance: %v", err)
	}
}
