package progtype

import (
	"fmt"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/maps"
)

// The helpers of the socket program types: bpf_setsockopt,
// bpf_getsockopt and bpf_sock_ops_cb_flags_set of sock_ops programs, the
// socket helpers of every type with sockets (the lookups, bpf_sk_release,
// the casts bpf_sk_fullsock, bpf_tcp_sock and bpf_get_listener_sock, the
// cookies), bpf_skb_ecn_set_ce, bpf_get_local_storage of the cgroup hooks,
// and sk_lookup's bpf_sk_assign.

// sockOpsOf returns the run of a sock_ops program.
func sockOpsOf(env helpers.Env) (*Run, error) {
	r, err := runOf(env)
	if err != nil {
		return nil, err
	}
	if r.kind.run != runSockOps || r.sock == nil {
		return nil, fmt.Errorf("%w: a sock_ops helper in a %s run", ErrNoRun, r.kind.name)
	}
	return r, nil
}

func (r *Run) fullsock() bool { return le.Uint32(r.shadow[sopIsFullsock:]) == 1 }

// SockOpsSetsockopt is bpf_setsockopt in sock_ops programs
// (bpf_sock_ops_setsockopt): -EINVAL without a full socket, else what the
// option's setsockopt does (see Socket).
func SockOpsSetsockopt(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := sockOpsOf(env)
	if err != nil {
		return 0, err
	}
	val, err := env.Memory(args[3], uint64(uint32(args[4])), false)
	if err != nil {
		return 0, err
	}
	if !r.fullsock() {
		return errno(maps.EINVAL), nil
	}
	if e := r.sockOpts().setsockopt(sockOpsCtx{r}, int32(args[1]), int32(args[2]), val); e != 0 {
		return errno(e), nil
	}
	r.syncSockOpsImage()
	return 0, nil
}

// SockOpsGetsockopt is bpf_getsockopt in sock_ops programs
// (bpf_sock_ops_getsockopt): the saved SYN options (TCP_BPF_SYN,
// _SYN_IP, _SYN_MAC) give -ENOENT, as for a connection whose SYN was not
// saved; the others need a full socket.
func SockOpsGetsockopt(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := sockOpsOf(env)
	if err != nil {
		return 0, err
	}
	out, err := env.Memory(args[3], uint64(uint32(args[4])), true)
	if err != nil {
		return 0, err
	}
	level, name := int32(args[1]), int32(args[2])
	if level == SolTCP && name >= TCPBPFSyn && name <= TCPBPFSynMAC {
		clear(out)
		return errno(maps.ENOENT), nil
	}
	if !r.fullsock() {
		clear(out)
		return errno(maps.EINVAL), nil
	}
	if e := r.sockOpts().getsockopt(sockOpsCtx{r}, level, name, out); e != 0 {
		return errno(e), nil
	}
	return 0, nil
}

// SockOpsCbFlagsSet is bpf_sock_ops_cb_flags_set: sets the callbacks the
// socket asks for (bpf_sock_ops_cb_flags of the context) and returns the
// flags it does not know; -EINVAL without a full socket.
func SockOpsCbFlagsSet(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := sockOpsOf(env)
	if err != nil {
		return 0, err
	}
	if !r.fullsock() {
		return errno(maps.EINVAL), nil
	}
	v := int32(args[1])
	le.PutUint32(r.shadow[sopCbFlags:], uint32(v&sockOpsAllCbFlags))
	return uint64(int64(v &^ sockOpsAllCbFlags)), nil
}

// sockOf maps a socket pointer argument back to its socket's index in
// the arena (net.go).
func sockOf(r *Run, p uint64, helper string) (int, error) {
	i, ok := r.net.sockIndex(p)
	if !ok {
		return 0, fmt.Errorf("bpf_%s: %#x is not a socket of this run", helper, p)
	}
	return i, nil
}

// sockHeld returns the struct bpf_sock a socket helper's argument points
// to (or whose struct bpf_tcp_sock it points to), and the socket's index.
func sockHeld(env helpers.Env, p uint64, helper string) (*Run, int, []byte, error) {
	r, err := runOf(env)
	if err != nil {
		return nil, 0, nil, err
	}
	i, err := sockOf(r, p, helper)
	if err != nil {
		return nil, 0, nil, err
	}
	return r, i, r.net.slot(i)[:BpfSockSize], nil
}

// SkRelease is bpf_sk_release: drop the reference a lookup took. Sockets
// of the model have no reference counts; a pointer that is not a socket
// is an error.
func SkRelease(env helpers.Env, args *[5]uint64) (uint64, error) {
	_, _, _, err := sockHeld(env, args[0], "sk_release")
	return 0, err
}

// SkFullsock is bpf_sk_fullsock: the socket itself when it is a full
// socket (not a time-wait or request socket), else NULL.
func SkFullsock(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, i, img, err := sockHeld(env, args[0], "sk_fullsock")
	if err != nil {
		return 0, err
	}
	if !fullState(le.Uint32(img[bskState:])) {
		return 0, nil
	}
	return r.net.sockAddr(i), nil
}

