package resolve

import (
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/load"
	"github.com/anklume/anklume/compiler/model"
)

// run parses y as infra.yml and resolves it.
func run(t testing.TB, y string, opts host.Options) (*model.Infra, diag.List) {
	t.Helper()
	root, dl := load.Parse([]byte(y), "infra.yml", 0)
	if root == nil || dl.HasErrors() {
		t.Fatalf("parse: %v", dl)
	}
	return Resolve(root, opts)
}

// skip is the default test context (§16: host subnet check off).
var skip = host.Options{SkipHostSubnetCheck: true}

// mustResolve resolves y and fails on any error.
func mustResolve(t testing.TB, y string, opts host.Options) (*model.Infra, diag.List) {
	t.Helper()
	m, dl := run(t, y, opts)
	if dl.HasErrors() || m == nil {
		t.Fatalf("unexpected errors:\n%s", render(dl))
	}
	return m, dl
}

// render prints every diagnostic with its hint, one per line.
func render(dl diag.List) string {
	var b strings.Builder
	for _, d := range dl {
		b.WriteString(d.String())
		if d.Hint != "" {
			b.WriteString("\n  hint: " + d.Hint)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// only returns the rendered diagnostics of severity s.
func only(dl diag.List, s diag.Severity) string { return render(dl.Filter(s)) }

// kvString renders a KV as k=v pairs in order.
func kvString(kv model.KV) string {
	parts := make([]string, len(kv))
	for i, p := range kv {
		parts[i] = p.Key + "=" + p.Value
	}
	return strings.Join(parts, " ")
}

// devString renders devices as name{k=v ...} in order.
func devString(ds model.Devices) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Name + "{" + kvString(d.Props) + "}"
	}
	return strings.Join(parts, " ")
}

func ipOf(m *model.Infra, name string) string {
	x := m.Machine(name)
	if x == nil {
		return "<no machine>"
	}
	if !x.IP.IsValid() {
		return ""
	}
	return x.IP.String()
}
