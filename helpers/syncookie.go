package helpers

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"sync"

	"github.com/waggle-bpf/waggle/maps"
)

// SYN cookies without a socket (net/core/filter.c, Linux 5.20+): an XDP or
// tc program answers a SYN itself with a SYN-ACK whose sequence number is
// a cookie, and checks the cookie in the ACK that comes back.
//
// The cookie is Linux's (net/ipv4/syncookies.c, net/ipv6/syncookies.c):
//
//	cookie = H0(saddr, daddr, sport, dport) + seq(SYN)
//	       + count<<24
//	       + ((H1(saddr, daddr, sport, dport, count) + mssind) & 0xffffff)
//
//	 31      24 23                                       0
//	+----------+------------------------------------------+
//	|  count   |   H1(..., count) + mssind    (mod 2^24)  |  + H0 + seq
//	+----------+------------------------------------------+
//
// where H0 and H1 are SipHash-2-4 under two keys of a secret, count is
// the minute (tcp_cookie_time: jiffies / (60 * HZ)) and mssind the index
// in msstab of the largest MSS not over the SYN's. A check undoes H0 and
// the ACK's seq-1, reads count back from the top 8 bits and accepts it
// when it is this minute or the one before (MAX_SYNCOOKIE_AGE 2), and
// then an index below 4. Linux keeps one secret per family, random at
// boot; waggle keeps one per Collection (SyncookieSecret).

// Helper ids of the socket-less SYN cookie helpers.
const (
	IDTCPRawGenSyncookieV4   int32 = 204
	IDTCPRawGenSyncookieV6   int32 = 205
	IDTCPRawCheckSyncookieV4 int32 = 206
	IDTCPRawCheckSyncookieV6 int32 = 207
)

// Sizes of the headers the helpers take (struct iphdr, ipv6hdr, tcphdr
// without options).
const (
	ipv4HdrLen = 20
	ipv6HdrLen = 40
	tcpHdrLen  = 20
)

// cookie layout (COOKIEBITS, COOKIEMASK) and window (MAX_SYNCOOKIE_AGE).
const (
	cookieBits      = 24
	cookieMask      = 1<<cookieBits - 1
	maxSyncookieAge = 2
)

// msstab4 and msstab6 are the MSS values a cookie can carry, sorted
// (msstab in net/ipv4/syncookies.c and net/ipv6/syncookies.c).
var (
	msstab4 = [4]uint16{536, 1300, 1440, 1460}
	msstab6 = [4]uint16{1280 - 60, 1480 - 60, 1500 - 60, 9000 - 60}
)

// Default MSS of a SYN without the option: TCP_MSS_DEFAULT for IPv4,
// IPV6_MIN_MTU less the TCP and IPv6 headers for IPv6.
const (
	tcpMSSDefault4 = 536
	tcpMSSDefault6 = 1280 - tcpHdrLen - ipv6HdrLen
)

// SyncookieMinute is the length of a cookie's count period
// (TCP_SYNCOOKIE_PERIOD), in nanoseconds.
const SyncookieMinute = 60e9

// sipKey is a SipHash key (siphash_key_t).
type sipKey [2]uint64

// SyncookieSecret is the secret of the SYN cookie helpers: two SipHash
// keys per family, as Linux's syncookie_secret and syncookie6_secret. A
// cookie generated under one secret checks only under the same one: a
// Collection has one, which all its programs share, as every program of a
// Linux host shares the kernel's.
type SyncookieSecret struct {
	v4, v6 [2]sipKey
}

// NewSyncookieSecret returns a secret drawn from crypto/rand, or, for a
// seed other than 0, one derived from the seed (so that runs with the
// same CollectionOptions.RandSeed make the same cookies).
func NewSyncookieSecret(seed uint64) *SyncookieSecret {
	var w [8]uint64
	if seed == 0 {
		var b [64]byte
		rand.Read(b[:]) // never fails (crypto/rand)
		for i := range w {
			w[i] = binary.LittleEndian.Uint64(b[8*i:])
		}
	} else {
		z := seed
		for i := range w {
			z += 0x9e3779b97f4a7c15 // splitmix64
			x := (z ^ z>>30) * 0xbf58476d1ce4e5b9
			x = (x ^ x>>27) * 0x94d049bb133111eb
			w[i] = x ^ x>>31
		}
	}
	return &SyncookieSecret{
		v4: [2]sipKey{{w[0], w[1]}, {w[2], w[3]}},
		v6: [2]sipKey{{w[4], w[5]}, {w[6], w[7]}},
	}
}