// TCPSock is bpf_tcp_sock: the socket's struct bpf_tcp_sock when it is a
// full TCP socket, else NULL. sock_ops' socket has the TCP fields of its
// context; any other TCP socket those of a new socket (the model has no
// TCP state); the test run's socket of socket buffer runs is not TCP.
func TCPSock(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, i, img, err := sockHeld(env, args[0], "tcp_sock")
	if err != nil {
		return 0, err
	}
	if le.Uint32(img[bskProtocol:]) != ipprotoTCP || !fullState(le.Uint32(img[bskState:])) {
		return 0, nil
	}
	if i == r.net.ownIndex() && r.kind.run == runSockOps {
		r.syncSockOpsImage()
	}
	return r.net.sockAddr(i) + tcpSockOff, nil
}

// GetListenerSock is bpf_get_listener_sock: the socket if it is a
// listening TCP socket, else NULL.
func GetListenerSock(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, i, img, err := sockHeld(env, args[0], "get_listener_sock")
	if err != nil {
		return 0, err
	}
	if le.Uint32(img[bskProtocol:]) == ipprotoTCP && le.Uint32(img[bskState:]) == tcpListen {
		return r.net.sockAddr(i), nil
	}
	return 0, nil
}

// TCP states of sockets that are not full.
const (
	tcpTimeWait   = 6
	tcpNewSynRecv = 12
)

// SkbECNSetCE is bpf_skb_ecn_set_ce (INET_ECN_set_ce): marks an ECN-capable
// IPv4 or IPv6 packet Congestion Experienced, updating the IPv4 checksum
// (and skb->csum for CHECKSUM_COMPLETE IPv6); 1 if it did, 0 otherwise.
func SkbECNSetCE(env helpers.Env, args *[5]uint64) (uint64, error) {
	_, s, err := skbOf(env)
	if err != nil {
		return 0, err
	}
	nh := s.network
	switch s.protocol {
	case be16(ethPIP):
		if s.tail-s.data < 20 || nh+20 > s.tail {
			return 0, nil
		}
		iph := s.buf[nh : nh+20]
		ecn := (uint32(iph[1]) + 1) & inetECNMask
		if ecn&2 == 0 {
			return uint64(b2i(ecn == 0)), nil
		}
		// check = csum16_add(check, htons(0xFFFB) + htons(ecn)), the
		// addition of the two in 16 bits.
		add := be16(0xfffb) + be16(uint16(ecn))
		le.PutUint16(iph[10:], csum16Add(le.Uint16(iph[10:]), add))
		iph[1] |= inetECNMask
		return 1, nil
	case be16(ethPIPv6):
		if s.tail-s.data < 40 || nh+40 > s.tail {
			return 0, nil
		}
		w := s.buf[nh : nh+4]
		if (uint16(w[0])<<8|uint16(w[1]))>>4&inetECNMask == 0 {
			return 0, nil
		}
		from := le.Uint32(w)
		w[1] |= inetECNMask << 4
		if s.ipSummed == checksumComplete {
			s.csum = csumAdd(csumSub(s.csum, from), le.Uint32(w))
		}
		return 1, nil
	}
	return 0, nil
}

// RootCgroupID is the id of the root cgroup of cgroup v2, where waggle
// attaches the programs of a collection: their cgroup storage is keyed by
// it.
const RootCgroupID = 1

// AttachPoint returns the attach type programs of this Kind run at, which
// keys their cgroup storage: BPF_CGROUP_SOCK_OPS for sock_ops, the
// expected attach type otherwise (for cgroup_skb, 0 is
// BPF_CGROUP_INET_INGRESS).
func (k *Kind) AttachPoint() AttachType {
	if k.typ == SockOps {
		return AttachCgroupSockOps
	}
	return k.attach
}

// GetLocalStorage is bpf_get_local_storage (kernel/bpf/cgroup.c): the
// storage of the attachment running the program, in the cgroup storage map
// given: the one bound for (RootCgroupID, Kind.AttachPoint()), this CPU's
// copy for a per-CPU map. A storage that was never bound (the runtime binds
// one for every program using the map) is an error.
func GetLocalStorage(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	st := env.State()
	var m maps.Map
	ok := false
	if st.Maps != nil {
		m, ok = st.Maps.Lookup(args[0])
	}
	if !ok {
		return 0, fmt.Errorf("get_local_storage: %#x is not a map", args[0])
	}
	ls, ok := m.(maps.LocalStorage)
	if !ok {
		return 0, fmt.Errorf("get_local_storage: map %s is a %s, not a cgroup storage", m.Spec().Name, m.Spec().Type)
	}
	a := ls.Storage(st.CPU, RootCgroupID, uint32(r.kind.AttachPoint()))
	if a == 0 {
		return 0, fmt.Errorf("get_local_storage: map %s has no storage for this program: bind one (maps.LocalStorage.Bind) as attaching does", m.Spec().Name)
	}
	return a, nil
}

