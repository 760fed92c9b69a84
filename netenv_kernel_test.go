package waggle_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

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

// runKernelNet runs a case with BPF_PROG_TEST_RUN inside the namespace.
func runKernelNet(t *testing.T, n *testNetns, kc *ebpf.Collection, c netCase) netRun {
	t.Helper()
	pkt := frame(c.req, c.size)
	out := make([]byte, len(pkt)+512)
	var r netRun
	var err error
	n.do(t, func() {
		opts := &ebpf.RunOptions{Data: pkt, DataOut: out}
		r.ret, err = kc.Programs[c.prog].Run(opts)
		r.out = opts.DataOut
	})
	if err != nil {
		t.Fatalf("kernel: %v", err)
	}
	return r
}

// runWaggleNet runs a case in waggle.
func runWaggleNet(t *testing.T, coll *waggle.Collection, c netCase, opts waggle.RunOptions) netRun {
	t.Helper()
	pkt := frame(c.req, c.size)
	opts.Data = pkt
	opts.DataOut = make([]byte, len(pkt)+512)
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
func compareNet(t *testing.T, which string, got, want netRun) {
	t.Helper()
	if got.ret != want.ret || !bytes.Equal(got.out, want.out) {
		t.Errorf("%s: waggle returned %d, the kernel %d\nwaggle:\n%skernel:\n%s", which, int32(got.ret), int32(want.ret),
			hex.Dump(got.out[min(14, len(got.out)):]), hex.Dump(want.out[min(14, len(want.out)):]))
	}
}

// netCollections loads the test object into waggle once per host: the
// host as declared and as read back from the namespace.
func netCollections(t *testing.T, n *testNetns, cfg *netenv.Config) map[string]*waggle.Collection {
	t.Helper()
	declared, err := netenv.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	colls := map[string]*waggle.Collection{}
	for name, h := range map[string]*netenv.Host{"declared": declared, "read": n.read(t)} {
		coll, err := waggle.LoadCollection(netObject, &waggle.CollectionOptions{CPUs: 1, Net: h})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(coll.Close)
		colls[name] = coll
	}
	return colls
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

// TestNetenv_fibKernel compares bpf_fib_lookup in XDP and tc programs with
// Linux: the same namespace is set up with ip(8), and waggle runs with
// the host as declared in Go and as netenv reads it back; the return
// code, the params written back (family, ifindex, metric, MTU, addresses,
// MACs) and the return value must agree, with and without policy rules.
func TestNetenv_fibKernel(t *testing.T) {
	for _, withRules := range []bool{false, true} {
		name := "main"
		if withRules {
			name = "rules"
		}
		t.Run(name, func(t *testing.T) {
			cfg := fibHost(withRules)
			n := newTestNetns(t, cfg)
			kc := kernelCollection(t, netObject)
			colls := netCollections(t, n, cfg)
			for _, c := range fibCases() {
				t.Run(c.name, func(t *testing.T) {
					want := runKernelNet(t, n, kc, c)
					for which, coll := range colls {
						compareNet(t, which, runWaggleNet(t, coll, c, waggle.RunOptions{}), want)
					}
				})
			}
		})
	}
}
