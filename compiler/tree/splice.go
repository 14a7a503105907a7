// Package tree writes the generated files of `anklume sync` under a base
// directory (SPEC.md §6): it splices managed sections into existing files,
// guards framework files with their header, plans every write before any
// happens, writes atomically, reports and diffs the changes, and finds
// orphan files.
package tree

import (
	"bytes"
	"fmt"
	"strings"
)

// Markers and notice of a managed section (§6.3).
const (
	Begin  = "# === MANAGED BY infra.yml ==="
	Notice = "# Do not edit this section — it will be overwritten by `anklume sync`"
	End    = "# === END MANAGED ==="
)

// bom is the UTF-8 byte order mark, kept at the start of a file (§6.3).
const bom = "\xef\xbb\xbf"

// Kind is the layout of a managed file (§6.3).
type Kind int

const (
	// YAML is an Ansible inventory or variables file.
	YAML Kind = iota
	// Preseed is incus/preseed.yml: YAML with its own trailer.
	Preseed
	// NFT is an nftables file: no `---`, no trailer.
	NFT
)

// Error is a problem that stops sync before anything is written. Msg is
// printed after `error: `, and Hint, when set, on a `hint:` line below.
type Error struct {
	Path string
	Msg  string
	Hint string
}

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// Block returns the managed block for content: BEGIN, NOTICE, content
// without its trailing newlines and END, with no newline after END.
func Block(content []byte) []byte {
	var b bytes.Buffer
	b.WriteString(Begin + "\n" + Notice + "\n")
	b.Write(bytes.TrimRight(content, "\n"))
	b.WriteString("\n" + End)
	return b.Bytes()
}

// isLine reports whether line (without its `\n`) equals want once trailing
// spaces, tabs and `\r` are removed.
func isLine(line, want string) bool {
	return strings.TrimRight(line, " \t\r") == want
}

// lineSpan is one line of a text: its bytes from start to end, excluding
// the terminating `\n` (which sits at end when the line has one).
type lineSpan struct{ start, end int }

// splitLines cuts text into lines.
func splitLines(text string) []lineSpan {
	var ls []lineSpan
	start := 0
	for start < len(text) {
		i := strings.IndexByte(text[start:], '\n')
		if i < 0 {
			ls = append(ls, lineSpan{start, len(text)})
			break
		}
		ls = append(ls, lineSpan{start, start + i})
		start += i + 1
	}
	return ls
}

// Splice returns the new bytes of the managed file at path (used in
// messages) whose current bytes are old (exists false: the file is absent),
// once its managed section holds content. It implements the table of §6.3.
func Splice(path string, old []byte, exists bool, content []byte, kind Kind) ([]byte, error) {
	block := string(Block(content))
	if !exists {
		switch kind {
		case NFT:
			return []byte(block + "\n"), nil
		case Preseed:
			return []byte("---\n" + block + "\n\n# Your custom preseed keys below (config:, storage_pools:, cluster:, ...):\n"), nil
		default:
			return []byte("---\n" + block + "\n\n# Your custom variables below:\n"), nil
		}
	}
	text := string(old)
	prefix := ""
	if strings.HasPrefix(text, bom) {
		prefix, text = bom, text[len(bom):]
	}
	lines := splitLines(text)
	begin := -1
	for i, l := range lines {
		if !isLine(text[l.start:l.end], Begin) {
			continue
		}
		if begin >= 0 {
			return nil, &Error{Path: path, Msg: path + ": more than one managed section"}
		}
		begin = i
	}
	if begin >= 0 {
		for k, l := range lines[begin+1:] {
			if isLine(text[l.start:l.end], End) {
				if kind != NFT {
					if err := userTextOutside(path, text, lines[begin+1+k+1:], begin+1+k+1); err != nil {
						return nil, err
					}
				}
				return []byte(prefix + text[:lines[begin].start] + block + text[l.end:]), nil
			}
		}
		return nil, &Error{Path: path, Msg: fmt.Sprintf("%s: managed section is not closed (BEGIN at line %d, no END after it)", path, begin+1)}
	}
	if kind == NFT {
		return []byte(prefix + block + "\n\n" + text), nil
	}
	if len(lines) > 0 && isLine(text[lines[0].start:lines[0].end], "---") {
		rest := ""
		if lines[0].end < len(text) {
			rest = text[lines[0].end+1:]
		}
		return []byte(prefix + "---\n" + block + "\n\n" + rest), nil
	}
	return []byte(prefix + "---\n" + block + "\n\n" + text), nil
}

// userTextOutside checks that the user's YAML below the managed section
// cannot continue the section's last value: its first line that is neither
// blank nor a comment must start at column 1 and not be a `- ` list entry
// (a block list may sit at its key's column, so `- x` there would join the
// managed `profiles:` list, and an indented line would join whatever the
// section ends with). after are the lines below END; first is the index of
// the first one, for the message.
func userTextOutside(path, text string, after []lineSpan, first int) error {
	for k, l := range after {
		line := strings.TrimRight(text[l.start:l.end], "\r")
		trimmed := strings.TrimLeft(line, " \t")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if trimmed != line || trimmed == "-" || strings.HasPrefix(trimmed, "- ") || strings.HasPrefix(trimmed, "-\t") {
			return &Error{
				Path: path,
				Msg: fmt.Sprintf("%s:%d:1: your text below the managed section would continue the section's last value "+
					"(it is indented or a list entry)", path, first+k+1),
				Hint: "start your own keys at column 1 below the END line, each with a key of its own",
			}
		}
		return nil
	}
	return nil
}

// HasBegin reports whether data holds a BEGIN line (after an optional byte
// order mark), the test §6.9 applies to orphans.
func HasBegin(data []byte) bool {
	text := strings.TrimPrefix(string(data), bom)
	for _, l := range splitLines(text) {
		if isLine(text[l.start:l.end], Begin) {
			return true
		}
	}
	return false
}
