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
// Sockets the lookup helpers return are pointers to struct bpf_sock
// values that the run lays out, one per socket of the host, in a
// read-only region: programs read their fields directly (the kernel's
// verifier rewrites those reads into loads from struct sock; here the
// struct already has the UAPI layout), and pass the pointers to
// bpf_sk_release and bpf_sk_assign, which map them back to the socket.

// emptyHost is the host of runs without Input.Net. Hosts are immutable.
var emptyHost = netenv.Empty()

// Errnos only the network helpers return.
const (
	eNETDOWN     = maps.Errno(100)
	eNETUNREACH  = maps.Errno(101)
	eAFNOSUPPORT = maps.Errno(97)
	ePROTO       = maps.Errno(71)
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
}

// netState is the network part of a run.
type netState struct {
	host      *netenv.Host
	arenaHost *netenv.Host  // the host the socket arena was laid out for
	arena     []byte        // struct bpf_sock per socket of arenaHost, then own's
	own       netenv.Socket // the socket a socket program's hook runs for
	tunnel    *netenv.Tunnel
	assigned  int // the socket bpf_sk_assign gave the packet, -1 for none
	clones    []Clone
}

// bpfSockSize and the offsets of struct bpf_sock (include/uapi/linux/bpf.h).
const (
	bpfSockSize     = 80
	sockBoundDevIf  = 0
	sockFamily      = 4
	sockType        = 8
	sockProtocol    = 12
	sockMark        = 16
	sockPriority    = 20
	sockSrcIP4      = 24
	sockSrcIP6      = 28
	sockSrcPort     = 44
	sockDstPort     = 48
	sockDstIP4      = 52
	sockDstIP6      = 56
	sockState       = 72
	sockRxQueueMap  = 76
	sockStreamType  = 1 // SOCK_STREAM
	sockDgramType   = 2 // SOCK_DGRAM
	ipprotoTCP      = 6
	ipprotoUDP      = 17
	loopback4IPv6   = 0x0600007f // LOOPBACK4_IPV6, 127.0.0.6, as it lies in memory
	maxSockArenaLen = 1 << 26    // 64 MiB of struct bpf_sock: 838,860 sockets
)

// resetNet prepares the network state for an input.
func (r *Run) resetNet(in Input) error {
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
	if n.arenaHost != n.host {
		size := (n.host.NumSockets() + 1) * bpfSockSize
		if size > maxSockArenaLen {
			return fmt.Errorf("the host has %d sockets, waggle lays out at most %d: %w", n.host.NumSockets(), maxSockArenaLen/bpfSockSize, maps.E2BIG)
		}
		if cap(n.arena) >= size {
			n.arena = n.arena[:size]
			clear(n.arena)
		} else {
			n.arena = mem.Aligned(size)
		}
		for i := range n.host.NumSockets() {
			putSock(n.arena[i*bpfSockSize:(i+1)*bpfSockSize], n.host, n.host.Socket(i))
		}
		n.arenaHost = n.host
	}
	return nil
}

// setOwn lays out the socket a socket program's hook runs for, in the
// arena's last slot.
func (n *netState) setOwn(s netenv.Socket) {
	n.own = s
	i := n.host.NumSockets()
	b := n.arena[i*bpfSockSize : (i+1)*bpfSockSize]
	clear(b)
	putSock(b, n.host, s)
}

// sock returns socket i of the arena: a host socket, or the run's own.
func (n *netState) sock(i int) netenv.Socket {
	if i == n.host.NumSockets() {
		return n.own
	}
	return n.host.Socket(i)
}

// putSock lays a socket out as struct bpf_sock, as
// bpf_sock_convert_ctx_access reads struct sock: IPv4 fields of an IPv6
// socket hold the IPv4 address of an IPv4-mapped address, 0 for the
// unspecified address and LOOPBACK4_IPV6 for any other.
func putSock(b []byte, h *netenv.Host, s netenv.Socket) {
	v6 := s.Local.Addr().Is6()
	le.PutUint32(b[sockFamily:], afInet)
	if v6 {
		le.PutUint32(b[sockFamily:], afInet6)
	}
	if s.Proto == "tcp" {
		le.PutUint32(b[sockType:], sockStreamType)
		le.PutUint32(b[sockProtocol:], ipprotoTCP)
	} else {
		le.PutUint32(b[sockType:], sockDgramType)
		le.PutUint32(b[sockProtocol:], ipprotoUDP)
	}
	if f, ok := h.InterfaceByName(s.Dev); ok && s.Dev != "" {
		le.PutUint32(b[sockBoundDevIf:], uint32(f.Index))
	}
	le.PutUint32(b[sockMark:], s.Mark)
	le.PutUint32(b[sockPriority:], s.Priority)
	putAddr4(b[sockSrcIP4:], s.Local.Addr())
	if v6 {
		a := s.Local.Addr().As16()
		copy(b[sockSrcIP6:sockSrcIP6+16], a[:])
	}
	le.PutUint32(b[sockSrcPort:], uint32(s.Local.Port()))
	if s.Remote.IsValid() {
		b[sockDstPort], b[sockDstPort+1] = byte(s.Remote.Port()>>8), byte(s.Remote.Port())
		putAddr4(b[sockDstIP4:], s.Remote.Addr())
		if v6 {
			a := s.Remote.Addr().As16()
			copy(b[sockDstIP6:sockDstIP6+16], a[:])
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
		copy(b[sockSrcIP6:sockSrcIP6+16], a[:])
		copy(b[sockDstIP6:sockDstIP6+16], c[:])
	}
	le.PutUint32(b[sockState:], s.State.Number())
	le.PutUint32(b[sockRxQueueMap:], 0xffffffff) // -1: no queue recorded
}

// putAddr4 writes the IPv4 view of a socket address.
func putAddr4(b []byte, a netip.Addr) {
	switch {
	case a.Is4() || a.Is4In6():
		v := a.Unmap().As4()
		copy(b[:4], v[:])
	case a.IsUnspecified():
	default:
		le.PutUint32(b, loopback4IPv6)
	}
}

// sockAddr returns the address of socket i's struct bpf_sock.
func (n *netState) sockAddr(i int) uint64 {
	return mem.Addr(n.arena) + uint64(i*bpfSockSize)
}

// sockIndex maps a pointer a program holds back to its socket.
func (n *netState) sockIndex(p uint64) (int, bool) {
	if len(n.arena) == 0 {
		return 0, false
	}
	base := mem.Addr(n.arena)
	if p < base || p-base >= uint64(len(n.arena)) || (p-base)%bpfSockSize != 0 {
		return 0, false
	}
	return int((p - base) / bpfSockSize), true
}

// finishNet reports what the program asked of the network.
func (r *Run) finishNet(out *Output) {
	n := &r.net
	out.Tunnel = n.tunnel.Clone()
	if n.assigned >= 0 {
		s := n.host.Socket(n.assigned)
		out.Assigned = &s
	}
	if len(n.clones) > 0 {
		out.Clones = append([]Clone(nil), n.clones...)
	}
}
