package root

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// commandPaths returns the path (without "anklume") of every available
// command of the tree, the root included as "".
func commandPaths(c *cobra.Command, prefix []string, out *[][]string) {
	*out = append(*out, prefix)
	for _, sub := range c.Commands() {
		if !sub.IsAvailableCommand() || sub.Name() == "help" {
			continue
		}
		commandPaths(sub, append(append([]string{}, prefix...), sub.Name()), out)
	}
}

func allCommands(t *testing.T) [][]string {
	t.Helper()
	f, _, _ := newFactory(nil, nil)
	var paths [][]string
	commandPaths(NewCmdRoot(f), nil, &paths)
	if len(paths) < 30 {
		t.Fatalf("only %d commands found", len(paths))
	}
	return paths
}

// TestHelpOfEveryCommand walks the whole command tree, new commands
// included, and checks each help: a short and a long description, an
// Examples section, one usage line, and no reference to the specification
// (users never have it).
func TestHelpOfEveryCommand(t *testing.T) {
	for _, path := range allCommands(t) {
		name := strings.TrimSpace("anklume " + strings.Join(path, " "))
		t.Run(name, func(t *testing.T) {
			f, _, _ := newFactory(nil, nil)
			root := NewCmdRoot(f)
			c, _, err := root.Find(path)
			if err != nil {
				t.Fatal(err)
			}
			got := runMain(nil, nil, append(append([]string{}, path...), "--help")...)
			if got.code != 0 || got.stderr != "" {
				t.Fatalf("--help: code %d, stderr %q", got.code, got.stderr)
			}
			help := got.stdout
			if c.Short == "" || c.Long == "" {
				t.Errorf("%s: set both Short (one line) and Long (what it does, in the user's terms) on its cobra.Command", name)
			}
			if c.Example == "" || !strings.Contains(help, "\nExamples:\n  anklume ") && !strings.Contains(help, "\nExamples:\n  sudo anklume ") && !strings.Contains(help, "\nExamples:\n  source <(anklume") {
				t.Errorf("%s: no Example: add Example: \"  %s …\" to its cobra.Command, one command line per use, each runnable as written", name, name)
			}
			if strings.Contains(help, "SPEC") || strings.Contains(help, "§") {
				t.Errorf("%s: the help cites the specification (users never have it):\n%s", name, help)
			}
			_, usage, _ := strings.Cut(help, "Usage:\n")
			usage, _, _ = strings.Cut(usage, "\n\n")
			if n := len(strings.Split(usage, "\n")); n != 1 {
				t.Errorf("%s: %d usage lines:\n%s", name, n, usage)
			}
		})
	}
}

// TestExamplesParse runs every example line of every help through the
// command tree as far as it goes without side effects: the command exists,
// its flags parse and its arguments are accepted. Lines of other programs
// (source, curl, tmux…) are skipped; a pipeline or redirection ends the
// anklume part of a line.
func TestExamplesParse(t *testing.T) {
	n := 0
	for _, path := range allCommands(t) {
		f, _, _ := newFactory(nil, nil)
		c, _, err := NewCmdRoot(f).Find(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(c.Example, "\n") {
			args := exampleArgs(line)
			if args == nil {
				continue
			}
			n++
			f, _, _ := newFactory(nil, nil)
			root := NewCmdRoot(f)
			root.InitDefaultHelpFlag()
			root.InitDefaultVersionFlag()
			cmd, rest, err := root.Find(args)
			if err != nil {
				t.Errorf("%q: %v", line, err)
				continue
			}
			if cmd == root && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
				t.Errorf("%q: no such command", line)
				continue
			}
			cmd.InitDefaultHelpFlag()
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%q: %v", line, err)
				continue
			}
			if cmd == root {
				continue // anklume --version
			}
			if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
				t.Errorf("%q: %v", line, err)
			}
		}
	}
	if n < 40 {
		t.Errorf("only %d example lines checked", n)
	}
}

// exampleArgs returns the arguments of an example line that runs anklume
// ("anklume …" or "sudo anklume …"), split as a shell would for simple
// quoting, up to the first pipe, redirection or &&; nil for another
// program's line.
func exampleArgs(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "sudo ")
	if !strings.HasPrefix(line, "anklume ") && line != "anklume" {
		return nil
	}
	var args []string
	var cur strings.Builder
	quote, inWord := rune(0), false
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	for i, a := range args {
		if a == "|" || a == "&&" || a == ">" || a == ";" || a == "2>" {
			args = args[:i]
			break
		}
	}
	return args[1:]
}
