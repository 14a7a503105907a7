package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// firewallPSOT is the firewall_mode: vm scenario of TestFirewallRouterRender.
// Nothing reaches Incus, so the domain anklume (N21 needs it) is harmless;
// the other domains carry the fw- prefix and subnets 10.2x0.90-93. It has
// a domain→domain policy with one port, a bidirectional `ports: all` one,
// a machine→machine one with ports (80 listed twice), a bidirectional udp
// one, an empty port list, a `to: host` one, and two that touch the
// disabled domain fw-off: all but the last three open something.
const firewallPSOT = `format_version: 1
project_name: h20fw
global:
  addressing: {base_octet: 10, zone_base: 200}
  firewall_mode: vm
domains:
  anklume:
    trust_level: admin
    subnet_id: 90
    egress: false
    machines:
      fw-ctl: {}
  fw-pro:
    trust_level: trusted
    subnet_id: 91
    egress: false
    machines:
      fw-dev: {}
      fw-web: {}
  fw-perso:
    trust_level: trusted
    subnet_id: 92
    egress: false
    machines:
      fw-desk: {}
  fw-off:
    enabled: false
    trust_level: trusted
    subnet_id: 93
    egress: false
    machines:
      fw-old: {}
network_policies:
  - description: "to a disabled domain"
    from: fw-off
    to: fw-pro
  - description: "to a disabled machine"
    from: fw-ctl
    to: fw-old
    ports: [8080]
  - description: "nothing open"
    from: fw-perso
    to: anklume
    ports: []
  - description: "Admin SSH to pro"
    from: anklume
    to: fw-pro
    ports: [22]
  - description: "Pro and perso"
    from: fw-pro
    to: fw-perso
    ports: all
    bidirectional: true
  - description: "web"
    from: fw-ctl
    to: fw-web
    ports: [80, 443, 80]
  - description: "dns udp"
    from: fw-desk
    to: fw-dev
    ports: [53, 5353]
    protocol: udp
    bidirectional: true
  - description: "apt cache"
    from: fw-dev
    to: host
    ports: [3142]
`

// firewallRenderTasks are the tasks of roles/firewall_router/tasks/main.yml
// that compute the interface map and write the ruleset, copied verbatim
// into a task file of the synced role (the package, sysctl and load tasks
// need a real VM and are left out).
var firewallRenderTasks = []string{
	"Check the input of firewall_router",
	"Load the desired state to find the interfaces",
	"Map each domain to its interface in the VM",
	"Create the directory of the ruleset",
	"Write the anklume ruleset",
}

// renderTasksFile returns the named tasks of a role task file, in file
// order, with their `notify:` lines removed so that no handler loads the
// ruleset. It fails t when a name is missing, so that a renamed task
// cannot silently drop out of the test.
func renderTasksFile(t *testing.T, main string, names []string) string {
	t.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var b strings.Builder
	b.WriteString("---\n")
	for _, task := range strings.Split(main, "\n- name: ")[1:] {
		name, _, _ := strings.Cut(task, "\n")
		if !want[name] {
			continue
		}
		delete(want, name)
		b.WriteString("- name: ")
		for _, line := range strings.Split(strings.TrimRight(task, "\n"), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "notify:") {
				continue
			}
			b.WriteString(line + "\n")
		}
		b.WriteString("\n")
	}
	if len(want) > 0 {
		t.Fatalf("roles/firewall_router/tasks/main.yml lacks the tasks %v", want)
	}
	return b.String()
}

// renderPlaybook renders the role's ruleset on the firewall machine of
// the synced inventory, through a local connection (no VM).
const renderPlaybook = `---
- name: Render the firewall_router ruleset
  hosts: anklume-firewall
  connection: local
  gather_facts: false
  tasks:
    - name: Render the ruleset of the role
      ansible.builtin.include_role:
        name: firewall_router
        tasks_from: render_test
`

// nicMap reads incus/desired-state.yml and returns the bridge → interface
// map inside the firewall VM: eth0 for the bridge of the domain that holds
// the firewall machine, and the NICs of its firewall-multi-nic profile.
func nicMap(t *testing.T, dir string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "incus", "desired-state.yml"))
	if err != nil {
		t.Fatal(err)
	}
	type device struct {
		Type, Name, Network string
	}
	var ds struct {
		Projects []struct {
			Profiles []struct {
				Name    string
				Devices map[string]device
			}
			Instances []struct {
				Machine string
				Devices map[string]device
			}
		}
	}
	if err := yaml.Unmarshal(data, &ds); err != nil {
		t.Fatalf("desired-state.yml: %v", err)
	}
	m := map[string]string{}
	for _, p := range ds.Projects {
		for _, in := range p.Instances {
			if in.Machine == "anklume-firewall" {
				m[in.Devices["eth0"].Network] = "eth0"
			}
		}
		for _, pr := range p.Profiles {
			if pr.Name != "firewall-multi-nic" {
				continue
			}
			for _, d := range pr.Devices {
				if d.Type == "nic" {
					m[d.Network] = d.Name
				}
			}
		}
	}
	return m
}

