package progtype

import (
	"net/netip"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/netenv"
)

// The helpers that ask the host about its network (net/core/filter.c),
// answered from the run's netenv.Host.

// bpf_fib_lookup flags and results (include/uapi/linux/bpf.h).
const (
	FibLookupDirect    = 1 << 0 // BPF_FIB_LOOKUP_DIRECT
	FibLookupOutput    = 1 << 1 // BPF_FIB_LOOKUP_OUTPUT
	FibLookupSkipNeigh = 1 << 2 // BPF_FIB_LOOKUP_SKIP_NEIGH
	FibLookupTBID      = 1 << 3 // BPF_FIB_LOOKUP_TBID
	FibLookupSrc       = 1 << 4 // BPF_FIB_LOOKUP_SRC
	FibLookupMark      = 1 << 5 // BPF_FIB_LOOKUP_MARK
	fibLookupMask      = FibLookupDirect | FibLookupOutput | FibLookupSkipNeigh | FibLookupTBID | FibLookupSrc | FibLookupMark

	FibRetSuccess     = 0 // BPF_FIB_LKUP_RET_SUCCESS
	FibRetBlackhole   = 1 // BPF_FIB_LKUP_RET_BLACKHOLE
	FibRetUnreachable = 2 // BPF_FIB_LKUP_RET_UNREACHABLE
	FibRetProhibit    = 3 // BPF_FIB_LKUP_RET_PROHIBIT
	FibRetNotFwded    = 4 // BPF_FIB_LKUP_RET_NOT_FWDED
	FibRetFwdDisabled = 5 // BPF_FIB_LKUP_RET_FWD_DISABLED
	FibRetUnsuppLWT   = 6 // BPF_FIB_LKUP_RET_UNSUPP_LWT
	FibRetNoNeigh     = 7 // BPF_FIB_LKUP_RET_NO_NEIGH
	FibRetFragNeeded  = 8 // BPF_FIB_LKUP_RET_FRAG_NEEDED
	FibRetNoSrcAddr   = 9 // BPF_FIB_LKUP_RET_NO_SRC_ADDR
)

// struct bpf_fib_lookup (64 bytes).
const (
	fibSize     = 64
	fibFamily   = 0
	fibL4Proto  = 1
	fibSport    = 2
	fibDport    = 4
	fibTotLen   = 6 // tot_len in, mtu_result out
	fibIfindex  = 8
	fibTOS      = 12 // tos / flowinfo in, rt_metric out
	fibSrc      = 16
	fibDst      = 32
	fibVlan     = 48 // h_vlan_proto, h_vlan_TCI out; tbid in
	fibMark     = 52 // mark in; smac out
	fibSMAC     = 52
	fibDMAC     = 58
	vlanHLenMTU = 4 // VLAN_HLEN, which is_skb_forwardable allows beyond the MTU
)

