package progtype

import (
	"fmt"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/maps"
)

// Flags of the socket buffer helpers (include/uapi/linux/bpf.h).
const (
	FlagRecomputeCsum  = 1 << 0 // BPF_F_RECOMPUTE_CSUM (bpf_skb_store_bytes)
	FlagInvalidateHash = 1 << 1 // BPF_F_INVALIDATE_HASH (bpf_skb_store_bytes)
	FlagHdrFieldMask   = 0xf    // BPF_F_HDR_FIELD_MASK: the field size of l3/l4_csum_replace
	FlagPseudoHdr      = 1 << 4 // BPF_F_PSEUDO_HDR (bpf_l4_csum_replace)
	FlagMarkMangled0   = 1 << 5 // BPF_F_MARK_MANGLED_0
	FlagMarkEnforce    = 1 << 6 // BPF_F_MARK_ENFORCE
	FlagIPv6           = 1 << 7 // BPF_F_IPV6

	// bpf_skb_adjust_room
	FlagAdjRoomFixedGSO    = 1 << 0 // BPF_F_ADJ_ROOM_FIXED_GSO
	FlagAdjRoomEncapL3IPv4 = 1 << 1 // BPF_F_ADJ_ROOM_ENCAP_L3_IPV4
	FlagAdjRoomEncapL3IPv6 = 1 << 2 // BPF_F_ADJ_ROOM_ENCAP_L3_IPV6
	FlagAdjRoomEncapL4GRE  = 1 << 3 // BPF_F_ADJ_ROOM_ENCAP_L4_GRE
	FlagAdjRoomEncapL4UDP  = 1 << 4 // BPF_F_ADJ_ROOM_ENCAP_L4_UDP
	FlagAdjRoomNoCsumReset = 1 << 5 // BPF_F_ADJ_ROOM_NO_CSUM_RESET
	FlagAdjRoomEncapL2Eth  = 1 << 6 // BPF_F_ADJ_ROOM_ENCAP_L2_ETH
	FlagAdjRoomDecapL3IPv4 = 1 << 7 // BPF_F_ADJ_ROOM_DECAP_L3_IPV4
	FlagAdjRoomDecapL3IPv6 = 1 << 8 // BPF_F_ADJ_ROOM_DECAP_L3_IPV6
	adjRoomEncapL2Shift    = 56     // BPF_ADJ_ROOM_ENCAP_L2_SHIFT
	AdjRoomNet             = 0      // BPF_ADJ_ROOM_NET
	AdjRoomMAC             = 1      // BPF_ADJ_ROOM_MAC

	HdrStartMAC = 0 // BPF_HDR_START_MAC (bpf_skb_load_bytes_relative)
	HdrStartNet = 1 // BPF_HDR_START_NET

	csumMangled0 = 0xffff // CSUM_MANGLED_0
	intMax       = 1<<31 - 1
)

// eNOTSUPP and eALREADY are errnos only some helpers return.
const (
	eNOTSUPP = maps.ENOTSUPP
	eALREADY = maps.Errno(114)
	eNOMEM   = maps.ENOMEM
)

// skbOf returns the socket buffer of the calling program's run.
func skbOf(env helpers.Env) (*Run, *skbState, error) {
	r, err := runOf(env)
	if err != nil {
		return nil, nil, err
	}
	if r.skb == nil {
		return nil, nil, fmt.Errorf("%w: a socket buffer helper in a %s run", ErrNoRun, r.kind.name)
	}
	return r, r.skb, nil
}

func (s *skbState) length() int { return s.tail - s.data }

// ensureRoom makes room for head bytes before data and tail bytes after
// the packet, moving the packet inside the buffer if it must (the kernel
// reallocates). It reports false when the buffer is too small.
func (s *skbState) ensureRoom(head, tail int) bool {
	if s.data >= head && len(s.buf)-s.tail >= tail {
		return true
	}
	n := s.tail - s.data
	if head+n+tail > len(s.buf) {
		return false
	}
	start := head
	if start < netSKBPad && netSKBPad+n+tail <= len(s.buf) {
		start = netSKBPad
	}
	// Move everything from the lowest header offset to the tail.
	lo := min(s.data, s.mac, s.network)
	if s.transport >= 0 {
		lo = min(lo, s.transport)
	}
	shift := start - s.data
	if lo+shift < 0 {
		shift = -lo
	}
	if s.data+shift < head || s.tail+shift+tail > len(s.buf) {
		return false
	}
	copy(s.buf[lo+shift:], s.buf[lo:s.tail])
	if shift > 0 {
		clear(s.buf[lo : lo+shift])
	} else {
		clear(s.buf[s.tail+shift : s.tail])
	}
	s.data += shift
	s.tail += shift
	s.mac += shift
	s.network += shift
	if s.transport >= 0 {
		s.transport += shift
	}
	s.lo, s.hi = min(s.lo, lo+shift), max(s.hi, s.tail)
	return true
}

