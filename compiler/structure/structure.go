// Package structure runs stage S1: the embedded JSON Schema plus the
// stricter typing of SPEC.md §2.2, with the messages of §3.4 and the
// structural messages of §3.5.
//
// Check turns the *load.Node tree into plain JSON values, remembering which
// node sits at each instance location, validates them with
// santhosh-tekuri/jsonschema/v6, and translates every leaf error back into
// one positioned diagnostic.
package structure

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/load"
	"github.com/anklume/anklume/schema"
)

// Hints of SPEC.md §2.2, §3.4 and §3.5.
const (
	hintDecimal     = `write it in plain decimal: no leading zero, "+", "0x" or "0o"`
	hintYAML12      = `YAML 1.2 reads yes/no/on/off as strings; write true or false`
	hintXName       = `an x- key is ignored only in a mapping with fixed keys; move anchors under a top-level key such as x-defaults`
	hintProfile     = `anklume manages each project's default profile; pick another name`
	hintAnsibleName = `Ansible reads all, ungrouped and localhost as its own groups and host; pick another name`
	hintUpgrade     = `upgrade anklume`
	msgDecimal      = `must be a decimal integer`
	msgNameRules    = `(lowercase letters, digits and "-"; must start and end with a letter or digit; at most 63 characters)`
)

// The embedded schema is parsed (schemaDoc) and compiled (compiled) once
// per process, each on first use (never at start: `anklume version` pays
// for neither), and immutable afterwards. The parsed document is needed by
// every Check (conversion reads it); the compiled schema only when an
// instance is actually validated, which a Memo hit spares. The embedded
// schema is trusted: it is not validated against the 2020-12 metaschema at
// run time, which spares compiling the metaschemas (about 10 ms);
// schema/schema_test.go compiles it with that validation on.
var (
	schemaDoc = sync.OnceValues(parseSchema)
	compiled  = sync.OnceValues(compileSchema)
)

// parseSchema reads the embedded schema as JSON values (numbers as
// json.Number, as the validator reads them).
func parseSchema() (any, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema.JSON()))
	if err != nil {
		return nil, fmt.Errorf("reading the embedded schema: %w", err)
	}
	return doc, nil
}

// compileSchema compiles the embedded schema.
func compileSchema() (*jsonschema.Schema, error) {
	doc, err := schemaDoc()
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.TrustSchemas()
	if err := c.AddResource(schema.ID, doc); err != nil {
		return nil, fmt.Errorf("adding the embedded schema: %w", err)
	}
	sch, err := c.Compile(schema.ID)
	if err != nil {
		return nil, fmt.Errorf("compiling the embedded schema: %w", err)
	}
	return sch, nil
}

// Memo remembers, across runs, the documents stage S1 accepted, so that a
// PSOT already validated is neither converted nor validated again (the
// parse and compile of the schema alone cost about 11 ms of CPU per run).
// Keys are Key values of the document tree; an implementation mixes in
// the identity of the running executable, which carries the schema, the
// conversion and the validator (see internal/schemamemo). A Memo that
// answers wrongly "accepted" would let an invalid PSOT through stage S1:
// an implementation must only answer true for a key it was given to
// Accept by the same executable.
type Memo interface {
	// Accepted reports whether the instance of key was accepted before.
	Accepted(key [32]byte) bool
	// Accept records that the instance of key was accepted. A memo that
	// cannot record it says nothing: the next run validates again.
	Accept(key [32]byte)
}

// Check runs stage S1 on root and returns its diagnostics, sorted, and the
// set of nodes that carry an error (S2 skips them and everything under
// them). A missing required key marks no node: the rest of the parent is
// still checked by S2.
func Check(root *load.Node) (diag.List, load.NodeSet) {
	return CheckMemo(root, nil)
}

