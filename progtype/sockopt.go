package progtype

import (
	"bytes"
	"math"

	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/netenv"
)

// The socket options of bpf_setsockopt and bpf_getsockopt
// (net/core/filter.c: sol_socket_sockopt, sol_tcp_sockopt, sol_ip_sockopt,
// sol_ipv6_sockopt, bpf_sol_tcp_setsockopt), which call the socket's own
// setsockopt code (sk_setsockopt, do_tcp_setsockopt, do_ip_setsockopt,
// ipv6_setsockopt). The options programs may use are a fixed list; each
// option here does what that code does to the socket, with the default
// values a new socket has under Linux's default sysctls.

// Socket option levels and names (include/uapi/asm-generic/socket.h,
// include/uapi/linux/tcp.h, in.h, in6.h).
const (
	SolSocket = 1  // SOL_SOCKET
	SolIP     = 0  // SOL_IP
	SolTCP    = 6  // SOL_TCP
	SolIPv6   = 41 // SOL_IPV6

	SoReuseAddr      = 2  // SO_REUSEADDR
	SoSndBuf         = 7  // SO_SNDBUF
	SoRcvBuf         = 8  // SO_RCVBUF
	SoKeepAlive      = 9  // SO_KEEPALIVE
	SoPriority       = 12 // SO_PRIORITY
	SoReusePort      = 15 // SO_REUSEPORT
	SoRcvLowat       = 18 // SO_RCVLOWAT
	SoBindToDevice   = 25 // SO_BINDTODEVICE
	SoMark           = 36 // SO_MARK
	SoMaxPacingRate  = 47 // SO_MAX_PACING_RATE
	SoBindToIfindex  = 62 // SO_BINDTOIFINDEX
	SoTxRehash       = 74 // SO_TXREHASH
	TCPNoDelay       = 1  // TCP_NODELAY
	TCPMaxSeg        = 2  // TCP_MAXSEG
	TCPKeepIdle      = 4  // TCP_KEEPIDLE
	TCPKeepIntvl     = 5  // TCP_KEEPINTVL
	TCPKeepCnt       = 6  // TCP_KEEPCNT
	TCPSynCnt        = 7  // TCP_SYNCNT
	TCPWindowClamp   = 10 // TCP_WINDOW_CLAMP
	TCPCongestion    = 13 // TCP_CONGESTION
	TCPThinLinearTO  = 16 // TCP_THIN_LINEAR_TIMEOUTS
	TCPUserTimeout   = 18 // TCP_USER_TIMEOUT
	TCPNotSentLowat  = 25 // TCP_NOTSENT_LOWAT
	TCPSaveSyn       = 27 // TCP_SAVE_SYN
	TCPSavedSyn      = 28 // TCP_SAVED_SYN
	TCPBPFIW         = 1001
	TCPBPFSndCwndClp = 1002 // TCP_BPF_SNDCWND_CLAMP
	TCPBPFDelackMax  = 1003
	TCPBPFRTOMin     = 1004
	TCPBPFSyn        = 1005
	TCPBPFSynIP      = 1006
	TCPBPFSynMAC     = 1007
	TCPBPFCbFlags    = 1008 // TCP_BPF_SOCK_OPS_CB_FLAGS
	IPTOS            = 1    // IP_TOS
	IPv6TClass       = 67   // IPV6_TCLASS
	IPv6AutoFlowLbl  = 70   // IPV6_AUTOFLOWLABEL
)

// Limits of the options, with Linux's default sysctls and x86-64 sizes
// (include/net/sock.h, include/net/tcp.h; HZ = 250 as Debian builds Linux).
const (
	sysctlWmemMax     = 212992 // net.core.wmem_max
	sysctlRmemMax     = 212992 // net.core.rmem_max
	tcpWmemDefault    = 16384  // net.ipv4.tcp_wmem[1]: a new TCP socket's sk_sndbuf
	tcpRmemDefault    = 131072 // net.ipv4.tcp_rmem[1]
	tcpRmemMax        = 6291456
	sockMinSndBuf     = 4608 // SOCK_MIN_SNDBUF: 2 * TCP_SKB_MIN_TRUESIZE
	sockMinRcvBuf     = 2304 // SOCK_MIN_RCVBUF
	tcpMinMSS         = 88
	maxTCPWindow      = 32767
	maxTCPKeepIdle    = 32767
	maxTCPKeepIntvl   = 32767
	maxTCPKeepCnt     = 127
	maxTCPSynCnt      = 127
	tcpMSSDefault     = 536 // TCP_MSS_DEFAULT: mss_cache of a new socket
	hz                = 250
	tcpDelackMax      = hz / 5 // jiffies
	tcpRTOMin         = hz / 5
	tcpTimeoutMin     = 2
	sockOpsAllCbFlags = 0x7f // BPF_SOCK_OPS_ALL_CB_FLAGS
	tcpCANameMax      = 16   // TCP_CA_NAME_MAX
	sockStream        = 1    // SOCK_STREAM
	ipprotoTCP        = 6
	ifNameSize        = 16 // IFNAMSIZ
	inetECNMask       = 3
	txrehashDefault   = 255 // SOCK_TXREHASH_DEFAULT
)

