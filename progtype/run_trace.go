package progtype

// traceState is the run state of the tracing types: their context is the
// input itself (pt_regs, a trace record, raw tracepoint arguments,
// bpf_perf_event_data), read-only.
type traceState struct{}

// resetTrace copies ctx_in into the shadow struct. The kernel's contexts
// are as long as their struct (a tracepoint record as long as its format);
// a shorter ctx_in is padded with zeros, and reads past a tracepoint
// record's end read zeros where the kernel would read whatever follows the
// record.
func (r *Run) resetTrace(in *Input) error {
	if len(in.Data) != 0 {
		return einval("data_in of %d bytes: %s programs take no packet", len(in.Data), r.kind.typ)
	}
	if in.Flags != 0 {
		return einval("flags %#x: %s runs take no flags", in.Flags, r.kind.typ)
	}
	if len(in.Context) > r.kind.layout.Size {
		return einval("ctx_in of %d bytes: %s is %d bytes", len(in.Context), r.kind.layout.Name, r.kind.layout.Size)
	}
	copy(r.shadow, in.Context)
	if r.trace == nil {
		r.trace = &traceState{}
	}
	return nil
}
