package structure

import (
	"github.com/anklume/anklume/compiler/suggest"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/load"
)

// leaf is one error of the schema that is not a group of others.
type leaf struct {
	ptr       string
	schemaURL string
	kind      jsonschema.ErrorKind
}

// flatten collects the leaf errors of e. Groups, references and the
// top-level schema error only carry causes; every other kind, including
// propertyNames, not, anyOf and oneOf, is translated as one error at its
// instance location.
func flatten(e *jsonschema.ValidationError, out []leaf) []leaf {
	switch e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.Reference, *kind.AllOf:
		for _, c := range e.Causes {
			out = flatten(c, out)
		}
		return out
	case *kind.AnyOf:
		// An optional key is {"anyOf": [{"type": "null"}, B]}: the
		// errors are those of B.
		if len(e.Causes) == 2 {
			if t, ok := e.Causes[0].ErrorKind.(*kind.Type); ok && len(t.Want) == 1 && t.Want[0] == "null" {
				return flatten(e.Causes[1], out)
			}
		}
	}
	ptr := ""
	for _, tok := range e.InstanceLocation {
		ptr = pointer(ptr, tok)
	}
	return append(out, leaf{ptr: ptr, schemaURL: e.SchemaURL, kind: e.ErrorKind})
}

// defName returns the name of the $defs entry that schemaURL designates
// exactly, or "".
func defName(schemaURL string) string {
	_, frag, _ := strings.Cut(schemaURL, "#")
	name, ok := strings.CutPrefix(frag, "/$defs/")
	if !ok || strings.Contains(name, "/") {
		return ""
	}
	return name
}

// valuePriority orders the errors reported about one value: only the first
// is shown (one error per problem).
func valuePriority(k jsonschema.ErrorKind) int {
	switch k.(type) {
	case *kind.Type:
		return 0
	case *kind.Const, *kind.Enum:
		return 1
	case *kind.Not:
		return 2
	case *kind.Pattern:
		return 3
	case *kind.MinLength, *kind.MaxLength:
		return 4
	case *kind.Minimum, *kind.Maximum, *kind.ExclusiveMinimum, *kind.ExclusiveMaximum:
		return 5
	}
	return 9
}

// translate turns the schema's verdict into diagnostics.
func (c *checker) translate(verr *jsonschema.ValidationError) {
	byLoc := map[string][]leaf{}
	var ptrs []string
	for _, l := range flatten(verr, nil) {
		if _, seen := byLoc[l.ptr]; !seen {
			ptrs = append(ptrs, l.ptr)
		}
		byLoc[l.ptr] = append(byLoc[l.ptr], l)
	}
	sort.Strings(ptrs)
	named := map[string]bool{}
	for _, ptr := range ptrs {
		var rest []leaf
		for _, lf := range byLoc[ptr] {
			if k, ok := lf.kind.(*kind.PropertyNames); ok {
				// Its location is not reliable; see badNames.
				c.badNames(lf, k.Property, named)
				continue
			}
			rest = append(rest, lf)
		}
		l := c.locs[ptr]
		if l == nil {
			l = c.nearest(ptr)
		}
		if l.reported || len(rest) == 0 {
			continue
		}
		var values []leaf
		for _, lf := range rest {
			switch k := lf.kind.(type) {
			case *kind.Required:
				for _, m := range k.Missing {
					c.dl.Errorf(c.missingPos(ptr, l), l.path.String(), "", "missing required key %s", load.Quote(m))
				}
			case *kind.AdditionalProperties:
				c.unknownKeys(l, lf, k.Properties)
			default:
				values = append(values, lf)
			}
		}
		if len(values) == 0 {
			continue
		}
		sort.SliceStable(values, func(i, j int) bool {
			return valuePriority(values[i].kind) < valuePriority(values[j].kind)
		})
		msg, hint := c.valueMessage(l.node, values[0])
		c.dl.Errorf(l.node.Pos, l.path.String(), hint, "%s", msg)
		c.bad[l.node] = true
	}
}

