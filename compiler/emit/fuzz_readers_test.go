package emit_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler/emit"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
)

// needTool skips t when tool cannot run, or fails it under
// ANKLUME_E2E_REQUIRE (CI), which installs every tool.
func needTool(t *testing.T, check ...string) {
	t.Helper()
	if err := exec.Command(check[0], check[1:]...).Run(); err != nil {
		msg := strings.Join(check, " ") + " does not run: " + err.Error()
		if os.Getenv("ANKLUME_E2E_REQUIRE") != "" {
			t.Fatal(msg + " (and ANKLUME_E2E_REQUIRE is set)")
		}
		t.Skip("skipped: " + msg)
	}
}

// corpusInputs returns the seeds of FuzzPipeline and FuzzPipelineDir and
// every entry of their stored corpora (testdata/fuzz/<target>), each with
// its option byte, as compiled models (nil where validate rejects).
func corpusInputs(t *testing.T) (models []*model.Infra) {
	for _, s := range fuzzSeeds() {
		models = append(models, compileFuzz([]byte(s), 0))
	}
	for _, s := range dirSeeds(t) {
		models = append(models, compileDirFuzz([]byte(s), 0))
	}
	for target, compile := range map[string]func([]byte, byte) *model.Infra{
		"FuzzPipeline": compileFuzz, "FuzzPipelineDir": compileDirFuzz,
	} {
		files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
		sort.Strings(files)
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			d, o, ok := parseCorpusEntry(string(b))
			if !ok {
				t.Fatalf("%s: not a %s corpus entry", p, target)
			}
			models = append(models, compile(d, o))
		}
	}
	return models
}

// parseCorpusEntry reads a "go test fuzz v1" file of ([]byte, byte).
func parseCorpusEntry(s string) ([]byte, byte, bool) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) != 3 || lines[0] != "go test fuzz v1" ||
		!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasPrefix(lines[2], "byte(") {
		return nil, 0, false
	}
	d, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		return nil, 0, false
	}
	arg := strings.TrimSuffix(strings.TrimPrefix(lines[2], "byte("), ")")
	if n, err := strconv.ParseUint(arg, 0, 8); err == nil {
		return []byte(d), byte(n), true
	}
	c, err := strconv.Unquote(arg)
	if err != nil || len(c) != 1 {
		return nil, 0, false
	}
	return []byte(d), c[0], true
}

// TestFuzzCorpusReaders runs the seeds and stored corpora of FuzzPipeline
// and FuzzPipelineDir through the readers that the in-process target cannot run: every YAML
// file of every accepted input is loaded by PyYAML (YAML 1.1, Ansible's
// reader, with !unsafe as Ansible reads it), and every ruleset passes
// `nft -c -f` in a throwaway network namespace.
func TestFuzzCorpusReaders(t *testing.T) {
	needTool(t, "python3", "-c", "import yaml")
	models := corpusInputs(t)
	root := t.TempDir()
	var nftFiles []string
	accepted := 0
	for i, m := range models {
		if m == nil || len(m.EnabledDomains()) == 0 {
			continue
		}
		accepted++
		dir := filepath.Join(root, strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		r := render(t, nonRoleFiles(m))
		for p, b := range r.files {
			full := filepath.Join(dir, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(p, ".nft") {
				nftFiles = append(nftFiles, full)
			}
		}
	}
	if accepted < 10 {
		t.Fatalf("only %d accepted inputs: the corpus lost its examples", accepted)
	}
	script := `import sys, os, yaml
class L(yaml.SafeLoader):
    pass
L.add_constructor("!unsafe", lambda l, n: l.construct_scalar(n))
bad = 0
count = 0
for top, _, files in os.walk(sys.argv[1]):
    for f in files:
        if f.endswith(".yml"):
            p = os.path.join(top, f)
            count += 1
            try:
                with open(p, encoding="utf-8") as fh:
                    yaml.load(fh, Loader=L)
            except Exception as e:
                bad += 1
                print(p, e)
print(count, "files")
sys.exit(1 if bad else 0)
`
	cmd := exec.Command("python3", "-c", script, root)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("PyYAML cannot read generated files: %v\n%s", err, out.String())
	}
	t.Logf("%d accepted inputs; PyYAML: %s", accepted, strings.TrimSpace(out.String()))

	if os.Geteuid() != 0 {
		needTool(t, "false") // nft -c needs root in a new network namespace
	}
	needTool(t, "unshare", "-n", "true")
	needTool(t, "nft", "--version")
	for _, f := range nftFiles {
		if out, err := exec.Command("unshare", "-n", "nft", "-c", "-f", f).CombinedOutput(); err != nil {
			src, _ := os.ReadFile(f)
			t.Errorf("nft -c -f %s: %v\n%s\n%s", f, err, out, src)
		}
	}
	t.Logf("nft -c: %d rulesets", len(nftFiles))
}

// nonRoleFiles returns emit.Tree(m) without the embedded roles, which do
// not depend on the input.
func nonRoleFiles(m *model.Infra) []tree.File {
	var out []tree.File
	for _, f := range emit.Tree(m) {
		if !strings.HasPrefix(f.Path, "roles/") {
			out = append(out, f)
		}
	}
	return out
}
