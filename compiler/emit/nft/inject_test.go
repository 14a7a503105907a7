package nft

import (
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/compiler"
)

// TestNamesCannotInject (issue 4 item 5): every string of the PSOT that
// reaches the ruleset either is refused by validation (names: domain,
// machine, project names that are not plain tokens) or is sanitised so
// that it stays inside its token (descriptions in comments, project_name in
// the table comment). Every rendered line must keep one of the known rule
// shapes.
func TestNamesCannotInject(t *testing.T) {
	evil := []string{
		`x"; flush ruleset; #`,
		"x\n}\ntable inet filter {",
		`x" accept; chain y {`,
		"x\rflush ruleset",
		`$(reboot) ; drop`,
		"{ x }",
		"a\u2028b\u0000c",
	}
	// Names are refused by validation before anything is rendered.
	for _, name := range evil {
		for _, field := range []string{"domain", "machine"} {
			var y string
			if field == "domain" {
				y = "project_name: p\nglobal: {addressing: {}}\ndomains:\n  " + quoteYAML(name) + ": {}\n"
			} else {
				y = "project_name: p\nglobal: {addressing: {}}\ndomains:\n  d:\n    machines:\n      " + quoteYAML(name) + ": {}\n"
			}
			res, dl, err := compiler.Compile(fstest.MapFS{"infra.yml": {Data: []byte(y)}}, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, testOptions())
			if err == nil && res != nil {
				t.Errorf("%s name %q was accepted", field, name)
			} else if err == nil && !dl.HasErrors() {
				t.Errorf("%s name %q: no error reported", field, name)
			}
		}
	}
	// Free text (descriptions, project_name) is sanitised into comments.
	ruleShape := regexp.MustCompile(`^(\t*)(` +
		`table inet anklume( \{)?|delete table inet anklume|\}|` +
		`comment "anklume infra=[a-zA-Z0-9 _.,:;/<>()@#+-]*"|` +
		`chain (isolation|host_input) \{|` +
		`type filter hook (forward|input) priority -1; policy accept;|` +
		`# [a-zA-Z0-9 _.,:;/<>()@#+-]+|` +
		`(ct state|iifname|oifname|meta l4proto|ip saddr|ip daddr|tcp dport|udp dport)[ a-z0-9A-Z."{},!=*/<>-]*` +
		`)$`)
	rendered := 0
	for _, s := range evil {
		y := "project_name: " + quoteYAML(s) + "\nglobal: {addressing: {}}\ndomains:\n  a: {machines: {a-1: {}}}\n  b: {machines: {b-1: {}}}\nnetwork_policies:\n" +
			"  - {description: " + quoteYAML(s) + ", from: a, to: b-1, ports: [22]}\n" +
			"  - {description: " + quoteYAML(s) + ", from: a-1, to: host, ports: [53], protocol: udp}\n"
		fsys := fstest.MapFS{"infra.yml": {Data: []byte(y)}}
		res, dl, err := compiler.Compile(fsys, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, testOptions())
		if err != nil || res == nil {
			// project_name with control characters is refused (N20): fine.
			if !dl.HasErrors() {
				t.Fatalf("%q: no model and no error", s)
			}
			continue
		}
		rendered++
		out := string(Render(res.Model))
		for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			if !ruleShape.MatchString(line) {
				t.Errorf("%q: line outside the known shapes: %q", s, line)
			}
		}
		if strings.Count(out, "table inet anklume {") != 1 || strings.Contains(out, "flush ruleset\n") {
			t.Errorf("%q: the ruleset structure changed:\n%s", s, out)
		}
	}
	if rendered < 3 {
		t.Fatalf("only %d hostile strings reached the renderer; the test checks nothing", rendered)
	}
}

// quoteYAML writes s as a double-quoted YAML scalar.
func quoteYAML(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\u0000", `\0`, "\u2028", `\L`)
	return `"` + r.Replace(s) + `"`
}
