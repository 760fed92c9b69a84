package progtype

import (
	"fmt"
	"net/netip"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/netenv"
)

// The runs of the socket types. The kernel's BPF_PROG_TEST_RUN runs none
// of cgroup_sock, cgroup_sock_addr and sock_ops, and sk_lookup without
// sockets; waggle runs them on the context their hook would pass:
//
//   - cgroup_sock: Input.Context is the struct bpf_sock of the socket
//     being created, bound or released (its family, type, protocol,
//     addresses and ports); without one, the context is Input.Socket
//     laid out as struct bpf_sock (a new TCP socket over IPv4 when that
//     is nil too). Output.Context is it after the run, with the
//     bound_dev_if, mark and priority the program set. Retval 1 lets the
//     operation go on, 0 refuses it (EPERM).
//   - cgroup_sock_addr: Input.Context is the struct bpf_sock_addr of the
//     connect, bind, sendmsg, recvmsg, getpeername or getsockname call
//     (the address, the socket's family, type and protocol); its sk is
//     the run's socket, Input.Socket or a new socket of the context's
//     family, type and protocol. Output.Context is the context after the
//     run: the rewritten address, with sk zero. Retval 1 lets the call go
//     on.
//   - sock_ops: Input.Context is the struct bpf_sock_ops of the callback
//     (op, args, the addresses, is_fullsock and the TCP state); its sk and
//     skb pointers and skb_len must be zero, the run sets them: sk points
//     to the socket (struct bpf_sock) when is_fullsock, skb_data to a copy
//     of Input.Data, the segment of the header-option callbacks.
//     Input.Socket is the socket, whose options bpf_setsockopt changes
//     (nil: a new TCP socket for each run). Output.Context is the context
//     after the run: reply and the TCP state setsockopt changed. Retval is
//     what the program returned (1: success).
//   - sk_lookup: as BPF_PROG_TEST_RUN (net/bpf/test_run.c): Input.Context
//     is the struct bpf_sk_lookup of the packet (family, protocol,
//     addresses, ports); Output.Context returns it with cookie 0, as no
//     socket can be selected in user space (there are no sockmaps).
//
// The socket a hook runs for is the run's own socket (net.go): its
// cookie is bpf_get_socket_cookie's, and pointers to it (bpf_sock_addr.sk,
// bpf_sock_ops.sk) work with the socket helpers as any other socket's.

// sockState is the run state of the socket types.
type sockState struct {
	pkt   []byte // sock_ops: the segment skb_data points to
	ctxIn []byte
	// sk_lookup
	noReuseport bool
}

// newSockState returns the run's socket state, reused across resets.
func (r *Run) newSockState() *sockState {
	if r.sock == nil {
		r.sock = &sockState{}
	}
	s := r.sock
	*s = sockState{pkt: s.pkt[:0]}
	return s
}

// noPacketRun checks that a run of a type without a packet got none.
func (r *Run) noPacketRun(in *Input) error {
	if len(in.Data) != 0 {
		return einval("data_in of %d bytes: %s programs take no packet", len(in.Data), r.kind.typ)
	}
	if in.Flags != 0 {
		return einval("flags %#x: %s runs take no flags", in.Flags, r.kind.typ)
	}
	return nil
}

// hookSocket sets the run's own socket for a cgroup socket hook:
// Input.Socket, or a new socket of the family, type and protocol the
// context gives (TCP over IPv4 for zeros), with cookie
// TestRunSocketCookie.
func (r *Run) hookSocket(in *Input, family, typ, proto uint32) {
	if in.Socket != nil {
		r.net.setOwn(in.Socket)
		return
	}
	s := &r.net.ownBuf
	*s = netenv.Socket{Cookie: TestRunSocketCookie, Proto: "tcp", State: netenv.SockClose}
	if proto == ipprotoUDP || typ == sockDgramType {
		s.Proto = "udp"
	}
	s.Local = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	if family == afInet6 || family == 0 && r.kind.sockAddr6() {
		s.Local = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	}
	r.net.setOwn(nil)
}

