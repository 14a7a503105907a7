package lifecycle

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/internal/incusx"
)

// protectionKey is the Incus key that refuses an instance's deletion.
const protectionKey = "security.protection.delete"

// Skip reasons printed after `skipped (`.
const (
	reasonProtected       = "protected; pass --force to delete it"
	reasonProtectedVolume = "protected volume; pass --force to delete it"
	reasonAdopted         = "adopted; pass --force to delete it"
	reasonAdoptedProject  = "in adopted project %s; pass --force to delete it"
)

// FlushOptions are the inputs of Flush.
type FlushOptions struct {
	Server incusx.Server
	// Infra is project_name: only objects whose user.anklume.managed is
	// truthy and whose user.anklume.infra is Infra are touched (§5.1),
	// plus the disp instances (user.anklume.disp) of Infra in its projects.
	Infra string
	// Domains restricts the run to these unprefixed domains (`destroy
	// --limit`): objects whose user.anklume.domain is one of them, and
	// everything owned inside their projects. Empty means every owned
	// object (`flush`).
	Domains []string
	// Force deletes protected instances (unsetting the protection first),
	// protected storage volumes and adopted objects.
	Force bool
	// Out receives one progress line per object; ErrOut one
	// `error: <kind> <name>: <err>` line per failure.
	Out    io.Writer
	ErrOut io.Writer
}

// Result counts what Flush did (the summary line of §12.2).
type Result struct {
	// Destroyed counts deleted objects.
	Destroyed int
	// Skipped counts owned objects left in place: protected, adopted, or
	// still used by (or holding) an object that stays.
	Skipped int
	// Failed counts failed requests; Errors holds them.
	Failed int
	Errors []error
}

// Summary returns `<cmd>: <n> destroyed, <m> skipped (protected), <k> failed`.
func (r *Result) Summary(cmd string) string {
	return fmt.Sprintf("%s: %d destroyed, %d skipped (protected), %d failed", cmd, r.Destroyed, r.Skipped, r.Failed)
}

// flusher holds one Flush run.
type flusher struct {
	ctx  context.Context
	opts FlushOptions
	res  *Result

	// projects are the owned projects in scope, by name.
	projects map[string]*api.Project
	// gone holds the objects deleted so far, as used_by URLs
	// ("/1.0/instances/<n>?project=<p>") and "project:<p>".
	gone map[string]bool
	// stays holds every instance of an in-scope project, and every
	// instance elsewhere, that is still there: project/name → instance.
	stays map[string]*api.Instance
	// keptInProject lists, per in-scope project, the objects still in it.
	keptInProject map[string][]string
}

// Flush runs flush steps 1–7 of SPEC.md §12.2 in order (destroy runs the
// same with Domains set; step 2 only lists the images of projects with
// features.images=true, and only when the server is an
// incusx.ImageStore):
//
//  1. delete owned and disp instances in owned projects (protected ones
//     skipped unless Force, which first unsets the protection; running
//     ones are stopped first);
//  2. delete images held by owned projects;
//  3. delete owned profiles other than default;
//  4. remove the devices of each owned project's default profile;
//  5. delete owned storage volumes (protected ones skipped unless Force);
//  6. delete owned projects that are now empty;
//  7. delete owned bridges.
//
// Adopted objects, and everything in an adopted project, are skipped
// unless Force. An object still used by an object that stays (a skipped
// instance uses its profiles, volumes and bridge) is skipped too, so a
// protected instance leaves a run without failures. Each failure is
// reported and the run goes on. The error is only for the reads that
// come first.
func Flush(ctx context.Context, opts FlushOptions) (*Result, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.ErrOut == nil {
		opts.ErrOut = io.Discard
	}
	srv := opts.Server
	f := &flusher{ctx: ctx, opts: opts, res: &Result{}, projects: map[string]*api.Project{},
		gone: map[string]bool{}, stays: map[string]*api.Instance{}, keptInProject: map[string][]string{}}

	projects, err := srv.Projects(ctx)
	if err != nil {
		return nil, err
	}
	for i := range projects {
		p := &projects[i]
		if f.owned(p.Config) && f.inScope(p.Config, "") {
			f.projects[p.Name] = p
		}
	}
	instances, err := srv.Instances(ctx)
	if err != nil {
		return nil, err
	}
	profiles, err := srv.Profiles(ctx)
	if err != nil {
		return nil, err
	}
	pools, err := srv.StoragePools(ctx)
	if err != nil {
		return nil, err
	}
	var volumes []volume
	for _, pool := range pools {
		vols, err := srv.StorageVolumes(ctx, pool.Name)
		if err != nil {
			return nil, err
		}
		for i := range vols {
			volumes = append(volumes, volume{pool: pool.Name, v: &vols[i]})
		}
	}
	networks, err := srv.Networks(ctx)
	if err != nil {
		return nil, err
	}

	f.instances(instances)
	f.images()
	f.profiles(profiles)
	f.defaultProfiles(profiles)
	f.volumes(volumes)
	f.deleteProjects()
	f.networks(networks)
	return f.res, nil
}

