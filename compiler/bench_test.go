package compiler

import (
	"testing"
	"testing/fstest"

	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/internal/synthinfra"
)

func benchOptions() host.Options {
	return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
}

// BenchmarkCompile200x20 measures load + validate + resolve of a 200-domain
// × 20-machine infra (issue 2 acceptance).
func BenchmarkCompile200x20(b *testing.B) {
	data := []byte(synthinfra.Zones(200, 20))
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
	data := []byte(synthinfra.Zones(6, 5))
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