// postpullRcsum is skb_postpull_rcsum (include/linux/skbuff.h).
func (s *skbState) postpullRcsum(b []byte) {
	if s.ipSummed == checksumComplete {
		s.csum = -csumPartial(b, -s.csum)
	}
}

// postpushRcsum is skb_postpush_rcsum.
func (s *skbState) postpushRcsum(b []byte) {
	if s.ipSummed == checksumComplete {
		s.csum = csumBlockAdd(s.csum, csumPartial(b, 0), 0)
	}
}

func (s *skbState) clearHash() { s.hash, s.swHash, s.l4Hash = 0, false, false }

// SkbLoadBytes is bpf_skb_load_bytes (net/core/filter.c): copy len bytes
// at offset from skb->data; out of bounds, the buffer is zeroed and the
// result is -EFAULT.
func SkbLoadBytes(env helpers.Env, args *[5]uint64) (uint64, error) {
	_, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	n := uint64(uint32(args[3]))
	dst, err := env.Memory(args[2], n, true)
	if err != nil {
		return 0, err
	}
	off := uint64(uint32(args[1]))
	if off > intMax || off+n > uint64(s.length()) {
		clear(dst)
		return errno(maps.EFAULT), nil
	}
	copy(dst, s.buf[s.data+int(off):])
	return 0, nil
}

// SkbLoadBytesRelative is bpf_skb_load_bytes_relative: as
// bpf_skb_load_bytes, from the MAC (BPF_HDR_START_MAC) or network
// (BPF_HDR_START_NET) header.
func SkbLoadBytesRelative(env helpers.Env, args *[5]uint64) (uint64, error) {
	_, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	n := uint64(uint32(args[3]))
	dst, err := env.Memory(args[2], n, true)
	if err != nil {
		return 0, err
	}
	off := uint64(uint32(args[1]))
	var start int
	switch uint32(args[4]) {
	case HdrStartMAC:
		start = s.mac
	case HdrStartNet:
		start = s.network
	default:
		clear(dst)
		return errno(maps.EFAULT), nil
	}
	if off > 0xffff || uint64(start)+off+n > uint64(s.tail) {
		clear(dst)
		return errno(maps.EFAULT), nil
	}
	copy(dst, s.buf[start+int(off):])
	return 0, nil
}

// SkbStoreBytes is bpf_skb_store_bytes: copy len bytes into the packet at
// offset from skb->data. BPF_F_RECOMPUTE_CSUM keeps a CHECKSUM_COMPLETE
// skb->csum in step; BPF_F_INVALIDATE_HASH clears skb->hash.
func SkbStoreBytes(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	n := uint64(uint32(args[3]))
	src, err := env.Memory(args[2], n, false)
	if err != nil {
		return 0, err
	}
	flags := args[4]
	if flags&^(FlagRecomputeCsum|FlagInvalidateHash) != 0 {
		return errno(maps.EINVAL), nil
	}
	off := uint64(uint32(args[1]))
	if off > intMax || off+n > uint64(s.length()) {
		return errno(maps.EFAULT), nil
	}
	ptr := s.buf[s.data+int(off) : s.data+int(off+n)]
	if flags&FlagRecomputeCsum != 0 && s.ipSummed == checksumComplete {
		s.csum = csumBlockSub(s.csum, csumPartial(ptr, 0), int(off))
	}
	copy(ptr, src)
	if flags&FlagRecomputeCsum != 0 && s.ipSummed == checksumComplete {
		s.csum = csumBlockAdd(s.csum, csumPartial(ptr, 0), int(off))
	}
	if flags&FlagInvalidateHash != 0 {
		s.clearHash()
	}
	r.syncSKB()
	return 0, nil
}

// csumField returns the 16-bit checksum at offset from skb->data for
// l3/l4_csum_replace, or the errno.
func (s *skbState) csumField(off uint64) (int, maps.Errno) {
	if off > 0xffff || off&1 != 0 {
		return 0, maps.EFAULT
	}
	if off+2 > uint64(s.length()) {
		return 0, maps.EFAULT
	}
	return s.data + int(off), 0
}

