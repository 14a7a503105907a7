package incusx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lxc/incus/v6/shared/api"
)

// Fake is an in-memory Server for unit tests. It behaves like an Incus 6.0
// daemon for what a reconciler relies on (contract_test.go checks the same
// scenarios against both), and it runs virtual machines, which the test
// daemon cannot:
//
//   - objects must exist, or not exist, with Incus's status codes and
//     messages (404 "Project not found", 409 `Network "x" already exists`…);
//   - every object has an ETag that changes with its writable fields; an
//     update with a non-empty stale ETag fails with 412;
//   - a new project gets the features.* defaults and, with
//     features.profiles, its own "default" profile; a project without a
//     feature uses the default project's profiles, volumes or images;
//   - an instance needs its profiles, a root disk, its networks and custom
//     volumes; it must be stopped to be deleted, renamed or moved; a
//     truthy security.protection.delete refuses its deletion; a PUT that
//     drops its volatile.idmap.* keys is refused; an ephemeral instance
//     disappears when it stops;
//   - a project must be empty to be deleted, and its features.* keys can
//     only change while it is empty; a network, profile or custom volume in
//     use cannot be deleted;
//   - snapshots take snapshots.expiry when the request has no expiry.
//
// A cluster (AddClusterMember, AddClusterGroup, SetMemberStatus) is
// modelled for what placement relies on:
//
//   - a network is created the cluster way: CreateNetworkOn leaves it
//     "Pending" on each member, with member-specific config only, and
//     CreateNetwork without a target then creates it on every member; it
//     is refused while the network is not pending on every member, or
//     while a member is offline (Incus notifies every member);
//   - an instance is created on its target member, on the member of a
//     "@group" target with the fewest instances, or, without a target,
//     on the member with the fewest instances (ties by name); a target
//     that is offline or not a member is refused;
//   - an instance on an offline member is listed as Incus lists it: name,
//     project, type, location and status "Error", without config; every
//     other request on it fails.
//
// Not modelled: the restricted.* checks of projects, image downloads (any remote image exists) and the guest itself (a stop
// always succeeds at once).
//
// Every call is recorded in Log with the URI the real client would send.
// Fail injects an error into a call.
type Fake struct {
	mu sync.Mutex

	log       RequestLog
	now       func() time.Time
	server    api.Server
	pools     map[string]*api.StoragePool
	projects  map[string]*api.Project
	networks  map[string]*api.Network
	profiles  map[pkey]*api.Profile
	instances map[pkey]*fakeInstance
	volumes   map[vkey]*api.StorageVolume
	aliases   []api.ImageAliasesEntry
	members   []api.ClusterMember
	metadata  api.MetadataConfiguration
	resources api.Resources
	remotes   map[string]ImageRemote
	failures  map[fkey]error
	// interrupted holds the calls that end half-made (InterruptCreateNetwork).
	interrupted map[fkey]bool
	seq         int
	// files holds what WriteInstanceFile wrote (files.go).
	files map[fileKey]InstanceFile
	// progress holds the progress texts a call reports (SetProgress).
	progress map[fkey]fakeProgress
}

type fakeProgress struct {
	pause time.Duration
	texts []string
}

var _ Server = (*Fake)(nil)

// pkey names a project-scoped object.
type pkey struct{ project, name string }

// vkey names a custom volume.
type vkey struct{ pool, project, name string }

// fkey names an injected failure.
type fkey struct{ op, name string }

type fakeInstance struct {
	inst  api.Instance
	snaps []api.InstanceSnapshot
	// firstStart holds the files its first start writes
	// (WriteAtFirstStart).
	firstStart []NewFile
}

// RequiredExtensions lists the API extensions NewFake's server advertises:
// first the three that SPEC.md §9.1 requires (instance_all_projects,
// profiles_all_projects, storage_volumes_all_projects), then the ones the
// other calls use. Remove one with SetServer to test the §9.1 error.
func RequiredExtensions() []string {
	return []string{
		"instance_all_projects", "profiles_all_projects", "storage_volumes_all_projects",
		"metadata_configuration", "instance_project_move", "projects", "network",
		"storage", "resources", "clustering",
	}
}

// NewFake returns a fake server like the test daemon of
// scripts/incus-test-env.sh: project default, storage pool "default" (dir),
// a "default" profile with a root disk on it, and the local image alias
// "anklume-test". Remote "images" is known for ResolveImage.
func NewFake() *Fake {
	f := &Fake{
		now:         time.Now,
		pools:       map[string]*api.StoragePool{},
		projects:    map[string]*api.Project{},
		networks:    map[string]*api.Network{},
		profiles:    map[pkey]*api.Profile{},
		instances:   map[pkey]*fakeInstance{},
		volumes:     map[vkey]*api.StorageVolume{},
		remotes:     map[string]ImageRemote{},
		failures:    map[fkey]error{},
		interrupted: map[fkey]bool{},
	}
	f.server = api.Server{
		ServerUntrusted: api.ServerUntrusted{
			APIExtensions: RequiredExtensions(),
			APIStatus:     "stable",
			APIVersion:    "1.0",
			Auth:          "trusted",
		},
		Environment: api.ServerEnvironment{
			Architectures: []string{"x86_64", "i686"},
			Server:        "incus",
			ServerName:    "fake",
			ServerVersion: "6.0.4",
			Driver:        "lxc | qemu",
			Project:       DefaultProject,
		},
	}
	f.pools["default"] = &api.StoragePool{
		Name: "default", Driver: "dir", Status: "Created", Locations: []string{"none"},
		StoragePoolPut: api.StoragePoolPut{Config: api.ConfigMap{"source": "/var/lib/incus/storage-pools/default"}},
	}
	f.projects[DefaultProject] = &api.Project{Name: DefaultProject, ProjectPut: api.ProjectPut{
		Description: "Default Incus project",
		Config: api.ConfigMap{
			"features.images": "true", "features.networks": "true", "features.networks.zones": "true",
			"features.profiles": "true", "features.storage.buckets": "true", "features.storage.volumes": "true",
		},
	}}
	f.profiles[pkey{DefaultProject, "default"}] = &api.Profile{Name: "default", Project: DefaultProject, ProfilePut: api.ProfilePut{
		Description: "Default Incus profile",
		Config:      api.ConfigMap{},
		Devices:     map[string]map[string]string{"root": {"type": "disk", "pool": "default", "path": "/"}},
	}}
	f.AddImageAlias("anklume-test")
	f.resources.CPU.Total = 10
	f.resources.Memory.Total = 40 << 30
	return f
}

var _ OperationWaiter = (*Fake)(nil)

// WaitOperations implements OperationWaiter. The fake's operations end
// before their call returns, so there is never one to wait for; the list
// request is logged.
func (f *Fake) WaitOperations(ctx context.Context, projects []string, timeout time.Duration) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("WaitOperations", "", http.MethodGet, uri("", [][2]string{{"all-projects", "true"}, {"recursion", "1"}}, "operations")); err != nil {
		return 0, wrap(err, "listing", "operations", "", "")
	}
	return 0, nil
}

// Log returns the request log.
func (f *Fake) Log() *RequestLog { return &f.log }

// SetClock replaces the clock (time.Now) used for creation and snapshot
// times.
func (f *Fake) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// SetProgress makes the call op on name (as for Fail; "" is every name)
// report texts, one after the other with pause after each, to the
// ProgressFunc of its context (WithProgress), as the daemon's operation
// metadata does while an image downloads. The calls that report are
// CreateInstance, CreateSnapshot, ExportInstance and PublishSnapshot.
// The fake is held meanwhile.
func (f *Fake) SetProgress(op, name string, pause time.Duration, texts ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.progress == nil {
		f.progress = map[fkey]fakeProgress{}
	}
	f.progress[fkey{op, name}] = fakeProgress{pause: pause, texts: texts}
}

// report sends the progress set for op on name to ctx's ProgressFunc.
func (f *Fake) report(ctx context.Context, op, name string) {
	p, ok := f.progress[fkey{op, name}]
	if !ok {
		p = f.progress[fkey{op, ""}]
	}
	pf := progressOf(ctx)
	for _, t := range p.texts {
		if pf != nil {
			pf(t)
		}
		time.Sleep(p.pause)
	}
}

// Fail makes the calls of Server method op (such as "CreateInstance") on
// the object name fail with err, until Fail is called again with a nil err.
// name is "<project>/<name>" for project-scoped objects, the bare name
// otherwise, the pool for StorageVolumes, and "" to match every call of op.
// The request is still logged, as it would have been sent. The error is
// wrapped like any other.
func (f *Fake) Fail(op, name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.failures, fkey{op, name})
		return
	}
	f.failures[fkey{op, name}] = err
}

