package firewall

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/waggle-bpf/waggle"
)

// cookieConfig turns SYN cookies on with a mark of one packet a second,
// so that the second packet of a second is under attack, and an allow
// rule whose sources are never answered.
const cookieConfig = `
options:
  syn_cookies: on
limits:
  syn: {rate: 1, burst: 1}
  attack_pps: 1
rules:
  - name: office
    id: 16
    action: allow
    cidrs: [192.0.2.0/24, 2001:db8:1::/48]
`

// runner runs single packets through a firewall and returns what it
// sends back or passes on: the frame after the run.
type runner interface {
	run(tb testing.TB, p Packet) (Verdict, []byte)
}

// waggleRunner runs packets through a Replayer's program in user space.
type waggleRunner struct{ prog *waggle.Program }

func (w waggleRunner) run(tb testing.TB, p Packet) (Verdict, []byte) {
	tb.Helper()
	data, md := ReplayInput(p)
	out := make([]byte, 4096)
	opts := &waggle.RunOptions{Data: data, Context: md, DataOut: out}
	ret, err := w.prog.Run(opts)
	if err != nil {
		tb.Fatal(err)
	}
	rule, err := RuleOf(opts.DataOut)
	if err != nil {
		tb.Fatal(err)
	}
	return Verdict{Action: ret, Rule: rule}, opts.DataOut[MetaSize:]
}

// synPacket is a TCP SYN (with the usual options: MSS, SACK permitted,
// timestamps, window scale) or, with ack, the bare ACK of a handshake,
// from src:sport to dst:80.
func synPacket(tb testing.TB, src, dst string, sport uint16, seq, ack uint32, mss uint16) []byte {
	tb.Helper()
	s, d := net.ParseIP(src), net.ParseIP(dst)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	t := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: 80, Seq: seq, Window: 64240}
	if ack != 0 {
		t.ACK, t.Ack = true, ack
	} else {
		t.SYN = true
		t.Options = []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(mss >> 8), byte(mss)}},
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)},
			{OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
		}
	}
	var ls []gopacket.SerializableLayer
	if s.To4() != nil {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: s.To4(), DstIP: d.To4(), Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment}
		t.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{eth, ip, t}
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: s, DstIP: d, NextHeader: layers.IPProtocolTCP}
		t.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{eth, ip, t}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// synAck is what checkSynAck found in a SYN-ACK, and the frame.
type synAck struct {
	seq, ack uint32
	mss      uint16
	frame    []byte
}

