package waggle_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/netenv"
	"github.com/waggle-bpf/waggle/progtype"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/netenv/net.c -o testdata/netenv/net.o

const netObject = "testdata/netenv/net.o"

// netCase is one request to a program of testdata/netenv: the bytes after
// the Ethernet header, in a frame of size bytes (0: just long enough).
type netCase struct {
	name string
	prog string
	req  []byte
	size int
	ctx  []byte // ctx_in, nil for none
	// mask are byte ranges of the request that are not compared: what
	// Linux leaves undefined.
	mask [][2]int
}

// frame returns the test packet of a request: an Ethernet header with
// EtherType 0x88b5 (local experimental), the request, zeros up to size.
func frame(req []byte, size int) []byte {
	n := max(size, 14+len(req))
	pkt := make([]byte, n)
	copy(pkt[0:6], []byte{2, 0, 0, 0, 0, 0x10})
	copy(pkt[6:12], []byte{2, 0, 0, 0, 0, 0x11})
	binary.BigEndian.PutUint16(pkt[12:], 0x88b5)
	copy(pkt[14:], req)
	return pkt
}

// netRun is what one run gave: the return value, the packet after it and,
// for waggle, the run's whole output.
type netRun struct {
	ret uint32
	out []byte
	res progtype.Output
}

// runWaggleNet runs a case in waggle.
func runWaggleNet(t *testing.T, coll *waggle.Collection, c netCase, opts waggle.RunOptions) netRun {
	t.Helper()
	pkt := frame(c.req, c.size)
	opts.Data = pkt
	opts.DataOut = make([]byte, len(pkt)+512)
	if c.ctx != nil {
		opts.Context = c.ctx
	}
	var r netRun
	opts.Output = &r.res
	ret, err := coll.Programs[c.prog].Run(&opts)
	if err != nil {
		t.Fatalf("waggle: %v", err)
	}
	r.ret, r.out = ret, opts.DataOut
	return r
}

// compareNet requires the same return value and packet; on a difference
// it prints both requests' bytes after the Ethernet header.
func compareNet(t *testing.T, which string, c netCase, got, want netRun) {
	t.Helper()
	for _, m := range c.mask {
		clear(got.out[14+m[0] : 14+m[1]])
		clear(want.out[14+m[0] : 14+m[1]])
	}
	if got.ret != want.ret || !bytes.Equal(got.out, want.out) {
		t.Errorf("%s: waggle returned %d, the kernel %d\nwaggle:\n%skernel:\n%s", which, int32(got.ret), int32(want.ret),
			hex.Dump(got.out[min(14, len(got.out)):]), hex.Dump(want.out[min(14, len(want.out)):]))
	}
}

// fibReq builds a bpf_fib_lookup request: flags, a short params length if
// short, and struct bpf_fib_lookup.
type fib struct {
	family   uint8
	proto    uint8
	totLen   uint16
	ifindex  uint32
	tos      uint32
	src, dst string
	tbid     uint32
	mark     uint32
}

func fibReq(flags uint32, short bool, p fib) []byte {
	b := make([]byte, 16+64)
	binary.LittleEndian.PutUint32(b[0:], flags)
	if short {
		binary.LittleEndian.PutUint32(b[8:], 32)
	}
	q := b[16:]
	q[0], q[1] = p.family, p.proto
	if q[0] == 0 {
		q[0] = 2
		if p.dst != "" && netip.MustParseAddr(p.dst).Is6() {
			q[0] = 10
		}
	}
	binary.LittleEndian.PutUint16(q[6:], p.totLen)
	binary.LittleEndian.PutUint32(q[8:], p.ifindex)
	binary.LittleEndian.PutUint32(q[12:], p.tos)
	for off, s := range map[int]string{16: p.src, 32: p.dst} {
		if s != "" {
			a := netip.MustParseAddr(s)
			copy(q[off:], a.AsSlice())
		}
	}
	binary.LittleEndian.PutUint32(q[48:], p.tbid)
	binary.LittleEndian.PutUint32(q[52:], p.mark)
	return b
}