// fibLookup is bpf_ipv4_fib_lookup and bpf_ipv6_fib_lookup: route the
// flow params describe, and write the result back into params as Linux
// does, field by field, on the paths where Linux writes them.
func fibLookup(h *netenv.Host, p []byte, flags uint32, checkMTU bool) (int64, uint32) {
	v6 := p[fibFamily] == afInet6
	ifindex := int(le.Uint32(p[fibIfindex:]))
	q := netenv.RouteQuery{Proto: p[fibL4Proto], SPort: be.Uint16(p[fibSport:]), DPort: be.Uint16(p[fibDport:])}
	if v6 {
		q.Dst, q.Src = netip.AddrFrom16([16]byte(p[fibDst:fibDst+16])), netip.AddrFrom16([16]byte(p[fibSrc:fibSrc+16]))
		if needStrict6(q.Dst) || needStrict6(q.Src) {
			return FibRetNotFwded, 0
		}
	} else {
		q.Dst, q.Src = netip.AddrFrom4([4]byte(p[fibDst:fibDst+4])), netip.AddrFrom4([4]byte(p[fibSrc:fibSrc+4]))
		q.TOS = p[fibTOS]
	}
	dev, ok := h.Interface(ifindex)
	if !ok {
		return -int64(maps.ENODEV), 0
	}
	if !v6 && !dev.Forwarding || v6 && !dev.Forwarding6 {
		return FibRetFwdDisabled, 0
	}
	if flags&FibLookupOutput != 0 {
		q.IIf, q.OIf = 1, ifindex
	} else {
		q.IIf = ifindex
		if v6 {
			q.OIf = ifindex // bpf_ipv6_fib_lookup: oif = fl6.flowi6_iif
		}
	}
	if flags&FibLookupDirect != 0 {
		q.Table = netenv.TableMain
		if flags&FibLookupTBID != 0 {
			q.Table = le.Uint32(p[fibVlan:])
			le.PutUint32(p[fibVlan:], 0) // zeroed for the VLAN output
		}
	} else if flags&FibLookupMark != 0 {
		q.Mark = le.Uint32(p[fibMark:])
	}
	res := h.LookupRoute(q)
	switch res.Type {
	case netenv.RouteUnicast:
	case netenv.RouteBlackhole:
		return FibRetBlackhole, 0
	case netenv.RouteUnreachable:
		return FibRetUnreachable, 0
	case netenv.RouteProhibit:
		return FibRetProhibit, 0
	default:
		return FibRetNotFwded, 0
	}
	var mtu uint32
	if checkMTU {
		mtu = h.MTU(res)
		if uint32(le.Uint16(p[fibTotLen:])) > mtu {
			le.PutUint16(p[fibTotLen:], uint16(mtu))
			return FibRetFragNeeded, 0
		}
	}
	if res.Route.Encap {
		return FibRetUnsuppLWT, 0
	}
	out, _ := h.Interface(res.Dev)
	if v6 && res.Route.Via.IsValid() {
		putAddr(p[fibDst:], res.Route.Via)
	}
	le.PutUint32(p[fibTOS:], res.Route.Metric)
	le.PutUint32(p[fibIfindex:], uint32(res.Dev))
	nexthop := netip.AddrFrom4([4]byte(p[fibDst : fibDst+4]))
	if v6 {
		nexthop = netip.AddrFrom16([16]byte(p[fibDst : fibDst+16]))
	}
	if flags&FibLookupSrc != 0 {
		if v6 {
			src, ok := h.SourceAddr6(res, q.Dst)
			if !ok {
				return FibRetNoSrcAddr, 0
			}
			putAddr(p[fibSrc:], src)
		} else {
			src := h.PrefSrc(res)
			if !src.IsValid() {
				src = netip.IPv4Unspecified()
			}
			putAddr(p[fibSrc:], src)
		}
	}
	if !v6 {
		if via := res.Route.Via; via.Is4() {
			putAddr(p[fibDst:], via)
			nexthop = via
		} else if via.Is6() {
			p[fibFamily] = afInet6
			putAddr(p[fibDst:], via)
			nexthop = via
		}
	}
	if flags&FibLookupSkipNeigh == 0 {
		n, ok := h.Neighbour(res.Dev, nexthop)
		if !ok || !n.State.Valid() {
			return FibRetNoNeigh, 0
		}
		copy(p[fibDMAC:fibDMAC+6], n.MAC)
		copy(p[fibSMAC:fibSMAC+6], out.MAC)
	}
	// bpf_fib_set_fwd_params
	le.PutUint32(p[fibVlan:], 0)
	if mtu != 0 {
		le.PutUint16(p[fibTotLen:], uint16(mtu))
	}
	return FibRetSuccess, uint32(res.Dev)
}

// needStrict6 is rt6_need_strict: multicast, link-local and loopback
// addresses are never forwarded.
func needStrict6(a netip.Addr) bool {
	return a.IsMulticast() || a.IsLinkLocalUnicast() || a.IsLoopback()
}

// putAddr writes an address in network order (4 or 16 bytes).
func putAddr(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}

// fibParams checks bpf_fib_lookup's arguments and returns the params.
func fibParams(env helpers.Env, args *[5]uint64) ([]byte, int64, error) {
	if uint64(uint32(args[2])) < fibSize {
		return nil, -int64(maps.EINVAL), nil
	}
	p, err := env.Memory(args[1], fibSize, true)
	if err != nil {
		return nil, 0, err
	}
	if uint32(args[3])&^fibLookupMask != 0 {
		return nil, -int64(maps.EINVAL), nil
	}
	if p[fibFamily] != afInet && p[fibFamily] != afInet6 {
		return nil, -int64(eAFNOSUPPORT), nil
	}
	return p, 0, nil
}

