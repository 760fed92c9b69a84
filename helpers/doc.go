// Package helpers owns the eBPF helper functions: their Linux ids, their Go
// implementations and (later) the prototypes the verifier reads. Engines call
// a helper through a Table; one Go implementation defines each helper's
// semantics for every engine.
package helpers

//go:generate go run mkids.go /usr/src/linux-source-6.12.tar.xz
