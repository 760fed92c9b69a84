package helpers

import "reflect"

// IsMapLookupElem reports whether f is this package's
// bpf_map_lookup_elem, whose semantics an engine may implement natively
// for the maps whose header it can read (an array lookup is a bounds
// check and an address computation: maps/header.go). An engine does so
// only when the table has this implementation, so that a table that
// replaces the helper keeps its own.
func IsMapLookupElem(f Func) bool {
	return f != nil && reflect.ValueOf(f).Pointer() == reflect.ValueOf(Func(mapLookupElem)).Pointer()
}