// checkSynAck decodes frame as the SYN-ACK answering a SYN from src:sport
// to dst:80 with sequence number seq: the MACs, addresses and ports
// swapped, SYN and ACK alone, ack = seq + 1, the MSS option alone, and
// every checksum right (gopacket recomputes them and they must not
// change).
func checkSynAck(t *testing.T, frame []byte, src, dst string, sport uint16, seq uint32) synAck {
	t.Helper()
	v4 := net.ParseIP(src).To4() != nil
	first := layers.LayerTypeEthernet
	pk := gopacket.NewPacket(frame, first, gopacket.Default)
	if el := pk.ErrorLayer(); el != nil {
		t.Fatalf("the answer does not decode: %v", el.Error())
	}
	eth, _ := pk.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	tcp, _ := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if eth == nil || tcp == nil {
		t.Fatalf("the answer has no Ethernet or TCP layer: %v", pk)
	}
	if eth.SrcMAC.String() != "02:00:00:00:00:02" || eth.DstMAC.String() != "02:00:00:00:00:01" {
		t.Errorf("MACs %v -> %v, not swapped", eth.SrcMAC, eth.DstMAC)
	}
	var ipTotal int
	if v4 {
		ip, _ := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip == nil {
			t.Fatal("no IPv4 layer")
		}
		if !ip.SrcIP.Equal(net.ParseIP(dst)) || !ip.DstIP.Equal(net.ParseIP(src)) {
			t.Errorf("addresses %v -> %v, not swapped", ip.SrcIP, ip.DstIP)
		}
		ipTotal = int(ip.Length)
		check := ip.Checksum
		if err := ip.SerializeTo(gopacket.NewSerializeBuffer(), gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
			t.Fatal(err)
		}
		if ip.Checksum != check {
			t.Errorf("IPv4 checksum %#04x, want %#04x", check, ip.Checksum)
		}
		tcp.SetNetworkLayerForChecksum(ip)
		if ipTotal != 20+24 || len(frame) != 14+ipTotal {
			t.Errorf("IPv4 total length %d in a frame of %d bytes, want 44 in 58", ipTotal, len(frame))
		}
	} else {
		ip, _ := pk.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if ip == nil {
			t.Fatal("no IPv6 layer")
		}
		if !ip.SrcIP.Equal(net.ParseIP(dst)) || !ip.DstIP.Equal(net.ParseIP(src)) {
			t.Errorf("addresses %v -> %v, not swapped", ip.SrcIP, ip.DstIP)
		}
		tcp.SetNetworkLayerForChecksum(ip)
		if ip.Length != 24 || len(frame) != 14+40+24 {
			t.Errorf("IPv6 payload length %d in a frame of %d bytes, want 24 in 78", ip.Length, len(frame))
		}
	}
	if uint16(tcp.SrcPort) != 80 || uint16(tcp.DstPort) != sport {
		t.Errorf("ports %d -> %d, not swapped", tcp.SrcPort, tcp.DstPort)
	}
	if !tcp.SYN || !tcp.ACK || tcp.FIN || tcp.RST || tcp.PSH || tcp.URG {
		t.Errorf("flags: SYN %v ACK %v FIN %v RST %v PSH %v URG %v, want SYN and ACK", tcp.SYN, tcp.ACK, tcp.FIN, tcp.RST, tcp.PSH, tcp.URG)
	}
	if tcp.Ack != seq+1 {
		t.Errorf("ack %d, want the SYN's seq + 1 = %d", tcp.Ack, seq+1)
	}
	if len(tcp.Options) != 1 || tcp.Options[0].OptionType != layers.TCPOptionKindMSS || len(tcp.Options[0].OptionData) != 2 {
		t.Fatalf("options %v, want the MSS alone", tcp.Options)
	}
	check := tcp.Checksum
	if err := tcp.SerializeTo(gopacket.NewSerializeBuffer(), gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
		t.Fatal(err)
	}
	if tcp.Checksum != check {
		t.Errorf("TCP checksum %#04x, want %#04x", check, tcp.Checksum)
	}
	d := tcp.Options[0].OptionData
	return synAck{seq: tcp.Seq, ack: tcp.Ack, mss: uint16(d[0])<<8 | uint16(d[1]), frame: frame}
}

// cookieCase is a SYN answered, then its handshake's ACK passed and a
// forged one not, in one family.
type cookieCase struct {
	name     string
	src, dst string
	mss      uint16 // the SYN's
	want     uint16 // the SYN-ACK's: the cookie's msstab entry
}

var cookieCases = []cookieCase{
	{"ipv4", "198.51.100.7", "203.0.113.1", 1460, 1460},
	{"ipv4 mss 1400", "198.51.100.8", "203.0.113.1", 1400, 1300},
	{"ipv6", "2001:db8:9::7", "2001:db8::1", 1440, 1440},
	{"ipv6 jumbo", "2001:db8:9::8", "2001:db8::1", 8960, 8940},
}

