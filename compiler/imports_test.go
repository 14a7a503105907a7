package compiler

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsPointOneWay keeps the compiler pure (STYLE.md): no package
// under compiler/ imports os/exec, net/http or the Incus client directly,
// none reaches the Incus client transitively, and emitters depend on the
// model, not on the loader's node tree. (shared/api, whose types the Incus
// emitters use, imports net/http itself; that indirect import is allowed.)
func TestImportsPointOneWay(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipped: the go tool is not in PATH")
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \",\"}}|{{join .Deps \",\"}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbiddenDirect := []string{"os/exec", "net/http", "github.com/lxc/incus/v6/client"}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(line, "|", 3)
		pkg, imports, deps := parts[0], strings.Split(parts[1], ","), strings.Split(parts[2], ",")
		n++
		for _, imp := range imports {
			for _, f := range forbiddenDirect {
				if imp == f {
					t.Errorf("%s imports %s", pkg, f)
				}
			}
			if strings.Contains(pkg, "/compiler/emit/") && (strings.HasSuffix(imp, "/compiler/load") || strings.HasSuffix(imp, "/compiler/structure") || strings.HasSuffix(imp, "/compiler/semantic")) {
				t.Errorf("emitter %s imports %s: emitters read the model only", pkg, imp)
			}
		}
		for _, d := range deps {
			if d == "github.com/lxc/incus/v6/client" {
				t.Errorf("%s depends on the Incus client", pkg)
			}
		}
	}
	if n < 5 {
		t.Fatalf("go list found only %d packages under compiler/", n)
	}
}
