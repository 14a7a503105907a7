// Package docs holds the user documentation (Markdown) and what keeps it
// true: the tutorial's steps, parsed here for the test that runs every
// one of them on a real Incus daemon (e2e/tutorial_test.go), and the
// command reference in reference/, generated from the cobra tree
// (GenerateReference; TestReference fails when it is stale, -update
// rewrites it).
//
// The tutorial's conventions: a fenced block right after the comment
// `<!-- file: NAME -->` is written to NAME; in a ```console block each
// line starting with "$ " is a command and the lines after it, up to the
// next command, are output it must print (each shown line must equal a
// line of the output, stdout and stderr together, in any order, "..."
// standing for any text; the order of parallel work is not fixed). Every
// command must exit 0. Blocks of other languages (```sh: the host set-up)
// are not run.
package docs

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"regexp"
	"strings"
)

// Tutorial is docs/tutorial.md.
//
//go:embed tutorial.md
var Tutorial []byte

// Step is one step of the tutorial: a file to write or a command to run.
type Step struct {
	// Line is the step's line in the Markdown (1-based).
	Line int
	// File and Content: write Content to File.
	File, Content string
	// Command and Output: run Command; Output are the lines it must print.
	Command string
	Output  []string
}

var fileMark = regexp.MustCompile(`^<!-- file: (\S+) -->$`)

// ParseTutorial returns the steps of md in order.
func ParseTutorial(md []byte) ([]Step, error) {
	var steps []Step
	sc := bufio.NewScanner(bytes.NewReader(md))
	n := 0
	file := ""
	for sc.Scan() {
		n++
		line := sc.Text()
		if m := fileMark.FindStringSubmatch(line); m != nil {
			file = m[1]
			continue
		}
		if !strings.HasPrefix(line, "```") || len(line) == 3 {
			continue
		}
		lang, start := strings.TrimPrefix(line, "```"), n
		var body []string
		closed := false
		for sc.Scan() {
			n++
			if sc.Text() == "```" {
				closed = true
				break
			}
			body = append(body, sc.Text())
		}
		if !closed {
			return nil, fmt.Errorf("tutorial.md:%d: block not closed", start)
		}
		switch {
		case file != "":
			steps = append(steps, Step{Line: start, File: file, Content: strings.Join(body, "\n") + "\n"})
		case lang == "console":
			for i, l := range body {
				if c, ok := strings.CutPrefix(l, "$ "); ok {
					steps = append(steps, Step{Line: start + 1 + i, Command: c})
				} else if len(steps) == 0 || steps[len(steps)-1].Command == "" {
					return nil, fmt.Errorf("tutorial.md:%d: output before any command", start+1+i)
				} else {
					s := &steps[len(steps)-1]
					s.Output = append(s.Output, l)
				}
			}
		}
		file = ""
	}
	return steps, sc.Err()
}

// Missing returns the lines of want that no line of got matches, where
// "..." in a wanted line matches any text and trailing blanks do not
// count.
func Missing(want []string, got string) []string {
	var have []string
	for _, l := range strings.Split(got, "\n") {
		have = append(have, strings.TrimRight(l, " \t\r"))
	}
	var out []string
	for _, w := range want {
		parts := strings.Split(strings.TrimRight(w, " "), "...")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re := regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
		found := false
		for _, h := range have {
			if re.MatchString(h) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
}
