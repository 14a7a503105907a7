// Package yamlw is the small, exact YAML emitter of SPEC.md §6.4. Callers
// build an ordered document from Map, List, Str, Int, Bool and Null values
// and Marshal renders it in block style with 2-space indentation, never a
// block scalar and never a folded line. Every string, key or value, is
// written in exactly one of three styles (double-quoted, single-quoted or
// plain) chosen by Quote, so that generated files are byte-for-byte stable
// and read back identically by PyYAML and Go readers.
package yamlw

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Value is one node of a document: Map, List, Str, Int, Bool or Null. A nil
// Value is written as a null.
type Value interface {
	isValue()
}

// KV is one entry of a Map.
type KV struct {
	Key   string
	Value Value
}

// Map is a mapping whose keys are written in slice order.
type Map []KV

// List is a sequence.
type List []Value

// Str is a string scalar, quoted by the rules of §6.4.
type Str string

// Int is an integer scalar, written in decimal.
type Int int64

// Bool is a boolean scalar, written true or false.
type Bool bool

// Null is the null scalar, written as nothing (`key:`).
type Null struct{}

func (Map) isValue()  {}
func (List) isValue() {}
func (Str) isValue()  {}
func (Int) isValue()  {}
func (Bool) isValue() {}
func (Null) isValue() {}

// Set returns m with key set to v: an existing entry keeps its place, a new
// one is appended.
func (m Map) Set(key string, v Value) Map {
	for i := range m {
		if m[i].Key == key {
			m[i].Value = v
			return m
		}
	}
	return append(m, KV{Key: key, Value: v})
}

// Marshal renders v as a YAML document body in block style. The result
// ends with a newline and carries no `---` line. A top-level null is
// written as an empty document.
func Marshal(v Value) []byte { return writer{}.marshal(v) }

// MarshalAnsible is Marshal for a file that Ansible loads as variables
// (inventory, group_vars, host_vars, incus/desired-state.yml): every
// string value that holds a "{" is written with the !unsafe tag, which
// ansible-core 2.14 and later honour by never templating the string. A
// string without "{" cannot start a Jinja expression, statement or
// comment ("{{", "{%", "{#"), and no concatenation of such strings can
// form one, so strings from infra.yml or from Incus are never evaluated
// on the controller, whatever they hold, while the common case stays
// plain. Keys are written as by Marshal: Ansible does not template
// mapping keys.
func MarshalAnsible(v Value) []byte { return writer{unsafe: true}.marshal(v) }

// writer carries the one option of a Marshal call.
type writer struct {
	// unsafe tags string values holding "{" with !unsafe.
	unsafe bool
	// quoted memoises Quote over one marshal: keys and short values repeat
	// across the machines of a large tree, and choosing a style costs a
	// regular expression match.
	quoted map[string]string
}

// maxMemo is the longest string whose quoted form is memoised.
const maxMemo = 64

// quote is Quote, memoised for short strings.
func (w writer) quote(s string) string {
	if len(s) > maxMemo || w.quoted == nil {
		return Quote(s)
	}
	q, ok := w.quoted[s]
	if !ok {
		q = Quote(s)
		w.quoted[s] = q
	}
	return q
}

// buf is the output of a marshal: a byte slice that doubles when it
// grows. strings.Builder grows a large document by a quarter at a time,
// and the copies and fresh pages of those growths cost a third of the
// rendering of a 4 MB desired state; buf's bytes are also returned as they
// are, without the final copy a Builder's string would need.
type buf struct{ b []byte }

// grow makes room for n more bytes.
func (b *buf) grow(n int) {
	if cap(b.b)-len(b.b) >= n {
		return
	}
	nb := make([]byte, len(b.b), max(2*cap(b.b), len(b.b)+n, 512))
	copy(nb, b.b)
	b.b = nb
}

// str appends s.
func (b *buf) str(s string) {
	b.grow(len(s))
	b.b = append(b.b, s...)
}

// byte1 appends c.
func (b *buf) byte1(c byte) {
	b.grow(1)
	b.b = append(b.b, c)
}

// marshal renders v (see Marshal).
func (w writer) marshal(v Value) []byte {
	w.quoted = map[string]string{}
	var b buf
	switch x := v.(type) {
	case Map:
		if len(x) == 0 {
			b.str("{}\n")
		} else {
			w.writeMap(&b, x, 0, false)
		}
	case List:
		if len(x) == 0 {
			b.str("[]\n")
		} else {
			w.writeList(&b, x, 0, false)
		}
	case nil, Null:
		// nothing
	default:
		b.str(w.scalar(v))
		b.byte1('\n')
	}
	return b.b
}

// spaces is sliced for indentation without allocating.
const spaces = "                                                                "

// indent writes n spaces.
func indent(b *buf, n int) {
	for n > len(spaces) {
		b.str(spaces)
		n -= len(spaces)
	}
	b.str(spaces[:n])
}

