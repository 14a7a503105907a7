package semantic

import (
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler/host"
)

// TestMachineNames covers V10 (§16 item 9) and N15.
func TestMachineNames(t *testing.T) {
	long := strings.Repeat("a", 60)
	runCases(t, []ruleCase{
		{name: "item9/V10 duplicate across domains", src: zoneHead + `
  pro:
    machines:
      web: {}
  perso:
    machines:
      web: {}
      db: {}
  lab:
    machines:
      web: {}
`, want: []string{
			"infra.yml:11:7: domains.perso.machines.web: machine name \"web\" is already used in domain \"pro\"",
			"infra.yml:15:7: domains.lab.machines.web: machine name \"web\" is already used in domain \"pro\"",
		}},
		{name: "item9/V10 distinct names", src: zoneHead + `
  pro:
    machines: {web: {}}
  perso:
    machines: {db: {}}
`},
		{name: "N15 prefix makes 64 characters", opts: host.Options{Context: host.Context{Level: 1}}, src: zoneHead + `
  pro:
    machines:
      ` + long + `: {}
`, want: []string{
			"infra.yml:8:7: domains.pro.machines." + long + ": instance name \"001-" + long + "\" is 64 characters; the maximum is 63",
		}},
		{name: "N15 level 0 has no prefix", src: zoneHead + `
  pro:
    machines:
      ` + long + `: {}
`},
		{name: "N15 nesting_prefix false", opts: host.Options{Context: host.Context{Level: 1}}, src: "project_name: p\nglobal:\n  addressing: {}\n  nesting_prefix: false\ndomains:\n" + `  pro:
    machines:
      ` + long + `: {}
`},
		{name: "N15 59 characters with prefix is fine", opts: host.Options{Context: host.Context{Level: 12}}, src: zoneHead + `
  pro:
    machines:
      ` + long[:59] + `: {}
`},
	})
}

// TestPrivileged covers V12 and W1 (§16 item 15).
func TestPrivileged(t *testing.T) {
	src := func(typ, v string) string {
		return zoneHead + `
  pro:
    machines:
      web:
        type: ` + typ + `
        config:
          security.privileged: ` + v + "\n"
	}
	nestedFalse := host.Options{Context: host.Context{VMNested: boolp(false)}}
	const errLine = "infra.yml:11:32: domains.pro.machines.web.config[\"security.privileged\"]: security.privileged=true on an LXC machine is forbidden when vm_nested is false\n  hint: use type: vm, or run anklume inside a VM"
	var cases []ruleCase
	for _, v := range []string{`"TRUE"`, `"True"`, `true`, `"1"`, `1`, `"yes"`, `"on"`, `True`} {
		cases = append(cases, ruleCase{name: "item15/V12 truthy " + v, src: src("lxc", v), opts: nestedFalse, want: []string{errLine}})
	}
	for _, v := range []string{`"false"`, `"0"`, `"no"`, `false`, `0`} {
		cases = append(cases, ruleCase{name: "item15/V12 not truthy " + v, src: src("lxc", v), opts: nestedFalse})
	}
	cases = append(cases,
		ruleCase{name: "item15/V12 vm is allowed", src: src("vm", "true"), opts: nestedFalse},
		ruleCase{name: "item15/V12 vm_nested true", src: src("lxc", "true"), opts: host.Options{Context: host.Context{VMNested: boolp(true)}}},
		ruleCase{name: "item15/V12 vm_nested absent", src: src("lxc", "true")},
		ruleCase{name: "item15/W1 yolo", src: src("lxc", "true"), opts: host.Options{Context: host.Context{VMNested: boolp(false), Yolo: true}}, want: []string{
			"warning: infra.yml:11:32: domains.pro.machines.web.config[\"security.privileged\"]: security.privileged=true on an LXC machine is allowed only because yolo is on",
		}},
	)
	// type defaults to lxc.
	cases = append(cases, ruleCase{name: "item15/V12 default type is lxc", opts: nestedFalse, src: zoneHead + `
  pro:
    machines:
      web:
        config: {security.privileged: "on"}
`, want: []string{
		"infra.yml:9:39: domains.pro.machines.web.config[\"security.privileged\"]: security.privileged=true on an LXC machine is forbidden when vm_nested is false\n  hint: use type: vm, or run anklume inside a VM",
	}})
	runCases(t, cases)
}

