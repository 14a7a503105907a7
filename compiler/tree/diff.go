package tree

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// contextLines is the number of unchanged lines shown around each change.
const contextLines = 3

// lineOp is one line of an edit script: ' ' kept, '-' removed, '+' added.
type lineOp struct {
	op   byte
	text string // the line, with its newline when it has one
}

// UnifiedDiff returns the unified diff of §6.8 between old and new for the
// file at p: 3 lines of context, labels `a/<p>` and `b/<p>`, and
// `--- /dev/null` when created is set. It returns nil when the bytes are
// equal and the file is not created. The line-level edit script comes from
// github.com/sergi/go-diff (line mode); hunks are formatted here.
func UnifiedDiff(p string, old []byte, created bool, new []byte) []byte {
	if !created && bytes.Equal(old, new) {
		return nil
	}
	oldName := "a/" + p
	if created {
		oldName = "/dev/null"
		old = nil
	}
	ops := editScript(string(old), string(new))
	var out bytes.Buffer
	fmt.Fprintf(&out, "--- %s\n+++ b/%s\n", oldName, p)
	writeHunks(&out, ops)
	return out.Bytes()
}

// editScript diffs a and b line by line: each distinct line is mapped to
// one rune, the rune strings are diffed by diffmatchpatch, and the runes are
// mapped back to lines. (The library's own DiffLinesToRunes encodes line
// indexes as text in v1.3.1, which its rune diff then splits.)
func editScript(a, b string) []lineOp {
	index := map[string]rune{}
	var table []string
	encode := func(s string) []rune {
		var out []rune
		for _, l := range strings.SplitAfter(s, "\n") {
			if l == "" {
				continue
			}
			r, ok := index[l]
			if !ok {
				r = rune(len(table))
				if r >= 0xD800 { // skip the surrogate range
					r += 0x800
				}
				index[l] = r
				table = append(table, l)
			}
			out = append(out, r)
		}
		return out
	}
	ra, rb := encode(a), encode(b)
	line := func(r rune) string {
		if r >= 0xE000 {
			r -= 0x800
		}
		return table[r]
	}
	dmp := diffmatchpatch.New()
	dmp.DiffTimeout = 0 // an exact diff: sync files are small
	var ops []lineOp
	for _, d := range dmp.DiffMainRunes(ra, rb, false) {
		op := byte(' ')
		switch d.Type {
		case diffmatchpatch.DiffDelete:
			op = '-'
		case diffmatchpatch.DiffInsert:
			op = '+'
		}
		for _, r := range d.Text {
			ops = append(ops, lineOp{op, line(r)})
		}
	}
	return ops
}

// writeHunks groups ops into hunks with contextLines of context and writes
// them. A line without a final newline is followed by the usual
// "\ No newline at end of file" marker.
func writeHunks(out *bytes.Buffer, ops []lineOp) {
	i := 0
	oldLine, newLine := 1, 1 // line numbers of ops[i]
	for i < len(ops) {
		// Find the next change.
		j := i
		for j < len(ops) && ops[j].op == ' ' {
			j++
		}
		if j == len(ops) {
			return
		}
		// Start of the hunk: up to contextLines kept lines before j.
		start := max(i, j-contextLines)
		oldStart := oldLine + (start - i)
		newStart := newLine + (start - i)
		// Extend while changes are separated by at most 2*context kept lines.
		end := j
		for end < len(ops) {
			if ops[end].op != ' ' {
				end++
				continue
			}
			k := end
			for k < len(ops) && ops[k].op == ' ' {
				k++
			}
			if k == len(ops) || k-end >= 2*contextLines {
				end = min(k, end+contextLines)
				break
			}
			end = k
		}
		var oldCount, newCount int
		for _, o := range ops[start:end] {
			if o.op != '+' {
				oldCount++
			}
			if o.op != '-' {
				newCount++
			}
		}
		if oldCount == 0 {
			oldStart--
		}
		if newCount == 0 {
			newStart--
		}
		fmt.Fprintf(out, "@@ -%d,%d +%d,%d @@\n", oldStart, oldCount, newStart, newCount)
		for _, o := range ops[start:end] {
			out.WriteByte(o.op)
			out.WriteString(o.text)
			if !strings.HasSuffix(o.text, "\n") {
				out.WriteString("\n\\ No newline at end of file\n")
			}
		}
		// Advance the line counters past ops[i:end].
		for _, o := range ops[i:end] {
			if o.op != '+' {
				oldLine++
			}
			if o.op != '-' {
				newLine++
			}
		}
		i = end
	}
}
