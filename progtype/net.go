package progtype

import (
	"fmt"
	"net/netip"

	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/netenv"
)

// The host's network, as the helpers of a run see it.
//
// A run asks Input.Net (the empty host when nil) about interfaces,
// routes, neighbours and sockets; the tunnel metadata of its packet
// (Input.Tunnel) and what the program changes (the metadata it sets,
// the socket it assigns, the clones it sends) live in the run and are
// reported in Output.
//
// Every socket a program can hold a pointer to is laid out in one
// read-only arena of the run: a slot per socket of the host (what the
// lookup helpers return), then one for the run's own socket (Input.Socket
// or the one the kernel would make: the socket behind __sk_buff.sk,
// bpf_sock_addr.sk and bpf_sock_ops.sk). A slot holds the socket's struct
// bpf_sock and its struct bpf_tcp_sock (bpf_tcp_sock's result). Programs
// read their fields directly (the kernel's verifier rewrites those reads
// into loads from struct sock and struct tcp_sock; here the structs
// already have the UAPI layout), and pass the pointers to the socket
// helpers (bpf_sk_release, bpf_sk_fullsock, bpf_tcp_sock,
// bpf_get_listener_sock, bpf_sk_assign), which map them back to the
// socket wherever it came from.

// emptyHost is the host of runs without Input.Net. Hosts are immutable.
var emptyHost = netenv.Empty()

// Errnos only the network helpers return.
const (
	eNETDOWN    = maps.Errno(100)
	eNETUNREACH = maps.Errno(101)
	ePROTO      = maps.Errno(71)
)

// TestRunSocketCookie is the cookie of the socket a socket buffer belongs
// to when Input.Socket names none: BPF_PROG_TEST_RUN gives every packet a
// socket of its own, whose cookie Linux draws from a global counter on
// first use; waggle gives it this fixed value.
const TestRunSocketCookie = 1 << 32

// Clone is a copy of the packet that bpf_clone_redirect sent to a device.
type Clone struct {
	// Ifindex is the device and Flags the helper's flags (BPF_F_INGRESS:
	// received by the device rather than sent out of it).
	Ifindex uint32
	Flags   uint64
	// Data is the packet as it was cloned, from its link-layer header.
	Data []byte
	// VlanProto and VlanTCI are the accelerated VLAN tag the copy carries
	// (skb->vlan_proto and vlan_tci, which bpf_skb_vlan_push sets and
	// bpf_skb_vlan_pop takes off), VlanProto in host order (0x8100 or
	// 0x88a8); both 0 for none. Like the packet programs see, Data does
	// not hold this tag: the device puts it after the MAC addresses (see
	// Frame).
	VlanProto uint16
	VlanTCI   uint16
}

// Frame returns the copy as a frame: Data with the accelerated VLAN tag,
// if any, after the MAC addresses, as the device sends it.
func (c Clone) Frame() []byte {
	if c.VlanProto == 0 && c.VlanTCI == 0 || len(c.Data) < 12 {
		return c.Data
	}
	f := make([]byte, 0, len(c.Data)+vlanHLen)
	f = append(f, c.Data[:12]...)
	f = append(f, byte(c.VlanProto>>8), byte(c.VlanProto), byte(c.VlanTCI>>8), byte(c.VlanTCI))
	return append(f, c.Data[12:]...)
}

// netState is the network part of a run.
type netState struct {
	host      *netenv.Host
	arenaHost *netenv.Host // the host the socket arena was laid out for
	// arena holds a slot per socket of arenaHost, then the run's own
	// socket's: its struct bpf_sock, then its struct bpf_tcp_sock.
	arena []byte
	// own is the socket the run is about (Input.Socket, or ownBuf); the
	// last slot of the arena lays it out.
	own    *netenv.Socket
	ownBuf netenv.Socket
	tunnel *netenv.Tunnel
	// assigned is the socket bpf_sk_assign gave the packet, -1 for none.
	assigned int
	clones   []Clone
}

// Socket slots and constants of struct bpf_sock and struct bpf_tcp_sock
// (include/uapi/linux/bpf.h, include/net/tcp.h).
const (
	// sockSlotSize is a socket's slot in the arena: its struct bpf_sock
	// at 0, its struct bpf_tcp_sock at tcpSockOff.
	sockSlotSize    = BpfSockSize + bpfTCPSockSize
	tcpSockOff      = BpfSockSize
	sockDgramType   = 2 // SOCK_DGRAM
	ipprotoUDP      = 17
	loopback4IPv6   = 0x0600007f // LOOPBACK4_IPV6, 127.0.0.6, as it lies in memory
	maxSockArenaLen = 1 << 26    // 64 MiB of socket slots: 349,525 sockets
	tcpInitCwnd     = 10         // TCP_INIT_CWND
	tcpInfSsthresh  = 0x7fffffff // TCP_INFINITE_SSTHRESH
)

