package progtype

import (
	"fmt"
	"net/netip"

	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/netenv"
)

// The socket buffer of a run, as bpf_prog_test_run_skb (net/bpf/test_run.c)
// builds it: data_in after NET_SKB_PAD bytes of headroom, the Ethernet
// header parsed by eth_type_trans on the loopback device, and for tc
// programs skb->data back at the MAC header.
//
// The buffer has a fixed size, so the packet never moves to another buffer
// during a run and an engine's regions stay valid: the kernel reallocates
// an skb that needs more head- or tailroom, waggle moves the packet within
// its buffer, which programs cannot tell apart (helpers that change the
// packet invalidate packet pointers in both). A packet that would outgrow
// the buffer makes the helper fail with -ENOMEM.
const (
	netSKBPad = 64 // NET_SKB_PAD + NET_IP_ALIGN on x86-64
	// skbMaxLen is BPF_SKB_MAX_LEN, SKB_MAX_ALLOC: the longest packet
	// bpf_skb_change_tail, _change_head and _adjust_room make.
	skbMaxLen = 4*4096 - skbSharedInfo
	// skbMaxDataIn is the largest data_in the test run accepts
	// (bpf_test_init: PAGE_SIZE - headroom - tailroom).
	skbMaxDataIn = 4096 - netSKBPad - skbSharedInfo
	skbBufSize   = netSKBPad + skbMaxLen + 4096
	// gsoLegacyMaxSize is GSO_LEGACY_MAX_SIZE, the largest wire_len.
	gsoLegacyMaxSize = 65536
	gsoMaxSegs       = 65535 // GSO_MAX_SEGS
)

// Socket buffer constants (include/uapi/linux/if_ether.h, if_packet.h,
// include/linux/skbuff.h).
const (
	ethPIP      = 0x0800
	ethPIPv6    = 0x86dd
	ethP8021Q   = 0x8100
	ethP8021AD  = 0x88a8
	ethP8023    = 0x0001 // ETH_P_802_3
	ethP8022    = 0x0004 // ETH_P_802_2
	ethP8023Min = 0x0600
	vlanHLen    = 4

	packetHost      = 0
	packetMulticast = 2
	packetOtherHost = 3

	checksumNone        = 0
	checksumUnnecessary = 1
	checksumComplete    = 2

	afInet  = 2
	afInet6 = 10
)

// FlagSkbChecksumComplete is BPF_F_TEST_SKB_CHECKSUM_COMPLETE: the packet
// starts with ip_summed = CHECKSUM_COMPLETE and skb->csum computed from the
// network header on; after the run the checksum the helpers maintained must
// match the packet, or the run fails with EBADMSG.
const FlagSkbChecksumComplete = 1 << 2

// TC actions (include/uapi/linux/pkt_cls.h).
const (
	TCActUnspec     = -1
	TCActOK         = 0
	TCActReclassify = 1
	TCActShot       = 2
	TCActPipe       = 3
	TCActStolen     = 4
	TCActQueued     = 5
	TCActRepeat     = 6
	TCActRedirect   = 7
)

// skbState is the sk_buff of a run. Offsets are into buf; be16 values
// (protocol, vlan_proto) are kept as they lie in memory, read
// little-endian, as the kernel's __be16 fields are.
type skbState struct {
	buf        []byte
	data, tail int  // skb->data and skb->data + skb->len
	mac        int  // skb->mac_header
	network    int  // skb->network_header
	transport  int  // skb->transport_header, -1 if unset
	l2         bool // tc: skb->data at the MAC header
	writable   bool // programs may write the packet directly (tc, lwt_xmit)
	direct     bool // data_end and data_meta are computed (tc, cgroup_skb)
	protocol   uint16
	pktType    uint8
	vlanProto  uint16
	vlanTCI    uint16
	hash       uint32
	swHash     bool
	l4Hash     bool
	ipSummed   uint8
	csum       uint32
	csumLevel  uint8
	encap      bool // skb->encapsulation
	gsoSize    uint32
	gsoSegs    uint32
	lo, hi     int // the part of buf used since the last reset
	ctxIn      []byte
	// bounds are the addresses of data and data_end, the Bounds of the
	// packet's Region (direct access only).
	bounds [2]uint64
}