// InterruptCreateNetwork makes the next CreateNetwork of name end the way
// an Incus 6.0 daemon ends it when the client goes away while the request
// runs: the database record stays, with the requested config, in status
// "Pending" (Incus's own rollback runs with the cancelled request context
// and cannot remove it), and the call fails with a connection error. An
// instance create or start with a nic on a network that is not "Created"
// then fails as Incus fails it (dnsmasq.hosts is missing).
func (f *Fake) InterruptCreateNetwork(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.interrupted[fkey{"CreateNetwork", name}] = true
}

// SetNetworkStatus sets the status of a network: "Pending" (an
// interrupted create), "Errored" (a create that failed on the host),
// "Created".
func (f *Fake) SetNetworkStatus(name, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.networks[name]; ok {
		n.Status = status
	}
}

// SetServer lets a test change the server description (extensions,
// clustering).
func (f *Fake) SetServer(edit func(*api.Server)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	edit(&f.server)
}

// AddImageAlias adds a local image alias to the default project.
func (f *Fake) AddImageAlias(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sum := sha256.Sum256([]byte(name))
	f.aliases = append(f.aliases, api.ImageAliasesEntry{Name: name, Type: "container",
		ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: hex.EncodeToString(sum[:])}})
}

// AddStoragePool adds a storage pool.
func (f *Fake) AddStoragePool(name, driver string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pools[name] = &api.StoragePool{Name: name, Driver: driver, Status: "Created", Locations: []string{"none"},
		StoragePoolPut: api.StoragePoolPut{Config: api.ConfigMap{}}}
}

// AddClusterMember adds a cluster member and marks the server clustered.
func (f *Fake) AddClusterMember(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.server.Environment.ServerClustered = true
	f.members = append(f.members, api.ClusterMember{ServerName: name, Status: "Online", Architecture: "x86_64",
		URL: "https://" + name + ":8443"})
}

// AddClusterGroup puts existing cluster members into group (without the
// "@").
func (f *Fake) AddClusterGroup(group string, members ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.members {
		if slices.Contains(members, f.members[i].ServerName) && !slices.Contains(f.members[i].Groups, group) {
			f.members[i].Groups = append(f.members[i].Groups, group)
		}
	}
}

// SetMemberStatus sets a cluster member's status: "Offline" stands for a
// member whose daemon is down.
func (f *Fake) SetMemberStatus(name, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.members {
		if f.members[i].ServerName == name {
			f.members[i].Status = status
		}
	}
}

// clustered reports whether the fake is a cluster.
func (f *Fake) clustered() bool { return f.server.Environment.ServerClustered }

// member returns the cluster member named name, or nil.
func (f *Fake) member(name string) *api.ClusterMember {
	for i := range f.members {
		if f.members[i].ServerName == name {
			return &f.members[i]
		}
	}
	return nil
}

// offline reports whether name is a cluster member that is not online.
func (f *Fake) offline(name string) bool {
	m := f.member(name)
	return m != nil && m.Status == "Offline"
}

// memberNames lists the cluster members by name.
func (f *Fake) memberNames() []string {
	var out []string
	for _, m := range f.members {
		out = append(out, m.ServerName)
	}
	slices.Sort(out)
	return out
}

// place picks the member an instance is created on: target itself, the
// online member of a "@group" with the fewest instances, or any online
// member with the fewest instances (ties by name).
func (f *Fake) place(target string) (string, error) {
	if target != "" && !strings.HasPrefix(target, "@") {
		if f.member(target) == nil {
			return "", statusErr(http.StatusNotFound, "Cluster member not found")
		}
		if f.offline(target) {
			return "", statusErr(http.StatusBadRequest, "Target cluster member %q is offline", target)
		}
		return target, nil
	}
	group := strings.TrimPrefix(target, "@")
	count := map[string]int{}
	for _, fi := range f.instances {
		count[fi.inst.Location]++
	}
	best := ""
	for _, name := range f.memberNames() {
		m := f.member(name)
		if m.Status == "Offline" || (group != "" && !slices.Contains(m.Groups, group)) {
			continue
		}
		if best == "" || count[name] < count[best] {
			best = name
		}
	}
	if best == "" {
		return "", statusErr(http.StatusBadRequest, "No suitable cluster member could be found")
	}
	return best, nil
}

// memberSpecificNetworkKeys are the network config keys a per-member
// create may carry (Incus's node-specific keys of a bridge).
var memberSpecificNetworkKeys = []string{"bridge.external_interfaces", "parent"}

// CreateNetworkOn implements Server.
func (f *Fake) CreateNetworkOn(ctx context.Context, member string, req api.NetworksPost) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrapOn(err, "network", "", req.Name, member) }
	if err := f.call("CreateNetworkOn", req.Name, http.MethodPost, api.NewURL().Path("1.0", "networks").Target(member).String()); err != nil {
		return fail(err)
	}
	if !f.clustered() {
		return fail(statusErr(http.StatusBadRequest, "Target only allowed when clustered"))
	}
	if f.member(member) == nil {
		return fail(statusErr(http.StatusNotFound, "Cluster member not found"))
	}
	for k := range req.Config {
		if !slices.Contains(memberSpecificNetworkKeys, k) {
			return fail(statusErr(http.StatusBadRequest, "Config key %q may not be used as member-specific key", k))
		}
	}
	n, ok := f.networks[req.Name]
	switch {
	case !ok:
		typ := req.Type
		if typ == "" {
			typ = "bridge"
		}
		f.networks[req.Name] = &api.Network{Name: req.Name, Type: typ, Managed: true, Status: "Pending",
			Locations: []string{member}, Project: DefaultProject,
			NetworkPut: api.NetworkPut{Config: cloneConfig(req.Config), Description: req.Description}}
	case n.Status != "Pending":
		return fail(statusErr(http.StatusConflict, "The network is already created"))
	case slices.Contains(n.Locations, member):
		return fail(statusErr(http.StatusConflict, "The network already defined on member %q", member))
	default:
		n.Locations = append(n.Locations, member)
		slices.Sort(n.Locations)
	}
	return nil
}

// createClusterNetwork is the final, global create of a network that is
// pending on every member.
func (f *Fake) createClusterNetwork(req api.NetworksPost) error {
	n, ok := f.networks[req.Name]
	if !ok || n.Status != "Pending" {
		if ok {
			return statusErr(http.StatusConflict, "Network %q already exists", req.Name)
		}
		return statusErr(http.StatusBadRequest, "Network not pending on any member (use --target <member> first)")
	}
	var missing []string
	for _, m := range f.memberNames() {
		if !slices.Contains(n.Locations, m) {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		return statusErr(http.StatusBadRequest, "Network not defined on members: %s", strings.Join(missing, ", "))
	}
	for _, m := range f.memberNames() {
		if f.offline(m) {
			return statusErr(http.StatusServiceUnavailable, "Failed to notify peer %s: member is offline", m)
		}
	}
	cfg := cloneConfig(req.Config)
	for k, v := range n.Config {
		cfg[k] = v
	}
	n.Config, n.Description, n.Status = cfg, req.Description, "Created"
	return nil
}

// AddRemote adds an image remote for ResolveImage.
func (f *Fake) AddRemote(name string, r ImageRemote) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.remotes[name] = r
}

// SetResources replaces what Resources returns.
func (f *Fake) SetResources(r api.Resources) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resources = r
}

// SetMetadataConfiguration replaces what MetadataConfiguration returns.
func (f *Fake) SetMetadataConfiguration(m api.MetadataConfiguration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.metadata = m
}

// ---- request log, failures, helpers ----

// uri builds the request URI the Incus client sends.
func uri(project string, query [][2]string, parts ...string) string {
	u := api.NewURL().Path(append([]string{"1.0"}, parts...)...).Project(project)
	for _, q := range query {
		u = u.WithQuery(q[0], q[1])
	}
	return u.String()
}

// call logs a request and returns the injected failure for (op, name).
func (f *Fake) call(op, name, method, path string) error {
	f.log.Add(method, path)
	if err, ok := f.failures[fkey{op, name}]; ok {
		return err
	}
	if err, ok := f.failures[fkey{op, ""}]; ok {
		return err
	}
	return nil
}

