package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/emit/preseed"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/incusx"
)

// planPSOT is the live plan scenario: two domains prefixed pl- (the apply
// tests use ap-), subnets pinned with subnet_id 77 and 78 so that they do
// not meet other tests' bridges, egress off (no NAT), ephemeral.
const planPSOT = `project_name: e2e-plan
global:
  addressing: {base_octet: 10, zone_base: 200}
domains:
  pl-admin:
    trust_level: admin
    subnet_id: 77
    egress: false
    ephemeral: true
    machines:
      pl-a1: {}
  pl-work:
    trust_level: trusted
    subnet_id: 78
    egress: false
    ephemeral: true
    machines:
      pl-w1:
        state: stopped
        config: {limits.cpu: "1"}
`

// planRun runs `anklume args…` in dir with the test host environment and
// the extra environment env.
func planRun(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ANKLUME_IMAGE_MAP=images:debian/13="+testImage,
		"ANKLUME_CONTEXT_DIR="+t.TempDir(), "ANKLUME_HOST_RESOURCES=cpu=10,memory=40GiB",
		"ANKLUME_SKIP_HOST_SUBNET_CHECK=1", "NO_COLOR=1")
	cmd.Env = append(cmd.Env, env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running anklume %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// planState compiles src as the anklume binary would, for the helpers
// that create objects directly.
func planState(t *testing.T, src string) *incus.State {
	t.Helper()
	opts := host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30},
		ImageMap: map[string]string{"images:debian/13": testImage}}
	res, dl, err := compiler.Compile(fstest.MapFS{"infra.yml": {Data: []byte(src)}},
		compiler.Input{Path: "infra.yml", Display: "infra.yml"}, opts)
	if err != nil || res == nil {
		t.Fatalf("compile: %v %v", err, dl)
	}
	return incus.Desired(res.Model)
}

