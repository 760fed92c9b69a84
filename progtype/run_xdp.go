package progtype

import (
	"fmt"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// The XDP frame, as bpf_prog_test_run_xdp (net/bpf/test_run.c) lays it
// out in one page:
//
//	0        40                256-meta  256                  3776   4096
//	+--------+-------------------+---------+--------------------+------+
//	|xdp_frame|    headroom      |  meta   | packet data ...    | tail |
//	+--------+-------------------+---------+--------------------+------+
//	hard_start                data_meta   data          data_end  hard_end
//
// The program may move data_meta down to the end of the xdp_frame area
// (bpf_xdp_adjust_meta, bpf_xdp_adjust_head) and data_end up to hard_end
// (bpf_xdp_adjust_tail); the tailroom holds the skb_shared_info.
const (
	// XDPPacketHeadroom is XDP_PACKET_HEADROOM (include/uapi/linux/bpf.h).
	XDPPacketHeadroom = 256
	xdpFrameSize      = 4096 // PAGE_SIZE: the frame_sz of a test run
	// xdpFrameStruct is sizeof(struct xdp_frame) (include/net/xdp.h),
	// kept at the start of the headroom.
	xdpFrameStruct = 40
	// skbSharedInfo is SKB_DATA_ALIGN(sizeof(struct skb_shared_info)),
	// the tailroom XDP reserves (xdp_data_hard_end).
	skbSharedInfo = 320
	xdpHardEnd    = xdpFrameSize - skbSharedInfo
	ethHLen       = 14 // ETH_HLEN
	// xdpMaxMeta is the largest metadata xdp_metalen_invalid accepts
	// (the u8 skb_shared_info.meta_len).
	xdpMaxMeta = 255
)

// XDP actions (enum xdp_action, include/uapi/linux/bpf.h).
const (
	XDPAborted  = 0
	XDPDrop     = 1
	XDPPass     = 2
	XDPTX       = 3
	XDPRedirect = 4
)

// FlagXDPLiveFrames is BPF_F_TEST_XDP_LIVE_FRAMES, which waggle does not
// support: packets a user-space run transmits or redirects go to the
// caller through Output, not to a device.
const FlagXDPLiveFrames = 1 << 1

// xdpState is the xdp_buff of a run: offsets into the frame.
type xdpState struct {
	buf             []byte
	meta, data, end int
	lo, hi          int    // the part of buf the packet has covered since the last reset
	ctxIn           []byte // a copy of ctx_in, nil for none
	// bounds and metaBounds are the addresses of data and data_end, and
	// of data_meta and data: the Bounds of the packet's Regions.
	bounds, metaBounds [2]uint64
}

// resetXDP is bpf_prog_test_run_xdp's set-up: the ctx_in checks, the
// headroom, the copy of data_in, and xdp_convert_md_to_buff. The kernel
// does not test-run programs attached to a devmap at all; waggle runs them
// with the egress_ifindex of ctx_in, as a devmap would after a redirect.
// Interface indexes are not checked against the host's devices (the kernel
// answers ENODEV for an unknown ingress_ifindex, EINVAL for a queue it has
// not registered).
func (r *Run) resetXDP(in *Input) error {
	if in.Flags != 0 {
		return einval("flags %#x: only BPF_F_TEST_XDP_LIVE_FRAMES exists for XDP and waggle does not support it", in.Flags)
	}
	x := r.xdp
	if x == nil {
		x = &xdpState{buf: mem.Aligned(xdpFrameSize)}
		r.xdp = x
	} else if x.lo < x.hi {
		clear(x.buf[x.lo:x.hi]) // the headroom starts out zero, as kzalloc'd
	}
	// Nothing covered yet (lo > hi), until syncXDP: a Reset that fails
	// below leaves it so, and the next Reset clears nothing.
	x.lo, x.hi = xdpFrameSize, 0
	x.ctxIn = nil
	meta, linear := 0, len(in.Data)
	var ingress, rxq uint32 = 1, 0 // the loopback device's first rx queue
	var egress uint32
	if in.Context != nil {
		ctx, err := r.ctxIn(in.Context, xdpSize, "xdp_md")
		if err != nil {
			return err
		}
		x.ctxIn = ctx
		dataOff, dataEnd := int(le.Uint32(ctx[xdpData:])), int(le.Uint32(ctx[xdpDataEnd:]))
		switch {
		case le.Uint32(ctx[xdpDataMeta:]) != 0:
			return einval("ctx_in: xdp_md.data_meta must be 0 (the metadata is the first data bytes of data_in)")
		case dataEnd > len(in.Data):
			return einval("ctx_in: xdp_md.data_end %d is beyond data_in (%d bytes)", dataEnd, len(in.Data))
		case dataOff > dataEnd:
			return einval("ctx_in: xdp_md.data %d is beyond data_end %d", dataOff, dataEnd)
		case dataOff%4 != 0 || dataOff > xdpMaxMeta || dataOff > XDPPacketHeadroom-xdpFrameStruct:
			return einval("ctx_in: metadata of %d bytes (xdp_md.data): it must be a multiple of 4 and at most %d", dataOff, XDPPacketHeadroom-xdpFrameStruct)
		}
		meta, linear = dataOff, dataEnd
		egress = le.Uint32(ctx[xdpEgressIfindex:])
		if egress != 0 && r.kind.attach != AttachXDPDevMap {
			return einval("ctx_in: xdp_md.egress_ifindex must be 0 (it is for programs attached to a devmap)")
		}
		ingress, rxq = le.Uint32(ctx[xdpIngressIfindex:]), le.Uint32(ctx[xdpRxQueueIndex:])
		if ingress == 0 {
			if rxq != 0 {
				return einval("ctx_in: rx_queue_index %d without ingress_ifindex", rxq)
			}
			ingress = 1
		}
	}
	maxLinear := xdpFrameSize - (XDPPacketHeadroom - meta) - skbSharedInfo
	if linear > maxLinear {
		linear = maxLinear
	}
	if len(in.Data)-meta < ethHLen {
		return einval("data_in of %d bytes (after %d of metadata): XDP needs at least an Ethernet header (%d bytes)", len(in.Data), meta, ethHLen)
	}
	if len(in.Data) > linear {
		return fmt.Errorf("data_in of %d bytes does not fit the linear part (%d bytes); multi-buffer XDP (frags) is not supported: %w", len(in.Data), linear, ErrUnsupported)
	}
	x.meta = XDPPacketHeadroom - meta
	copy(x.buf[x.meta:], in.Data[:linear])
	x.data = XDPPacketHeadroom
	x.end = x.meta + linear
	le.PutUint32(r.shadow[rtXDPIngress:], ingress)
	le.PutUint32(r.shadow[rtXDPRxQueue:], rxq)
	le.PutUint32(r.shadow[rtXDPEgress:], egress)
	r.syncXDP()
	return nil
}

// resetXDPData is the reset of an XDP run for a new packet, data, when
// everything else of its input is what the last reset had:
// bpf_prog_test_run_xdp's set-up cut to what a packet changes (the
// headroom and tail the last packet covered cleared, the copy, the
// pointers). A ctx_in (ctx) may come with it if the reset before had one
// that differs only in data_end, which must be the packet's end (the
// metadata of the same length, the same interface fields): replays that
// pass metadata (a capture's timestamps) reset so per packet. The shadow
// xdp_md is read-only to programs and its interface fields stay those of
// the reset before; the regions stay too, since the frame buffer does. It
// reports false, having changed nothing, where a full reset is needed: a
// ctx_in now and not before or the reverse, or one that differs in more,
// what a run left (a redirect, tunnel metadata, clones, an assigned
// socket, a cgroup retval), or a packet the full reset must refuse.
func (r *Run) resetXDPData(data, ctx []byte) bool {
	x := r.xdp
	n := len(data)
	if x == nil || r.hasRd || r.cgRetval != 0 || r.ctxLimited ||
		r.net.tunnel != nil || len(r.net.clones) != 0 || r.net.assigned >= 0 {
		return false
	}
	meta := 0
	switch {
	case ctx == nil && x.ctxIn != nil, ctx != nil && !sameXDPContext(x.ctxIn, ctx, n):
		return false
	case ctx != nil:
		meta = int(le.Uint32(ctx[xdpData:])) // checked by the full reset before
	}
	if n-meta < ethHLen || n-meta > xdpHardEnd-XDPPacketHeadroom {
		return false
	}
	start, end := XDPPacketHeadroom-meta, XDPPacketHeadroom-meta+n
	if x.lo < x.hi {
		// The copy below overwrites [start, end): clear what it does not.
		if lo, hi := x.lo, min(x.hi, start); lo < hi {
			clear(x.buf[lo:hi])
		}
		if lo, hi := max(x.lo, end), x.hi; lo < hi {
			clear(x.buf[lo:hi])
		}
	}
	copy(x.buf[start:end], data)
	x.meta, x.data, x.end = start, XDPPacketHeadroom, end
	if ctx != nil {
		le.PutUint32(x.ctxIn[xdpDataEnd:], uint32(n))
	}
	x.lo, x.hi = xdpFrameSize, 0
	r.syncXDP()
	return true
}

// XDPFrame is the frame of an XDP run as a packet batch
// (engine.PacketBatch) uses it: packets are copied to Frame, the start
// of the frame's data, which has Room bytes for them; Used bytes are the
// packet now there; Min is the shortest packet a run takes (an Ethernet
// header); Ends are the addresses of the words that get a packet's end
// (data_end in the shadow xdp_md, the packet region's bound).
type XDPFrame struct {
	Frame           uintptr
	Min, Room, Used int
	Ends            [2]uintptr
}

// XDPBatchFrame returns the frame of an XDP run for runs that replace
// only the packet, each copying its packet to the start of the frame's
// data. ok is false, and a run needs a reset (ResetRunData), where the
// frame is not that of a plain packet: the run is not XDP, has a ctx_in
// (metadata, interface fields), or left more than its packet (moved
// pointers, a redirect, tunnel metadata, ...). After such runs,
// SetXDPPacket makes the Run's state the last packet's.
func (r *Run) XDPBatchFrame() (f XDPFrame, ok bool) {
	x := r.xdp
	if x == nil || x.ctxIn != nil || r.hasRd || r.cgRetval != 0 || r.ctxLimited ||
		r.net.tunnel != nil || len(r.net.clones) != 0 || r.net.assigned >= 0 ||
		x.meta != XDPPacketHeadroom || x.data != XDPPacketHeadroom || x.lo != XDPPacketHeadroom || x.hi != x.end {
		return f, false
	}
	return XDPFrame{
		Frame: uintptr(mem.Addr(x.buf)) + XDPPacketHeadroom,
		Min:   ethHLen,
		Room:  xdpHardEnd - XDPPacketHeadroom,
		Used:  x.end - XDPPacketHeadroom,
		Ends:  [2]uintptr{uintptr(mem.Addr(r.shadow)) + rtXDPDataEnd, uintptr(mem.SliceAddr(x.bounds[:])) + 8},
	}, true
}

// SetXDPPacket makes the Run's state that of its frame holding a packet
// of n bytes, which a packet batch copied into the frame XDPBatchFrame
// gave (with its tail past n zeroed): the state ResetRunData would have
// left for that packet.
func (r *Run) SetXDPPacket(n int) {
	x := r.xdp
	x.meta, x.data, x.end = XDPPacketHeadroom, XDPPacketHeadroom, XDPPacketHeadroom+n
	x.lo, x.hi = xdpFrameSize, 0
	r.syncXDP()
}

// sameXDPContext reports whether ctx, a whole xdp_md, is last (the ctx_in
// of the reset before, as ctxIn kept it) but for data_end, which is n: the
// end of a packet of n bytes, metadata included.
func sameXDPContext(last, ctx []byte, n int) bool {
	if len(last) != xdpSize || len(ctx) != xdpSize || int(le.Uint32(ctx[xdpDataEnd:])) != n {
		return false
	}
	return string(ctx[:xdpDataEnd]) == string(last[:xdpDataEnd]) && string(ctx[xdpDataEnd+4:]) == string(last[xdpDataEnd+4:])
}

// syncXDP writes the packet pointers into the shadow xdp_md and the
// packet's Regions.
func (r *Run) syncXDP() {
	x := r.xdp
	base := mem.Addr(x.buf)
	data, end, meta := base+uint64(x.data), base+uint64(x.end), base+uint64(x.meta)
	sh := (*[rtXDPSize]byte)(r.shadow)
	le.PutUint64(sh[rtXDPData:], data)
	le.PutUint64(sh[rtXDPDataEnd:], end)
	le.PutUint64(sh[rtXDPDataMeta:], meta)
	x.bounds = [2]uint64{data, end}
	x.metaBounds = [2]uint64{meta, data}
	x.lo, x.hi = min(x.lo, x.meta), max(x.hi, x.end)
}

// finishXDP is the end of bpf_prog_test_run_xdp: data_out from data_meta
// to data_end, and xdp_convert_buff_to_md into ctx_out.
func (r *Run) finishXDP(out *Output, parts OutputParts) {
	x := r.xdp
	if parts&OutputData != 0 {
		out.Data = x.buf[x.meta:x.end]
	}
	if x.ctxIn != nil && parts&OutputContext != 0 {
		ctx := r.ctxOutBuf(len(x.ctxIn))
		copy(ctx, x.ctxIn)
		le.PutUint32(ctx[xdpData:], uint32(x.data-x.meta))
		le.PutUint32(ctx[xdpDataEnd:], uint32(x.end-x.meta))
		out.Context = ctx
	}
}
