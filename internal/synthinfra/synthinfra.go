// Package synthinfra builds synthetic infrastructures for the benchmarks
// and fuzz seeds of several packages, so that their figures describe the
// same input.
package synthinfra

import (
	"fmt"
	"strings"
)

// Zones returns a valid zone-mode infra.yml with nd domains of nm
// machines each, spread over the five trust levels, and a tcp 22/443
// policy from each domain to the next.
func Zones(nd, nm int) string {
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