// TestExplicitIP covers N3 and W10 (§16 item 13).
func TestExplicitIP(t *testing.T) {
	src := func(fw, machine, ip string) string {
		return "project_name: p\nglobal:\n  addressing: {}\n  firewall_mode: " + fw + "\ndomains:\n" + `  anklume:
    machines:
      ` + machine + `:
        ip: "` + ip + `"
`
	}
	at := "infra.yml:9:13: domains.anklume.machines.web.ip: "
	runCases(t, []ruleCase{
		{name: "item13/N3 network", src: src("host", "web", "10.100.0.0"), want: []string{at + "ip 10.100.0.0 is the network address"}},
		{name: "item13/N3 broadcast", src: src("host", "web", "10.100.0.255"), want: []string{at + "ip 10.100.0.255 is the broadcast address"}},
		{name: "item13/N3 gateway", src: src("host", "web", "10.100.0.254"), want: []string{at + "ip 10.100.0.254 is reserved for the gateway"}},
		{name: "item13/N3 .253 under vm", src: src("vm", "web", "10.100.0.253"), want: []string{at + "ip 10.100.0.253 is reserved for the firewall VM (firewall_mode: vm)"}},
		{name: "item13/N3 .253 under host", src: src("host", "web", "10.100.0.253")},
		{name: "item13/N3 .253 for anklume-firewall", src: src("vm", "anklume-firewall", "10.100.0.253")},
		{name: "item13/N3 .253 for sys-firewall", src: src("vm", "sys-firewall", "10.100.0.253")},
		{name: "item13/N3 .1 and .99", src: src("host", "web", "10.100.0.99")},
		{name: "item13/N3 not an address is S1's", src: src("host", "web", "10.100.0")},
		{name: "W10 .100", src: src("host", "web", "10.100.0.100"), want: []string{"warning: " + at + "ip 10.100.0.100 is inside the DHCP range .100-.249"}},
		{name: "W10 .249", src: src("host", "web", "10.100.0.249"), want: []string{"warning: " + at + "ip 10.100.0.249 is inside the DHCP range .100-.249"}},
		{name: "W10 .250", src: src("host", "web", "10.100.0.250")},
	})
}

// TestProfiles covers V16.
func TestProfiles(t *testing.T) {
	src := func(fw string) string {
		return "project_name: p\nglobal:\n  addressing: {}\n  firewall_mode: " + fw + "\ndomains:\n" + `  anklume:
    profiles:
      nesting: {}
    machines:
      anklume-firewall:
        type: vm
        profiles: [default, firewall-multi-nic]
  work:
    machines:
      web:
        profiles: [default, nesting, firewall-multi-nic, mine]
`
	}
	hint := "\n  hint: declare it under domains.work.profiles, or use \"default\""
	runCases(t, []ruleCase{
		{name: "V16 vm mode", src: src("vm"), want: []string{
			"infra.yml:16:29: domains.work.machines.web.profiles[1]: profile \"nesting\" is not defined in domain \"work\"" + hint,
			"infra.yml:16:38: domains.work.machines.web.profiles[2]: profile \"firewall-multi-nic\" is not defined in domain \"work\"" + hint,
			"infra.yml:16:58: domains.work.machines.web.profiles[3]: profile \"mine\" is not defined in domain \"work\"" + hint,
		}},
		{name: "V16 host mode", src: src("host"), want: []string{
			"infra.yml:12:29: domains.anklume.machines.anklume-firewall.profiles[1]: profile \"firewall-multi-nic\" is not defined in domain \"anklume\"\n  hint: declare it under domains.anklume.profiles, or use \"default\"",
			"infra.yml:16:29: domains.work.machines.web.profiles[1]: profile \"nesting\" is not defined in domain \"work\"" + hint,
			"infra.yml:16:38: domains.work.machines.web.profiles[2]: profile \"firewall-multi-nic\" is not defined in domain \"work\"" + hint,
			"infra.yml:16:58: domains.work.machines.web.profiles[3]: profile \"mine\" is not defined in domain \"work\"" + hint,
		}},
		{name: "V16 defined profiles", src: zoneHead + `  work:
    profiles:
      nesting: {}
    machines:
      web:
        profiles: [default, nesting]
`},
	})
}

