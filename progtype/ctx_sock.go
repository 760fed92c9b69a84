package progtype

import "fmt"

// The socket contexts: struct bpf_sock (cgroup_sock programs, and what
// socket pointers point to), struct bpf_sock_ops (sock_ops programs) and
// struct bpf_sock_addr (cgroup_sock_addr programs), from
// include/uapi/linux/bpf.h. The members of bpf_sock and bpf_sock_ops are
// 4 or 8 bytes and their pointers are 8-byte __bpf_md_ptr members, so their
// runtime layout is the UAPI layout itself (uapiLayout), except for
// bpf_sock.rx_queue_mapping, whose sign extension needs a wider slot; a
// socket pointer points to a struct bpf_sock in that layout (net.go).
// bpf_sock_addr's shadow puts its writable fields last.

// UAPI offsets of struct bpf_sock.
const (
	bskBoundDevIf     = 0
	bskFamily         = 4
	bskType           = 8
	bskProtocol       = 12
	bskMark           = 16
	bskPriority       = 20
	bskSrcIP4         = 24
	bskSrcIP6         = 28 // [4]
	bskSrcPort        = 44 // host order
	bskDstPort        = 48 // __be16, then 2 bytes of padding
	bskDstIP4         = 52
	bskDstIP6         = 56 // [4]
	bskState          = 72
	bskRxQueueMapping = 76 // __s32
	// BpfSockSize is sizeof(struct bpf_sock).
	BpfSockSize = 80
	// rtBskRxQueue is the 8-byte runtime slot of rx_queue_mapping in the
	// cgroup_sock shadow.
	rtBskRxQueue = 80
)

// bpfSockFields are the members of struct bpf_sock at their UAPI offsets.
func bpfSockFields() []Field {
	return []Field{
		{Name: "bound_dev_if", Off: bskBoundDevIf, Size: 4, Runtime: bskBoundDevIf},
		{Name: "family", Off: bskFamily, Size: 4, Runtime: bskFamily},
		{Name: "type", Off: bskType, Size: 4, Runtime: bskType},
		{Name: "protocol", Off: bskProtocol, Size: 4, Runtime: bskProtocol},
		{Name: "mark", Off: bskMark, Size: 4, Runtime: bskMark},
		{Name: "priority", Off: bskPriority, Size: 4, Runtime: bskPriority},
		{Name: "src_ip4", Off: bskSrcIP4, Size: 4, Runtime: bskSrcIP4},
		{Name: "src_ip6", Kind: Array, Off: bskSrcIP6, Size: 16, Elem: 4, Runtime: bskSrcIP6},
		{Name: "src_port", Off: bskSrcPort, Size: 4, Runtime: bskSrcPort},
		{Name: "dst_port", Off: bskDstPort, Size: 2, Runtime: bskDstPort},
		{Name: "dst_ip4", Off: bskDstIP4, Size: 4, Runtime: bskDstIP4},
		{Name: "dst_ip6", Kind: Array, Off: bskDstIP6, Size: 16, Elem: 4, Runtime: bskDstIP6},
		{Name: "state", Off: bskState, Size: 4, Runtime: bskState},
		{Name: "rx_queue_mapping", Off: bskRxQueueMapping, Size: 4, Runtime: rtBskRxQueue},
	}
}

// bpfSockLayout is struct bpf_sock as cgroup_sock programs see it: the UAPI
// layout, with rx_queue_mapping moved to an 8-byte slot after it (the
// kernel's rewrite makes a 64-bit -1 of NO_QUEUE_MAPPING). Programs may
// write bound_dev_if, mark and priority:
//
//	 0 bound_dev_if  4 family  8 type  12 protocol  16 mark  20 priority
//	24 src_ip4  28 src_ip6[4]  44 src_port  48 dst_port (be16)  52 dst_ip4
//	56 dst_ip6[4]  72 state  (76 unused)  80 rx_queue_mapping (s64)  (88 bytes)
var bpfSockLayout = &Layout{
	Name: "bpf_sock", Size: BpfSockSize, RuntimeSize: rtBskRxQueue + 8,
	Fields:   bpfSockFields(),
	writable: [][2]int{{bskBoundDevIf, bskBoundDevIf + 4}, {bskMark, bskPriority + 4}},
}

// bpfSockTargetSize is the size of the struct sock member each bpf_sock
// field is read from (bpf_sock_convert_ctx_access's target_size) where it
// is narrower than 4 bytes: a load at least that wide gives the whole
// member, whatever byte of the field it starts at.
var bpfSockTargetSize = map[int]int{
	bskFamily: 2, bskType: 2, bskProtocol: 2, bskSrcPort: 2, bskDstPort: 2, bskState: 1,
}

