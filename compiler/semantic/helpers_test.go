package semantic

import (
	"fmt"
	"strings"
	"testing"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/load"
)

// ruleCase is one table entry: a PSOT, host options, and the exact
// diagnostics expected, each rendered as diag.Diagnostic.String() followed
// by "\n  hint: …" when it has a hint.
type ruleCase struct {
	name string
	src  string
	opts host.Options
	want []string
}

// render turns diagnostics into the strings compared by the tables.
func render(dl diag.List) []string {
	var out []string
	for _, d := range dl {
		s := d.String()
		if d.Hint != "" {
			s += "\n  hint: " + d.Hint
		}
		out = append(out, s)
	}
	return out
}

// check parses src (tabs are not allowed in YAML indentation, so the
// tables indent with spaces) and runs Check with an empty NodeSet.
func check(t *testing.T, src string, opts host.Options) diag.List {
	t.Helper()
	root, dl := load.Parse([]byte(src), "infra.yml", 0)
	if dl.HasErrors() || root == nil {
		t.Fatalf("parse: %v", render(dl))
	}
	return Check(root, load.NodeSet{}, opts)
}

func runCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := render(check(t, tc.src, tc.opts))
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("diagnostics differ\n--- got\n%s\n--- want\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func boolp(b bool) *bool { return &b }

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