// TestSnapshots covers V18 and W19 (§16 item 11).
func TestSnapshots(t *testing.T) {
	src := func(key, v string) string {
		return zoneHead + `  work:
    machines:
      web:
        ` + key + `: ` + v + "\n"
	}
	schedErr := func(v string) []string {
		return []string{`infra.yml:8:29: domains.work.machines.web.snapshots_schedule: must be a cron expression with 5 fields or a list of @hourly, @daily, @midnight, @weekly, @monthly, @annually, @yearly, @startup, @never; got "` + v + `"`}
	}
	expErr := func(v string) []string {
		return []string{`infra.yml:8:27: domains.work.machines.web.snapshots_expiry: must be an expiry such as 30d, 24H, 60M or 1y 6m, got "` + v + `"`}
	}
	runCases(t, []ruleCase{
		{name: "item11/V18 4-field schedule", src: src("snapshots_schedule", `"0 2 * *"`), want: schedErr("0 2 * *")},
		{name: "item11/V18 a b c d e", src: src("snapshots_schedule", `"a b c d e"`), want: schedErr("a b c d e")},
		{name: "item11/V18 hour 24", src: src("snapshots_schedule", `"0 24 * * *"`), want: schedErr("0 24 * * *")},
		{name: "item11/V18 0 2 * * *", src: src("snapshots_schedule", `"0 2 * * *"`)},
		{name: "item11/V18 @daily", src: src("snapshots_schedule", `"@daily"`)},
		{name: "item11/V18 @hourly, @startup", src: src("snapshots_schedule", `"@hourly, @startup"`)},
		{name: "item11/V18 expiry 30", src: src("snapshots_expiry", `"30"`), want: expErr("30")},
		{name: "item11/V18 expiry 30x", src: src("snapshots_expiry", `30x`), want: expErr("30x")},
		{name: "item11/V18 expiry 1d2H", src: src("snapshots_expiry", `1d2H`), want: expErr("1d2H")},
		{name: "item11/V18 expiry 1d 24h", src: src("snapshots_expiry", `1d 24h`), want: expErr("1d 24h")},
		{name: "item11/V18 expiry 30d", src: src("snapshots_expiry", `30d`)},
		{name: "item11/V18 expiry 24H", src: src("snapshots_expiry", `24H`)},
		{name: "item11/V18 expiry 2w", src: src("snapshots_expiry", `2w`)},
		{name: "item11/V18 expiry 1y 6m", src: src("snapshots_expiry", `1y 6m`)},
		{name: "item11/W19 24h", src: src("snapshots_expiry", `24h`), want: []string{
			`warning: infra.yml:8:27: domains.work.machines.web.snapshots_expiry: snapshots_expiry "24h" is read as "24H" (Incus uses H for hours, M for minutes and m for months)`,
		}},
		{name: "item11/W19 60m", src: src("snapshots_expiry", `60m`), want: []string{
			`warning: infra.yml:8:27: domains.work.machines.web.snapshots_expiry: snapshots_expiry "60m" is read as "60M" (Incus uses H for hours, M for minutes and m for months)`,
		}},
	})
}

