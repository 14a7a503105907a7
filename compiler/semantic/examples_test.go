package semantic

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/load"
)

// TestExamples checks that every shipped example gives exactly the
// warnings of SPEC.md §15 in S2 and no error (§16 item 2).
func TestExamples(t *testing.T) {
	want := map[string][]string{
		"ai-tools":          {`roles[1]: machine "ai-openclaw" has role openclaw_server but no network policy starts from it or its domain`},
		"llm-supervisor":    {`2 instances share the GPU (llm-main, llm-supervisor); consumer GPUs offer no VRAM isolation`},
		"sandbox-isolation": {`machine "sbx-test" uses LXC`, `machine "sbx-monitor" uses LXC`},
		"tor-gateway":       {`machine "tor-gw" uses LXC`},
	}
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "infra.yml"))
	if len(files) == 0 {
		t.Skip("no examples")
	}
	for _, p := range files {
		name := filepath.Base(filepath.Dir(p))
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			root, dl := load.Parse(b, "infra.yml", 0)
			if dl.HasErrors() {
				t.Fatal(render(dl))
			}
			got := Check(root, nil, host.Options{})
			if got.HasErrors() {
				t.Errorf("errors: %v", render(got))
			}
			ws := render(got.Filter(diag.Warning))
			if len(ws) != len(want[name]) {
				t.Fatalf("warnings %v, want %d matching %v", ws, len(want[name]), want[name])
			}
			for i, w := range ws {
				if !strings.Contains(w, want[name][i]) {
					t.Errorf("warning %d = %q, want it to contain %q", i, w, want[name][i])
				}
			}
		})
	}
}