// processSecret is the secret of runs whose State has none: drawn once.
var processSecret = sync.OnceValue(func() *SyncookieSecret { return NewSyncookieSecret(0) })

// secretOf returns the run's secret, or the process's.
func secretOf(env Env) *SyncookieSecret {
	if s := env.State().Syncookie; s != nil {
		return s
	}
	return processSecret()
}

// cookieTime is tcp_cookie_time: the minutes of the monotonic clock.
func cookieTime() uint32 { return uint32(monotonicNs() / SyncookieMinute) }

// sipRound is one SipRound.
func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}

// siphash is SipHash-2-4 of msg under k (siphash in lib/siphash.c): the
// message is read in little-endian 64-bit words, whatever the host.
func siphash(k sipKey, msg []byte) uint64 {
	v0 := k[0] ^ 0x736f6d6570736575
	v1 := k[1] ^ 0x646f72616e646f6d
	v2 := k[0] ^ 0x6c7967656e657261
	v3 := k[1] ^ 0x7465646279746573
	b := uint64(len(msg)) << 56
	for ; len(msg) >= 8; msg = msg[8:] {
		m := binary.LittleEndian.Uint64(msg)
		v3 ^= m
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= m
	}
	for i := len(msg) - 1; i >= 0; i-- {
		b |= uint64(msg[i]) << (8 * i)
	}
	v3 ^= b
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= b
	v2 ^= 0xff
	for range 4 {
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	}
	return v0 ^ v1 ^ v2 ^ v3
}

// cookieFlow is what a cookie hashes: a connection's addresses and ports
// as the headers carry them, and which family's secret and table apply.
type cookieFlow struct {
	v6           bool
	saddr, daddr [16]byte // an IPv4 address in the first 4 bytes
	sport, dport [2]byte  // network order
}

// flowOf reads the flow of an IP header (iph: 20 or 40 bytes) and a TCP
// header.
func flowOf(v6 bool, iph, th []byte) cookieFlow {
	f := cookieFlow{v6: v6}
	if v6 {
		copy(f.saddr[:], iph[8:24])
		copy(f.daddr[:], iph[24:40])
	} else {
		copy(f.saddr[:], iph[12:16])
		copy(f.daddr[:], iph[16:20])
	}
	copy(f.sport[:], th[0:2])
	copy(f.dport[:], th[2:4])
	return f
}

// hash is cookie_hash: SipHash of the flow and count under key c of the
// family's secret, truncated to 32 bits. The message is laid out as
// Linux lays it out in the host's memory: for IPv4 siphash_4u32(saddr,
// daddr, sport<<16 | dport, count) of the __be32 and __be16 values read
// as host integers, for IPv6 struct {saddr, daddr, u32 count, sport,
// dport}.
func (s *SyncookieSecret) hash(f *cookieFlow, count uint32, c int) uint32 {
	ne := binary.NativeEndian
	var msg [40]byte
	if !f.v6 {
		ports := uint32(ne.Uint16(f.sport[:]))<<16 | uint32(ne.Uint16(f.dport[:]))
		// siphash_4u32 hashes two u64 words (b<<32 | a, d<<32 | c),
		// which is these 16 bytes in little-endian order.
		binary.LittleEndian.PutUint32(msg[0:], ne.Uint32(f.saddr[:4]))
		binary.LittleEndian.PutUint32(msg[4:], ne.Uint32(f.daddr[:4]))
		binary.LittleEndian.PutUint32(msg[8:], ports)
		binary.LittleEndian.PutUint32(msg[12:], count)
		return uint32(siphash(s.v4[c], msg[:16]))
	}
	copy(msg[0:16], f.saddr[:])
	copy(msg[16:32], f.daddr[:])
	ne.PutUint32(msg[32:], count)
	copy(msg[36:38], f.sport[:])
	copy(msg[38:40], f.dport[:])
	return uint32(siphash(s.v6[c], msg[:40]))
}

