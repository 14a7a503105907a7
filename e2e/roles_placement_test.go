package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeIncusQuery is an `incus` client that answers `incus query` from the
// routes in $FAKE_INCUS/routes.json (path -> JSON body; a missing route is
// the error Incus gives a single server for /1.0/cluster/members) and logs
// every POST and PUT to $FAKE_INCUS/calls.jsonl, answering {}.
const fakeIncusQuery = `#!/usr/bin/env python3
import json, os, sys
d = os.environ["FAKE_INCUS"]
args = sys.argv[1:]
if not args or args[0] != "query":
    sys.exit("fake incus: only query: %r" % args)
method, data, target, i = "GET", None, None, 1
while i < len(args):
    a = args[i]
    if a == "-X":
        method = args[i + 1]; i += 2; continue
    if a == "--data":
        data = args[i + 1]; i += 2; continue
    if a.startswith("-"):
        i += 1; continue
    target = a; i += 1
path = target.split(":", 1)[1]
if method != "GET":
    with open(os.path.join(d, "calls.jsonl"), "a") as f:
        f.write(json.dumps({"method": method, "path": path, "data": json.loads(data) if data else None}) + "\n")
    print("{}")
    sys.exit(0)
routes = json.load(open(os.path.join(d, "routes.json")))
if path not in routes:
    sys.stderr.write("Error: Server is not clustered\n")
    sys.exit(1)
print(json.dumps(routes[path]))
`

// placementPlay runs the incus_projects role alone, as play 3 does.
const placementPlay = `---
- name: Projects only
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - incus_projects
`

// placementPSOT: pl-a targets m1, pl-b (two machines) and pl-c target the
// group lab (m2, m3), pl-d (two machines) and pl-e have no target, and a
// policy links pl-e to pl-d (allowed: neither has a target).
const placementPSOT = `format_version: 1
project_name: pl-infra
global:
  addressing: {base_octet: 10, zone_base: 200}
domains:
  pl-a:
    trust_level: trusted
    target: m1
    machines:
      pl-a1: {}
  pl-b:
    trust_level: trusted
    target: "@lab"
    machines:
      pl-b1: {}
      pl-b2: {}
  pl-c:
    trust_level: trusted
    target: "@lab"
    machines:
      pl-c1: {}
  pl-d:
    trust_level: trusted
    machines:
      pl-d1: {}
      pl-d2: {}
  pl-e:
    trust_level: trusted
    machines:
      pl-e1: {}
network_policies:
  - {from: pl-e, to: pl-d, ports: [80]}
`

// member is one entry of /1.0/cluster/members?recursion=1.
func member(name, status string, groups ...string) map[string]any {
	return map[string]any{"server_name": name, "status": status, "groups": append([]string{"default"}, groups...),
		"url": "https://198.18.0." + name[1:] + ":8443"}
}

// liveInst is one entry of /1.0/instances?all-projects=true&recursion=1.
func liveInst(project, name, location string, managed bool) map[string]any {
	cfg := map[string]string{}
	if managed {
		cfg["user.anklume.managed"] = "true"
	}
	return map[string]any{"name": name, "project": project, "location": location, "config": cfg}
}

// ownedProject is a live project of infrastructure pl-infra.
func ownedProject(name string, extra map[string]string) map[string]any {
	cfg := map[string]string{"user.anklume.managed": "true", "user.anklume.infra": "pl-infra", "user.anklume.domain": name}
	for k, v := range extra {
		cfg[k] = v
	}
	return map[string]any{"name": name, "config": cfg}
}

