package semantic

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/load"
)

// FuzzCheck parses arbitrary input and runs Check, which must never panic.
func FuzzCheck(f *testing.F) {
	seeds := []string{
		polHead + "  - {from: pro, to: perso, ports: [22, 22]}\n",
		zoneHead + "  a:\n    machines:\n      m: {ip: 10.120.0.0, gpu: true, profiles: [x], snapshots_schedule: \"0 2 * * *\", snapshots_expiry: 24h}\n",
		`{global: {ai_access_policy: exclusive}, domains: {a: {machines: {m: {persistent_data: {x: {path: /a}}, devices: {pd-x: {path: /a}}}}}}, shared_volumes: {s: {consumers: {a: ro, b: rw}}}}`,
	}
	for _, glob := range []string{
		filepath.Join("..", "..", "testdata", "*", "*", "infra.yml"),
		filepath.Join("..", "..", "examples", "*", "infra.yml"),
	} {
		files, _ := filepath.Glob(glob)
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				seeds = append(seeds, string(b))
			}
		}
	}
	for _, s := range seeds {
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
		Check(root, nil, host.Options{Context: host.Context{Level: 1, VMNested: boolp(false)}})
		Check(root, load.NodeSet{root: true}, host.Options{})
	})
}
