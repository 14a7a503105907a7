package nftables

import (
	"fmt"
	"strings"

	"github.com/anklume/anklume/compiler/tree"
)

// Reasons of the content guard (SPEC.md §7.7 step 2).
const (
	ReasonFlush       = "flush ruleset is not allowed"
	ReasonOutside     = "only comments may appear outside the managed section"
	ReasonOtherTables = "only table inet anklume may be defined"
)

// GuardError is a file the content guard refuses. Its message is
// `<path>:<line>: refusing to deploy: <reason>`.
type GuardError struct {
	Path   string
	Line   int
	Reason string
}

// Error returns the message of §7.7 step 2 (without `error: `).
func (e *GuardError) Error() string {
	return fmt.Sprintf("%s:%d: refusing to deploy: %s", e.Path, e.Line, e.Reason)
}

// Guard checks the content of the nftables file at path (used in the
// message) before nft ever sees it (§7.7 step 2). The file may define only
// table inet anklume, and only inside the managed block: outside it only
// comments and blank lines are accepted; `flush ruleset` is refused
// anywhere; inside the block every top-level statement must name table
// inet anklume (so `include`, `define` and statements on other tables are
// refused too). The first offending line, in file order, is reported.
//
// Text inside double quotes is never read as a statement, so a table
// comment such as "anklume infra=lab; flush ruleset" is accepted.
func Guard(path string, data []byte) error {
	text := strings.TrimPrefix(string(data), "\xef\xbb\xbf")
	g := guard{path: path}
	for i, line := range strings.Split(text, "\n") {
		if err := g.line(i+1, line); err != nil {
			return err
		}
	}
	return nil
}

// guard is the state of Guard while it reads the file line by line.
type guard struct {
	path    string
	inBlock bool
	// depth is the brace depth inside the block; statements are checked
	// at depth 0 only (inside table inet anklume { … } everything belongs
	// to that table).
	depth int
}

// line checks one line (without its `\n`).
func (g *guard) line(n int, line string) error {
	trimmed := strings.TrimRight(line, " \t\r")
	switch {
	case !g.inBlock && trimmed == tree.Begin:
		g.inBlock, g.depth = true, 0
		return nil
	case g.inBlock && trimmed == tree.End:
		g.inBlock = false
		return nil
	}
	toks := tokens(line)
	if len(toks) == 0 {
		return nil
	}
	fail := func(reason string) error { return &GuardError{Path: g.path, Line: n, Reason: reason} }
	for i := 0; i+1 < len(toks); i++ {
		if toks[i] == "flush" && toks[i+1] == "ruleset" {
			return fail(ReasonFlush)
		}
	}
	if !g.inBlock {
		return fail(ReasonOutside)
	}
	var stmt []string
	check := func() error {
		if len(stmt) > 0 && g.depth == 0 && !namesOwnTable(stmt) {
			return fail(ReasonOtherTables)
		}
		stmt = stmt[:0]
		return nil
	}
	for _, t := range toks {
		switch t {
		case "{":
			if err := check(); err != nil {
				return err
			}
			g.depth++
		case "}":
			stmt = stmt[:0]
			if g.depth > 0 {
				g.depth--
			}
		case ";":
			if err := check(); err != nil {
				return err
			}
		default:
			if g.depth == 0 {
				stmt = append(stmt, t)
			}
		}
	}
	return check()
}

// tokens splits the code of one line into words, quoted strings (kept as
// the single token `""`, their content dropped), `{`, `}` and `;`; a `#`
// outside quotes starts a comment that runs to the end of the line.
func tokens(line string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch c {
		case '#':
			flush()
			return out
		case '"':
			flush()
			j := strings.IndexByte(line[i+1:], '"')
			if j < 0 {
				return append(out, `""`)
			}
			out = append(out, `""`)
			i += j + 1
		case ' ', '\t', '\r', '\v', '\f':
			flush()
		case '{', '}', ';':
			flush()
			out = append(out, string(c))
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

// isVerb reports whether w may start a top-level nft command.
func isVerb(w string) bool {
	switch w {
	case "add", "create", "delete", "destroy", "flush", "insert", "replace", "reset", "list":
		return true
	}
	return false
}

// isObject reports whether w is an nft object that lives in a table; it
// is followed by the table's family (optional, ip by default) and name.
func isObject(w string) bool {
	switch w {
	case "table", "chain", "rule", "set", "map", "element", "flowtable", "counter", "quota",
		"limit", "secmark", "synproxy", "ct":
		return true
	}
	return false
}

// isFamily reports whether w is an nft address family.
func isFamily(w string) bool {
	switch w {
	case "ip", "ip6", "inet", "arp", "bridge", "netdev":
		return true
	}
	return false
}

// namesOwnTable reports whether the top-level statement stmt is a command
// on table inet anklume, such as `table inet anklume`, `delete table inet
// anklume` or `add rule inet anklume isolation …`.
func namesOwnTable(stmt []string) bool {
	i := 0
	if isVerb(stmt[i]) {
		i++
	}
	if i >= len(stmt) || !isObject(stmt[i]) {
		return false
	}
	if stmt[i] == "ct" { // ct helper|timeout|expectation <family> <table> …
		i++
	}
	i++
	family := "ip" // nft's default family
	if i < len(stmt) && isFamily(stmt[i]) {
		family = stmt[i]
		i++
	}
	return i < len(stmt) && family == "inet" && stmt[i] == "anklume"
}