// be16 returns the in-memory (network order) form of a host-order value.
func be16(v uint16) uint16 { return v>>8 | v<<8 }

// resetSKB is bpf_prog_test_run_skb's set-up: data_in copied after the
// headroom, eth_type_trans, the IP header checks, and convert___skb_to_skb
// for the ctx_in fields the kernel accepts (mark, priority,
// ingress_ifindex, ifindex, cb, tstamp, wire_len, gso_segs, gso_size,
// hwtstamp; every other byte must be zero).
func (r *Run) resetSKB(in *Input) error {
	if in.Flags&^FlagSkbChecksumComplete != 0 {
		return einval("flags %#x: only BPF_F_TEST_SKB_CHECKSUM_COMPLETE is accepted", in.Flags)
	}
	if len(in.Data) < ethHLen {
		return einval("data_in of %d bytes: a socket buffer needs at least an Ethernet header (%d bytes)", len(in.Data), ethHLen)
	}
	if len(in.Data) > skbMaxDataIn {
		return einval("data_in of %d bytes: the test run takes at most %d", len(in.Data), skbMaxDataIn)
	}
	s := r.skb
	if s == nil {
		s = &skbState{buf: mem.Aligned(skbBufSize)}
		r.skb = s
	} else {
		clear(s.buf[s.lo:s.hi])
	}
	*s = skbState{buf: s.buf}
	t := r.kind.typ
	s.l2 = t == SchedCLS || t == SchedACT
	s.direct = t != SocketFilter
	s.writable = s.l2 || t == LWTXmit
	var zero [skbSize]byte
	ctx := zero[:]
	if in.Context != nil {
		c, err := r.ctxIn(in.Context, skbSize, "__sk_buff")
		if err != nil {
			return err
		}
		ctx = c
		s.ctxIn = c
		if err := checkSkbCtxIn(ctx); err != nil {
			return err
		}
	}
	// slab_build_skb, skb_reserve, __skb_put, eth_type_trans.
	s.data = netSKBPad
	copy(s.buf[s.data:], in.Data)
	s.tail = s.data + len(in.Data)
	s.lo, s.hi = s.data, s.tail
	s.mac = s.data
	s.transport = -1
	// eth_skb_pkt_type against the loopback device, whose address and
	// broadcast address are both 00:00:00:00:00:00: a multicast
	// destination is never the broadcast address.
	dst := s.buf[s.mac : s.mac+6]
	switch {
	case allZero(dst):
		s.pktType = packetHost
	case dst[0]&1 == 0:
		s.pktType = packetOtherHost
	default:
		s.pktType = packetMulticast
	}
	proto := le.Uint16(s.buf[s.mac+12:])
	switch {
	case proto&0x00ff >= 0x06: // eth_proto_is_802_3 on a little-endian CPU
		s.protocol = proto
	case len(in.Data) >= ethHLen+2 && le.Uint16(s.buf[s.mac+ethHLen:]) == 0xffff:
		s.protocol = be16(ethP8023)
	default:
		s.protocol = be16(ethP8022)
	}
	s.data += ethHLen
	s.network = s.data
	// ctx_in's ifindex names the device (the loopback device, 1, by
	// default); waggle does not check it against the host's devices,
	// where the kernel answers ENODEV for one that does not exist.
	ifindex := le.Uint32(ctx[skbIfindex:])
	if ifindex <= 1 {
		ifindex = 1
	}
	// The packet's socket: Input.Socket, or the test run's (sk_alloc with
	// bpf_dummy_proto, then sock_init_data): no protocol, state TCP_CLOSE,
	// no queue, its family and addresses from the IP header.
	headLen := s.tail - s.data
	switch {
	case s.protocol == be16(ethPIP) && headLen < 20:
		return einval("an IPv4 packet of %d bytes after the Ethernet header: the IP header needs 20", headLen)
	case s.protocol == be16(ethPIPv6) && headLen < 40:
		return einval("an IPv6 packet of %d bytes after the Ethernet header: the IPv6 header needs 40", headLen)
	}
	if in.Socket != nil {
		r.net.setOwn(in.Socket)
	} else {
		r.putTestRunSock()
	}
	r.skbSocketFields()
	if s.l2 {
		s.data -= ethHLen
	}
	// convert___skb_to_skb
	length := uint32(s.tail - s.data)
	wire := le.Uint32(ctx[skbWireLen:])
	if wire == 0 {
		wire = length
	} else if wire < length || wire > gsoLegacyMaxSize {
		return einval("ctx_in: wire_len %d must lie between the packet length %d and %d", wire, length, gsoLegacyMaxSize)
	}
	segs := le.Uint32(ctx[skbGSOSegs:])
	if segs > gsoMaxSegs {
		return einval("ctx_in: gso_segs %d is above %d", segs, gsoMaxSegs)
	}
	s.gsoSegs, s.gsoSize = segs&0xffff, le.Uint32(ctx[skbGSOSize:])&0xffff
	sh := r.shadow
	le.PutUint32(sh[rtSkbMark:], le.Uint32(ctx[skbMark:]))
	le.PutUint32(sh[rtSkbPriority:], le.Uint32(ctx[skbPriority:]))
	le.PutUint32(sh[rtSkbIngress:], le.Uint32(ctx[skbIngressIfindex:]))
	le.PutUint32(sh[rtSkbIfindex:], ifindex)
	le.PutUint64(sh[rtSkbTstamp:], le.Uint64(ctx[skbTstamp:]))
	copy(sh[rtSkbCB:rtSkbCB+cbSize], ctx[skbCB:skbCB+cbSize])
	le.PutUint32(sh[rtSkbWireLen:], wire)
	le.PutUint64(sh[rtSkbHwtstamp:], le.Uint64(ctx[skbHwtstamp:]))
	if in.Flags&FlagSkbChecksumComplete != 0 {
		s.ipSummed = checksumComplete
		s.csum = csumPartial(s.buf[s.network:s.tail], 0)
	}
	r.syncSKB()
	return nil
}

