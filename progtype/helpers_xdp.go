package progtype

import (
	"fmt"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/maps"
)

// Prototypes shared by several helpers.
// changesPkt returns p for a helper that may move or resize the packet
// (bpf_helper_changes_pkt_data).
func changesPkt(p helpers.Proto) helpers.Proto {
	p.ChangesPktData = true
	return p
}

var (
	protoCtx         = helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx}}
	protoCtxAny      = helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything}}
	protoCtxAnyAny   = helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgAnything}}
	protoCtxAny3     = helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgAnything, helpers.ArgAnything}}
	protoCtxAny4     = helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgAnything, helpers.ArgAnything, helpers.ArgAnything}}
	protoAnyAny      = helpers.Proto{Args: []helpers.ArgType{helpers.ArgAnything, helpers.ArgAnything}}
	protoLoadBytes   = helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgPtrToUninitMem, helpers.ArgConstSize}}
	protoStoreBytes4 = helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize}}
)

// xdpOf returns the XDP state of the calling program's run.
func xdpOf(env helpers.Env) (*Run, *xdpState, error) {
	r, err := runOf(env)
	if err != nil {
		return nil, nil, err
	}
	if r.xdp == nil {
		return nil, nil, fmt.Errorf("%w: an XDP helper in a %s run", ErrNoRun, r.kind.name)
	}
	return r, r.xdp, nil
}

// XDPAdjustHead is bpf_xdp_adjust_head (net/core/filter.c): move data by
// offset bytes (negative: into the headroom, down to the end of the
// xdp_frame area plus the metadata), keeping at least an Ethernet header;
// the metadata moves along.
func XDPAdjustHead(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, x, err := xdpOf(env)
	if err != nil {
		return 0, err
	}
	off := int(int32(args[1]))
	metalen := x.data - x.meta
	data := x.data + off
	if data < xdpFrameStruct+metalen || data > x.end-ethHLen {
		return errno(maps.EINVAL), nil
	}
	if metalen != 0 {
		copy(x.buf[x.meta+off:], x.buf[x.meta:x.data])
	}
	x.meta += off
	x.data = data
	r.syncXDP()
	return 0, nil
}

// XDPAdjustTail is bpf_xdp_adjust_tail: move data_end by offset bytes,
// up to the tailroom the skb_shared_info needs, keeping at least an
// Ethernet header; grown bytes are zeroed.
func XDPAdjustTail(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, x, err := xdpOf(env)
	if err != nil {
		return 0, err
	}
	off := int(int32(args[1]))
	end := x.end + off
	if end > xdpHardEnd || end < x.data+ethHLen {
		return errno(maps.EINVAL), nil
	}
	if off > 0 {
		clear(x.buf[x.end:end])
	}
	x.end = end
	r.syncXDP()
	return 0, nil
}

// XDPAdjustMeta is bpf_xdp_adjust_meta: move data_meta by offset bytes,
// between the end of the xdp_frame area and data; the metadata must stay a
// multiple of 4 bytes and at most 255 (-EACCES otherwise).
func XDPAdjustMeta(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, x, err := xdpOf(env)
	if err != nil {
		return 0, err
	}
	meta := x.meta + int(int32(args[1]))
	if meta < xdpFrameStruct || meta > x.data {
		return errno(maps.EINVAL), nil
	}
	if n := x.data - meta; n%4 != 0 || n > xdpMaxMeta {
		return errno(eACCES), nil
	}
	x.meta = meta
	r.syncXDP()
	return 0, nil
}

// eACCES is the errno bpf_xdp_adjust_meta returns for bad metadata sizes.
const eACCES = maps.Errno(13)

// XDPGetBuffLen is bpf_xdp_get_buff_len: the packet's length (waggle's
// XDP buffers have no frags).
func XDPGetBuffLen(env helpers.Env, args *[5]uint64) (uint64, error) {
	_, x, err := xdpOf(env)
	if err != nil {
		return 0, err
	}
	return uint64(x.end - x.data), nil
}

// xdpPointer is bpf_xdp_pointer's bounds check.
func xdpPointer(x *xdpState, off, n uint64) ([]byte, maps.Errno) {
	if off > 0xffff || n > 0xffff {
		return nil, maps.EFAULT
	}
	if off+n > uint64(x.end-x.data) {
		return nil, maps.EINVAL
	}
	return x.buf[x.data+int(off) : x.data+int(off+n)], 0
}

// XDPLoadBytes is bpf_xdp_load_bytes: copy len bytes at offset from data
// into the program's buffer.
func XDPLoadBytes(env helpers.Env, args *[5]uint64) (uint64, error) {
	_, x, err := xdpOf(env)
	if err != nil {
		return 0, err
	}
	n := uint64(uint32(args[3]))
	dst, err := env.Memory(args[2], n, true)
	if err != nil {
		return 0, err
	}
	src, e := xdpPointer(x, uint64(uint32(args[1])), n)
	if e != 0 {
		return errno(e), nil
	}
	copy(dst, src)
	return 0, nil
}

