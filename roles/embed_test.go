package roles

import (
	"slices"
	"strings"
	"testing"
)

// spec lists the roles of SPEC.md §6.7 item 2, plus _shared.
var spec = []string{
	"incus_projects", "incus_networks", "incus_profiles", "incus_images", "incus_instances",
	"incus_nftables", "incus_firewall_vm", "incus_nesting",
	"base_system", "admin_bootstrap", "ollama_server", "open_webui", "stt_server", "lobechat",
	"opencode_server", "code_sandbox", "openclaw_server", "llm_sanitizer", "firewall_router",
	"tor_gateway", "print_server", "dev_test_runner", "dev_agent_runner",
	"_shared",
}

// TestRoles checks that the 23 roles of §6.7 item 2 and _shared are
// embedded, each with tasks, defaults, meta and a README, and that no Go
// file is among the role files.
func TestRoles(t *testing.T) {
	names := Names()
	if len(names) != len(spec) {
		t.Errorf("got %d roles %v, want %d", len(names), names, len(spec))
	}
	files := map[string]bool{}
	for _, f := range Files() {
		files[f.Path] = true
		if strings.HasSuffix(f.Path, ".go") {
			t.Errorf("Go file %s among the role files", f.Path)
		}
		if len(f.Content) == 0 {
			t.Errorf("%s is empty", f.Path)
		}
	}
	for _, r := range spec {
		if !slices.Contains(names, r) {
			t.Errorf("role %s is missing", r)
		}
		for _, f := range []string{"tasks/main.yml", "defaults/main.yml", "meta/main.yml", "README.md"} {
			if !files[r+"/"+f] {
				t.Errorf("%s/%s is missing", r, f)
			}
		}
	}
}

// TestNoStubRoles: every shipped role is implemented; none stops with a
// "not implemented yet" failure (issue 7).
func TestNoStubRoles(t *testing.T) {
	if len(Files()) == 0 {
		t.Fatal("no embedded role files")
	}
	for _, f := range Files() {
		if strings.Contains(string(f.Content), "not implemented yet") {
			t.Errorf("%s still says it is not implemented", f.Path)
		}
	}
}
