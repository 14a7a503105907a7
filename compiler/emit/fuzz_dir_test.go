package emit_test

import (
	"bytes"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/anklume/anklume/compiler"
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/emit"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
)

// The directory-mode fuzz target reads one byte string as a whole infra/
// directory, in a txtar-like archive: a line "-- <name> --" starts the
// file <name> (relative to infra/), the lines up to the next such line
// are its content. The fuzzer thus mutates file names as well as their
// contents: hidden and editor lock files, files that are no YAML, a
// domain defined in two files, domains/ as a file, base.yml missing.

// dirArchive renders files (name → content) as an archive, names sorted.
func dirArchive(files map[string]string) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString("-- " + n + " --\n" + files[n])
		if c := files[n]; c != "" && !strings.HasSuffix(c, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// parseDirArchive turns an archive into an infra/ directory. It returns
// false for an archive no disk can hold: a name that is no valid relative
// path, a name given twice, a file that is also the parent directory of
// another one.
func parseDirArchive(data []byte) (fstest.MapFS, bool) {
	fsys := fstest.MapFS{}
	var name string
	var content []byte
	flush := func() bool {
		if name == "" {
			return true
		}
		if !fs.ValidPath(name) || name == "." {
			return false
		}
		p := "infra/" + name
		if _, dup := fsys[p]; dup {
			return false
		}
		fsys[p] = &fstest.MapFile{Data: content, Mode: 0o644}
		return true
	}
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		l := strings.TrimSuffix(string(line), "\n")
		if strings.HasPrefix(l, "-- ") && strings.HasSuffix(l, " --") && len(l) > 6 {
			if !flush() {
				return nil, false
			}
			name, content = l[3:len(l)-3], nil
			continue
		}
		if name == "" {
			continue // text before the first file is a comment, as in txtar
		}
		content = append(content, line...)
	}
	if !flush() {
		return nil, false
	}
	for p := range fsys {
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if _, clash := fsys[d]; clash {
				return nil, false
			}
		}
	}
	return fsys, true
}

// dirSeeds are the single-file seeds of FuzzPipeline split into directory
// mode where they parse, and inputs proper to directory mode.
func dirSeeds(tb testing.TB) []string {
	base := "project_name: t\nglobal: {addressing: {base_octet: 10, zone_base: 100}}\n"
	seeds := []string{
		// Editor lock files, a hidden file, a file that is no YAML, a
		// sub-directory of domains/.
		dirArchive(map[string]string{"base.yml": base, "domains/work.yml": "work: {subnet_id: 1, machines: {w1: {}}}\n",
			"domains/.#work.yml": "garbage: [\n", "domains/#work.yml#": "x", "domains/.hidden.yml": "h: {}\n",
			"domains/notes.txt": "not yaml: [", "domains/old/old.yml": "old: {}\n"}),
		// A domain defined in two files.
		dirArchive(map[string]string{"base.yml": base, "domains/a.yml": "lab: {subnet_id: 1}\n", "domains/b.yml": "lab: {subnet_id: 2}\n"}),
		// Several domains in one file, policies, x- keys with anchors.
		dirArchive(map[string]string{"base.yml": base + "x-img: &img images:debian/13\n",
			"domains/10-all.yml": "pro: {subnet_id: 1, machines: {pro-a: {os_image: images:debian/13}}}\nperso: {subnet_id: 2, trust_level: disposable}\n",
			"policies.yml":       "x-note: hi\nnetwork_policies:\n  - {description: web, from: perso, to: pro-a, ports: [80]}\n"}),
		// No base.yml; domains/ as a file; an empty base.
		dirArchive(map[string]string{"domains/a.yml": "a: {}\n"}),
		dirArchive(map[string]string{"base.yml": base, "domains": "a: {}\n"}),
		dirArchive(map[string]string{"base.yml": "", "domains/a.yml": "a: {}\n"}),
		// Keys that belong elsewhere.
		dirArchive(map[string]string{"base.yml": base + "domains: {x: {}}\n", "policies.yml": "project_name: other\n"}),
	}
	for _, s := range fuzzSeeds() {
		var doc yaml.Node
		if yaml.Unmarshal([]byte(s), &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		files := map[string]string{}
		for p, f := range split(tb, []byte(s)) {
			files[strings.TrimPrefix(p, "infra/")] = string(f.Data)
		}
		seeds = append(seeds, dirArchive(files))
	}
	return seeds
}

// FuzzPipelineDir takes an arbitrary infra/ directory through the whole
// pipeline of directory mode: load, validate, resolve and every emitter
// (the Ansible tree, the desired state, the nftables ruleset, the
// preseed), as FuzzPipeline does for one file. Every input is either
// rejected, each error with a position in a file that exists in the
// directory (or, for a missing or unreadable base.yml, a fatal error that
// names it), or accepted, and then:
//   - the outputs hold the invariants of FuzzPipeline (checkOutputs);
//   - the tree syncs into an empty directory, and a second sync of the
//     same files over it changes nothing (sync reads back what it wrote);
//   - the equivalent single file (base.yml, then every domain of the
//     files read in load order under domains:, then policies.yml; x- keys
//     left out, aliases expanded) is accepted too and gives the same tree,
//     byte for byte (SPEC: directory mode is output-identical).
//
// TestFuzzCorpusReaders runs the seeds and stored corpus of this target
// through PyYAML and `nft -c` as well.
func FuzzPipelineDir(f *testing.F) {
	for _, s := range dirSeeds(f) {
		f.Add([]byte(s), byte(0))
		f.Add([]byte(s), byte(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, opt byte) {
		if len(data) > 64<<10 {
			return
		}
		fsys, ok := parseDirArchive(data)
		if !ok {
			return
		}
		res, dl, err := compiler.Compile(fsys, compiler.Input{Path: "infra", Display: "infra", Dir: true}, fuzzOptions(opt))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "infra/") && !strings.HasPrefix(err.Error(), "reading infra/") {
				t.Fatalf("fatal error that names no file: %v", err)
			}
			return
		}
		if res == nil {
			checkRejected(t, fsys, dl)
			return
		}
		m := res.Model
		if m == nil || len(m.EnabledDomains()) == 0 {
			return
		}
		files := emit.Tree(m)
		checkOutputs(t, m, files)
		dir := t.TempDir()
		syncDir(t, dir, files)
		if created, updated, _ := syncDir(t, dir, emit.Tree(m)); created != 0 || updated != 0 {
			t.Fatalf("a second sync of the same input created %d and updated %d files", created, updated)
		}
		single, ok := mergeDir(fsys, res.Files)
		if !ok {
			return
		}
		sm := compileFuzz(single, opt)
		if sm == nil {
			t.Fatalf("directory mode accepts what the equivalent single file refuses:\n%s", single)
		}
		sameTree(t, files, emit.Tree(sm), single)
	})
}

