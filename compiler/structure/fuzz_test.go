package structure

import (
	"reflect"
	"regexp"
	"testing"

	"github.com/anklume/anklume/compiler/load"
)

// FuzzCheck parses arbitrary input and runs S1 on it: it must never panic,
// every diagnostic must carry a position and a path, and the outcome must
// be exactly that of the way that records every location (tracked), which
// Check skips for a document it finds clean without them.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"{}",
		"",
		"- a",
		mach("tpye: vm"),
		mach("config: {user.anklume.x: 1, a: [1], b: 0x10}"),
		dom("profiles: {default: {}, x-a: {}}"),
		pol("{from: a, ports: [0, \"80\", 1.5]}"),
		glob("resource_policy: {host_reserve: {cpu: 100%, memory: -1.0}}"),
		vol("consumers: {a: rx}"),
		"x-a: &a {type: docker}\nproject_name: d\nglobal: {}\ndomains: {w: {machines: {m: {<<: *a}}}}\n",
		"domains: {\"~/x\": {machines: {\"a/b\": {}}}}\n",
		mach("type: lxc"),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		root, _ := load.Parse(data, "infra.yml", 0)
		if root == nil {
			return
		}
		dl, bad := Check(root)
		for _, d := range dl {
			if !d.Pos.IsValid() || d.Path == "" || d.Msg == "" {
				t.Fatalf("diagnostic without position, path or message: %#v", d)
			}
		}
		doc, _ := schemaDoc()
		sch, _ := compiled()
		wantBad := load.NodeSet{}
		want, _ := tracked(root, doc.(map[string]any), sch, wantBad, map[string]*regexp.Regexp{})
		if (len(dl) > 0 || len(want) > 0) && !reflect.DeepEqual(dl, want) || len(bad) != len(wantBad) {
			t.Fatalf("Check gave %v (%d bad), the tracked way %v (%d bad)", dl, len(bad), want, len(wantBad))
		}
		for n := range wantBad {
			if !bad[n] {
				t.Fatalf("node at %v bad only in the tracked way", n.Pos)
			}
		}
	})
}