// CheckMemo is Check with a memo of the accepted documents (nil: none).
// Only a clean outcome is remembered: a document whose conversion
// reported nothing and which the schema accepted, for which Check returns
// no diagnostics and an empty set; so a hit returns exactly what a
// validation would. The outcome depends on the tree and not on its
// positions, which only appear in diagnostics. Any document with a
// problem is validated every time, and its diagnostics (positions
// included) computed afresh.
func CheckMemo(root *load.Node, memo Memo) (diag.List, load.NodeSet) {
	bad := load.NodeSet{}
	var key [32]byte
	remember := memo != nil && root != nil && root.Kind != load.Null
	if remember {
		key = Key(root)
		if memo.Accepted(key) {
			return nil, bad
		}
	}
	doc, err := schemaDoc()
	m, _ := doc.(map[string]any)
	if err == nil && m == nil {
		err = fmt.Errorf("the embedded schema is not an object")
	}
	if err != nil {
		var dl diag.List
		dl.Errorf(diag.Pos{}, "", "", "internal error: %v", err)
		return dl, bad
	}
	if root == nil {
		return nil, bad
	}
	sch, err := compiled()
	if err != nil {
		var dl diag.List
		dl.Errorf(diag.Pos{}, "", "", "internal error: %v", err)
		return dl, bad
	}
	res := map[string]*regexp.Regexp{}
	if root.Kind != load.Null {
		// First without recording locations, which only a diagnostic
		// needs: for a valid document that is the whole check (a third
		// of the conversion's time and most of its memory is the
		// locations). Anything to report sends the check down the full
		// way below, which reports it exactly as if this never ran.
		fast := &checker{doc: m, root: root, bad: load.NodeSet{}, res: res}
		inst := fast.convert(root, m, "", diag.Root, nil)
		if len(fast.dl) == 0 && len(fast.bad) == 0 && sch.Validate(inst) == nil {
			if remember {
				memo.Accept(key)
			}
			return nil, bad
		}
	}
	dl, ok := tracked(root, m, sch, bad, res)
	if ok && remember {
		memo.Accept(key)
	}
	return dl, bad
}

// tracked is stage S1 with every location recorded (checker.track), the
// way that turns every problem into a diagnostic; bad receives the nodes
// in error. ok reports a clean outcome: no diagnostic, nothing in bad.
func tracked(root *load.Node, m map[string]any, sch *jsonschema.Schema, bad load.NodeSet, res map[string]*regexp.Regexp) (dl diag.List, ok bool) {
	c := &checker{doc: m, root: root, bad: bad, locs: map[string]*loc{}, res: res, track: true}
	var inst any
	if root.Kind == load.Null {
		// An empty document reads as an empty mapping: it reports the
		// three missing keys of V1 rather than one type error.
		c.locs[""] = &loc{node: &load.Node{Kind: load.Map, Pos: root.Pos}, path: diag.Root}
		inst = map[string]any{}
	} else {
		inst = c.convert(root, m, "", diag.Root, nil)
	}
	if err := sch.Validate(inst); err != nil {
		var verr *jsonschema.ValidationError
		if !errors.As(err, &verr) {
			c.dl.Errorf(diag.Pos{}, "", "", "internal error: validating: %v", err)
		} else {
			c.translate(verr)
		}
	} else if len(c.dl) == 0 && len(bad) == 0 {
		ok = true
	}
	c.dl.Sort()
	return c.dl.Dedup(), ok
}

// Key returns a hash of the document tree root that tells apart any two
// trees stage S1 could tell apart: every node is framed by its kind, tag
// and length, mapping entries in document order, positions left out
// (they only ever appear in diagnostics, and only a diagnostic-free
// outcome is remembered).
func Key(root *load.Node) [32]byte {
	return sha256.Sum256(appendNode(nil, root))
}