// compileDirFuzz compiles an archive as an infra/ directory; nil when it
// is no directory a disk can hold or validate rejects it.
func compileDirFuzz(data []byte, opt byte) *model.Infra {
	fsys, ok := parseDirArchive(data)
	if !ok {
		return nil
	}
	res, _, err := compiler.Compile(fsys, compiler.Input{Path: "infra", Display: "infra", Dir: true}, fuzzOptions(opt))
	if err != nil || res == nil {
		return nil
	}
	return res.Model
}

// checkRejected asserts that a rejected input has at least one error and
// that every error is positioned in a file of fsys.
func checkRejected(t *testing.T, fsys fstest.MapFS, dl diag.List) {
	t.Helper()
	if !dl.HasErrors() {
		t.Fatal("rejected without an error")
	}
	for _, d := range dl {
		if d.Severity != diag.Error {
			continue
		}
		if !d.Pos.IsValid() {
			t.Fatalf("error without a position: %s", d)
		}
		if _, ok := fsys[d.Pos.File]; !ok {
			t.Fatalf("error positioned in %q, no file of the input: %s", d.Pos.File, d)
		}
	}
}

// mergeDir builds the single file equivalent to the files read (display
// paths in load order: base.yml, the domain files, policies.yml). It
// returns false when yaml.v3 cannot read one of them as the loader did.
func mergeDir(fsys fstest.MapFS, read []string) ([]byte, bool) {
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	domains := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	var policies []*yaml.Node
	for _, p := range read {
		f, ok := fsys[p]
		if !ok {
			return nil, false
		}
		var doc yaml.Node
		if yaml.Unmarshal(f.Data, &doc) != nil {
			return nil, false
		}
		if len(doc.Content) == 0 {
			continue
		}
		top := expand(doc.Content[0])
		resolveTags(top)
		if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
			continue
		}
		if top.Kind != yaml.MappingNode {
			return nil, false
		}
		for i := 0; i+1 < len(top.Content); i += 2 {
			k, v := top.Content[i], top.Content[i+1]
			switch {
			case strings.HasPrefix(k.Value, "x-"):
			case strings.HasPrefix(p, "infra/domains/"):
				domains.Content = append(domains.Content, k, v)
			case p == "infra/policies.yml":
				policies = append(policies, k, v)
			default:
				root.Content = append(root.Content, k, v)
			}
		}
	}
	if len(domains.Content) > 0 {
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "domains"}, domains)
	}
	root.Content = append(root.Content, policies...)
	b, err := yaml.Marshal(root)
	return b, err == nil
}

// resolveTags gives every scalar of n without a tag its resolved one, and
// every empty null scalar the value null, so that yaml.v3 writes it back
// as it was read (it writes the missing value of a flow mapping entry,
// "{key}", an empty !!null scalar, as ”).
func resolveTags(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Tag == "" {
		n.Tag = n.ShortTag()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == "" {
		n.Value = "null"
	}
	for _, c := range n.Content {
		resolveTags(c)
	}
}

// sameTree fails t when two generated trees differ in a path or a byte.
func sameTree(t *testing.T, got, want []tree.File, single []byte) {
	t.Helper()
	index := func(files []tree.File) map[string]tree.File {
		out := map[string]tree.File{}
		for _, f := range files {
			out[f.Path] = f
		}
		return out
	}
	g, w := index(got), index(want)
	gp, wp := make([]string, 0, len(g)), make([]string, 0, len(w))
	for p := range g {
		gp = append(gp, p)
	}
	for p := range w {
		wp = append(wp, p)
	}
	sort.Strings(gp)
	sort.Strings(wp)
	if !slices.Equal(gp, wp) {
		t.Fatalf("directory mode and the single file generate different paths:\n%q\n%q\nsingle file:\n%s", gp, wp, single)
	}
	for _, p := range gp {
		if !bytes.Equal(g[p].Content, w[p].Content) || g[p].Class != w[p].Class {
			t.Fatalf("%s differs between directory mode and the single file:\n%s\nsingle file gives:\n%s\nsingle file:\n%s",
				p, g[p].Content, w[p].Content, single)
		}
	}
}