// sockOpts is the socket bpf_setsockopt and bpf_getsockopt work on: the
// run's own socket (netenv.Socket: its Options, Congestion, Mark, Priority,
// Dev and V6Only are its options), on the run's host, whose devices
// SO_BINDTODEVICE and SO_BINDTOIFINDEX name and whose congestion controls
// TCP_CONGESTION selects. A socket without Options has a new socket's
// options, with Linux's defaults. The TCP state the context shows
// (snd_cwnd, snd_ssthresh, bpf_sock_ops_cb_flags, mss_cache, state) is
// the context's: options that change it (TCP_BPF_IW,
// TCP_BPF_SNDCWND_CLAMP, bpf_sock_ops_cb_flags_set) change the context,
// which the run returns.
type sockOpts struct {
	s *netenv.Socket
	h *netenv.Host
}

// sockOpts returns the options of the run's own socket.
func (r *Run) sockOpts() sockOpts { return sockOpts{r.net.own, r.net.host} }

// typ and protocol are the socket's type and protocol: UDP's for a
// "udp" socket, TCP's otherwise (sock_ops callbacks are TCP's).
func (o sockOpts) typ() uint32 {
	if o.s.Proto == "udp" {
		return sockDgramType
	}
	return sockStream
}

func (o sockOpts) protocol() uint32 {
	if o.s.Proto == "udp" {
		return ipprotoUDP
	}
	return ipprotoTCP
}

// congestion returns the congestion control's name.
func (o sockOpts) congestion() string {
	if o.s.Congestion == "" {
		return "cubic"
	}
	return o.s.Congestion
}

// option returns the value of an int option: what was set, else the default
// of a new socket.
func (o sockOpts) option(level, name int32) int32 {
	s := o.s
	switch (netenv.SockOpt{Level: level, Name: name}) {
	case netenv.SockOpt{Level: SolSocket, Name: SoMark}:
		return int32(s.Mark)
	case netenv.SockOpt{Level: SolSocket, Name: SoPriority}:
		return int32(s.Priority)
	}
	if v, ok := s.Options[netenv.SockOpt{Level: level, Name: name}]; ok {
		return v
	}
	switch (netenv.SockOpt{Level: level, Name: name}) {
	case netenv.SockOpt{Level: SolSocket, Name: SoBindToIfindex}:
		if f, ok := o.h.InterfaceByName(s.Dev); ok && s.Dev != "" {
			return int32(f.Index)
		}
	case netenv.SockOpt{Level: SolSocket, Name: SoSndBuf}:
		return tcpWmemDefault
	case netenv.SockOpt{Level: SolSocket, Name: SoRcvBuf}:
		return tcpRmemDefault
	case netenv.SockOpt{Level: SolSocket, Name: SoRcvLowat}:
		return 1
	case netenv.SockOpt{Level: SolSocket, Name: SoMaxPacingRate}:
		return -1 // ~0UL, reported as ~0U
	case netenv.SockOpt{Level: SolSocket, Name: SoTxRehash}:
		return 1 // inet_create: net.core.txrehash
	case netenv.SockOpt{Level: SolTCP, Name: TCPKeepIdle}:
		return 7200
	case netenv.SockOpt{Level: SolTCP, Name: TCPKeepIntvl}:
		return 75
	case netenv.SockOpt{Level: SolTCP, Name: TCPKeepCnt}:
		return 9
	case netenv.SockOpt{Level: SolTCP, Name: TCPSynCnt}:
		return 6
	case netenv.SockOpt{Level: SolIPv6, Name: IPv6AutoFlowLbl}:
		return 1
	}
	return 0
}