// checkSkbCtxIn is convert___skb_to_skb's rule that ctx_in is zero outside
// the fields it takes.
func checkSkbCtxIn(ctx []byte) error {
	taken := [][2]int{
		{skbMark, 4}, {skbPriority, 4}, {skbIngressIfindex, 4}, {skbIfindex, 4},
		{skbCB, cbSize}, {skbTstamp, 8}, {skbWireLen, 4}, {skbGSOSegs, 4},
		{skbGSOSize, 4}, {skbHwtstamp, 8},
	}
next:
	for i, b := range ctx {
		if b == 0 {
			continue
		}
		for _, f := range taken {
			if i >= f[0] && i < f[0]+f[1] {
				continue next
			}
		}
		return einval("ctx_in: %s is not zero; the test run takes only mark, priority, ingress_ifindex, ifindex, cb, tstamp, wire_len, gso_segs, gso_size and hwtstamp", skbLayout.describe(i))
	}
	return nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// syncSKB writes the fields the sk_buff determines into the shadow
// __sk_buff: after the set-up and after every helper that changes them.
func (r *Run) syncSKB() {
	s, sh := r.skb, r.shadow
	base := mem.Addr(s.buf)
	le.PutUint32(sh[rtSkbLen:], uint32(s.tail-s.data))
	le.PutUint32(sh[rtSkbPktType:], uint32(s.pktType))
	le.PutUint32(sh[rtSkbProtocol:], uint32(s.protocol))
	vlanPresent := uint32(0)
	if s.vlanProto != 0 || s.vlanTCI != 0 {
		vlanPresent = 1
	}
	le.PutUint32(sh[rtSkbVlanPresent:], vlanPresent)
	le.PutUint32(sh[rtSkbVlanTCI:], uint32(s.vlanTCI))
	le.PutUint32(sh[rtSkbVlanProto:], uint32(s.vlanProto))
	le.PutUint32(sh[rtSkbHash:], s.hash)
	le.PutUint32(sh[rtSkbGSOSegs:], s.gsoSegs)
	le.PutUint32(sh[rtSkbGSOSize:], s.gsoSize)
	data := base + uint64(s.data)
	le.PutUint64(sh[rtSkbData:], data)
	if s.direct {
		// bpf_compute_data_pointers; data_meta is data (no metadata).
		le.PutUint64(sh[rtSkbDataEnd:], base+uint64(s.tail))
		le.PutUint64(sh[rtSkbDataMeta:], data)
		s.bounds = [2]uint64{data, base + uint64(s.tail)}
	}
	if s.data < s.lo {
		s.lo = s.data
	}
	if s.tail > s.hi {
		s.hi = s.tail
	}
}

// finishSKB is the end of bpf_prog_test_run_skb: the Ethernet header pushed
// back (zeroed) for types that run at the network header, the
// CHECKSUM_COMPLETE check, and convert_skb_to___skb into ctx_out.
func (r *Run) finishSKB(out *Output, parts OutputParts) error {
	s, sh := r.skb, r.shadow
	data := s.data
	if !s.l2 {
		if data < ethHLen {
			return fmt.Errorf("no headroom for the Ethernet header: %w", maps.ENOMEM)
		}
		data -= ethHLen
		clear(s.buf[data:s.data])
	}
	if r.in.Flags&FlagSkbChecksumComplete != 0 {
		var sum uint32
		if s.network <= s.tail {
			sum = csumPartial(s.buf[s.network:s.tail], 0)
		}
		if csumFold(s.csum) != csumFold(sum) {
			return fmt.Errorf("skb->csum does not match the packet after the run: %w", errEBADMSG)
		}
	}
	if parts&OutputData != 0 {
		out.Data = s.buf[data:s.tail]
	}
	if parts&OutputContext == 0 {
		return nil
	}
	ctx := r.ctxOutBuf(skbSize)
	copy(ctx, s.ctxIn)
	le.PutUint32(ctx[skbMark:], le.Uint32(sh[rtSkbMark:]))
	le.PutUint32(ctx[skbPriority:], le.Uint32(sh[rtSkbPriority:]))
	le.PutUint32(ctx[skbIngressIfindex:], le.Uint32(sh[rtSkbIngress:]))
	le.PutUint32(ctx[skbIfindex:], le.Uint32(sh[rtSkbIfindex:]))
	le.PutUint64(ctx[skbTstamp:], le.Uint64(sh[rtSkbTstamp:]))
	copy(ctx[skbCB:skbCB+cbSize], sh[rtSkbCB:rtSkbCB+cbSize])
	le.PutUint32(ctx[skbWireLen:], le.Uint32(sh[rtSkbWireLen:]))
	le.PutUint32(ctx[skbGSOSegs:], s.gsoSegs)
	le.PutUint64(ctx[skbHwtstamp:], le.Uint64(sh[rtSkbHwtstamp:]))
	out.Context = ctx
	return nil
}

// errEBADMSG is the errno of a CHECKSUM_COMPLETE mismatch.
const errEBADMSG = maps.Errno(74)

// SKF_NET_OFF and SKF_LL_OFF (include/uapi/linux/filter.h): legacy packet
// loads at offsets from these on read relative to the network header and
// the MAC header.
const (
	skfNetOff = -0x100000
	skfLLOff  = -0x200000
)

// LoadPacket implements helpers.PacketLoader for the socket buffer types:
// bpf_skb_load_helper_* (net/core/filter.c). An offset from 0 on is from
// skb->data (the MAC header for tc, the network header for socket filters
// and cgroup_skb), one from SKF_NET_OFF on from the network header and one
// from SKF_LL_OFF on from the MAC header; the bytes must lie between the
// head of the buffer and the end of the packet, and anything else fails.
// It reads the packet as the helpers the program called left it.
func (r *Run) LoadPacket(off int32, n int) ([]byte, bool) {
	s := r.skb
	if s == nil || n <= 0 {
		return nil, false
	}
	var at int64
	switch {
	case off >= 0:
		at = int64(s.data) + int64(off)
	case off >= skfNetOff:
		at = int64(s.network) + int64(off) - skfNetOff
	case off >= skfLLOff:
		at = int64(s.mac) + int64(off) - skfLLOff
	default:
		return nil, false
	}
	if at < 0 || at+int64(n) > int64(s.tail) {
		return nil, false
	}
	return s.buf[at : at+int64(n)], true
}

// putTestRunSock makes BPF_PROG_TEST_RUN's socket the run's own (net.go):
// the packet's family and addresses (the source as the local address),
// no protocol, state TCP_CLOSE, cookie TestRunSocketCookie.
func (r *Run) putTestRunSock() {
	s := r.skb
	own := &r.net.ownBuf
	*own = netenv.Socket{Cookie: TestRunSocketCookie, State: netenv.SockClose}
	b := r.net.ownSlot()
	clear(b)
	le.PutUint32(b[bskState:], tcpClose)
	le.PutUint32(b[bskRxQueueMapping:], 0xffffffff)
	switch s.protocol {
	case be16(ethPIP):
		le.PutUint32(b[bskFamily:], afInet)
		copy(b[bskSrcIP4:bskSrcIP4+4], s.buf[s.network+12:])
		copy(b[bskDstIP4:bskDstIP4+4], s.buf[s.network+16:])
		own.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[bskSrcIP4:])), 0)
		own.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[bskDstIP4:])), 0)
	case be16(ethPIPv6):
		le.PutUint32(b[bskFamily:], afInet6)
		copy(b[bskSrcIP6:bskSrcIP6+16], s.buf[s.network+8:])
		copy(b[bskDstIP6:bskDstIP6+16], s.buf[s.network+24:])
		own.Local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[bskSrcIP6:])), 0)
		own.Remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[bskDstIP6:])), 0)
	}
}