func mac(s string) netenv.HardwareAddr {
	var m netenv.HardwareAddr
	if err := m.UnmarshalText([]byte(s)); err != nil {
		panic(err)
	}
	return m
}

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

// fibHost is the host the routing comparisons run on: two veth pairs in
// the namespace (netenv0/netenv1 forwarding, netenv1 with MTU 1400;
// netenv2/netenv3 not forwarding, netenv3 down), routes of every type,
// neighbours in every state. withRules adds policy rules.
func fibHost(withRules bool) *netenv.Config {
	ip := netip.MustParseAddr
	pf := netip.MustParsePrefix
	c := &netenv.Config{
		Interfaces: []netenv.Interface{
			{Index: 1, Name: "lo", Kind: netenv.KindLoopback, Forwarding: true, Forwarding6: true},
			{Index: 10, Name: "netenv0", Kind: netenv.KindVeth, Peer: 11, MAC: mac("02:00:00:00:00:10"),
				Addrs: prefixes("10.0.0.1/24", "2001:db8::1/64"), Forwarding: true, Forwarding6: true},
			{Index: 11, Name: "netenv1", Kind: netenv.KindVeth, Peer: 10, MAC: mac("02:00:00:00:00:11"), MTU: 1400,
				Addrs: prefixes("10.1.0.1/24", "2001:db8:1::1/64"), Forwarding: true, Forwarding6: true},
			{Index: 12, Name: "netenv2", Kind: netenv.KindVeth, Peer: 13, MAC: mac("02:00:00:00:00:12"),
				Addrs: prefixes("10.2.0.1/24", "2001:db8:2::1/64")},
			{Index: 13, Name: "netenv3", Kind: netenv.KindVeth, Peer: 12, MAC: mac("02:00:00:00:00:13"), Down: true,
				Addrs: prefixes("10.3.0.1/24")},
		},
		Routes: []netenv.Route{
			{Dst: pf("192.168.0.0/16"), Via: ip("10.0.0.2")},
			{Dst: pf("192.168.7.0/24"), Via: ip("10.1.0.7"), Metric: 5},
			{Dst: pf("192.168.5.0/24"), Via: ip("10.1.0.7"), TOS: 0x10},
			{Dst: pf("172.16.0.0/12"), Type: netenv.RouteBlackhole},
			{Dst: pf("172.17.0.0/16"), Type: netenv.RouteUnreachable},
			{Dst: pf("172.18.0.0/16"), Type: netenv.RouteProhibit},
			{Dst: pf("10.9.0.0/16"), Via: ip("10.1.0.9")},
			{Dst: pf("10.8.0.0/16"), Via: ip("10.1.0.8")},
			{Dst: pf("10.7.0.0/16"), Dev: "netenv1", MTU: 1300, MTULock: true},
			{Dst: pf("10.6.0.0/16"), Dev: "netenv1", MTU: 1300},
			{Dst: pf("10.5.0.0/16"), Dev: "netenv0", Src: ip("10.1.0.1")},
			{Dst: pf("192.168.0.0/16"), Via: ip("10.1.0.9"), Table: 100},
			{Dst: pf("0.0.0.0/0"), Via: ip("10.1.0.7"), Table: 100},
			{Dst: pf("198.51.100.0/24"), Via: ip("2001:db8::2"), Dev: "netenv0"},
			{Dst: pf("2001:db8:100::/48"), Via: ip("2001:db8::2"), Metric: 1024},
			{Dst: pf("2001:db8:200::/48"), Type: netenv.RouteBlackhole, Metric: 1024},
			{Dst: pf("2001:db8:210::/48"), Type: netenv.RouteUnreachable, Metric: 1024},
			{Dst: pf("2001:db8:220::/48"), Type: netenv.RouteProhibit, Metric: 1024},
			{Dst: pf("2001:db8:300::/48"), Dev: "netenv1", Metric: 1024},
			{Dst: pf("2001:db8:400::/48"), Via: ip("2001:db8:1::4"), Metric: 1024},
			{Dst: pf("2001:db8:500::/48"), Via: ip("2001:db8::2"), Metric: 1024, MTU: 1280, MTULock: true},
			{Dst: pf("2001:db8:100::/48"), Via: ip("2001:db8:1::7"), Table: 100, Metric: 1024},
			{Dst: pf("::/0"), Via: ip("fe80::1"), Dev: "netenv0", Metric: 1024},
		},
		Neighbours: []netenv.Neighbour{
			{Dev: "netenv0", IP: ip("10.0.0.2"), MAC: mac("02:00:00:00:01:02")},
			{Dev: "netenv1", IP: ip("10.1.0.7"), MAC: mac("02:00:00:00:01:07"), State: netenv.NeighStale},
			{Dev: "netenv1", IP: ip("10.1.0.9"), State: netenv.NeighFailed},
			{Dev: "netenv1", IP: ip("10.1.0.8"), State: netenv.NeighIncomplete},
			{Dev: "netenv1", IP: ip("10.7.0.1"), MAC: mac("02:00:00:00:07:01")},
			{Dev: "netenv1", IP: ip("10.6.0.1"), MAC: mac("02:00:00:00:06:01"), State: netenv.NeighReachable},
			{Dev: "netenv0", IP: ip("10.5.0.1"), MAC: mac("02:00:00:00:05:01"), State: netenv.NeighDelay},
			{Dev: "netenv0", IP: ip("2001:db8::2"), MAC: mac("02:00:00:00:02:02"), State: netenv.NeighProbe},
			{Dev: "netenv0", IP: ip("fe80::1"), MAC: mac("02:00:00:00:fe:01")},
			{Dev: "netenv1", IP: ip("2001:db8:1::7"), MAC: mac("02:00:00:00:17:07")},
			{Dev: "netenv1", IP: ip("2001:db8:1::4"), State: netenv.NeighFailed},
		},
	}
	if withRules {
		c.Rules = []netenv.Rule{
			{Priority: 0, Table: netenv.TableLocal},
			{Priority: 100, Family: "inet", Mark: 0x10, Table: 100},
			{Priority: 110, Family: "inet", Dst: pf("203.0.113.0/24"), Action: netenv.RuleProhibit},
			{Priority: 120, Family: "inet", IIf: "netenv1", Dst: pf("192.168.0.0/16"), Table: 100},
			{Priority: 130, Family: "inet6", Mark: 0x20, Table: 100},
			{Priority: 140, Family: "inet6", Dst: pf("2001:db8:600::/48"), Action: netenv.RuleBlackhole},
			{Priority: 32766, Table: netenv.TableMain},
			{Priority: 32767, Family: "inet", Table: netenv.TableDefault},
		}
	}
	return c
}

