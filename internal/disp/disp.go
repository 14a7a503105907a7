// Package disp implements `anklume disp` (SPEC.md §12.5): an Incus
// ephemeral instance in a disposable domain that runs one command, as an
// argument vector through the exec API, and disappears when it stops.
package disp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/snapshots"
)

// NamePart follows the nesting prefix in a disposable instance's name.
const NamePart = "disp-"

// Disposable is the trust level of the default domain.
const Disposable = "disposable"

// ErrNoDomain is the error when no domain is disposable and --domain is
// not given.
var ErrNoDomain = errors.New("no disposable domain; pass --domain")

// DefaultShell is the command run without `-- CMD`: an interactive login
// shell.
func DefaultShell() []string { return []string{"/bin/sh", "-l"} }

// Name is the instance name for t: <prefix>disp-YYYYMMDD-HHMMSS (UTC).
func Name(prefix string, t time.Time) string {
	return prefix + NamePart + t.UTC().Format("20060102-150405")
}

// Domain picks the domain: the named one (enabled), else the first
// enabled domain in declaration order whose trust level is disposable.
func Domain(m *model.Infra, name string) (*model.Domain, error) {
	if name != "" {
		d := m.Domain(name)
		if d == nil || !d.Enabled {
			return nil, fmt.Errorf("--domain: unknown domain %q", name)
		}
		return d, nil
	}
	for _, d := range m.EnabledDomains() {
		if d.TrustLevel == Disposable {
			return d, nil
		}
	}
	return nil, ErrNoDomain
}

// Request is one disposable run.
type Request struct {
	// Infra is project_name; Domain the chosen domain.
	Infra  string
	Domain *model.Domain
	// Name is the instance name (Name()).
	Name string
	// Image is the image reference (default_os_image by default).
	Image string
	// VM makes a virtual machine instead of a container.
	VM bool
	// Argv is the command; empty means an interactive shell.
	Argv []string
	// IO are the streams of the command.
	IO incusx.ExecIO
}

// InstancesPost is the create request: ephemeral, started, with
// user.anklume.disp, infra and domain and no managed key.
func (r Request) InstancesPost(src api.InstanceSource) api.InstancesPost {
	typ := api.InstanceTypeContainer
	if r.VM {
		typ = api.InstanceTypeVM
	}
	return api.InstancesPost{
		Name: r.Name, Type: typ, Source: src, Start: true,
		InstancePut: api.InstancePut{
			Ephemeral: true,
			Profiles:  []string{incus.DefaultProfile},
			Config: api.ConfigMap{
				incus.KeyDisp:   "true",
				incus.KeyInfra:  r.Infra,
				incus.KeyDomain: r.Domain.Name,
			},
			Description: "anklume disposable instance",
		},
	}
}

// member is the cluster member a disposable instance of d is created on:
// its domain lives on one member, so the instance goes there too. It is
// the domain's target when that names a member, the member its project
// records (user.anklume.member) for a @group target, or the group itself
// when none is recorded yet (Incus then picks one). A domain without a
// target (a single server) sends none, and costs no request.
func member(ctx context.Context, srv incusx.InstanceOps, d *model.Domain) (string, error) {
	if d.Target == "" || !d.TargetIsGroup() {
		return d.Target, nil
	}
	p, _, err := srv.Project(ctx, d.Project)
	if err != nil {
		return "", err
	}
	if m := p.Config[incus.KeyMember]; m != "" {
		return m, nil
	}
	return d.Target, nil
}

// Run creates the instance, runs the command, stops the instance (Incus
// deletes it) and returns the command's exit status. The instance is
// stopped even when the command could not run.
func Run(ctx context.Context, srv incusx.InstanceOps, r Request) (int, error) {
	src, err := srv.ResolveImage(r.Image)
	if err != nil {
		return -1, err
	}
	project := r.Domain.Project
	member, err := member(ctx, srv, r.Domain)
	if err != nil {
		return -1, err
	}
	if err := srv.CreateInstanceOn(ctx, project, member, r.InstancesPost(src)); err != nil {
		// A failed start leaves a stopped ephemeral instance behind.
		cleanup(ctx, srv, project, r.Name)
		return -1, err
	}
	argv, io := r.Argv, r.IO
	if len(argv) == 0 {
		argv, io.Interactive = DefaultShell(), true
	}
	code, err := execWhenReady(ctx, srv, project, r.Name, argv, io, r.VM)
	if _, serr := snapshots.Stop(context.WithoutCancel(ctx), srv, project, r.Name); serr != nil && !incusx.IsNotFound(serr) {
		err = errors.Join(err, serr)
	}
	cleanup(ctx, srv, project, r.Name)
	return code, err
}

// execWhenReady runs the command; a VM answers exec only once its agent
// runs, so it is retried for up to two minutes.
func execWhenReady(ctx context.Context, srv incusx.InstanceOps, project, name string, argv []string, io incusx.ExecIO, vm bool) (int, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, err := srv.Exec(ctx, project, name, argv, io)
		if err == nil || !vm || time.Now().After(deadline) || ctx.Err() != nil {
			return code, err
		}
		time.Sleep(2 * time.Second)
	}
}

// cleanup deletes a stopped instance that Incus did not delete.
func cleanup(ctx context.Context, srv incusx.Server, project, name string) {
	ctx = context.WithoutCancel(ctx)
	if _, _, err := srv.Instance(ctx, project, name); err == nil {
		_ = srv.DeleteInstance(ctx, project, name)
	}
}
