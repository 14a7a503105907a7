// Package incusx is the narrow interface between anklume's reconciler and an
// Incus server (SPEC.md §5, §9). It holds only the requests a plan or an
// apply makes, expressed with Incus's own shared/api types, and comes in two
// implementations that behave the same way (contract_test.go runs the same
// scenarios against both):
//
//   - Connect returns the real adapter over github.com/lxc/incus/v6/client,
//     on the local unix socket or on a remote of the Incus client
//     configuration;
//   - NewFake returns an in-memory server with ETags, the validation Incus
//     does for what a reconciler relies on, injectable failures, a request
//     log and virtual machines that run.
//
// Every error is wrapped with what was being done, such as
// `creating network "net-work": Network "net-work" already exists`; the
// Incus status code stays reachable through api.StatusErrorCheck and the
// helpers IsNotFound, IsConflict and IsPreconditionFailed.
//
// Requests can be counted (SPEC.md §16 #63) on the client's transport
// (Options.Log, CountingTransport) or, for another process such as the
// anklume binary or the incus CLI, with a SocketProxy on the unix socket.
// Paths in the request log are the request URIs the Incus client sends:
// "/1.0/instances?all-projects=true&recursion=1" (query keys sorted), with
// "project=<p>" on project-scoped requests outside the default project. The
// fake logs exactly the URIs the real client would, including the
// "/1.0/operations/<id>/wait" request that follows each asynchronous call.
package incusx

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lxc/incus/v6/shared/api"
)

// DefaultProject is the Incus project that holds the bridges and the images
// every domain project uses (SPEC.md §5.2, §5.3).
const DefaultProject = "default"

// Instance state actions for UpdateInstanceState.
const (
	ActionStart   = "start"
	ActionStop    = "stop"
	ActionRestart = "restart"
)