// resetSock sets up a cgroup_sock run.
func (r *Run) resetSock(in *Input) error {
	if err := r.noPacketRun(in); err != nil {
		return err
	}
	s := r.newSockState()
	var ctx []byte
	if in.Context != nil {
		var err error
		if ctx, err = r.ctxIn(in.Context, BpfSockSize, "bpf_sock"); err != nil {
			return err
		}
		if err := checkBpfSock(ctx); err != nil {
			return err
		}
		r.hookSocket(in, le.Uint32(ctx[bskFamily:]), le.Uint32(ctx[bskType:]), le.Uint32(ctx[bskProtocol:]))
	} else {
		r.hookSocket(in, 0, 0, 0)
		ctx, _ = r.ctxIn(r.net.ownSlot()[:BpfSockSize], BpfSockSize, "bpf_sock")
	}
	s.ctxIn = ctx
	copy(r.shadow, ctx[:bskRxQueueMapping])
	le.PutUint64(r.shadow[rtBskRxQueue:], uint64(int64(int32(le.Uint32(ctx[bskRxQueueMapping:])))))
	return nil
}

// checkBpfSock checks that a bpf_sock holds what a struct sock can: u16
// family, type, protocol and ports, a u8 state, a u16 queue or -1.
func checkBpfSock(ctx []byte) error {
	for _, f := range []struct {
		off int
		max uint32
	}{{bskFamily, 0xffff}, {bskType, 0xffff}, {bskProtocol, 0xffff}, {bskSrcPort, 0xffff}, {bskState, 0xff}} {
		if v := le.Uint32(ctx[f.off:]); v > f.max {
			return einval("ctx_in: %s %d does not fit the socket's field (at most %d)", bpfSockLayout.describe(f.off), v, f.max)
		}
	}
	if ctx[bskDstPort+2] != 0 || ctx[bskDstPort+3] != 0 {
		return einval("ctx_in: the padding after bpf_sock.dst_port is not zero")
	}
	if q := int32(le.Uint32(ctx[bskRxQueueMapping:])); q < -1 || q >= 0xffff {
		return einval("ctx_in: bpf_sock.rx_queue_mapping %d: want -1 (none) or a queue below 65535", q)
	}
	return nil
}

// finishSock returns the bpf_sock after a cgroup_sock run.
func (r *Run) finishSock(out *Output, parts OutputParts) {
	if parts&OutputContext == 0 {
		return
	}
	ctx := r.ctxOutBuf(BpfSockSize)
	copy(ctx, r.shadow[:bskRxQueueMapping])
	copy(ctx[bskRxQueueMapping:], r.sock.ctxIn[bskRxQueueMapping:])
	out.Context = ctx
}

// resetSockAddr sets up a cgroup_sock_addr run: the context from ctx_in
// (zeros without), its sk pointing to the run's own socket.
func (r *Run) resetSockAddr(in *Input) error {
	if err := r.noPacketRun(in); err != nil {
		return err
	}
	l := r.kind.layout
	ctx, err := r.ctxIn(in.Context, l.Size, l.Name) // zeros without ctx_in
	if err != nil {
		return err
	}
	r.hookSocket(in, le.Uint32(ctx[saFamily:]), le.Uint32(ctx[saType:]), le.Uint32(ctx[saProtocol:]))
	clear(ctx[saSk : saSk+8])
	toShadow(l, ctx, r.shadow)
	le.PutUint64(r.shadow[rtSaSk:], r.net.sockAddr(r.net.ownIndex()))
	return nil
}

// toShadow copies the UAPI fields of ctx into the runtime layout.
func toShadow(l *Layout, ctx, shadow []byte) {
	for _, f := range l.Fields {
		if f.Runtime >= 0 {
			copy(shadow[f.Runtime:f.Runtime+f.Size], ctx[f.Off:f.Off+f.Size])
		}
	}
}