// TestPlanLive plans against the real daemon: creates on an empty server;
// then, with the projects, bridges and profiles made by the preseed and
// the instances created stopped through incusx, only the expected
// instance differences: a start for the running machine, nothing for the
// stopped one, a drifted limits.cpu, and never a hand-added key (SPEC.md
// §16 #56, #57, #58, §9.6).
func TestPlanLive(t *testing.T) {
	needIncus(t)
	state := planState(t, planPSOT)
	cleanupInfra(state)
	t.Cleanup(func() { cleanupInfra(state) })
	dir := writePSOT(t, planPSOT)

	out, errOut, code := planRun(t, dir, nil, "plan", "--detailed-exitcode")
	if code != 2 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, l := range []string{
		"Domain pl-admin (project pl-admin, network net-pl-admin)",
		"  + project pl-admin", "  + network net-pl-admin", "  + profile pl-admin/default",
		"  + instance pl-admin/pl-a1 (lxc, anklume-test, 10.200.77.1)",
		"  + instance pl-work/pl-w1 (lxc, anklume-test, 10.210.78.1)",
		"Plan: 8 to create, 0 to update, 0 to delete.",
	} {
		if !strings.Contains(out, l+"\n") {
			t.Errorf("plan lacks %q:\n%s", l, out)
		}
	}

	// Create the objects: the preseed, then the instances, stopped.
	mustRun(t, string(preseed.Render(state)), "incus", "admin", "init", "--preseed")
	ctx := context.Background()
	srv, err := incusx.Connect(ctx, incusx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range state.Projects {
		for _, x := range p.Instances {
			req := x.InstancesPost
			req.Start = false
			req.Source = incusSource(t, srv, x.Image)
			if err := srv.CreateInstance(ctx, p.Name, req); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustRun(t, "", "incus", "config", "set", "--project", "pl-work", "pl-w1", "limits.cpu=2", "user.foo=bar")
	mustRun(t, "", "incus", "config", "set", "--project", "pl-admin", "pl-a1", "limits.memory=256MiB")

	out, errOut, code = planRun(t, dir, nil, "plan")
	want := "! image images:debian/13: mapped to anklume-test by ANKLUME_IMAGE_MAP\n\n" +
		"Domain pl-admin (project pl-admin, network net-pl-admin)\n" +
		"  ~ instance pl-admin/pl-a1 (start, repair: never started since an earlier run created it)\n\n" +
		"Domain pl-work (project pl-work, network net-pl-work)\n" +
		"  ~ instance pl-work/pl-w1\n" +
		"      ~ config[\"limits.cpu\"]: \"2\" -> \"1\"\n\n" +
		"Plan: 0 to create, 2 to update, 0 to delete.\n"
	if code != 0 || out != want {
		t.Errorf("exit %d\ngot:\n%s\nwant:\n%s\nstderr:\n%s", code, out, want, errOut)
	}
	out, _, _ = planRun(t, dir, nil, "plan", "--json")
	if !strings.HasPrefix(out, `{"format_version":1,"changes":[{"action":"start","kind":"instance","name":"pl-admin/pl-a1"`) {
		t.Errorf("--json:\n%s", out)
	}

	// After the drift is undone, and the instance started, the plan is empty.
	mustRun(t, "", "incus", "config", "set", "--project", "pl-work", "pl-w1", "limits.cpu=1")
	mustRun(t, "", "incus", "start", "--project", "pl-admin", "pl-a1")
	out, errOut, code = planRun(t, dir, nil, "plan", "--detailed-exitcode")
	if code != 0 || !strings.HasSuffix(out, "No changes. Incus matches the configuration.\n") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	mustRun(t, "", "incus", "stop", "--force", "--project", "pl-admin", "pl-a1")
}

// incusSource resolves an image reference as apply does.
func incusSource(t *testing.T, srv incusx.Server, ref string) api.InstanceSource {
	t.Helper()
	s, err := srv.ResolveImage(ref)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// synthPSOT returns nd domains of nm machines each, in the pl- namespace.
func synthPSOT(nd, nm int) string {
	var b strings.Builder
	b.WriteString("project_name: e2e-plan-count\nglobal:\n  addressing: {base_octet: 10, zone_base: 200}\ndomains:\n")
	for d := range nd {
		fmt.Fprintf(&b, "  pl-c%d:\n    trust_level: trusted\n    subnet_id: %d\n    egress: false\n    ephemeral: true\n    machines:\n", d, 80+d)
		for m := range nm {
			fmt.Fprintf(&b, "      pl-c%d-%d: {}\n", d, m)
		}
	}
	return b.String()
}

// TestPlanRequestCount counts the requests of `anklume plan` with a proxy
// on the socket: 1 × 1 and 3 × 3 make the same requests, exactly those of
// §9.1 (SPEC.md §16 #63; 20 × 10 is counted on the fake in
// internal/reconcile), GET /1.0 first and the others at once (compared in
// sorted order), the bridges and the projects read from the Incus
// database in place of GET /1.0/networks?recursion=1 and
// GET /1.0/projects?recursion=1 (reconcile.Observe says why). The
// configuration metadata is fetched on a cold cache only: a second plan
// with the same cache directory reads it from disk.
func TestPlanRequestCount(t *testing.T) {
	needIncus(t)
	target := "/var/lib/incus/unix.socket"
	if _, err := os.Lstat("/run/incus/unix.socket"); err == nil {
		target = "/run/incus/unix.socket"
	}
	if s := os.Getenv("INCUS_SOCKET"); s != "" {
		target = s
	}
	count := func(src, cache string) []string {
		t.Helper()
		var log incusx.RequestLog
		p, err := incusx.NewSocketProxy(target, filepath.Join(t.TempDir(), "incus.socket"), &log)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		out, errOut, code := planRun(t, writePSOT(t, src), []string{"INCUS_SOCKET=" + p.Path, "XDG_CACHE_HOME=" + cache}, "plan")
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		// GET /1.0 before every other read but the instance list, which
		// is sent first.
		got := log.Strings()
		if rest := slices.DeleteFunc(slices.Clone(got), func(r string) bool {
			return r == "GET /1.0/instances?all-projects=true&recursion=1"
		}); len(rest) == 0 || rest[0] != "GET /1.0" {
			t.Errorf("first request: %q", got)
		}
		return slices.Sorted(slices.Values(got))
	}
	cache := t.TempDir()
	small, big := count(synthPSOT(1, 1), cache), count(synthPSOT(3, 3), t.TempDir())
	if !slices.Equal(small, big) {
		t.Errorf("1×1:\n%s\n3×3:\n%s", strings.Join(small, "\n"), strings.Join(big, "\n"))
	}
	want := []string{
		"GET /1.0",
		"GET /1.0/images/aliases?recursion=1",
		"GET /1.0/instances?all-projects=true&recursion=1",
		"GET /1.0/metadata/configuration",
		"GET /1.0/profiles?all-projects=true&recursion=1",
		"GET /1.0/storage-pools/default/volumes/custom?all-projects=true&recursion=1",
		"GET /1.0/storage-pools?recursion=1",
		"POST /internal/sql", // the bridges and the projects, read from the
		"POST /internal/sql", // database on the local socket
	}
	warm := count(synthPSOT(1, 1), cache)
	if w := slices.DeleteFunc(slices.Clone(want), func(r string) bool { return r == "GET /1.0/metadata/configuration" }); !slices.Equal(warm, w) {
		t.Errorf("warm cache requests:\n%s", strings.Join(warm, "\n"))
	}
	if !slices.Equal(small, want) {
		t.Errorf("requests:\n%s", strings.Join(small, "\n"))
	}
}
