// Package model is the resolved model of a PSOT: the desired state that
// every back end consumes (SPEC.md §4.13). It is built by resolve and never
// changed afterwards.
package model

// Infra is the resolved infrastructure. STUB.
type Infra struct{}

// Summary returns the counts printed by `anklume validate`: enabled
// domains, their machines, and the policies after resolution.
func (m *Infra) Summary() (domains, machines, policies int) { return 0, 0, 0 }