// fromShadow copies the runtime layout back into UAPI fields.
func fromShadow(l *Layout, shadow, ctx []byte) []byte {
	for _, f := range l.Fields {
		if f.Runtime >= 0 {
			copy(ctx[f.Off:f.Off+f.Size], shadow[f.Runtime:f.Runtime+f.Size])
		}
	}
	return ctx
}

// finishSockAddr returns the context after a cgroup_sock_addr run, with
// the socket pointer zero.
func (r *Run) finishSockAddr(out *Output, parts OutputParts) {
	if parts&OutputContext == 0 {
		return
	}
	ctx := fromShadow(r.kind.layout, r.shadow, r.ctxOutBuf(r.kind.layout.Size))
	clear(ctx[saSk : saSk+8])
	out.Context = ctx
}

// The values of struct bpf_sock_ops's op (include/uapi/linux/bpf.h) and TCP
// states (BPF_TCP_*) waggle refers to.
const (
	tcpEstablished = 1
	tcpClose       = 7
	tcpListen      = 10

	sopDataSegsOut = 152
	sopMSSCache    = 112
)

// sockOpsTCPOnly lists the bpf_sock_ops members that read 0 without a full
// socket (SOCK_OPS_GET_FIELD in sock_ops_convert_ctx_access), as [lo, hi).
var sockOpsTCPOnly = [][2]int{{sopSndCwnd, sopState}, {sopState + 4, sopSkTxhash + 4}, {sopBytesReceived, sopSk}}

// resetSockOps sets up a sock_ops run.
func (r *Run) resetSockOps(in *Input) error {
	if in.Flags != 0 {
		return einval("flags %#x: sock_ops runs take no flags", in.Flags)
	}
	s := r.newSockState()
	ctx, err := r.ctxIn(in.Context, SockOpsSize, "bpf_sock_ops")
	if err != nil {
		return err
	}
	for _, f := range [][2]int{{sopSk, 8}, {sopSkbData, 8}, {sopSkbDataEnd, 8}, {sopSkbLen, 4}} {
		if !allZero(ctx[f[0] : f[0]+f[1]]) {
			return einval("ctx_in: %s is not zero: the run sets it (from Input.Data for the skb fields)", sockOpsLayout.describe(f[0]))
		}
	}
	full := le.Uint32(ctx[sopIsFullsock:])
	if full > 1 {
		return einval("ctx_in: is_fullsock %d: want 0 or 1", full)
	}
	if full == 0 {
		for _, rg := range sockOpsTCPOnly {
			for i := rg[0]; i < rg[1]; i++ {
				if ctx[i] != 0 {
					return einval("ctx_in: %s is not zero without a full socket (is_fullsock 0), where Linux reads 0", sockOpsLayout.describe(i))
				}
			}
		}
	}
	for _, f := range []struct {
		off int
		max uint32
	}{{sopFamily, 0xffff}, {sopLocalPort, 0xffff}, {sopState, 0xff}, {sopSkbTCPFlags, 0xff}} {
		if v := le.Uint32(ctx[f.off:]); v > f.max {
			return einval("ctx_in: %s %d does not fit the socket's field (at most %d)", sockOpsLayout.describe(f.off), v, f.max)
		}
	}
	if le.Uint32(ctx[sopRemotePort:])&0xffff != 0 {
		return einval("ctx_in: bpf_sock_ops.remote_port holds the port (network order) in its upper 16 bits; the lower are zero")
	}
	if len(in.Data) == 0 && (le.Uint32(ctx[sopSkbTCPFlags:]) != 0 || le.Uint64(ctx[sopSkbHwtstamp:]) != 0) {
		return einval("ctx_in: skb_tcp_flags and skb_hwtstamp describe a segment, and Input.Data gives none")
	}
	if len(in.Data) > skbMaxDataIn {
		return einval("data_in of %d bytes: at most %d", len(in.Data), skbMaxDataIn)
	}
	s.ctxIn = ctx
	if in.Socket != nil {
		r.net.own = in.Socket
	} else {
		r.net.ownBuf = netenv.Socket{Cookie: TestRunSocketCookie, Proto: "tcp"}
	}
	copy(r.shadow, ctx)
	if len(in.Data) > 0 {
		if cap(s.pkt) < len(in.Data) {
			s.pkt = mem.Aligned(skbMaxDataIn)
		}
		s.pkt = s.pkt[:len(in.Data)]
		copy(s.pkt, in.Data)
		le.PutUint64(r.shadow[sopSkbData:], mem.Addr(s.pkt))
		le.PutUint64(r.shadow[sopSkbDataEnd:], mem.Addr(s.pkt)+uint64(len(s.pkt)))
		le.PutUint32(r.shadow[sopSkbLen:], uint32(len(s.pkt)))
	}
	if full == 1 {
		le.PutUint64(r.shadow[sopSk:], r.net.sockAddr(r.net.ownIndex()))
	}
	r.syncSockOpsImage()
	return nil
}

