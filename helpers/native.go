package helpers

import "reflect"

// natives are the helpers whose semantics an engine may implement
// natively, by id: their Go implementation here defines them, and the
// native form must agree with it.
var natives = map[int32]Func{
	IDMapLookupElem:     mapLookupElem,     // arrays: a bounds check and an address (maps/header.go)
	IDGetPrandomU32:     getPrandomU32,     // State.Rand, a splitmix64 step
	IDGetSMPProcessorID: getSMPProcessorID, // State.CPU
	IDLoop:              loop,              // the loop, calling the callback as a bpf-to-bpf call
	IDRingbufReserve:    ringbufReserve,    // the ring's header words (maps/ringbuf.go); records in State.Records
	IDRingbufSubmit:     ringbufSubmit,     // the record header's BUSY bit, then a wakeup
	IDRingbufDiscard:    ringbufDiscard,    // as submit, with DISCARD
	IDRingbufOutput:     ringbufOutput,     // reserve, copy, submit
}

// IsStandard reports whether f is this package's implementation of helper
// id, for the helpers an engine may implement natively (bpf_map_lookup_elem,
// bpf_get_prandom_u32, bpf_get_smp_processor_id, bpf_loop,
// bpf_ringbuf_reserve, _submit, _discard and _output). An engine does so only
// when the table has this implementation, so that a table that replaces
// the helper keeps its own.
func IsStandard(id int32, f Func) bool {
	g, ok := natives[id]
	return ok && f != nil && reflect.ValueOf(f).Pointer() == reflect.ValueOf(g).Pointer()
}