// skbSocketFields points __sk_buff.sk to the packet's socket and fills the
// __sk_buff fields the kernel reads from it (bpf_convert_ctx_access):
// family, the addresses (local is the socket's own) and the ports
// (remote_port the __be16 in the upper half, as a little-endian CPU loads
// it).
func (r *Run) skbSocketFields() {
	b, sh := r.net.ownSlot(), r.shadow
	le.PutUint64(sh[rtSkbSk:], r.net.sockAddr(r.net.ownIndex()))
	le.PutUint32(sh[rtSkbFamily:], le.Uint32(b[bskFamily:]))
	copy(sh[rtSkbLocalIP4:rtSkbLocalIP4+4], b[bskSrcIP4:])
	copy(sh[rtSkbRemoteIP4:rtSkbRemoteIP4+4], b[bskDstIP4:])
	copy(sh[rtSkbLocalIP6:rtSkbLocalIP6+16], b[bskSrcIP6:])
	copy(sh[rtSkbRemoteIP6:rtSkbRemoteIP6+16], b[bskDstIP6:])
	le.PutUint32(sh[rtSkbRemotePort:], uint32(le.Uint16(b[bskDstPort:]))<<16)
	le.PutUint32(sh[rtSkbLocalPort:], le.Uint32(b[bskSrcPort:]))
}