// Server is what anklume's reconciler needs from an Incus server: the list
// requests of SPEC.md §9.1 and the create, get-with-ETag, update-with-ETag
// and delete requests of the objects it owns (§5). Lists span every project
// where the API allows it; project-scoped calls take the project explicitly.
//
// Asynchronous requests (instance create, update, delete, state, move,
// snapshots) return when the Incus operation is done. The context stops a
// call before its request is sent and bounds the wait on an operation; a
// request already sent runs to its end.
type Server interface {
	// ServerInfo returns GET /1.0: API extensions, clustering, version.
	ServerInfo(ctx context.Context) (*api.Server, error)
	// StoragePools lists the storage pools (GET /1.0/storage-pools?recursion=1).
	StoragePools(ctx context.Context) ([]api.StoragePool, error)

	// Projects lists every project (GET /1.0/projects?recursion=1).
	Projects(ctx context.Context) ([]api.Project, error)
	// CreateProject creates a project with its full config.
	CreateProject(ctx context.Context, req api.ProjectsPost) error
	// Project returns one project and its ETag.
	Project(ctx context.Context, name string) (*api.Project, string, error)
	// UpdateProject replaces a project's description and config (PUT). A
	// non-empty etag that no longer matches fails with status 412.
	UpdateProject(ctx context.Context, name string, put api.ProjectPut, etag string) error
	// DeleteProject deletes an empty project.
	DeleteProject(ctx context.Context, name string) error
	// RenameProject renames an empty project and waits for it. Incus checks
	// that newName is free and renames in one database transaction, so of
	// two renames of the same project, or to the same new name, only one
	// succeeds. The failure of the operation carries no status code (a
	// missing project and a taken name are both plain errors): read the
	// state again to learn why.
	RenameProject(ctx context.Context, name, newName string) error

	// Networks lists the networks of the default project
	// (GET /1.0/networks?recursion=1).
	Networks(ctx context.Context) ([]api.Network, error)
	// CreateNetwork creates a network in the default project.
	CreateNetwork(ctx context.Context, req api.NetworksPost) error
	// Network returns one network and its ETag.
	Network(ctx context.Context, name string) (*api.Network, string, error)
	// UpdateNetwork replaces a network's description and config (PUT).
	UpdateNetwork(ctx context.Context, name string, put api.NetworkPut, etag string) error
	// DeleteNetwork deletes a network that nothing uses.
	DeleteNetwork(ctx context.Context, name string) error
	// CreateNetworkOn is the per-member step of a network create on a
	// cluster: POST /1.0/networks?target=<member> with only the
	// member-specific config. It leaves the network "Pending", defined on
	// that member; once it is pending on every member, CreateNetwork
	// (without a target) creates it everywhere with the global config.
	CreateNetworkOn(ctx context.Context, member string, req api.NetworksPost) error

	// Profiles lists the profiles of every project
	// (GET /1.0/profiles?all-projects=true&recursion=1); Profile.Project
	// names each one's project.
	Profiles(ctx context.Context) ([]api.Profile, error)
	// CreateProfile creates a profile in a project.
	CreateProfile(ctx context.Context, project string, req api.ProfilesPost) error
	// Profile returns one profile and its ETag.
	Profile(ctx context.Context, project, name string) (*api.Profile, string, error)
	// UpdateProfile replaces a profile's description, config and devices.
	UpdateProfile(ctx context.Context, project, name string, put api.ProfilePut, etag string) error
	// DeleteProfile deletes a profile that no instance uses.
	DeleteProfile(ctx context.Context, project, name string) error

	// Instances lists the instances of every project, without live state
	// (GET /1.0/instances?all-projects=true&recursion=1).
	Instances(ctx context.Context) ([]api.Instance, error)
	// CreateInstance creates an instance and waits for it. req.Source comes
	// from ResolveImage; req.Start starts it once created.
	CreateInstance(ctx context.Context, project string, req api.InstancesPost) error
	// CreateInstanceOn is CreateInstance on a cluster member
	// (POST /1.0/instances?target=<member>, the Incus client's UseTarget);
	// an empty member is CreateInstance.
	CreateInstanceOn(ctx context.Context, project, member string, req api.InstancesPost) error
	// Instance returns one instance and its ETag.
	Instance(ctx context.Context, project, name string) (*api.Instance, string, error)
	// UpdateInstance replaces an instance's description, config, devices
	// and profiles (PUT). Send back the volatile.* keys that Get returned:
	// Incus refuses a PUT that drops volatile.idmap.* keys.
	UpdateInstance(ctx context.Context, project, name string, put api.InstancePut, etag string) error
	// DeleteInstance deletes a stopped instance. Incus refuses a running
	// instance ("Instance is running") and one whose
	// security.protection.delete is true ("Instance is protected"); there is
	// no force: stop it first.
	DeleteInstance(ctx context.Context, project, name string) error
	// UpdateInstanceState starts, stops or restarts an instance (PUT
	// .../state). A stop or restart without Force asks the guest to shut
	// down (SIGPWR to a container's init) and fails when it has not within
	// Timeout seconds: the busybox test image ignores SIGPWR, so use Force
	// or a fallback to Force with it. The fake always stops at once.
	UpdateInstanceState(ctx context.Context, project, name string, req api.InstanceStatePut) error
	// RenameInstance renames a stopped instance inside its project.
	RenameInstance(ctx context.Context, project, name, newName string) error
	// MoveInstance moves a stopped instance to another project of the same
	// server, keeping its name: POST /1.0/instances/<name>?project=<from>
	// with {"name": <name>, "migration": true, "project": <to>} (API
	// extension instance_project_move). The profiles it names must exist in
	// the target project; Incus copies the root disk into the instance's
	// own devices when the target profiles do not provide one.
	MoveInstance(ctx context.Context, project, name, toProject string) error

	// ImageAliases lists the image aliases of the default project
	// (GET /1.0/images/aliases?recursion=1).
	ImageAliases(ctx context.Context) ([]api.ImageAliasesEntry, error)
	// ResolveImage turns an image reference of SPEC.md §4.12 into an
	// instance source, without any request: "<alias>" and "local:<alias>"
	// are local aliases; "<remote>:<alias>" names a public remote of the
	// Incus client configuration ("images" is built in). An unknown remote
	// gives an *UnknownRemoteError.
	ResolveImage(ref string) (api.InstanceSource, error)

	// StorageVolumes lists the custom volumes of a pool in every project
	// (GET /1.0/storage-pools/<pool>/volumes/custom?all-projects=true&recursion=1).
	StorageVolumes(ctx context.Context, pool string) ([]api.StorageVolume, error)
	// CreateStorageVolume creates a custom volume (req.Type is forced to
	// "custom").
	CreateStorageVolume(ctx context.Context, project, pool string, req api.StorageVolumesPost) error
	// StorageVolume returns one custom volume and its ETag.
	StorageVolume(ctx context.Context, project, pool, name string) (*api.StorageVolume, string, error)
	// UpdateStorageVolume replaces a custom volume's description and config.
	UpdateStorageVolume(ctx context.Context, project, pool, name string, put api.StorageVolumePut, etag string) error
	// DeleteStorageVolume deletes a custom volume that no instance uses.
	DeleteStorageVolume(ctx context.Context, project, pool, name string) error

	// ClusterMembers lists the cluster members (GET /1.0/cluster/members?recursion=1):
	// each one's name, status ("Online", "Offline", "Evacuated"…) and
	// the cluster groups it belongs to.
	ClusterMembers(ctx context.Context) ([]api.ClusterMember, error)
	// MetadataConfiguration returns GET /1.0/metadata/configuration.
	MetadataConfiguration(ctx context.Context) (*api.MetadataConfiguration, error)
	// Resources returns GET /1.0/resources.
	Resources(ctx context.Context) (*api.Resources, error)

	// Snapshots lists an instance's snapshots, oldest first. Names are
	// the snapshot names alone, without the "<instance>/" prefix.
	Snapshots(ctx context.Context, project, instance string) ([]api.InstanceSnapshot, error)
	// CreateSnapshot takes a snapshot. Set req.ExpiresAt explicitly
	// (SPEC.md §12.4): without it Incus applies snapshots.expiry.
	CreateSnapshot(ctx context.Context, project, instance string, req api.InstanceSnapshotsPost) error
	// DeleteSnapshot deletes a snapshot.
	DeleteSnapshot(ctx context.Context, project, instance, name string) error
	// RestoreSnapshot restores an instance from one of its snapshots
	// (PUT of the instance with "restore").
	RestoreSnapshot(ctx context.Context, project, instance, name string) error
}

