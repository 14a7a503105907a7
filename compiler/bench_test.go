package compiler

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/compiler/host"
)

// synthetic builds a valid zone-mode PSOT with nd domains of nm machines
// each, spread over the five trust zones, with policies between
// neighbouring domains.
func synthetic(nd, nm int) string {
	levels := []string{"admin", "trusted", "semi-trusted", "untrusted", "disposable"}
	var b strings.Builder
	b.WriteString("format_version: 1\nproject_name: bench\nglobal:\n  addressing: {}\n  default_os_image: images:debian/13\ndomains:\n")
	for d := 0; d < nd; d++ {
		fmt.Fprintf(&b, "  d%03d:\n    description: domain %d\n    trust_level: %s\n    machines:\n", d, d, levels[d%len(levels)])
		for m := 0; m < nm; m++ {
			fmt.Fprintf(&b, "      m%03d-%02d:\n        type: lxc\n        roles: [base_system]\n        config:\n          limits.cpu: \"1\"\n          limits.memory: 512MiB\n", d, m)
		}
	}
	b.WriteString("network_policies:\n")
	for d := 1; d < nd; d++ {
		fmt.Fprintf(&b, "  - {from: d%03d, to: d%03d, ports: [22, 443], protocol: tcp}\n", d-1, d)
	}
	return b.String()
}

func benchOptions() host.Options {
	return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
}

// BenchmarkCompile200x20 measures load + validate + resolve of a 200-domain
// × 20-machine infra (issue 2 acceptance).
func BenchmarkCompile200x20(b *testing.B) {
	data := []byte(synthetic(200, 20))
	fsys := fstest.MapFS{"infra.yml": {Data: data}}
	in := Input{Path: "infra.yml", Display: "infra.yml"}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		res, dl, err := Compile(fsys, in, benchOptions())
		if err != nil || res == nil {
			b.Fatalf("compile failed: %v\n%v", err, dl)
		}
	}
}

// BenchmarkValidate30 measures load + validate + resolve of a 6-domain ×
// 5-machine infra, what `anklume validate` does after the process starts
// (issue 12: validate of a 30-machine file within 20 ms, start included).
func BenchmarkValidate30(b *testing.B) {
	data := []byte(synthetic(6, 5))
	fsys := fstest.MapFS{"infra.yml": {Data: data}}
	in := Input{Path: "infra.yml", Display: "infra.yml"}
	b.ReportAllocs()
	for b.Loop() {
		res, dl, err := Compile(fsys, in, benchOptions())
		if err != nil || res == nil {
			b.Fatalf("compile failed: %v\n%v", err, dl)
		}
	}
}
