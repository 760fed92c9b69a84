package progtype

// The flow hash of a socket buffer, as skb_get_hash computes it
// (__skb_get_hash_net in net/core/flow_dissector.c): __skb_flow_dissect
// with flow_keys_dissector and FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL fills
// a struct flow_keys, __flow_hash_consistentify sorts its addresses and
// its ports, and the bytes from flow_keys.basic on are hashed. Linux
// hashes them with siphash under a key drawn at random at boot, so no
// value can match; waggle hashes the same bytes with FNV-1a, so packets
// hash alike here exactly when they hash alike in Linux (their flow keys
// are equal), and the l4 bit (ports or a flow label) is Linux's.
//
// The keys flow_keys_dissector fills are control, basic, the IPv4 and IPv6
// addresses, TIPC's key, the ports, the outer VLAN, the IPv6 flow label
// and the GRE key id; the other keys (the inner VLAN, ICMP, ARP, MPLS,
// ...) stay zero, but the headers still lead the dissection where they
// lead it in Linux.

// struct flow_keys (include/net/flow_dissector.h), 80 bytes:
//
//	 0 control: thoff u16, addr_type u16, flags u32   (not hashed)
//	 8 basic: n_proto be16, ip_proto u8, padding u8    <- hashing starts
//	12 tags: flow_label u32
//	16 vlan: id:12 dei:1 prio:3 (u16), tpid be16, eth_type be16, padding
//	24 cvlan (never filled by this dissector)
//	32 keyid be32
//	36 ports: src be16, dst be16
//	40 icmp (never filled by this dissector)
//	44 addrs: v4 src, dst (8) | v6 src, dst (32) | tipc key (4)
const (
	hkBasic = 8
	hkTags  = 12
	hkVlan  = 16
	hkKeyID = 32
	hkPorts = 36
	hkAddrs = 44
	hkSize  = 80

	// control.addr_type
	addrNone = 0
	addrIPv4 = 3 // FLOW_DISSECTOR_KEY_IPV4_ADDRS
	addrIPv6 = 4 // FLOW_DISSECTOR_KEY_IPV6_ADDRS
	addrTIPC = 5 // FLOW_DISSECTOR_KEY_TIPC

	maxFlowDissectHdrs = 15 // MAX_FLOW_DISSECT_HDRS
)

// EtherTypes and IP protocols the dissector follows.
const (
	ethPARP     = 0x0806
	ethPRARP    = 0x8035
	ethPTEB     = 0x6558
	ethPPPPSes  = 0x8864
	ethPTIPC    = 0x88ca
	ethPMPLSUC  = 0x8847
	ethPMPLSMC  = 0x8848
	ethPFCoE    = 0x8906
	ethPBatman  = 0x4305
	ethP1588    = 0x88f7
	ethPPRP     = 0x88fb
	ethPHSR     = 0x892f
	ethPCFM     = 0x8902
	greProtoPPP = 0x880b

	ipprotoHop      = 0
	ipprotoIPIP     = 4
	ipprotoDCCP     = 33
	ipprotoIPv6     = 41
	ipprotoRouting  = 43
	ipprotoFragment = 44
	ipprotoGRE      = 47
	ipprotoESP      = 50
	ipprotoAH       = 51
	ipprotoDest     = 60
	ipprotoSCTP     = 132
	ipprotoUDPLite  = 136
	ipprotoMPLS     = 137
)

// dissect results (enum flow_dissect_ret)
const (
	fdContinue = iota
	fdOutGood
	fdOutBad
	fdProtoAgain
	fdIPProtoAgain
)

// flowKeys is a struct flow_keys being filled.
type flowKeys struct {
	b        [hkSize]byte
	addrType int
	fragment bool
}

