package emit_test

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
)

// testOptions is the host context of SPEC.md §16: no host subnet check,
// no nesting context, cpu=10 and 40 GiB.
func testOptions() host.Options {
	return host.Options{SkipHostSubnetCheck: true, Resources: &host.Resources{CPU: 10, Memory: 40 << 30}}
}

// compileFS compiles in from fsys and fails on any error.
func compileFS(tb testing.TB, fsys fstest.MapFS, in compiler.Input) *model.Infra {
	tb.Helper()
	res, dl, err := compiler.Compile(fsys, in, testOptions())
	if err != nil || res == nil || res.Model == nil {
		tb.Fatalf("compile %s: %v\n%v", in.Display, err, dl)
	}
	return res.Model
}

// compileText compiles a single-file PSOT.
func compileText(tb testing.TB, data []byte) *model.Infra {
	tb.Helper()
	return compileFS(tb, fstest.MapFS{"infra.yml": {Data: data}}, compiler.Input{Path: "infra.yml", Display: "infra.yml"})
}

// rendered is a generated tree as sync writes it into an empty directory:
// the paths in write order and the bytes of each.
type rendered struct {
	paths []string
	files map[string][]byte
	// framework holds the paths of the framework files (owned wholly by
	// sync, tree.Framework).
	framework map[string]bool
}

// render lays out files as new files (§6.3 layouts, §6.2 header), in
// memory.
func render(tb testing.TB, files []tree.File) rendered {
	tb.Helper()
	r := rendered{files: make(map[string][]byte, len(files)), framework: map[string]bool{}}
	for _, f := range files {
		var data []byte
		switch f.Class {
		case tree.Managed:
			var err error
			if data, err = tree.Splice(f.Path, nil, false, f.Content, f.Kind); err != nil {
				tb.Fatalf("%s: %v", f.Path, err)
			}
		default:
			data = tree.AddHeader(f.Path, f.Content)
		}
		if _, dup := r.files[f.Path]; dup {
			tb.Fatalf("%s generated twice", f.Path)
		}
		r.paths = append(r.paths, f.Path)
		r.files[f.Path] = data
		r.framework[f.Path] = f.Class == tree.Framework
	}
	return r
}

// syncDir plans and applies files under base, as `anklume sync` does, and
// returns the counts.
func syncDir(tb testing.TB, base string, files []tree.File) (created, updated, unchanged int) {
	tb.Helper()
	p, err := tree.NewPlan(base, files, false)
	if err != nil {
		tb.Fatalf("plan: %v", err)
	}
	if err := p.Apply(io.Discard, tree.Options{}); err != nil {
		tb.Fatalf("apply: %v", err)
	}
	return p.Counts()
}

// expand deep-copies n with every alias replaced by a copy of its target,
// so that parts of one document can be written to separate files.
func expand(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return expand(n.Alias)
	}
	c := *n
	c.Anchor = ""
	c.Content = nil
	for _, ch := range n.Content {
		c.Content = append(c.Content, expand(ch))
	}
	return &c
}

// split turns a single-file PSOT into the files of directory mode (SPEC.md
// §2.13): base.yml, one domain file per domain (named so that byte-wise
// order keeps declaration order) and policies.yml. (A copy of the helper
// of compiler/dirmode_test.go.)
func split(tb testing.TB, data []byte) fstest.MapFS {
	tb.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		tb.Fatal(err)
	}
	root := expand(doc.Content[0])
	out := fstest.MapFS{}
	write := func(name string, pairs ...*yaml.Node) {
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: pairs}
		b, err := yaml.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		out["infra/"+name] = &fstest.MapFile{Data: b}
	}
	var base, policies []*yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "domains":
			for j := 0; j+1 < len(v.Content); j += 2 {
				write(fmt.Sprintf("domains/%02d-%s.yml", j/2, v.Content[j].Value), v.Content[j], v.Content[j+1])
			}
		case "network_policies":
			policies = append(policies, k, v)
		default:
			if !strings.HasPrefix(k.Value, "x-") {
				base = append(base, k, v)
			}
		}
	}
	write("base.yml", base...)
	if policies != nil {
		write("policies.yml", policies...)
	}
	return out
}

// inode returns the inode number of info (0 where unknown).
func inode(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
