package aicmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	aicmd "github.com/anklume/anklume/cmd/ai"
	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/emit/nft"
	"github.com/anklume/anklume/compiler/reach"
	"github.com/anklume/anklume/internal/desktest"
	_ "github.com/anklume/anklume/internal/goldenflag" // accept go test ./... -update
	nftsys "github.com/anklume/anklume/internal/nftables"
)

const psot = `format_version: 1
project_name: i14-ai
global:
  addressing: {}
  ai_access_policy: exclusive
  ai_access_default: work
domains:
  work:
    trust_level: trusted
    machines:
      w1: {}
  pro:
    trust_level: trusted
    machines:
      p1: {}
  ai-tools:
    trust_level: semi-trusted
    machines:
      gpu-server: {gpu: true}
      chat: {}
network_policies:
  - {from: work, to: pro, ports: [22]}
`

// switcher runs `anklume ai ARGS` on the fake with the nftables deploy,
// nvidia-smi lookup and flush replaced by recorders.
type switcher struct {
	e        *desktest.Env
	deployed []nftsys.DeployOptions
	flushed  int
	nvidia   bool
}

func (s *switcher) run(args ...string) desktest.Result {
	var out, errOut bytes.Buffer
	f := s.e.Factory(bytes.NewReader(nil), &out, &errOut)
	cmd := aicmd.NewCmdAI(f, func(o *aicmd.Options) error {
		o.Deploy = func(_ context.Context, d nftsys.DeployOptions) error { s.deployed = append(s.deployed, d); return nil }
		o.LookPath = func(string) (string, error) {
			if s.nvidia {
				return "/usr/bin/nvidia-smi", nil
			}
			return "", os.ErrNotExist
		}
		o.Flush = func(context.Context, string) error { s.flushed++; return nil }
		if o.Domain != "" || len(args) > 0 && args[0] == "switch" {
			return aicmd.Switch(context.Background(), o)
		}
		return aicmd.Status(context.Background(), o)
	})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	code := cmdutil.ExitOK
	if err := cmd.Execute(); err != nil {
		code = cmdutil.ExitFailure
		errOut.WriteString("error: " + err.Error() + "\n")
	}
	return desktest.Result{Code: code, Stdout: out.String(), Stderr: errOut.String()}
}

func holderKeys(t *testing.T, s *switcher) map[string]string {
	t.Helper()
	ps, err := s.e.Fake.Projects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range ps {
		if v, ok := p.Config[incus.KeyAIAccessHolder]; ok {
			out[p.Name] = v
		}
	}
	return out
}

