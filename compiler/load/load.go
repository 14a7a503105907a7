package load

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/anklume/anklume/compiler/diag"
)

// MaxFileSize is the largest PSOT file accepted (SPEC.md §2.2 item 6).
const MaxFileSize = 16 << 20

// MaxNodes caps the number of nodes a document may expand to through
// aliases (SPEC.md §2.2 item 3).
const MaxNodes = 100000

// SyntaxPath is the diagnostic path of parse problems.
const SyntaxPath = "(syntax)"

// The regular expressions of this package are compiled on first use,
// not at package init, which every run of anklume pays (`anklume
// version` included) whether or not it reaches them.
var lineRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

// Parse decodes one YAML file into a Node tree. file is the name used in
// diagnostics and fileIndex its rank in load order. On any S0 problem it
// returns a nil node and the diagnostics.
func Parse(data []byte, file string, fileIndex int) (*Node, diag.List) {
	var dl diag.List
	at := func(line, col int) diag.Pos {
		return diag.Pos{File: file, FileIndex: fileIndex, Line: line, Col: col}
	}
	if len(data) > MaxFileSize {
		dl.Errorf(at(1, 1), SyntaxPath, "", "file is larger than 16 MiB")
		return nil, dl
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			// An empty file is a null document.
			return &Node{Kind: Null, Pos: at(1, 1)}, nil
		}
		dl.Add(syntaxDiag(data, err, at))
		return nil, dl
	}
	var second yaml.Node
	if err := dec.Decode(&second); err == nil {
		line, col := second.Line, second.Column
		if len(second.Content) > 0 {
			line, col = second.Content[0].Line, second.Content[0].Column
		}
		dl.Errorf(at(line, col), SyntaxPath, "", "only one YAML document is allowed")
		return nil, dl
	} else if !errors.Is(err, io.EOF) {
		dl.Add(syntaxDiag(data, err, at))
		return nil, dl
	}
	c := converter{file: file, fileIndex: fileIndex}
	var root *Node
	if len(doc.Content) == 0 {
		root = &Node{Kind: Null, Pos: at(1, 1)}
	} else {
		root = c.convert(doc.Content[0], nil)
	}
	if c.bomb {
		dl = dl[:0]
		dl.Errorf(c.bombPos, SyntaxPath, "", "document expands to more than %d nodes through aliases", MaxNodes)
		return nil, dl
	}
	dl.Add(c.diags...)
	if dl.HasErrors() {
		return nil, dl
	}
	return root, dl
}

// syntaxDiag turns a decoding error into a diagnostic at the problem's
// real line and column. yaml.v3 gives a line for most errors but none for
// the reader's (control characters, invalid UTF-8) or an unknown alias;
// those are found again in data: the first character the YAML reader
// refuses, or the first use of the alias.
func syntaxDiag(data []byte, err error, at func(int, int) diag.Pos) diag.Diagnostic {
	msg := err.Error()
	line, col := 1, 1
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if m := lineRe().FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		return diag.Diagnostic{Severity: diag.Error, Pos: at(line, col), Path: SyntaxPath, Msg: m[2]}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if off, what, ok := badChar(data); ok {
		line, col = lineCol(data, off)
		msg = what
	} else if m := aliasRe().FindStringSubmatch(msg); m != nil {
		if off := aliasUse(data, m[1]); off >= 0 {
			line, col = lineCol(data, off)
		}
	}
	return diag.Diagnostic{Severity: diag.Error, Pos: at(line, col), Path: SyntaxPath, Msg: msg}
}