// volume is a custom volume and its pool.
type volume struct {
	pool string
	v    *api.StorageVolume
}

func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

// owned reports whether cfg marks an object of this infrastructure.
func (f *flusher) owned(cfg map[string]string) bool {
	return truthy(cfg[incus.KeyManaged]) && cfg[incus.KeyInfra] == f.opts.Infra
}

// inScope reports whether an owned object is in scope: always for flush;
// for destroy, when its domain key names a --limit domain or it lives in
// an in-scope project.
func (f *flusher) inScope(cfg map[string]string, project string) bool {
	if len(f.opts.Domains) == 0 {
		return true
	}
	if _, ok := f.projects[project]; ok && project != "" {
		return true
	}
	return slices.Contains(f.opts.Domains, cfg[incus.KeyDomain])
}

// adoptedReason returns why an owned object in project is kept as
// adopted, or "" (always "" with Force).
func (f *flusher) adoptedReason(cfg map[string]string, project string) string {
	if f.opts.Force {
		return ""
	}
	if truthy(cfg[incus.KeyAdopted]) {
		return reasonAdopted
	}
	if p, ok := f.projects[project]; ok && truthy(p.Config[incus.KeyAdopted]) {
		return fmt.Sprintf(reasonAdoptedProject, project)
	}
	return ""
}

func usedURL(kind, project, name string) string {
	return api.NewURL().Path("1.0", kind, name).Project(project).String()
}

func objName(project, name string) string {
	if project == "" {
		return name
	}
	return project + "/" + name
}

// done, skip and fail print one progress line and count it.
func (f *flusher) done(kind, name, verb string) {
	fmt.Fprintf(f.opts.Out, "- %s %s: %s\n", kind, name, verb)
}

func (f *flusher) skip(kind, name, reason string) {
	f.res.Skipped++
	fmt.Fprintf(f.opts.Out, "! %s %s: skipped (%s)\n", kind, name, reason)
}

func (f *flusher) fail(kind, name string, err error) {
	f.res.Failed++
	f.res.Errors = append(f.res.Errors, fmt.Errorf("%s %s: %w", kind, name, err))
	fmt.Fprintf(f.opts.Out, "- %s %s: failed\n", kind, name)
	fmt.Fprintf(f.opts.ErrOut, "error: %s %s: %s\n", kind, name, err)
}

// keep records an object that stays in an in-scope project.
func (f *flusher) keep(project, what string) {
	if _, ok := f.projects[project]; ok {
		f.keptInProject[project] = append(f.keptInProject[project], what)
	}
}

// Step 1: instances.
func (f *flusher) instances(all []api.Instance) {
	for i := range all {
		inst := &all[i]
		key := objName(inst.Project, inst.Name)
		f.stays[key] = inst
		_, inProject := f.projects[inst.Project]
		owned := f.owned(inst.Config)
		disp := truthy(inst.Config[incus.KeyDisp]) && inst.Config[incus.KeyInfra] == f.opts.Infra
		if !inProject || !(owned || disp) {
			f.keep(inst.Project, "instance "+key)
			continue
		}
		if r := f.adoptedReason(inst.Config, inst.Project); r != "" {
			f.skip("instance", key, r)
			f.keep(inst.Project, "instance "+key)
			continue
		}
		protected := truthy(inst.ExpandedConfig[protectionKey])
		if protected && !f.opts.Force {
			f.skip("instance", key, reasonProtected)
			f.keep(inst.Project, "instance "+key)
			continue
		}
		if err := f.deleteInstance(inst, protected); err != nil {
			f.fail("instance", key, err)
			f.keep(inst.Project, "instance "+key)
			continue
		}
		delete(f.stays, key)
		f.gone[usedURL("instances", inst.Project, inst.Name)] = true
		f.res.Destroyed++
		f.done("instance", key, "deleted")
	}
}