// opWait logs the GET .../wait request the client sends after an
// asynchronous call.
func (f *Fake) opWait(ctx context.Context, project string) {
	f.seq++
	timeout := -1
	if d, ok := ctx.Deadline(); ok {
		timeout = int(time.Until(d).Seconds())
	}
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", f.seq)
	f.log.Add(http.MethodGet, uri(project, [][2]string{{"timeout", strconv.Itoa(timeout)}}, "operations", id, "wait"))
}

func statusErr(code int, format string, args ...any) error {
	return api.StatusErrorf(code, format, args...)
}

func etagOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func checkETag(cur, given string) error {
	if given != "" && given != cur {
		return statusErr(http.StatusPreconditionFailed, "ETag doesn't match: %s vs %s", cur, given)
	}
	return nil
}

func cloneConfig(c map[string]string) api.ConfigMap {
	out := api.ConfigMap{}
	maps.Copy(out, c)
	return out
}

func cloneDevices(d map[string]map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for k, v := range d {
		out[k] = maps.Clone(v)
		if out[k] == nil {
			out[k] = map[string]string{}
		}
	}
	return out
}

func isTrue(v string) bool {
	return slices.Contains([]string{"true", "1", "yes", "on"}, strings.ToLower(v))
}

// featureProject is the project whose profiles, volumes or images a project
// uses: itself when it has the feature, else the default project.
func (f *Fake) featureProject(project, feature string) string {
	p, ok := f.projects[project]
	if !ok || project == DefaultProject || p.Config["features."+feature] == "true" {
		return project
	}
	return DefaultProject
}

func (f *Fake) needProject(project string) error {
	if _, ok := f.projects[project]; !ok {
		return statusErr(http.StatusNotFound, "Project not found")
	}
	return nil
}

func usedURL(kind, project, name string) string {
	return uri(project, nil, kind, name)
}

// ---- server, pools ----

// ServerInfo implements Server.
func (f *Fake) ServerInfo(ctx context.Context) (*api.Server, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ServerInfo", "", http.MethodGet, "/1.0"); err != nil {
		return nil, wrap(err, "reading", "server information", "", "")
	}
	s := f.server
	s.APIExtensions = slices.Clone(s.APIExtensions)
	s.Environment.Architectures = slices.Clone(s.Environment.Architectures)
	return &s, nil
}

// StoragePools implements Server.
func (f *Fake) StoragePools(ctx context.Context) ([]api.StoragePool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("StoragePools", "", http.MethodGet, uri("", [][2]string{{"recursion", "1"}}, "storage-pools")); err != nil {
		return nil, wrap(err, "listing", "storage pools", "", "")
	}
	out := []api.StoragePool{}
	for _, name := range slices.Sorted(maps.Keys(f.pools)) {
		p := *f.pools[name]
		p.Config = cloneConfig(p.Config)
		p.Locations = slices.Clone(p.Locations)
		p.UsedBy = f.poolUsedBy(name)
		out = append(out, p)
	}
	return out, nil
}

func (f *Fake) poolUsedBy(pool string) []string {
	var used []string
	for k, fi := range f.instances {
		for _, d := range fi.inst.ExpandedDevices {
			if d["type"] == "disk" && d["path"] == "/" && d["pool"] == pool {
				used = append(used, usedURL("instances", k.project, k.name))
				break
			}
		}
	}
	for k, p := range f.profiles {
		for _, d := range p.Devices {
			if d["type"] == "disk" && d["pool"] == pool {
				used = append(used, usedURL("profiles", k.project, k.name))
				break
			}
		}
	}
	for k := range f.volumes {
		if k.pool == pool {
			used = append(used, uri(k.project, nil, "storage-pools", pool, "volumes", "custom", k.name))
		}
	}
	slices.Sort(used)
	return used
}

// ---- projects ----

func (f *Fake) projectCopy(name string) *api.Project {
	p := *f.projects[name]
	p.Config = cloneConfig(p.Config)
	var used []string
	for k := range f.instances {
		if k.project == name {
			used = append(used, usedURL("instances", k.project, k.name))
		}
	}
	for k := range f.profiles {
		if k.project == name {
			used = append(used, usedURL("profiles", k.project, k.name))
		}
	}
	for k := range f.volumes {
		if k.project == name {
			used = append(used, uri(k.project, nil, "storage-pools", k.pool, "volumes", "custom", k.name))
		}
	}
	slices.Sort(used)
	p.UsedBy = used
	if name == DefaultProject {
		for _, n := range slices.Sorted(maps.Keys(f.networks)) {
			p.UsedBy = append(p.UsedBy, uri("", nil, "networks", n))
		}
	}
	return &p
}

// Projects implements Server.
func (f *Fake) Projects(ctx context.Context) ([]api.Project, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Projects", "", http.MethodGet, uri("", [][2]string{{"recursion", "1"}}, "projects")); err != nil {
		return nil, wrap(err, "listing", "projects", "", "")
	}
	out := []api.Project{}
	for _, name := range slices.Sorted(maps.Keys(f.projects)) {
		out = append(out, *f.projectCopy(name))
	}
	return out, nil
}

// CreateProject implements Server.
func (f *Fake) CreateProject(ctx context.Context, req api.ProjectsPost) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "creating", "project", "", req.Name) }
	if err := f.call("CreateProject", req.Name, http.MethodPost, uri("", nil, "projects")); err != nil {
		return fail(err)
	}
	if req.Name == "" {
		return fail(statusErr(http.StatusBadRequest, "No name provided"))
	}
	if _, ok := f.projects[req.Name]; ok {
		return fail(statusErr(http.StatusInternalServerError,
			`Failed creating project %q: Failed adding database record: Failed to create "projects" entry: UNIQUE constraint failed: projects.name`, req.Name))
	}
	cfg := cloneConfig(req.Config)
	for _, feat := range []string{"features.images", "features.profiles", "features.storage.volumes", "features.storage.buckets"} {
		if _, ok := cfg[feat]; !ok {
			cfg[feat] = "true"
		}
	}
	f.projects[req.Name] = &api.Project{Name: req.Name, ProjectPut: api.ProjectPut{Config: cfg, Description: req.Description}}
	if cfg["features.profiles"] == "true" {
		f.profiles[pkey{req.Name, "default"}] = &api.Profile{Name: "default", Project: req.Name,
			ProfilePut: api.ProfilePut{Description: "Default Incus profile for project " + req.Name, Config: api.ConfigMap{}, Devices: map[string]map[string]string{}}}
	}
	return nil
}

// Project implements Server.
func (f *Fake) Project(ctx context.Context, name string) (*api.Project, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Project", name, http.MethodGet, uri("", nil, "projects", name)); err != nil {
		return nil, "", wrap(err, "reading", "project", "", name)
	}
	if err := f.needProject(name); err != nil {
		return nil, "", wrap(err, "reading", "project", "", name)
	}
	p := f.projectCopy(name)
	return p, etagOf(p.ProjectPut), nil
}

// projectEmpty is Incus's notion of an empty project: no instance, no
// custom volume and no profile other than "default".
func (f *Fake) projectEmpty(name string) bool {
	for k := range f.instances {
		if k.project == name {
			return false
		}
	}
	for k := range f.volumes {
		if k.project == name {
			return false
		}
	}
	for k := range f.profiles {
		if k.project == name && k.name != "default" {
			return false
		}
	}
	return true
}

// UpdateProject implements Server.
func (f *Fake) UpdateProject(ctx context.Context, name string, put api.ProjectPut, etag string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "updating", "project", "", name) }
	if err := f.call("UpdateProject", name, http.MethodPut, uri("", nil, "projects", name)); err != nil {
		return fail(err)
	}
	if err := f.needProject(name); err != nil {
		return fail(err)
	}
	p := f.projects[name]
	if err := checkETag(etagOf(f.projectCopy(name).ProjectPut), etag); err != nil {
		return fail(err)
	}
	changed := false
	for _, k := range slices.Concat(slices.Collect(maps.Keys(p.Config)), slices.Collect(maps.Keys(put.Config))) {
		if strings.HasPrefix(k, "features.") {
			old, hadOld := p.Config[k]
			nw, hasNew := put.Config[k]
			if old != nw || hadOld != hasNew {
				changed = true
			}
		}
	}
	if changed && !f.projectEmpty(name) {
		return fail(statusErr(http.StatusBadRequest, "Features can only be changed on empty projects"))
	}
	p.Config = cloneConfig(put.Config)
	p.Description = put.Description
	return nil
}