// writeMap writes the non-empty map m, every line indented by ind spaces
// except the first when skip is set (it follows a `- ` already written).
func (w writer) writeMap(b *buf, m Map, ind int, skip bool) {
	for i, kv := range m {
		if i > 0 || !skip {
			indent(b, ind)
		}
		k := w.quote(kv.Key)
		if len(k) > maxSimpleKey {
			// An explicit key: "? key" then ": value" on the next line.
			b.str("? ")
			b.str(k)
			b.byte1('\n')
			indent(b, ind)
		} else {
			b.str(k)
		}
		b.byte1(':')
		w.writeValue(b, kv.Value, ind+2)
	}
}

// maxSimpleKey is the longest key, in bytes as written, that is written as
// a simple `key:`. PyYAML (YAML 1.1, what Ansible reads with) and libyaml
// refuse a simple key longer than 1024 characters; a longer one is written
// as an explicit `? key` entry, which every YAML reader accepts.
const maxSimpleKey = 1000

// writeList writes the non-empty list l, every item line indented by ind
// except the first when skip is set. A non-empty collection item starts
// on the `- ` line (compact form), written in place rather than rendered
// apart and copied, so that nesting costs no extra copy.
func (w writer) writeList(b *buf, l List, ind int, skip bool) {
	for i, item := range l {
		if i > 0 || !skip {
			indent(b, ind)
		}
		switch x := item.(type) {
		case Map:
			if len(x) > 0 {
				b.str("- ")
				w.writeMap(b, x, ind+2, true)
				continue
			}
		case List:
			if len(x) > 0 {
				b.str("- ")
				w.writeList(b, x, ind+2, true)
				continue
			}
		}
		b.byte1('-')
		w.writeValue(b, item, ind+2)
	}
}

// writeValue writes what follows a `key:` or a `-`: nothing for a null, a
// space and a scalar or an empty collection, or a newline and a nested
// block indented by ind.
func (w writer) writeValue(b *buf, v Value, ind int) {
	switch x := v.(type) {
	case nil, Null:
		b.byte1('\n')
	case Map:
		if len(x) == 0 {
			b.str(" {}\n")
			return
		}
		b.byte1('\n')
		w.writeMap(b, x, ind, false)
	case List:
		if len(x) == 0 {
			b.str(" []\n")
			return
		}
		b.byte1('\n')
		w.writeList(b, x, ind, false)
	default:
		b.byte1(' ')
		sc := w.scalar(v)
		if x, ok := v.(Str); ok {
			if col := lineLen(b); col+len(sc) > MaxLine {
				sc = w.fold(string(x), col, ind)
			}
		}
		b.str(sc)
		b.byte1('\n')
	}
}

// MaxLine is the longest line, in bytes, that a string value makes: the
// limit of ansible-lint's production profile (yamllint line-length 160).
// A longer string is written double-quoted over several lines, each but
// the last ending with an escaped line break (`\` at the end of the line,
// which adds nothing to the value); see fold.
const MaxLine = 160

// lineLen returns the length of the last line of b.
func lineLen(b *buf) int {
	return len(b.b) - bytes.LastIndexByte(b.b, '\n') - 1
}

// fold writes s double-quoted from column col, breaking it into lines of
// at most MaxLine bytes whose continuation lines are indented by ind. A
// break is an escaped line break, and a space next to a break is written
// \x20, so that no reader folds or strips it: PyYAML, libyaml and yaml.v3
// read back exactly s. The !unsafe tag of MarshalAnsible is kept.
func (w writer) fold(s string, col, ind int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	var b buf
	if w.unsafe && strings.IndexByte(s, '{') >= 0 {
		b.str("!unsafe ")
		col += len("!unsafe ")
	}
	b.byte1('"')
	col++
	// room leaves 1 byte for the `\` and 3 for a space that becomes \x20.
	room := func(c int) int { return max(MaxLine-c-4, 20) }
	toks := make([]string, 0, len(s))
	for _, r := range s {
		toks = append(toks, escapeRune(r))
	}
	// First pass: where the lines break (before token i).
	brk := make([]bool, len(toks))
	left := room(col)
	for i, t := range toks {
		if len(t) > left && i > 0 {
			brk[i] = true
			left = room(ind)
		}
		left -= len(t)
	}
	for i, t := range toks {
		if brk[i] {
			b.str("\\\n")
			indent(&b, ind)
		}
		if t == " " && (brk[i] || i+1 < len(toks) && brk[i+1]) {
			t = `\x20`
		}
		b.str(t)
	}
	b.byte1('"')
	return string(b.b)
}

// scalar renders a non-collection, non-null value.
func (w writer) scalar(v Value) string {
	switch x := v.(type) {
	case Str:
		if w.unsafe && strings.IndexByte(string(x), '{') >= 0 {
			return "!unsafe " + w.quote(string(x))
		}
		return w.quote(string(x))
	case Int:
		return strconv.FormatInt(int64(x), 10)
	case Bool:
		if x {
			return "true"
		}
		return "false"
	}
	return ""
}

// Style is the way Quote writes a string.
type Style int

const (
	// Plain is the unquoted style.
	Plain Style = iota
	// SingleQuoted is '…' with ' doubled.
	SingleQuoted
	// DoubleQuoted is "…" with the escapes of §6.4 rule 1.
	DoubleQuoted
)