// XDPFibLookup is bpf_fib_lookup for XDP programs (bpf_xdp_fib_lookup):
// the MTU is always checked, against params->tot_len.
func XDPFibLookup(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := xdpOf(env)
	if err != nil {
		return 0, err
	}
	p, rc, err := fibParams(env, args)
	if p == nil {
		return uint64(rc), err
	}
	rc, _ = fibLookup(r.net.host, p, uint32(args[3]), true)
	return uint64(rc), nil
}

// SkbFibLookup is bpf_fib_lookup for socket buffer programs
// (bpf_skb_fib_lookup): with params->tot_len the MTU is checked against
// it; without, a successful lookup checks that the packet fits the output
// device (is_skb_forwardable) and reports the device's MTU.
func SkbFibLookup(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	p, rc, err := fibParams(env, args)
	if p == nil {
		return uint64(rc), err
	}
	check := le.Uint16(p[fibTotLen:]) != 0
	rc, dev := fibLookup(r.net.host, p, uint32(args[3]), check)
	if rc == FibRetSuccess && !check {
		f, _ := r.net.host.Interface(int(dev))
		if !forwardable(f, s) {
			rc = FibRetFragNeeded
		}
		le.PutUint16(p[fibTotLen:], uint16(f.MTU))
	}
	return uint64(rc), nil
}

// forwardable is is_skb_forwardable: the device is up and the packet fits
// its MTU plus its link-layer and a VLAN header, or is GSO.
func forwardable(f netenv.Interface, s *skbState) bool {
	if f.Down {
		return false
	}
	return s.length() <= f.MTU+f.HeaderLen()+vlanHLenMTU || s.gsoSize != 0
}

// bpf_check_mtu flags and results.
const (
	MTUCheckSegs       = 1 << 0 // BPF_MTU_CHK_SEGS
	MTUCheckSuccess    = 0      // BPF_MTU_CHK_RET_SUCCESS
	MTUCheckFragNeeded = 1      // BPF_MTU_CHK_RET_FRAG_NEEDED
	MTUCheckSegsTooBig = 2      // BPF_MTU_CHK_RET_SEGS_TOOBIG
)

// checkMTUDev returns the device bpf_check_mtu checks against: ifindex,
// or the packet's own device for 0.
func checkMTUDev(h *netenv.Host, ifindex, own uint32) (netenv.Interface, bool) {
	if ifindex == 0 {
		ifindex = own
	}
	return h.Interface(int(ifindex))
}

// SkbCheckMTU is bpf_check_mtu for socket buffer programs
// (bpf_skb_check_mtu). With BPF_MTU_CHK_SEGS a GSO packet passes when its
// segments fit (gso_size plus the headers up to the transport header).
func SkbCheckMTU(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	mtuLen, err := env.Memory(args[2], 4, true)
	if err != nil {
		return 0, err
	}
	flags, diff := args[4], int64(int32(args[3]))
	if flags&^MTUCheckSegs != 0 || flags&MTUCheckSegs != 0 && (diff != 0 || le.Uint32(mtuLen) != 0) {
		return errno(maps.EINVAL), nil
	}
	dev, ok := checkMTUDev(r.net.host, uint32(args[1]), le.Uint32(r.shadow[rtSkbIfindex:]))
	if !ok {
		return errno(maps.ENODEV), nil
	}
	mtu := int64(dev.MTU)
	devLen := mtu + int64(dev.HeaderLen())
	skbLen := int64(s.length())
	if v := le.Uint32(mtuLen); v != 0 {
		skbLen = int64(v) + int64(dev.HeaderLen())
	}
	skbLen += diff
	ret := uint64(MTUCheckFragNeeded)
	switch {
	case skbLen <= devLen:
		ret = MTUCheckSuccess
	case s.gsoSize != 0:
		ret = MTUCheckSuccess
		if flags&MTUCheckSegs != 0 && int64(s.gsoSize)+int64(s.l4Offset()) > mtu {
			ret = MTUCheckSegsTooBig
		}
	}
	le.PutUint32(mtuLen, uint32(mtu))
	return ret, nil
}

// l4Offset returns the length of the network and transport headers a GSO
// segment repeats, as skb_gso_network_seglen counts them: from the
// network header to the transport header's end, taking a TCP header of
// its data offset and 8 bytes otherwise.
func (s *skbState) l4Offset() int {
	t := s.transport
	if t < 0 {
		return 0
	}
	n := t - s.network
	if t+13 <= s.tail && s.protocol == be16(ethPIP) && s.buf[s.network+9] == ipprotoTCP {
		return n + int(s.buf[t+12]>>4)*4
	}
	return n + 8
}