// flowHash dissects the packet as skb_get_hash does and returns the hash
// of its flow keys (never 0) and whether they hold ports or a flow label
// (flow_keys_have_l4, which sets skb->l4_hash).
func flowHash(s *skbState) (uint32, bool) {
	var k flowKeys
	k.dissect(s)
	k.consistentify()
	// flow_keys_hash_length: the addresses only as far as addr_type uses.
	n := hkSize - hkBasic
	switch k.addrType {
	case addrIPv4:
		n -= 32 - 8
	case addrIPv6:
	case addrTIPC:
		n -= 32 - 4
	default:
		n -= 32
	}
	h := uint32(2166136261) // FNV-1a
	for _, x := range k.b[hkBasic : hkBasic+n] {
		h ^= uint32(x)
		h *= 16777619
	}
	if h == 0 {
		h = 1
	}
	return h, le.Uint32(k.b[hkPorts:]) != 0 || le.Uint32(k.b[hkTags:]) != 0
}

// consistentify is __flow_hash_consistentify: the addresses in one order
// and the ports in one order, each compared as Linux compares them (as
// host-order integers of the network-order bytes), so both directions of
// a flow hash alike.
func (k *flowKeys) consistentify() {
	swapPorts := func() {
		if le.Uint16(k.b[hkPorts+2:]) < le.Uint16(k.b[hkPorts:]) {
			p := k.b[hkPorts : hkPorts+4]
			p[0], p[1], p[2], p[3] = p[2], p[3], p[0], p[1]
		}
	}
	a := k.b[hkAddrs:]
	switch k.addrType {
	case addrIPv4:
		if le.Uint32(a[4:]) < le.Uint32(a[0:]) {
			var t [4]byte
			copy(t[:], a[0:4])
			copy(a[0:4], a[4:8])
			copy(a[4:8], t[:])
		}
		swapPorts()
	case addrIPv6:
		if string(a[16:32]) < string(a[0:16]) {
			var t [16]byte
			copy(t[:], a[0:16])
			copy(a[0:16], a[16:32])
			copy(a[16:32], t[:])
		}
		swapPorts()
	}
}