// fibCases are the lookups compared, each through XDP and tc.
func fibCases() []netCase {
	type fc struct {
		name  string
		flags uint32
		short bool
		p     fib
		size  int
	}
	const (
		direct    = progtype.FibLookupDirect
		output    = progtype.FibLookupOutput
		skipNeigh = progtype.FibLookupSkipNeigh
		tbid      = progtype.FibLookupTBID
		src       = progtype.FibLookupSrc
		mark      = progtype.FibLookupMark
	)
	list := []fc{
		{name: "gateway", p: fib{ifindex: 10, dst: "192.168.1.1"}},
		{name: "gateway from lo", p: fib{ifindex: 1, dst: "192.168.1.1", src: "10.1.0.5"}},
		{name: "skip neigh", flags: skipNeigh, p: fib{ifindex: 10, dst: "192.168.1.1", mark: 0x12345678}},
		{name: "src", flags: src, p: fib{ifindex: 10, dst: "192.168.1.1"}},
		{name: "src of route", flags: src, p: fib{ifindex: 10, dst: "10.5.0.1"}},
		{name: "connected src", flags: src | skipNeigh, p: fib{ifindex: 10, dst: "10.1.0.44"}},
		{name: "longer prefix stale neigh", p: fib{ifindex: 11, dst: "192.168.7.9"}},
		{name: "tos route", p: fib{ifindex: 10, dst: "192.168.5.1", tos: 0x10}},
		{name: "tos other", p: fib{ifindex: 10, dst: "192.168.5.1", tos: 0x08}},
		{name: "failed neigh", p: fib{ifindex: 10, dst: "10.9.1.1"}},
		{name: "incomplete neigh", p: fib{ifindex: 10, dst: "10.8.1.1"}},
		{name: "connected no neigh", p: fib{ifindex: 10, dst: "10.1.0.99"}},
		{name: "blackhole", p: fib{ifindex: 10, dst: "172.16.1.1"}},
		{name: "unreachable", p: fib{ifindex: 10, dst: "172.17.1.1"}},
		{name: "prohibit", p: fib{ifindex: 10, dst: "172.18.1.1"}},
		{name: "prohibit rule", p: fib{ifindex: 10, dst: "203.0.113.9"}},
		{name: "no route", p: fib{ifindex: 10, dst: "8.8.8.8"}},
		{name: "local", p: fib{ifindex: 10, dst: "10.1.0.1"}},
		{name: "local direct", flags: direct, p: fib{ifindex: 10, dst: "10.1.0.1"}},
		{name: "broadcast", p: fib{ifindex: 10, dst: "10.0.0.255"}},
		{name: "mtu lock", p: fib{ifindex: 10, dst: "10.7.0.1", totLen: 1301}},
		{name: "mtu lock fits", p: fib{ifindex: 10, dst: "10.7.0.1", totLen: 1300}},
		{name: "mtu unlocked", p: fib{ifindex: 10, dst: "10.6.0.1", totLen: 1301}},
		{name: "device mtu", p: fib{ifindex: 10, dst: "10.6.0.1", totLen: 1401}},
		{name: "tc packet too long", p: fib{ifindex: 10, dst: "10.6.0.1"}, size: 1500},
		{name: "forwarding off", p: fib{ifindex: 12, dst: "192.168.1.1"}},
		{name: "device down", p: fib{ifindex: 13, dst: "192.168.1.1"}},
		{name: "no device", p: fib{ifindex: 99, dst: "192.168.1.1"}},
		{name: "no device zero", p: fib{ifindex: 0, dst: "192.168.1.1"}},
		{name: "output", flags: output, p: fib{ifindex: 10, dst: "192.168.1.1"}},
		{name: "output other device", flags: output, p: fib{ifindex: 11, dst: "192.168.1.1"}},
		{name: "direct", flags: direct, p: fib{ifindex: 10, dst: "192.168.1.1"}},
		{name: "tbid", flags: direct | tbid, p: fib{ifindex: 10, dst: "192.168.1.1", tbid: 100}},
		{name: "tbid default route", flags: direct | tbid, p: fib{ifindex: 10, dst: "8.8.8.8", tbid: 100}},
		{name: "tbid missing table", flags: direct | tbid, p: fib{ifindex: 10, dst: "192.168.1.1", tbid: 101}},
		{name: "tbid without direct", flags: tbid, p: fib{ifindex: 10, dst: "192.168.1.1", tbid: 100}},
		{name: "mark", flags: mark, p: fib{ifindex: 10, dst: "192.168.1.1", mark: 0x10}},
		{name: "mark other", flags: mark, p: fib{ifindex: 10, dst: "192.168.1.1", mark: 0x11}},
		{name: "mark without flag", p: fib{ifindex: 10, dst: "192.168.1.1", mark: 0x10}},
		{name: "iif rule", p: fib{ifindex: 11, dst: "192.168.1.1"}},
		{name: "ipv6 gateway", p: fib{ifindex: 10, dst: "198.51.100.7"}},
		{name: "unknown flag", flags: 1 << 6, p: fib{ifindex: 10, dst: "192.168.1.1"}},
		{name: "short params", short: true, p: fib{ifindex: 10, dst: "192.168.1.1"}},
		{name: "family", p: fib{family: 3, ifindex: 10, dst: "192.168.1.1"}},
		{name: "v6 gateway", p: fib{ifindex: 10, dst: "2001:db8:100::1"}},
		{name: "v6 src", flags: src, p: fib{ifindex: 10, dst: "2001:db8:100::1"}},
		{name: "v6 src skip neigh", flags: src | skipNeigh, p: fib{ifindex: 11, dst: "2001:db8:300::1"}},
		{name: "v6 blackhole", p: fib{ifindex: 10, dst: "2001:db8:200::1"}},
		{name: "v6 unreachable", p: fib{ifindex: 10, dst: "2001:db8:210::1"}},
		{name: "v6 prohibit", p: fib{ifindex: 10, dst: "2001:db8:220::1"}},
		{name: "v6 blackhole rule", p: fib{ifindex: 10, dst: "2001:db8:600::1"}},
		{name: "v6 connected no neigh", p: fib{ifindex: 10, dst: "2001:db8:300::5"}},
		{name: "v6 failed neigh", p: fib{ifindex: 10, dst: "2001:db8:400::1"}},
		{name: "v6 default via link-local", p: fib{ifindex: 10, dst: "2001:db9::1"}},
		{name: "v6 link-local", p: fib{ifindex: 10, dst: "fe80::5"}},
		{name: "v6 multicast", p: fib{ifindex: 10, dst: "ff02::1"}},
		{name: "v6 link-local source", p: fib{ifindex: 10, dst: "2001:db8:100::1", src: "fe80::9"}},
		{name: "v6 local", p: fib{ifindex: 10, dst: "2001:db8:1::1"}},
		{name: "v6 anycast", p: fib{ifindex: 10, dst: "2001:db8:1::"}},
		{name: "v6 mtu lock", p: fib{ifindex: 10, dst: "2001:db8:500::1", totLen: 1281}},
		{name: "v6 device mtu", p: fib{ifindex: 10, dst: "2001:db8:300::5", totLen: 1401}},
		{name: "v6 forwarding off", p: fib{ifindex: 12, dst: "2001:db8:100::1"}},
		{name: "v6 output", flags: output, p: fib{ifindex: 10, dst: "2001:db8:100::1"}},
		{name: "v6 output other device", flags: output, p: fib{ifindex: 11, dst: "2001:db8:100::1"}},
		{name: "v6 direct", flags: direct, p: fib{ifindex: 10, dst: "2001:db8:100::1"}},
		{name: "v6 tbid", flags: direct | tbid, p: fib{ifindex: 10, dst: "2001:db8:100::1", tbid: 100}},
		{name: "v6 tbid missing", flags: direct | tbid, p: fib{ifindex: 10, dst: "2001:db8:100::1", tbid: 102}},
		{name: "v6 mark", flags: mark, p: fib{ifindex: 10, dst: "2001:db8:100::1", mark: 0x20}},
		{name: "v6 no route in table", flags: mark, p: fib{ifindex: 10, dst: "2001:db8:300::1", mark: 0x20}},
	}
	var out []netCase
	for _, c := range list {
		req := fibReq(c.flags, c.short, c.p)
		out = append(out, netCase{name: "xdp/" + c.name, prog: "xdp_fib", req: req, size: c.size})
		out = append(out, netCase{name: "tc/" + c.name, prog: "tc_fib", req: req, size: c.size})
	}
	return out
}

