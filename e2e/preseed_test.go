package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/emit/preseed"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/examples"
)

// testImage is the local image scripts/incus-test-env.sh imports.
const testImage = "anklume-test"

// needIncus skips t, saying why, unless the local Incus daemon answers and
// holds the test image. CI runs scripts/incus-test-env.sh first.
func needIncus(t *testing.T) {
	t.Helper()
	needRoot(t, "incus")
	if out, err := exec.Command("incus", "info").CombinedOutput(); err != nil {
		skip(t, "the Incus daemon does not answer (run scripts/incus-test-env.sh): %v %s", err, firstLine(out))
	}
	if err := exec.Command("incus", "image", "info", testImage).Run(); err != nil {
		skip(t, "image %q is missing (run scripts/incus-test-env.sh)", testImage)
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

func mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func query(t *testing.T, path string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(mustRun(t, "", "incus", "query", path)), v); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
}

// cleanupInfra deletes every object the preseed of infra created, instances
// first, then profiles, projects and networks. It only touches objects
// whose user.anklume.infra names infra.
func cleanupInfra(s *incus.State) {
	for _, p := range s.Projects {
		out, _ := exec.Command("incus", "list", "--project", p.Name, "-c", "n", "-f", "csv").Output()
		for _, n := range strings.Fields(string(out)) {
			_ = exec.Command("incus", "delete", "--force", "--project", p.Name, n).Run()
		}
		for _, pr := range p.Profiles {
			if pr.Name != "default" {
				_ = exec.Command("incus", "profile", "delete", "--project", p.Name, pr.Name).Run()
			}
		}
		_ = exec.Command("incus", "project", "delete", p.Name).Run()
	}
	for _, n := range s.Networks {
		_ = exec.Command("incus", "network", "delete", n.Name).Run()
	}
}

// TestPreseedLive applies the preseed of every example twice with
// `incus admin init --preseed`, then creates and updates one stopped
// container per profile in each project, which shows that the restricted.*
// keys allow what the profiles hold, and compares the created objects
// with the desired ones (SPEC.md §8, §16 #54).
//
// The test daemon is shared, so the bridges are created with NAT off
// (ipv4.nat is rewritten to "false" in the applied copy): test networks
// must not reach outside this machine. Every object is removed afterwards.
func TestPreseedLive(t *testing.T) {
	needIncus(t)
	opts := host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
	for _, name := range examples.Names() {
		t.Run(name, func(t *testing.T) {
			data, err := fs.ReadFile(examples.FS(), name+"/infra.yml")
			if err != nil {
				t.Fatal(err)
			}
			res, dl, err := compiler.Compile(fstest.MapFS{"infra.yml": {Data: data}}, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, opts)
			if err != nil || res == nil {
				t.Fatalf("compile: %v %v", err, dl)
			}
			state := incus.Desired(res.Model)
			cleanupInfra(state)
			t.Cleanup(func() { cleanupInfra(state) })

			doc := string(preseed.Render(state))
			doc = strings.ReplaceAll(doc, "ipv4.nat: 'true'", "ipv4.nat: 'false'")
			for i := 0; i < 2; i++ {
				mustRun(t, doc, "incus", "admin", "init", "--preseed")
			}

			for _, want := range state.Networks {
				var got struct {
					Description string            `json:"description"`
					Config      map[string]string `json:"config"`
				}
				query(t, "/1.0/networks/"+want.Name, &got)
				for k, v := range want.Config {
					if k == "ipv4.nat" {
						v = "false"
					}
					if got.Config[k] != v {
						t.Errorf("network %s: %s = %q, want %q", want.Name, k, got.Config[k], v)
					}
				}
			}
			for _, p := range state.Projects {
				var got struct {
					Config map[string]string `json:"config"`
				}
				query(t, "/1.0/projects/"+p.Name, &got)
				for k, v := range p.Config {
					if got.Config[k] != v {
						t.Errorf("project %s: %s = %q, want %q", p.Name, k, got.Config[k], v)
					}
				}
				for k, v := range got.Config {
					if strings.HasPrefix(k, "restricted") && p.Config[k] != v {
						t.Errorf("project %s: unexpected %s = %q", p.Name, k, v)
					}
				}
				for i, pr := range p.Profiles {
					var live struct {
						Config  map[string]string            `json:"config"`
						Devices map[string]map[string]string `json:"devices"`
					}
					query(t, "/1.0/profiles/"+pr.Name+"?project="+p.Name, &live)
					for k, v := range pr.Config {
						if live.Config[k] != v {
							t.Errorf("profile %s/%s: %s = %q, want %q", p.Name, pr.Name, k, live.Config[k], v)
						}
					}
					for dev, props := range pr.Devices {
						for k, v := range props {
							if live.Devices[dev][k] != v {
								t.Errorf("profile %s/%s: device %s: %s = %q, want %q", p.Name, pr.Name, dev, k, live.Devices[dev][k], v)
							}
						}
					}
					// One stopped container per profile, created and updated.
					inst := "pst-" + strings.ReplaceAll(pr.Name, "_", "-")
					if len(inst) > 60 {
						inst = inst[:60]
					}
					args := []string{"incus", "init", testImage, inst, "--project", p.Name, "--profile", "default"}
					if pr.Name != "default" {
						args = append(args, "--profile", pr.Name)
					}
					if i == 0 || pr.Name != "default" {
						mustRun(t, "", args...)
						mustRun(t, "", "incus", "config", "set", "--project", p.Name, inst, "user.anklume-test", "updated")
					}
				}
			}
		})
	}
}

func init() {
	// The e2e tests talk to the local daemon only.
	os.Unsetenv("INCUS_REMOTE")
}