// policySection returns the policy lines (rule 4 of §7.3: comments and
// accepts) of the first chain of a ruleset: the lines after its header,
// its ct state rules and its same-interface accepts, up to the first line
// that is neither a comment nor an accept, trimmed.
func policySection(ruleset string) []string {
	sameIface := regexp.MustCompile(`^iifname ("[^"]+") oifname ("[^"]+") accept$`)
	var out []string
	inChain, started := false, false
	for _, line := range strings.Split(ruleset, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case !inChain:
			inChain = strings.HasPrefix(line, "chain ")
		case !started && (strings.HasPrefix(line, "type filter") || strings.HasPrefix(line, "ct state")):
		case !started && sameIface.MatchString(line) && sameIface.FindStringSubmatch(line)[1] == sameIface.FindStringSubmatch(line)[2]:
		case strings.HasPrefix(line, "#") || strings.HasPrefix(line, "iifname ") && strings.HasSuffix(line, " accept"):
			started = true
			out = append(out, line)
		default:
			return out
		}
	}
	return out
}

// TestFirewallRouterRender syncs a firewall_mode: vm PSOT with the real
// binary, renders the firewall_router ruleset for anklume-firewall the
// way the role does (its own tasks and templates, run by ansible-playbook
// on the synced inventory, group_vars, host_vars and desired state), and
// checks that nft -c accepts it in a private network namespace and that
// its accepts are the host's policy rules with each bridge replaced by the
// VM's interface on it (SPEC.md §4.7, §7.3 row 4, §10.3; §16 #32 for the
// NIC layout).
func TestFirewallRouterRender(t *testing.T) {
	needRoot(t, "nft", "unshare", "ansible-playbook")
	bin := binary(t)
	dir := nftPSOT(t, firewallPSOT)
	env := append(nftEnv(t), "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCALHOST_WARNING=False")

	run := func(name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir, cmd.Env = dir, env
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out.String(), errOut.String())
		}
		return out.String()
	}
	run(bin, "sync")
	host := run(bin, "nftables", "render")

	main, err := os.ReadFile(filepath.Join(dir, "roles", "firewall_router", "tasks", "main.yml"))
	if err != nil {
		t.Fatal(err)
	}
	tasks := renderTasksFile(t, string(main), firewallRenderTasks)
	if err := os.WriteFile(filepath.Join(dir, "roles", "firewall_router", "tasks", "render_test.yml"), []byte(tasks), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "render-firewall.yml"), []byte(renderPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out", "firewall.nft")
	// The playbook runs in the private namespace too: the template's
	// validate (nft -c) and anything else it might do stay out of the
	// host's network stack.
	script := `set -e
ansible-playbook render-firewall.yml -e firewall_router_ruleset_path="$1"
nft -c -f "$1"
echo "nft-check=ok"
`
	stdout, _ := nftScript(t, dir, []string{"-n"}, script, out)
	if !strings.Contains(stdout, "nft-check=ok") || !regexp.MustCompile(`anklume-firewall\s+: ok=5\s+changed=2\s+unreachable=0\s+failed=0`).MatchString(stdout) {
		t.Fatalf("playbook output:\n%s", stdout)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	vm := string(data)

	// Concrete lines: the table, the default drop, one same-interface
	// accept per enabled domain, and the policies in list order.
	wantChain := `table inet anklume
delete table inet anklume
table inet anklume {
	comment "anklume infra=h20fw"
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		ct state invalid drop
		iifname "eth0" oifname "eth0" accept
		iifname "eth1" oifname "eth1" accept
		iifname "eth2" oifname "eth2" accept
		# nothing open
		# Admin SSH to pro
		iifname "eth0" oifname "eth2" tcp dport { 22 } accept
		# Pro and perso
		iifname "eth2" oifname "eth1" accept
		iifname "eth1" oifname "eth2" accept
		# web
		iifname "eth0" oifname "eth2" ip saddr 10.200.90.1 ip daddr 10.210.91.2 tcp dport { 80, 443 } accept
		# dns udp
		iifname "eth1" oifname "eth2" ip saddr 10.210.92.1 ip daddr 10.210.91.1 udp dport { 53, 5353 } accept
		iifname "eth2" oifname "eth1" ip saddr 10.210.91.1 ip daddr 10.210.92.1 udp dport { 53, 5353 } accept
	}
}`
	_, body, ok := strings.Cut(vm, "domain interfaces is dropped, except what network_policies allows.\n")
	if !ok || strings.TrimSpace(body) != wantChain {
		t.Fatalf("rendered ruleset:\n%s\nwant after the header:\n%s", vm, wantChain)
	}
	for _, absent := range []string{"fw-off", "8080", "3142", "10.210.93."} {
		if strings.Contains(vm, absent) {
			t.Errorf("the VM ruleset mentions %q (disabled domain or host policy):\n%s", absent, vm)
		}
	}

	// The NIC layout of §4.7: eth0 on the firewall's own bridge, then
	// eth1, eth2 for the other enabled bridges in byte-wise order.
	nics := nicMap(t, dir)
	wantNICs := map[string]string{"net-anklume": "eth0", "net-fw-perso": "eth1", "net-fw-pro": "eth2"}
	if fmt.Sprint(nics) != fmt.Sprint(wantNICs) {
		t.Fatalf("firewall NICs %v, want %v", nics, wantNICs)
	}

	// Same policies as the host: the host's rule-4 lines, bridges mapped
	// to the VM's interfaces, must be exactly the VM's policy lines.
	hostPolicies := policySection(host)
	if len(hostPolicies) != 11 {
		t.Fatalf("host policy lines %q: want 11 (is the host ruleset shape unchanged?)\n%s", hostPolicies, host)
	}
	bridges := make([]string, 0, len(nics))
	for b := range nics {
		bridges = append(bridges, b)
	}
	sort.Strings(bridges)
	var mapped []string
	for _, line := range hostPolicies {
		for _, b := range bridges {
			line = strings.ReplaceAll(line, strconv.Quote(b), strconv.Quote(nics[b]))
		}
		if strings.Contains(line, `"net-`) {
			t.Fatalf("host policy line %q uses a bridge the firewall VM has no NIC on", line)
		}
		mapped = append(mapped, line)
	}
	if got := policySection(vm); strings.Join(got, "\n") != strings.Join(mapped, "\n") {
		t.Fatalf("VM policy lines:\n%s\nhost policy lines, mapped to the VM's interfaces:\n%s",
			strings.Join(got, "\n"), strings.Join(mapped, "\n"))
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// upstreamRecorder is a fake OpenAI-compatible upstream that records the
// requests it receives and answers with a fixed completion.
type upstreamRecorder struct {
	mu   sync.Mutex
	reqs []recordedRequest
}

// recordedRequest is one request seen by upstreamRecorder.
type recordedRequest struct {
	Method, Path, Auth string
	Body               []byte
}

// upstreamAnswer is the body the fake upstream returns.
const upstreamAnswer = `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"fine, thanks"}}]}`

func (u *upstreamRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.reqs = append(u.reqs, recordedRequest{Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization"), Body: body})
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Upstream", "fake")
	_, _ = io.WriteString(w, upstreamAnswer)
}

// requests returns a copy of what the upstream received.
func (u *upstreamRecorder) requests() []recordedRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recordedRequest(nil), u.reqs...)
}

// startSanitizer runs roles/llm_sanitizer/files/llm_sanitizer.py with
// config on a free loopback port until the test ends, and returns its
// base URL once it accepts connections.
func startSanitizer(t *testing.T, config map[string]any) string {
	t.Helper()
	script, err := filepath.Abs("../roles/llm_sanitizer/files/llm_sanitizer.py")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	config["host"], config["port"] = "127.0.0.1", port
	data, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	cmd := exec.CommandContext(ctx, "python3", script, cfg)
	// No proxy from the environment: urllib would send the loopback
	// requests through it.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasSuffix(strings.ToLower(k), "_proxy") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("python3 %s: %v", script, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("llm_sanitizer stderr:\n%s", stderr.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("llm_sanitizer exited before listening: %v\n%s", err, stderr.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("llm_sanitizer does not listen on %s: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sanitizerRequest is the OpenAI-style chat request of the llm_sanitizer
// test: an e-mail address, IPv4 addresses (one with a prefix), an API
// key, a GitHub token, a private key, an inventory name and a string that
// matches the extra pattern, in the messages and system fields, while
// model and temperature are left as they are.
const sanitizerRequest = `{"model":"llama3 10.0.0.1","temperature":0.2,` +
	`"system":"You run on fw-dev.",` +
	`"messages":[{"role":"system","content":"Contact ops@example.org or 192.168.10.20/24."},` +
	`{"role":"user","content":"Why does fw-dev-backup refuse sk-proj_ABCDEFGHIJKLMNOP1234 and ghp_0123456789abcdefABCDEF for project-atlas on fw-dev?"},` +
	`{"role":"user","content":"key: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY----- end"}]}`

// TestLLMSanitizerProxy runs the proxy of the llm_sanitizer role between a
// client and a fake upstream, all on 127.0.0.1 (SPEC.md §10.3): with
// sanitize on, the upstream receives the prompt fields with the documented
// placeholders ([IP], [EMAIL], [SECRET], [HOST], [REDACTED]) and the other
// fields unchanged; with sanitize off it receives the prompt as sent;
// with an unreachable upstream the fallback answers (local-first). The
// client always gets the upstream's answer, status and headers.
func TestLLMSanitizerProxy(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		skip(t, "python3 is not installed; .ci/run installs it")
	}
	var sent map[string]any
	if err := json.Unmarshal([]byte(sanitizerRequest), &sent); err != nil {
		t.Fatal(err)
	}
	redacted := map[string]any{
		"model":       "llama3 10.0.0.1",
		"temperature": 0.2,
		"system":      "You run on [HOST].",
		"messages": []any{
			map[string]any{"role": "system", "content": "Contact [EMAIL] or [IP]."},
			map[string]any{"role": "user", "content": "Why does [HOST] refuse [SECRET] and [SECRET] for [REDACTED] on [HOST]?"},
			map[string]any{"role": "user", "content": "key: [SECRET] end"},
		},
	}
	dead := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	tests := []struct {
		name     string
		sanitize bool
		fallback bool // upstream is unreachable, the fake is the fallback
		want     map[string]any
	}{
		{name: "sanitize", sanitize: true, want: redacted},
		{name: "forward only", sanitize: false, want: sent},
		{name: "local-first fallback", sanitize: true, fallback: true, want: redacted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &upstreamRecorder{}
			fake := httptest.NewServer(rec)
			defer fake.Close()
			config := map[string]any{
				"upstream": fake.URL + "/",
				"fallback": "",
				"sanitize": tt.sanitize,
				// The longest name wins: fw-dev-backup is one [HOST].
				"names":    []string{"fw-dev", "fw-dev-backup", ""},
				"patterns": []string{`project-[a-z]+`},
			}
			if tt.fallback {
				config["upstream"], config["fallback"] = dead, fake.URL
			}
			base := startSanitizer(t, config)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", strings.NewReader(sanitizerRequest))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer sk-client-key-0123456789abcdef")
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("POST through the proxy: %v", err)
			}
			answer, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || string(answer) != upstreamAnswer || resp.Header.Get("X-Upstream") != "fake" {
				t.Fatalf("client got %d %q (X-Upstream %q), want 200 %q", resp.StatusCode, answer, resp.Header.Get("X-Upstream"), upstreamAnswer)
			}

			reqs := rec.requests()
			if len(reqs) != 1 {
				t.Fatalf("upstream got %d requests, want 1", len(reqs))
			}
			got := reqs[0]
			if got.Method != http.MethodPost || got.Path != "/v1/chat/completions" {
				t.Errorf("upstream got %s %s, want POST /v1/chat/completions", got.Method, got.Path)
			}
			// Headers are forwarded as they are: the client's key is the
			// provider's credential, not prompt text.
			if got.Auth != "Bearer sk-client-key-0123456789abcdef" {
				t.Errorf("upstream Authorization %q", got.Auth)
			}
			var body map[string]any
			if err := json.Unmarshal(got.Body, &body); err != nil {
				t.Fatalf("upstream body %q: %v", got.Body, err)
			}
			if gotJSON, wantJSON := mustJSON(t, body), mustJSON(t, tt.want); gotJSON != wantJSON {
				t.Fatalf("upstream body\n%s\nwant\n%s", gotJSON, wantJSON)
			}
			if tt.sanitize {
				for _, leak := range []string{"ops@example.org", "192.168.10", "sk-proj", "ghp_", "PRIVATE KEY", "fw-dev", "atlas"} {
					if strings.Contains(string(got.Body), leak) {
						t.Errorf("upstream body leaks %q: %s", leak, got.Body)
					}
				}
			}
		})
	}
}

// mustJSON returns v as canonical JSON (sorted keys).
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
