// Package diag holds positioned diagnostics: the errors and warnings that
// every stage of the compiler reports, sorted and printed as
// FILE:LINE:COL: PATH: MESSAGE (SPEC.md §3.2).
package diag

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Severity tells an error from a warning or an informational line.
type Severity int

const (
	// Error makes validation fail.
	Error Severity = iota
	// Warning never changes the exit status.
	Warning
	// Info is printed to stderr as "info: …" and never fails.
	Info
)

// Pos is a position in a source file. Line and Col count from 1; a zero
// Line means "no position". FileIndex is the file's rank in load order
// (base.yml, then the domain files, then policies.yml) and drives sorting.
type Pos struct {
	File      string
	FileIndex int
	Line      int
	Col       int
}

// IsValid reports whether p carries a line.
func (p Pos) IsValid() bool { return p.Line > 0 }

// String formats p as FILE:LINE:COL.
func (p Pos) String() string {
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
}

// Diagnostic is one problem found in the PSOT.
type Diagnostic struct {
	Severity Severity
	Pos      Pos
	Path     string // dotted path, "(root)" or "(syntax)"; empty for non-positional messages
	Msg      string
	Hint     string
}

// String renders the diagnostic as it is printed, without the hint line.
func (d Diagnostic) String() string {
	var b strings.Builder
	switch d.Severity {
	case Warning:
		b.WriteString("warning: ")
	case Info:
		b.WriteString("info: ")
	}
	if d.Pos.IsValid() {
		b.WriteString(d.Pos.String())
		b.WriteString(": ")
		if d.Path != "" {
			b.WriteString(d.Path)
			b.WriteString(": ")
		}
	} else if d.Severity == Error {
		b.WriteString("error: ")
	}
	b.WriteString(d.Msg)
	return b.String()
}

// List is an ordered collection of diagnostics.
type List []Diagnostic

// Errorf appends an error.
func (l *List) Errorf(pos Pos, path, hint, format string, args ...any) {
	*l = append(*l, Diagnostic{Severity: Error, Pos: pos, Path: path, Hint: hint, Msg: fmt.Sprintf(format, args...)})
}

// Warnf appends a warning.
func (l *List) Warnf(pos Pos, path, hint, format string, args ...any) {
	*l = append(*l, Diagnostic{Severity: Warning, Pos: pos, Path: path, Hint: hint, Msg: fmt.Sprintf(format, args...)})
}

// Infof appends an informational line.
func (l *List) Infof(format string, args ...any) {
	*l = append(*l, Diagnostic{Severity: Info, Msg: fmt.Sprintf(format, args...)})
}

// Add appends d.
func (l *List) Add(d ...Diagnostic) { *l = append(*l, d...) }

// HasErrors reports whether l holds at least one error.
func (l List) HasErrors() bool { return l.Count(Error) > 0 }

// Count returns how many diagnostics of severity s l holds.
func (l List) Count(s Severity) int {
	n := 0
	for _, d := range l {
		if d.Severity == s {
			n++
		}
	}
	return n
}

// Filter returns the diagnostics of severity s, in order.
func (l List) Filter(s Severity) List {
	var out List
	for _, d := range l {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// Sort orders l as SPEC.md §3.2 says: by file load order, line, column,
// then message. Diagnostics without a position come first, in the order
// they were added. Info lines keep their relative order.
func (l List) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Pos.IsValid() != b.Pos.IsValid() {
			return !a.Pos.IsValid()
		}
		if !a.Pos.IsValid() {
			return false
		}
		if a.Pos.FileIndex != b.Pos.FileIndex {
			return a.Pos.FileIndex < b.Pos.FileIndex
		}
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		if a.Msg != b.Msg {
			return a.Msg < b.Msg
		}
		return a.Path < b.Path
	})
}

// Dedup removes exact repeats (same severity, position, path and message),
// keeping the first.
func (l List) Dedup() List {
	seen := make(map[string]bool, len(l))
	out := l[:0:0]
	for _, d := range l {
		k := fmt.Sprintf("%d\x00%s\x00%d\x00%s\x00%s", d.Severity, d.Pos, d.Pos.FileIndex, d.Path, d.Msg)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, d)
	}
	return out
}

// Print writes infos, then warnings, then errors (each group sorted), with
// hint lines, and the closing count line when there are errors.
func (l List) Print(w io.Writer) {
	for _, sev := range []Severity{Info, Warning, Error} {
		group := l.Filter(sev)
		if sev != Info {
			group.Sort()
		}
		for _, d := range group {
			fmt.Fprintln(w, d.String())
			if d.Hint != "" {
				fmt.Fprintln(w, "  hint: "+d.Hint)
			}
		}
	}
	if n := l.Count(Error); n > 0 {
		fmt.Fprintln(w, CountLine(n))
	}
}

// CountLine returns "validation failed: 1 error" or "… N errors".
func CountLine(n int) string {
	if n == 1 {
		return "validation failed: 1 error"
	}
	return fmt.Sprintf("validation failed: %d errors", n)
}

// JSONItem is one diagnostic in `validate --json` output.
type JSONItem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Path    string `json:"path"`
	Message string `json:"message"`
	Hint    string `json:"hint"`
}

// JSONReport is the `validate --json` document.
type JSONReport struct {
	Valid    bool       `json:"valid"`
	Errors   []JSONItem `json:"errors"`
	Warnings []JSONItem `json:"warnings"`
}

// Report builds the JSON report of l.
func (l List) Report() JSONReport {
	r := JSONReport{Valid: !l.HasErrors(), Errors: []JSONItem{}, Warnings: []JSONItem{}}
	for _, sev := range []Severity{Warning, Error} {
		group := l.Filter(sev)
		group.Sort()
		for _, d := range group {
			it := JSONItem{File: d.Pos.File, Line: d.Pos.Line, Col: d.Pos.Col, Path: d.Path, Message: d.Msg, Hint: d.Hint}
			if sev == Error {
				r.Errors = append(r.Errors, it)
			} else {
				r.Warnings = append(r.Warnings, it)
			}
		}
	}
	return r
}

// MarshalReport renders the JSON report of l with a trailing newline.
func (l List) MarshalReport() []byte {
	b, _ := json.Marshal(l.Report()) // plain structs of strings and ints cannot fail
	return append(b, '\n')
}

// plainSegment reports whether k matches ^[a-z0-9_-]+$ (a segment written
// without brackets).
func plainSegment(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Path builds dotted paths as SPEC.md §3.2 writes them.
type Path string

// Root is the path of the document root.
const Root Path = "(root)"

// Key appends a mapping key: `.key`, or `["key"]` when the key is not a
// plain segment.
func (p Path) Key(k string) Path {
	if plainSegment(k) {
		if p == Root || p == "" {
			return Path(k)
		}
		return p + Path("."+k)
	}
	q, _ := json.Marshal(k)
	seg := "[" + string(q) + "]"
	if p == Root || p == "" {
		return Path(seg)
	}
	return p + Path(seg)
}

// Index appends a list index `[i]`.
func (p Path) Index(i int) Path {
	if p == Root {
		p = ""
	}
	return p + Path("["+strconv.Itoa(i)+"]")
}

// String returns the path, "(root)" for the empty path.
func (p Path) String() string {
	if p == "" {
		return string(Root)
	}
	return string(p)
}
