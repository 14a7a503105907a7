package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The live verify-after-ai-switch test runs at nesting level 91 (its own
// context directory holds absolute_level 91), so every name it creates
// carries the prefix 091-: projects 091-va-a, 091-va-b and 091-ai-tools
// (the AI domain must be called ai-tools; the prefix keeps it apart from
// TestAISwitchLive's), bridges 091-net-va-a (10.210.64.0/24),
// 091-net-va-b (10.210.65.0/24) and 091-net-c3cf985 (ai-tools,
// 10.220.66.0/24; the shortened name of a bridge whose name would not
// fit), infrastructures named va-<random>.

const (
	vaPrefix     = "091-"
	vaToolsNet   = vaPrefix + "net-c3cf985" // the first 7 hex digits of sha256("ai-tools")
	vaToolsProj  = vaPrefix + "ai-tools"
	vaLevel      = "91"
	vaToolsGuest = "va-t1"
)

// vaPSOT: va-a (with egress) and va-b, one container each, and ai-tools
// with one container; exclusive AI access held by va-a at first.
func vaPSOT(infra string) string {
	return `format_version: 1
project_name: ` + infra + `
global:
  addressing: {base_octet: 10, zone_base: 200}
  default_os_image: images:debian/13
  ai_access_policy: exclusive
  ai_access_default: va-a
domains:
  va-a:
    trust_level: trusted
    subnet_id: 64
    ephemeral: true
    machines:
      va-a1: {}
  va-b:
    trust_level: trusted
    subnet_id: 65
    egress: false
    ephemeral: true
    machines:
      va-b1: {}
  ai-tools:
    trust_level: semi-trusted
    subnet_id: 66
    egress: false
    ephemeral: true
    machines:
      ` + vaToolsGuest + `: {}
`
}

// vaLeftover matches the table comment of any infrastructure of this test.
var vaLeftover = regexp.MustCompile(`anklume infra=va-[0-9a-f]{8}"`)

// vaCleanup deletes the 091-va-a, 091-va-b and 091-ai-tools projects with
// their instances, their bridges, and the host table when it belongs to
// infra (to any va- infrastructure with infra "").
func vaCleanup(infra string) {
	for _, p := range []string{vaPrefix + "va-a", vaPrefix + "va-b", vaToolsProj} {
		out, _ := exec.Command("incus", "list", "--project", p, "-c", "n", "-f", "csv").Output()
		for _, n := range strings.Fields(string(out)) {
			_ = exec.Command("incus", "delete", "--force", "--project", p, n).Run()
		}
		_ = exec.Command("incus", "project", "delete", p).Run()
	}
	for _, n := range []string{vaPrefix + "net-va-a", vaPrefix + "net-va-b", vaToolsNet} {
		_ = exec.Command("incus", "network", "delete", n).Run()
	}
	dropHostTable(tableOf(infra, vaLeftover))
}

// vaExpected is the part of `anklume verify --expected --json` a user
// reads to see who may reach whom: every pair's default decision.
type vaExpected struct {
	Pairs []struct {
		From    string `json:"from"`
		To      string `json:"to"`
		Kind    string `json:"kind"`
		Default struct {
			Verdict string `json:"verdict"`
			Reason  struct {
				Kind string `json:"kind"`
				Text string `json:"text"`
			} `json:"reason"`
		} `json:"default"`
	} `json:"pairs"`
}

// TestVerifyAISwitchLive: verify follows `anklume ai switch`. On an
// applied infrastructure whose exclusive AI access is held by va-a, verify
// reports no mismatch and expects va-a -> ai-tools allowed by the AI
// exclusive policy and va-b -> ai-tools denied; after `ai switch va-b`
// the expectations (of verify --json and of verify --expected --json)
// are the reverse, the probes agree (zero mismatches, exit 0), and plan
// shows no reachability change. Then the old holder's accept rule put back
// by hand into the live table is a mismatch that verify names, exit 1.
func TestVerifyAISwitchLive(t *testing.T) {
	needIncus(t)
	needRoot(t, "nft", "ip")
	needBridgeNetfilter(t)
	refuseForeignTable(t, vaLeftover)
	infra := scName(t, "va")
	vaCleanup("")
	t.Cleanup(func() { vaCleanup(infra) })
	dir := writePSOT(t, vaPSOT(infra))
	ctxDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctxDir, "absolute_level"), []byte(vaLevel+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"ANKLUME_CONTEXT_DIR=" + ctxDir, "ANKLUME_STATE_DIR=" + t.TempDir()}
	bin := binary(t)
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return runAnklume(t, bin, dir, env, args...)
	}

	if out, errOut, code := scApplyEnv(t, dir, env); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, m := range [][2]string{{vaPrefix + "va-a", vaPrefix + "va-a1"}, {vaPrefix + "va-b", vaPrefix + "va-b1"}, {vaToolsProj, vaPrefix + vaToolsGuest}} {
		eth0IPv4(t, m[0], m[1])
	}

	// holderIs checks, in verify --json (the run) and verify --expected
	// --json (the matrix alone), that holder may reach ai-tools by the AI
	// exclusive policy and other may not, and that the probes proved both.
	holderIs := func(t *testing.T, holder, other string) {
		t.Helper()
		doc := verifyJSON(t, dir, env, 0)
		if !doc.OK || doc.Mismatches != 0 || doc.Probes == 0 {
			t.Errorf("verify --json with %s holding the access: ok %v, %d mismatches, %d probes", holder, doc.OK, doc.Mismatches, doc.Probes)
		}
		var seenHolder, seenOther bool
		for _, r := range doc.Results {
			if r.Mismatch {
				t.Errorf("mismatch: %+v", r)
			}
			if r.ToDomain != "ai-tools" || r.Kind != "machine" {
				continue
			}
			switch r.FromDomain {
			case holder:
				seenHolder = true
				if r.Expected.Verdict != "allow" || r.Expected.Reason.Kind != "ai-policy" ||
					!strings.Contains(r.Expected.Reason.Text, "("+holder+" -> ai-tools)") || !(r.Outcome == "accepted" || r.Outcome == "refused") {
					t.Errorf("%s -> ai-tools: want allow by the AI exclusive policy, reachable; got %+v", holder, r)
				}
			case other:
				seenOther = true
				if r.Expected.Verdict != "deny" || r.Expected.Reason.Kind != "cross-domain" || r.Outcome != "timeout" {
					t.Errorf("%s -> ai-tools: want deny by the cross-domain drop, timeout; got %+v", other, r)
				}
			}
		}
		if !seenHolder || !seenOther {
			t.Errorf("verify --json probed no %s -> ai-tools (%v) or no %s -> ai-tools (%v)", holder, seenHolder, other, seenOther)
		}

		out, errOut, code := run("verify", "--expected", "--json")
		var mx vaExpected
		if err := json.Unmarshal([]byte(out), &mx); code != 0 || err != nil {
			t.Fatalf("verify --expected --json: exit %d, %v\n%s\n%s", code, err, out, errOut)
		}
		got := map[string]string{}
		for _, p := range mx.Pairs {
			if p.Kind == "machine" && p.To == vaToolsGuest {
				got[p.From] = p.Default.Verdict + " " + p.Default.Reason.Kind
			}
		}
		want := map[string]string{holder + "1": "allow ai-policy", other + "1": "deny cross-domain"}
		for from, w := range want {
			if got[from] != w {
				t.Errorf("verify --expected --json: %s -> %s is %q, want %q", from, vaToolsGuest, got[from], w)
			}
		}
	}

	t.Run("before the switch", func(t *testing.T) { holderIs(t, "va-a", "va-b") })

	// The switch persists the rules as apply did (the file the boot unit
	// loads, and the one plan compares with).
	out, errOut, code := run("ai", "switch", "va-b")
	if code != 0 || !strings.Contains(out, "the access to ai-tools moved from va-a to va-b") {
		t.Fatalf("ai switch: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Run("after the switch", func(t *testing.T) { holderIs(t, "va-b", "va-a") })

	// The plan of the same infra.yml sees nothing to change, reachability
	// included: the switch is not a drift, and the persisted rules hold the
	// new holder.
	out, errOut, code = run("plan", "--detailed-exitcode")
	if code != 0 || strings.Contains(out, "Reachability changes") || !strings.HasSuffix(out, "No changes. Incus matches the configuration.\n") {
		t.Errorf("plan after ai switch: exit %d\n%s\n%s", code, out, errOut)
	}

	// The old holder's accept rule put back by hand: verify names the
	// table drift and the path it opens, and exits 1.
	t.Run("old rule put back", func(t *testing.T) {
		mustRun(t, "", "nft", "insert", "rule", "inet", "anklume", "isolation",
			`iifname "`+vaPrefix+`net-va-a" oifname "`+vaToolsNet+`" accept`)
		out, errOut, code := run("verify")
		if code != 1 {
			t.Errorf("verify: exit %d, want 1", code)
		}
		for _, want := range []string{
			"FAIL table inet anklume loaded and identical to the PSOT: nftables: drift",
			"MISMATCH va-a1 -> " + vaToolsGuest + " (10.220.66.",
			": expected deny by cross-domain drop: no policy opens va-a -> ai-tools; got ",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("verify lacks %q", want)
			}
		}
		if strings.Contains(out, "MISMATCH va-b1") {
			t.Errorf("verify blames the new holder")
		}
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
		}
		doc := verifyJSON(t, dir, env, 1)
		named := false
		for _, r := range doc.Results {
			named = named || r.Mismatch && r.From == "va-a1" && r.To == vaToolsGuest && r.Expected.Verdict == "deny" &&
				(r.Outcome == "accepted" || r.Outcome == "refused")
		}
		if doc.OK || !named {
			t.Errorf("verify --json with the old rule back: ok %v, va-a1 -> %s named %v", doc.OK, vaToolsGuest, named)
		}
	})
}