// DeleteProject implements Server.
func (f *Fake) DeleteProject(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "deleting", "project", "", name) }
	if err := f.call("DeleteProject", name, http.MethodDelete, uri("", nil, "projects", name)); err != nil {
		return fail(err)
	}
	if name == DefaultProject {
		return fail(statusErr(http.StatusForbidden, "The 'default' project cannot be deleted"))
	}
	if err := f.needProject(name); err != nil {
		return fail(err)
	}
	if !f.projectEmpty(name) {
		return fail(statusErr(http.StatusInternalServerError, "Only empty projects can be removed."))
	}
	delete(f.profiles, pkey{name, "default"})
	delete(f.projects, name)
	return nil
}

// RenameProject implements Server.
func (f *Fake) RenameProject(ctx context.Context, name, newName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "renaming", "project", "", name) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := f.call("RenameProject", name, http.MethodPost, uri("", nil, "projects", name)); err != nil {
		return fail(err)
	}
	if name == DefaultProject {
		return fail(statusErr(http.StatusForbidden, "The 'default' project cannot be renamed"))
	}
	f.opWait(ctx, "")
	if _, ok := f.projects[newName]; ok {
		return fail(statusErr(http.StatusInternalServerError, "A project named %q already exists", newName))
	}
	if err := f.needProject(name); err != nil {
		return fail(statusErr(http.StatusInternalServerError, "Failed loading project %q: Project not found", name))
	}
	if !f.projectEmpty(name) {
		return fail(statusErr(http.StatusInternalServerError, "Only empty projects can be renamed"))
	}
	p := f.projects[name]
	delete(f.projects, name)
	p.Name = newName
	f.projects[newName] = p
	if prof, ok := f.profiles[pkey{name, "default"}]; ok {
		delete(f.profiles, pkey{name, "default"})
		prof.Project = newName
		f.profiles[pkey{newName, "default"}] = prof
	}
	return nil
}

// ---- networks ----

// networkUsers lists the profiles and instances whose devices use a
// network (through "network" or a nic "parent").
func (f *Fake) networkUsers(name string) []string {
	uses := func(devs map[string]map[string]string) bool {
		for _, d := range devs {
			if d["type"] == "nic" && (d["network"] == name || (d["network"] == "" && d["parent"] == name)) {
				return true
			}
		}
		return false
	}
	var used []string
	for k, p := range f.profiles {
		if uses(p.Devices) {
			used = append(used, usedURL("profiles", k.project, k.name))
		}
	}
	for k, fi := range f.instances {
		if uses(fi.inst.Devices) {
			used = append(used, usedURL("instances", k.project, k.name))
		}
	}
	slices.Sort(used)
	return used
}

func (f *Fake) networkCopy(name string) *api.Network {
	n := *f.networks[name]
	n.Config = cloneConfig(n.Config)
	n.Locations = slices.Clone(n.Locations)
	n.UsedBy = f.networkUsers(name)
	return &n
}

// Networks implements Server.
func (f *Fake) Networks(ctx context.Context) ([]api.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Networks", "", http.MethodGet, uri("", [][2]string{{"recursion", "1"}}, "networks")); err != nil {
		return nil, wrap(err, "listing", "networks", "", "")
	}
	out := []api.Network{}
	for _, name := range slices.Sorted(maps.Keys(f.networks)) {
		out = append(out, *f.networkCopy(name))
	}
	return out, nil
}

// CreateNetwork implements Server.
func (f *Fake) CreateNetwork(ctx context.Context, req api.NetworksPost) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "creating", "network", "", req.Name) }
	if err := f.call("CreateNetwork", req.Name, http.MethodPost, uri("", nil, "networks")); err != nil {
		return fail(err)
	}
	if req.Name == "" {
		return fail(statusErr(http.StatusBadRequest, "No name provided"))
	}
	if len(req.Name) > 15 {
		return fail(statusErr(http.StatusBadRequest, "Network name too long"))
	}
	if f.clustered() {
		return fail(f.createClusterNetwork(req))
	}
	if _, ok := f.networks[req.Name]; ok {
		return fail(statusErr(http.StatusConflict, "Network %q already exists", req.Name))
	}
	typ := req.Type
	if typ == "" {
		typ = "bridge"
	}
	cfg := cloneConfig(req.Config)
	f.seq++
	if _, ok := cfg["ipv4.address"]; !ok {
		cfg["ipv4.address"] = fmt.Sprintf("10.254.%d.1/24", f.seq%250)
		cfg["ipv4.nat"] = "true"
	}
	if _, ok := cfg["ipv6.address"]; !ok {
		cfg["ipv6.address"] = fmt.Sprintf("fd42:0:0:%x::1/64", f.seq)
		cfg["ipv6.nat"] = "true"
	}
	status := "Created"
	if f.interrupted[fkey{"CreateNetwork", req.Name}] {
		delete(f.interrupted, fkey{"CreateNetwork", req.Name})
		status = "Pending"
	}
	f.networks[req.Name] = &api.Network{Name: req.Name, Type: typ, Managed: true, Status: status,
		Locations: []string{"none"}, Project: DefaultProject,
		NetworkPut: api.NetworkPut{Config: cfg, Description: req.Description}}
	if status != "Created" {
		//lint:ignore ST1005 the text net/http gives a request cut by a dying daemon
		return fail(errors.New(`Post "http://unix.socket/1.0/networks": EOF`))
	}
	return nil
}

// Network implements Server.
func (f *Fake) Network(ctx context.Context, name string) (*api.Network, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Network", name, http.MethodGet, uri("", nil, "networks", name)); err != nil {
		return nil, "", wrap(err, "reading", "network", "", name)
	}
	if _, ok := f.networks[name]; !ok {
		return nil, "", wrap(statusErr(http.StatusNotFound, "Network not found"), "reading", "network", "", name)
	}
	n := f.networkCopy(name)
	return n, etagOf(n.NetworkPut), nil
}

// UpdateNetwork implements Server.
func (f *Fake) UpdateNetwork(ctx context.Context, name string, put api.NetworkPut, etag string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "updating", "network", "", name) }
	if err := f.call("UpdateNetwork", name, http.MethodPut, uri("", nil, "networks", name)); err != nil {
		return fail(err)
	}
	n, ok := f.networks[name]
	if !ok {
		return fail(statusErr(http.StatusNotFound, "Network not found"))
	}
	if err := checkETag(etagOf(n.NetworkPut), etag); err != nil {
		return fail(err)
	}
	n.Config = cloneConfig(put.Config)
	n.Description = put.Description
	return nil
}

// DeleteNetwork implements Server.
func (f *Fake) DeleteNetwork(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "deleting", "network", "", name) }
	if err := f.call("DeleteNetwork", name, http.MethodDelete, uri("", nil, "networks", name)); err != nil {
		return fail(err)
	}
	if _, ok := f.networks[name]; !ok {
		return fail(statusErr(http.StatusNotFound, "Network not found"))
	}
	if len(f.networkUsers(name)) > 0 {
		return fail(statusErr(http.StatusBadRequest, "The network is currently in use"))
	}
	delete(f.networks, name)
	return nil
}

// ---- profiles ----

// checkDevices checks what Incus checks for the devices a reconciler
// writes: nic networks and disk pools and custom volumes exist.
func (f *Fake) checkDevices(project string, devs map[string]map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(devs)) {
		d := devs[name]
		switch d["type"] {
		case "":
			return statusErr(http.StatusBadRequest, "Invalid devices: Device validation failed for %q: Missing device type for device", name)
		case "nic":
			if n := d["network"]; n != "" {
				if _, ok := f.networks[n]; !ok {
					return statusErr(http.StatusBadRequest, "Invalid devices: Device validation failed for %q: Failed loading network %q: Network not found", name, n)
				}
			}
		case "disk":
			pool := d["pool"]
			if pool == "" {
				continue
			}
			if _, ok := f.pools[pool]; !ok {
				return statusErr(http.StatusBadRequest, "Invalid devices: Device validation failed for %q: Failed loading storage pool %q: Storage pool not found", name, pool)
			}
			if src := d["source"]; src != "" && d["path"] != "/" {
				if _, ok := f.volumes[vkey{pool, f.featureProject(project, "storage.volumes"), src}]; !ok {
					return statusErr(http.StatusBadRequest, "Invalid devices: Device validation failed for %q: Storage volume %q not found in pool %q", name, src, pool)
				}
			}
		}
	}
	return nil
}