// XDPCheckMTU is bpf_check_mtu for XDP programs (bpf_xdp_check_mtu).
func XDPCheckMTU(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, x, err := xdpOf(env)
	if err != nil {
		return 0, err
	}
	mtuLen, err := env.Memory(args[2], 4, true)
	if err != nil {
		return 0, err
	}
	if args[4] != 0 {
		return errno(maps.EINVAL), nil
	}
	dev, ok := checkMTUDev(r.net.host, uint32(args[1]), le.Uint32(r.shadow[rtXDPIngress:]))
	if !ok {
		return errno(maps.ENODEV), nil
	}
	mtu := int64(dev.MTU)
	devLen := mtu + int64(dev.HeaderLen())
	xdpLen := int64(x.end - x.data)
	if v := le.Uint32(mtuLen); v != 0 {
		xdpLen = int64(v) + int64(dev.HeaderLen())
	}
	xdpLen += int64(int32(args[3]))
	ret := uint64(MTUCheckSuccess)
	if xdpLen > devLen {
		ret = MTUCheckFragNeeded
	}
	le.PutUint32(mtuLen, uint32(mtu))
	return ret, nil
}

// redir is what a redirect helper of a socket buffer program records.
func (r *Run) redir(rd Redirect) {
	r.rd, r.hasRd = rd, true
}

// RedirectNeigh is bpf_redirect_neigh: record a redirect out of ifindex
// with the link-layer header filled in from the neighbour table, for the
// next hop params gives (struct bpf_redir_neigh: nh_family, then the
// address) or, without params, the route's next hop; return
// TC_ACT_REDIRECT. A short params or any flag returns TC_ACT_SHOT.
func RedirectNeigh(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	plen := uint32(args[2])
	if plen != 0 && plen < redirNeighSize || args[3] != 0 {
		return TCActShot, nil
	}
	rd := Redirect{Ifindex: uint32(args[0]), Neigh: true}
	if plen != 0 {
		nh, err := env.Memory(args[1], redirNeighSize, false)
		if err != nil {
			return 0, err
		}
		switch le.Uint32(nh) {
		case afInet:
			rd.Nexthop = netip.AddrFrom4([4]byte(nh[4:8]))
		case afInet6:
			rd.Nexthop = netip.AddrFrom16([16]byte(nh[4:20]))
		}
	}
	r.redir(rd)
	return TCActRedirect, nil
}

// redirNeighSize is sizeof(struct bpf_redir_neigh).
const redirNeighSize = 20

// RedirectPeer is bpf_redirect_peer: record a redirect into the peer of
// the veth or netkit device ifindex and return TC_ACT_REDIRECT; any flag
// returns TC_ACT_SHOT. Linux drops the packet later unless the program ran
// at tc ingress and ifindex has a peer; Output.Redirect.PeerIfindex says
// which peer the host knows.
func RedirectPeer(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	if args[1] != 0 {
		return TCActShot, nil
	}
	rd := Redirect{Ifindex: uint32(args[0]), Peer: true}
	if f, ok := r.net.host.Interface(int(rd.Ifindex)); ok {
		rd.PeerIfindex = uint32(f.Peer)
	}
	r.redir(rd)
	return TCActRedirect, nil
}

// Results of transmitting and receiving a packet (include/linux/netdevice.h).
const (
	netXmitSuccess = 0
	netXmitCN      = 2 // NET_XMIT_CN: a down device's noop qdisc drops
	netRxDrop      = 1 // NET_RX_DROP
)

// CloneRedirect is bpf_clone_redirect: send a copy of the packet out of
// device ifindex (or, with BPF_F_INGRESS, into it) and go on with the
// original. The copy, with its accelerated VLAN tag, is reported in
// Output.Clones; the result is what
// Linux's transmit or receive path returns: 0, NET_XMIT_CN (2) for a
// device that is down or without carrier (a veth whose peer is down),
// NET_RX_DROP (1) for a receiving device that is down (the MTU is not
// checked on this path).
func CloneRedirect(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	flags := args[2]
	if flags&^FlagIngress != 0 {
		return errno(maps.EINVAL), nil
	}
	h := r.net.host
	dev, ok := h.Interface(int(uint32(args[1])))
	if !ok {
		return errno(maps.EINVAL), nil
	}
	mac := s.mac
	if mac > s.data {
		mac = s.data
	}
	c := Clone{Ifindex: uint32(dev.Index), Flags: flags, Data: append([]byte(nil), s.buf[mac:s.tail]...),
		VlanProto: be16(s.vlanProto), VlanTCI: s.vlanTCI}
	if flags&FlagIngress != 0 {
		// ____dev_forward_skb without the MTU check.
		if dev.Down {
			return netRxDrop, nil
		}
	} else if dev.Down || !carrier(h, dev) {
		return netXmitCN, nil
	}
	r.net.clones = append(r.net.clones, c)
	return netXmitSuccess, nil
}