// TestValidSchedule checks the cron grammar of V18 field by field.
func TestValidSchedule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"0 2 * * *", true},
		{"*/15 0-23/2 1,15 jan-dec mon-fri", true},
		{"0 0 L * *", false},
		{"59 23 31 12 6", true},
		{"0 0 * * SUN", true},
		{"0 0 ? * ?", true},
		{"5/10 * * * *", true},
		{"@DAILY", true},
		{"@daily, 0 3 * * 1", true},
		{"@every 1h", false},
		{"@reboot", false},
		{"60 * * * *", false},
		{"0 24 * * *", false},
		{"0 0 0 * *", false},
		{"0 0 32 * *", false},
		{"0 0 * 0 *", false},
		{"0 0 * 13 *", false},
		{"0 0 * * 7", false},
		{"0 0 * * sunday", false},
		{"0  2 * * *", false},
		{" 0 2 * * *", false},
		{"*/0 * * * *", false},
		{"5-1 * * * *", false},
		{"1,,2 * * * *", false},
		{"1- * * * *", false},
		{"1/2/3 * * * *", false},
		{"-1 * * * *", false},
		{"+1 * * * *", false},
		{"0 2 * * *,@daily", false},
		{"@daily,@hourly", false},
		{"", false},
		{"0 2 * * * *", false},
		{"99999999999999999999 * * * *", false},
	} {
		if got := ValidSchedule(tc.in); got != tc.want {
			t.Errorf("ValidSchedule(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestNormalizeExpiry checks the v1 rewrite of §2.8 (§16 item 11).
func TestNormalizeExpiry(t *testing.T) {
	for _, tc := range []struct {
		in, norm string
		ok       bool
	}{
		{"30d", "30d", true},
		{"24H", "24H", true},
		{"24h", "24H", true},
		{"60m", "60M", true},
		{"1y 6m", "1y 6m", true},
		{"1y 6h", "1y 6h", false},
		{"2w 3d 4H 5M", "2w 3d 4H 5M", true},
		{"30", "30", false},
		{"", "", false},
		{"d", "d", false},
		{"1d  2H", "1d  2H", false},
		{"１d", "１d", false},
	} {
		norm, ok := NormalizeExpiry(tc.in)
		if norm != tc.norm || ok != tc.ok {
			t.Errorf("NormalizeExpiry(%q) = %q, %v; want %q, %v", tc.in, norm, ok, tc.norm, tc.ok)
		}
	}
}

// TestGPU covers V25 and W3 (§16 item 16).
func TestGPU(t *testing.T) {
	src := func(policy string) string {
		return "project_name: p\nglobal:\n  addressing: {}\n  gpu_policy: " + policy + "\ndomains:\n" + `  ai:
    profiles:
      nvidia: {devices: {gpu: {type: gpu, gputype: physical}}}
      disks: {devices: {data: {type: disk, path: /data, source: /srv}}}
    machines:
      llm-a: {gpu: true}
      llm-b: {profiles: [default, nvidia]}
      llm-c: {profiles: [disks]}
      llm-d: {gpu: false}
  off:
    enabled: false
    machines:
      off-gpu: {gpu: true}
`
	}
	runCases(t, []ruleCase{
		{name: "item16/V25 two under exclusive", src: src("exclusive"), want: []string{
			"infra.yml:12:7: domains.ai.machines.llm-b: gpu_policy is \"exclusive\" but 2 instances have GPU access: llm-a, llm-b\n  hint: set global.gpu_policy: shared",
		}},
		{name: "item16/W3 two under shared", src: src("shared"), want: []string{
			"warning: infra.yml:12:7: domains.ai.machines.llm-b: 2 instances share the GPU (llm-a, llm-b); consumer GPUs offer no VRAM isolation",
		}},
		{name: "item16/V25 one instance", src: zoneHead + `  ai:
    machines:
      llm-a: {gpu: true}
      llm-b: {devices: {gpu: {type: gpu}}}
  off:
    enabled: false
    machines:
      off-gpu: {gpu: true}
`},
		{name: "item16/V25 three, default policy", src: zoneHead + `  ai:
    machines:
      c: {gpu: true}
      a: {gpu: true}
  b:
    machines:
      b: {gpu: true}
`, want: []string{
			"infra.yml:8:7: domains.ai.machines.a: gpu_policy is \"exclusive\" but 3 instances have GPU access: c, a, b\n  hint: set global.gpu_policy: shared",
		}},
	})
}

// TestLXCInUntrusted covers W2 (§16 item 21).
func TestLXCInUntrusted(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "item21/W2", src: zoneHead + `  sandbox:
    trust_level: disposable
    machines:
      sbx-test: {}
      sbx-vm: {type: vm}
  browse:
    trust_level: untrusted
    machines:
      browse-ct: {type: lxc}
  perso:
    trust_level: trusted
    machines:
      perso-ct: {}
`, want: []string{
			"warning: infra.yml:8:7: domains.sandbox.machines.sbx-test: domain \"sandbox\" is disposable but machine \"sbx-test\" uses LXC; consider type: vm for stronger isolation",
			"warning: infra.yml:13:7: domains.browse.machines.browse-ct: domain \"browse\" is untrusted but machine \"browse-ct\" uses LXC; consider type: vm for stronger isolation",
		}},
	})
}