// sockRules is sock_filter_is_valid_access (net/core/filter.c):
// bpf_sock_is_valid_access and __sock_filter_check_attach_type, and the
// rewrite onto the shadow.
func sockRules(k *Kind, a ctxAccess) (conversion, string) {
	off, size := a.off, a.size
	if reason := bpfSockAccess(a); reason != "" {
		return conversion{}, reason
	}
	field := bpfSockLayout.Field(off)
	switch {
	case inRange(off, bskBoundDevIf, 4), inRange(off, bskMark, 4), inRange(off, bskPriority, 4):
		if k.attach != AttachCgroupInetSockCreate && k.attach != AttachCgroupInetSockRelease {
			return conversion{}, "only programs attached at socket creation or release (BPF_CGROUP_INET_SOCK_CREATE, _RELEASE) may access bound_dev_if, mark and priority"
		}
		return conversion{off: off}, ""
	case inRange(off, bskSrcIP4, 4) && k.attach != AttachCgroupInet4PostBind:
		return conversion{}, "only BPF_CGROUP_INET4_POST_BIND programs may read src_ip4"
	case inRange(off, bskSrcIP6, 16) && k.attach != AttachCgroupInet6PostBind:
		return conversion{}, "only BPF_CGROUP_INET6_POST_BIND programs may read src_ip6"
	case inRange(off, bskSrcPort, 4) && k.attach != AttachCgroupInet4PostBind && k.attach != AttachCgroupInet6PostBind:
		return conversion{}, "only post-bind programs (BPF_CGROUP_INET4_POST_BIND, _INET6_) may read src_port"
	}
	if a.write {
		return conversion{}, "the field is read-only (programs attached at socket creation or release may write bound_dev_if, mark and priority)"
	}
	if field.Off == bskRxQueueMapping {
		// The kernel loads the u16 sk_rx_queue_mapping and turns
		// NO_QUEUE_MAPPING into a 64-bit -1; the slot holds that value.
		switch {
		case size == 1:
			return conversion{off: rtBskRxQueue + off - bskRxQueueMapping}, ""
		case a.signExt:
			return conversion{off: rtBskRxQueue}, ""
		}
		return conversion{off: rtBskRxQueue, size: 8}, ""
	}
	c := conversion{off: off}
	if t := bpfSockTargetSize[field.Off]; t != 0 && size >= t {
		c.off = field.Off
	}
	return c, ""
}

// bpfSockAccess is bpf_sock_is_valid_access: inside the struct, aligned;
// narrow loads of the addresses, ports, family, type, protocol, state and
// rx_queue_mapping; 4-byte accesses of the others.
func bpfSockAccess(a ctxAccess) string {
	off, size := a.off, a.size
	if off < 0 || off >= BpfSockSize {
		return fmt.Sprintf("offset %d is outside bpf_sock (%d bytes)", off, BpfSockSize)
	}
	if off%size != 0 {
		return fmt.Sprintf("%s access at offset %d is misaligned", sized(size), off)
	}
	switch {
	case inRange(off, bskDstPort, 2):
		if size > 2 && !(size == 4 && off == bskDstPort) {
			return fmt.Sprintf("%s access; dst_port is a 2-byte field (or read with a 4-byte load)", sized(size))
		}
		return ""
	case inRange(off, bskDstPort+2, 2):
		return "the 2 bytes after dst_port are padding"
	case off == bskState, off == bskFamily, off == bskType, off == bskProtocol, off == bskSrcPort,
		off == bskRxQueueMapping, inRange(off, bskSrcIP4, 4), inRange(off, bskSrcIP6, 16),
		inRange(off, bskDstIP4, 4), inRange(off, bskDstIP6, 16):
		if size > 4 {
			return fmt.Sprintf("%s access of a 4-byte field", sized(size))
		}
		return ""
	}
	if size != 4 {
		return fmt.Sprintf("%s access; the field is accessed with 4-byte loads and stores", sized(size))
	}
	return ""
}