// carrier reports whether a device that is up has carrier: a veth or
// netkit device has it when its peer is up (a peer the host does not
// know, in another namespace, is taken as up).
func carrier(h *netenv.Host, f netenv.Interface) bool {
	if (f.Kind == netenv.KindVeth || f.Kind == netenv.KindNetkit) && f.Peer != 0 {
		if p, ok := h.Interface(f.Peer); ok && p.Peer == f.Index {
			return !p.Down
		}
	}
	return true
}

// struct bpf_tunnel_key (44 bytes) and its older, shorter layouts.
const (
	tunKeySize      = 44
	tunKeyID        = 0
	tunKeyRemote    = 4 // remote_ipv4 / remote_ipv6
	tunKeyTOS       = 20
	tunKeyTTL       = 21
	tunKeyExt       = 22 // tunnel_ext / tunnel_flags
	tunKeyLabel     = 24
	tunKeyLocal     = 28 // local_ipv4 / local_ipv6
	tunKeySizeLocal = 28 // offsetof(local_ipv4)
	tunKeySizeLabel = 24 // offsetof(tunnel_label)
	tunKeySizeExt   = 22 // offsetof(tunnel_ext)
	tunKeySizeRem1  = 8  // offsetof(remote_ipv6[1])

	FlagTunInfoIPv6  = 1 << 0 // BPF_F_TUNINFO_IPV6
	FlagZeroCsumTX   = 1 << 1 // BPF_F_ZERO_CSUM_TX
	FlagDontFragment = 1 << 2 // BPF_F_DONT_FRAGMENT
	FlagSeqNumber    = 1 << 3 // BPF_F_SEQ_NUMBER
	FlagNoTunnelKey  = 1 << 4 // BPF_F_NO_TUNNEL_KEY
	FlagTunInfoFlags = 1 << 4 // BPF_F_TUNINFO_FLAGS (bpf_skb_get_tunnel_key)
	ipv6FlowLabel    = 0x000fffff
)

// SkbGetTunnelKey is bpf_skb_get_tunnel_key: copy the packet's tunnel
// metadata into a struct bpf_tunnel_key of size bytes (44, or one of the
// older layouts of 22, 24, 28 or, for IPv4, 8 bytes). Without metadata,
// with unknown flags or a size that is none of those, the buffer is zeroed
// and the result is -EINVAL; metadata of the other family than
// BPF_F_TUNINFO_IPV6 asks is -EPROTO.
func SkbGetTunnelKey(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	size := uint32(args[2])
	to, err := env.Memory(args[1], uint64(size), true)
	if err != nil {
		return 0, err
	}
	flags := args[3]
	t := r.net.tunnel
	fail := func(e maps.Errno) (uint64, error) {
		clear(to)
		return errno(e), nil
	}
	if t == nil || flags&^(FlagTunInfoIPv6|FlagTunInfoFlags) != 0 {
		return fail(maps.EINVAL)
	}
	if t.IPv6 != (flags&FlagTunInfoIPv6 != 0) {
		return fail(ePROTO)
	}
	switch size {
	case tunKeySize, tunKeySizeLocal, tunKeySizeLabel, tunKeySizeExt:
	case tunKeySizeRem1:
		if t.IPv6 {
			return fail(maps.EINVAL)
		}
	default:
		return fail(maps.EINVAL)
	}
	var k [tunKeySize]byte
	le.PutUint32(k[tunKeyID:], uint32(t.ID))
	k[tunKeyTOS], k[tunKeyTTL] = t.TOS, t.TTL
	if flags&FlagTunInfoFlags != 0 {
		be.PutUint16(k[tunKeyExt:], uint16(t.Flags))
	}
	if t.IPv6 {
		if t.Src.IsValid() {
			a := t.Src.As16()
			copy(k[tunKeyRemote:tunKeyRemote+16], a[:])
		}
		if t.Dst.IsValid() {
			a := t.Dst.As16()
			copy(k[tunKeyLocal:tunKeyLocal+16], a[:])
		}
		le.PutUint32(k[tunKeyLabel:], t.Label)
	} else {
		le.PutUint32(k[tunKeyRemote:], hostOrder4(t.Src))
		le.PutUint32(k[tunKeyLocal:], hostOrder4(t.Dst))
	}
	copy(to, k[:])
	return 0, nil
}

