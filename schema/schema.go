// Package schema embeds the JSON Schema of infra.yml (SPEC.md §3.3): the
// whole document for single-file mode, and the parts that describe each
// file of directory mode (§2.13).
package schema

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
)

// ID is the $id of the whole schema.
const ID = "urn:anklume:schema:infra:1"

//go:embed infra.schema.json
var document []byte

// JSON returns the schema document, indented by 2 spaces. The caller owns
// the returned slice.
func JSON() []byte { return bytes.Clone(document) }

// Part returns the schema of one directory-mode file: "base" (base.yml),
// "domains" (a file of domains/) or "policies" (policies.yml). The part
// keeps every $defs entry of the whole schema so that its references
// resolve, and is indented by 2 spaces.
func Part(name string) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(document, &top); err != nil {
		return nil, fmt.Errorf("reading the embedded schema: %w", err)
	}
	var props map[string]json.RawMessage
	if err := json.Unmarshal(top["properties"], &props); err != nil {
		return nil, fmt.Errorf("reading the embedded schema properties: %w", err)
	}
	type field struct {
		key string
		val any
	}
	var fields []field
	pick := func(keys ...string) *orderedObject {
		o := &orderedObject{}
		for _, k := range keys {
			o.add(k, props[k])
		}
		return o
	}
	head := func(title, desc string) {
		fields = append(fields,
			field{"$schema", top["$schema"]},
			field{"$id", ID + ":" + name},
			field{"title", title},
			field{"description", desc},
		)
	}
	switch name {
	case "base":
		head("anklume infra/base.yml (format_version 1)",
			"Directory mode: project_name, global, and optionally format_version, shared_volumes and x- keys.")
		fields = append(fields,
			field{"type", "object"},
			field{"required", []string{"project_name", "global"}},
			field{"properties", pick("format_version", "project_name", "global", "shared_volumes")},
			field{"patternProperties", top["patternProperties"]},
			field{"additionalProperties", false},
		)
	case "domains":
		head("anklume infra/domains/*.yml (format_version 1)",
			"Directory mode: a mapping domain name -> domain; one file may hold several domains.")
		fields = append(fields, field{"$ref", "#/$defs/domains"})
	case "policies":
		head("anklume infra/policies.yml (format_version 1)",
			"Directory mode: optional network_policies and x- keys.")
		fields = append(fields,
			field{"type", "object"},
			field{"properties", pick("network_policies")},
			field{"patternProperties", top["patternProperties"]},
			field{"additionalProperties", false},
		)
	default:
		return nil, fmt.Errorf("unknown schema part %q (want base, domains or policies)", name)
	}
	fields = append(fields, field{"$defs", top["$defs"]})
	o := &orderedObject{}
	for _, f := range fields {
		raw, err := marshal(f.val)
		if err != nil {
			return nil, fmt.Errorf("building schema part %s: %w", name, err)
		}
		o.add(f.key, raw)
	}
	compact, err := o.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("building schema part %s: %w", name, err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, fmt.Errorf("indenting schema part %s: %w", name, err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// marshal encodes v without escaping <, > and & (descriptions use "->").
func marshal(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// orderedObject is a JSON object that keeps its keys in insertion order.
type orderedObject struct {
	keys []string
	vals []json.RawMessage
}

func (o *orderedObject) add(k string, v json.RawMessage) {
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

// MarshalJSON writes the object with its keys in insertion order.
func (o *orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		var c bytes.Buffer
		if err := json.Compact(&c, o.vals[i]); err != nil {
			return nil, fmt.Errorf("key %s: %w", k, err)
		}
		b.Write(c.Bytes())
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