// msstab returns the flow's family's MSS table.
func (f *cookieFlow) msstab() *[4]uint16 {
	if f.v6 {
		return &msstab6
	}
	return &msstab4
}

// gen is __cookie_v4_init_sequence and __cookie_v6_init_sequence: the
// cookie of a SYN with sequence number seq and MSS mss, at minute count,
// and the MSS it encodes (mss rounded down to msstab, at least its first).
func (s *SyncookieSecret) gen(f *cookieFlow, seq uint32, mss uint16, count uint32) (uint32, uint16) {
	tab := f.msstab()
	i := len(tab) - 1
	for ; i > 0; i-- {
		if mss >= tab[i] {
			break
		}
	}
	cookie := s.hash(f, 0, 0) + seq + count<<cookieBits +
		(s.hash(f, count, 1)+uint32(i))&cookieMask
	return cookie, tab[i]
}

// check is __cookie_v4_check and __cookie_v6_check for a cookie (the
// ACK's ack_seq - 1) and the SYN's sequence number (the ACK's seq - 1) at
// minute count: the MSS the cookie encodes, or 0 if it is not valid.
func (s *SyncookieSecret) check(f *cookieFlow, cookie, seq, count uint32) uint16 {
	cookie -= s.hash(f, 0, 0) + seq
	diff := (count - cookie>>cookieBits) & (^uint32(0) >> cookieBits)
	if diff >= maxSyncookieAge {
		return 0
	}
	i := (cookie - s.hash(f, count-diff, 1)) & cookieMask
	if tab := f.msstab(); i < uint32(len(tab)) {
		return tab[i]
	}
	return 0
}

// TCP option kinds.
const (
	tcpOptEOL    = 0
	tcpOptNOP    = 1
	tcpOptMSS    = 2
	tcpOptLenMSS = 4
)

// parseMSSOption is tcp_parse_mss_option (net/ipv4/tcp_input.c) without a
// user MSS: the last non-zero MSS option among th's doff*4 bytes, or 0.
// th holds at least doff*4 bytes.
func parseMSSOption(th []byte) uint16 {
	opts := th[tcpHdrLen : int(th[12]>>4)*4]
	var mss uint16
	for len(opts) > 0 {
		switch op := opts[0]; op {
		case tcpOptEOL:
			return mss
		case tcpOptNOP:
			opts = opts[1:]
		default:
			if len(opts) < 2 {
				return mss
			}
			size := int(opts[1])
			if size < 2 || size > len(opts) {
				return mss // silly or partial options
			}
			if op == tcpOptMSS && size == tcpOptLenMSS {
				if m := binary.BigEndian.Uint16(opts[2:]); m != 0 {
					mss = m
				}
			}
			opts = opts[size:]
		}
	}
	return mss
}

// rawGenSyncookie is bpf_tcp_raw_gen_syncookie_ipv4 and _ipv6: the cookie
// of the SYN whose IP header is at args[0] and TCP header (th_len bytes,
// options included) at args[1], in the low 32 bits, and the MSS it
// encodes in bits 32-47; -EINVAL unless th_len is at least a TCP header
// and exactly its doff*4. Like Linux it does not look at the flags: the
// program decides what is a SYN.
func rawGenSyncookie(env Env, args *[5]uint64, v6 bool) (uint64, error) {
	ipLen, dflt := uint64(ipv4HdrLen), uint16(tcpMSSDefault4)
	if v6 {
		ipLen, dflt = ipv6HdrLen, tcpMSSDefault6
	}
	iph, err := env.Memory(args[0], ipLen, false)
	if err != nil {
		return 0, err
	}
	thLen := uint64(uint32(args[2]))
	th, err := env.Memory(args[1], thLen, false)
	if err != nil {
		return 0, err
	}
	if thLen < tcpHdrLen || thLen != uint64(th[12]>>4)*4 {
		return errno(maps.EINVAL), nil
	}
	mss := parseMSSOption(th)
	if mss == 0 {
		mss = dflt
	}
	f := flowOf(v6, iph, th)
	cookie, mss := secretOf(env).gen(&f, binary.BigEndian.Uint32(th[4:]), mss, cookieTime())
	return uint64(cookie) | uint64(mss)<<32, nil
}

