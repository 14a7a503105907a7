// Package load reads the PSOT (infra.yml or an infra/ directory) into a
// tree of positioned nodes. It applies YAML 1.2 core-schema typing, expands
// aliases and merge keys, and reports syntax problems, duplicate keys, extra
// documents, oversized files and alias bombs as diagnostics (SPEC.md §2.2,
// rule N18). It knows nothing of the infra.yml keys.
package load

import (
	"strconv"
	"strings"

	"github.com/anklume/anklume/compiler/diag"
)

// Kind is the shape of a node.
type Kind int

const (
	// Null is an explicit or implicit null.
	Null Kind = iota
	// Scalar is a string, integer, float or boolean.
	Scalar
	// Map is a mapping, with its keys in document order.
	Map
	// Seq is a sequence.
	Seq
)

// Scalar tags, as resolved by the YAML 1.2 core schema.
const (
	TagStr   = "!!str"
	TagInt   = "!!int"
	TagFloat = "!!float"
	TagBool  = "!!bool"
	TagNull  = "!!null"
)

// Node is one YAML node with its position. Aliases are expanded: an
// expanded node carries the position of the alias that produced it.
type Node struct {
	Kind    Kind
	Tag     string // for scalars: TagStr, TagInt, TagFloat or TagBool
	Value   string // scalar text as written
	Pos     diag.Pos
	Entries []Entry // Map: keys in order, merge keys already applied
	Items   []*Node // Seq
}

// Entry is one key of a mapping.
type Entry struct {
	Key    string
	KeyPos diag.Pos
	Value  *Node
}

// Get returns the entry with key k, or nil.
func (n *Node) Get(k string) *Entry {
	if n == nil || n.Kind != Map {
		return nil
	}
	for i := range n.Entries {
		if n.Entries[i].Key == k {
			return &n.Entries[i]
		}
	}
	return nil
}

// Val returns the value of key k, or nil when the key is absent. An
// explicit null is returned as a Null node.
func (n *Node) Val(k string) *Node {
	if e := n.Get(k); e != nil {
		return e.Value
	}
	return nil
}

// IsNull reports whether n is absent or null.
func (n *Node) IsNull() bool { return n == nil || n.Kind == Null }

// IsStr reports whether n is a string scalar.
func (n *Node) IsStr() bool { return n != nil && n.Kind == Scalar && n.Tag == TagStr }

// IsBool reports whether n is a boolean scalar.
func (n *Node) IsBool() bool { return n != nil && n.Kind == Scalar && n.Tag == TagBool }

// IsInt reports whether n is an integer scalar (any spelling).
func (n *Node) IsInt() bool { return n != nil && n.Kind == Scalar && n.Tag == TagInt }

// IsDecimal reports whether an integer scalar is spelled in plain decimal,
// ^-?(0|[1-9][0-9]*)$ (SPEC.md §2.2 item 5).
func (n *Node) IsDecimal() bool { return n.IsInt() && isDecimal(n.Value) }

func isDecimal(v string) bool {
	v = strings.TrimPrefix(v, "-")
	if v == "" || (v[0] == '0' && len(v) > 1) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// Bool returns the value of a boolean scalar.
func (n *Node) Bool() bool {
	return n.IsBool() && (n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
}

// Int returns the value of a plain-decimal integer scalar.
func (n *Node) Int() (int64, bool) {
	if !n.IsDecimal() {
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	return v, err == nil
}

// KindName describes n for "got <kind>" messages (SPEC.md §3.4):
// string "v", integer v, float v, boolean v, null, mapping or list.
func (n *Node) KindName() string {
	if n == nil || n.Kind == Null {
		return "null"
	}
	switch n.Kind {
	case Map:
		return "mapping"
	case Seq:
		return "list"
	}
	switch n.Tag {
	case TagInt:
		return "integer " + n.Value
	case TagFloat:
		return "float " + n.Value
	case TagBool:
		return "boolean " + n.Value
	}
	return "string " + quote(n.Value)
}

// quote writes s between double quotes as the messages of SPEC.md do: a
// literal double quote stays as it is unless s holds control characters,
// which are escaped Go-style.
func quote(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return strconv.Quote(s)
		}
	}
	return `"` + s + `"`
}

// Quote is the quoting used in messages for user-supplied values.
func Quote(s string) string { return quote(s) }

// Keys returns the keys of a mapping in order.
func (n *Node) Keys() []string {
	if n == nil || n.Kind != Map {
		return nil
	}
	out := make([]string, len(n.Entries))
	for i, e := range n.Entries {
		out[i] = e.Key
	}
	return out
}

// NodeSet is a set of nodes, used to mark the nodes that carry an S1 error:
// S2 skips them and everything under them (SPEC.md §3.1).
type NodeSet map[*Node]bool

// Has reports whether n is in the set.
func (s NodeSet) Has(n *Node) bool { return s[n] }