// hostOrder4 returns an IPv4 address as a host-order number, how
// struct bpf_tunnel_key holds remote_ipv4 and local_ipv4.
func hostOrder4(a netip.Addr) uint32 {
	if !a.Is4() {
		return 0
	}
	return be.Uint32(a.AsSlice())
}

// SkbSetTunnelKey is bpf_skb_set_tunnel_key: attach transmit metadata to
// the packet from a struct bpf_tunnel_key of size bytes (44, or the older
// 22, 24 or 28, the rest taken as zero): the remote address becomes the
// outer destination, the flags set the checksum, don't-fragment, sequence
// number and key flags. Unknown flags, another size, a flow label without
// BPF_F_TUNINFO_IPV6 or a non-zero tunnel_ext give -EINVAL.
func SkbSetTunnelKey(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	size := uint32(args[2])
	from, err := env.Memory(args[1], uint64(size), false)
	if err != nil {
		return 0, err
	}
	flags := args[3]
	if flags&^(FlagTunInfoIPv6|FlagZeroCsumTX|FlagDontFragment|FlagSeqNumber|FlagNoTunnelKey) != 0 {
		return errno(maps.EINVAL), nil
	}
	switch size {
	case tunKeySize, tunKeySizeLocal, tunKeySizeLabel, tunKeySizeExt:
	default:
		return errno(maps.EINVAL), nil
	}
	var k [tunKeySize]byte
	copy(k[:], from)
	v6 := flags&FlagTunInfoIPv6 != 0
	if !v6 && le.Uint32(k[tunKeyLabel:]) != 0 || le.Uint16(k[tunKeyExt:]) != 0 {
		return errno(maps.EINVAL), nil
	}
	t := &netenv.Tunnel{ID: uint64(le.Uint32(k[tunKeyID:])), TOS: k[tunKeyTOS], TTL: k[tunKeyTTL], TX: true, IPv6: v6,
		Flags: netenv.TunnelNoCache}
	if flags&FlagDontFragment != 0 {
		t.Flags |= netenv.TunnelDontFragment
	}
	if flags&FlagZeroCsumTX == 0 {
		t.Flags |= netenv.TunnelCsum
	}
	if flags&FlagSeqNumber != 0 {
		t.Flags |= netenv.TunnelSeq
	}
	if flags&FlagNoTunnelKey == 0 {
		t.Flags |= netenv.TunnelKey
	}
	if v6 {
		t.Dst = netip.AddrFrom16([16]byte(k[tunKeyRemote : tunKeyRemote+16]))
		t.Src = netip.AddrFrom16([16]byte(k[tunKeyLocal : tunKeyLocal+16]))
		t.Label = le.Uint32(k[tunKeyLabel:]) & ipv6FlowLabel
	} else {
		var a [4]byte
		be.PutUint32(a[:], le.Uint32(k[tunKeyRemote:]))
		t.Dst = netip.AddrFrom4(a)
		be.PutUint32(a[:], le.Uint32(k[tunKeyLocal:]))
		t.Src = netip.AddrFrom4(a)
	}
	r.net.tunnel = t
	return 0, nil
}

// SkbGetTunnelOpt is bpf_skb_get_tunnel_opt: copy the tunnel options
// into a buffer of size bytes (the rest zeroed) and return their length;
// -ENOENT without options, -ENOMEM when they do not fit (the buffer is
// then zeroed).
func SkbGetTunnelOpt(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	size := uint32(args[2])
	to, err := env.Memory(args[1], uint64(size), true)
	if err != nil {
		return 0, err
	}
	t := r.net.tunnel
	if t == nil || t.Flags&netenv.TunnelOptionsPresent == 0 {
		clear(to)
		return errno(maps.ENOENT), nil
	}
	if int(size) < len(t.Options) {
		clear(to)
		return errno(maps.ENOMEM), nil
	}
	n := copy(to, t.Options)
	clear(to[n:])
	return uint64(n), nil
}