// syncSockOpsImage lays out the struct bpf_sock and struct bpf_tcp_sock
// that a sock_ops context's sk points to, from the context (addresses,
// ports, state, the TCP fields) and the socket (type, protocol, options).
func (r *Run) syncSockOpsImage() {
	o, sh, img := r.sockOpts(), r.shadow, r.net.ownSlot()
	clear(img)
	le.PutUint32(img[bskBoundDevIf:], uint32(o.option(SolSocket, SoBindToIfindex)))
	le.PutUint32(img[bskFamily:], le.Uint32(sh[sopFamily:]))
	le.PutUint32(img[bskType:], o.typ())
	le.PutUint32(img[bskProtocol:], o.protocol())
	le.PutUint32(img[bskMark:], uint32(o.option(SolSocket, SoMark)))
	le.PutUint32(img[bskPriority:], uint32(o.option(SolSocket, SoPriority)))
	copy(img[bskSrcIP4:bskSrcIP4+4], sh[sopLocalIP4:])
	copy(img[bskSrcIP6:bskSrcIP6+16], sh[sopLocalIP6:])
	le.PutUint32(img[bskSrcPort:], le.Uint32(sh[sopLocalPort:]))
	copy(img[bskDstPort:bskDstPort+2], sh[sopRemotePort+2:sopRemotePort+4])
	copy(img[bskDstIP4:bskDstIP4+4], sh[sopRemoteIP4:])
	copy(img[bskDstIP6:bskDstIP6+16], sh[sopRemoteIP6:])
	le.PutUint32(img[bskState:], le.Uint32(sh[sopState:]))
	le.PutUint32(img[bskRxQueueMapping:], 0xffffffff)
	// struct bpf_tcp_sock: the TCP fields of the context.
	t := img[tcpSockOff:]
	copy(t[0:8], sh[sopSndCwnd:sopSndCwnd+8])  // snd_cwnd, srtt_us
	copy(t[8:80], sh[sopRttMin:sopSkTxhash])   // rtt_min .. sacked_out
	copy(t[80:96], sh[sopBytesReceived:sopSk]) // bytes_received, bytes_acked
}

// finishSockOps returns the context after a sock_ops run, without the
// run's pointers.
func (r *Run) finishSockOps(out *Output, parts OutputParts) {
	if parts&OutputContext == 0 {
		return
	}
	ctx := r.ctxOutBuf(SockOpsSize)
	copy(ctx, r.shadow[:SockOpsSize])
	clear(ctx[sopSk : sopSkbDataEnd+8])
	clear(ctx[sopSkbLen : sopSkbLen+4])
	if le.Uint32(ctx[sopIsFullsock:]) == 0 {
		// The kernel drops a write to sk_txhash without a full socket.
		clear(ctx[sopSkTxhash : sopSkTxhash+4])
	}
	out.Context = ctx
}

// sockOpsCtx adapts a sock_ops run for the socket options.
type sockOpsCtx struct{ r *Run }