// sk_lookup's bpf_sk_assign flags (include/uapi/linux/bpf.h).
const (
	skLookupFReplace     = 1 << 0 // BPF_SK_LOOKUP_F_REPLACE
	skLookupFNoReuseport = 1 << 1 // BPF_SK_LOOKUP_F_NO_REUSEPORT
)

// SkLookupAssign is bpf_sk_assign in sk_lookup programs
// (bpf_sk_lookup_assign): selects the socket the packet goes to. Sockets
// come from sockmaps, which user space does not have, so the only socket a
// program can pass is NULL, which clears the selection.
func SkLookupAssign(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	if r.kind.run != runSkLookup {
		return 0, fmt.Errorf("%w: sk_lookup's bpf_sk_assign in a %s run", ErrNoRun, r.kind.name)
	}
	if args[2]&^(skLookupFReplace|skLookupFNoReuseport) != 0 {
		return errno(maps.EINVAL), nil
	}
	if args[1] != 0 {
		return 0, fmt.Errorf("bpf_sk_assign: %#x is not a socket: sk_lookup programs in user space have none", args[1])
	}
	r.sock.noReuseport = args[2]&skLookupFNoReuseport != 0
	return 0, nil
}

var (
	protoSockopt = helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgAnything, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize}}
	// protoSockCast is a socket seen as another type: the result holds the
	// argument's reference.
	protoSockCast = helpers.Proto{Ret: helpers.RetPtrToSocketOrNull, Args: []helpers.ArgType{helpers.ArgPtrToSockCommon}, Cast: true}
)

// sockOpsDefs are sock_ops' own helpers.
var sockOpsDefs = helpers.Defs{
	{ID: idSetsockopt, Name: "setsockopt", Proto: protoSockopt, Func: SockOpsSetsockopt},
	{ID: idGetsockopt, Name: "getsockopt", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgAnything, helpers.ArgPtrToUninitMem, helpers.ArgConstSize}}, Func: SockOpsGetsockopt},
	{ID: idSockOpsCbFlagsSet, Name: "sock_ops_cb_flags_set", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything}}, Func: SockOpsCbFlagsSet},
}

// socketDefs are the socket helpers of every run with sockets (which of
// them a type may call, Kind.Allowed decides).
var socketDefs = helpers.Defs{
	{ID: idSkLookupTCP, Name: "sk_lookup_tcp", Proto: protoSkLookup, Func: SkLookupTCP},
	{ID: idSkLookupUDP, Name: "sk_lookup_udp", Proto: protoSkLookup, Func: SkLookupUDP},
	{ID: idSkcLookupTCP, Name: "skc_lookup_tcp", Proto: protoSkcLookup, Func: SkcLookupTCP},
	{ID: idSkRelease, Name: "sk_release", Proto: protoSock, Func: SkRelease},
	{ID: idSkFullsock, Name: "sk_fullsock", Proto: protoSockCast, Func: SkFullsock},
	{ID: idTCPSock, Name: "tcp_sock", Proto: helpers.Proto{Ret: helpers.RetPtrToTCPSockOrNull, Args: protoSockCast.Args, Cast: true}, Func: TCPSock},
	// The listener is no cast: it holds no reference (listening sockets
	// are freed after an RCU grace period), so it stays usable after its
	// argument is released and may not be released itself.
	{ID: idGetListenerSock, Name: "get_listener_sock", Proto: helpers.Proto{Ret: helpers.RetPtrToSocketOrNull, Args: protoSockCast.Args}, Func: GetListenerSock},
	{ID: idGetSocketCookie, Name: "get_socket_cookie", Proto: protoCtx, Func: GetSocketCookie},
	{ID: idGetSocketUID, Name: "get_socket_uid", Proto: protoCtx, Func: GetSocketUID},
	{ID: idGetNetnsCookie, Name: "get_netns_cookie", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx | helpers.ArgMaybeNull}}, Func: GetNetnsCookie},
	{ID: idGetLocalStorage, Name: "get_local_storage", Proto: helpers.Proto{Ret: helpers.RetPtrToMapValue, Args: []helpers.ArgType{helpers.ArgConstMapPtr, helpers.ArgAnything},
		MapTypes: []maps.Type{maps.CgroupStorage, maps.PerCPUCgroupStorage}}, Func: GetLocalStorage},
}

// skbSockDefs are socket buffer helpers of this file.
var skbSockDefs = helpers.Defs{
	{ID: idSkbECNSetCE, Name: "skb_ecn_set_ce", Proto: protoCtx, Func: SkbECNSetCE},
}

// skLookupDefs are sk_lookup's own helpers.
var skLookupDefs = helpers.Defs{
	{ID: idSkAssign, Name: "sk_assign", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgPtrToSocketOrNull, helpers.ArgAnything}}, Func: SkLookupAssign},
}
