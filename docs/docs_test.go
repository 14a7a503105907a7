package docs_test

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/anklume/anklume/cmd/cmdutil"
	"github.com/anklume/anklume/cmd/root"
	"github.com/anklume/anklume/docs"
	"github.com/anklume/anklume/internal/goldenflag"
	"github.com/anklume/anklume/schema"
)

// rootCommand builds the command tree with an empty environment, so that
// no default in the pages depends on the machine that generates them.
func rootCommand() *cmdutil.Factory {
	var out bytes.Buffer
	return &cmdutil.Factory{
		IO:         &cmdutil.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out},
		Getenv:     func(string) string { return "" },
		LookupEnv:  func(string) (string, bool) { return "", false },
		Getwd:      func() (string, error) { return "/nowhere", nil },
		FS:         func(dir string) fs.FS { return os.DirFS(dir) },
		Schema:     schema.JSON,
		SchemaPart: schema.Part,
		Build:      cmdutil.BuildInfo{Version: "dev"},
		Globals:    &cmdutil.GlobalOptions{},
	}
}

// TestReference: docs/reference holds exactly one page per command, as
// the cobra tree renders it now; it fails when a command, flag or help
// text changed without regenerating (go test ./docs -update).
func TestReference(t *testing.T) {
	pages, err := docs.GenerateReference(root.NewCmdRoot(rootCommand()))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 30 {
		t.Fatalf("only %d pages generated", len(pages))
	}
	dir := docs.ReferenceDir
	if *goldenflag.Update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range pages {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("%v (generate the reference: go test ./docs -update)", err)
	}
	var onDisk []string
	for _, e := range entries {
		onDisk = append(onDisk, e.Name())
		want, ok := pages[e.Name()]
		if !ok {
			t.Errorf("%s/%s: no such command any more (regenerate: go test ./docs -update)", dir, e.Name())
			continue
		}
		got, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/%s is stale (regenerate: go test ./docs -update)", dir, e.Name())
		}
	}
	for _, name := range slices.Sorted(maps.Keys(pages)) {
		if !slices.Contains(onDisk, name) {
			t.Errorf("%s/%s is missing (regenerate: go test ./docs -update)", dir, name)
		}
	}
	for name, b := range pages {
		if bytes.Contains(b, []byte("SPEC")) || bytes.Contains(b, []byte("§")) {
			t.Errorf("%s cites the specification, which users never have", name)
		}
	}
}

// TestTutorialParses: the tutorial has the file and the commands its test
// runs, every command is anklume's (the host set-up is not in console
// blocks), and Missing matches as the tutorial says.
func TestTutorialParses(t *testing.T) {
	steps, err := docs.ParseTutorial(docs.Tutorial)
	if err != nil {
		t.Fatal(err)
	}
	var files, cmds int
	for _, s := range steps {
		switch {
		case s.File != "":
			files++
		case !strings.HasPrefix(strings.TrimPrefix(s.Command, "sudo "), "anklume "):
			t.Errorf("tutorial.md:%d: %q is not an anklume command", s.Line, s.Command)
		default:
			cmds++
		}
	}
	if files != 1 || cmds < 8 {
		t.Errorf("%d files and %d commands parsed", files, cmds)
	}
	got := "Apply complete: 8 created\n+ network n: done (0.9s)   \n"
	if m := docs.Missing([]string{"+ network n: done (...)", "Apply complete: ... created"}, got); len(m) != 0 {
		t.Errorf("Missing = %q", m)
	}
	if m := docs.Missing([]string{"+ network n: done", "Apply complete: 9 created"}, got); len(m) != 2 {
		t.Errorf("Missing matched a partial or wrong line: %q", m)
	}
	if _, err := docs.ParseTutorial([]byte("```console\nno command\n```\n")); err == nil {
		t.Error("output before any command accepted")
	}
}

// TestThreatModel: the threat model names what it must be honest about.
func TestThreatModel(t *testing.T) {
	b, err := os.ReadFile("threat-model.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"same kernel", "virtual machine", "nftables", "firewall", "ai switch", "clipboard", "GPU", "bridge"} {
		if !strings.Contains(strings.ToLower(string(b)), strings.ToLower(topic)) {
			t.Errorf("threat-model.md does not cover %q", topic)
		}
	}
}