// Offsets of struct bpf_tcp_sock.
const (
	btpSndCwnd     = 0
	btpRttMin      = 8
	btpSndSsthresh = 12
	btpMSSCache    = 28
	bpfTCPSockSize = 112
)

// resetNet prepares the network state for an input. The type's reset
// lays out the run's own socket (setOwn).
func (r *Run) resetNet(in *Input) error {
	n := &r.net
	n.host = in.Net
	if n.host == nil {
		n.host = emptyHost
	}
	if in.Tunnel != nil {
		if err := in.Tunnel.Check(); err != nil {
			return einval("tunnel metadata: %v", err)
		}
	}
	n.tunnel = in.Tunnel.Clone()
	n.assigned = -1
	n.clones = n.clones[:0]
	n.ownBuf = netenv.Socket{}
	n.own = &n.ownBuf
	if n.arenaHost != n.host {
		size := (n.host.NumSockets() + 1) * sockSlotSize
		if size > maxSockArenaLen {
			return fmt.Errorf("the host has %d sockets, waggle lays out at most %d: %w", n.host.NumSockets(), maxSockArenaLen/sockSlotSize-1, maps.E2BIG)
		}
		if cap(n.arena) >= size {
			n.arena = n.arena[:size]
			clear(n.arena)
		} else {
			n.arena = mem.Aligned(size)
		}
		for i := range n.host.NumSockets() {
			s := n.host.Socket(i)
			putSock(n.slot(i), n.host, &s)
		}
		n.arenaHost = n.host
	}
	return nil
}

// slot returns socket i's slot of the arena.
func (n *netState) slot(i int) []byte {
	return n.arena[i*sockSlotSize : (i+1)*sockSlotSize]
}

// ownIndex is the index of the run's own socket.
func (n *netState) ownIndex() int { return n.host.NumSockets() }

// ownSlot returns the slot of the run's own socket.
func (n *netState) ownSlot() []byte { return n.slot(n.ownIndex()) }

// setOwn makes s the run's own socket (nil keeps ownBuf, which the caller
// may have filled in) and lays it out.
func (n *netState) setOwn(s *netenv.Socket) {
	if s != nil {
		n.own = s
	}
	b := n.ownSlot()
	clear(b)
	putSock(b, n.host, n.own)
}

// sock returns socket i of the arena: a host socket, or the run's own.
func (n *netState) sock(i int) netenv.Socket {
	if i == n.ownIndex() {
		return *n.own
	}
	return n.host.Socket(i)
}

// sockTypeProto returns the socket type and protocol of a socket: TCP
// (SOCK_STREAM, IPPROTO_TCP), UDP (SOCK_DGRAM, IPPROTO_UDP), or none for
// another Proto, as the test run's socket has.
func sockTypeProto(s *netenv.Socket) (typ, proto uint32) {
	switch s.Proto {
	case "tcp":
		return sockStream, ipprotoTCP
	case "udp":
		return sockDgramType, ipprotoUDP
	}
	return 0, 0
}