// nearest returns the loc of the closest recorded ancestor of ptr.
func (c *checker) nearest(ptr string) *loc {
	for ptr != "" {
		i := strings.LastIndexByte(ptr, '/')
		ptr = ptr[:i]
		if l := c.locs[ptr]; l != nil {
			return l
		}
	}
	if l := c.locs[""]; l != nil {
		return l
	}
	return &loc{node: c.root, path: diag.Root}
}

// missingPos is the anchor of a missing key: the key of the parent mapping,
// 1:1 for the root, or the list item itself.
func (c *checker) missingPos(ptr string, l *loc) diag.Pos {
	if ptr == "" {
		return diag.Pos{File: c.root.Pos.File, FileIndex: c.root.Pos.FileIndex, Line: 1, Col: 1}
	}
	if l.keyPos != nil {
		return *l.keyPos
	}
	return l.node.Pos
}

// unknownKeys reports each key that the mapping's schema does not allow.
func (c *checker) unknownKeys(l *loc, lf leaf, keys []string) {
	var allowed []string
	if s := c.lookup(lf.schemaURL); s != nil {
		if props, ok := s["properties"].(map[string]any); ok {
			allowed = sortedKeys(props)
		}
	}
	for _, k := range keys {
		e := l.node.Get(k)
		if e == nil {
			continue
		}
		hint := "allowed keys: " + strings.Join(allowed, ", ")
		if s, ok := suggest.Closest(k, allowed); ok {
			hint = "did you mean " + load.Quote(s) + "?"
		}
		c.dl.Errorf(e.KeyPos, l.path.Key(k).String(), hint, "unknown key %s", load.Quote(k))
		c.bad[e.Value] = true
	}
}

// badNames reports a name that a name map's propertyNames rejects.
//
// jsonschema v6.0.3 does not copy the instance location of a propertyNames
// error, so a later sibling can overwrite it. The location is therefore
// found again from the schema: every mapping checked against the schema
// that owns this propertyNames and that holds the rejected name fails the
// same way. done remembers the names already reported.
func (c *checker) badNames(lf leaf, name string, done map[string]bool) {
	owner := strings.TrimSuffix(lf.schemaURL, "/propertyNames")
	_, frag, _ := strings.Cut(owner, "#")
	for ptr, l := range c.locs {
		if l.reported || l.node.Kind != load.Map || l.schemaRef != "#"+frag {
			continue
		}
		if key := ptr + "\x00" + name; !done[key] && l.node.Get(name) != nil {
			done[key] = true
			c.badName(l, lf, name)
		}
	}
}

// badName reports name in the mapping l; which rule applies follows from
// the $ref of the propertyNames schema.
func (c *checker) badName(l *loc, lf leaf, name string) {
	e := l.node.Get(name)
	if e == nil {
		return
	}
	def := ""
	if s := c.lookup(lf.schemaURL); s != nil {
		if ref, ok := s["$ref"].(string); ok {
			def = defName(ref)
		}
	}
	var msg, hint string
	switch def {
	case "configKey":
		msg = configKeyMessage(name)
	case "domainName":
		msg, hint = nameMessage("domain", name)
	case "machineName":
		msg, hint = nameMessage("machine", name)
	case "profileName":
		msg, hint = nameMessage("profile", name)
	default:
		msg, hint = nameMessage("volume", name)
	}
	c.dl.Errorf(e.KeyPos, l.path.Key(name).String(), hint, "%s", msg)
	c.bad[e.Value] = true
}

var (
	nameRe   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	digitsRe = regexp.MustCompile(`^[0-9]+$`)
	nPercent = regexp.MustCompile(`^[0-9]+%$`)
)

