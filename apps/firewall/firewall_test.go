package firewall

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/maps"
)

const testConfig = `
options:
  drop_fragments: true
  drop_malformed: true
  sample_every: 1
limits:
  prefix_v4: 24
  prefix_v6: 64
  pps: {rate: 100, burst: 5}
  bps: {rate: 1000000, burst: 3000}
  syn: {rate: 10, burst: 3}
  udp_amplification:
    dns: {rate: 10, burst: 2}
    ntp: {rate: 10, burst: 2}
    ssdp: {rate: 10, burst: 2}
    memcached: {rate: 10, burst: 1}
rules:
  - {name: office, action: allow, cidrs: [192.0.2.0/24, "2001:db8:1::/48"]}
  - {name: bad-nets, id: 100, action: deny, cidrs: [203.0.113.0/24, "2001:db8:bad::/48"]}
  - {name: no-ssh, action: deny, proto: tcp, ports: "22", cidrs: [198.51.100.0/24]}
  - {name: no-high-udp, action: deny, proto: udp, ports: "1000-2000", cidrs: [198.51.101.0/24]}
`

// firewallCase is a packet and what the firewall must decide for it.
type firewallCase struct {
	name   string
	frame  []byte
	rule   string
	action uint32
}

// firewallCases are packets in order: later ones count on the buckets
// earlier ones of the same source filled.
func firewallCases(tb testing.TB) []firewallCase {
	tb.Helper()
	var cs []firewallCase
	add := func(name string, p pkt, rule string, action uint32) {
		cs = append(cs, firewallCase{name: name, frame: build(tb, p), rule: rule, action: action})
	}
	add("allow v4", pkt{src: "192.0.2.5", dst: "10.9.9.9", proto: "tcp", sport: 1000, dport: 80}, "office", XDPPass)
	add("allow v6", pkt{src: "2001:db8:1::5", dst: "2001:db8::9", proto: "udp", sport: 1000, dport: 53}, "office", XDPPass)
	add("deny v4", pkt{src: "203.0.113.9", dst: "10.9.9.9", proto: "udp", sport: 1, dport: 2}, "bad-nets", XDPDrop)
	add("deny v6", pkt{src: "2001:db8:bad::1", dst: "2001:db8::9", proto: "icmp"}, "bad-nets", XDPDrop)
	add("deny tcp/22", pkt{src: "198.51.100.7", dst: "10.9.9.9", proto: "tcp", sport: 5000, dport: 22}, "no-ssh", XDPDrop)
	add("tcp/80 passes no-ssh", pkt{src: "198.51.100.7", dst: "10.9.9.9", proto: "tcp", sport: 5000, dport: 80}, "default", XDPPass)
	add("udp/22 passes no-ssh", pkt{src: "198.51.100.8", dst: "10.9.9.9", proto: "udp", sport: 5000, dport: 22}, "default", XDPPass)
	add("udp in range", pkt{src: "198.51.101.1", dst: "10.9.9.9", proto: "udp", sport: 5000, dport: 1500}, "no-high-udp", XDPDrop)
	add("udp out of range", pkt{src: "198.51.101.1", dst: "10.9.9.9", proto: "udp", sport: 5000, dport: 2500}, "default", XDPPass)
	add("v4 fragment", pkt{src: "10.0.0.1", dst: "10.9.9.9", proto: "udp", sport: 1, dport: 2, frag: true}, "fragment", XDPDrop)
	add("v6 fragment", pkt{src: "2001:db8:2::1", dst: "2001:db8::9", proto: "udp", sport: 1, dport: 2, frag: true}, "fragment", XDPDrop)
	trunc := build(tb, pkt{src: "10.0.0.2", dst: "10.9.9.9", proto: "tcp", sport: 1, dport: 2})[:14+20+10]
	cs = append(cs, firewallCase{name: "truncated tcp", frame: trunc, rule: "malformed", action: XDPDrop})
	arp := make([]byte, 60)
	arp[12], arp[13] = 0x08, 0x06
	cs = append(cs, firewallCase{name: "arp", frame: arp, rule: "not-ip", action: XDPPass})
	for i := range 4 {
		rule, action := "default", XDPPass
		if i == 3 {
			rule, action = "syn-rate", XDPDrop
		}
		add(fmt.Sprintf("syn %d", i), pkt{src: "10.1.0.1", dst: "10.9.9.9", proto: "tcp", sport: uint16(40000 + i), dport: 443, syn: true}, rule, action)
	}
	for i, port := range []uint16{53, 123, 1900, 11211} {
		rule := []string{"udp-amp-dns", "udp-amp-ntp", "udp-amp-ssdp", "udp-amp-memcached"}[i]
		burst := 2
		if port == 11211 {
			burst = 1
		}
		for j := range burst + 1 {
			r, a := "default", XDPPass
			if j == burst {
				r, a = rule, XDPDrop
			}
			add(fmt.Sprintf("udp from %d #%d", port, j), pkt{src: fmt.Sprintf("10.2.%d.1", i), dst: "10.9.9.9", proto: "udp", sport: port, dport: 33000}, r, a)
		}
	}
	for i := range 6 {
		r, a := "default", XDPPass
		if i == 5 {
			r, a = "rate-pps", XDPDrop
		}
		// Sources of one /24 share a bucket.
		add(fmt.Sprintf("pps %d", i), pkt{src: fmt.Sprintf("10.3.0.%d", i+1), dst: "10.9.9.9", proto: "udp", sport: 1, dport: 2}, r, a)
	}
	for i := range 4 {
		r, a := "default", XDPPass
		if i == 3 {
			r, a = "rate-bps", XDPDrop
		}
		add(fmt.Sprintf("bps %d", i), pkt{src: "10.4.0.1", dst: "10.9.9.9", proto: "udp", sport: 1, dport: 2, payload: 1358}, r, a)
	}
	for i := range 6 {
		r, a := "default", XDPPass
		if i == 5 {
			r, a = "rate-pps", XDPDrop
		}
		// Sources of one /64 share a bucket.
		add(fmt.Sprintf("v6 pps %d", i), pkt{src: fmt.Sprintf("2001:db8:3::%x", i+1), dst: "2001:db8::9", proto: "tcp", sport: 1, dport: 2, ack: true}, r, a)
	}
	return cs
}