// TestRolesPlacement runs the incus_projects role of the generated tree
// against a fake incus client: on a cluster it records on each domain's
// project the member anklume apply would choose (the member its target
// names; for a group, the online member with the fewest anklume
// instances, counting the domains placed before it, ties by name; the
// member of a domain a policy links it to), keeps a recorded member, takes
// the member of the first instance of a project made before the key
// existed, and stops with the reason where apply would move a domain or
// leave one on an offline member alone; on a single server it records
// nothing.
func TestRolesPlacement(t *testing.T) {
	needTools(t, "ansible-playbook", "python3")
	dir := t.TempDir()
	syncPSOT(t, dir, placementPSOT)
	if err := os.WriteFile(filepath.Join(dir, "placement.yml"), []byte(placementPlay), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "incus"), []byte(fakeIncusQuery), 0o755); err != nil {
		t.Fatal(err)
	}
	lab := []map[string]any{member("m1", "Online"), member("m2", "Online", "lab"), member("m3", "Online", "lab")}
	cluster := map[string]any{"enabled": true}
	for _, c := range []struct {
		name      string
		routes    map[string]any
		want      map[string]string // project -> recorded member ("" none), among the POSTs and PUTs
		wantError string            // in the output of a failed run
	}{{
		name:   "single server",
		routes: map[string]any{"/1.0/cluster": map[string]any{"enabled": false}, "/1.0/projects?recursion=1": []any{}},
		want:   map[string]string{"pl-a": "", "pl-b": "", "pl-c": "", "pl-d": "", "pl-e": ""},
	}, {
		// m2 runs one anklume instance of another infrastructure and an
		// unmanaged one: pl-b (2 instances) goes to m3, pl-c to m2 (1 vs
		// 2), pl-d to m1 (1 with pl-a, m2 2, m3 2), pl-e joins pl-d on m1
		// (which now has the most instances).
		name: "fresh cluster",
		routes: map[string]any{"/1.0/cluster": cluster, "/1.0/projects?recursion=1": []any{},
			"/1.0/cluster/members?recursion=1":             lab,
			"/1.0/instances?all-projects=true&recursion=1": []any{liveInst("other", "x1", "m2", true), liveInst("other", "x2", "m3", false)}},
		want: map[string]string{"pl-a": "m1", "pl-b": "m3", "pl-c": "m2", "pl-d": "m1", "pl-e": "m1"},
	}, {
		// pl-b records m2 (kept, though m2 is busier); pl-c was made
		// before the key existed and its instance runs on m3; pl-d goes
		// to m1 (tied with m3, first by name), pl-e joins it.
		name: "recorded members",
		routes: map[string]any{"/1.0/cluster": cluster, "/1.0/cluster/members?recursion=1": lab,
			"/1.0/projects?recursion=1": []any{ownedProject("pl-b", map[string]string{"user.anklume.member": "m2"}),
				ownedProject("pl-c", nil)},
			"/1.0/instances?all-projects=true&recursion=1": []any{liveInst("pl-c", "pl-c1", "m3", true),
				liveInst("other", "x1", "m2", true), liveInst("other", "x2", "m2", true)}},
		want: map[string]string{"pl-a": "m1", "pl-b": "m2", "pl-c": "m3", "pl-d": "m1", "pl-e": "m1"},
	}, {
		name: "target changed",
		routes: map[string]any{"/1.0/cluster": cluster, "/1.0/cluster/members?recursion=1": lab,
			"/1.0/projects?recursion=1":                    []any{ownedProject("pl-a", map[string]string{"user.anklume.member": "m2"})},
			"/1.0/instances?all-projects=true&recursion=1": []any{}},
		wantError: "domain pl-a: it is on cluster member m2 and its target is now m1; site.yml does not move a domain between members",
	}, {
		name: "member offline",
		routes: map[string]any{"/1.0/cluster": cluster,
			"/1.0/cluster/members?recursion=1":             []map[string]any{member("m1", "Online"), member("m2", "Online", "lab"), member("m3", "Offline", "lab")},
			"/1.0/projects?recursion=1":                    []any{ownedProject("pl-c", map[string]string{"user.anklume.member": "m3"})},
			"/1.0/instances?all-projects=true&recursion=1": []any{}},
		wantError: "domain pl-c: cluster member m3 is offline",
	}} {
		t.Run(c.name, func(t *testing.T) {
			out, calls, err := fakeIncusPlay(t, dir, bin, c.routes, "placement.yml")
			if c.wantError != "" {
				if err == nil || !strings.Contains(out, c.wantError) {
					t.Fatalf("want a failed run saying %q: %v\n%s", c.wantError, err, out)
				}
				if len(calls) > 0 {
					t.Errorf("the failed run changed Incus:\n%s", calls)
				}
				return
			}
			if err != nil {
				t.Fatalf("ansible-playbook: %v\n%s", err, out)
			}
			got := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(string(calls)), "\n") {
				if line == "" {
					continue
				}
				var call struct {
					Method, Path string
					Data         struct {
						Name   string            `json:"name"`
						Config map[string]string `json:"config"`
					}
				}
				if err := json.Unmarshal([]byte(line), &call); err != nil {
					t.Fatal(err)
				}
				name := call.Data.Name
				if call.Method == "PUT" {
					name = strings.TrimPrefix(call.Path, "/1.0/projects/")
				}
				got[name] = call.Data.Config["user.anklume.member"]
			}
			for p, m := range c.want {
				if g, ok := got[p]; !ok || g != m {
					t.Errorf("project %s: created or updated %v with user.anklume.member %q, want %q\n%s", p, ok, g, m, out)
				}
			}
		})
	}
}

// fakeIncusPlay runs playbook in dir with the fake incus client of bin
// answering routes (path -> JSON body), and returns the play's output and
// the POST and PUT calls it made (calls.jsonl; empty when none).
func fakeIncusPlay(t *testing.T, dir, bin string, routes map[string]any, playbook string) (string, []byte, error) {
	t.Helper()
	fake := t.TempDir()
	b, err := json.Marshal(routes)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fake, "routes.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ansible-playbook", "-i", "inventory", playbook)
	cmd.Dir = dir
	cmd.Env = append(ansibleEnv(dir), "FAKE_INCUS="+fake, "PATH="+bin+":"+os.Getenv("PATH"))
	out, runErr := cmd.CombinedOutput()
	calls, err := os.ReadFile(filepath.Join(fake, "calls.jsonl"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(out), calls, runErr
}