// set sets an int option: SO_MARK and SO_PRIORITY are the socket's Mark
// and Priority, SO_BINDTOIFINDEX its Dev when the host has the device
// (Linux does not check the index; one the host lacks stays in Options);
// the others go to a copy of Options, so a map the socket was given is
// never written.
func (o sockOpts) set(level, name, v int32) {
	s := o.s
	key := netenv.SockOpt{Level: level, Name: name}
	switch key {
	case netenv.SockOpt{Level: SolSocket, Name: SoMark}:
		s.Mark = uint32(v)
		return
	case netenv.SockOpt{Level: SolSocket, Name: SoPriority}:
		s.Priority = uint32(v)
		return
	}
	opts := make(map[netenv.SockOpt]int32, len(s.Options)+1)
	for k, x := range s.Options {
		opts[k] = x
	}
	opts[key] = v
	if key == (netenv.SockOpt{Level: SolSocket, Name: SoBindToIfindex}) {
		s.Dev = ""
		if f, ok := o.h.Interface(int(v)); ok && v != 0 {
			s.Dev = f.Name
		}
		if s.Dev != "" || v == 0 {
			delete(opts, key)
		}
	}
	s.Options = opts
}

// usecsToJiffies is usecs_to_jiffies for HZ 250: rounded up.
func usecsToJiffies(us uint32) uint64 { return (uint64(us) + 1e6/hz - 1) / (1e6 / hz) }

// sockOptCtx is what the options see of the run: the socket's family and
// the TCP state of the context.
type sockOptCtx interface {
	family() uint32
	tcpState() uint32
	getU32(off int) uint32
	setU32(off int, v uint32)
}

// setsockopt is __bpf_setsockopt on a full socket: 0 or a negative errno.
func (o sockOpts) setsockopt(c sockOptCtx, level, name int32, val []byte) maps.Errno {
	iv := int32(0)
	isInt := len(val) == 4
	if isInt {
		iv = int32(le.Uint32(val))
	}
	switch level {
	case SolSocket:
		switch name {
		case SoReuseAddr, SoSndBuf, SoRcvBuf, SoKeepAlive, SoPriority, SoReusePort, SoRcvLowat,
			SoMark, SoMaxPacingRate, SoBindToIfindex, SoTxRehash:
			if !isInt {
				return maps.EINVAL
			}
		case SoBindToDevice:
			// sock_setbindtodevice: a name of at most IFNAMSIZ-1 bytes,
			// which the host must have; the empty name unbinds.
			dev := cstring(val, ifNameSize-1)
			if dev == "" {
				o.set(SolSocket, SoBindToIfindex, 0)
				return 0
			}
			f, ok := o.h.InterfaceByName(dev)
			if !ok {
				return maps.ENODEV
			}
			o.set(SolSocket, SoBindToIfindex, int32(f.Index))
			return 0
		default:
			return maps.EINVAL
		}
		return o.setSocket(name, iv)
	case SolIP:
		if !o.allowsIP(c) || name != IPTOS || !isInt {
			return maps.EINVAL
		}
		// __ip_sock_set_tos: a stream socket keeps its ECN bits.
		v := uint8(iv)
		old := uint8(o.option(SolIP, IPTOS))
		if o.typ() == sockStream {
			v = v&^inetECNMask | old&inetECNMask
		}
		o.set(SolIP, IPTOS, int32(v))
		return 0
	case SolIPv6:
		if c.family() != afInet6 || !isInt {
			return maps.EINVAL
		}
		switch name {
		case IPv6TClass:
			if iv < -1 || iv > 0xff {
				return maps.EINVAL
			}
			if iv == -1 {
				iv = 0
			}
			if o.typ() == sockStream {
				iv = iv&^inetECNMask | o.option(SolIPv6, IPv6TClass)&inetECNMask
			}
			o.set(SolIPv6, IPv6TClass, iv)
		case IPv6AutoFlowLbl:
			o.set(SolIPv6, IPv6AutoFlowLbl, b2i(iv != 0))
		default:
			return maps.EINVAL
		}
		return 0
	case SolTCP:
		if o.protocol() != ipprotoTCP {
			return maps.EINVAL
		}
		return o.setTCP(c, name, val, iv, isInt)
	}
	return maps.EINVAL
}

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// allowsIP is sk_allows_sol_ip_sockopt.
func (o sockOpts) allowsIP(c sockOptCtx) bool {
	switch c.family() {
	case afInet:
		return true
	case afInet6:
		return !o.s.V6Only
	}
	return false
}