// L3CsumReplace is bpf_l3_csum_replace: update the checksum at offset for
// a field changing from from to to; the low 4 bits of flags give the
// field's size (2 or 4), or 0 for to being a checksum difference
// (bpf_csum_diff's result).
func L3CsumReplace(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	from, to, flags := args[2], args[3], args[4]
	if flags&^FlagHdrFieldMask != 0 {
		return errno(maps.EINVAL), nil
	}
	at, e := s.csumField(uint64(uint32(args[1])))
	if e != 0 {
		return errno(e), nil
	}
	sum := le.Uint16(s.buf[at:])
	switch flags & FlagHdrFieldMask {
	case 0:
		if from != 0 {
			return errno(maps.EINVAL), nil
		}
		sum = csumReplaceByDiff(sum, uint32(to))
	case 2:
		sum = csumReplace2(sum, uint16(from), uint16(to))
	case 4:
		sum = csumReplace4(sum, uint32(from), uint32(to))
	default:
		return errno(maps.EINVAL), nil
	}
	le.PutUint16(s.buf[at:], sum)
	r.syncSKB()
	return 0, nil
}

// L4CsumReplace is bpf_l4_csum_replace: as bpf_l3_csum_replace for a
// transport checksum. BPF_F_PSEUDO_HDR says the field is part of the
// pseudo-header (it then also updates a CHECKSUM_COMPLETE skb->csum,
// inet_proto_csum_replace4 in net/core/utils.c); BPF_F_MARK_MANGLED_0
// leaves a zero (absent) UDP checksum alone unless BPF_F_MARK_ENFORCE, and
// writes CSUM_MANGLED_0 for a result of zero.
func L4CsumReplace(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	from, to, flags := args[2], args[3], args[4]
	pseudo := flags&FlagPseudoHdr != 0
	mmzero := flags&FlagMarkMangled0 != 0
	enforce := flags&FlagMarkEnforce != 0
	ipv6 := flags&FlagIPv6 != 0
	if flags&^(FlagMarkMangled0|FlagMarkEnforce|FlagPseudoHdr|FlagHdrFieldMask|FlagIPv6) != 0 {
		return errno(maps.EINVAL), nil
	}
	at, e := s.csumField(uint64(uint32(args[1])))
	if e != 0 {
		return errno(e), nil
	}
	sum := le.Uint16(s.buf[at:])
	if mmzero && !enforce && sum == 0 {
		return 0, nil
	}
	complete := s.ipSummed == checksumComplete
	switch flags & FlagHdrFieldMask {
	case 0:
		if from != 0 {
			return errno(maps.EINVAL), nil
		}
		diff := uint32(to)
		sum = csumReplaceByDiff(sum, diff)
		if complete && pseudo && !ipv6 {
			s.csum = ^csumSub(diff, s.csum)
		}
	case 2, 4:
		f, t := uint32(from), uint32(to)
		if flags&FlagHdrFieldMask == 2 {
			f, t = uint32(uint16(from)), uint32(uint16(to))
		}
		sum = csumReplace4(sum, f, t)
		if complete && pseudo {
			s.csum = ^csumAdd(csumSub(^s.csum, f), t)
		}
	default:
		return errno(maps.EINVAL), nil
	}
	if mmzero && sum == 0 {
		sum = csumMangled0
	}
	le.PutUint16(s.buf[at:], sum)
	r.syncSKB()
	return 0, nil
}

// protoCsumDiff is bpf_csum_diff's prototype.
var protoCsumDiff = helpers.Proto{PktAccess: true, Args: []helpers.ArgType{
	helpers.ArgPtrToMem | helpers.ArgMaybeNull | helpers.ArgReadOnly, helpers.ArgConstSizeOrZero,
	helpers.ArgPtrToMem | helpers.ArgMaybeNull | helpers.ArgReadOnly, helpers.ArgConstSizeOrZero,
	helpers.ArgAnything,
}}

// CsumDiff is bpf_csum_diff: see ChecksumDiff. It needs no program type
// state, so any type may be given it.
func CsumDiff(env helpers.Env, args *[5]uint64) (uint64, error) {
	from, err := env.Memory(args[0], uint64(uint32(args[1])), false)
	if err != nil {
		return 0, err
	}
	to, err := env.Memory(args[2], uint64(uint32(args[3])), false)
	if err != nil {
		return 0, err
	}
	return uint64(ChecksumDiff(from, to, uint32(args[4]))), nil
}