// XDPStoreBytes is bpf_xdp_store_bytes: copy len bytes from the program's
// buffer into the packet at offset from data.
func XDPStoreBytes(env helpers.Env, args *[5]uint64) (uint64, error) {
	_, x, err := xdpOf(env)
	if err != nil {
		return 0, err
	}
	n := uint64(uint32(args[3]))
	src, err := env.Memory(args[2], n, false)
	if err != nil {
		return 0, err
	}
	dst, e := xdpPointer(x, uint64(uint32(args[1])), n)
	if e != 0 {
		return errno(e), nil
	}
	copy(dst, src)
	return 0, nil
}

// Redirect flags (include/uapi/linux/bpf.h).
const (
	FlagIngress        = 1 << 0 // BPF_F_INGRESS
	FlagBroadcast      = 1 << 3 // BPF_F_BROADCAST
	FlagExcludeIngress = 1 << 4 // BPF_F_EXCLUDE_INGRESS
)

// RedirectXDP is bpf_redirect for XDP programs (bpf_xdp_redirect): record
// ifindex as the target and return XDP_REDIRECT; any flag makes it return
// XDP_ABORTED. In user space the target is reported in Output.Redirect.
func RedirectXDP(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := xdpOf(env)
	if err != nil {
		return 0, err
	}
	if args[1] != 0 {
		return XDPAborted, nil
	}
	r.rd, r.hasRd = Redirect{Ifindex: uint32(args[0])}, true
	return XDPRedirect, nil
}

// RedirectMapXDP is bpf_redirect_map for XDP programs
// (__bpf_xdp_redirect_map in net/core/filter.c with the map types'
// map_redirect): look key (truncated to u32, as the maps' lookup takes it)
// up in a devmap, devmap_hash, cpumap or xskmap (maps.Redirector); on
// success, or with BPF_F_BROADCAST for a devmap, record the target and
// return XDP_REDIRECT; otherwise return the action in the low bits of
// flags. Unknown flags give XDP_ABORTED.
func RedirectMapXDP(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := xdpOf(env)
	if err != nil {
		return 0, err
	}
	m, err := env.State().Maps.Resolve(args[0])
	if err != nil {
		return 0, fmt.Errorf("bpf_redirect_map: %w", err)
	}
	spec := m.Spec()
	rdr, ok := m.(maps.Redirector)
	if !ok {
		return 0, fmt.Errorf("bpf_redirect_map: map %q is a %s, not a devmap, cpumap or xskmap", spec.Name, spec.Type)
	}
	const actionMask = XDPAborted | XDPDrop | XDPPass | XDPTX
	var flagMask uint64
	if spec.Type == maps.DevMap || spec.Type == maps.DevMapHash {
		flagMask = FlagBroadcast | FlagExcludeIngress
	}
	flags := args[2]
	if flags&^(actionMask|flagMask) != 0 {
		return XDPAborted, nil
	}
	key := uint32(args[1])
	entry, found := rdr.RedirectTarget(uint64(key))
	if !found && flags&FlagBroadcast == 0 {
		r.rd, r.hasRd = Redirect{}, false
		return flags & actionMask, nil
	}
	rd := Redirect{Map: m, Key: key, Flags: flags}
	if found {
		rd.Entry = entry
		if spec.Type == maps.DevMap || spec.Type == maps.DevMapHash {
			rd.Ifindex = entry.Value
		}
	}
	r.rd, r.hasRd = rd, true
	return XDPRedirect, nil
}

// xdpDefs are the XDP-specific helpers.
var xdpDefs = helpers.Defs{
	{ID: helpers.IDPerfEventOutput, Name: "perf_event_output", Proto: protoEventOutput, Func: XDPEventOutput},
	{ID: idXDPAdjustHead, Name: "xdp_adjust_head", Proto: changesPkt(protoCtxAny), Func: XDPAdjustHead},
	{ID: idXDPAdjustTail, Name: "xdp_adjust_tail", Proto: changesPkt(protoCtxAny), Func: XDPAdjustTail},
	{ID: idXDPAdjustMeta, Name: "xdp_adjust_meta", Proto: changesPkt(protoCtxAny), Func: XDPAdjustMeta},
	{ID: idXDPGetBuffLen, Name: "xdp_get_buff_len", Proto: protoCtx, Func: XDPGetBuffLen},
	{ID: idXDPLoadBytes, Name: "xdp_load_bytes", Proto: protoLoadBytes, Func: XDPLoadBytes},
	{ID: idXDPStoreBytes, Name: "xdp_store_bytes", Proto: protoStoreBytes4, Func: XDPStoreBytes},
	{ID: idRedirect, Name: "redirect", Proto: protoAnyAny, Func: RedirectXDP},
	{ID: idRedirectMap, Name: "redirect_map", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgConstMapPtr, helpers.ArgAnything, helpers.ArgAnything}}, Func: RedirectMapXDP},
	{ID: idCsumDiff, Name: "csum_diff", Proto: protoCsumDiff, Func: CsumDiff},
}