// helperCases are the requests to bpf_check_mtu, the redirects and
// bpf_clone_redirect, and the tunnel metadata helpers, on fibHost.
func helperCases() []netCase {
	mtu := func(ifindex, mtuLen uint32, diff int32, flags uint32) []byte {
		b := make([]byte, 20)
		le.PutUint32(b[0:], ifindex)
		le.PutUint32(b[4:], mtuLen)
		le.PutUint32(b[8:], uint32(diff))
		le.PutUint32(b[12:], flags)
		return b
	}
	redirect := redirectReq
	var out []netCase
	for _, c := range []struct {
		name string
		req  []byte
		size int
	}{
		{"own device", mtu(0, 0, 0, 0), 0},
		{"device", mtu(11, 0, 0, 0), 0},
		{"no device", mtu(99, 0, 0, 0), 0},
		{"length fits", mtu(11, 1400, 0, 0), 0},
		{"length too long", mtu(11, 1401, 0, 0), 0},
		{"length diff", mtu(11, 1300, 101, 0), 0},
		{"negative diff", mtu(11, 1500, -100, 0), 0},
		{"long packet", mtu(11, 0, 0, 0), 1420},
		{"long packet diff", mtu(11, 0, -10, 0), 1420},
		{"segs", mtu(11, 0, 0, 1), 0},
		{"segs with length", mtu(11, 1000, 0, 1), 0},
		{"unknown flag", mtu(11, 0, 0, 2), 0},
	} {
		out = append(out, netCase{name: "xdp mtu/" + c.name, prog: "xdp_mtu", req: c.req, size: c.size},
			netCase{name: "tc mtu/" + c.name, prog: "tc_mtu", req: c.req, size: c.size})
	}
	for _, c := range []struct {
		name string
		req  []byte
		size int
	}{
		{"redirect", redirect(0, 10, 0, ""), 0},
		{"redirect ingress", redirect(0, 10, 1, ""), 0},
		{"redirect bad flag", redirect(0, 10, 2, ""), 0},
		{"neigh", redirect(1, 10, 0, ""), 0},
		{"neigh flag", redirect(1, 10, 1, ""), 0},
		{"neigh nexthop", redirect(2, 10, 0, "10.0.0.2"), 0},
		{"neigh nexthop v6", redirect(2, 10, 0, "2001:db8::2"), 0},
		{"neigh short", redirect(3, 10, 0, "10.0.0.2"), 0},
		{"peer", redirect(4, 10, 0, ""), 0},
		{"peer flag", redirect(4, 10, 1, ""), 0},
		{"clone", redirect(5, 10, 0, ""), 0},
		{"clone ingress", redirect(5, 10, 1, ""), 0},
		{"clone peer down", redirect(5, 12, 0, ""), 0},
		{"clone down", redirect(5, 13, 0, ""), 0},
		{"clone ingress down", redirect(5, 13, 1, ""), 0},
		{"clone ingress too long", redirect(5, 11, 1, ""), 1500},
		{"clone too long", redirect(5, 11, 0, ""), 1500},
		{"clone lo", redirect(5, 1, 0, ""), 0},
		{"clone no device", redirect(5, 99, 0, ""), 0},
		{"clone bad flag", redirect(5, 10, 2, ""), 0},
	} {
		out = append(out, netCase{name: "redirect/" + c.name, prog: "tc_redirect", req: c.req, size: c.size})
	}
	for _, c := range tunnelCases() {
		out = append(out, netCase{name: "tunnel/" + c.name, prog: "tc_tunnel", req: c.req()})
	}
	return out
}