// aliasRe matches yaml.v3's message for an alias with no anchor.
var aliasRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^unknown anchor '(.*)' referenced$`) })

// badChar returns the offset of the first byte the YAML reader refuses
// (invalid UTF-8, or a character outside the printable set of YAML 1.2:
// tab, LF, CR, U+0020–U+007E, U+0085, U+00A0–U+D7FF, U+E000–U+FFFD,
// U+10000 and above) and a message; ok is false when there is none. A
// UTF-16 or UTF-32 stream (starting with its byte order mark) is left to
// the decoder.
func badChar(data []byte) (off int, msg string, ok bool) {
	if bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe}) || bytes.HasPrefix(data, []byte{0, 0}) {
		return 0, "", false
	}
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return i, fmt.Sprintf("invalid UTF-8 (byte 0x%02x)", data[i]), true
		case r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0x7e) || r == 0x85,
			r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd, r >= 0x10000:
		default:
			return i, fmt.Sprintf("control character %U is not allowed", r), true
		}
		i += size
	}
	return 0, "", false
}

// aliasUse returns the offset of the first `*name` in data that stands as
// an alias (after a blank, a flow indicator or `:` and the start of a line,
// before a blank, a flow indicator or the end), or -1.
func aliasUse(data []byte, name string) int {
	re := regexp.MustCompile(`(?m)(?:^|[\s\[{,:-])(\*` + regexp.QuoteMeta(name) + `)(?:$|[\s,\]}])`)
	if m := re.FindSubmatchIndex(data); m != nil {
		return m[2]
	}
	return -1
}

// lineCol returns the 1-based line and column (in characters) of the byte
// offset off in data.
func lineCol(data []byte, off int) (line, col int) {
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	return line, 1 + utf8.RuneCount(data[start:off])
}

type converter struct {
	file      string
	fileIndex int
	count     int
	bomb      bool
	bombPos   diag.Pos
	diags     diag.List
}

func (c *converter) pos(n *yaml.Node) diag.Pos {
	return diag.Pos{File: c.file, FileIndex: c.fileIndex, Line: n.Line, Col: n.Column}
}

// convert turns a yaml.Node into a Node. override, when set, is the
// position of the alias through which n is reached.
func (c *converter) convert(n *yaml.Node, override *diag.Pos) *Node {
	if c.bomb {
		return &Node{Kind: Null}
	}
	c.count++
	p := c.pos(n)
	if override != nil {
		p = *override
	}
	if c.count > MaxNodes {
		c.bomb = true
		c.bombPos = p
		return &Node{Kind: Null, Pos: p}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return &Node{Kind: Null, Pos: p}
		}
		return c.convert(n.Content[0], override)
	case yaml.AliasNode:
		ap := p
		return c.convert(n.Alias, &ap)
	case yaml.ScalarNode:
		c.checkTag(n, p)
		tag := n.ShortTag()
		switch tag {
		case TagNull:
			return &Node{Kind: Null, Tag: TagNull, Value: n.Value, Pos: p}
		case TagInt, TagFloat, TagBool, TagStr:
		default:
			// Timestamps, binary and custom tags are read as strings.
			tag = TagStr
		}
		return &Node{Kind: Scalar, Tag: tag, Value: n.Value, Pos: p}
	case yaml.SequenceNode:
		c.checkTag(n, p)
		out := &Node{Kind: Seq, Pos: p, Items: make([]*Node, 0, len(n.Content))}
		for _, it := range n.Content {
			out.Items = append(out.Items, c.convert(it, override))
		}
		return out
	case yaml.MappingNode:
		c.checkTag(n, p)
		return c.mapping(n, p, override)
	}
	return &Node{Kind: Null, Pos: p}
}

// checkTag rejects an explicit tag that changes how a node is read. YAML
// 1.1 (PyYAML, Ansible) and this YAML 1.2 reader disagree on what
// `!!bool yes` or `!!int 0o17` mean, and custom tags have no meaning
// here, so the rule is: an explicit tag is accepted only when it is !!str
// (which forces a string, as in both versions) or when it is the tag the
// value has without it (`!!bool true`, `!!int 3`, `!!map {...}`); any
// other explicit tag is an error at the node, never a silent default.
func (c *converter) checkTag(n *yaml.Node, p diag.Pos) {
	if n.Style&yaml.TaggedStyle == 0 || n.Tag == "" || n.Tag == "!" {
		return
	}
	tag := n.ShortTag()
	implicit := ""
	switch n.Kind {
	case yaml.ScalarNode:
		if tag == TagStr {
			return
		}
		plain := yaml.Node{Kind: yaml.ScalarNode, Value: n.Value}
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			implicit = plain.ShortTag()
		} else {
			implicit = TagStr
		}
	case yaml.SequenceNode:
		implicit = "!!seq"
	case yaml.MappingNode:
		implicit = "!!map"
	}
	if tag == implicit {
		return
	}
	hint := "remove the tag; only !!str, or a tag the value already has, is accepted"
	if tag == TagBool {
		hint = "write true or false without a tag (YAML 1.1 and 1.2 read yes, no, on and off differently)"
	}
	c.diags.Errorf(p, SyntaxPath, hint, "explicit tag %s cannot be applied to %s", n.Tag, describeYAML(n))
}

// describeYAML names a node in a tag error: the scalar text, or the kind
// of a collection.
func describeYAML(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "the value " + quote(n.Value)
}

func (c *converter) mapping(n *yaml.Node, p diag.Pos, override *diag.Pos) *Node {
	out := &Node{Kind: Map, Pos: p}
	index := map[string]int{}
	var merges []*Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := c.pos(k)
		if override != nil {
			kp = *override
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, c.mergeSources(v, override)...)
			continue
		}
		kn := k
		if kn.Kind == yaml.AliasNode {
			kn = kn.Alias
		}
		if kn.Kind != yaml.ScalarNode {
			c.diags.Errorf(kp, SyntaxPath, "", "mapping keys must be scalars")
			continue
		}
		key := kn.Value
		if _, dup := index[key]; dup {
			c.diags.Errorf(kp, SyntaxPath, "", "duplicate key %s", quote(key))
			continue
		}
		index[key] = len(out.Entries)
		out.Entries = append(out.Entries, Entry{Key: key, KeyPos: kp, Value: c.convert(v, override)})
	}
	// Merged maps: explicit keys win, then the first merged map that has
	// the key (SPEC.md §2.2 item 3).
	for _, m := range merges {
		if m.Kind != Map {
			continue
		}
		for _, e := range m.Entries {
			if _, ok := index[e.Key]; ok {
				continue
			}
			index[e.Key] = len(out.Entries)
			out.Entries = append(out.Entries, e)
		}
	}
	return out
}

// mergeSources returns the maps named by the value of a `<<` key.
func (c *converter) mergeSources(v *yaml.Node, override *diag.Pos) []*Node {
	var out []*Node
	add := func(n *yaml.Node) {
		cn := c.convert(n, override)
		if cn.Kind != Map {
			c.diags.Errorf(cn.Pos, SyntaxPath, "", "merge key value must be a mapping or a list of mappings")
			return
		}
		out = append(out, cn)
	}
	if v.Kind == yaml.SequenceNode {
		for _, it := range v.Content {
			add(it)
		}
	} else {
		add(v)
	}
	return out
}

// String renders a node for debugging.
func (n *Node) String() string {
	if n == nil {
		return "<nil>"
	}
	switch n.Kind {
	case Map:
		return fmt.Sprintf("map(%d)@%s", len(n.Entries), n.Pos)
	case Seq:
		return fmt.Sprintf("seq(%d)@%s", len(n.Items), n.Pos)
	case Null:
		return "null@" + n.Pos.String()
	}
	return fmt.Sprintf("%s %q@%s", n.Tag, n.Value, n.Pos)
}