// checkNetworksUp fails like Incus does when an instance's nic uses a
// managed bridge that is not "Created": its dnsmasq host file directory
// was never made.
func (f *Fake) checkNetworksUp(project, name string, devs map[string]map[string]string) error {
	for _, dn := range slices.Sorted(maps.Keys(devs)) {
		d := devs[dn]
		if d["type"] != "nic" || d["network"] == "" {
			continue
		}
		if n, ok := f.networks[d["network"]]; ok && n.Status != "Created" {
			return statusErr(http.StatusInternalServerError,
				"Failed creating instance record: Failed initializing instance: open /var/lib/incus/networks/%s/dnsmasq.hosts/%s_%s.%s: no such file or directory",
				n.Name, project, name, dn)
		}
	}
	return nil
}

func (f *Fake) profileCopy(k pkey) *api.Profile {
	p := *f.profiles[k]
	p.Config = cloneConfig(p.Config)
	p.Devices = cloneDevices(p.Devices)
	var used []string
	for ik, fi := range f.instances {
		if f.featureProject(ik.project, "profiles") == k.project && slices.Contains(fi.inst.Profiles, k.name) {
			used = append(used, usedURL("instances", ik.project, ik.name))
		}
	}
	slices.Sort(used)
	p.UsedBy = used
	return &p
}

// Profiles implements Server.
func (f *Fake) Profiles(ctx context.Context) ([]api.Profile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Profiles", "", http.MethodGet, uri("", [][2]string{{"all-projects", "true"}, {"recursion", "1"}}, "profiles")); err != nil {
		return nil, wrap(err, "listing", "profiles", "", "")
	}
	keys := slices.SortedFunc(maps.Keys(f.profiles), func(a, b pkey) int {
		return strings.Compare(a.project+"\x00"+a.name, b.project+"\x00"+b.name)
	})
	out := []api.Profile{}
	for _, k := range keys {
		out = append(out, *f.profileCopy(k))
	}
	return out, nil
}

// CreateProfile implements Server.
func (f *Fake) CreateProfile(ctx context.Context, project string, req api.ProfilesPost) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "creating", "profile", project, req.Name) }
	if err := f.call("CreateProfile", project+"/"+req.Name, http.MethodPost, uri(project, nil, "profiles")); err != nil {
		return fail(err)
	}
	if err := f.needProject(project); err != nil {
		return fail(err)
	}
	k := pkey{f.featureProject(project, "profiles"), req.Name}
	if req.Name == "" {
		return fail(statusErr(http.StatusBadRequest, "No name provided"))
	}
	if _, ok := f.profiles[k]; ok {
		return fail(statusErr(http.StatusInternalServerError, "Error inserting %q into database: The profile already exists", req.Name))
	}
	if err := f.checkDevices(project, req.Devices); err != nil {
		return fail(err)
	}
	f.profiles[k] = &api.Profile{Name: req.Name, Project: k.project, ProfilePut: api.ProfilePut{
		Config: cloneConfig(req.Config), Description: req.Description, Devices: cloneDevices(req.Devices)}}
	return nil
}

func (f *Fake) findProfile(project, name string) (pkey, error) {
	if err := f.needProject(project); err != nil {
		return pkey{}, err
	}
	k := pkey{f.featureProject(project, "profiles"), name}
	if _, ok := f.profiles[k]; !ok {
		return k, statusErr(http.StatusNotFound, "Profile not found")
	}
	return k, nil
}

// Profile implements Server.
func (f *Fake) Profile(ctx context.Context, project, name string) (*api.Profile, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Profile", project+"/"+name, http.MethodGet, uri(project, nil, "profiles", name)); err != nil {
		return nil, "", wrap(err, "reading", "profile", project, name)
	}
	k, err := f.findProfile(project, name)
	if err != nil {
		return nil, "", wrap(err, "reading", "profile", project, name)
	}
	p := f.profileCopy(k)
	return p, etagOf(p.ProfilePut), nil
}

// UpdateProfile implements Server.
func (f *Fake) UpdateProfile(ctx context.Context, project, name string, put api.ProfilePut, etag string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "updating", "profile", project, name) }
	if err := f.call("UpdateProfile", project+"/"+name, http.MethodPut, uri(project, nil, "profiles", name)); err != nil {
		return fail(err)
	}
	k, err := f.findProfile(project, name)
	if err != nil {
		return fail(err)
	}
	p := f.profiles[k]
	if err := checkETag(etagOf(p.ProfilePut), etag); err != nil {
		return fail(err)
	}
	if err := f.checkDevices(project, put.Devices); err != nil {
		return fail(err)
	}
	old := p.ProfilePut
	p.Config, p.Devices, p.Description = cloneConfig(put.Config), cloneDevices(put.Devices), put.Description
	next := map[pkey]api.Instance{}
	for ik, fi := range f.instances {
		if f.featureProject(ik.project, "profiles") == k.project && slices.Contains(fi.inst.Profiles, name) {
			inst := fi.inst
			if err := f.expand(ik.project, &inst); err != nil {
				p.ProfilePut = old
				return fail(err)
			}
			next[ik] = inst
		}
	}
	for ik, inst := range next {
		f.instances[ik].inst = inst
	}
	return nil
}

// DeleteProfile implements Server.
func (f *Fake) DeleteProfile(ctx context.Context, project, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "deleting", "profile", project, name) }
	if err := f.call("DeleteProfile", project+"/"+name, http.MethodDelete, uri(project, nil, "profiles", name)); err != nil {
		return fail(err)
	}
	k, err := f.findProfile(project, name)
	if err != nil {
		return fail(err)
	}
	if name == "default" {
		return fail(statusErr(http.StatusForbidden, `The "default" profile cannot be deleted`))
	}
	if len(f.profileCopy(k).UsedBy) > 0 {
		return fail(statusErr(http.StatusBadRequest, "Profile is currently in use"))
	}
	delete(f.profiles, k)
	return nil
}

// ---- instances ----

// expand computes an instance's expanded config and devices from its
// profiles, and checks that they exist and that a root disk is found.
func (f *Fake) expand(project string, inst *api.Instance) error {
	cfg := api.ConfigMap{}
	devs := map[string]map[string]string{}
	pp := f.featureProject(project, "profiles")
	for _, name := range inst.Profiles {
		p, ok := f.profiles[pkey{pp, name}]
		if !ok {
			return statusErr(http.StatusInternalServerError, "Requested profile %q doesn't exist", name)
		}
		maps.Copy(cfg, p.Config)
		for dn, d := range p.Devices {
			devs[dn] = maps.Clone(d)
		}
	}
	maps.Copy(cfg, inst.Config)
	for dn, d := range inst.Devices {
		devs[dn] = maps.Clone(d)
	}
	root := false
	for _, d := range devs {
		if d["type"] == "disk" && d["path"] == "/" {
			root = true
		}
	}
	if !root {
		return statusErr(http.StatusInternalServerError, "Invalid expanded devices: Failed detecting root disk device: No root device could be found")
	}
	inst.ExpandedConfig, inst.ExpandedDevices = cfg, devs
	return nil
}

func (f *Fake) instanceCopy(fi *fakeInstance) *api.Instance {
	i := fi.inst
	i.Config = cloneConfig(i.Config)
	i.Devices = cloneDevices(i.Devices)
	i.ExpandedConfig = cloneConfig(i.ExpandedConfig)
	i.ExpandedDevices = cloneDevices(i.ExpandedDevices)
	i.Profiles = slices.Clone(i.Profiles)
	return &i
}

func instanceETag(i *api.Instance) string {
	put := i.InstancePut
	put.Restore = ""
	return etagOf(put)
}

func (f *Fake) findInstance(project, name string) (*fakeInstance, error) {
	fi, ok := f.instances[pkey{project, name}]
	if !ok {
		return nil, statusErr(http.StatusNotFound, "Failed to fetch instance %q in project %q: Instance not found", name, project)
	}
	if f.offline(fi.inst.Location) {
		return nil, statusErr(http.StatusServiceUnavailable, "Cluster member %q is offline", fi.inst.Location)
	}
	return fi, nil
}

// Instances implements Server.
func (f *Fake) Instances(ctx context.Context) ([]api.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Instances", "", http.MethodGet, uri("", [][2]string{{"all-projects", "true"}, {"recursion", "1"}}, "instances")); err != nil {
		return nil, wrap(err, "listing", "instances", "", "")
	}
	keys := slices.SortedFunc(maps.Keys(f.instances), func(a, b pkey) int {
		return strings.Compare(a.project+"\x00"+a.name, b.project+"\x00"+b.name)
	})
	out := []api.Instance{}
	for _, k := range keys {
		fi := f.instances[k]
		if f.offline(fi.inst.Location) {
			i := fi.inst
			out = append(out, api.Instance{Name: i.Name, Project: i.Project, Type: i.Type, Location: i.Location,
				Status: "Error", StatusCode: api.Error})
			continue
		}
		out = append(out, *f.instanceCopy(fi))
	}
	return out, nil
}