// testCookieHandshake runs, under attack, a SYN (answered, XDP_TX,
// RuleSYNCookie), its handshake's ACK (ack = cookie + 1: passed,
// RuleSYNCookieACK), a forged ACK (not checking: on to the limits,
// RuleDefault), and a SYN from an allowed source (not answered), through
// r. It returns the SYN-ACKs, for comparison across runners.
func testCookieHandshake(t *testing.T, r runner, start time.Time) []synAck {
	var out []synAck
	now := start
	next := func() time.Time { now = now.Add(time.Millisecond); return now }
	for _, tc := range cookieCases {
		t.Run(tc.name, func(t *testing.T) {
			// Two packets in a second are over the mark of 1 (an
			// allowed source's do not count).
			warm := "198.51.100.200"
			if net.ParseIP(tc.src).To4() == nil {
				warm = "2001:db8:9::200"
			}
			r.run(t, Packet{Data: build(t, pkt{src: warm, dst: tc.dst, proto: "udp", sport: 1, dport: 2}), Time: next()})
			const seq = 0x7ffffff0
			v, frame := r.run(t, Packet{Data: synPacket(t, tc.src, tc.dst, 40000, seq, 0, tc.mss), Time: next()})
			if v != (Verdict{Action: XDPTX, Rule: RuleSYNCookie}) {
				t.Fatalf("SYN: %s by %d, want XDP_TX by syn-cookie", ActionName(v.Action), v.Rule)
			}
			sa := checkSynAck(t, bytes.Clone(frame), tc.src, tc.dst, 40000, seq)
			if sa.mss != tc.want {
				t.Errorf("SYN-ACK MSS %d, want %d", sa.mss, tc.want)
			}
			out = append(out, sa)
			v, _ = r.run(t, Packet{Data: synPacket(t, tc.src, tc.dst, 40000, seq+1, sa.seq+1, 0), Time: next()})
			if v != (Verdict{Action: XDPPass, Rule: RuleSYNCookieACK}) {
				t.Errorf("the handshake's ACK: %s by %d, want XDP_PASS by syn-cookie-ack", ActionName(v.Action), v.Rule)
			}
			v, _ = r.run(t, Packet{Data: synPacket(t, tc.src, tc.dst, 40000, seq+1, sa.seq+1+0x10000, 0), Time: next()})
			if v != (Verdict{Action: XDPPass, Rule: RuleDefault}) {
				t.Errorf("a forged ACK: %s by %d, want XDP_PASS by default (not validated, on to the limits)", ActionName(v.Action), v.Rule)
			}
			v, _ = r.run(t, Packet{Data: synPacket(t, tc.src, tc.dst, 40001, seq, sa.seq+1, 0), Time: next()})
			if v.Rule == RuleSYNCookieACK {
				t.Errorf("an ACK from another port checks")
			}
			office := "192.0.2.10"
			if net.ParseIP(tc.src).To4() == nil {
				office = "2001:db8:1::10"
			}
			v, _ = r.run(t, Packet{Data: synPacket(t, office, tc.dst, 40000, seq, 0, tc.mss), Time: next()})
			if v != (Verdict{Action: XDPPass, Rule: 16}) {
				t.Errorf("an allowed source's SYN: %s by %d, want XDP_PASS by office", ActionName(v.Action), v.Rule)
			}
		})
	}
	return out
}