// setSocket is sk_setsockopt for the options bpf_setsockopt allows.
func (o sockOpts) setSocket(name, v int32) maps.Errno {
	switch name {
	case SoReuseAddr, SoKeepAlive, SoReusePort:
		o.set(SolSocket, name, b2i(v != 0))
	case SoSndBuf, SoRcvBuf:
		// val = min_t(u32, val, sysctl_?mem_max), then
		// max(val * 2, SOCK_MIN_?BUF) with val <= INT_MAX / 2.
		limit, floor := uint32(sysctlWmemMax), int32(sockMinSndBuf)
		if name == SoRcvBuf {
			limit, floor = sysctlRmemMax, sockMinRcvBuf
		}
		u := min(uint32(v), limit, math.MaxInt32/2)
		o.set(SolSocket, name, max(int32(u)*2, floor))
	case SoPriority, SoMark:
		o.set(SolSocket, name, v)
	case SoRcvLowat:
		// tcp_set_rcvlowat: at most half the receive buffer's limit.
		if v < 0 {
			v = math.MaxInt32
		}
		limit := int32(tcpRmemMax >> 1)
		if _, locked := o.s.Options[netenv.SockOpt{Level: SolSocket, Name: SoRcvBuf}]; locked {
			limit = o.option(SolSocket, SoRcvBuf) >> 1
		}
		v = min(v, limit)
		if v == 0 {
			v = 1
		}
		o.set(SolSocket, name, v)
	case SoMaxPacingRate:
		o.set(SolSocket, name, v)
	case SoBindToIfindex:
		// Linux does not check the index against the devices.
		if v < 0 {
			return maps.EINVAL
		}
		o.set(SolSocket, name, v)
	case SoTxRehash:
		if v < -1 || v > 1 {
			return maps.EINVAL
		}
		if uint8(v) == txrehashDefault {
			v = 1 // net.core.txrehash
		}
		o.set(SolSocket, name, int32(uint8(v)))
	}
	return 0
}

// setTCP is sol_tcp_sockopt (set) with do_tcp_setsockopt and
// bpf_sol_tcp_setsockopt.
func (o sockOpts) setTCP(c sockOptCtx, name int32, val []byte, v int32, isInt bool) maps.Errno {
	switch name {
	case TCPCongestion:
		if len(val) < 2 {
			return maps.EINVAL
		}
		if len(val) >= 3 && cstring(val, len(val)) == "cdg" {
			return eNOTSUPP
		}
		n := min(tcpCANameMax-1, len(val))
		cc := cstring(val, n)
		if cc == o.congestion() {
			return 0
		}
		if !o.h.HasCongestionControl(cc) {
			return maps.ENOENT
		}
		o.s.Congestion = cc
		return 0
	case TCPSavedSyn:
		if len(val) < 1 {
			return maps.EINVAL
		}
		return eNOPROTOOPT
	}
	if !isInt {
		return maps.EINVAL
	}
	switch name {
	case TCPNoDelay:
		o.set(SolTCP, name, b2i(v != 0))
	case TCPMaxSeg:
		if v != 0 && (v < tcpMinMSS || v > maxTCPWindow) {
			return maps.EINVAL
		}
		o.set(SolTCP, name, v)
	case TCPKeepIdle, TCPKeepIntvl, TCPKeepCnt, TCPSynCnt:
		limit := map[int32]int32{TCPKeepIdle: maxTCPKeepIdle, TCPKeepIntvl: maxTCPKeepIntvl, TCPKeepCnt: maxTCPKeepCnt, TCPSynCnt: maxTCPSynCnt}[name]
		if v < 1 || v > limit {
			return maps.EINVAL
		}
		o.set(SolTCP, name, v)
	case TCPWindowClamp:
		// tcp_set_window_clamp
		if v == 0 {
			if c.tcpState() != tcpClose {
				return maps.EINVAL
			}
		} else if v < sockMinRcvBuf/2 {
			v = sockMinRcvBuf / 2
		}
		o.set(SolTCP, name, v)
	case TCPThinLinearTO:
		if v < 0 || v > 1 {
			return maps.EINVAL
		}
		o.set(SolTCP, name, v)
	case TCPUserTimeout:
		if v < 0 {
			return maps.EINVAL
		}
		o.set(SolTCP, name, v)
	case TCPNotSentLowat:
		o.set(SolTCP, name, v)
	case TCPSaveSyn:
		if v < 0 || v > 2 {
			return maps.EINVAL
		}
		o.set(SolTCP, name, v)
	case TCPBPFIW:
		// The kernel refuses once data went out beyond a SYN's
		// (data_segs_out > syn_data); waggle takes syn_data as 0.
		if v <= 0 || c.getU32(sopDataSegsOut) > 0 {
			return maps.EINVAL
		}
		c.setU32(sopSndCwnd, uint32(v))
	case TCPBPFSndCwndClp:
		if v <= 0 {
			return maps.EINVAL
		}
		o.set(SolTCP, TCPBPFSndCwndClp, v)
		c.setU32(sopSndSsthresh, uint32(v))
	case TCPBPFDelackMax, TCPBPFRTOMin:
		j := usecsToJiffies(uint32(v))
		if j > tcpDelackMax || j < tcpTimeoutMin {
			return maps.EINVAL
		}
		o.set(SolTCP, name, int32(j)) // in jiffies
	case TCPBPFCbFlags:
		if v&^sockOpsAllCbFlags != 0 {
			return maps.EINVAL
		}
		c.setU32(sopCbFlags, uint32(v))
	default:
		return maps.EINVAL
	}
	return 0
}