// OperationWaiter is a Server that can wait for the operations another
// client left running. An apply killed or cut off from Incus leaves its
// asynchronous requests running in the daemon (an instance create, a
// snapshot that freezes its container); the next apply waits for them
// before it observes, or it would see a container that is frozen or still
// being made and plan a start, or an update that Incus refuses ("Instance
// is busy").
type OperationWaiter interface {
	// WaitOperations waits, at most timeout in all, for the running task
	// operations whose resources are in one of projects, and returns how
	// many it waited for.
	WaitOperations(ctx context.Context, projects []string, timeout time.Duration) (int, error)
}

// awaited reports whether op is a running task on a resource of one of
// projects (a resource URL without ?project= is in "default").
func awaited(op api.Operation, projects []string) bool {
	if op.Class != api.OperationClassTask || (op.StatusCode != api.Running && op.StatusCode != api.Pending) {
		return false
	}
	for _, urls := range op.Resources {
		for _, u := range urls {
			project := DefaultProject
			if _, q, ok := strings.Cut(u, "?"); ok {
				if v, err := url.ParseQuery(q); err == nil && v.Get("project") != "" {
					project = v.Get("project")
				}
			}
			if slices.Contains(projects, project) {
				return true
			}
		}
	}
	return false
}

// UnknownRemoteError is the §9.1 plan-time failure for an image reference
// whose remote is not in the Incus client configuration.
type UnknownRemoteError struct {
	Remote string
	Ref    string
}

func (e *UnknownRemoteError) Error() string {
	return fmt.Sprintf("unknown image remote %q in %q", e.Remote, e.Ref)
}

// ImageRemote is a remote image server as the Incus client configuration
// describes it.
type ImageRemote struct {
	// Addr is the server URL, such as https://images.linuxcontainers.org.
	Addr string
	// Protocol is "simplestreams", "incus" or "oci".
	Protocol string
	// Public is true for a server that serves images without
	// authentication.
	Public bool
}

// The built-in "images" remote (SPEC.md §4.12).
const (
	ImagesRemoteName = "images"
	ImagesRemoteAddr = "https://images.linuxcontainers.org"
)

