package trafficgen

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/waggle-bpf/waggle/internal/capture"
)

// smallScenario is a few seconds of every class, fast enough for unit tests.
func smallScenario() Scenario {
	return Scenario{
		Seed: 7, Duration: 4 * time.Second, AttackStart: time.Second, AttackEnd: 3 * time.Second,
		Clients: 50, TCPFlows: 10, HTTPSFlows: 20, IPv6Flows: 10, DNSRate: 20, NTPRate: 2,
		SYNFlood4: 2000, SYNFlood6: 500, Amplification: 1000, Reflectors: 300,
		ScanRate: 2, Fragments: 200, Malformed: 300, Outbound: true,
	}
}

func mustWrite(tb testing.TB, s Scenario) (pcap, labels []byte, counts Counts) {
	tb.Helper()
	var pb, lb bytes.Buffer
	counts, err := Write(s, &pb, &lb)
	if err != nil {
		tb.Fatal(err)
	}
	return pb.Bytes(), lb.Bytes(), counts
}

func mustGenerate(tb testing.TB, s Scenario) []Packet {
	tb.Helper()
	pkts, err := Generate(s)
	if err != nil {
		tb.Fatal(err)
	}
	return pkts
}

func TestWrite_deterministic(t *testing.T) {
	s := smallScenario()
	p1, l1, _ := mustWrite(t, s)
	p2, l2, _ := mustWrite(t, s)
	if !bytes.Equal(p1, p2) || !bytes.Equal(l1, l2) {
		t.Fatal("two runs of one scenario differ")
	}
	s.Seed++
	p3, _, _ := mustWrite(t, s)
	if bytes.Equal(p1, p3) {
		t.Fatal("seeds 7 and 8 give the same capture")
	}
}