// testTime is the first packet's time; the others follow a microsecond
// apart.
var testTime = time.Unix(1_700_000_000, 0)

func casePackets(cs []firewallCase) []Packet {
	pkts := make([]Packet, len(cs))
	for i, c := range cs {
		pkts[i] = Packet{Data: c.frame, Time: testTime.Add(time.Duration(i) * time.Microsecond)}
	}
	return pkts
}

// expectedCounters tallies what the cases' rules must count.
func expectedCounters(tb testing.TB, comp *Compiled, cs []firewallCase) map[uint32]Counter {
	tb.Helper()
	want := map[uint32]Counter{}
	for _, c := range cs {
		id, ok := comp.RuleID(c.rule)
		if !ok {
			tb.Fatalf("case %s: no rule %s", c.name, c.rule)
		}
		n := want[id]
		n.Packets++
		n.Bytes += uint64(len(c.frame))
		want[id] = n
	}
	return want
}

func mustCompile(tb testing.TB, yaml string) *Compiled {
	tb.Helper()
	cfg, err := ParseConfig([]byte(yaml))
	if err != nil {
		tb.Fatal(err)
	}
	comp, err := Compile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return comp
}

func checkVerdicts(t *testing.T, comp *Compiled, cs []firewallCase, got []Verdict) {
	t.Helper()
	for i, c := range cs {
		if got[i].Action != c.action || comp.RuleName(got[i].Rule) != c.rule {
			t.Errorf("packet %d (%s): %s by %s, want %s by %s", i+1, c.name,
				ActionName(got[i].Action), comp.RuleName(got[i].Rule), ActionName(c.action), c.rule)
		}
	}
}

func checkCounters(t *testing.T, comp *Compiled, got, want map[uint32]Counter) {
	t.Helper()
	for id, w := range want {
		if got[id] != w {
			t.Errorf("rule %s: counted %+v, want %+v", comp.RuleName(id), got[id], w)
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("rule %s: counted %+v, want nothing", comp.RuleName(id), g)
		}
	}
}