// UAPI offsets of struct bpf_sock_ops.
const (
	sopOp            = 0
	sopArgs          = 4 // args[4], reply, replylong[4]
	sopFamily        = 20
	sopRemoteIP4     = 24
	sopLocalIP4      = 28
	sopRemoteIP6     = 32 // [4]
	sopLocalIP6      = 48 // [4]
	sopRemotePort    = 64 // the be16 port in the upper 16 bits
	sopLocalPort     = 68 // host order
	sopIsFullsock    = 72
	sopSndCwnd       = 76
	sopSrttUs        = 80
	sopCbFlags       = 84 // bpf_sock_ops_cb_flags
	sopState         = 88
	sopRttMin        = 92
	sopSndSsthresh   = 96
	sopSkTxhash      = 164
	sopBytesReceived = 168
	sopBytesAcked    = 176
	sopSk            = 184
	sopSkbData       = 192
	sopSkbDataEnd    = 200
	sopSkbLen        = 208
	sopSkbTCPFlags   = 212
	sopSkbHwtstamp   = 216
	// SockOpsSize is sizeof(struct bpf_sock_ops).
	SockOpsSize = 224
)

// sockOpsNames are the u32 members of struct bpf_sock_ops from snd_cwnd to
// sk_txhash, in order.
var sockOpsNames = [...]string{
	"snd_cwnd", "srtt_us", "bpf_sock_ops_cb_flags", "state", "rtt_min", "snd_ssthresh",
	"rcv_nxt", "snd_nxt", "snd_una", "mss_cache", "ecn_flags", "rate_delivered",
	"rate_interval_us", "packets_out", "retrans_out", "total_retrans", "segs_in",
	"data_segs_in", "segs_out", "data_segs_out", "lost_out", "sacked_out", "sk_txhash",
}

// sockOpsLayout is struct bpf_sock_ops; its runtime layout is the UAPI
// layout, with reply (args[0]) and sk_txhash writable.
var sockOpsLayout = func() *Layout {
	fs := []Field{
		{Name: "op", Off: sopOp, Size: 4},
		{Name: "args", Kind: Array, Off: sopArgs, Size: 16, Elem: 4},
		{Name: "family", Off: sopFamily, Size: 4},
		{Name: "remote_ip4", Off: sopRemoteIP4, Size: 4},
		{Name: "local_ip4", Off: sopLocalIP4, Size: 4},
		{Name: "remote_ip6", Kind: Array, Off: sopRemoteIP6, Size: 16, Elem: 4},
		{Name: "local_ip6", Kind: Array, Off: sopLocalIP6, Size: 16, Elem: 4},
		{Name: "remote_port", Off: sopRemotePort, Size: 4},
		{Name: "local_port", Off: sopLocalPort, Size: 4},
		{Name: "is_fullsock", Off: sopIsFullsock, Size: 4},
	}
	for i, n := range sockOpsNames {
		fs = append(fs, Field{Name: n, Off: sopSndCwnd + 4*i, Size: 4})
	}
	fs = append(fs,
		Field{Name: "bytes_received", Off: sopBytesReceived, Size: 8},
		Field{Name: "bytes_acked", Off: sopBytesAcked, Size: 8},
		Field{Name: "sk", Off: sopSk, Size: 8},
		Field{Name: "skb_data", Off: sopSkbData, Size: 8},
		Field{Name: "skb_data_end", Off: sopSkbDataEnd, Size: 8},
		Field{Name: "skb_len", Off: sopSkbLen, Size: 4},
		Field{Name: "skb_tcp_flags", Off: sopSkbTCPFlags, Size: 4},
		Field{Name: "skb_hwtstamp", Off: sopSkbHwtstamp, Size: 8},
	)
	return uapiLayout("bpf_sock_ops", SockOpsSize, fs, [][2]int{{sopArgs, sopArgs + 4}, {sopSkTxhash, sopSkTxhash + 4}})
}()

// uapiLayout builds a layout whose runtime form is the UAPI struct itself,
// with the given [lo, hi) ranges writable.
func uapiLayout(name string, size int, fields []Field, writable [][2]int) *Layout {
	for i := range fields {
		fields[i].Runtime = fields[i].Off
	}
	sortFields(fields)
	return &Layout{Name: name, Size: size, RuntimeSize: (size + 7) / 8 * 8, Fields: fields, writable: writable}
}

