package incusx

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/lxc/incus/v6/shared/api"
)

// StateLister lists instances with their live state, for the lifecycle
// commands that need live addresses (SPEC.md §12.1 `status`). It is kept
// out of Server because a plan never asks for state (§9.1): recursion=2
// costs about 15 ms per instance on the daemon.
type StateLister interface {
	// InstancesWithState lists the instances of every project with their
	// live state, in one request
	// (GET /1.0/instances?all-projects=true&recursion=2).
	InstancesWithState(ctx context.Context) ([]api.InstanceFull, error)
}

// ImageStore lists and deletes the images a project holds, for `flush`
// step 2 (SPEC.md §12.2): only a project with features.images=true holds
// images of its own.
type ImageStore interface {
	// ProjectImages lists the images of a project
	// (GET /1.0/images?project=<p>&recursion=1).
	ProjectImages(ctx context.Context, project string) ([]api.Image, error)
	// DeleteImage deletes an image of a project by fingerprint and waits
	// for the operation.
	DeleteImage(ctx context.Context, project, fingerprint string) error
}

var (
	_ StateLister = (*Client)(nil)
	_ StateLister = (*Fake)(nil)
	_ ImageStore  = (*Client)(nil)
	_ ImageStore  = (*Fake)(nil)
)

// InstancesWithState implements StateLister.
func (c *Client) InstancesWithState(ctx context.Context) ([]api.InstanceFull, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrap(err, "listing", "instances with state", "", "")
	}
	var i []api.InstanceFull
	err := c.list(ctx, api.NewURL().Path("1.0", "instances").WithQuery("all-projects", "true").WithQuery("recursion", "2"), &i)
	return i, wrap(err, "listing", "instances with state", "", "")
}

// ProjectImages implements ImageStore.
func (c *Client) ProjectImages(ctx context.Context, project string) ([]api.Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrap(err, "listing", "images of project", "", project)
	}
	i, err := c.in(project).GetImages()
	return i, wrap(err, "listing", "images of project", "", project)
}

// DeleteImage implements ImageStore.
func (c *Client) DeleteImage(ctx context.Context, project, fingerprint string) error {
	if err := ctx.Err(); err != nil {
		return wrap(err, "deleting", "image", project, fingerprint)
	}
	op, err := c.in(project).DeleteImage(fingerprint)
	return wrap(wait(ctx, op, err), "deleting", "image", project, fingerprint)
}

// InstancesWithState implements StateLister. The fake's live state is its
// status and, for a running instance whose eth0 (expanded) has an
// ipv4.address, that address on eth0 as if the DHCP lease were taken.
func (f *Fake) InstancesWithState(ctx context.Context) ([]api.InstanceFull, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("InstancesWithState", "", http.MethodGet, uri("", [][2]string{{"all-projects", "true"}, {"recursion", "2"}}, "instances")); err != nil {
		return nil, wrap(err, "listing", "instances with state", "", "")
	}
	keys := slices.SortedFunc(maps.Keys(f.instances), func(a, b pkey) int {
		return strings.Compare(a.project+"\x00"+a.name, b.project+"\x00"+b.name)
	})
	out := []api.InstanceFull{}
	for _, k := range keys {
		inst := *f.instanceCopy(f.instances[k])
		st := &api.InstanceState{Status: inst.Status, StatusCode: inst.StatusCode, Network: map[string]api.InstanceStateNetwork{}}
		if inst.StatusCode == api.Running {
			if ip := inst.ExpandedDevices["eth0"]["ipv4.address"]; ip != "" {
				st.Network["eth0"] = api.InstanceStateNetwork{Type: "broadcast", State: "up",
					Addresses: []api.InstanceStateNetworkAddress{{Family: "inet", Address: ip, Netmask: "24", Scope: "global"}}}
			}
		}
		out = append(out, api.InstanceFull{Instance: inst, State: st})
	}
	return out, nil
}

// ProjectImages implements ImageStore. The fake keeps no images in
// projects (its aliases live in the default project), so the list is
// empty; it is logged like the real request.
func (f *Fake) ProjectImages(ctx context.Context, project string) ([]api.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ProjectImages", project, http.MethodGet, uri(project, [][2]string{{"recursion", "1"}}, "images")); err != nil {
		return nil, wrap(err, "listing", "images of project", "", project)
	}
	if err := f.needProject(project); err != nil {
		return nil, wrap(err, "listing", "images of project", "", project)
	}
	return []api.Image{}, nil
}

// DeleteImage implements ImageStore: the fake holds no project images, so
// it answers 404 unless a failure is injected.
func (f *Fake) DeleteImage(ctx context.Context, project, fingerprint string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("DeleteImage", project+"/"+fingerprint, http.MethodDelete, uri(project, nil, "images", fingerprint)); err != nil {
		return wrap(err, "deleting", "image", project, fingerprint)
	}
	return wrap(statusErr(http.StatusNotFound, "Image not found"), "deleting", "image", project, fingerprint)
}