// Write streams what Generate returns, and WritePcap and WriteLabels write
// the same bytes.
func TestWrite_equalsGenerate(t *testing.T) {
	s := smallScenario()
	pcap, labels, counts := mustWrite(t, s)
	pkts := mustGenerate(t, s)
	var pb, lb bytes.Buffer
	if err := WritePcap(&pb, pkts); err != nil {
		t.Fatal(err)
	}
	if err := WriteLabels(&lb, Labels(pkts)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pcap, pb.Bytes()) || !bytes.Equal(labels, lb.Bytes()) {
		t.Fatal("Write and WritePcap(Generate) differ")
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	if total != len(pkts) {
		t.Fatalf("counts add up to %d, %d packets", total, len(pkts))
	}
}

// Each class has its own random stream: turning the attacks off leaves the
// legitimate packets byte for byte as they were.
func TestGenerate_classesIndependent(t *testing.T) {
	s := smallScenario()
	all := mustGenerate(t, s)
	s.SYNFlood4, s.SYNFlood6, s.Amplification, s.ScanRate, s.Fragments, s.Malformed = Off, Off, Off, Off, Off, Off
	legit := mustGenerate(t, s)
	var want []Packet
	for _, p := range all {
		if p.Label.Class == Legit {
			want = append(want, p)
		}
	}
	if len(legit) != len(want) {
		t.Fatalf("%d legitimate packets alone, %d among attacks", len(legit), len(want))
	}
	for i := range want {
		if !legit[i].Time.Equal(want[i].Time) || !bytes.Equal(legit[i].Data, want[i].Data) {
			t.Fatalf("legitimate packet %d differs when the attacks are off", i)
		}
	}
}

// The pcap reads back (with waggle's reader) as the packets, timestamps in
// order, and the labels file reads back as the labels.
func TestWrite_readBack(t *testing.T) {
	s := smallScenario()
	pcap, labels, _ := mustWrite(t, s)
	pkts := mustGenerate(t, s)
	r, err := capture.NewReader(bytes.NewReader(pcap), int64(len(pcap)))
	if err != nil {
		t.Fatal(err)
	}
	var prev time.Time
	for i := 0; ; i++ {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			if i != len(pkts) {
				t.Fatalf("%d packets read, %d written", i, len(pkts))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p.Data, pkts[i].Data) || !p.Timestamp.Equal(pkts[i].Time) {
			t.Fatalf("packet %d reads back differently", i)
		}
		if p.Timestamp.Before(prev) {
			t.Fatalf("packet %d at %v, before the previous one at %v", i, p.Timestamp, prev)
		}
		prev = p.Timestamp
	}
	ls, err := ReadLabels(bytes.NewReader(labels), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ls, Labels(pkts)) {
		t.Fatal("labels read back differently")
	}
}

// The number of packets of each class is its rate times its window, within
// five standard deviations of the Poisson count, and attacks stay in their
// window.
func TestGenerate_rates(t *testing.T) {
	s := smallScenario()
	s.Outbound = false
	pkts := mustGenerate(t, s)
	start := DefaultScenario().Start
	kinds := map[string]int{}
	for _, p := range pkts {
		kinds[p.Label.Class.String()+"/"+p.Label.Kind]++
		at := p.Time.Sub(start)
		if p.Label.Dir != In {
			t.Fatalf("an outbound packet with Outbound off: %+v", p.Label)
		}
		if p.Label.Class.IsAttack() && (at < s.AttackStart || at >= s.AttackEnd) {
			t.Fatalf("%v packet at %v, outside the attack window", p.Label.Class, at)
		}
		if at < 0 || at >= s.Duration {
			t.Fatalf("packet at %v, outside the capture", at)
		}
	}
	attack := (s.AttackEnd - s.AttackStart).Seconds()
	secs := s.Duration.Seconds()
	for _, tc := range []struct {
		kind string
		mean float64
	}{
		{"syn-flood/ipv4", s.SYNFlood4 * attack},
		{"syn-flood/ipv6", s.SYNFlood6 * attack},
		{"port-scan/syn", s.ScanRate * attack},
		{"legit/dns", s.DNSRate * secs}, // one answer a query comes in
		{"legit/ntp", s.NTPRate * secs},
		{"fragment/ipv4-first", s.Fragments / 4 * attack},
		{"fragment/ipv6-later", s.Fragments / 4 * attack},
	} {
		got := float64(kinds[tc.kind])
		if tol := 5*math.Sqrt(tc.mean) + 2; math.Abs(got-tc.mean) > tol {
			t.Errorf("%s: %v packets, want %v ± %v", tc.kind, got, tc.mean, tol)
		}
	}
	amp := 0
	for _, k := range []string{"dns", "ntp", "ssdp", "memcached"} {
		n := kinds["amplification/"+k]
		mean := s.Amplification * attack / 4
		if tol := 5 * math.Sqrt(mean); math.Abs(float64(n)-mean) > tol {
			t.Errorf("amplification/%s: %d packets, want %v ± %v", k, n, mean, tol)
		}
		amp += n
	}
	mal := 0
	for _, k := range MalformedKinds() {
		if kinds["malformed/"+k] == 0 {
			t.Errorf("no malformed/%s packet", k)
		}
		mal += kinds["malformed/"+k]
	}
	if mean, tol := s.Malformed*attack, 5*math.Sqrt(s.Malformed*attack); math.Abs(float64(mal)-mean) > tol {
		t.Errorf("%d malformed packets, want %v ± %v", mal, mean, tol)
	}
	// A legitimate TCP flow is at least 6 packets to the victim (SYN, ACK,
	// a request, an ACK, FIN, ACK).
	for _, tc := range []struct {
		kind string
		rate float64
	}{{"legit/tcp", s.TCPFlows}, {"legit/https", s.HTTPSFlows}, {"legit/ipv6", s.IPv6Flows}} {
		if n, min := kinds[tc.kind], 6*(tc.rate*secs-5*math.Sqrt(tc.rate*secs)); float64(n) < min {
			t.Errorf("%s: %d packets, want at least %v", tc.kind, n, min)
		}
	}
}

// Every packet decodes with gopacket without error, and says what its label
// says; the malformed ones that break a header gopacket checks fail to
// decode.
func TestGenerate_parses(t *testing.T) {
	s := smallScenario()
	g, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	s = g.Scenario()
	h := g.Hosts()
	reflector := map[netip.Addr]bool{}
	for _, a := range h.Reflectors {
		reflector[a] = true
	}
	for i := 0; ; i++ {
		p, err := g.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// Streams as datagrams: gopacket decodes TCP payloads (TLS) only so.
		pk := gopacket.NewPacket(p.Data, layers.LayerTypeEthernet, gopacket.DecodeOptions{DecodeStreamsAsDatagrams: true})
		l := p.Label
		if l.Class == Malformed {
			pk = gopacket.NewPacket(p.Data, layers.LayerTypeEthernet, gopacket.Default)
			broken := l.Kind == "ihl" || l.Kind == "tcp-doff" || l.Kind == "l4-trunc"
			if (pk.ErrorLayer() != nil) != broken {
				t.Fatalf("packet %d, malformed/%s: gopacket error %v", i, l.Kind, pk.ErrorLayer())
			}
			if l.Kind == "syn-fin" {
				tcp := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if !tcp.SYN || !tcp.FIN {
					t.Fatalf("packet %d, malformed/syn-fin: flags %+v", i, tcp)
				}
			}
			continue
		}
		if el := pk.ErrorLayer(); el != nil {
			t.Fatalf("packet %d (%+v): %v\n%v", i, l, el.Error(), pk.Dump())
		}
		if pk.Metadata().Truncated {
			t.Fatalf("packet %d (%+v) truncated", i, l)
		}
		dst := victimOf(t, pk)
		if l.Dir == In && dst != s.Victim4 && dst != s.Victim6 {
			t.Fatalf("packet %d (%+v) to %v, not the victim", i, l, dst)
		}
		switch l.Class {
		case SYNFlood, PortScan:
			if l.Class == SYNFlood && g.known[srcOf(pk)] {
				t.Fatalf("packet %d: a SYN flood spoofs %v, a legitimate host", i, srcOf(pk))
			}
			tcp, ok := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if !ok || !tcp.SYN || tcp.ACK || len(tcp.Payload) != 0 {
				t.Fatalf("packet %d (%+v) is not a bare SYN", i, l)
			}
			if l.Class == PortScan && srcOf(pk) != h.Scanner {
				t.Fatalf("packet %d: scan from %v, not the scanner %v", i, srcOf(pk), h.Scanner)
			}
		case Amplification:
			udp, ok := pk.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if !ok || !reflector[srcOf(pk)] {
				t.Fatalf("packet %d (%+v) is not UDP from a reflector", i, l)
			}
			if k, _ := ampKind(uint16(udp.SrcPort)); k != l.Kind || len(udp.Payload) < 250 {
				t.Fatalf("packet %d (%+v): source port %d, %d bytes", i, l, udp.SrcPort, len(udp.Payload))
			}
		case Fragment:
			if pk.Layer(gopacket.LayerTypeFragment) == nil {
				t.Fatalf("packet %d (%+v) has no fragment layer:\n%v", i, l, pk.Dump())
			}
		case Legit:
			switch l.Kind {
			case "dns":
				if pk.Layer(layers.LayerTypeDNS) == nil {
					t.Fatalf("packet %d (%+v) is not DNS", i, l)
				}
			case "ntp":
				if pk.Layer(layers.LayerTypeNTP) == nil {
					t.Fatalf("packet %d (%+v) is not NTP", i, l)
				}
			case "https", "ipv6":
				tcp := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if len(tcp.Payload) > 0 && pk.Layer(layers.LayerTypeTLS) == nil {
					t.Fatalf("packet %d (%+v) carries no TLS record", i, l)
				}
			}
		}
	}
}

func victimOf(t *testing.T, pk gopacket.Packet) netip.Addr {
	t.Helper()
	a, _ := netip.AddrFromSlice(pk.NetworkLayer().NetworkFlow().Dst().Raw())
	return a
}

func srcOf(pk gopacket.Packet) netip.Addr {
	a, _ := netip.AddrFromSlice(pk.NetworkLayer().NetworkFlow().Src().Raw())
	return a
}

// A legitimate TCP flow is a real conversation: its handshake numbers
// match and the client acknowledges what the server sent.
func TestGenerate_tcpHandshake(t *testing.T) {
	s := smallScenario()
	s.SYNFlood4, s.SYNFlood6, s.Amplification, s.ScanRate, s.Fragments, s.Malformed = Off, Off, Off, Off, Off, Off
	s.DNSRate, s.NTPRate = Off, Off
	type flow struct {
		isn, sisn uint32
		seen      int
	}
	flows := map[gopacket.Flow]map[gopacket.Flow]*flow{}
	checked := 0
	for i, p := range mustGenerate(t, s) {
		pk := gopacket.NewPacket(p.Data, layers.LayerTypeEthernet, gopacket.Default)
		tcp := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
		nf, tf := pk.NetworkLayer().NetworkFlow(), tcp.TransportFlow()
		if p.Label.Dir == Out {
			nf, tf = nf.Reverse(), tf.Reverse()
		}
		if flows[nf] == nil {
			flows[nf] = map[gopacket.Flow]*flow{}
		}
		f := flows[nf][tf]
		switch {
		case f == nil:
			if !tcp.SYN || tcp.ACK || p.Label.Dir != In {
				t.Fatalf("packet %d: a flow starts with %+v", i, tcp)
			}
			flows[nf][tf] = &flow{isn: tcp.Seq, seen: 1}
			continue
		case f.seen == 1:
			if !tcp.SYN || !tcp.ACK || tcp.Ack != f.isn+1 {
				t.Fatalf("packet %d: SYN-ACK %+v after SYN seq %d", i, tcp, f.isn)
			}
			f.sisn = tcp.Seq
		case f.seen == 2:
			if tcp.SYN || !tcp.ACK || tcp.Seq != f.isn+1 || tcp.Ack != f.sisn+1 {
				t.Fatalf("packet %d: handshake ACK %+v after isn %d, %d", i, tcp, f.isn, f.sisn)
			}
			checked++
		}
		f.seen++
	}
	if checked < 50 {
		t.Fatalf("only %d handshakes checked", checked)
	}
}

func TestScenario_hostile(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Scenario)
		want string
	}{
		{"negative rate", func(s *Scenario) { s.SYNFlood4 = -5 }, "SYNFlood4"},
		{"NaN rate", func(s *Scenario) { s.DNSRate = math.NaN() }, "DNSRate"},
		{"infinite rate", func(s *Scenario) { s.Amplification = math.Inf(1) }, "Amplification"},
		{"huge rate", func(s *Scenario) { s.Malformed = 1e12 }, "Malformed"},
		{"too many packets", func(s *Scenario) { s.SYNFlood4 = 1e7; s.Duration = time.Hour }, "too large"},
		{"over MaxPackets", func(s *Scenario) { s.MaxPackets = 100 }, "too large"},
		{"negative duration", func(s *Scenario) { s.Duration = -time.Second }, "duration"},
		{"long duration", func(s *Scenario) { s.Duration = 1000 * time.Hour }, "duration"},
		{"window after end", func(s *Scenario) { s.AttackEnd = 10 * time.Second }, "attack window"},
		{"window reversed", func(s *Scenario) { s.AttackStart, s.AttackEnd = 3*time.Second, time.Second }, "attack window"},
		{"victim4 is v6", func(s *Scenario) { s.Victim4 = netip.MustParseAddr("::1") }, "Victim4"},
		{"victim6 is v4", func(s *Scenario) { s.Victim6 = netip.MustParseAddr("10.0.0.1") }, "Victim6"},
		{"negative clients", func(s *Scenario) { s.Clients = -1 }, "clients"},
		{"billions of clients", func(s *Scenario) { s.Clients = math.MaxInt }, "clients"},
		{"billions of reflectors", func(s *Scenario) { s.Reflectors = math.MaxInt }, "reflectors"},
		{"huge payload", func(s *Scenario) { s.AmpPayload = 1 << 30 }, "payload"},
		{"tiny payload", func(s *Scenario) { s.AmpPayload = 3 }, "payload"},
		{"scan ports", func(s *Scenario) { s.ScanPorts = 70000 }, "scanned ports"},
		{"amp port", func(s *Scenario) { s.AmpPorts = []uint16{80} }, "port 80"},
		{"many amp ports", func(s *Scenario) { s.AmpPorts = make([]uint16, 1<<20) }, "amplification ports"},
		{"malformed kind", func(s *Scenario) { s.MalformedKinds = []string{"bogus"} }, "bogus"},
		{"MaxPackets", func(s *Scenario) { s.MaxPackets = math.MaxInt }, "MaxPackets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := smallScenario()
			tc.edit(&s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want an error about %q", err, tc.want)
			}
			if _, err := New(s); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	if err := smallScenario().Validate(); err != nil {
		t.Fatalf("the small scenario: %v", err)
	}
	if err := (Scenario{}).Validate(); err != nil {
		t.Fatalf("the zero scenario: %v", err)
	}
}

// The check made before generating also holds while generating: a
// Generator never emits more than MaxPackets.
func TestGenerator_maxPackets(t *testing.T) {
	s := smallScenario()
	g, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	g.s.MaxPackets = 10
	for i := 0; i < 10; i++ {
		if _, err := g.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.Next(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("packet 11 of at most 10: %v", err)
	}
}

func BenchmarkWrite(b *testing.B) {
	s := DefaultScenario()
	s.Duration, s.AttackStart, s.AttackEnd = time.Second, 0, time.Second
	var n int
	for b.Loop() {
		counts, err := Write(s, io.Discard, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		n = 0
		for _, c := range counts {
			n += c
		}
	}
	b.ReportMetric(float64(n), "packets/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/packet")
}

// Legitimate sources send at normal rates: the busiest one sends fewer
// than 100 packets to the victim in any second (the default scenario's
// attack rates are 20,000 SYNs and 10,000 amplified packets a second).
func TestGenerate_legitRates(t *testing.T) {
	s := smallScenario()
	s.SYNFlood4, s.SYNFlood6, s.Amplification, s.ScanRate, s.Fragments, s.Malformed = Off, Off, Off, Off, Off, Off
	s.Outbound = false
	s.Duration = 20 * time.Second
	times := map[netip.Addr][]time.Time{}
	for _, p := range mustGenerate(t, s) {
		pk := gopacket.NewPacket(p.Data, layers.LayerTypeEthernet, gopacket.Default)
		times[srcOf(pk)] = append(times[srcOf(pk)], p.Time)
	}
	busiest, most := netip.Addr{}, 0
	for src, ts := range times {
		j := 0
		for i := range ts {
			for ts[i].Sub(ts[j]) >= time.Second {
				j++
			}
			if n := i - j + 1; n > most {
				busiest, most = src, n
			}
		}
	}
	t.Logf("busiest legitimate source %v: %d packets in a second", busiest, most)
	if most >= 100 || most < 5 {
		t.Fatalf("busiest legitimate source %v: %d packets in a second", busiest, most)
	}
}

// Extreme but valid values generate without hanging or overflowing.
func TestGenerate_edges(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Scenario)
	}{
		{"tiny rates", func(s *Scenario) { s.TCPFlows, s.SYNFlood4, s.ScanRate = 1e-300, 5e-324, 1e-9 }},
		{"one nanosecond", func(s *Scenario) { s.Duration, s.AttackStart, s.AttackEnd = 1, 0, 1 }},
		{"empty attack window", func(s *Scenario) { s.AttackStart, s.AttackEnd = 2*time.Second, 2*time.Second }},
		{"one client, one reflector, one port", func(s *Scenario) { s.Clients, s.Reflectors, s.ScanPorts = 1, 1, 1 }},
		{"largest payload", func(s *Scenario) { s.AmpPayload = MaxAmpPayload; s.AmpPorts = []uint16{53, 11211} }},
		{"smallest payload", func(s *Scenario) { s.AmpPayload = MinAmpPayload }},
		{"one malformed kind", func(s *Scenario) { s.MalformedKinds = []string{"ip6-len"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := smallScenario()
			tc.edit(&s)
			for _, p := range mustGenerate(t, s) {
				if len(p.Data) > 9014 {
					t.Fatalf("a %d-byte frame", len(p.Data))
				}
				if p.Label.Class == Malformed && s.MalformedKinds != nil && p.Label.Kind != s.MalformedKinds[0] {
					t.Fatalf("malformed/%s, want only %v", p.Label.Kind, s.MalformedKinds)
				}
			}
		})
	}
}