// TestSwitch: dry run changes nothing; a switch stops and starts the GPU
// machine, records the holder on every project, loads rules from the new
// holder only and flushes the GPU; plan is then empty, import round-trips
// and status says who holds it; switching back removes the record.
func TestSwitch(t *testing.T) {
	s := &switcher{e: desktest.New(t, psot), nvidia: true}
	if got := s.run("status"); got.Code != 0 || got.Stdout != "AI access: exclusive\nholder: work (ai_access_default)\nai-tools GPU machines: gpu-server\n" {
		t.Errorf("status: %+v", got)
	}
	got := s.run("switch", "pro", "--dry-run")
	if got.Code != 0 || !strings.Contains(got.Stdout, "would move from work to pro") || !strings.Contains(got.Stdout, "stop and start again: gpu-server") ||
		len(s.deployed) != 0 || len(holderKeys(t, s)) != 0 {
		t.Errorf("dry run: %+v, %d deploys, keys %v", got, len(s.deployed), holderKeys(t, s))
	}
	if got := s.e.Run(nil, "sync"); got.Code != 0 {
		t.Fatalf("sync: %+v", got)
	}
	s.e.Fake.Log().Reset()
	got = s.run("switch", "pro")
	if got.Code != 0 || got.Stdout != "ai switch: the access to ai-tools moved from work to pro (1 GPU instances restarted)\n" {
		t.Fatalf("switch pro: %+v", got)
	}
	if k := holderKeys(t, s); len(k) != 3 || k["work"] != "pro" || k["pro"] != "pro" || k["ai-tools"] != "pro" {
		t.Errorf("holder keys %v", k)
	}
	log := strings.Join(s.e.Fake.Log().Strings(), "\n")
	if stop, start := strings.Index(log, "PUT /1.0/instances/gpu-server/state?project=ai-tools"),
		strings.LastIndex(log, "PUT /1.0/instances/gpu-server/state?project=ai-tools"); stop < 0 || stop == start {
		t.Errorf("gpu-server not stopped then started:\n%s", log)
	}
	if len(s.deployed) != 1 || s.flushed != 1 {
		t.Fatalf("%d deploys, %d flushes", len(s.deployed), s.flushed)
	}
	rules := string(nft.Render(s.deployed[0].Model))
	if !strings.Contains(rules, "AI access: pro -> ai-tools") || strings.Contains(rules, "AI access: work -> ai-tools") {
		t.Errorf("deployed rules:\n%s", rules)
	}
	if got := s.run("status"); !strings.Contains(got.Stdout, "holder: pro (moved by anklume ai switch; ai_access_default is work)") {
		t.Errorf("status after switch: %+v", got)
	}
	// plan on the PSOT: no changes; apply keeps the holder.
	if got := s.e.Run(nil, "plan", "--detailed-exitcode"); got.Code != 0 || !strings.HasSuffix(got.Stdout, "No changes. Incus matches the configuration.\n") {
		t.Errorf("plan after switch: %+v", got)
	}
	// The switch rewrote the tree sync had made, nftables render prints
	// what deploy loaded, and sync writes the same tree again: the tree
	// keeps the switch, so ansible-playbook site.yml loads pro's rules
	// and records pro on the projects.
	checkTree := func(when string) {
		t.Helper()
		rs, _ := os.ReadFile(filepath.Join(s.e.Dir, "nftables", "anklume-isolation.nft"))
		desired, _ := os.ReadFile(filepath.Join(s.e.Dir, "incus", "desired-state.yml"))
		if !strings.Contains(string(rs), "AI access: pro -> ai-tools") || strings.Contains(string(rs), "AI access: work -> ai-tools") ||
			strings.Count(string(desired), incus.KeyAIAccessHolder+": pro") != 3 {
			t.Errorf("tree %s:\n%s\n%s", when, rs, desired)
		}
	}
	checkTree("right after the switch")
	if got := s.e.Run(nil, "nftables", "render"); got.Code != 0 || got.Stdout != rules {
		t.Errorf("nftables render after switch: exit %d, %s\nwant the deployed rules:\n%s", got.Code, got.Stderr, rules)
	}
	// verify --expected draws the matrix of the rules deploy loaded.
	if got := aiMatrix(t, s); got["p1"] != "allow ai-policy" || got["w1"] != "deny cross-domain" {
		t.Errorf("verify --expected after the switch: who reaches chat: %v", got)
	}
	if got := s.e.Run(nil, "sync"); got.Code != 0 || !strings.Contains(got.Stdout, "0 created, 0 updated") {
		t.Fatalf("sync after the switch changed the tree: %+v", got)
	}
	checkTree("after sync")
	// import, then plan on the imported file: no changes.
	imported := filepath.Join(t.TempDir(), "imported.yml")
	if got := s.e.Run(nil, "import", "-o", imported); got.Code != 0 {
		t.Fatalf("import: %+v", got)
	}
	b, _ := os.ReadFile(imported)
	if !strings.Contains(string(b), "ai_access_default: work") || strings.Contains(string(b), "auto-created") {
		t.Errorf("imported file:\n%s", b)
	}
	if got := s.e.Run(nil, "-f", imported, "plan", "--detailed-exitcode"); got.Code != 0 {
		t.Errorf("plan of the imported file: %+v", got)
	}
	// Again: nothing to do. Then back to work: the record goes.
	if got := s.run("switch", "pro"); got.Stdout != "ai switch: pro already holds the access to ai-tools\n" || len(s.deployed) != 1 {
		t.Errorf("second switch: %+v", got)
	}
	s.nvidia = false
	got = s.run("switch", "work")
	if got.Code != 0 || !strings.Contains(got.Stderr, "info: nvidia-smi is not installed: GPU memory not flushed") || len(holderKeys(t, s)) != 0 {
		t.Errorf("switch back: %+v, keys %v", got, holderKeys(t, s))
	}
	if got := s.e.Run(nil, "nftables", "render"); !strings.Contains(got.Stdout, "AI access: work -> ai-tools") || strings.Contains(got.Stdout, "AI access: pro -> ai-tools") {
		t.Errorf("nftables render after the switch back:\n%s", got.Stdout)
	}
	if got := aiMatrix(t, s); got["w1"] != "allow ai-policy" || got["p1"] != "deny cross-domain" {
		t.Errorf("verify --expected after the switch back: who reaches chat: %v", got)
	}
	if got := s.run("switch", "pro", "--no-flush"); got.Code != 0 || s.flushed != 1 || strings.Contains(got.Stderr, "nvidia") {
		t.Errorf("--no-flush: %+v (flushes %d)", got, s.flushed)
	}
	for _, tc := range []struct{ dom, msg string }{
		{"ai-tools", "ai-tools cannot hold the AI access to itself"},
		{"nope", `unknown domain "nope"`},
	} {
		if got := s.run("switch", tc.dom); got.Code != 1 || !strings.Contains(got.Stderr, tc.msg) {
			t.Errorf("switch %s: %+v", tc.dom, got)
		}
	}
}

// aiMatrix runs `verify --expected --json` and returns, for every machine
// outside ai-tools, the verdict and reason kind of its pair towards chat.
func aiMatrix(t *testing.T, s *switcher) map[string]string {
	t.Helper()
	got := s.e.Run(nil, "verify", "--expected", "--json")
	var mx reach.Matrix
	if err := json.Unmarshal([]byte(got.Stdout), &mx); got.Code != 0 || err != nil {
		t.Fatalf("verify --expected --json: %v %+v", err, got)
	}
	out := map[string]string{}
	for _, p := range mx.Pairs {
		if p.To == "chat" && p.From != "gpu-server" {
			out[p.From] = p.Default.Verdict + " " + p.Default.Reason.Kind
		}
	}
	return out
}

// TestNotExclusive: without the exclusive policy, switch is refused.
func TestNotExclusive(t *testing.T) {
	s := &switcher{e: desktest.New(t, strings.Replace(psot, "  ai_access_policy: exclusive\n  ai_access_default: work\n", "", 1))}
	if got := s.run("switch", "pro"); got.Code != 1 || !strings.Contains(got.Stderr, "AI access is not exclusive here") {
		t.Errorf("switch: %+v", got)
	}
	if got := s.run("status"); got.Stdout != "AI access: open (every domain a network policy allows may reach ai-tools)\n" {
		t.Errorf("status: %+v", got)
	}
}