// TestReplayer_synCookies: under attack with syn_cookies on, a SYN gets a
// valid SYN-ACK (XDP_TX), the matching ACK passes, a forged one is not
// validated.
func TestReplayer_synCookies(t *testing.T) {
	comp := mustCompile(t, cookieConfig)
	r, err := NewReplayer(comp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Unix(1_700_000_000, 0)
	// A SYN to port 80 goes to the stack when none did for a minute:
	// this one, before the attack.
	w := waggleRunner{r.Collection().Programs[ProgramName]}
	if v, _ := w.run(t, Packet{Data: synPacket(t, "198.51.100.1", "203.0.113.1", 1, 1, 0, 1460), Time: start}); v.Action != XDPPass {
		t.Fatalf("the SYN before the attack: %s by %d", ActionName(v.Action), v.Rule)
	}
	testCookieHandshake(t, w, start.Add(time.Second))
}

// TestReplayer_synCookiesOff: without the option, under attack, SYNs meet
// the per-source SYN rate, and no answer is sent.
func TestReplayer_synCookiesOff(t *testing.T) {
	for _, opt := range []string{"off", ""} {
		cfg := cookieConfig
		if opt == "" {
			cfg = cfg[:len("\noptions:\n")] + cfg[len("\noptions:\n  syn_cookies: on\n"):]
		} else {
			cfg = "\noptions:\n  syn_cookies: off\n" + cfg[len("\noptions:\n  syn_cookies: on\n"):]
		}
		comp := mustCompile(t, cfg)
		if got := SYNProtection(comp.Config); got != SYNRateOnly {
			t.Errorf("%q: SYN protection %q", opt, got)
		}
		r, err := NewReplayer(comp, nil)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(1_700_000_000, 0)
		pkts := []Packet{
			{Data: build(t, pkt{src: "198.51.100.200", dst: "203.0.113.1", proto: "udp", sport: 1, dport: 2}), Time: now},
			{Data: synPacket(t, "198.51.100.7", "203.0.113.1", 40000, 1, 0, 1460), Time: now.Add(time.Millisecond)},
			{Data: synPacket(t, "198.51.100.7", "203.0.113.1", 40001, 1, 0, 1460), Time: now.Add(2 * time.Millisecond)},
		}
		vs := make([]Verdict, len(pkts))
		if err := r.Run(pkts, vs); err != nil {
			t.Fatal(err)
		}
		r.Close()
		if vs[1] != (Verdict{XDPPass, RuleDefault}) || vs[2] != (Verdict{XDPDrop, RuleSYNRate}) {
			t.Errorf("%q: SYNs %+v %+v, want passed then dropped by syn-rate", opt, vs[1], vs[2])
		}
	}
}

func TestSYNProtection(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want string
	}{
		{"options: {syn_cookies: on}\nlimits: {attack_pps: 10, syn: {rate: 5}}", SYNCookiesAndRate},
		{"options: {syn_cookies: auto}\nlimits: {attack_pps: 10}", SYNCookiesOnly},
		{"options: {syn_cookies: on}\nlimits: {syn: {rate: 5}}", SYNRateOnly}, // never under attack
		{"limits: {syn: {rate: 5}}", SYNRateOnly},
		{"options: {syn_cookies: off}", SYNNone},
	} {
		if got := SYNProtection(mustCompile(t, tc.yaml).Config); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.yaml, got, tc.want)
		}
	}
	if _, err := Compile(&Config{Options: Options{SYNCookies: "yes"}}); err == nil {
		t.Error("syn_cookies: yes compiles")
	}
}

// BenchmarkReplayer_synCookie replays SYNs under attack, each answered
// with a cookie SYN-ACK, in batches of 256 (waggle's JIT, the batch API):
// the cost of the cookie path in user space, per packet.
func BenchmarkReplayer_synCookie(b *testing.B) {
	r, err := NewReplayer(mustCompile(b, cookieConfig), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	now := time.Unix(1_700_000_000, 0)
	warm := []Packet{
		{Data: synPacket(b, "198.51.100.1", "203.0.113.1", 1, 1, 0, 1460), Time: now},
		{Data: build(b, pkt{src: "198.51.100.200", dst: "203.0.113.1", proto: "udp", sport: 1, dport: 2}), Time: now},
		{Data: build(b, pkt{src: "198.51.100.200", dst: "203.0.113.1", proto: "udp", sport: 1, dport: 2}), Time: now},
	}
	if err := r.Run(warm, make([]Verdict, len(warm))); err != nil {
		b.Fatal(err)
	}
	pkts := make([]Packet, 256)
	for i := range pkts {
		pkts[i] = Packet{Data: synPacket(b, "198.51.100.7", "203.0.113.1", uint16(1024+i), uint32(i), 0, 1460), Time: now.Add(time.Millisecond)}
	}
	vs := make([]Verdict, len(pkts))
	for b.Loop() {
		if err := r.Run(pkts, vs); err != nil {
			b.Fatal(err)
		}
	}
	if vs[0] != (Verdict{XDPTX, RuleSYNCookie}) {
		b.Fatalf("a SYN: %+v", vs[0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pkts)), "ns/pkt")
}
