package progtype

import (
	"fmt"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

// A flow dissector run, as bpf_prog_test_run_flow_dissector
// (net/bpf/test_run.c) makes it: Input.Data is the frame from its Ethernet
// header; __sk_buff.data and data_end span it, flow_keys points to a
// struct bpf_flow_keys that bpf_flow_dissect fills before the run (n_proto
// from the Ethernet header, nhoff and thoff 14, flags from ctx_in) and
// clamps after it. Input.Context is an optional bpf_flow_keys whose only
// non-zero field may be flags. Output.Data is the flow keys the program
// left (the test run's data_out), Output.Context ctx_in unchanged.
//
// As in the test run there is no sk_buff behind the context, so
// bpf_skb_load_bytes fails with -EFAULT (bpf_flow_dissector_load_bytes);
// programs read the frame directly.

// flowState is the run state of a flow dissector.
type flowState struct {
	buf   []byte // the frame, off-heap, read-only
	n     int
	keys  []byte // struct bpf_flow_keys, off-heap
	ctxIn []byte
}

// flowMaxDataIn is the largest frame the test run takes (bpf_test_init
// without head- or tailroom: a page).
const flowMaxDataIn = 4096

func (r *Run) resetFlow(in *Input) error {
	if in.Flags != 0 {
		return einval("flags %#x: flow dissector runs take no flags", in.Flags)
	}
	if len(in.Data) < ethHLen {
		return einval("data_in of %d bytes: a flow dissector needs at least an Ethernet header (%d bytes)", len(in.Data), ethHLen)
	}
	if len(in.Data) > flowMaxDataIn {
		return einval("data_in of %d bytes: the test run takes at most %d", len(in.Data), flowMaxDataIn)
	}
	f := r.flow
	if f == nil {
		f = &flowState{buf: mem.Aligned(flowMaxDataIn), keys: mem.Aligned(FlowKeysSize)}
		r.flow = f
	}
	clear(f.buf[:f.n])
	f.n = copy(f.buf, in.Data)
	f.ctxIn = nil
	var flags uint32
	if in.Context != nil {
		ctx, err := r.ctxIn(in.Context, FlowKeysSize, "bpf_flow_keys")
		if err != nil {
			return err
		}
		// verify_user_bpf_flow_keys: everything but flags is zero.
		if !allZero(ctx[:fkFlags]) || !allZero(ctx[fkFlags+4:]) {
			return einval("ctx_in: only bpf_flow_keys.flags may be set")
		}
		f.ctxIn = ctx
		flags = le.Uint32(ctx[fkFlags:])
	}
	// bpf_flow_dissect's set-up.
	clear(f.keys)
	copy(f.keys[fkNProto:fkNProto+2], f.buf[12:14])
	le.PutUint16(f.keys[fkNhoff:], ethHLen)
	le.PutUint16(f.keys[fkThoff:], ethHLen)
	le.PutUint32(f.keys[fkFlags:], flags)
	base := mem.Addr(f.buf)
	le.PutUint64(r.shadow[rtSkbData:], base)
	le.PutUint64(r.shadow[rtSkbDataEnd:], base+uint64(f.n))
	le.PutUint64(r.shadow[rtSkbFlowKeys:], mem.Addr(f.keys))
	return nil
}

// finishFlow clamps nhoff and thoff into the packet, as bpf_flow_dissect
// does, and returns the keys.
func (r *Run) finishFlow(out *Output, parts OutputParts) {
	f := r.flow
	clampU16 := func(v, lo, hi uint16) uint16 { return min(max(v, lo), hi) }
	nh := clampU16(le.Uint16(f.keys[fkNhoff:]), ethHLen, uint16(f.n))
	le.PutUint16(f.keys[fkNhoff:], nh)
	le.PutUint16(f.keys[fkThoff:], clampU16(le.Uint16(f.keys[fkThoff:]), nh, uint16(f.n)))
	if parts&OutputData != 0 {
		out.Data = f.keys
	}
	if f.ctxIn != nil && parts&OutputContext != 0 {
		out.Context = f.ctxIn
	}
}

// FlowDissectorLoadBytes is bpf_flow_dissector_load_bytes, the
// bpf_skb_load_bytes of flow dissectors: without an sk_buff behind the
// context, as in BPF_PROG_TEST_RUN, it zeroes the buffer and fails with
// -EFAULT.
func FlowDissectorLoadBytes(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	if r.flow == nil {
		return 0, fmt.Errorf("%w: a flow dissector helper in a %s run", ErrNoRun, r.kind.name)
	}
	buf, err := env.Memory(args[2], uint64(uint32(args[3])), true)
	if err != nil {
		return 0, err
	}
	clear(buf)
	return errno(maps.EFAULT), nil
}

var flowDefs = helpers.Defs{
	{ID: idSkbLoadBytes, Name: "skb_load_bytes", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgPtrToUninitMem, helpers.ArgConstSize}}, Func: FlowDissectorLoadBytes},
}
