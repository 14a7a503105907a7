package incus

import (
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/examples"
)

// testOptions are the host options of §16: no host subnet check, 10 CPUs
// and 40 GiB, empty context.
func testOptions() host.Options {
	return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
}

// compile compiles the PSOT y and fails the test on any error.
func compile(t testing.TB, y string) *model.Infra {
	t.Helper()
	fsys := fstest.MapFS{"infra.yml": {Data: []byte(y)}}
	res, dl, err := compiler.Compile(fsys, compiler.Input{Path: "infra.yml", Display: "infra.yml"}, testOptions())
	if err != nil || res == nil {
		t.Fatalf("compile: %v\n%s\n--- input:\n%s", err, dl, y)
	}
	return res.Model
}

// compileExample compiles the embedded example name.
func compileExample(t testing.TB, name string) *model.Infra {
	t.Helper()
	res, dl, err := compiler.Compile(examples.FS(), compiler.Input{Path: name + "/infra.yml", Display: "infra.yml"}, testOptions())
	if err != nil || res == nil {
		t.Fatalf("compile example %s: %v\n%s", name, err, dl)
	}
	return res.Model
}

// pairs renders m as sorted "k=v" lines, keeping only the keys for which
// keep returns true (all keys when keep is nil).
func pairs(m map[string]string, keep func(string) bool) string {
	var keys []string
	for k := range m {
		if keep == nil || keep(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + m[k]
	}
	return strings.Join(out, "\n")
}

// isFixed reports whether k is a restricted key every project carries.
func isFixed(k string) bool {
	switch k {
	case "restricted", "restricted.snapshots", "restricted.backups", "restricted.networks.access":
		return true
	}
	return false
}

// derived keeps the restricted.* keys that are derived (§5.3).
func derived(k string) bool {
	return strings.HasPrefix(k, "restricted.") && !isFixed(k)
}