// CsumUpdate is bpf_csum_update: add csum to a CHECKSUM_COMPLETE
// skb->csum and return it; -ENOTSUPP for other checksum states (every
// test run without BPF_F_TEST_SKB_CHECKSUM_COMPLETE).
func CsumUpdate(env helpers.Env, args *[5]uint64) (uint64, error) {
	_, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	if s.ipSummed != checksumComplete {
		return errno(eNOTSUPP), nil
	}
	s.csum = csumAdd(s.csum, uint32(args[1]))
	return uint64(s.csum), nil
}

// CsumLevel is bpf_csum_level (BPF_CSUM_LEVEL_QUERY, _INC, _DEC, _RESET).
func CsumLevel(env helpers.Env, args *[5]uint64) (uint64, error) {
	_, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	switch args[1] {
	case 0: // QUERY
		if s.ipSummed == checksumUnnecessary {
			return uint64(s.csumLevel), nil
		}
		return errno(eACCES), nil
	case 1: // INC: __skb_incr_checksum_unnecessary
		switch s.ipSummed {
		case checksumUnnecessary:
			if s.csumLevel < 3 {
				s.csumLevel++
			}
		case checksumNone:
			s.ipSummed, s.csumLevel = checksumUnnecessary, 0
		}
	case 2: // DEC: __skb_decr_checksum_unnecessary
		if s.ipSummed == checksumUnnecessary {
			if s.csumLevel == 0 {
				s.ipSummed = checksumNone
			} else {
				s.csumLevel--
			}
		}
	case 3: // RESET: __skb_reset_checksum_unnecessary
		s.resetChecksumUnnecessary()
	default:
		return errno(maps.EINVAL), nil
	}
	return 0, nil
}

func (s *skbState) resetChecksumUnnecessary() {
	if s.ipSummed == checksumUnnecessary {
		s.ipSummed, s.csumLevel = checksumNone, 0
	}
}

// SkbPullData is bpf_skb_pull_data: make len bytes (0: the whole linear
// part) directly accessible. waggle's socket buffers are always linear, so
// it only checks the length (-ENOMEM beyond the packet).
func SkbPullData(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	if uint64(uint32(args[1])) > uint64(s.length()) {
		return errno(eNOMEM), nil
	}
	r.syncSKB()
	return 0, nil
}

// SkbChangeType is bpf_skb_change_type: set skb->pkt_type to a value up to
// PACKET_OTHERHOST.
func SkbChangeType(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	t := uint32(args[1])
	if s.pktType > packetOtherHost || t > packetOtherHost {
		return errno(maps.EINVAL), nil
	}
	s.pktType = uint8(t)
	r.syncSKB()
	return 0, nil
}

// genericPush is bpf_skb_generic_push plus bpf_skb_net_hdr_push: open n
// zeroed bytes at off from skb->data, moving the first off bytes down.
func (s *skbState) netHdrPush(off, n int) maps.Errno {
	if !s.ensureRoom(n, 0) {
		return eNOMEM
	}
	transSame := s.transport == s.network
	s.data -= n
	copy(s.buf[s.data:], s.buf[s.data+n:s.data+n+off])
	clear(s.buf[s.data+off : s.data+off+n])
	s.mac -= n
	s.network -= n
	if transSame {
		s.transport = s.network
	}
	return 0
}

// netHdrPop is bpf_skb_generic_pop plus bpf_skb_net_hdr_pop: remove n
// bytes at off from skb->data.
func (s *skbState) netHdrPop(off, n int) maps.Errno {
	if off+n > s.length() {
		return eNOMEM
	}
	transSame := s.transport == s.network
	old := s.data
	s.data += n
	s.postpullRcsum(s.buf[old+off : old+off+n])
	copy(s.buf[s.data:], s.buf[old:old+off])
	s.mac += n
	s.network += n
	if transSame {
		s.transport = s.network
	}
	return 0
}

