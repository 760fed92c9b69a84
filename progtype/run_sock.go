package progtype

import (
	"net/netip"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/netenv"
)

// Runs of cgroup socket programs: cgroup_sock_addr (struct bpf_sock_addr,
// the address a connect, bind, sendmsg or recvmsg is about, which the
// program may rewrite) and cgroup_sock (struct bpf_sock, the socket being
// created, bound or released). Linux has no BPF_PROG_TEST_RUN for them;
// waggle runs them on ctx_in as the hook would pass it, and returns the
// context after the run (the rewritten address) as ctx_out.
//
// The socket the hook runs for (bpf_sock_addr.sk, the socket of
// bpf_get_socket_cookie) is Input.Socket; without one it is a socket of the
// context's family, type and protocol with cookie TestRunSocketCookie.

// resetSock sets up a socket program's context from ctx_in.
func (r *Run) resetSock(in Input) error {
	if len(in.Data) != 0 {
		return einval("data_in of %d bytes: %s programs take no packet", len(in.Data), r.kind.typ)
	}
	if in.Flags != 0 {
		return einval("flags %#x: %s runs take no flags", in.Flags, r.kind.typ)
	}
	l := r.kind.layout
	ctx := make([]byte, l.Size)
	if in.Context != nil {
		c, err := ctxIn(in.Context, l.Size, l.Name)
		if err != nil {
			return err
		}
		ctx = c
	}
	own := r.ownSocket(in, ctx)
	if r.kind.typ == CgroupSock {
		if in.Context == nil {
			putSock(ctx, r.net.host, own)
		}
	} else {
		clear(ctx[saSk : saSk+8])
	}
	toShadow(l, ctx, r.shadow)
	r.net.setOwn(own)
	if r.kind.typ == CgroupSockAddr {
		le.PutUint64(r.shadow[rtSaSk:], r.net.sockAddr(r.net.host.NumSockets()))
	}
	return nil
}

// ownSocket returns the socket the hook runs for: Input.Socket, or one
// made from the context.
func (r *Run) ownSocket(in Input, ctx []byte) netenv.Socket {
	if in.Socket != nil {
		return *in.Socket
	}
	s := netenv.Socket{Cookie: TestRunSocketCookie, Proto: "tcp", State: netenv.SockClose}
	var family, typ, proto uint32
	if r.kind.typ == CgroupSockAddr {
		family, typ, proto = le.Uint32(ctx[saFamily:]), le.Uint32(ctx[saType:]), le.Uint32(ctx[saProtocol:])
	} else {
		family, typ, proto = le.Uint32(ctx[sockFamily:]), le.Uint32(ctx[sockType:]), le.Uint32(ctx[sockProtocol:])
	}
	if proto == ipprotoUDP || typ == sockDgramType {
		s.Proto = "udp"
	}
	s.Local = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	if family == afInet6 || family == 0 && r.kind.sockAddr6() {
		s.Local = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	}
	return s
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
func fromShadow(l *Layout, shadow []byte) []byte {
	ctx := make([]byte, l.Size)
	for _, f := range l.Fields {
		if f.Runtime >= 0 {
			copy(ctx[f.Off:f.Off+f.Size], shadow[f.Runtime:f.Runtime+f.Size])
		}
	}
	return ctx
}

// finishSock returns the context after the run; the socket pointer of
// bpf_sock_addr is left zero.
func (r *Run) finishSock(out *Output) {
	ctx := fromShadow(r.kind.layout, r.shadow)
	if r.kind.typ == CgroupSockAddr {
		clear(ctx[saSk : saSk+8])
	}
	out.Context = ctx
}

// GetSocketCookieSock is bpf_get_socket_cookie for socket address and
// socket programs: the cookie of the socket the hook runs for.
func GetSocketCookieSock(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	return r.net.own.Cookie, nil
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

// sockDefs are the helpers of socket address and socket programs.
var sockDefs = helpers.Defs{
	{ID: idGetSocketCookie, Name: "get_socket_cookie", Proto: protoCtx, Func: GetSocketCookieSock},
	{ID: idGetNetnsCookie, Name: "get_netns_cookie", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx | helpers.ArgMaybeNull}}, Func: GetNetnsCookie},
	{ID: idSkLookupTCP, Name: "sk_lookup_tcp", Proto: protoSkLookup, Func: SkLookupTCP},
	{ID: idSkLookupUDP, Name: "sk_lookup_udp", Proto: protoSkLookup, Func: SkLookupUDP},
	{ID: idSkcLookupTCP, Name: "skc_lookup_tcp", Proto: protoSkcLookup, Func: SkcLookupTCP},
	{ID: idSkRelease, Name: "sk_release", Proto: protoSock, Func: SkRelease},
}