func TestReplayer_rules(t *testing.T) {
	comp := mustCompile(t, testConfig)
	cs := firewallCases(t)
	r, err := NewReplayer(comp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make([]Verdict, len(cs))
	if err := r.Run(casePackets(cs), got); err != nil {
		t.Fatal(err)
	}
	checkVerdicts(t, comp, cs, got)
	counters, err := r.Counters()
	if err != nil {
		t.Fatal(err)
	}
	checkCounters(t, comp, counters, expectedCounters(t, comp, cs))
}

// TestReplayer_reproducible: the buckets follow the packets' times, so a
// second replayer decides the same, and a packet a second later finds
// its bucket refilled.
func TestReplayer_reproducible(t *testing.T) {
	comp := mustCompile(t, testConfig)
	cs := firewallCases(t)
	pkts := casePackets(cs)
	var runs [2][]Verdict
	for k := range runs {
		r, err := NewReplayer(comp, nil)
		if err != nil {
			t.Fatal(err)
		}
		runs[k] = make([]Verdict, len(pkts))
		if err := r.Run(pkts, runs[k]); err != nil {
			t.Fatal(err)
		}
		if k == 1 {
			// The pps source again, a second later: its bucket refilled.
			later := []Packet{{Data: cs[len(cs)-1].frame, Time: testTime.Add(time.Second)}}
			v := make([]Verdict, 1)
			if err := r.Run(later, v); err != nil {
				t.Fatal(err)
			}
			if v[0].Action != XDPPass || v[0].Rule != RuleDefault {
				t.Errorf("a second later: %s by %s, want XDP_PASS by default", ActionName(v[0].Action), comp.RuleName(v[0].Rule))
			}
		}
		r.Close()
	}
	for i := range pkts {
		if runs[0][i] != runs[1][i] {
			t.Errorf("packet %d: %+v, then %+v", i+1, runs[0][i], runs[1][i])
		}
	}
}

// TestReplayer_underAttack: over the global mark, limits halve; once the
// rate falls, they relax.
func TestReplayer_underAttack(t *testing.T) {
	comp := mustCompile(t, `
limits:
  pps: {rate: 100, burst: 8}
  attack_pps: 10
`)
	r, err := NewReplayer(comp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var pkts []Packet
	at := testTime
	burst := func(src string, n int) {
		for i := range n {
			pkts = append(pkts, Packet{Data: build(t, pkt{src: src, dst: "10.9.9.9", proto: "udp", sport: 1, dport: 2}), Time: at.Add(time.Duration(i) * time.Microsecond)})
		}
	}
	burst("10.5.0.1", 8) // calm: 8 pass
	// 20 sources, one packet each, the same second: over the mark.
	for i := range 20 {
		burst(fmt.Sprintf("10.6.%d.1", i), 1)
	}
	at = testTime.Add(500 * time.Millisecond)
	burst("10.7.0.1", 8) // under attack: the tolerance halves, the cost doubles
	at = testTime.Add(3 * time.Second)
	burst("10.8.0.1", 8) // after a quiet second: relaxed
	v := make([]Verdict, len(pkts))
	if err := r.Run(pkts, v); err != nil {
		t.Fatal(err)
	}
	count := func(from, to int) (pass int) {
		for _, x := range v[from:to] {
			if x.Action == XDPPass {
				pass++
			}
		}
		return pass
	}
	if n := count(0, 8); n != 8 {
		t.Errorf("calm burst: %d of 8 passed, want 8", n)
	}
	// Tolerance 7 intervals halved is 3.5, each packet costs 2: 2 pass.
	if n := count(28, 36); n != 2 {
		t.Errorf("burst under attack: %d of 8 passed, want 2", n)
	}
	if n := count(36, 44); n != 8 {
		t.Errorf("burst after the attack: %d of 8 passed, want 8", n)
	}
}

// TestReplayer_samples: with sample_every 1, every drop reaches the ring
// buffer with its rule, action, time and first bytes; with sample_all too,
// every packet does.
func TestReplayer_samples(t *testing.T) {
	for _, tc := range []struct {
		name string
		all  bool
	}{{"drops", false}, {"all", true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(testConfig))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Options.SampleAll = tc.all
			comp, err := Compile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			cs := firewallCases(t)
			r, err := NewReplayer(comp, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			pkts := casePackets(cs)
			if err := r.Run(pkts, make([]Verdict, len(pkts))); err != nil {
				t.Fatal(err)
			}
			rd, err := maps.NewRingBufReader(r.Collection().Maps[MapSamples].Underlying())
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			n := 0
			for i, c := range cs {
				if c.action != XDPDrop && !tc.all {
					continue
				}
				n++
				rd.SetDeadline(time.Now())
				rec, err := rd.Read()
				if err != nil {
					t.Fatalf("packet %d (%s): %v", i+1, c.name, err)
				}
				s, err := ParseSample(rec.RawSample)
				if err != nil {
					t.Fatal(err)
				}
				b := min(len(c.frame), SampleBytes)
				if comp.RuleName(s.Rule) != c.rule || s.Action != c.action || s.Length != len(c.frame) ||
					!bytes.Equal(s.Data, c.frame[:b]) || s.Time != uint64(pkts[i].Time.UnixNano()) {
					t.Errorf("packet %d (%s): sample %s by %s, length %d, time %d; want %s by %s, %d, %d", i+1, c.name,
						ActionName(s.Action), comp.RuleName(s.Rule), s.Length, s.Time,
						ActionName(c.action), c.rule, len(c.frame), pkts[i].Time.UnixNano())
				}
				if got := s.Timestamp(0); !got.Equal(pkts[i].Time) {
					t.Errorf("packet %d (%s): timestamp %v, want %v", i+1, c.name, got, pkts[i].Time)
				}
			}
			rd.SetDeadline(time.Now())
			if rec, err := rd.Read(); err == nil {
				t.Errorf("a sample more than the %d expected: %x", n, rec.RawSample)
			}
			if tc.all && n != len(cs) || !tc.all && (n == 0 || n == len(cs)) {
				t.Errorf("%d samples of %d packets", n, len(cs))
			}
		})
	}
}

// TestReplayer_frameSizes: the largest frame XDP takes runs; one byte
// more, or less than an Ethernet header, is an error naming the packet.
func TestReplayer_frameSizes(t *testing.T) {
	r, err := NewReplayer(mustCompile(t, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	big := build(t, pkt{src: "10.0.0.1", dst: "10.0.0.2", proto: "udp", sport: 1, dport: 2, payload: maxFrame - 14 - 20 - 8})
	if len(big) != maxFrame {
		t.Fatalf("frame of %d bytes", len(big))
	}
	v := make([]Verdict, 2)
	if err := r.Run([]Packet{{Data: big, Time: testTime}}, v); err != nil || v[0].Action != XDPPass {
		t.Fatalf("a %d-byte frame: %v, %+v", len(big), err, v[0])
	}
	for _, n := range []int{maxFrame + 1, 13} {
		frame := make([]byte, n)
		err := r.Run([]Packet{{Data: big, Time: testTime}, {Data: frame, Time: testTime}}, v)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("packet 2: a frame of %d bytes", n)) {
			t.Errorf("a %d-byte frame: %v", n, err)
		}
	}
}

// TestSample_timestampShift: a replay is the same under a shift of its
// clock by a whole number of seconds (what Sample.Timestamp adds with
// WallClockShift), and not under half a second, which moves the attack
// window's boundaries. 1,000 packets a second from one source against a
// mark of 600: in one window the attack is on for the last 400, split over
// two windows of 500 it never is.
func TestSample_timestampShift(t *testing.T) {
	comp := mustCompile(t, `
limits:
  pps: {rate: 700, burst: 10}
  attack_pps: 600
`)
	frame := build(t, pkt{src: "10.0.0.1", dst: "10.0.0.2", proto: "udp", sport: 1000, dport: 2000})
	replay := func(shift time.Duration) []Verdict {
		pkts := make([]Packet, 1000)
		for i := range pkts {
			s := Sample{Time: uint64(testTime.Add(time.Duration(i) * time.Millisecond).UnixNano())}
			pkts[i] = Packet{Data: frame, Time: s.Timestamp(shift)}
		}
		vs, _ := replayAll(t, comp, pkts)
		return vs
	}
	drops := func(vs []Verdict) (n int) {
		for _, v := range vs {
			if v.Action == XDPDrop {
				n++
			}
		}
		return n
	}
	base := replay(0)
	for _, shift := range []time.Duration{time.Second, 42 * time.Hour} {
		if got := replay(shift); !slices.Equal(got, base) {
			t.Errorf("shifted by %v: %d drops, unshifted %d", shift, drops(got), drops(base))
		}
	}
	if got := replay(500 * time.Millisecond); slices.Equal(got, base) {
		t.Errorf("shifted by half a second: the same %d drops; the test no longer shows why the shift is whole seconds", drops(base))
	} else {
		t.Logf("drops: %d unshifted and shifted by whole seconds, %d shifted by half a second", drops(base), drops(got))
	}
}

// TestParseSample decodes struct sample, and names a record of another
// layout (an older firewall's, without the action) as such.
func TestParseSample(t *testing.T) {
	raw := make([]byte, SampleSize)
	ne.PutUint32(raw, 18)
	ne.PutUint32(raw[4:], 200)
	ne.PutUint64(raw[8:], 123456789)
	for i := range SampleBytes {
		raw[16+i] = byte(i)
	}
	ne.PutUint32(raw[16+SampleBytes:], XDPPass)
	s, err := ParseSample(raw)
	if err != nil {
		t.Fatal(err)
	}
	if s.Rule != 18 || s.Length != 200 || s.Time != 123456789 || s.Action != XDPPass || len(s.Data) != SampleBytes || s.Data[127] != 127 {
		t.Errorf("ParseSample: %+v", s)
	}
	ne.PutUint32(raw[4:], 20)
	if s, err := ParseSample(raw); err != nil || len(s.Data) != 20 {
		t.Errorf("a 20-byte packet: %d bytes of data, %v", len(s.Data), err)
	}
	if _, err := ParseSample(raw[:16+SampleBytes]); err == nil || !strings.Contains(err.Error(), "another version") {
		t.Errorf("a sample without the action: %v", err)
	}
}