// rawCheckSyncookie is bpf_tcp_raw_check_syncookie_ipv4 and _ipv6: 0 if
// the ACK whose IP header is at args[0] and TCP header at args[1] carries
// a valid cookie (ack_seq - 1, for the SYN of sequence seq - 1) made in
// this minute or the last, -EACCES otherwise. The flags are not looked at.
func rawCheckSyncookie(env Env, args *[5]uint64, v6 bool) (uint64, error) {
	ipLen := uint64(ipv4HdrLen)
	if v6 {
		ipLen = ipv6HdrLen
	}
	iph, err := env.Memory(args[0], ipLen, false)
	if err != nil {
		return 0, err
	}
	th, err := env.Memory(args[1], tcpHdrLen, false)
	if err != nil {
		return 0, err
	}
	f := flowOf(v6, iph, th)
	cookie := binary.BigEndian.Uint32(th[8:]) - 1
	seq := binary.BigEndian.Uint32(th[4:]) - 1
	if secretOf(env).check(&f, cookie, seq, cookieTime()) == 0 {
		return errno(eACCES), nil
	}
	return 0, nil
}

// eACCES is the errno of a cookie that does not check.
const eACCES = maps.Errno(13)

// TCPRawGenSyncookieV4 is bpf_tcp_raw_gen_syncookie_ipv4(iph, th, th_len).
func TCPRawGenSyncookieV4(env Env, args *[5]uint64) (uint64, error) {
	return rawGenSyncookie(env, args, false)
}

// TCPRawGenSyncookieV6 is bpf_tcp_raw_gen_syncookie_ipv6(iph, th, th_len).
func TCPRawGenSyncookieV6(env Env, args *[5]uint64) (uint64, error) {
	return rawGenSyncookie(env, args, true)
}

// TCPRawCheckSyncookieV4 is bpf_tcp_raw_check_syncookie_ipv4(iph, th).
func TCPRawCheckSyncookieV4(env Env, args *[5]uint64) (uint64, error) {
	return rawCheckSyncookie(env, args, false)
}

// TCPRawCheckSyncookieV6 is bpf_tcp_raw_check_syncookie_ipv6(iph, th).
func TCPRawCheckSyncookieV6(env Env, args *[5]uint64) (uint64, error) {
	return rawCheckSyncookie(env, args, true)
}

// Syncookies returns the socket-less SYN cookie helpers, which Linux
// offers XDP and tc programs (xdp_func_proto, tc_cls_act_func_proto).
// Their prototypes are Linux's (bpf_tcp_raw_*_syncookie_*_proto): the IP
// header is fixed-size memory, the TCP header memory of th_len bytes
// (gen) or of a header without options (check); they may take packet
// pointers, and are GPL-only.
func Syncookies() Defs {
	gen := func(ipLen uint32) Proto {
		return Proto{Ret: RetInteger, GPLOnly: true, PktAccess: true,
			Args:    []ArgType{ArgPtrToFixedSizeMem, ArgPtrToMem, ArgConstSizeOrZero},
			ArgSize: [5]uint32{ipLen}}
	}
	check := func(ipLen uint32) Proto {
		return Proto{Ret: RetInteger, GPLOnly: true, PktAccess: true,
			Args:    []ArgType{ArgPtrToFixedSizeMem, ArgPtrToFixedSizeMem},
			ArgSize: [5]uint32{ipLen, tcpHdrLen}}
	}
	return Defs{
		{ID: IDTCPRawGenSyncookieV4, Name: "tcp_raw_gen_syncookie_ipv4", Proto: gen(ipv4HdrLen), Func: TCPRawGenSyncookieV4},
		{ID: IDTCPRawGenSyncookieV6, Name: "tcp_raw_gen_syncookie_ipv6", Proto: gen(ipv6HdrLen), Func: TCPRawGenSyncookieV6},
		{ID: IDTCPRawCheckSyncookieV4, Name: "tcp_raw_check_syncookie_ipv4", Proto: check(ipv4HdrLen), Func: TCPRawCheckSyncookieV4},
		{ID: IDTCPRawCheckSyncookieV6, Name: "tcp_raw_check_syncookie_ipv6", Proto: check(ipv6HdrLen), Func: TCPRawCheckSyncookieV6},
	}
}