// SkbChangeProto is bpf_skb_change_proto: migrate between IPv4 and IPv6
// (bpf_skb_proto_4_to_6, _6_to_4) by growing or shrinking the room after
// the MAC header by 20 bytes; the program writes the new header.
func SkbChangeProto(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	defer r.syncSKB()
	if args[2] != 0 {
		return errno(maps.EINVAL), nil
	}
	to := uint16(args[1])
	off := s.network - s.mac
	switch {
	case s.protocol == be16(ethPIP) && to == be16(ethPIPv6):
		if e := s.netHdrPush(off, 20); e != 0 {
			return errno(e), nil
		}
		s.protocol = be16(ethPIPv6)
	case s.protocol == be16(ethPIPv6) && to == be16(ethPIP):
		if e := s.netHdrPop(off, 20); e != 0 {
			return errno(e), nil
		}
		s.protocol = be16(ethPIP)
	default:
		return errno(eNOTSUPP), nil
	}
	s.clearHash()
	return 0, nil
}

// SkbChangeTail is bpf_skb_change_tail: grow (with zeros) or trim the
// packet to new_len bytes, not below the network (or transport) header.
func SkbChangeTail(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	defer r.syncSKB()
	newLen := int(uint32(args[1]))
	minLen := 0
	if o := s.network - s.data; o > 0 {
		minLen = o
	}
	if s.transport >= 0 {
		if o := s.transport - s.data; o > 0 {
			minLen = o
		}
	}
	if args[2] != 0 || uint32(args[1]) > skbMaxLen || newLen < minLen {
		return errno(maps.EINVAL), nil
	}
	if s.encap {
		return errno(eNOTSUPP), nil
	}
	old := s.length()
	switch {
	case newLen > old:
		if !s.ensureRoom(0, newLen-old) {
			return errno(eNOMEM), nil
		}
		if s.ipSummed == checksumComplete {
			s.ipSummed = checksumNone
		}
		clear(s.buf[s.tail : s.data+newLen])
		s.tail = s.data + newLen
	case newLen < old:
		if s.ipSummed == checksumComplete {
			s.ipSummed = checksumNone
		}
		s.tail = s.data + newLen
	}
	if s.gsoSize != 0 {
		s.gsoSize, s.gsoSegs = 0, 0 // skb_gso_reset
	}
	return 0, nil
}

// SkbChangeHead is bpf_skb_change_head: push head_room zeroed bytes in
// front of the packet, which become the new MAC header.
func SkbChangeHead(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	defer r.syncSKB()
	room := uint32(args[1])
	newLen := uint32(s.length()) + room
	if args[2] != 0 || s.gsoSize == 0 && newLen > skbMaxLen || newLen < uint32(s.length()) {
		return errno(maps.EINVAL), nil
	}
	if !s.ensureRoom(int(room), 0) {
		return errno(eNOMEM), nil
	}
	s.data -= int(room)
	clear(s.buf[s.data : s.data+int(room)])
	s.mac = s.data
	return 0, nil
}

// SkbAdjustRoom is bpf_skb_adjust_room: grow or shrink the room at the
// network header (BPF_ADJ_ROOM_NET: after the IP header, BPF_ADJ_ROOM_MAC:
// after the MAC header) by len_diff bytes, for encapsulation and
// decapsulation. The encap flags mark the skb as encapsulated and set the
// inner headers and the outer protocol, as net/core/filter.c does; GSO
// packets other than plain ones are refused with -ENOTSUPP.
func SkbAdjustRoom(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	defer r.syncSKB()
	diff := int32(args[1])
	mode, flags := uint32(args[2]), args[3]
	const encapL3 = FlagAdjRoomEncapL3IPv4 | FlagAdjRoomEncapL3IPv6
	const decapL3 = FlagAdjRoomDecapL3IPv4 | FlagAdjRoomDecapL3IPv6
	const mask = FlagAdjRoomFixedGSO | encapL3 | FlagAdjRoomEncapL4GRE | FlagAdjRoomEncapL4UDP |
		FlagAdjRoomEncapL2Eth | 0xff<<adjRoomEncapL2Shift | decapL3
	abs := int(diff)
	shrink := diff < 0
	if shrink {
		abs = -abs
	}
	if flags&^(mask|FlagAdjRoomNoCsumReset) != 0 {
		return errno(maps.EINVAL), nil
	}
	if abs > 0xfff {
		return errno(maps.EFAULT), nil
	}
	var base int
	switch s.protocol {
	case be16(ethPIP):
		base = 20
	case be16(ethPIPv6):
		base = 40
	default:
		return errno(eNOTSUPP), nil
	}
	lenMin := base
	off := s.network - s.mac
	switch mode {
	case AdjRoomNet:
		off += base
	case AdjRoomMAC:
	default:
		return errno(eNOTSUPP), nil
	}
	if flags&decapL3 != 0 {
		if !shrink {
			return errno(maps.EINVAL), nil
		}
		switch flags & decapL3 {
		case FlagAdjRoomDecapL3IPv4:
			lenMin = 20
		case FlagAdjRoomDecapL3IPv6:
			lenMin = 40
		default:
			return errno(maps.EINVAL), nil
		}
	}
	lenCur := s.length() - (s.network - s.data)
	if shrink && (abs >= lenCur || lenCur-abs < lenMin) || !shrink && s.length()+abs > skbMaxLen && s.gsoSize == 0 {
		return errno(eNOTSUPP), nil
	}
	var e maps.Errno
	if shrink {
		e = s.netShrink(off, abs, flags)
	} else {
		e = s.netGrow(off, abs, flags)
	}
	if e != 0 {
		return errno(e), nil
	}
	if flags&FlagAdjRoomNoCsumReset == 0 {
		s.resetChecksumUnnecessary()
	}
	return 0, nil
}