// deleteInstance unsets the protection (Force), stops and deletes one
// instance. An ephemeral instance that vanished when it stopped counts as
// deleted.
func (f *flusher) deleteInstance(inst *api.Instance, protected bool) error {
	srv, ctx := f.opts.Server, f.ctx
	if protected {
		cur, etag, err := srv.Instance(ctx, inst.Project, inst.Name)
		if err != nil {
			return err
		}
		put := cur.Writable()
		put.Config = maps.Clone(put.Config)
		if put.Config == nil {
			put.Config = map[string]string{}
		}
		if truthy(put.Config[protectionKey]) {
			delete(put.Config, protectionKey)
		}
		if truthy(cur.ExpandedConfig[protectionKey]) && !truthy(cur.Config[protectionKey]) {
			put.Config[protectionKey] = "false" // set by a profile: override it
		}
		if err := srv.UpdateInstance(ctx, inst.Project, inst.Name, put, etag); err != nil {
			return err
		}
	}
	if inst.StatusCode == api.Running || inst.Status == "Running" || inst.Status == "Frozen" {
		err := srv.UpdateInstanceState(ctx, inst.Project, inst.Name,
			api.InstanceStatePut{Action: incusx.ActionStop, Force: true, Timeout: -1})
		if err != nil && !incusx.IsNotFound(err) {
			return err
		}
	}
	if err := srv.DeleteInstance(ctx, inst.Project, inst.Name); err != nil && !incusx.IsNotFound(err) {
		return err
	}
	return nil
}