// SkbSetTunnelOpt is bpf_skb_set_tunnel_opt: attach options to the
// transmit metadata bpf_skb_set_tunnel_key set (-EINVAL without it, or
// for a size that is not a multiple of 4; -ENOMEM above
// netenv.MaxTunnelOptions).
func SkbSetTunnelOpt(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	size := uint32(args[2])
	from, err := env.Memory(args[1], uint64(size), false)
	if err != nil {
		return 0, err
	}
	t := r.net.tunnel
	if t == nil || !t.TX || size%4 != 0 {
		return errno(maps.EINVAL), nil
	}
	if size > netenv.MaxTunnelOptions {
		return errno(maps.ENOMEM), nil
	}
	t.Options = append(t.Options[:0], from...)
	if size > 0 {
		t.Flags |= netenv.TunnelOptionsPresent
	}
	return 0, nil
}

// Socket lookups.

// bpf_sock_tuple sizes.
const (
	tupleSize4 = 12
	tupleSize6 = 36
	maxInt32   = 1<<31 - 1
)

// skLookup is __bpf_skc_lookup and __bpf_sk_lookup: find the socket of a
// struct bpf_sock_tuple (from the packet's point of view: saddr is the
// remote end) in the run's host, for a packet that arrived on device dev.
// Lookups in another namespace (netns >= 0) find nothing: waggle models
// one namespace. full drops time-wait sockets (sk_to_full_sk).
func skLookup(env helpers.Env, args *[5]uint64, proto string, full bool, netns uint64, dev uint32) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	size := uint64(uint32(args[2]))
	tuple, err := env.Memory(args[1], size, false)
	if err != nil {
		return 0, err
	}
	if size != tupleSize4 && size != tupleSize6 {
		return 0, nil
	}
	if args[4] != 0 || !(int32(netns) < 0 || netns <= maxInt32) {
		return 0, nil
	}
	if int32(netns) >= 0 {
		return 0, nil
	}
	q := netenv.SocketQuery{Proto: proto, Dev: int(dev)}
	if size == tupleSize4 {
		q.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(tuple[0:4])), be.Uint16(tuple[8:]))
		q.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(tuple[4:8])), be.Uint16(tuple[10:]))
	} else {
		q.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(tuple[0:16])), be.Uint16(tuple[32:]))
		q.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(tuple[16:32])), be.Uint16(tuple[34:]))
	}
	h := r.net.host
	i := h.LookupSocket(q)
	if i < 0 || full && h.Socket(i).State == netenv.SockTimeWait {
		return 0, nil
	}
	return r.net.sockAddr(i), nil
}

// lookupDev returns the device a run's packet arrived on, which sockets
// bound to a device must match: skb->dev for socket buffers, the receive
// queue's device for XDP, none otherwise.
func (r *Run) lookupDev() uint32 {
	switch {
	case r.skb != nil:
		return le.Uint32(r.shadow[rtSkbIfindex:])
	case r.xdp != nil:
		return le.Uint32(r.shadow[rtXDPIngress:])
	}
	return 0
}

// skLookupFunc builds a socket lookup helper. XDP's take netns as a u32
// (bpf_xdp_sk_lookup_tcp); socket address programs look up with no
// device.
func skLookupFunc(proto string, full bool) helpers.Func {
	return func(env helpers.Env, args *[5]uint64) (uint64, error) {
		r, err := runOf(env)
		if err != nil {
			return 0, err
		}
		netns := args[3]
		if r.xdp != nil {
			netns = uint64(uint32(netns))
		}
		return skLookup(env, args, proto, full, netns, r.lookupDev())
	}
}

// Socket lookup helpers: bpf_sk_lookup_tcp, bpf_sk_lookup_udp and
// bpf_skc_lookup_tcp, which return a struct bpf_sock pointer or NULL.
var (
	SkLookupTCP  = skLookupFunc("tcp", true)
	SkLookupUDP  = skLookupFunc("udp", true)
	SkcLookupTCP = skLookupFunc("tcp", false)
)

// SkAssign is bpf_sk_assign: give the packet to a socket at tc ingress.
// A null socket or any flag is -EINVAL; a program that does not run at
// tc ingress (BPF_PROG_TEST_RUN runs at neither) gets -EOPNOTSUPP. The
// socket is reported in Output.Assigned.
func SkAssign(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	if args[1] == 0 || args[2] != 0 {
		return errno(maps.EINVAL), nil
	}
	i, err := sockOf(r, args[1], "sk_assign")
	if err != nil {
		return 0, err
	}
	if !r.in.Ingress {
		return errno(maps.EOPNOTSUPP), nil
	}
	r.net.assigned = i
	return 0, nil
}

