package structure

import (
	"testing"

	"github.com/anklume/anklume/compiler/load"
)

// FuzzCheck parses arbitrary input and runs S1 on it: it must never panic,
// and every diagnostic must carry a position and a path.
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
		dl, _ := Check(root)
		for _, d := range dl {
			if !d.Pos.IsValid() || d.Path == "" || d.Msg == "" {
				t.Fatalf("diagnostic without position, path or message: %#v", d)
			}
		}
	})
}