// netGrow is bpf_skb_net_grow.
func (s *skbState) netGrow(off, n int, flags uint64) maps.Errno {
	innerMAC := int(flags >> adjRoomEncapL2Shift)
	encap := flags&(FlagAdjRoomEncapL3IPv4|FlagAdjRoomEncapL3IPv6) != 0
	if s.gsoSize != 0 {
		return eNOTSUPP // a GSO packet of an unknown (non-TCP, non-UDP_L4) type
	}
	var macLen int
	if encap {
		switch {
		case flags&FlagAdjRoomEncapL3IPv4 != 0 && flags&FlagAdjRoomEncapL3IPv6 != 0,
			flags&FlagAdjRoomEncapL4GRE != 0 && flags&FlagAdjRoomEncapL4UDP != 0,
			flags&FlagAdjRoomEncapL2Eth != 0 && innerMAC < ethHLen:
			return maps.EINVAL
		case s.encap:
			return eALREADY
		case innerMAC > n:
			return maps.EINVAL
		}
		macLen = s.network - s.mac
	}
	if e := s.netHdrPush(off, n); e != 0 {
		return e
	}
	if encap {
		s.encap = true
		s.network = s.data + macLen
		if flags&(FlagAdjRoomEncapL4GRE|FlagAdjRoomEncapL4UDP) != 0 {
			nh := 20
			if flags&FlagAdjRoomEncapL3IPv6 != 0 {
				nh = 40
			}
			s.transport = s.data + macLen + nh
		}
		switch {
		case s.protocol == be16(ethPIP) && flags&FlagAdjRoomEncapL3IPv6 != 0:
			s.protocol = be16(ethPIPv6)
		case s.protocol == be16(ethPIPv6) && flags&FlagAdjRoomEncapL3IPv4 != 0:
			s.protocol = be16(ethPIP)
		}
	}
	return 0
}

// netShrink is bpf_skb_net_shrink.
func (s *skbState) netShrink(off, n int, flags uint64) maps.Errno {
	if flags&^(FlagAdjRoomFixedGSO|FlagAdjRoomDecapL3IPv4|FlagAdjRoomDecapL3IPv6|FlagAdjRoomNoCsumReset) != 0 {
		return maps.EINVAL
	}
	if s.gsoSize != 0 {
		return eNOTSUPP
	}
	if e := s.netHdrPop(off, n); e != 0 {
		return e
	}
	switch {
	case s.protocol == be16(ethPIP) && flags&FlagAdjRoomDecapL3IPv6 != 0:
		s.protocol = be16(ethPIPv6)
	case s.protocol == be16(ethPIPv6) && flags&FlagAdjRoomDecapL3IPv4 != 0:
		s.protocol = be16(ethPIP)
	}
	return 0
}

func ethTypeVLAN(p uint16) bool { return p == be16(ethP8021Q) || p == be16(ethP8021AD) }