// CreateInstance implements Server.
func (f *Fake) CreateInstance(ctx context.Context, project string, req api.InstancesPost) error {
	return f.CreateInstanceOn(ctx, project, "", req)
}

// CreateInstanceOn implements Server.
func (f *Fake) CreateInstanceOn(ctx context.Context, project, member string, req api.InstancesPost) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "creating", "instance", project, req.Name) }
	if member != "" {
		fail = func(err error) error { return wrapOn(err, "instance", project, req.Name, member) }
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	path := api.NewURL().Path("1.0", "instances").Project(project).Target(member).String()
	if err := f.call("CreateInstance", project+"/"+req.Name, http.MethodPost, path); err != nil {
		return fail(err)
	}
	location := "none"
	switch {
	case f.clustered():
		var err error
		if location, err = f.place(member); err != nil {
			return fail(err)
		}
	case member != "":
		return fail(statusErr(http.StatusBadRequest, "Target only allowed when clustered"))
	}
	if _, ok := f.projects[project]; !ok {
		return fail(statusErr(http.StatusNotFound, "Failed loading project: Project not found"))
	}
	typ := string(req.Type)
	switch typ {
	case "":
		typ = "container"
	case "container", "virtual-machine":
	default:
		return fail(statusErr(http.StatusBadRequest, "Invalid instance type"))
	}
	inst := api.Instance{Name: req.Name, Project: project, Type: typ, Location: location,
		Status: "Stopped", StatusCode: api.Stopped, CreatedAt: f.now().UTC(),
		InstancePut: api.InstancePut{Architecture: "x86_64", Config: cloneConfig(req.Config),
			Devices: cloneDevices(req.Devices), Ephemeral: req.Ephemeral, Profiles: slices.Clone(req.Profiles),
			Description: req.Description}}
	if req.Profiles == nil {
		inst.Profiles = []string{"default"}
	}
	if err := f.expand(project, &inst); err != nil {
		return fail(err)
	}
	if err := f.checkDevices(project, inst.ExpandedDevices); err != nil {
		return fail(err)
	}
	if err := f.checkNetworksUp(project, req.Name, inst.ExpandedDevices); err != nil {
		return fail(err)
	}
	f.opWait(ctx, project)
	f.report(ctx, "CreateInstance", project+"/"+req.Name)
	if _, ok := f.instances[pkey{project, req.Name}]; ok {
		return fail(statusErr(http.StatusInternalServerError,
			`Failed creating instance record: Add instance info to the database: Failed to create "instances" entry: UNIQUE constraint failed: instances.project_id, instances.name`))
	}
	switch req.Source.Type {
	case "image":
		if req.Source.Server == "" {
			found := false
			if f.featureProject(project, "images") == DefaultProject {
				for _, a := range f.aliases {
					found = found || a.Name == req.Source.Alias
				}
			}
			if !found {
				return fail(statusErr(http.StatusInternalServerError, "Image not provided for instance creation"))
			}
		}
		inst.Config["image.description"] = "fake image " + req.Source.Alias
		inst.Config["image.os"] = "fake"
		inst.Config["volatile.base_image"] = etagOf(req.Source.Alias)
		inst.Config["volatile.apply_template"] = "create"
	case "none":
	default:
		return fail(statusErr(http.StatusBadRequest, "Unknown source type %q", req.Source.Type))
	}
	f.seq++
	inst.Config["volatile.uuid"] = fmt.Sprintf("00000000-0000-4000-9000-%012d", f.seq)
	if typ == "container" {
		inst.Config["volatile.idmap.base"] = "0"
		inst.Config["volatile.idmap.next"] = "[]"
		inst.Config["volatile.last_state.idmap"] = "[]"
	}
	_ = f.expand(project, &inst)
	f.instances[pkey{project, req.Name}] = &fakeInstance{inst: inst}
	if req.Start {
		f.setRunning(&f.instances[pkey{project, req.Name}].inst, true)
	}
	return nil
}

func (f *Fake) setRunning(inst *api.Instance, running bool) {
	if running {
		inst.Status, inst.StatusCode = "Running", api.Running
		inst.Config["volatile.last_state.power"] = "RUNNING"
		delete(inst.Config, "volatile.apply_template")
		inst.LastUsedAt = f.now().UTC()
	} else {
		inst.Status, inst.StatusCode = "Stopped", api.Stopped
		inst.Config["volatile.last_state.power"] = "STOPPED"
	}
	_ = f.expand(inst.Project, inst)
}

// Instance implements Server.
func (f *Fake) Instance(ctx context.Context, project, name string) (*api.Instance, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Instance", project+"/"+name, http.MethodGet, uri(project, nil, "instances", name)); err != nil {
		return nil, "", wrap(err, "reading", "instance", project, name)
	}
	fi, err := f.findInstance(project, name)
	if err != nil {
		return nil, "", wrap(err, "reading", "instance", project, name)
	}
	i := f.instanceCopy(fi)
	return i, instanceETag(i), nil
}

// UpdateInstance implements Server.
func (f *Fake) UpdateInstance(ctx context.Context, project, name string, put api.InstancePut, etag string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "updating", "instance", project, name) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if put.Restore != "" {
		return fail(statusErr(http.StatusBadRequest, "use RestoreSnapshot to restore a snapshot"))
	}
	if err := f.call("UpdateInstance", project+"/"+name, http.MethodPut, uri(project, nil, "instances", name)); err != nil {
		return fail(err)
	}
	fi, err := f.findInstance(project, name)
	if err != nil {
		return fail(err)
	}
	if err := checkETag(instanceETag(&fi.inst), etag); err != nil {
		return fail(err)
	}
	f.opWait(ctx, project)
	for k := range fi.inst.Config {
		if strings.HasPrefix(k, "volatile.idmap.") {
			if _, ok := put.Config[k]; !ok {
				return fail(statusErr(http.StatusInternalServerError, "Volatile idmap keys can't be deleted by the user"))
			}
		}
	}
	next := fi.inst
	next.Config, next.Devices = cloneConfig(put.Config), cloneDevices(put.Devices)
	next.Profiles, next.Description, next.Ephemeral = slices.Clone(put.Profiles), put.Description, put.Ephemeral
	if put.Profiles == nil {
		next.Profiles = []string{}
	}
	if err := f.expand(project, &next); err != nil {
		return fail(err)
	}
	if err := f.checkDevices(project, next.ExpandedDevices); err != nil {
		return fail(err)
	}
	fi.inst = next
	return nil
}

// DeleteInstance implements Server.
func (f *Fake) DeleteInstance(ctx context.Context, project, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "deleting", "instance", project, name) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := f.call("DeleteInstance", project+"/"+name, http.MethodDelete, uri(project, nil, "instances", name)); err != nil {
		return fail(err)
	}
	fi, err := f.findInstance(project, name)
	if err != nil {
		return fail(err)
	}
	if fi.inst.StatusCode == api.Running {
		return fail(statusErr(http.StatusBadRequest, "Instance is running"))
	}
	f.opWait(ctx, project)
	if isTrue(fi.inst.ExpandedConfig["security.protection.delete"]) {
		return fail(statusErr(http.StatusInternalServerError, "Instance is protected"))
	}
	delete(f.instances, pkey{project, name})
	return nil
}

// UpdateInstanceState implements Server.
func (f *Fake) UpdateInstanceState(ctx context.Context, project, name string, req api.InstanceStatePut) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, stateDoing(req.Action), "instance", project, name) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := f.call("UpdateInstanceState", project+"/"+name, http.MethodPut, uri(project, nil, "instances", name, "state")); err != nil {
		return fail(err)
	}
	fi, err := f.findInstance(project, name)
	if err != nil {
		return fail(err)
	}
	f.opWait(ctx, project)
	running := fi.inst.StatusCode == api.Running
	switch req.Action {
	case ActionStart:
		if running {
			return fail(statusErr(http.StatusInternalServerError, "The instance is already running"))
		}
		if err := f.renderFirstStart(fi); err != nil {
			return fail(err)
		}
		f.setRunning(&fi.inst, true)
	case ActionStop:
		if !running {
			return fail(statusErr(http.StatusBadRequest, "The instance is already stopped"))
		}
		f.setRunning(&fi.inst, false)
		if fi.inst.Ephemeral {
			delete(f.instances, pkey{project, name})
		}
	case ActionRestart:
		if !running {
			return fail(statusErr(http.StatusBadRequest, "The instance is already stopped"))
		}
		f.setRunning(&fi.inst, true)
	default:
		return fail(statusErr(http.StatusBadRequest, "Unknown action %s", req.Action))
	}
	return nil
}