// resolveImage implements Server.ResolveImage over a table of remotes.
//
// A reference without a remote, or with the "local" remote, is an alias on
// the target server: {type: image, alias}. Any other remote must be in the
// table and be public (a simplestreams server, or a public Incus or OCI
// server); the daemon pulls the image itself: {type: image, mode: pull,
// server, protocol, alias} (SPEC.md §9.5). A private Incus remote would need
// the daemon to trust the client's certificate, which anklume does not
// arrange, so it is refused.
func resolveImage(ref string, remotes map[string]ImageRemote) (api.InstanceSource, error) {
	remote, alias, found := strings.Cut(ref, ":")
	if !found {
		remote, alias = "", ref
	}
	if alias == "" {
		return api.InstanceSource{}, fmt.Errorf("image reference %q has no alias", ref)
	}
	if remote == "" || remote == "local" {
		return api.InstanceSource{Type: "image", Alias: alias}, nil
	}
	r, ok := remotes[remote]
	if !ok && remote == ImagesRemoteName {
		r, ok = ImageRemote{Addr: ImagesRemoteAddr, Protocol: "simplestreams", Public: true}, true
	}
	if !ok {
		return api.InstanceSource{}, &UnknownRemoteError{Remote: remote, Ref: ref}
	}
	if strings.HasPrefix(r.Addr, "unix:") {
		return api.InstanceSource{}, fmt.Errorf("image remote %q in %q is a unix socket, not an image server", remote, ref)
	}
	if !r.Public && r.Protocol == "incus" {
		return api.InstanceSource{}, fmt.Errorf("image remote %q in %q is a private Incus server; anklume only pulls from public remotes", remote, ref)
	}
	return api.InstanceSource{Type: "image", Mode: "pull", Server: r.Addr, Protocol: r.Protocol, Alias: alias}, nil
}

// IsNotFound reports whether err is an Incus "not found" (404) error.
func IsNotFound(err error) bool { return api.StatusErrorCheck(err, http.StatusNotFound) }

// IsPreconditionFailed reports whether err is a stale-ETag (412) error.
func IsPreconditionFailed(err error) bool {
	return api.StatusErrorCheck(err, http.StatusPreconditionFailed)
}

// IsConflict reports whether err is an Incus "already exists" (409) error.
func IsConflict(err error) bool { return api.StatusErrorCheck(err, http.StatusConflict) }

// objName is how errors name an object: `"name"`, or `"project/name"` for a
// project-scoped object.
func objName(project, name string) string {
	if project == "" {
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprintf("%q", project+"/"+name)
}

// wrap adds what was being done to an error: `creating network "x": …`.
func wrap(err error, doing, kind, project, name string) error {
	if err == nil {
		return nil
	}
	if name == "" {
		return fmt.Errorf("%s %s: %w", doing, kind, err)
	}
	return fmt.Errorf("%s %s %s: %w", doing, kind, objName(project, name), err)
}

// wrapOn wraps an error of a create on a cluster member:
// `creating network "x" on cluster member "m1": …`.
func wrapOn(err error, kind, project, name, member string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("creating %s %s on cluster member %q: %w", kind, objName(project, name), member, err)
}

// wrapMove wraps an error of MoveInstance:
// `moving instance "p/c1" to project "q": …`.
func wrapMove(err error, project, name, toProject string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("moving instance %s to project %q: %w", objName(project, name), toProject, err)
}

// Request is one HTTP request to the Incus API.
type Request struct {
	// Method is the HTTP method.
	Method string
	// Path is the request URI: path and sorted query, such as
	// "/1.0/instances?all-projects=true&recursion=1".
	Path string
	// Duration is the time the server took to answer, when the recorder
	// measured it (SocketProxy does); zero otherwise.
	Duration time.Duration
}

// String returns "METHOD path".
func (r Request) String() string { return r.Method + " " + r.Path }

// RequestLog records requests; it is safe for concurrent use. The zero
// value is ready.
type RequestLog struct {
	mu   sync.Mutex
	reqs []Request
}

// Add records one request.
func (l *RequestLog) Add(method, path string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, Request{Method: method, Path: path})
}

// Timed sets the duration of the earliest request recorded with this
// method and path that has none yet.
func (l *RequestLog) Timed(method, path string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.reqs {
		if r := &l.reqs[i]; r.Duration == 0 && r.Method == method && r.Path == path {
			r.Duration = d
			return
		}
	}
}

// Requests returns a copy of the requests in the order they were made.
func (l *RequestLog) Requests() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

// Len returns the number of requests recorded.
func (l *RequestLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reqs)
}

// Reset forgets every request.
func (l *RequestLog) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = nil
}

// Strings returns "METHOD path" for each request, with operation IDs
// replaced by "ID" so that logs of the real server and of the fake compare.
func (l *RequestLog) Strings() []string {
	reqs := l.Requests()
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.Method + " " + normalizeOperation(r.Path)
	}
	return out
}

// normalizeOperation replaces the ID in /1.0/operations/<id>/… by "ID".
func normalizeOperation(path string) string {
	const prefix = "/1.0/operations/"
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return path
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		return prefix + "ID" + rest[i:]
	}
	return prefix + "ID"
}