// SkbVlanPush is bpf_skb_vlan_push: set the hardware-accelerated VLAN tag
// (vlan_proto must be 802.1Q or 802.1ad in network order, otherwise 802.1Q
// is used); a tag already there is first moved into the packet after the
// MAC addresses (skb_vlan_push in net/core/skbuff.c).
func SkbVlanPush(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	defer r.syncSKB()
	proto, tci := uint16(args[1]), uint16(args[2])
	if !ethTypeVLAN(proto) {
		proto = be16(ethP8021Q)
	}
	if s.vlanProto != 0 || s.vlanTCI != 0 {
		if s.data != s.mac {
			return errno(maps.EINVAL), nil
		}
		if s.length() < ethHLen {
			return errno(maps.EINVAL), nil
		}
		if !s.ensureRoom(vlanHLen, 0) {
			return errno(eNOMEM), nil
		}
		s.data -= vlanHLen
		copy(s.buf[s.data:], s.buf[s.data+vlanHLen:s.data+vlanHLen+12])
		s.mac -= vlanHLen
		le.PutUint16(s.buf[s.data+12:], s.vlanProto)
		le.PutUint16(s.buf[s.data+14:], be16(s.vlanTCI))
		s.protocol = s.vlanProto
		s.network -= vlanHLen
		s.postpushRcsum(s.buf[s.data+12 : s.data+16])
	}
	s.vlanProto, s.vlanTCI = proto, tci
	return 0, nil
}

// vlanPopPayload is __skb_vlan_pop: remove the VLAN header after the MAC
// addresses and return its TCI.
func (s *skbState) vlanPopPayload() (uint16, maps.Errno) {
	if s.data != s.mac {
		return 0, maps.EINVAL
	}
	if s.length() < ethHLen+vlanHLen {
		return 0, eNOMEM
	}
	s.postpullRcsum(s.buf[s.data+12 : s.data+16])
	tci := be16(le.Uint16(s.buf[s.data+14:]))
	encap := le.Uint16(s.buf[s.data+16:])
	var raw uint16
	if s.data+18+2 <= s.tail {
		raw = le.Uint16(s.buf[s.data+18:])
	}
	copy(s.buf[s.data+vlanHLen:], s.buf[s.data:s.data+12])
	s.data += vlanHLen
	// vlan_set_encap_proto
	switch {
	case encap&0x00ff >= 0x06:
		s.protocol = encap
	case raw == 0xffff:
		s.protocol = be16(ethP8023)
	default:
		s.protocol = be16(ethP8022)
	}
	s.mac += vlanHLen
	if s.network-s.data < ethHLen {
		s.network = s.data + ethHLen
	}
	return tci, 0
}

// SkbVlanPop is bpf_skb_vlan_pop: remove the hardware-accelerated VLAN tag,
// or the outer tag in the packet if there is none, and move a next tag in
// the packet up into the accelerated one (skb_vlan_pop).
func SkbVlanPop(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	defer r.syncSKB()
	if s.vlanProto != 0 || s.vlanTCI != 0 {
		s.vlanProto, s.vlanTCI = 0, 0
	} else {
		if !ethTypeVLAN(s.protocol) {
			return 0, nil
		}
		if _, e := s.vlanPopPayload(); e != 0 {
			return errno(e), nil
		}
	}
	if !ethTypeVLAN(s.protocol) {
		return 0, nil
	}
	proto := s.protocol
	tci, e := s.vlanPopPayload()
	if e != 0 {
		return errno(e), nil
	}
	s.vlanProto, s.vlanTCI = proto, tci
	return 0, nil
}

// GetHashRecalc is bpf_get_hash_recalc: skb->hash, computed from the
// packet's flow if it is not set (skb_get_hash). Linux hashes the flow
// keys with a key chosen at random at boot, so the value differs from
// the kernel's; packets hash alike exactly when they do in Linux (see
// flowHash).
func GetHashRecalc(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	if !s.l4Hash && !s.swHash {
		h, l4 := flowHash(s)
		s.hash, s.swHash, s.l4Hash = h, true, l4
		r.syncSKB()
	}
	return uint64(s.hash), nil
}

// SetHashInvalid is bpf_set_hash_invalid: clear skb->hash, so the next
// bpf_get_hash_recalc computes it again.
func SetHashInvalid(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	s.clearHash()
	r.syncSKB()
	return 0, nil
}

// SetHash is bpf_set_hash: set skb->hash as a software L4 hash.
func SetHash(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	s.hash, s.swHash, s.l4Hash = uint32(args[1]), true, true
	r.syncSKB()
	return 0, nil
}

// RedirectSKB is bpf_redirect for socket buffer programs: record ifindex
// (with BPF_F_INGRESS: to its ingress) and return TC_ACT_REDIRECT; any
// other flag makes it return TC_ACT_SHOT. In user space the target is
// reported in Output.Redirect.
func RedirectSKB(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	if args[1]&^FlagIngress != 0 {
		return TCActShot, nil
	}
	r.rd, r.hasRd = Redirect{Ifindex: uint32(args[0]), Flags: args[1]}, true
	return TCActRedirect, nil
}