// dissect is __skb_flow_dissect with flow_keys_dissector's keys and
// FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL, on the linear packet from its
// network header. Offsets are into the packet (skb->data at 0).
func (k *flowKeys) dissect(s *skbState) {
	p := s.buf[s.data:s.tail]
	nhoff := s.network - s.data
	hdr := func(off, n int) []byte {
		if off < 0 || off+n > len(p) {
			return nil
		}
		return p[off : off+n]
	}
	// In memory order, as the kernel's __be16 are.
	proto := s.protocol
	tagPresent := s.vlanProto != 0 || s.vlanTCI != 0
	if tagPresent {
		proto = s.vlanProto
	}
	vlans := 0
	ipProto := byte(0)
	numHdrs := 0
	again := func() bool { numHdrs++; return numHdrs <= maxFlowDissectHdrs }
	var fd int
protoAgain:
	fd = fdContinue
	switch be16(proto) {
	case ethPIP:
		ip := hdr(nhoff, 20)
		if ip == nil || ip[0]&0xf < 5 {
			fd = fdOutBad
			break
		}
		nhoff += int(ip[0]&0xf) * 4
		ipProto = ip[9]
		copy(k.b[hkAddrs:hkAddrs+8], ip[12:20])
		k.addrType = addrIPv4
		if frag := uint16(ip[6])<<8 | uint16(ip[7]); frag&0x3fff != 0 { // ip_is_fragment
			k.fragment = true
			fd = fdOutGood // no FLOW_DISSECTOR_F_PARSE_1ST_FRAG
		}
	case ethPIPv6:
		ip := hdr(nhoff, 40)
		if ip == nil {
			fd = fdOutBad
			break
		}
		ipProto = ip[6]
		nhoff += 40
		copy(k.b[hkAddrs:hkAddrs+32], ip[8:40])
		k.addrType = addrIPv6
		if label := uint32(ip[1]&0xf)<<16 | uint32(ip[2])<<8 | uint32(ip[3]); label != 0 {
			le.PutUint32(k.b[hkTags:], label)
			fd = fdOutGood // FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL
		}
	case ethP8021AD, ethP8021Q:
		tpid := proto
		var tci uint16
		if vlans == 0 && tagPresent {
			proto, tci = s.protocol, s.vlanTCI
		} else {
			v := hdr(nhoff, 4)
			if v == nil {
				fd = fdOutBad
				break
			}
			tci = uint16(v[0])<<8 | uint16(v[1])
			proto = le.Uint16(v[2:])
			nhoff += 4
		}
		vlans++
		if vlans == 1 {
			// vlan_id:12, vlan_dei:1 (left 0), vlan_priority:3
			le.PutUint16(k.b[hkVlan:], tci&0x0fff|(tci&0xe000))
			le.PutUint16(k.b[hkVlan+2:], tpid)
			le.PutUint16(k.b[hkVlan+4:], proto)
		}
		fd = fdProtoAgain
	case ethPPPPSes:
		h := hdr(nhoff, 8)
		if h == nil || h[0] != 0x11 || h[1] != 0 { // ver 1, type 1, code 0
			fd = fdOutBad
			break
		}
		ppp := uint16(h[6])<<8 | uint16(h[7])
		nhoff += 8
		switch ppp {
		case 0x21:
			proto, fd = be16(ethPIP), fdProtoAgain
		case 0x57:
			proto, fd = be16(ethPIPv6), fdProtoAgain
		case 0x281:
			proto, fd = be16(ethPMPLSUC), fdProtoAgain
		case 0x283:
			proto, fd = be16(ethPMPLSMC), fdProtoAgain
		default:
			if ppp&0x0101 == 0x0001 { // ppp_proto_is_valid
				fd = fdOutGood
			} else {
				fd = fdOutBad
			}
		}
	case ethPTIPC:
		h := hdr(nhoff, 16)
		if h == nil {
			fd = fdOutBad
			break
		}
		// tipc_hdr_rps_key: the source node; a keepalive (for which
		// Linux draws a random key) is keyed by it too.
		copy(k.b[hkAddrs:hkAddrs+4], h[12:16])
		k.addrType = addrTIPC
		fd = fdOutGood
	case ethPMPLSUC, ethPMPLSMC:
		// Neither MPLS key is used: __skb_flow_dissect_mpls stops.
		nhoff += 4
		fd = fdOutGood
	case ethPFCoE:
		if len(p)-nhoff < 38 { // FCOE_HEADER_LEN
			fd = fdOutBad
			break
		}
		nhoff += 38
		fd = fdOutGood
	case ethPARP, ethPRARP, ethPCFM:
		fd = fdOutGood // their keys are not used
	case ethPBatman:
		h := hdr(nhoff, 24) // batadv_unicast_packet, then an Ethernet header
		if h == nil || h[1] != 15 || h[0] != 0x40 {
			fd = fdOutBad
			break
		}
		proto = le.Uint16(h[22:])
		nhoff += 24
		fd = fdProtoAgain
	case ethP1588:
		if hdr(nhoff, 34) == nil { // struct ptp_header
			fd = fdOutBad
			break
		}
		nhoff += 34
		fd = fdOutGood
	case ethPPRP, ethPHSR:
		h := hdr(nhoff, 6) // struct hsr_tag
		if h == nil {
			fd = fdOutBad
			break
		}
		proto = le.Uint16(h[4:])
		nhoff += 6
		fd = fdProtoAgain
	default:
		fd = fdOutBad
	}
	switch fd {
	case fdOutGood:
		goto out
	case fdProtoAgain:
		if again() {
			goto protoAgain
		}
		goto out
	case fdOutBad:
		goto out
	}
ipProtoAgain:
	fd = fdContinue
	switch ipProto {
	case ipprotoGRE:
		fd = k.gre(hdr, &proto, &nhoff)
	case ipprotoHop, ipprotoRouting, ipprotoDest:
		if be16(proto) != ethPIPv6 {
			break
		}
		h := hdr(nhoff, 2)
		if h == nil {
			fd = fdOutBad
			break
		}
		ipProto = h[0]
		nhoff += (int(h[1]) + 1) << 3
		fd = fdIPProtoAgain
	case ipprotoFragment:
		if be16(proto) != ethPIPv6 {
			break
		}
		h := hdr(nhoff, 8)
		if h == nil {
			fd = fdOutBad
			break
		}
		k.fragment = true
		nhoff += 8
		ipProto = h[0]
		fd = fdOutGood
	case ipprotoIPIP:
		proto, fd = be16(ethPIP), fdProtoAgain
	case ipprotoIPv6:
		proto, fd = be16(ethPIPv6), fdProtoAgain
	case ipprotoMPLS:
		proto, fd = be16(ethPMPLSUC), fdProtoAgain
	}
	if !k.fragment {
		// __skb_flow_dissect_ports: the 4 bytes at proto_ports_offset.
		var ports []byte
		switch ipProto {
		case ipprotoTCP, ipprotoUDP, ipprotoDCCP, ipprotoESP, ipprotoSCTP, ipprotoUDPLite:
			ports = hdr(nhoff, 4)
		case ipprotoAH:
			ports = hdr(nhoff+4, 4)
		}
		copy(k.b[hkPorts:hkPorts+4], ports)
		if ports == nil {
			clear(k.b[hkPorts : hkPorts+4])
		}
	}
	switch fd {
	case fdProtoAgain:
		if again() {
			goto protoAgain
		}
	case fdIPProtoAgain:
		if again() {
			goto ipProtoAgain
		}
	}
out:
	le.PutUint16(k.b[hkBasic:], proto)
	k.b[hkBasic+2] = ipProto
}

