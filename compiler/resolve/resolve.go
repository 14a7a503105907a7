// Package resolve turns a validated PSOT into the resolved model (SPEC.md
// §4), running stages S3 and S4.
package resolve

import (
	"github.com/anklume/anklume/compiler/diag"
	"github.com/anklume/anklume/compiler/host"
	"github.com/anklume/anklume/compiler/load"
	"github.com/anklume/anklume/compiler/model"
)

// Resolve resolves root, which passed S0–S2. STUB.
func Resolve(root *load.Node, opts host.Options) (*model.Infra, diag.List) {
	return &model.Infra{}, nil
}