// skbDefs are the socket buffer helpers.
// The clocks of bpf_skb_set_tstamp (enum skb_tstamp_type, Linux 6.11).
const (
	skbClockRealtime  = 0
	skbClockMonotonic = 1
	skbClockTAI       = 2
)

// SkbSetTstamp is bpf_skb_set_tstamp(skb, tstamp, tstamp_type): it sets
// __sk_buff.tstamp and .tstamp_type, for IPv4 and IPv6 packets only
// (-EOPNOTSUPP otherwise). The clock is realtime, monotonic or TAI; the
// latter two need a time other than 0; anything else is -EINVAL.
func SkbSetTstamp(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	if s.protocol != be16(ethPIP) && s.protocol != be16(ethPIPv6) {
		return errno(maps.EOPNOTSUPP), nil
	}
	tstamp, typ := args[1], uint32(args[2])
	switch typ {
	case skbClockRealtime:
	case skbClockMonotonic, skbClockTAI:
		if tstamp == 0 {
			return errno(maps.EINVAL), nil
		}
	default:
		return errno(maps.EINVAL), nil
	}
	le.PutUint64(r.shadow[rtSkbTstamp:], tstamp)
	le.PutUint32(r.shadow[rtSkbTstampType:], typ)
	return 0, nil
}

var skbDefs = helpers.Defs{
	{ID: idSkbSetTstamp, Name: "skb_set_tstamp", Proto: protoCtxAnyAny, Func: SkbSetTstamp},
	{ID: helpers.IDPerfEventOutput, Name: "perf_event_output", Proto: protoEventOutput, Func: SkbEventOutput},
	{ID: idSkbLoadBytes, Name: "skb_load_bytes", Proto: protoLoadBytes, Func: SkbLoadBytes},
	{ID: idSkbLoadBytesRelative, Name: "skb_load_bytes_relative", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgPtrToUninitMem, helpers.ArgConstSize, helpers.ArgAnything}}, Func: SkbLoadBytesRelative},
	{ID: idSkbStoreBytes, Name: "skb_store_bytes", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize, helpers.ArgAnything}, ChangesPktData: true}, Func: SkbStoreBytes},
	{ID: idL3CsumReplace, Name: "l3_csum_replace", Proto: changesPkt(protoCtxAny4), Func: L3CsumReplace},
	{ID: idL4CsumReplace, Name: "l4_csum_replace", Proto: changesPkt(protoCtxAny4), Func: L4CsumReplace},
	{ID: idCsumDiff, Name: "csum_diff", Proto: protoCsumDiff, Func: CsumDiff},
	{ID: idCsumUpdate, Name: "csum_update", Proto: protoCtxAny, Func: CsumUpdate},
	{ID: idCsumLevel, Name: "csum_level", Proto: protoCtxAny, Func: CsumLevel},
	{ID: idSkbPullData, Name: "skb_pull_data", Proto: changesPkt(protoCtxAny), Func: SkbPullData},
	{ID: idSkbChangeType, Name: "skb_change_type", Proto: protoCtxAny, Func: SkbChangeType},
	{ID: idSkbChangeProto, Name: "skb_change_proto", Proto: changesPkt(protoCtxAnyAny), Func: SkbChangeProto},
	{ID: idSkbChangeTail, Name: "skb_change_tail", Proto: changesPkt(protoCtxAnyAny), Func: SkbChangeTail},
	{ID: idSkbChangeHead, Name: "skb_change_head", Proto: changesPkt(protoCtxAnyAny), Func: SkbChangeHead},
	{ID: idSkbAdjustRoom, Name: "skb_adjust_room", Proto: changesPkt(protoCtxAny3), Func: SkbAdjustRoom},
	{ID: idSkbVlanPush, Name: "skb_vlan_push", Proto: changesPkt(protoCtxAnyAny), Func: SkbVlanPush},
	{ID: idSkbVlanPop, Name: "skb_vlan_pop", Proto: changesPkt(protoCtx), Func: SkbVlanPop},
	{ID: idGetHashRecalc, Name: "get_hash_recalc", Proto: protoCtx, Func: GetHashRecalc},
	{ID: idSetHashInvalid, Name: "set_hash_invalid", Proto: protoCtx, Func: SetHashInvalid},
	{ID: idSetHash, Name: "set_hash", Proto: protoCtxAny, Func: SetHash},
	{ID: idRedirect, Name: "redirect", Proto: protoAnyAny, Func: RedirectSKB},
}
