package progtype

import (
	"fmt"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/maps"
)

// flagCtxLenMask is BPF_F_CTXLEN_MASK: the upper 32 bits of the flags of
// the packet programs' perf_event_output give how many packet bytes to
// append to the sample.
const flagCtxLenMask = uint64(0xfffff) << 32

// eventOutput is bpf_xdp_event_output and bpf_skb_event_output
// (net/core/filter.c), the perf_event_output of XDP and socket buffer
// programs: the sample is the program's data followed by the first
// flags>>32 bytes of the packet.
func eventOutput(env helpers.Env, args *[5]uint64, packet func(*Run) ([]byte, error)) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	flags := args[2]
	if flags&^(flagCtxLenMask|maps.PerfIndexMask) != 0 {
		return errno(maps.EINVAL), nil
	}
	pkt, err := packet(r)
	if err != nil {
		return 0, err
	}
	size := (flags & flagCtxLenMask) >> 32
	if size > uint64(len(pkt)) {
		return errno(maps.EFAULT), nil
	}
	st := env.State()
	m, err := st.Maps.Resolve(args[1])
	if err != nil {
		return 0, fmt.Errorf("perf_event_output: %w", err)
	}
	pe, ok := m.(maps.PerfEvents)
	if !ok {
		return errno(maps.EINVAL), nil
	}
	data, err := env.Memory(args[3], args[4], false)
	if err != nil {
		return 0, err
	}
	return maps.Return(pe.OutputFrags(st.CPU, flags&maps.PerfIndexMask, data, pkt[:size])), nil
}

// XDPEventOutput is bpf_xdp_event_output (perf_event_output in XDP
// programs).
func XDPEventOutput(env helpers.Env, args *[5]uint64) (uint64, error) {
	return eventOutput(env, args, func(r *Run) ([]byte, error) {
		if r.xdp == nil {
			return nil, ErrNoRun
		}
		return r.xdp.buf[r.xdp.data:r.xdp.end], nil
	})
}

// SkbEventOutput is bpf_skb_event_output (perf_event_output in socket
// buffer programs).
func SkbEventOutput(env helpers.Env, args *[5]uint64) (uint64, error) {
	return eventOutput(env, args, func(r *Run) ([]byte, error) {
		if r.skb == nil {
			return nil, ErrNoRun
		}
		return r.skb.buf[r.skb.data:r.skb.tail], nil
	})
}

var protoEventOutput = helpers.Proto{
	MapTypes: []maps.Type{maps.PerfEventArray},
	Args:     []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgConstMapPtr, helpers.ArgAnything, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSizeOrZero},
	GPLOnly:  true,
}
