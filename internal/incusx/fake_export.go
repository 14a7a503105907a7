package incusx

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/lxc/incus/v6/shared/api"
)

// fakeBackupEntry is the one file of a Fake backup tarball.
const fakeBackupEntry = "backup/index.json"

// fakeBackup is what a Fake backup holds: the instance as written.
type fakeBackup struct {
	Type     string            `json:"type"`
	Instance api.InstancePut   `json:"instance"`
	Files    map[string][]byte `json:"files,omitempty"`
}

// ExportInstance implements InstanceOps: a gzip-compressed tarball holding
// backup/index.json (the instance's type, config, devices and profiles,
// and the files written with WriteInstanceFile).
func (f *Fake) ExportInstance(ctx context.Context, project, name string, w io.Writer) error {
	f.mu.Lock()
	fail := func(err error) error { return wrap(err, "exporting", "instance", project, name) }
	if err := ctx.Err(); err != nil {
		f.mu.Unlock()
		return fail(err)
	}
	if err := f.call("ExportInstance", project+"/"+name, http.MethodPost, uri(project, nil, "instances", name, "backups")); err != nil {
		f.mu.Unlock()
		return fail(err)
	}
	fi, err := f.findInstance(project, name)
	if err != nil {
		f.mu.Unlock()
		return fail(err)
	}
	f.opWait(ctx, project)
	f.report(ctx, "ExportInstance", project+"/"+name)
	b := fakeBackup{Type: fi.inst.Type, Instance: fi.inst.InstancePut, Files: map[string][]byte{}}
	b.Instance.Config, b.Instance.Devices = cloneConfig(b.Instance.Config), cloneDevices(b.Instance.Devices)
	uuid := fi.inst.Config["volatile.uuid"]
	for k, v := range f.files {
		if k.uuid == uuid && !v.Dir {
			b.Files[k.path] = slices.Clone(v.Content)
		}
	}
	f.mu.Unlock()

	data, err := json.Marshal(b)
	if err != nil {
		return fail(err)
	}
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: fakeBackupEntry, Mode: 0o600, Size: int64(len(data))}); err != nil {
		return fail(err)
	}
	if _, err := tw.Write(data); err != nil {
		return fail(err)
	}
	if err := tw.Close(); err != nil {
		return fail(err)
	}
	return fail(zw.Close())
}

// readFakeBackup reads a tarball that ExportInstance wrote.
func readFakeBackup(r io.Reader) (*fakeBackup, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, statusErr(http.StatusBadRequest, "Invalid backup file: %v", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, statusErr(http.StatusBadRequest, "Invalid backup file: no %s", fakeBackupEntry)
		}
		if err != nil {
			return nil, statusErr(http.StatusBadRequest, "Invalid backup file: %v", err)
		}
		if h.Name != fakeBackupEntry {
			continue
		}
		var b fakeBackup
		if err := json.NewDecoder(tr).Decode(&b); err != nil {
			return nil, statusErr(http.StatusBadRequest, "Invalid backup file: %v", err)
		}
		return &b, nil
	}
}

