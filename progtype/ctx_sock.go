package progtype

import "fmt"

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

// attachOf4 and attachOf6 are the attach types whose programs see an
// IPv4 or IPv6 address in user_ip4 or user_ip6.
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
	case off == saSk:
		if a.write {
			return conversion{}, "sk is read-only"
		}
		if size != 8 {
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

// sockLayout is struct bpf_sock as the context of cgroup_sock programs: a
// flat copy of the UAPI struct whose bound_dev_if, mark and priority are
// writable:
//
//	 0 family  4 type  8 protocol  12 src_ip4  16 src_ip6[4]  32 src_port
//	36 dst_port (a 4-byte slot) 40 dst_ip4  44 dst_ip6[4]  60 state
//	64 rx_queue_mapping
//	---- writable from 68 ----
//	68 bound_dev_if  72 mark  76 priority  (80 bytes)
var sockLayout = func() *Layout {
	b := newLayout("bpf_sock", bpfSockSize)
	for _, f := range []Field{
		{Name: "family", Off: sockFamily, Size: 4},
		{Name: "type", Off: sockType, Size: 4},
		{Name: "protocol", Off: sockProtocol, Size: 4},
		{Name: "src_ip4", Off: sockSrcIP4, Size: 4},
		{Name: "src_ip6", Kind: Array, Off: sockSrcIP6, Size: 16, Elem: 4},
		{Name: "src_port", Off: sockSrcPort, Size: 4},
		{Name: "dst_port", Off: sockDstPort, Size: 4},
		{Name: "dst_ip4", Off: sockDstIP4, Size: 4},
		{Name: "dst_ip6", Kind: Array, Off: sockDstIP6, Size: 16, Elem: 4},
		{Name: "state", Off: sockState, Size: 4},
		{Name: "rx_queue_mapping", Off: sockRxQueueMap, Size: 4},
	} {
		b.place(f, false)
	}
	for _, f := range []Field{
		{Name: "bound_dev_if", Off: sockBoundDevIf, Size: 4},
		{Name: "mark", Off: sockMark, Size: 4},
		{Name: "priority", Off: sockPriority, Size: 4},
	} {
		b.place(f, true)
	}
	return b.done()
}()

// sockRules is sock_filter_is_valid_access with
// __sock_filter_check_attach_type and bpf_sock_is_valid_access: socket
// creation and release programs may write bound_dev_if, mark and
// priority; post-bind programs may read the bound address and port of
// their family; every field is read with 4-byte loads, the addresses,
// ports, state, family, type, protocol and queue also narrower, dst_port
// (a __be16) with 2 or 4 bytes.
func sockRules(k *Kind, a ctxAccess) (conversion, string) {
	off, size := a.off, a.size
	if off < 0 || off >= bpfSockSize {
		return conversion{}, fmt.Sprintf("offset %d is outside bpf_sock (%d bytes)", off, bpfSockSize)
	}
	if off%size != 0 {
		return conversion{}, fmt.Sprintf("%s access at offset %d is misaligned", sized(size), off)
	}
	create := k.attach == AttachCgroupInetSockCreate || k.attach == AttachCgroupInetSockRelease
	switch {
	case off == sockBoundDevIf, off == sockMark, off == sockPriority:
		if !create {
			return conversion{}, "bound_dev_if, mark and priority belong to socket creation and release programs"
		}
	case inRange(off, sockSrcIP4, 4):
		if k.attach != AttachCgroupInet4PostBind {
			return conversion{}, "src_ip4 belongs to BPF_CGROUP_INET4_POST_BIND"
		}
	case inRange(off, sockSrcIP6, 16):
		if k.attach != AttachCgroupInet6PostBind {
			return conversion{}, "src_ip6 belongs to BPF_CGROUP_INET6_POST_BIND"
		}
	case inRange(off, sockSrcPort, 4):
		if k.attach != AttachCgroupInet4PostBind && k.attach != AttachCgroupInet6PostBind {
			return conversion{}, "src_port belongs to the post-bind attach types"
		}
	}
	writable := off == sockBoundDevIf || off == sockMark || off == sockPriority
	if a.write && !writable {
		return conversion{}, "the field is read-only"
	}
	switch {
	case off == sockState, off == sockFamily, off == sockType, off == sockProtocol, off == sockSrcPort,
		off == sockRxQueueMap, inRange(off, sockSrcIP4, 4), inRange(off, sockSrcIP6, 16),
		inRange(off, sockDstIP4, 4), inRange(off, sockDstIP6, 16):
		if size > 4 {
			return conversion{}, fmt.Sprintf("%s load of a 4-byte field", sized(size))
		}
		if a.write && size != 4 {
			return conversion{}, "the field is written with 4-byte stores"
		}
	case inRange(off, sockDstPort, 4):
		if off >= sockDstPort+2 {
			return conversion{}, "the bytes after dst_port are padding"
		}
		if size > 4 {
			return conversion{}, fmt.Sprintf("%s load of a 4-byte field", sized(size))
		}
	default:
		if size != 4 {
			return conversion{}, fmt.Sprintf("%s access; the field is accessed with 4 bytes", sized(size))
		}
	}
	f := sockLayout.Field(off)
	return conversion{off: f.Runtime + off - f.Off}, ""
}