// sockOpsRules is sock_ops_is_valid_access (net/core/filter.c): reply and
// sk_txhash are written with 4-byte stores; the u64 members and the
// pointers are read with 8-byte loads, skb_tcp_flags with loads of any
// size at its start, everything else with 4-byte loads.
func sockOpsRules(k *Kind, a ctxAccess) (conversion, string) {
	off, size := a.off, a.size
	if off < 0 || off >= SockOpsSize {
		return conversion{}, fmt.Sprintf("offset %d is outside bpf_sock_ops (%d bytes)", off, SockOpsSize)
	}
	if off%size != 0 {
		return conversion{}, fmt.Sprintf("%s access at offset %d is misaligned", sized(size), off)
	}
	if a.write {
		if off != sopArgs && off != sopSkTxhash {
			return conversion{}, "the field is read-only (sock_ops programs may write reply and sk_txhash)"
		}
		if size != 4 {
			return conversion{}, fmt.Sprintf("%s store; the field is written with 4-byte stores", sized(size))
		}
		return conversion{off: off}, ""
	}
	switch {
	case off >= sopBytesReceived && off < sopSkbLen, inRange(off, sopSkbHwtstamp, 8):
		if size != 8 {
			return conversion{}, fmt.Sprintf("%s load; the field is read with 8-byte loads", sized(size))
		}
	case off == sopSkbTCPFlags:
		if size > 4 {
			return conversion{}, fmt.Sprintf("%s load of a 4-byte field", sized(size))
		}
	default:
		if size != 4 {
			return conversion{}, fmt.Sprintf("%s load; the field is read with 4-byte loads", sized(size))
		}
	}
	return conversion{off: off}, ""
}

// Attach types of the socket address and socket programs (enum
// bpf_attach_type).
const (
	AttachCgroupInetSockCreate  AttachType = 2  // BPF_CGROUP_INET_SOCK_CREATE
	AttachCgroupInet4Bind       AttachType = 8  // BPF_CGROUP_INET4_BIND
	AttachCgroupInet6Bind       AttachType = 9  // BPF_CGROUP_INET6_BIND
	AttachCgroupInet4Connect    AttachType = 10 // BPF_CGROUP_INET4_CONNECT
	AttachCgroupInet6Connect    AttachType = 11 // BPF_CGROUP_INET6_CONNECT
	AttachCgroupInet4PostBind   AttachType = 12 // BPF_CGROUP_INET4_POST_BIND
	AttachCgroupInet6PostBind   AttachType = 13 // BPF_CGROUP_INET6_POST_BIND
	AttachCgroupUDP4Sendmsg     AttachType = 14 // BPF_CGROUP_UDP4_SENDMSG
	AttachCgroupUDP6Sendmsg     AttachType = 15 // BPF_CGROUP_UDP6_SENDMSG
	AttachCgroupUDP4Recvmsg     AttachType = 19 // BPF_CGROUP_UDP4_RECVMSG
	AttachCgroupUDP6Recvmsg     AttachType = 20 // BPF_CGROUP_UDP6_RECVMSG
	AttachCgroupInet4Getpeer    AttachType = 29 // BPF_CGROUP_INET4_GETPEERNAME
	AttachCgroupInet6Getpeer    AttachType = 30 // BPF_CGROUP_INET6_GETPEERNAME
	AttachCgroupInet4Getsock    AttachType = 31 // BPF_CGROUP_INET4_GETSOCKNAME
	AttachCgroupInet6Getsock    AttachType = 32 // BPF_CGROUP_INET6_GETSOCKNAME
	AttachCgroupInetSockRelease AttachType = 34 // BPF_CGROUP_INET_SOCK_RELEASE
)

// UAPI offsets of struct bpf_sock_addr (include/uapi/linux/bpf.h).
const (
	saUserFamily = 0
	saUserIP4    = 4
	saUserIP6    = 8 // [4]
	saUserPort   = 24
	saFamily     = 28
	saType       = 32
	saProtocol   = 36
	saMsgSrcIP4  = 40
	saMsgSrcIP6  = 44 // [4]
	saSk         = 64 // struct bpf_sock *, 8 bytes
	saSize       = 72
)

// sockAddrLayout is struct bpf_sock_addr. The address and port fields a
// program may rewrite are writable (which of them depends on the attach
// type, and sockAddrRules decides); the rest, and the socket pointer, are
// read-only:
//
//	 0 user_family  4 family  8 type  12 protocol  16 sk (8 bytes)
//	---- writable from 24 ----
//	24 user_ip4  28 user_ip6[4]  44 user_port  48 msg_src_ip4
//	52 msg_src_ip6[4]  (72 bytes)
var sockAddrLayout = func() *Layout {
	b := newLayout("bpf_sock_addr", saSize)
	for _, f := range []Field{
		{Name: "user_family", Off: saUserFamily, Size: 4},
		{Name: "family", Off: saFamily, Size: 4},
		{Name: "type", Off: saType, Size: 4},
		{Name: "protocol", Off: saProtocol, Size: 4},
		{Name: "sk", Off: saSk, Size: 8},
	} {
		b.place(f, false)
	}
	for _, f := range []Field{
		{Name: "user_ip4", Off: saUserIP4, Size: 4},
		{Name: "user_ip6", Kind: Array, Off: saUserIP6, Size: 16, Elem: 4},
		{Name: "user_port", Off: saUserPort, Size: 4},
		{Name: "msg_src_ip4", Off: saMsgSrcIP4, Size: 4},
		{Name: "msg_src_ip6", Kind: Array, Off: saMsgSrcIP6, Size: 16, Elem: 4},
	} {
		b.place(f, true)
	}
	return b.done()
}()