// RenameInstance implements Server.
func (f *Fake) RenameInstance(ctx context.Context, project, name, newName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "renaming", "instance", project, name) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := f.call("RenameInstance", project+"/"+name, http.MethodPost, uri(project, nil, "instances", name)); err != nil {
		return fail(err)
	}
	fi, err := f.findInstance(project, name)
	if err != nil {
		return fail(err)
	}
	if fi.inst.StatusCode == api.Running {
		return fail(statusErr(http.StatusBadRequest, "Renaming of running instance not allowed"))
	}
	if _, ok := f.instances[pkey{project, newName}]; ok {
		return fail(statusErr(http.StatusConflict, "Name %q already in use", newName))
	}
	f.opWait(ctx, project)
	delete(f.instances, pkey{project, name})
	fi.inst.Name = newName
	f.instances[pkey{project, newName}] = fi
	return nil
}

// MoveInstance implements Server.
func (f *Fake) MoveInstance(ctx context.Context, project, name, toProject string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrapMove(err, project, name, toProject) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := f.call("MoveInstance", project+"/"+name, http.MethodPost, uri(project, nil, "instances", name)); err != nil {
		return fail(err)
	}
	fi, err := f.findInstance(project, name)
	if err != nil {
		return fail(err)
	}
	if fi.inst.StatusCode == api.Running {
		return fail(statusErr(http.StatusBadRequest, "Instance must be stopped to be moved statelessly"))
	}
	f.opWait(ctx, project)
	if _, ok := f.projects[toProject]; !ok {
		return fail(statusErr(http.StatusNotFound, "Project not found"))
	}
	if _, ok := f.instances[pkey{toProject, name}]; ok {
		return fail(statusErr(http.StatusConflict, "Instance %q already exists in project %q", name, toProject))
	}
	next := *f.instanceCopy(fi)
	next.Project, next.Description = toProject, ""
	for _, p := range next.Profiles {
		if _, ok := f.profiles[pkey{f.featureProject(toProject, "profiles"), p}]; !ok {
			return fail(statusErr(http.StatusNotFound, "Profile not found"))
		}
	}
	oldRoot := ""
	for dn, d := range fi.inst.ExpandedDevices {
		if d["type"] == "disk" && d["path"] == "/" {
			oldRoot = dn
		}
	}
	if err := f.expand(toProject, &next); err != nil {
		if oldRoot == "" || !strings.Contains(err.Error(), "root device") {
			return fail(err)
		}
		next.Devices[oldRoot] = maps.Clone(fi.inst.ExpandedDevices[oldRoot])
		if err := f.expand(toProject, &next); err != nil {
			return fail(err)
		}
	}
	if err := f.checkDevices(toProject, next.ExpandedDevices); err != nil {
		return fail(err)
	}
	delete(f.instances, pkey{project, name})
	f.instances[pkey{toProject, name}] = &fakeInstance{inst: next, snaps: fi.snaps}
	return nil
}

// ---- images ----

// ImageAliases implements Server.
func (f *Fake) ImageAliases(ctx context.Context) ([]api.ImageAliasesEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ImageAliases", "", http.MethodGet, uri("", [][2]string{{"recursion", "1"}}, "images", "aliases")); err != nil {
		return nil, wrap(err, "listing", "image aliases", "", "")
	}
	return slices.Clone(f.aliases), nil
}

// ResolveImage implements Server with the remotes given to AddRemote (and
// the built-in "images").
func (f *Fake) ResolveImage(ref string) (api.InstanceSource, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return resolveImage(ref, f.remotes)
}

// ---- storage volumes ----

func (f *Fake) volumeUsers(k vkey) []string {
	uses := func(devs map[string]map[string]string) bool {
		for _, d := range devs {
			if d["type"] == "disk" && d["pool"] == k.pool && d["source"] == k.name && d["path"] != "/" {
				return true
			}
		}
		return false
	}
	var used []string
	for ik, fi := range f.instances {
		if f.featureProject(ik.project, "storage.volumes") == k.project && uses(fi.inst.Devices) {
			used = append(used, usedURL("instances", ik.project, ik.name))
		}
	}
	for pk, p := range f.profiles {
		if f.featureProject(pk.project, "storage.volumes") == k.project && uses(p.Devices) {
			used = append(used, usedURL("profiles", pk.project, pk.name))
		}
	}
	slices.Sort(used)
	return used
}

func (f *Fake) volumeCopy(k vkey) *api.StorageVolume {
	v := *f.volumes[k]
	v.Config = cloneConfig(v.Config)
	v.UsedBy = f.volumeUsers(k)
	if v.UsedBy == nil {
		v.UsedBy = []string{}
	}
	return &v
}

func (f *Fake) findVolume(project, pool, name string) (vkey, error) {
	if _, ok := f.pools[pool]; !ok {
		return vkey{}, statusErr(http.StatusNotFound, "Storage pool not found")
	}
	if err := f.needProject(project); err != nil {
		return vkey{}, err
	}
	k := vkey{pool, f.featureProject(project, "storage.volumes"), name}
	if _, ok := f.volumes[k]; !ok {
		return k, statusErr(http.StatusNotFound, "Storage pool volume not found")
	}
	return k, nil
}

// StorageVolumes implements Server.
func (f *Fake) StorageVolumes(ctx context.Context, pool string) ([]api.StorageVolume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "listing the custom volumes of", "storage pool", "", pool) }
	if err := f.call("StorageVolumes", pool, http.MethodGet,
		uri("", [][2]string{{"all-projects", "true"}, {"recursion", "1"}}, "storage-pools", pool, "volumes", "custom")); err != nil {
		return nil, fail(err)
	}
	if _, ok := f.pools[pool]; !ok {
		return nil, fail(statusErr(http.StatusNotFound, "Storage pool not found"))
	}
	keys := slices.SortedFunc(maps.Keys(f.volumes), func(a, b vkey) int {
		return strings.Compare(a.pool+"\x00"+a.project+"\x00"+a.name, b.pool+"\x00"+b.project+"\x00"+b.name)
	})
	out := []api.StorageVolume{}
	for _, k := range keys {
		if k.pool == pool {
			out = append(out, *f.volumeCopy(k))
		}
	}
	return out, nil
}

// CreateStorageVolume implements Server.
func (f *Fake) CreateStorageVolume(ctx context.Context, project, pool string, req api.StorageVolumesPost) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "creating", "storage volume", project, req.Name) }
	if err := f.call("CreateStorageVolume", project+"/"+req.Name, http.MethodPost,
		uri(project, nil, "storage-pools", pool, "volumes", "custom")); err != nil {
		return fail(err)
	}
	k, err := f.findVolume(project, pool, req.Name)
	if err == nil {
		return fail(statusErr(http.StatusConflict, "Volume by that name already exists"))
	}
	if !IsNotFound(err) || k.pool == "" {
		return fail(err)
	}
	ct := req.ContentType
	if ct == "" {
		ct = "filesystem"
	}
	f.volumes[k] = &api.StorageVolume{Name: req.Name, Type: "custom", Location: "none", ContentType: ct,
		Project: k.project, CreatedAt: f.now().UTC(),
		StorageVolumePut: api.StorageVolumePut{Config: cloneConfig(req.Config), Description: req.Description}}
	return nil
}

// StorageVolume implements Server.
func (f *Fake) StorageVolume(ctx context.Context, project, pool, name string) (*api.StorageVolume, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "reading", "storage volume", project, name) }
	if err := f.call("StorageVolume", project+"/"+name, http.MethodGet,
		uri(project, nil, "storage-pools", pool, "volumes", "custom", name)); err != nil {
		return nil, "", fail(err)
	}
	k, err := f.findVolume(project, pool, name)
	if err != nil {
		return nil, "", fail(err)
	}
	v := f.volumeCopy(k)
	return v, etagOf(v.StorageVolumePut), nil
}