// gre is __skb_flow_dissect_gre: GRE version 0 and PPTP's version 1,
// without routing, lead to the encapsulated protocol; the key is kept.
func (k *flowKeys) gre(hdr func(off, n int) []byte, proto *uint16, nhoff *int) int {
	const (
		greCsum    = 0x8000
		greRouting = 0x4000
		greKey     = 0x2000
		greSeq     = 0x1000
		greAck     = 0x0080
		greVersion = 0x0007
	)
	h := hdr(*nhoff, 4)
	if h == nil {
		return fdOutBad
	}
	flags := uint16(h[0])<<8 | uint16(h[1])
	if flags&greRouting != 0 {
		return fdOutGood
	}
	ver := flags & greVersion
	if ver > 1 {
		return fdOutGood
	}
	*proto = le.Uint16(h[2:])
	if ver == 1 && !(be16(*proto) == greProtoPPP && flags&greKey != 0) {
		return fdOutGood
	}
	off := 4
	if flags&greCsum != 0 {
		off += 4
	}
	if flags&greKey != 0 {
		key := hdr(*nhoff+off, 4)
		if key == nil {
			return fdOutBad
		}
		copy(k.b[hkKeyID:hkKeyID+4], key)
		if ver == 1 {
			k.b[hkKeyID], k.b[hkKeyID+1] = 0, 0 // GRE_PPTP_KEY_MASK
		}
		off += 4
	}
	if flags&greSeq != 0 {
		off += 4
	}
	if ver == 0 {
		if be16(*proto) == ethPTEB {
			eth := hdr(*nhoff+off, ethHLen)
			if eth == nil {
				return fdOutBad
			}
			*proto = le.Uint16(eth[12:])
			off += ethHLen
		}
	} else {
		if flags&greAck != 0 {
			off += 4
		}
		ppp := hdr(*nhoff+off, 4)
		if ppp == nil {
			return fdOutBad
		}
		switch uint16(ppp[2])<<8 | uint16(ppp[3]) {
		case 0x21:
			*proto = be16(ethPIP)
		case 0x57:
			*proto = be16(ethPIPv6)
		}
		off += 4
	}
	*nhoff += off
	return fdProtoAgain
}
