package incusx

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/lxc/incus/v6/shared/api"
)

// FirstStartWriter has Incus itself write files into a container at its
// first start, through the container's templates (the mechanism an image
// uses to write /etc/hostname): each file becomes a template entry of the
// container's metadata, triggered on "create", which Incus renders inside
// the start request of a container never started (volatile.apply_template
// is "create"), before the container's init runs, then drops the trigger.
// No process is started for it: a file request or an SFTP session makes
// Incus start a file server (a new incusd process) in the container, and
// the start of a stopped container then waits for that server to exit;
// two plain requests cost a fraction of it (measured on the reference
// machine under load: 0.05 s against 0.20 s for one SFTP session, and
// the start no slower than a bare one).
//
// The files are as the file API writes them: owned by root inside the
// container (Incus shifts the owner through the container's idmap), with
// the given mode, in directories Incus creates with mode 0755 and owner
// root when missing; a file the image already has is truncated and keeps
// its mode. Incus renders the templates only for a container (a VM's
// templates go through its agent) and only at the first start; once that
// start is done, the entries stay in the container's metadata, inert
// (removing them would cost two more requests per container): an image
// published from the container carries them, so a container created
// from that image by hand gets the files as they were; one created by
// WriteAtFirstStart gets its own, which replace them path by path.
//
// A template Incus cannot render (a path whose parent is a regular file,
// a directory in the file's place) makes the start fail: the caller
// removes the entries (DropFirstStartFiles) before it tries again.
type FirstStartWriter interface {
	// WriteAtFirstStart adds the files as templates of the stopped,
	// never started container: one template file, then the metadata's
	// entries. Written again, the same files replace their entries.
	WriteAtFirstStart(ctx context.Context, project, instance string, files []NewFile) error
	// DropFirstStartFiles removes the entries WriteAtFirstStart added, so
	// that the next start renders none of them.
	DropFirstStartFiles(ctx context.Context, project, instance string) error
}

var (
	_ FirstStartWriter = (*Client)(nil)
	_ FirstStartWriter = (*Fake)(nil)
)

// FirstStartTemplate is the template file every entry of
// WriteAtFirstStart renders: the entry's "content" property, verbatim
// (pongo2 reads no markup in a property's value).
const FirstStartTemplate = "anklume-file.tpl"

// firstStartTemplateText is the text of FirstStartTemplate.
const firstStartTemplateText = "{{ properties.content }}"

// firstStartEntries returns the metadata entries of files.
func firstStartEntries(files []NewFile) (map[string]*api.ImageMetadataTemplate, error) {
	out := make(map[string]*api.ImageMetadataTemplate, len(files))
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return nil, fmt.Errorf("file %q: not a clean absolute path", f.Path)
		}
		out[f.Path] = &api.ImageMetadataTemplate{
			When:       []string{"create"},
			Template:   FirstStartTemplate,
			Properties: map[string]string{"content": string(f.Content)},
			UID:        "0",
			GID:        "0",
			Mode:       fmt.Sprintf("%04o", f.Mode&0o7777),
		}
	}
	return out, nil
}

// WriteAtFirstStart implements FirstStartWriter with two requests: the
// template file, then a PATCH of the metadata with the entries alone,
// which Incus (6.0 and later) merges into the container's metadata: the
// image's own entries and fields stay, an entry of the same path is
// replaced. A server that does not know the PATCH gets a GET and a PUT
// of the whole metadata with its ETag instead. The template file goes
// first: a run cut between the two leaves an unused file, never an entry
// whose template is missing (which would fail the start).
func (c *Client) WriteAtFirstStart(ctx context.Context, project, instance string, files []NewFile) error {
	fail := func(err error) error { return wrap(err, "adding first-start files to", "instance", project, instance) }
	entries, err := firstStartEntries(files)
	if err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	srv := c.in(project)
	if err := srv.CreateInstanceTemplateFile(instance, FirstStartTemplate, strings.NewReader(firstStartTemplateText)); err != nil {
		return fail(err)
	}
	u := api.NewURL().Path("1.0", "instances", instance, "metadata").Project(project).String()
	_, _, err = c.srv.RawQuery(http.MethodPatch, u, map[string]any{"templates": entries}, "")
	if !api.StatusErrorCheck(err, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented) {
		return fail(err)
	}
	return fail(retry412(func() error {
		md, etag, err := srv.GetInstanceMetadata(instance)
		if err != nil {
			return err
		}
		if md.Templates == nil {
			md.Templates = map[string]*api.ImageMetadataTemplate{}
		}
		for p, e := range entries {
			md.Templates[p] = e
		}
		return srv.UpdateInstanceMetadata(instance, *md, etag)
	}))
}