// nameMessage is the message for a rejected name of a domain, machine,
// profile or volume (SPEC.md §3.4, V2, V9, N4, N9, N14, N25).
func nameMessage(what, v string) (msg, hint string) {
	q := load.Quote(v)
	if strings.HasPrefix(v, "x-") {
		return "invalid " + what + " name " + q + `: names starting with "x-" are reserved for extension keys`, hintXName
	}
	pattern := "invalid " + what + " name " + q + " " + msgNameRules
	if !nameRe.MatchString(v) {
		return pattern, ""
	}
	if n := utf8.RuneCountInString(v); n > 63 {
		if what == "domain" {
			return "domain name is " + strconv.Itoa(n) + " characters; the maximum is 63", ""
		}
		return pattern, ""
	}
	switch {
	case what == "domain" && (v == "default" || v == "anklume-lock" || strings.HasPrefix(v, "anklume-lock-")):
		return "domain name " + q + " is reserved", ""
	case (what == "domain" || what == "machine") && ansibleReserved(v):
		return what + " name " + q + " is reserved by Ansible", hintAnsibleName
	case what == "machine" && digitsRe.MatchString(v):
		return "invalid machine name " + q + ": Incus refuses instance names made only of digits", ""
	case what == "profile" && v == "default":
		return `a domain profile cannot be named "default"`, hintProfile
	}
	return pattern, ""
}

// ansibleReserved reports whether v is a name Ansible gives a meaning of
// its own: the implicit groups all and ungrouped, and the implicit
// localhost on which site.yml runs its controller plays. A domain is an
// inventory group and a machine an inventory host, so neither may take
// one of these names (a group named localhost would send the controller
// plays to its machines).
func ansibleReserved(v string) bool {
	return v == "all" || v == "ungrouped" || v == "localhost"
}

// configKeyMessage is the N6 message for a config key.
func configKeyMessage(k string) string {
	if strings.HasPrefix(k, "user.anklume.") {
		return "config key " + load.Quote(k) + " is reserved for anklume"
	}
	return "config key " + load.Quote(k) + " is managed by Incus and cannot be set"
}

// typeNames maps JSON Schema types to the words of SPEC.md §3.4.
var typeNames = map[string]string{
	"boolean": "a boolean",
	"integer": "an integer",
	"string":  "a string",
	"object":  "a mapping",
	"array":   "a list",
	"number":  "a number",
}

// yesNo reports whether n is one of the YAML 1.1 booleans that YAML 1.2
// reads as strings.
func yesNo(n *load.Node) bool {
	if !n.IsStr() {
		return false
	}
	switch strings.ToLower(n.Value) {
	case "yes", "no", "on", "off", "y", "n":
		return true
	}
	return false
}

// display writes a value the way "invalid port <v>" shows it.
func display(n *load.Node) string {
	switch {
	case n.IsStr():
		return load.Quote(n.Value)
	case n.Kind == load.Scalar:
		return n.Value
	}
	return n.KindName()
}

// gotString writes `"<v>"` for a string and the kind otherwise.
func gotString(n *load.Node) string {
	if n.IsStr() {
		return load.Quote(n.Value)
	}
	return n.KindName()
}