// protoSkLookup is the prototype of the socket lookups.
// They acquire the socket they return: the program must pass it to
// bpf_sk_release.
var protoSkLookup = helpers.Proto{Ret: helpers.RetPtrToSocketOrNull, Acquire: true, PktAccess: true, Args: []helpers.ArgType{
	helpers.ArgPtrToCtx, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSizeOrZero, helpers.ArgAnything, helpers.ArgAnything,
}}

// protoSkcLookup is bpf_skc_lookup_tcp's, which may return any socket.
var protoSkcLookup = helpers.Proto{Ret: helpers.RetPtrToSockCommonOrNull, Acquire: true, PktAccess: true, Args: protoSkLookup.Args}

// netDefs are the network helpers of socket buffer programs (the socket
// helpers are socketDefs).
var netDefs = helpers.Defs{
	{ID: idFibLookup, Name: "fib_lookup", Proto: protoFibLookup, Func: SkbFibLookup},
	{ID: idCheckMTU, Name: "check_mtu", Proto: protoCheckMTU, Func: SkbCheckMTU},
	{ID: idRedirectNeigh, Name: "redirect_neigh", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgAnything, helpers.ArgPtrToMem | helpers.ArgMaybeNull | helpers.ArgReadOnly, helpers.ArgConstSizeOrZero, helpers.ArgAnything}}, Func: RedirectNeigh},
	{ID: idRedirectPeer, Name: "redirect_peer", Proto: protoAnyAny, Func: RedirectPeer},
	{ID: idCloneRedirect, Name: "clone_redirect", Proto: changesPkt(protoCtxAnyAny), Func: CloneRedirect},
	{ID: idSkbGetTunnelKey, Name: "skb_get_tunnel_key", Proto: protoTunnelKey(true), Func: SkbGetTunnelKey},
	{ID: idSkbSetTunnelKey, Name: "skb_set_tunnel_key", Proto: protoTunnelKey(false), Func: SkbSetTunnelKey},
	{ID: idSkbGetTunnelOpt, Name: "skb_get_tunnel_opt", Proto: protoTunnelOpt(true), Func: SkbGetTunnelOpt},
	{ID: idSkbSetTunnelOpt, Name: "skb_set_tunnel_opt", Proto: protoTunnelOpt(false), Func: SkbSetTunnelOpt},
	{ID: idSkAssign, Name: "sk_assign", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgPtrToBTFIDSockCommon, helpers.ArgAnything}}, Func: SkAssign},
}

// xdpNetDefs are the network helpers of XDP programs (the socket lookups
// are socketDefs).
var xdpNetDefs = helpers.Defs{
	{ID: idFibLookup, Name: "fib_lookup", Proto: protoFibLookup, Func: XDPFibLookup},
	{ID: idCheckMTU, Name: "check_mtu", Proto: protoCheckMTU, Func: XDPCheckMTU},
}

var (
	// bpf_{xdp,skb}_fib_lookup_proto and bpf_{xdp,skb}_check_mtu_proto
	// are gpl_only.
	protoFibLookup = helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgPtrToMem, helpers.ArgConstSize, helpers.ArgAnything}, GPLOnly: true}
	protoCheckMTU  = helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgPtrToFixedSizeMem | helpers.ArgAligned | helpers.ArgWrite, helpers.ArgAnything, helpers.ArgAnything}, ArgSize: [5]uint32{2: 4}, GPLOnly: true}
	protoSock      = helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToBTFIDSockCommon | helpers.ArgRelease}} // bpf_sk_release
)

func protoTunnelKey(get bool) helpers.Proto {
	mem := helpers.ArgPtrToMem | helpers.ArgReadOnly
	if get {
		mem = helpers.ArgPtrToUninitMem
	}
	return helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, mem, helpers.ArgConstSize, helpers.ArgAnything}}
}

func protoTunnelOpt(get bool) helpers.Proto {
	mem := helpers.ArgPtrToMem | helpers.ArgReadOnly
	if get {
		mem = helpers.ArgPtrToUninitMem
	}
	return helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, mem, helpers.ArgConstSize}}
}