// ImportInstance implements InstanceOps.
func (f *Fake) ImportInstance(ctx context.Context, project, name string, r io.Reader) error {
	fail := func(err error) error { return wrap(err, "importing", "instance", project, name) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	b, rerr := readFakeBackup(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ImportInstance", project+"/"+name, http.MethodPost, uri(project, nil, "instances")); err != nil {
		return fail(err)
	}
	if rerr != nil {
		return fail(rerr)
	}
	if err := f.needProject(project); err != nil {
		return fail(err)
	}
	f.opWait(ctx, project)
	if _, ok := f.instances[pkey{project, name}]; ok {
		return fail(statusErr(http.StatusConflict, "Instance %q already exists", name))
	}
	put := b.Instance
	put.Config, put.Devices = cloneConfig(put.Config), cloneDevices(put.Devices)
	put.Profiles = slices.Clone(put.Profiles)
	if err := f.addCopy(project, name, b.Type, put); err != nil {
		return fail(err)
	}
	uuid := f.instances[pkey{project, name}].inst.Config["volatile.uuid"]
	if len(b.Files) > 0 && f.files == nil {
		f.files = map[fileKey]InstanceFile{}
	}
	for p, content := range b.Files {
		f.files[fileKey{uuid, p}] = InstanceFile{Content: content, Mode: 0o644}
	}
	return nil
}

// addCopy adds a stopped instance made from put (an import or a copy):
// volatile.* keys are dropped and new ones set, devices are checked.
func (f *Fake) addCopy(project, name, typ string, put api.InstancePut) error {
	for k := range put.Config {
		if strings.HasPrefix(k, "volatile.") {
			delete(put.Config, k)
		}
	}
	inst := api.Instance{Name: name, Project: project, Type: typ, Location: "none",
		Status: "Stopped", StatusCode: api.Stopped, CreatedAt: f.now().UTC(), InstancePut: put}
	if inst.Profiles == nil {
		inst.Profiles = []string{}
	}
	if err := f.expand(project, &inst); err != nil {
		return err
	}
	if err := f.checkDevices(project, inst.ExpandedDevices); err != nil {
		return err
	}
	f.seq++
	inst.Config["volatile.uuid"] = fmt.Sprintf("00000000-0000-4000-9000-%012d", f.seq)
	if typ == "container" {
		inst.Config["volatile.idmap.base"] = "0"
		inst.Config["volatile.idmap.next"] = "[]"
		inst.Config["volatile.last_state.idmap"] = "[]"
	}
	_ = f.expand(project, &inst)
	f.instances[pkey{project, name}] = &fakeInstance{inst: inst}
	return nil
}

// CopySnapshot implements InstanceOps.
func (f *Fake) CopySnapshot(ctx context.Context, project, instance, snapshot, newName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error {
		return wrap(err, fmt.Sprintf("copying snapshot %q of", snapshot), "instance", project, instance)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := f.call("CopySnapshot", project+"/"+instance, http.MethodPost, uri(project, nil, "instances")); err != nil {
		return fail(err)
	}
	fi, err := f.findInstance(project, instance)
	if err != nil {
		return fail(err)
	}
	i := slices.IndexFunc(fi.snaps, func(s api.InstanceSnapshot) bool { return s.Name == snapshot })
	if i < 0 {
		return fail(statusErr(http.StatusNotFound, "Failed to fetch snapshot %q of instance %q in project %q: Instance_snapshot not found", snapshot, instance, project))
	}
	f.opWait(ctx, project)
	if _, ok := f.instances[pkey{project, newName}]; ok {
		return fail(statusErr(http.StatusConflict, "Instance %q already exists", newName))
	}
	s := fi.snaps[i]
	put := api.InstancePut{Architecture: s.Architecture, Config: cloneConfig(s.Config), Devices: cloneDevices(s.Devices),
		Profiles: slices.Clone(s.Profiles), Description: s.Description, Ephemeral: s.Ephemeral}
	return fail(f.addCopy(project, newName, fi.inst.Type, put))
}

// PublishSnapshot implements InstanceOps: the alias is added to the default
// project's aliases.
func (f *Fake) PublishSnapshot(ctx context.Context, project, instance, snapshot, alias string) error {
	f.mu.Lock()
	fail := func(err error) error {
		return wrap(err, fmt.Sprintf("publishing snapshot %q of", snapshot), "instance", project, instance)
	}
	if err := ctx.Err(); err != nil {
		f.mu.Unlock()
		return fail(err)
	}
	if err := f.call("PublishSnapshot", project+"/"+instance, http.MethodPost, uri(project, nil, "images")); err != nil {
		f.mu.Unlock()
		return fail(err)
	}
	fi, err := f.findInstance(project, instance)
	if err != nil {
		f.mu.Unlock()
		return fail(err)
	}
	if !slices.ContainsFunc(fi.snaps, func(s api.InstanceSnapshot) bool { return s.Name == snapshot }) {
		f.mu.Unlock()
		return fail(statusErr(http.StatusNotFound, "Instance snapshot not found"))
	}
	f.opWait(ctx, project)
	f.report(ctx, "PublishSnapshot", project+"/"+instance)
	exists := slices.ContainsFunc(f.aliases, func(a api.ImageAliasesEntry) bool { return a.Name == alias })
	f.mu.Unlock()
	if exists {
		return fail(statusErr(http.StatusConflict, "Alias already exists"))
	}
	f.AddImageAlias(alias)
	return nil
}

// Exec implements InstanceOps. The fake has no guest: it runs a few
// built-in commands and answers 127 for anything else:
//
//	true, false, echo ARGS..., cat (copies stdin), sh -c "exit N".
func (f *Fake) Exec(ctx context.Context, project, instance string, argv []string, req ExecIO) (int, error) {
	f.mu.Lock()
	fail := func(err error) (int, error) {
		return -1, wrap(err, "running a command in", "instance", project, instance)
	}
	if err := ctx.Err(); err != nil {
		f.mu.Unlock()
		return fail(err)
	}
	if err := f.call("Exec", project+"/"+instance, http.MethodPost, uri(project, nil, "instances", instance, "exec")); err != nil {
		f.mu.Unlock()
		return fail(err)
	}
	fi, err := f.findInstance(project, instance)
	if err != nil {
		f.mu.Unlock()
		return fail(err)
	}
	if fi.inst.StatusCode != api.Running {
		f.mu.Unlock()
		return fail(statusErr(http.StatusBadRequest, "Instance is not running"))
	}
	f.opWait(ctx, project)
	f.mu.Unlock()
	out, errOut := req.Stdout, req.Stderr
	if out == nil {
		out = io.Discard
	}
	if errOut == nil {
		errOut = io.Discard
	}
	return fakeRun(argv, req.Stdin, out, errOut), nil
}

// fakeRun runs one built-in command of the fake guest.
func fakeRun(argv []string, in io.Reader, out, errOut io.Writer) int {
	if len(argv) == 0 {
		return 127
	}
	switch argv[0] {
	case "true":
		return 0
	case "false":
		return 1
	case "echo":
		fmt.Fprintln(out, strings.Join(argv[1:], " "))
		return 0
	case "cat":
		if in != nil {
			_, _ = io.Copy(out, in)
		}
		return 0
	case "sh":
		if len(argv) == 3 && argv[1] == "-c" {
			if rest, ok := strings.CutPrefix(argv[2], "exit "); ok {
				if n, err := strconv.Atoi(strings.TrimSpace(rest)); err == nil {
					return n & 0xff
				}
			}
		}
	}
	fmt.Fprintf(errOut, "%s: not found\n", argv[0])
	return 127
}

// FakeBackupFiles returns the files held by a Fake backup tarball, for
// tests.
func FakeBackupFiles(data []byte) (map[string][]byte, error) {
	b, err := readFakeBackup(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return maps.Clone(b.Files), nil
}