// resolverRe matches every string a YAML 1.1 or 1.2 core resolver reads as
// something other than a string (§6.4 rule 2, first item). It is compiled
// on first use, not at start: most commands never write YAML.
var resolverRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(resolverPattern) })

// resolverPattern is resolverRe's expression.
var resolverPattern = `^(?:` + strings.Join([]string{
	// null
	`~|null|Null|NULL|`,
	// bool
	`y|Y|n|N|yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF`,
	// int
	`[-+]?0b[0-1_]+`,
	`[-+]?0[0-7_]+`,
	`[-+]?(?:0|[1-9][0-9_]*)`,
	`[-+]?0x[0-9a-fA-F_]+`,
	`[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+`,
	`[-+]?[0-9]+`,
	`0o[0-7]+`,
	`0x[0-9a-fA-F]+`,
	// float
	`[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?`,
	`\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?`,
	`[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*`,
	`[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?`,
	`[-+]?\.(?:inf|Inf|INF)`,
	`\.(?:nan|NaN|NAN)`,
	// timestamp
	`[0-9]{4}-[0-9]{2}-[0-9]{2}`,
	`[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?`,
	// merge, value
	`<<|=`,
}, "|") + `)$`

// resolverBytes are the bytes a resolverRe match that starts with a digit
// or one of `-+.~<=` can hold.
const resolverBytes = "0123456789_.:+-eExXoObBabcdefABCDEFTtZ \tinIN~<="

// mayResolve is a fast pre-check for resolverRe on a non-empty s: only a
// string that starts with a digit or one of `-+.~<=` can match, or, among
// those that start with a letter, a keyword of at most 5 bytes (null,
// booleans); see resolverBytes for the rest. Most keys and values of generated files start with another
// letter, and skip the regular expression.
func mayResolve(s string) bool {
	c := s[0]
	switch {
	case c >= '0' && c <= '9', strings.IndexByte("-+.~<=", c) >= 0:
		// A match holds at most one '.' and only these bytes, so an
		// address such as 10.110.0.1 or a size such as 512MiB cannot.
		if strings.Count(s, ".") > 1 {
			return false
		}
		for i := 0; i < len(s); i++ {
			if strings.IndexByte(resolverBytes, s[i]) < 0 {
				return false
			}
		}
		return true
	case strings.IndexByte("nNyYtTfFoO", c) >= 0:
		return len(s) <= 5
	}
	return false
}

// indicators are the first characters that force single quotes.
const indicators = "-?:,[]{}#&*!|>'\"%@`"

// isControl reports whether r must be escaped: a Unicode Cc character, or
// one outside the printable set of YAML 1.1 that PyYAML enforces on the
// raw stream (U+FEFF, U+FFFE and U+FFFF; surrogates never reach here as
// valid UTF-8). A string holding one is written double-quoted with the
// character escaped, so that PyYAML and Ansible can read every file.
func isControl(r rune) bool {
	return r <= 0x1f || (r >= 0x7f && r <= 0x9f) || r == 0xfeff || r == 0xfffe || r == 0xffff
}

// StyleOf returns the style §6.4 prescribes for s. s is expected to be
// valid UTF-8; Quote replaces invalid bytes with U+FFFD before choosing.
func StyleOf(s string) Style {
	for _, r := range s {
		if isControl(r) || r == '\u2028' || r == '\u2029' {
			return DoubleQuoted
		}
	}
	switch {
	case s == "", mayResolve(s) && resolverRe().MatchString(s),
		strings.HasPrefix(s, " "), strings.HasSuffix(s, " "),
		strings.Contains(s, ": "), strings.Contains(s, " #"), strings.HasSuffix(s, ":"),
		strings.ContainsRune(indicators, rune(s[0])):
		return SingleQuoted
	}
	return Plain
}

// Quote writes s as a YAML scalar in the style of §6.4. Invalid UTF-8
// bytes, which no YAML reader accepts, are replaced with U+FFFD.
func Quote(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	switch StyleOf(s) {
	case DoubleQuoted:
		return doubleQuote(s)
	case SingleQuoted:
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return s
}

// doubleQuote applies the escapes of §6.4 rule 1.
func doubleQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		b.WriteString(escapeRune(r))
	}
	b.WriteByte('"')
	return b.String()
}

// escapeRune returns r as written inside double quotes (§6.4 rule 1).
func escapeRune(r rune) string {
	const hex = "0123456789abcdef"
	switch r {
	case '\\':
		return `\\`
	case '"':
		return `\"`
	case '\t':
		return `\t`
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\u0085':
		return `\N`
	case '\u2028':
		return `\L`
	case '\u2029':
		return `\P`
	}
	switch {
	case isControl(r) && r > 0xff:
		return `\u` + string([]byte{hex[(r>>12)&0xf], hex[(r>>8)&0xf], hex[(r>>4)&0xf], hex[r&0xf]})
	case isControl(r):
		return `\x` + string([]byte{hex[r>>4], hex[r&0xf]})
	}
	return string(r)
}