// redirectReq builds a request to tc_redirect: the operation (0
// bpf_redirect, 1 and 2 bpf_redirect_neigh without and with a nexthop, 3
// with a short one, 4 bpf_redirect_peer, 5 bpf_clone_redirect), the
// device, the flags and the nexthop.
func redirectReq(op, ifindex uint32, flags uint64, nh string) []byte {
	b := make([]byte, 48)
	le.PutUint32(b[0:], op)
	le.PutUint32(b[4:], ifindex)
	le.PutUint64(b[8:], flags)
	if nh != "" {
		a := netip.MustParseAddr(nh)
		le.PutUint32(b[24:], map[bool]uint32{true: 2, false: 10}[a.Is4()])
		copy(b[28:], a.AsSlice())
	}
	return b
}

// le reads and writes the requests' host-order fields.
var le = binary.LittleEndian

// Offsets of struct tunnel_req in testdata/netenv/net.c.
const (
	tunRCGet   = 40
	tunKey     = 48
	tunOut     = 92
	tunOpt     = 136
	tunReqSize = 168
)

// shortRet is what the programs of testdata/netenv return for a request
// the packet is too short for.
const shortRet = 99

// tunnelCase sets a tunnel key and options and reads them back.
type tunnelCase struct {
	name              string
	setSize, getSize  uint32
	setFlags, getFlag uint64
	optLen, optGet    uint32
	id                uint32
	remote, local     string
	tos, ttl          uint8
	ext               uint16
	label             uint32
}