// valueMessage translates the most important error about value n.
func (c *checker) valueMessage(n *load.Node, lf leaf) (msg, hint string) {
	got := n.KindName()
	boolHint := ""
	if yesNo(n) {
		boolHint = hintYAML12
	}
	switch defName(lf.schemaURL) {
	case "projectName":
		if _, ok := lf.kind.(*kind.Type); !ok {
			return "must be 1 to 128 characters without control characters", ""
		}
	case "formatVersion":
		if _, ok := lf.kind.(*kind.Const); ok {
			return "format_version " + n.Value + " is not supported; this anklume reads format_version 1", hintUpgrade
		}
	case "baseOctet":
		if _, ok := lf.kind.(*kind.Const); ok {
			return "must be 10 (only 10.0.0.0/8 is supported), got " + n.Value, ""
		}
	case "ipv4":
		if _, ok := lf.kind.(*kind.Pattern); ok {
			return load.Quote(n.Value) + " is not an IPv4 address", ""
		}
	case "absPath":
		if _, ok := lf.kind.(*kind.Pattern); ok {
			return "must be an absolute path, got " + load.Quote(n.Value), ""
		}
	case "baseSubnet":
		if _, ok := lf.kind.(*kind.Pattern); ok {
			return `must be two dot-separated octets such as "10.100", got ` + load.Quote(n.Value), ""
		}
	case "size":
		if _, ok := lf.kind.(*kind.Pattern); ok {
			return "must be a size such as 10GiB, got " + load.Quote(n.Value), ""
		}
	case "roleName":
		if _, ok := lf.kind.(*kind.Pattern); ok {
			return "invalid role name " + load.Quote(n.Value) + ` (letters, digits, "_", "." and "-")`, ""
		}
	case "target":
		if _, ok := lf.kind.(*kind.Pattern); ok {
			return "must be a cluster member name or @<group>, got " + load.Quote(n.Value), ""
		}
	case "incusValue":
		return "must be a string, integer or boolean, got " + got, ""
	case "ports":
		return `must be a list of ports or "all", got ` + got, ""
	case "port":
		return "invalid port " + display(n) + " (must be an integer from 1 to 65535)", ""
	case "aiSanitize":
		return `must be true, false or "always", got ` + got, boolHint
	case "access":
		return `access must be "ro" or "rw", got ` + gotString(n), ""
	case "consumers":
		return "consumers must be a non-empty mapping", ""
	case "resourcePolicy":
		switch lf.kind.(type) {
		case *kind.Type, *kind.Not:
			return "must be a mapping or true, got " + got, boolHint
		}
	case "cpuReserve":
		if n.IsStr() && nPercent.MatchString(n.Value) {
			return "percentage must be 1-99, got " + load.Quote(n.Value), ""
		}
		return `must be "N%" or a positive number, got ` + got, ""
	case "memoryReserve":
		if n.IsStr() && nPercent.MatchString(n.Value) {
			return "percentage must be 1-99, got " + load.Quote(n.Value), ""
		}
		return `must be "N%", a size such as "4GiB", or a positive number, got ` + got, ""
	}
	switch k := lf.kind.(type) {
	case *kind.Type:
		want := ""
		for _, w := range k.Want {
			if w != "null" {
				want = w
				break
			}
		}
		name := typeNames[want]
		if name == "" {
			name = "a " + want
		}
		hint := ""
		if want == "boolean" {
			hint = boolHint
		}
		return "must be " + name + ", got " + got, hint
	case *kind.Enum:
		var vals []string
		for _, w := range k.Want {
			if w != nil {
				vals = append(vals, jsonText(w))
			}
		}
		hint := ""
		if n.IsStr() {
			if s, ok := suggest.Closest(n.Value, vals); ok {
				hint = "did you mean " + load.Quote(s) + "?"
			}
		}
		return "must be one of " + strings.Join(vals, ", ") + "; got " + gotString(n), hint
	case *kind.Const:
		return "must be " + jsonText(k.Want) + ", got " + got, ""
	case *kind.Minimum, *kind.Maximum:
		s := c.lookup(lf.schemaURL)
		lo, hasLo := number(s, "minimum")
		hi, hasHi := number(s, "maximum")
		switch {
		case hasLo && hasHi:
			return "must be an integer from " + lo + " to " + hi + ", got " + n.Value, ""
		case hasLo:
			return "must be an integer >= " + lo + ", got " + n.Value, ""
		default:
			return "must be an integer <= " + hi + ", got " + n.Value, ""
		}
	case *kind.ExclusiveMinimum:
		return "must be greater than " + ratText(k.Want) + ", got " + got, ""
	case *kind.Pattern:
		return "must match " + k.Want + ", got " + gotString(n), ""
	case *kind.MinLength:
		return "must not be empty", ""
	case *kind.MaxLength:
		return "must be at most " + strconv.Itoa(k.Want) + " characters", ""
	case *kind.MinProperties:
		return "must not be empty", ""
	}
	return "is not valid here", ""
}

// number reads a numeric keyword of a schema node as text.
func number(s map[string]any, key string) (string, bool) {
	if s == nil {
		return "", false
	}
	switch x := s[key].(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case interface{ String() string }:
		return x.String(), true
	}
	return "", false
}

func ratText(r *big.Rat) string {
	if r == nil {
		return "0"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	return r.FloatString(6)
}

// jsonText writes an enum or const value as messages show it: strings
// bare, other values as JSON would.
func jsonText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	}
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return "?"
}
