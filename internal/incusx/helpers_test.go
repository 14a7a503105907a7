package incusx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lxc/incus/v6/shared/api"
)

// requireEnv, when set, turns the skips of the real-daemon tests into
// failures, so that CI cannot pass without running them.
const requireEnv = "ANKLUME_E2E_REQUIRE"

// testImage is the local image alias that scripts/incus-test-env.sh builds.
const testImage = "anklume-test"

// skipOrFail skips t with the reason, or fails it when requireEnv is set.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(requireEnv) != "" {
		t.Fatalf("%s (and %s is set)", msg, requireEnv)
	}
	t.Skip("skipped: " + msg)
}

// socketPath follows the Incus client rules for the local socket.
func socketPath() string {
	if s := os.Getenv("INCUS_SOCKET"); s != "" {
		return s
	}
	if d := os.Getenv("INCUS_DIR"); d != "" {
		return filepath.Join(d, "unix.socket")
	}
	if _, err := os.Lstat("/run/incus/unix.socket"); err == nil {
		return "/run/incus/unix.socket"
	}
	return "/var/lib/incus/unix.socket"
}

// realServer connects to the local daemon, or skips t saying why. Requests
// go to log once connected.
func realServer(t *testing.T, log *RequestLog) *Client {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root to use the Incus socket; CI runs it as root after scripts/incus-test-env.sh")
	}
	sock := socketPath()
	if _, err := os.Stat(sock); err != nil {
		skipOrFail(t, "no Incus socket at %s; run scripts/incus-test-env.sh", sock)
	}
	ctx := context.Background()
	c, err := Connect(ctx, Options{Log: log})
	if err != nil {
		skipOrFail(t, "cannot connect to Incus: %v", err)
	}
	if _, err := c.ServerInfo(ctx); err != nil {
		skipOrFail(t, "Incus does not answer on %s: %v", sock, err)
	}
	aliases, err := c.ImageAliases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(aliases, func(a api.ImageAliasesEntry) bool { return a.Name == testImage }) {
		skipOrFail(t, "image alias %q missing; run scripts/incus-test-env.sh", testImage)
	}
	log.Reset()
	return c
}

// names are the unique object names of one test run: a project and a
// network named itx-<hex>/itx<hex>, and a subnet in 10.231.0.0/16.
type names struct {
	project, project2, network string
	octet                      int
}

func newNames(t *testing.T) names {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(b[:3])
	return names{project: "itx-" + h, project2: "itx-" + h + "-b", network: "itx" + h, octet: int(b[3])}
}

func (n names) gateway() string { return fmt.Sprintf("10.231.%d.1/24", n.octet) }
func (n names) ip(host int) string {
	return fmt.Sprintf("10.231.%d.%d", n.octet, host)
}

// mustOK returns the check of a live test's steps: it fails t with the
// step's name and the error, if any.
func mustOK(t *testing.T) func(what string, err error) {
	return func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// containerProject creates the project n.project for a test's containers
// (profiles of its own, the server's images) and returns the source of
// the test image. The caller purges the project.
func containerProject(t *testing.T, c *Client, n names) api.InstanceSource {
	t.Helper()
	must := mustOK(t)
	must("create project", c.CreateProject(context.Background(), api.ProjectsPost{Name: n.project, ProjectPut: api.ProjectPut{
		Config: api.ConfigMap{"features.images": "false", "features.profiles": "true"}}}))
	src, err := c.ResolveImage(testImage)
	must("resolve image", err)
	return src
}

// purge deletes everything in the given projects, then the projects and the
// networks, ignoring what is already gone. It runs in t.Cleanup, also after
// a failure, and touches only the objects named.
func purge(t *testing.T, srv Server, projects []string, networks []string) {
	t.Helper()
	ctx := context.Background()
	var errs []error
	keep := func(err error) {
		if err != nil && !IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	insts, err := srv.Instances(ctx)
	keep(err)
	for _, i := range insts {
		if !slices.Contains(projects, i.Project) {
			continue
		}
		if i.StatusCode == api.Running {
			keep(srv.UpdateInstanceState(ctx, i.Project, i.Name, api.InstanceStatePut{Action: ActionStop, Force: true, Timeout: -1}))
		}
		if cur, etag, err := srv.Instance(ctx, i.Project, i.Name); err == nil {
			if _, ok := cur.Config["security.protection.delete"]; ok {
				delete(cur.Config, "security.protection.delete")
				keep(srv.UpdateInstance(ctx, i.Project, i.Name, cur.Writable(), etag))
			}
		}
		keep(srv.DeleteInstance(ctx, i.Project, i.Name))
	}
	pools, err := srv.StoragePools(ctx)
	keep(err)
	for _, p := range pools {
		vols, err := srv.StorageVolumes(ctx, p.Name)
		keep(err)
		for _, v := range vols {
			if slices.Contains(projects, v.Project) {
				keep(srv.DeleteStorageVolume(ctx, v.Project, p.Name, v.Name))
			}
		}
	}
	profs, err := srv.Profiles(ctx)
	keep(err)
	for _, p := range profs {
		if !slices.Contains(projects, p.Project) {
			continue
		}
		if p.Name == "default" {
			keep(srv.UpdateProfile(ctx, p.Project, p.Name, api.ProfilePut{Config: api.ConfigMap{}, Devices: map[string]map[string]string{}}, ""))
			continue
		}
		keep(srv.DeleteProfile(ctx, p.Project, p.Name))
	}
	for _, p := range projects {
		keep(srv.DeleteProject(ctx, p))
	}
	for _, n := range networks {
		keep(srv.DeleteNetwork(ctx, n))
	}
	if err := errors.Join(errs...); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// expectErr checks that err is an error whose text contains want and, when
// code is not 0, whose Incus status is code.
func expectErr(t *testing.T, what string, err error, code int, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %q", what, want)
		return
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %q does not contain %q", what, err, want)
	}
	if code != 0 {
		if got, ok := api.StatusErrorMatch(err); !ok || got != code {
			t.Errorf("%s: status %d (matched %v), want %d: %v", what, got, ok, code, err)
		}
	}
}