// UpdateStorageVolume implements Server.
func (f *Fake) UpdateStorageVolume(ctx context.Context, project, pool, name string, put api.StorageVolumePut, etag string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "updating", "storage volume", project, name) }
	if err := f.call("UpdateStorageVolume", project+"/"+name, http.MethodPut,
		uri(project, nil, "storage-pools", pool, "volumes", "custom", name)); err != nil {
		return fail(err)
	}
	k, err := f.findVolume(project, pool, name)
	if err != nil {
		return fail(err)
	}
	v := f.volumes[k]
	if err := checkETag(etagOf(v.StorageVolumePut), etag); err != nil {
		return fail(err)
	}
	v.Config, v.Description = cloneConfig(put.Config), put.Description
	return nil
}

// DeleteStorageVolume implements Server.
func (f *Fake) DeleteStorageVolume(ctx context.Context, project, pool, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "deleting", "storage volume", project, name) }
	if err := f.call("DeleteStorageVolume", project+"/"+name, http.MethodDelete,
		uri(project, nil, "storage-pools", pool, "volumes", "custom", name)); err != nil {
		return fail(err)
	}
	k, err := f.findVolume(project, pool, name)
	if err != nil {
		return fail(err)
	}
	if len(f.volumeUsers(k)) > 0 {
		return fail(statusErr(http.StatusBadRequest, "The storage volume is still in use"))
	}
	delete(f.volumes, k)
	return nil
}

// ---- cluster, metadata, resources ----

// ClusterMembers implements Server.
func (f *Fake) ClusterMembers(ctx context.Context) ([]api.ClusterMember, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ClusterMembers", "", http.MethodGet, uri("", [][2]string{{"recursion", "1"}}, "cluster", "members")); err != nil {
		return nil, wrap(err, "listing", "cluster members", "", "")
	}
	return slices.Clone(f.members), nil
}

// MetadataConfiguration implements Server.
func (f *Fake) MetadataConfiguration(ctx context.Context) (*api.MetadataConfiguration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("MetadataConfiguration", "", http.MethodGet, "/1.0/metadata/configuration"); err != nil {
		return nil, wrap(err, "reading", "the metadata configuration", "", "")
	}
	m := f.metadata
	return &m, nil
}

// Resources implements Server.
func (f *Fake) Resources(ctx context.Context) (*api.Resources, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Resources", "", http.MethodGet, "/1.0/resources"); err != nil {
		return nil, wrap(err, "reading", "server resources", "", "")
	}
	r := f.resources
	return &r, nil
}

// ---- snapshots ----

// Snapshots implements Server.
func (f *Fake) Snapshots(ctx context.Context, project, instance string) ([]api.InstanceSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error { return wrap(err, "listing the snapshots of", "instance", project, instance) }
	if err := f.call("Snapshots", project+"/"+instance, http.MethodGet,
		uri(project, [][2]string{{"recursion", "1"}}, "instances", instance, "snapshots")); err != nil {
		return nil, fail(err)
	}
	fi, err := f.findInstance(project, instance)
	if err != nil {
		return nil, fail(err)
	}
	out := make([]api.InstanceSnapshot, len(fi.snaps))
	for i, s := range fi.snaps {
		s.Config, s.Devices, s.Profiles = cloneConfig(s.Config), cloneDevices(s.Devices), slices.Clone(s.Profiles)
		out[i] = s
	}
	return out, nil
}

// CreateSnapshot implements Server.
func (f *Fake) CreateSnapshot(ctx context.Context, project, instance string, req api.InstanceSnapshotsPost) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error {
		return wrap(err, fmt.Sprintf("creating snapshot %q of", req.Name), "instance", project, instance)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := f.call("CreateSnapshot", project+"/"+instance, http.MethodPost,
		uri(project, nil, "instances", instance, "snapshots")); err != nil {
		return fail(err)
	}
	fi, err := f.findInstance(project, instance)
	if err != nil {
		return fail(err)
	}
	f.opWait(ctx, project)
	f.report(ctx, "CreateSnapshot", project+"/"+instance)
	name := req.Name
	if name == "" {
		name = fmt.Sprintf("snap%d", len(fi.snaps))
	}
	for _, s := range fi.snaps {
		if s.Name == name {
			return fail(statusErr(http.StatusInternalServerError,
				`Failed creating instance snapshot record %q: Add snapshot info to the database: Failed to create "instances_snapshots" entry: UNIQUE constraint failed: instances_snapshots.instance_id, instances_snapshots.name`, name))
		}
	}
	now := f.now().UTC()
	var expires time.Time
	if req.ExpiresAt != nil {
		expires = *req.ExpiresAt
	} else if e := fi.inst.ExpandedConfig["snapshots.expiry"]; e != "" {
		t, err := addExpiry(now, e)
		if err != nil {
			return fail(statusErr(http.StatusBadRequest, "Invalid snapshots.expiry: %v", err))
		}
		expires = t
	}
	fi.snaps = append(fi.snaps, api.InstanceSnapshot{
		Name: name, CreatedAt: now, Architecture: fi.inst.Architecture, Description: fi.inst.Description,
		Config: cloneConfig(fi.inst.Config), Devices: cloneDevices(fi.inst.Devices), Profiles: slices.Clone(fi.inst.Profiles),
		Ephemeral: fi.inst.Ephemeral, Stateful: req.Stateful,
		InstanceSnapshotPut: api.InstanceSnapshotPut{ExpiresAt: expires},
	})
	return nil
}

// addExpiry adds an Incus expiry ("30d", "1y 6m", "24H") to t: units M
// (minutes), H (hours), d, w, m (months) and y.
func addExpiry(t time.Time, expiry string) (time.Time, error) {
	for _, field := range strings.Fields(expiry) {
		if len(field) < 2 {
			return t, fmt.Errorf("invalid expiry %q", expiry)
		}
		n, err := strconv.Atoi(field[:len(field)-1])
		if err != nil {
			return t, fmt.Errorf("invalid expiry %q", expiry)
		}
		switch field[len(field)-1] {
		case 'M':
			t = t.Add(time.Duration(n) * time.Minute)
		case 'H':
			t = t.Add(time.Duration(n) * time.Hour)
		case 'd':
			t = t.AddDate(0, 0, n)
		case 'w':
			t = t.AddDate(0, 0, 7*n)
		case 'm':
			t = t.AddDate(0, n, 0)
		case 'y':
			t = t.AddDate(n, 0, 0)
		default:
			return t, fmt.Errorf("invalid expiry %q", expiry)
		}
	}
	return t, nil
}

// DeleteSnapshot implements Server.
func (f *Fake) DeleteSnapshot(ctx context.Context, project, instance, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error {
		return wrap(err, fmt.Sprintf("deleting snapshot %q of", name), "instance", project, instance)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := f.call("DeleteSnapshot", project+"/"+instance, http.MethodDelete,
		uri(project, nil, "instances", instance, "snapshots", name)); err != nil {
		return fail(err)
	}
	fi, err := f.findInstance(project, instance)
	if err != nil {
		return fail(err)
	}
	i := slices.IndexFunc(fi.snaps, func(s api.InstanceSnapshot) bool { return s.Name == name })
	if i < 0 {
		return fail(statusErr(http.StatusNotFound, "Failed to fetch snapshot %q of instance %q in project %q: Instance_snapshot not found", name, instance, project))
	}
	f.opWait(ctx, project)
	fi.snaps = slices.Delete(fi.snaps, i, i+1)
	return nil
}

// RestoreSnapshot implements Server.
func (f *Fake) RestoreSnapshot(ctx context.Context, project, instance, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fail := func(err error) error {
		return wrap(err, fmt.Sprintf("restoring snapshot %q of", name), "instance", project, instance)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := f.call("RestoreSnapshot", project+"/"+instance, http.MethodPut, uri(project, nil, "instances", instance)); err != nil {
		return fail(err)
	}
	fi, err := f.findInstance(project, instance)
	if err != nil {
		return fail(err)
	}
	f.opWait(ctx, project)
	i := slices.IndexFunc(fi.snaps, func(s api.InstanceSnapshot) bool { return s.Name == name })
	if i < 0 {
		return fail(statusErr(http.StatusInternalServerError, "Snapshot %s/%s does not exist", instance, name))
	}
	s := fi.snaps[i]
	power, hasPower := fi.inst.Config["volatile.last_state.power"]
	next := fi.inst
	next.Config, next.Devices, next.Profiles = cloneConfig(s.Config), cloneDevices(s.Devices), slices.Clone(s.Profiles)
	next.Description, next.Ephemeral = s.Description, s.Ephemeral
	delete(next.Config, "volatile.last_state.power")
	if hasPower {
		next.Config["volatile.last_state.power"] = power
	}
	if err := f.expand(project, &next); err != nil {
		return fail(err)
	}
	fi.inst = next
	return nil
}
