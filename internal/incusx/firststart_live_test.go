package incusx

import (
	"context"
	"io"
	"maps"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"
)

// TestWriteAtFirstStartLive: on the real daemon, the files added with
// WriteAtFirstStart to a never started container are there once it runs,
// owned by root with their modes, in a directory of mode 0755, with
// content that looks like template markup written verbatim, by two
// requests each time (the template file and a PATCH of the metadata);
// the image's own entries and fields are kept (its entry rendered too);
// written twice, the second version wins; and
// DropFirstStartFiles leaves a second container's start with no file and
// no entry of ours.
func TestWriteAtFirstStartLive(t *testing.T) {
	var log RequestLog
	c := realServer(t, &log)
	ctx := context.Background()
	n := newNames(t)
	t.Cleanup(func() { purge(t, c, []string{n.project}, nil) })
	must := mustOK(t)
	src := containerProject(t, c, n)
	srv := c.in(n.project)
	for _, name := range []string{"c1", "c2"} {
		must("create "+name, c.CreateInstance(ctx, n.project, api.InstancesPost{Name: name, Type: api.InstanceTypeContainer,
			Source: src, InstancePut: api.InstancePut{Devices: map[string]map[string]string{
				"root": {"type": "disk", "pool": "default", "path": "/"}}}}))
	}
	// An entry of the image's own (busybox has none): kept, as the
	// image's architecture and properties.
	before, etag, err := srv.GetInstanceMetadata("c1")
	must("metadata", err)
	if before.Templates == nil {
		before.Templates = map[string]*api.ImageMetadataTemplate{}
	}
	before.Templates["/etc/own"] = &api.ImageMetadataTemplate{When: []string{"create"}, Template: "own.tpl"}
	must("own template", srv.CreateInstanceTemplateFile("c1", "own.tpl", strings.NewReader("own {{ instance.name }}\n")))
	must("own entry", srv.UpdateInstanceMetadata("c1", *before, etag))
	log.Reset()
	files := func(a string) []NewFile {
		return []NewFile{
			{Path: "/etc/fsx/deeper/a", Content: []byte(a), Mode: 0o600},
			{Path: "/etc/fsx/b", Content: []byte("{{ config }} {% if x %}\n"), Mode: 0o644},
		}
	}
	must("first write", c.WriteAtFirstStart(ctx, n.project, "c1", files("first, longer\n")))
	must("second write", c.WriteAtFirstStart(ctx, n.project, "c1", files("2\n")))
	var writes []string
	for _, r := range log.Strings() {
		writes = append(writes, strings.SplitN(r, "?", 2)[0])
	}
	want := "POST /1.0/instances/c1/metadata/templates PATCH /1.0/instances/c1/metadata"
	if got := strings.Join(writes, " "); got != want+" "+want {
		t.Errorf("requests of two writes: %s\nwant twice: %s", got, want)
	}
	after, _, err := srv.GetInstanceMetadata("c1")
	must("metadata", err)
	for p := range before.Templates {
		if after.Templates[p] == nil {
			t.Errorf("the image's template %s is gone", p)
		}
	}
	if after.Architecture != before.Architecture || after.CreationDate != before.CreationDate || !maps.Equal(after.Properties, before.Properties) {
		t.Errorf("metadata fields changed: %+v, was %+v", after, before)
	}
	must("start c1", c.UpdateInstanceState(ctx, n.project, "c1", api.InstanceStatePut{Action: ActionStart}))
	for p, want := range map[string]struct {
		content string
		mode    int
		dir     bool
	}{
		"/etc/fsx": {"", 0o755, true}, "/etc/fsx/deeper": {"", 0o755, true},
		"/etc/fsx/deeper/a": {"2\n", 0o600, false}, "/etc/fsx/b": {"{{ config }} {% if x %}\n", 0o644, false},
		"/etc/own": {"own c1\n", 0o644, false},
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