// getsockopt is __bpf_getsockopt on a full socket: it fills out and returns
// 0, or a negative errno with out zeroed. Bytes after what the option
// returns are zeroed.
func (o sockOpts) getsockopt(c sockOptCtx, level, name int32, out []byte) maps.Errno {
	n, e := o.get(c, level, name, out)
	if e != 0 {
		n = 0
	}
	clear(out[n:])
	return e
}

func (o sockOpts) get(c sockOptCtx, level, name int32, out []byte) (int, maps.Errno) {
	isInt := len(out) == 4
	put := func(v int32) (int, maps.Errno) {
		le.PutUint32(out, uint32(v))
		return 4, 0
	}
	switch level {
	case SolSocket:
		switch name {
		case SoReuseAddr, SoSndBuf, SoRcvBuf, SoKeepAlive, SoPriority, SoReusePort, SoRcvLowat,
			SoMark, SoMaxPacingRate, SoBindToIfindex, SoTxRehash:
			if !isInt {
				return 0, maps.EINVAL
			}
			return put(o.option(SolSocket, name))
		}
		return 0, maps.EINVAL
	case SolTCP:
		if o.protocol() != ipprotoTCP {
			return 0, maps.EINVAL
		}
		switch name {
		case TCPCongestion:
			if len(out) < 2 {
				return 0, maps.EINVAL
			}
			// The name's 16-byte array, up to optlen-1 bytes.
			var name [tcpCANameMax]byte
			copy(name[:], o.congestion())
			return copy(out[:len(out)-1], name[:]), 0
		case TCPSavedSyn:
			// No SYN was saved.
			return 0, maps.EINVAL
		case TCPBPFCbFlags:
			if !isInt {
				return 0, maps.EINVAL
			}
			return put(int32(c.getU32(sopCbFlags)))
		case TCPNoDelay, TCPKeepIdle, TCPKeepIntvl, TCPKeepCnt, TCPSynCnt, TCPWindowClamp,
			TCPThinLinearTO, TCPUserTimeout, TCPNotSentLowat, TCPSaveSyn:
			if !isInt {
				return 0, maps.EINVAL
			}
			return put(o.option(SolTCP, name))
		case TCPMaxSeg:
			if !isInt {
				return 0, maps.EINVAL
			}
			// mss_cache, or the user's MSS before the connection.
			v := int32(c.getU32(sopMSSCache))
			if u := o.option(SolTCP, TCPMaxSeg); u != 0 && (c.tcpState() == tcpClose || c.tcpState() == tcpListen) {
				v = u
			}
			return put(v)
		}
		return 0, maps.EINVAL
	case SolIP:
		if !o.allowsIP(c) || name != IPTOS || !isInt {
			return 0, maps.EINVAL
		}
		return put(o.option(SolIP, IPTOS))
	case SolIPv6:
		if c.family() != afInet6 || !isInt || (name != IPv6TClass && name != IPv6AutoFlowLbl) {
			return 0, maps.EINVAL
		}
		return put(o.option(SolIPv6, name))
	}
	return 0, maps.EINVAL
}

// cstring returns b[:n] up to its first NUL.
func cstring(b []byte, n int) string {
	b = b[:min(n, len(b))]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