// appendNode appends the framed encoding of n to b (see Key).
func appendNode(b []byte, n *load.Node) []byte {
	str := func(b []byte, s string) []byte {
		return append(binary.AppendUvarint(b, uint64(len(s))), s...)
	}
	if n == nil {
		return append(b, 0xff)
	}
	b = append(b, byte(n.Kind))
	b = str(b, n.Tag)
	b = str(b, n.Value)
	b = binary.AppendUvarint(b, uint64(len(n.Entries)))
	for i := range n.Entries {
		b = str(b, n.Entries[i].Key)
		b = appendNode(b, n.Entries[i].Value)
	}
	b = binary.AppendUvarint(b, uint64(len(n.Items)))
	for _, it := range n.Items {
		b = appendNode(b, it)
	}
	return b
}

// loc is what Check knows about one instance location.
type loc struct {
	node     *load.Node
	path     diag.Path
	keyPos   *diag.Pos // position of the key whose value node is, if any
	reported bool      // an error was already reported during conversion
	// schemaRef is the $defs reference of the schema the value was
	// checked against ("#/$defs/machines"), "" for inline schemas.
	schemaRef string
}

type checker struct {
	doc  map[string]any // the parsed schema
	root *load.Node
	dl   diag.List
	bad  load.NodeSet
	locs map[string]*loc // filled only when track is set
	res  map[string]*regexp.Regexp
	// track records the location of every value (locs, JSON pointers,
	// dotted paths), which turning a validation error into a diagnostic
	// needs. Without it, convert builds the same instance; its own
	// diagnostics then carry no path, and the caller redoes the check
	// with track set before reporting any.
	track bool
}

// pointer appends one JSON pointer token to p.
func pointer(p, tok string) string {
	tok = strings.ReplaceAll(tok, "~", "~0")
	tok = strings.ReplaceAll(tok, "/", "~1")
	return p + "/" + tok
}

// resolve follows $ref until the schema node has none.
func (c *checker) resolve(s map[string]any) map[string]any {
	s, _ = c.resolveRef(s)
	return s
}

// resolveRef follows $ref until the schema node has none, and also returns
// the last reference followed ("" when s had none).
func (c *checker) resolveRef(s map[string]any) (map[string]any, string) {
	last := ""
	for i := 0; s != nil && i < 32; i++ {
		if alt := nonNull(s); alt != nil {
			s = alt
			continue
		}
		ref, ok := s["$ref"].(string)
		if !ok {
			return s, last
		}
		last = ref
		s = c.lookup(ref)
	}
	return s, last
}

// nonNull returns B when s is {"anyOf": [{"type": "null"}, B]}, the form
// the schema gives optional keys so that an explicit null, which means
// "absent" (SPEC.md §2.2 item 7), is valid for any validator.
func nonNull(s map[string]any) map[string]any {
	alts, ok := s["anyOf"].([]any)
	if !ok || len(alts) != 2 {
		return nil
	}
	first, _ := alts[0].(map[string]any)
	second, _ := alts[1].(map[string]any)
	if first == nil || second == nil || first["type"] != "null" {
		return nil
	}
	return second
}

// lookup returns the schema node at a "#/…" reference or a schema URL of
// the embedded document, or nil.
func (c *checker) lookup(ref string) map[string]any {
	_, frag, ok := strings.Cut(ref, "#")
	if !ok {
		return nil
	}
	var cur any = c.doc
	if frag == "" {
		return c.doc
	}
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := cur.(type) {
		case map[string]any:
			cur = x[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			cur = x[i]
		default:
			return nil
		}
	}
	m, _ := cur.(map[string]any)
	return m
}

// inspected reports whether the schema constrains its instance at all; a
// schema with annotations only (desktop, services, x- keys) is "accepted
// and not inspected" (SPEC.md §2.12).
func inspected(s map[string]any) bool {
	for k := range s {
		switch k {
		case "description", "title", "default", "examples", "$comment":
		default:
			return true
		}
	}
	return false
}

func hasType(s map[string]any, t string) bool {
	switch x := s["type"].(type) {
	case string:
		return x == t
	case []any:
		for _, e := range x {
			if e == t {
				return true
			}
		}
	}
	return false
}

func (c *checker) regexp(p string) *regexp.Regexp {
	if re, ok := c.res[p]; ok {
		return re
	}
	re, err := regexp.Compile(p)
	if err != nil {
		re = nil
	}
	c.res[p] = re
	return re
}