func (c tunnelCase) req() []byte {
	b := make([]byte, tunReqSize)
	le.PutUint32(b[0:], c.setSize)
	le.PutUint32(b[4:], c.getSize)
	le.PutUint64(b[8:], c.setFlags)
	le.PutUint64(b[16:], c.getFlag)
	le.PutUint32(b[24:], c.optLen)
	le.PutUint32(b[28:], c.optGet)
	k := b[tunKey:]
	le.PutUint32(k[0:], c.id)
	for off, s := range map[int]string{4: c.remote, 28: c.local} {
		if s == "" {
			continue
		}
		a := netip.MustParseAddr(s)
		if a.Is4() {
			le.PutUint32(k[off:], binary.BigEndian.Uint32(a.AsSlice()))
		} else {
			copy(k[off:], a.AsSlice())
		}
	}
	k[20], k[21] = c.tos, c.ttl
	le.PutUint16(k[22:], c.ext)
	le.PutUint32(k[24:], c.label)
	copy(b[tunOpt:], []byte{0, 0x81, 0x2, 0x3, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 1, 2, 3, 4, 5, 6})
	return b
}

func tunnelCases() []tunnelCase {
	const v6, csum0, df, seq, nokey, flags = 1, 2, 4, 8, 16, 16
	return []tunnelCase{
		{name: "no metadata", getSize: 44},
		{name: "no metadata options", getSize: 44, optGet: 16},
		{name: "v4", setSize: 44, getSize: 44, id: 42, remote: "192.0.2.1", local: "192.0.2.2", tos: 4, ttl: 64},
		{name: "v4 flags", setSize: 44, getSize: 44, setFlags: csum0 | df | seq, getFlag: flags, id: 7, remote: "192.0.2.1"},
		{name: "v4 no key", setSize: 44, getSize: 44, setFlags: nokey, getFlag: flags, remote: "192.0.2.1"},
		{name: "v4 get as v6", setSize: 44, getSize: 44, getFlag: v6, remote: "192.0.2.1"},
		{name: "v4 label", setSize: 44, getSize: 44, remote: "192.0.2.1", label: 5},
		{name: "v4 ext", setSize: 44, getSize: 44, remote: "192.0.2.1", ext: 1},
		{name: "v4 old layouts", setSize: 28, getSize: 24, id: 9, remote: "192.0.2.1", tos: 1},
		{name: "v4 oldest", setSize: 22, getSize: 8, id: 9, remote: "192.0.2.1"},
		{name: "v4 get 22", setSize: 24, getSize: 22, id: 9, remote: "192.0.2.1", ttl: 3},
		{name: "bad set size", setSize: 20, getSize: 44, remote: "192.0.2.1"},
		{name: "bad set flag", setSize: 44, getSize: 44, setFlags: 32, remote: "192.0.2.1"},
		{name: "bad get flag", setSize: 44, getSize: 44, getFlag: 2, remote: "192.0.2.1"},
		{name: "v6", setSize: 44, getSize: 44, setFlags: v6, getFlag: v6 | flags, id: 1 << 20, remote: "2001:db8::1", local: "2001:db8::2", label: 0x123456, ttl: 9},
		{name: "v6 get as v4", setSize: 44, getSize: 44, setFlags: v6, remote: "2001:db8::1"},
		{name: "v6 get 8", setSize: 44, getSize: 8, setFlags: v6, getFlag: v6, remote: "2001:db8::1"},
		{name: "v6 get 28", setSize: 44, getSize: 28, setFlags: v6, getFlag: v6, remote: "2001:db8::1", label: 3},
		{name: "options", setSize: 44, getSize: 44, getFlag: flags, optLen: 8, optGet: 16, remote: "192.0.2.1"},
		{name: "options exact", setSize: 44, getSize: 44, optLen: 8, optGet: 8, remote: "192.0.2.1"},
		{name: "options too small", setSize: 44, getSize: 44, optLen: 12, optGet: 8, remote: "192.0.2.1"},
		{name: "options odd", setSize: 44, getSize: 44, optLen: 6, optGet: 16, remote: "192.0.2.1"},
		{name: "options without key", optLen: 4, getSize: 44, optGet: 4},
		{name: "options absent", setSize: 44, getSize: 44, optGet: 4, remote: "192.0.2.1"},
	}
}

