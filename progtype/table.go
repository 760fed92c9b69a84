package progtype

import (
	"fmt"

	"github.com/waggle-bpf/waggle/helpers"
)

// HelperTable is what a program of one Kind, under one license, may call:
// the helpers its type allows (Kind.Allowed) that waggle implements (the
// generic ones of package helpers and the type's own, Kind.Helpers), with
// their prototypes for the verifier and their implementations for the
// engine. Both come from one list, so a helper the verifier accepts a call
// to is one the engine can call: availability is decided here, once.
type HelperTable struct {
	// Protos are the prototypes of the helpers, by id: what the verifier
	// checks calls against (verifier.Program.Helpers). A caller that
	// verifies for another target (Linux's or the host's helpers rather
	// than waggle's) gives the verifier its own map instead.
	Protos map[int32]helpers.Proto
	// Funcs are the implementations, by id: what the engine calls
	// (engine.Options.Helpers). Its ids are Protos'.
	Funcs helpers.Table
	// GPL says whether the license lets the program call GPL-only helpers
	// (Proto.GPLOnly).
	GPL bool

	kind    *Kind
	license string
}

// HelperTable returns the helpers a program of this Kind with the given
// license (the object's "license" section) may call. It is a new table
// each call; the caller may change it.
func (k *Kind) HelperTable(license string) *HelperTable {
	t := &HelperTable{Protos: map[int32]helpers.Proto{}, Funcs: helpers.Table{}, GPL: GPLCompatible(license), kind: k, license: license}
	for _, d := range helpers.Generic() {
		if k.Allowed(d.ID) {
			t.Protos[d.ID], t.Funcs[d.ID] = d.Proto, d.Func
		}
	}
	// The type's own implementation wins over a generic one of the same
	// id.
	for _, d := range k.Helpers() {
		t.Protos[d.ID], t.Funcs[d.ID] = d.Proto, d.Func
	}
	return t
}

// Check returns why a program may not call helper id, or nil if it may:
// the helper is GPL-only and the license is not GPL-compatible, Linux has
// no such helper, the program type may not call it, or waggle does not
// implement it yet. The verifier says the same of the calls it checks
// (from Protos); Check is for programs that run unverified.
func (t *HelperTable) Check(id int32) error {
	p, ok := t.Protos[id]
	if ok && (t.GPL || !p.GPLOnly) {
		return nil
	}
	name := helpers.Name(id)
	switch {
	case ok:
		return fmt.Errorf("bpf_%s (helper %d) is GPL-only and the program's license %q is not GPL-compatible, as Linux refuses it (cannot call GPL-restricted function from non-GPL compatible program): license the object \"GPL\" or \"Dual BSD/GPL\"", name, id, t.license)
	case name == "":
		return fmt.Errorf("call to helper %d, which Linux does not have", id)
	case !t.kind.Allowed(id):
		return fmt.Errorf("%s programs may not call bpf_%s (helper %d), as in Linux", t.kind, name, id)
	default:
		return fmt.Errorf("bpf_%s (helper %d) is not implemented in user space yet", name, id)
	}
}

// GPLCompatible reports whether a program's license lets it call GPL-only
// helpers: license_is_gpl_compatible (include/linux/license.h).
func GPLCompatible(license string) bool {
	switch license {
	case "GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL":
		return true
	}
	return false
}