// sortedProjects returns the in-scope project names, sorted.
func (f *flusher) sortedProjects() []string {
	var names []string
	for n := range f.projects {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Step 2: images of owned projects with their own images.
func (f *flusher) images() {
	store, ok := f.opts.Server.(incusx.ImageStore)
	if !ok {
		return
	}
	for _, pn := range f.sortedProjects() {
		p := f.projects[pn]
		if !truthy(p.Config["features.images"]) || pn == incusx.DefaultProject {
			continue
		}
		imgs, err := store.ProjectImages(f.ctx, pn)
		if err != nil {
			f.fail("project", pn, err)
			f.keep(pn, "images")
			continue
		}
		for _, img := range imgs {
			name := objName(pn, img.Fingerprint)
			if r := f.adoptedReason(nil, pn); r != "" {
				f.skip("image", name, r)
				f.keep(pn, "image "+name)
				continue
			}
			if err := store.DeleteImage(f.ctx, pn, img.Fingerprint); err != nil && !incusx.IsNotFound(err) {
				f.fail("image", name, err)
				f.keep(pn, "image "+name)
				continue
			}
			f.res.Destroyed++
			f.done("image", name, "deleted")
		}
	}
}

// usersOf lists the staying instances for which use reports true.
func (f *flusher) usersOf(use func(*api.Instance) bool) []string {
	var out []string
	for k, inst := range f.stays {
		if use(inst) {
			out = append(out, "instance "+k)
		}
	}
	slices.Sort(out)
	return out
}

func inUse(users []string) string {
	return "in use by " + strings.Join(users, ", ")
}

// Step 3: profiles other than default.
func (f *flusher) profiles(all []api.Profile) {
	for i := range all {
		p := &all[i]
		key := objName(p.Project, p.Name)
		if p.Name == incus.DefaultProfile {
			continue
		}
		if !f.owned(p.Config) || !f.inScope(p.Config, p.Project) {
			f.keep(p.Project, "profile "+key)
			continue
		}
		if r := f.adoptedReason(p.Config, p.Project); r != "" {
			f.skip("profile", key, r)
			f.keep(p.Project, "profile "+key)
			continue
		}
		if users := f.usersOf(func(inst *api.Instance) bool {
			return inst.Project == p.Project && slices.Contains(inst.Profiles, p.Name)
		}); len(users) > 0 {
			f.skip("profile", key, inUse(users))
			f.keep(p.Project, "profile "+key)
			continue
		}
		if err := f.opts.Server.DeleteProfile(f.ctx, p.Project, p.Name); err != nil && !incusx.IsNotFound(err) {
			f.fail("profile", key, err)
			f.keep(p.Project, "profile "+key)
			continue
		}
		f.gone[usedURL("profiles", p.Project, p.Name)] = true
		f.res.Destroyed++
		f.done("profile", key, "deleted")
	}
}

// Step 4: the devices of each owned project's default profile.
func (f *flusher) defaultProfiles(all []api.Profile) {
	for i := range all {
		p := &all[i]
		if p.Name != incus.DefaultProfile {
			continue
		}
		if _, ok := f.projects[p.Project]; !ok || len(p.Devices) == 0 {
			continue
		}
		key := objName(p.Project, p.Name)
		if r := f.adoptedReason(p.Config, p.Project); r != "" {
			f.skip("profile", key, r)
			continue
		}
		if users := f.usersOf(func(inst *api.Instance) bool {
			return inst.Project == p.Project && slices.Contains(inst.Profiles, p.Name)
		}); len(users) > 0 {
			f.skip("profile", key, inUse(users))
			continue
		}
		if err := f.clearDevices(p.Project); err != nil {
			f.fail("profile", key, err)
			continue
		}
		f.gone[usedURL("profiles", p.Project, p.Name)] = true
		f.done("profile", key, "devices removed")
	}
}

// clearDevices removes every device of a project's default profile.
func (f *flusher) clearDevices(project string) error {
	srv := f.opts.Server
	cur, etag, err := srv.Profile(f.ctx, project, incus.DefaultProfile)
	if err != nil {
		return err
	}
	put := cur.Writable()
	put.Devices = map[string]map[string]string{}
	return srv.UpdateProfile(f.ctx, project, incus.DefaultProfile, put, etag)
}

// Step 5: storage volumes.
func (f *flusher) volumes(all []volume) {
	for _, vol := range all {
		v := vol.v
		key := objName(v.Project, v.Name)
		if !f.owned(v.Config) || !f.inScope(v.Config, v.Project) {
			f.keep(v.Project, "storage volume "+key)
			continue
		}
		if r := f.adoptedReason(v.Config, v.Project); r != "" {
			f.skip("storage volume", key, r)
			f.keep(v.Project, "storage volume "+key)
			continue
		}
		if !f.opts.Force && !truthy(v.Config[incus.KeyEphemeral]) {
			f.skip("storage volume", key, reasonProtectedVolume)
			f.keep(v.Project, "storage volume "+key)
			continue
		}
		if users := f.usersOf(func(inst *api.Instance) bool {
			if inst.Project != v.Project {
				return false
			}
			for _, d := range inst.ExpandedDevices {
				if d["type"] == "disk" && d["source"] == v.Name && (d["pool"] == vol.pool || d["pool"] == "") {
					return true
				}
			}
			return false
		}); len(users) > 0 {
			f.skip("storage volume", key, inUse(users))
			f.keep(v.Project, "storage volume "+key)
			continue
		}
		if err := f.opts.Server.DeleteStorageVolume(f.ctx, v.Project, vol.pool, v.Name); err != nil && !incusx.IsNotFound(err) {
			f.fail("storage volume", key, err)
			f.keep(v.Project, "storage volume "+key)
			continue
		}
		f.res.Destroyed++
		f.done("storage volume", key, "deleted")
	}
}

// Step 6: projects that are now empty.
func (f *flusher) deleteProjects() {
	for _, pn := range f.sortedProjects() {
		p := f.projects[pn]
		if pn == incusx.DefaultProject {
			continue
		}
		if r := f.adoptedReason(p.Config, ""); r != "" {
			f.skip("project", pn, r)
			continue
		}
		if kept := f.keptInProject[pn]; len(kept) > 0 {
			f.skip("project", pn, "not empty: "+strings.Join(kept, ", "))
			continue
		}
		if err := f.opts.Server.DeleteProject(f.ctx, pn); err != nil && !incusx.IsNotFound(err) {
			f.fail("project", pn, err)
			continue
		}
		f.gone["project:"+pn] = true
		f.res.Destroyed++
		f.done("project", pn, "deleted")
	}
}

// Step 7: bridges. A bridge still used by an object that stays (its
// used_by, minus what this run deleted) is skipped.
func (f *flusher) networks(all []api.Network) {
	for i := range all {
		n := &all[i]
		if !f.owned(n.Config) || !f.inScope(n.Config, "") {
			continue
		}
		if !f.opts.Force && truthy(n.Config[incus.KeyAdopted]) {
			f.skip("network", n.Name, reasonAdopted)
			continue
		}
		if users := f.stillUsing(n.UsedBy); len(users) > 0 {
			f.skip("network", n.Name, inUse(users))
			continue
		}
		if err := f.opts.Server.DeleteNetwork(f.ctx, n.Name); err != nil && !incusx.IsNotFound(err) {
			f.fail("network", n.Name, err)
			continue
		}
		f.res.Destroyed++
		f.done("network", n.Name, "deleted")
	}
}

// stillUsing returns the used_by entries of objects that were not deleted
// (nor emptied of their devices, nor deleted with their project), as
// "<kind> <project>/<name>".
func (f *flusher) stillUsing(usedBy []string) []string {
	var out []string
	for _, u := range usedBy {
		if f.gone[u] {
			continue
		}
		kind, project, name := parseUsedBy(u)
		if f.gone["project:"+project] {
			continue
		}
		if f.gone[usedURL(kind, project, name)] {
			continue
		}
		out = append(out, strings.TrimSuffix(kind, "s")+" "+objName(project, name))
	}
	slices.Sort(out)
	return out
}

// parseUsedBy splits "/1.0/<kind>/<name>?project=<p>" (project default
// when absent).
func parseUsedBy(u string) (kind, project, name string) {
	pu, err := url.Parse(u)
	if err != nil {
		return "", incusx.DefaultProject, u
	}
	parts := strings.Split(strings.TrimPrefix(pu.Path, "/1.0/"), "/")
	project = pu.Query().Get("project")
	if project == "" {
		project = incusx.DefaultProject
	}
	if len(parts) >= 2 {
		return parts[0], project, strings.Join(parts[1:], "/")
	}
	return parts[0], project, ""
}