// Runtime offsets of the bpf_sock_addr shadow.
var rtSaSk = sockAddrLayout.Field(saSk).Runtime

// sockAddr4 and sockAddr6 report whether a socket address program's
// attach type gives it an IPv4 or IPv6 address in user_ip4 or user_ip6.
func (k *Kind) sockAddr4() bool {
	switch k.attach {
	case AttachCgroupInet4Bind, AttachCgroupInet4Connect, AttachCgroupInet4Getpeer,
		AttachCgroupInet4Getsock, AttachCgroupUDP4Sendmsg, AttachCgroupUDP4Recvmsg:
		return true
	}
	return false
}

func (k *Kind) sockAddr6() bool {
	switch k.attach {
	case AttachCgroupInet6Bind, AttachCgroupInet6Connect, AttachCgroupInet6Getpeer,
		AttachCgroupInet6Getsock, AttachCgroupUDP6Sendmsg, AttachCgroupUDP6Recvmsg:
		return true
	}
	return false
}

// sockAddrRules is sock_addr_is_valid_access (net/core/filter.c): the
// address fields of the attach type's family (msg_src_ip* for sendmsg
// only) and user_port may be read with any size a 4-byte field allows and
// written with 4-byte stores, the IPv6 arrays also with aligned 8-byte
// accesses; sk is read whole; the rest is read-only with 4-byte loads.
func sockAddrRules(k *Kind, a ctxAccess) (conversion, string) {
	off, size := a.off, a.size
	if off < 0 || off >= saSize {
		return conversion{}, fmt.Sprintf("offset %d is outside bpf_sock_addr (%d bytes)", off, saSize)
	}
	if off%size != 0 {
		return conversion{}, fmt.Sprintf("%s access at offset %d is misaligned", sized(size), off)
	}
	switch {
	case inRange(off, saUserIP4, 4) && !k.sockAddr4():
		return conversion{}, "user_ip4 belongs to the IPv4 attach types"
	case inRange(off, saUserIP6, 16) && !k.sockAddr6():
		return conversion{}, "user_ip6 belongs to the IPv6 attach types"
	case inRange(off, saMsgSrcIP4, 4) && k.attach != AttachCgroupUDP4Sendmsg:
		return conversion{}, "msg_src_ip4 belongs to BPF_CGROUP_UDP4_SENDMSG"
	case inRange(off, saMsgSrcIP6, 16) && k.attach != AttachCgroupUDP6Sendmsg:
		return conversion{}, "msg_src_ip6 belongs to BPF_CGROUP_UDP6_SENDMSG"
	}
	f := sockAddrLayout.Field(off)
	if f == nil {
		return conversion{}, fmt.Sprintf("offset %d is padding before sk", off)
	}
	switch {
	case inRange(off, saUserIP4, 4), inRange(off, saUserIP6, 16), inRange(off, saMsgSrcIP4, 4),
		inRange(off, saMsgSrcIP6, 16), inRange(off, saUserPort, 4):
		wide := size == 8 && f.Kind == Array && off+8 <= f.Off+f.Size
		switch {
		case wide:
		case size == 8:
			return conversion{}, "an 8-byte access outside the IPv6 address arrays"
		case a.write && size != 4:
			return conversion{}, fmt.Sprintf("%s store; the field is written with 4-byte stores", sized(size))
		}
	case inRange(off, saSk, 8):
		if a.write {
			return conversion{}, "sk is read-only"
		}
		if off != saSk || size != 8 {
			return conversion{}, "sk is read with 8-byte loads"
		}
	default:
		if a.write {
			return conversion{}, "the field is read-only"
		}
		if size != 4 {
			return conversion{}, fmt.Sprintf("%s load; the field is read with 4-byte loads", sized(size))
		}
	}
	return conversion{off: f.Runtime + off - f.Off}, ""
}