func (c sockOpsCtx) family() uint32           { return le.Uint32(c.r.shadow[sopFamily:]) }
func (c sockOpsCtx) tcpState() uint32         { return le.Uint32(c.r.shadow[sopState:]) }
func (c sockOpsCtx) getU32(off int) uint32    { return le.Uint32(c.r.shadow[off:]) }
func (c sockOpsCtx) setU32(off int, v uint32) { le.PutUint32(c.r.shadow[off:], v) }

// errnos of the socket helpers that package maps does not name.
const (
	eNOPROTOOPT     = maps.Errno(92)
	ePROTOTYPE      = maps.Errno(91)
	eAFNOSUPPORT    = maps.Errno(97)
	eSOCKTNOSUPPORT = maps.Errno(94)
)

// resetSkLookup is bpf_prog_test_run_sk_lookup's set-up.
func (r *Run) resetSkLookup(in *Input) error {
	if err := r.noPacketRun(in); err != nil {
		return err
	}
	s := r.newSockState()
	ctx, err := r.ctxIn(in.Context, SkLookupSize, "bpf_sk_lookup")
	if err != nil {
		return err
	}
	if le.Uint64(ctx[slkSk:]) != 0 {
		return einval("ctx_in: bpf_sk_lookup.sk (cookie) is not zero")
	}
	if !allZero(ctx[slkLocalPort+4:]) {
		return einval("ctx_in: the fields after local_port are not zero")
	}
	if p := le.Uint32(ctx[slkLocalPort:]); p > 0xffff {
		return fmt.Errorf("ctx_in: local_port %d above 65535: %w", p, maps.ERANGE)
	}
	family := le.Uint16(ctx[slkFamily:])
	sh := r.shadow
	switch family {
	case afInet:
		copy(sh[slkRemoteIP4:slkRemoteIP4+4], ctx[slkRemoteIP4:])
		copy(sh[slkLocalIP4:slkLocalIP4+4], ctx[slkLocalIP4:])
	case afInet6:
		copy(sh[slkRemoteIP6:slkRemoteIP6+16], ctx[slkRemoteIP6:])
		copy(sh[slkLocalIP6:slkLocalIP6+16], ctx[slkLocalIP6:])
	default:
		// Without ctx_in the kernel's context is zeros (when ctx_out is
		// given, as cilium/ebpf gives it), so family 0 ends here too.
		return fmt.Errorf("ctx_in: family %d: want AF_INET or AF_INET6: %w", family, eAFNOSUPPORT)
	}
	le.PutUint32(sh[slkFamily:], uint32(family))
	le.PutUint32(sh[slkProtocol:], uint32(le.Uint16(ctx[slkProtocol:])))
	copy(sh[slkRemotePort:slkRemotePort+2], ctx[slkRemotePort:])
	le.PutUint32(sh[slkLocalPort:], uint32(le.Uint16(ctx[slkLocalPort:])))
	s.ctxIn = ctx
	return nil
}

// finishSkLookup returns ctx_in with cookie 0: no socket was selected.
func (r *Run) finishSkLookup(out *Output, parts OutputParts) {
	if parts&OutputContext == 0 {
		return
	}
	ctx := r.ctxOutBuf(len(r.sock.ctxIn))
	copy(ctx, r.sock.ctxIn)
	clear(ctx[slkSk : slkSk+8])
	out.Context = ctx
}

// GetSocketCookie is bpf_get_socket_cookie of the socket buffer, socket,
// socket address and sock_ops types: the cookie of the run's own socket
// (the packet's, the hook's, the callback's).
func GetSocketCookie(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	return r.net.own.Cookie, nil
}

// GetSocketUID is bpf_get_socket_uid: the owner of the packet's socket
// (Input.Socket; the test run's socket belongs to UID 0).
func GetSocketUID(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, _, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	return uint64(r.net.own.UID), nil
}

// GetNetnsCookie is bpf_get_netns_cookie: the cookie of the namespace of
// the context's socket (the run's host), or of the initial namespace for
// a NULL context (netenv.Host.InitNetnsCookie).
func GetNetnsCookie(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	if args[0] == 0 {
		return r.net.host.InitNetnsCookie(), nil
	}
	return r.net.host.NetnsCookie(), nil
}