// sockHost is fibHost with the sockets openNetnsSockets opens.
func sockHost() *netenv.Config {
	c := fibHost(false)
	ap := netip.MustParseAddrPort
	c.Sockets = []netenv.Socket{
		{Proto: "tcp", Local: ap("0.0.0.0:8080")},
		{Proto: "tcp", Local: ap("10.0.0.1:8080")},
		{Proto: "tcp", Local: ap("[::]:8081")},
		{Proto: "tcp", Local: ap("[2001:db8::1]:8082")},
		{Proto: "tcp", Local: ap("0.0.0.0:8083"), Dev: "netenv1"},
		{Proto: "tcp", Local: ap("10.0.0.1:40000"), Remote: ap("10.0.0.1:8080")},
		{Proto: "tcp", Local: ap("10.0.0.1:8080"), Remote: ap("10.0.0.1:40000")},
		{Proto: "tcp", Local: ap("10.0.0.1:40001"), Remote: ap("10.0.0.1:8080"), State: netenv.SockTimeWait},
		{Proto: "udp", Local: ap("0.0.0.0:5353")},
		{Proto: "udp", Local: ap("10.0.0.1:5354"), Remote: ap("10.0.0.2:9999")},
		{Proto: "udp", Local: ap("[::]:5355")},
	}
	return c
}