// putSock lays a socket out in its slot: struct bpf_sock as
// bpf_sock_convert_ctx_access reads struct sock, and for a full TCP socket
// the struct bpf_tcp_sock of a new socket (tcp_init_sock: the model has
// no TCP state). The IPv4 fields of an IPv6 socket hold the IPv4 address
// of an IPv4-mapped address, 0 for the unspecified address and
// LOOPBACK4_IPV6 for any other. A socket without a local address has
// family AF_UNSPEC.
func putSock(b []byte, h *netenv.Host, s *netenv.Socket) {
	v6 := s.Local.Addr().Is6()
	switch {
	case v6:
		le.PutUint32(b[bskFamily:], afInet6)
	case s.Local.IsValid():
		le.PutUint32(b[bskFamily:], afInet)
	}
	typ, proto := sockTypeProto(s)
	le.PutUint32(b[bskType:], typ)
	le.PutUint32(b[bskProtocol:], proto)
	if f, ok := h.InterfaceByName(s.Dev); ok && s.Dev != "" {
		le.PutUint32(b[bskBoundDevIf:], uint32(f.Index))
	}
	le.PutUint32(b[bskMark:], s.Mark)
	le.PutUint32(b[bskPriority:], s.Priority)
	putAddr4(b[bskSrcIP4:], s.Local.Addr())
	if v6 {
		a := s.Local.Addr().As16()
		copy(b[bskSrcIP6:bskSrcIP6+16], a[:])
	}
	le.PutUint32(b[bskSrcPort:], uint32(s.Local.Port()))
	if s.Remote.IsValid() {
		b[bskDstPort], b[bskDstPort+1] = byte(s.Remote.Port()>>8), byte(s.Remote.Port())
		putAddr4(b[bskDstIP4:], s.Remote.Addr())
		if v6 {
			a := s.Remote.Addr().As16()
			copy(b[bskDstIP6:bskDstIP6+16], a[:])
		}
	}
	if !v6 && s.Proto == "tcp" && s.State != netenv.SockListen && s.State != netenv.SockClose && s.State != netenv.SockTimeWait {
		// A connected IPv4 TCP socket also holds its addresses
		// IPv4-mapped in the IPv6 fields (sk_rcv_saddr_set,
		// sk_daddr_set). Linux's time-wait sockets have no IPv6
		// fields; reading them there gives whatever lies at their
		// offsets, which waggle leaves zero.
		l, r := netip.AddrFrom16(s.Local.Addr().As16()), netip.AddrFrom16(s.Remote.Addr().As16())
		a, c := l.As16(), r.As16()
		copy(b[bskSrcIP6:bskSrcIP6+16], a[:])
		copy(b[bskDstIP6:bskDstIP6+16], c[:])
	}
	le.PutUint32(b[bskState:], s.State.Number())
	le.PutUint32(b[bskRxQueueMapping:], 0xffffffff) // -1: no queue recorded
	if proto == ipprotoTCP && fullState(s.State.Number()) {
		putNewTCPSock(b[tcpSockOff:])
	}
}

// putNewTCPSock lays out the struct bpf_tcp_sock of a new TCP socket
// (tcp_init_sock): the initial congestion window, no RTT sample, no slow
// start threshold, the default MSS, and nothing sent or received.
func putNewTCPSock(t []byte) {
	clear(t[:bpfTCPSockSize])
	le.PutUint32(t[btpSndCwnd:], tcpInitCwnd)
	le.PutUint32(t[btpRttMin:], 0xffffffff)
	le.PutUint32(t[btpSndSsthresh:], tcpInfSsthresh)
	le.PutUint32(t[btpMSSCache:], tcpMSSDefault)
}

// fullState reports whether a socket in TCP state st is a full socket,
// not a time-wait or request socket (sk_fullsock).
func fullState(st uint32) bool { return st != tcpTimeWait && st != tcpNewSynRecv }

// putAddr4 writes the IPv4 view of a socket address.
func putAddr4(b []byte, a netip.Addr) {
	switch {
	case a.Is4() || a.Is4In6():
		v := a.Unmap().As4()
		copy(b[:4], v[:])
	case a.IsUnspecified(), !a.IsValid():
	default:
		le.PutUint32(b, loopback4IPv6)
	}
}

// sockAddr returns the address of socket i's struct bpf_sock.
func (n *netState) sockAddr(i int) uint64 {
	return mem.Addr(n.arena) + uint64(i*sockSlotSize)
}

// sockIndex maps a pointer a program holds back to its socket: the struct
// bpf_sock or the struct bpf_tcp_sock (bpf_tcp_sock's result, which Linux
// lets programs pass where a socket is expected) of an arena slot.
func (n *netState) sockIndex(p uint64) (int, bool) {
	if len(n.arena) == 0 {
		return 0, false
	}
	base := mem.Addr(n.arena)
	if p < base || p-base >= uint64(len(n.arena)) {
		return 0, false
	}
	if off := (p - base) % sockSlotSize; off != 0 && off != tcpSockOff {
		return 0, false
	}
	return int((p - base) / sockSlotSize), true
}

// finishNet reports what the program asked of the network.
func (r *Run) finishNet(out *Output) {
	n := &r.net
	out.Tunnel = n.tunnel.Clone()
	if n.assigned >= 0 {
		s := n.sock(n.assigned)
		out.Assigned = &s
	}
	if len(n.clones) > 0 {
		out.Clones = append([]Clone(nil), n.clones...)
	}
}
