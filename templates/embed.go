// Package templates embeds the text of the framework files `anklume sync`
// writes as they are (SPEC.md §6.7): ansible.cfg and the anklume_incus
// connection plugin. The sync header is added by compiler/tree when the
// file is written, so these files do not carry it.
package templates

import (
	"bytes"
	_ "embed"
)

//go:embed ansible.cfg
var ansibleCfg []byte

//go:embed anklume_incus.py
var connectionPlugin []byte

// AnsibleCfg returns ansible.cfg (§6.7 item 1). The caller owns the slice.
func AnsibleCfg() []byte { return bytes.Clone(ansibleCfg) }

// ConnectionPlugin returns connection_plugins/anklume_incus.py (§6.7 item
// 4). The caller owns the slice.
func ConnectionPlugin() []byte { return bytes.Clone(connectionPlugin) }