// Offsets of struct sk_req in testdata/netenv/net.c.
const (
	skFound    = 28
	skSrcIP6   = 80
	skRxQueue  = 112
	skRCAssign = 32
	skTuple    = 116
	skReqSize  = skTuple + 36
)

// skReq builds a socket lookup request: op 0 TCP, 1 UDP (xdp_sk, tc_sk;
// xdp_skc and tc_skc ignore it), the tuple from the packet's point of
// view, the netns id and flags, and for tc_sk an assign (1 + flags).
// Offsets of struct sk_tcp_req (testdata/netenv/net.c): an sk_req, then
// what tc_sk_tcp found.
const (
	skTCPFound   = skReqSize
	skTCPFields  = skReqSize + 20 // t[14], after found, tcp, full, listener, state
	skTCPReqSize = (skTCPFields + 14*4 + 7) &^ 7
)

// skTCPReq is the request of tc_sk_tcp: a TCP lookup of src -> dst.
func skTCPReq(src, dst string) []byte {
	return append(skReq(0, src, dst, 1<<64-1, 0, 0), make([]byte, skTCPReqSize-skReqSize)...)
}

func skReq(op uint32, src, dst string, netns, flags uint64, assign uint32) []byte {
	b := make([]byte, skReqSize)
	le.PutUint32(b[0:], op)
	le.PutUint64(b[8:], netns)
	le.PutUint64(b[16:], flags)
	le.PutUint32(b[24:], assign)
	tuple := b[skTuple:]
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	if s.Addr().Is4() {
		le.PutUint32(b[4:], 12)
		copy(tuple[0:], s.Addr().AsSlice())
		copy(tuple[4:], d.Addr().AsSlice())
		binary.BigEndian.PutUint16(tuple[8:], s.Port())
		binary.BigEndian.PutUint16(tuple[10:], d.Port())
	} else {
		le.PutUint32(b[4:], 36)
		copy(tuple[0:], s.Addr().AsSlice())
		copy(tuple[16:], d.Addr().AsSlice())
		binary.BigEndian.PutUint16(tuple[32:], s.Port())
		binary.BigEndian.PutUint16(tuple[34:], d.Port())
	}
	return b
}