// DropFirstStartFiles implements FirstStartWriter.
func (c *Client) DropFirstStartFiles(ctx context.Context, project, instance string) error {
	fail := func(err error) error {
		return wrap(err, "removing first-start files of", "instance", project, instance)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	srv := c.in(project)
	return fail(retry412(func() error {
		md, etag, err := srv.GetInstanceMetadata(instance)
		if err != nil {
			return err
		}
		n := len(md.Templates)
		dropFirstStart(md.Templates)
		if len(md.Templates) == n {
			return nil
		}
		return srv.UpdateInstanceMetadata(instance, *md, etag)
	}))
}

// dropFirstStart deletes the entries of FirstStartTemplate.
func dropFirstStart(t map[string]*api.ImageMetadataTemplate) {
	for p, e := range t {
		if e != nil && e.Template == FirstStartTemplate {
			delete(t, p)
		}
	}
}

// retry412 runs fn again while Incus answers 412 Precondition Failed (the
// ETag changed between the GET and the PUT), at most five times.
func retry412(fn func() error) error {
	var err error
	for range 5 {
		err = fn()
		if !api.StatusErrorCheck(err, http.StatusPreconditionFailed) {
			return err
		}
	}
	return err
}

// WriteAtFirstStart implements FirstStartWriter: the fake logs the two
// requests of Client and keeps the files with the instance; its first
// start (UpdateInstanceState) writes them, or fails as Incus does when a
// parent is a regular file or the path a directory.
func (f *Fake) WriteAtFirstStart(ctx context.Context, project, instance string, files []NewFile) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "adding first-start files to", "instance", project, instance) }
	if _, err := firstStartEntries(files); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	for _, r := range []struct{ op, method, path string }{
		{"CreateInstanceTemplateFile", http.MethodPost, uri(project, [][2]string{{"path", FirstStartTemplate}}, "instances", instance, "metadata", "templates")},
		{"UpdateInstanceMetadata", http.MethodPatch, uri(project, nil, "instances", instance, "metadata")},
	} {
		if err := f.call(r.op, project+"/"+instance, r.method, r.path); err != nil {
			return fail(err)
		}
	}
	fi, err := f.findInstance(project, instance)
	if err != nil {
		return fail(err)
	}
	if fi.inst.Type == "virtual-machine" {
		return fail(statusErr(http.StatusBadRequest, "the fake renders templates of containers only"))
	}
	for _, nf := range files {
		fi.firstStart = slices.DeleteFunc(fi.firstStart, func(o NewFile) bool { return o.Path == nf.Path })
		fi.firstStart = append(fi.firstStart, NewFile{Path: nf.Path, Content: slices.Clone(nf.Content), Mode: nf.Mode})
	}
	return nil
}

// DropFirstStartFiles implements FirstStartWriter.
func (f *Fake) DropFirstStartFiles(ctx context.Context, project, instance string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error {
		return wrap(err, "removing first-start files of", "instance", project, instance)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := f.call("InstanceMetadata", project+"/"+instance, http.MethodGet, uri(project, nil, "instances", instance, "metadata")); err != nil {
		return fail(err)
	}
	fi, err := f.findInstance(project, instance)
	if err != nil {
		return fail(err)
	}
	if len(fi.firstStart) == 0 {
		return nil
	}
	if err := f.call("UpdateInstanceMetadata", project+"/"+instance, http.MethodPut, uri(project, nil, "instances", instance, "metadata")); err != nil {
		return fail(err)
	}
	fi.firstStart = nil
	return nil
}

// renderFirstStart writes the first-start files of a container at its
// first start, as Incus renders templates: missing directories 0755, the
// files with their mode (an existing file keeps its own). Called with
// f.mu held, before the instance is marked running.
func (f *Fake) renderFirstStart(fi *fakeInstance) error {
	if fi.inst.Config["volatile.apply_template"] != "create" || len(fi.firstStart) == 0 {
		return nil
	}
	uuid := fi.inst.Config["volatile.uuid"]
	if f.files == nil {
		f.files = map[fileKey]InstanceFile{}
	}
	for _, nf := range fi.firstStart {
		var dirs []string
		for d := path.Dir(nf.Path); d != "/" && d != "/etc"; d = path.Dir(d) {
			dirs = append(dirs, d)
		}
		slices.Reverse(dirs)
		for _, d := range dirs {
			if old, ok := f.files[fileKey{uuid, d}]; ok && !old.Dir {
				return statusErr(http.StatusInternalServerError, "mkdir %s: not a directory", d)
			} else if !ok {
				f.files[fileKey{uuid, d}] = InstanceFile{Mode: 0o755, Dir: true}
			}
		}
		mode := nf.Mode
		if old, ok := f.files[fileKey{uuid, nf.Path}]; ok {
			if old.Dir {
				return statusErr(http.StatusInternalServerError, "Failed to create template file: open %s: is a directory", nf.Path)
			}
			mode = old.Mode
		}
		f.files[fileKey{uuid, nf.Path}] = InstanceFile{Content: slices.Clone(nf.Content), Mode: mode}
	}
	return nil
}