// convert turns n into a JSON value for the schema s (resolved here),
// recording every location. It reports integers that are not written in
// plain decimal (SPEC.md §2.2 item 5) and replaces floats, which no
// integer or string field accepts, by 0.5 so that JSON Schema rejects 1.0
// as an integer too (§3.3 item 4); only where the schema accepts a number
// does a float keep its value.
func (c *checker) convert(n *load.Node, s map[string]any, ptr string, path diag.Path, keyPos *diag.Pos) any {
	s, ref := c.resolveRef(s)
	var l *loc
	if c.track {
		l = &loc{node: n, path: path, keyPos: keyPos, schemaRef: ref}
		c.locs[ptr] = l
	}
	switch n.Kind {
	case load.Null:
		return nil
	case load.Scalar:
		switch n.Tag {
		case load.TagInt:
			if !n.IsDecimal() {
				c.dl.Errorf(n.Pos, path.String(), hintDecimal, msgDecimal)
				c.bad[n] = true
				if l != nil {
					l.reported = true
				}
				return json.Number("0")
			}
			return json.Number(n.Value)
		case load.TagFloat:
			if hasType(s, "number") {
				f, err := strconv.ParseFloat(n.Value, 64)
				if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
					return float64(-1)
				}
				return f
			}
			return 0.5
		case load.TagBool:
			return n.Bool()
		}
		return n.Value
	case load.Seq:
		items, _ := s["items"].(map[string]any)
		out := make([]any, 0, len(n.Items))
		for i, it := range n.Items {
			var ip string
			var ipath diag.Path
			if c.track {
				ip, ipath = pointer(ptr, strconv.Itoa(i)), path.Index(i)
			}
			out = append(out, c.child(it, items, ip, ipath, nil))
		}
		return out
	case load.Map:
		props, _ := s["properties"].(map[string]any)
		pats, _ := s["patternProperties"].(map[string]any)
		required := map[string]bool{}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if k, ok := r.(string); ok {
					required[k] = true
				}
			}
		}
		out := make(map[string]any, len(n.Entries))
		for i := range n.Entries {
			e := &n.Entries[i]
			var sub map[string]any
			known := false
			if p, ok := props[e.Key].(map[string]any); ok {
				sub, known = p, true
				// An explicit null on an optional key is the same as
				// leaving the key out (SPEC.md §2.2 item 7).
				if e.Value.Kind == load.Null && !required[e.Key] {
					continue
				}
			} else {
				for pat, ps := range pats {
					if re := c.regexp(pat); re != nil && re.MatchString(e.Key) {
						sub, _ = ps.(map[string]any)
						known = true
						break
					}
				}
				if !known {
					if ap, ok := s["additionalProperties"].(map[string]any); ok {
						sub, known = ap, true
					}
				}
			}
			kp := e.KeyPos
			var cp string
			var cpath diag.Path
			if c.track {
				cp, cpath = pointer(ptr, e.Key), path.Key(e.Key)
			}
			if !known {
				// An unknown key (or any key of an uninspected value):
				// its value is not looked at.
				if c.track {
					c.locs[cp] = &loc{node: e.Value, path: cpath, keyPos: &kp}
				}
				out[e.Key] = true
				continue
			}
			out[e.Key] = c.child(e.Value, sub, cp, cpath, &kp)
		}
		return out
	}
	return nil
}

// child converts a nested value, or records it and stands in a placeholder
// when its schema does not inspect it.
func (c *checker) child(n *load.Node, s map[string]any, ptr string, path diag.Path, keyPos *diag.Pos) any {
	if s == nil || !inspected(c.resolve(s)) {
		if c.track {
			c.locs[ptr] = &loc{node: n, path: path, keyPos: keyPos}
		}
		return true
	}
	return c.convert(n, s, ptr, path, keyPos)
}

// sortedKeys returns the keys of m in byte-wise order.
func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
