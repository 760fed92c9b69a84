package trafficgen

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/google/gopacket"
)

// Packet is one generated frame (Ethernet), its timestamp and its label.
type Packet struct {
	Time  time.Time
	Label Label
	Data  []byte
}

// Hosts are the addresses a Generator chose for its Scenario, so a firewall
// configuration can name them (allow the resolvers, say).
type Hosts struct {
	Clients4   []netip.Addr `json:"clients4"`
	Clients6   []netip.Addr `json:"clients6"`
	Resolvers  []netip.Addr `json:"resolvers"` // the victim's DNS resolvers (IPv4 and IPv6)
	NTPServers []netip.Addr `json:"ntp_servers"`
	Reflectors []netip.Addr `json:"reflectors"` // amplification reflectors; reflector i answers from AmpPorts[i%len(AmpPorts)]
	Scanner    netip.Addr   `json:"scanner"`
}

// Generator produces a Scenario's packets in timestamp order. It holds only
// the packets of flows in progress.
type Generator struct {
	s       Scenario
	hosts   Hosts
	streams []*stream
	pending pktHeap
	seq     uint64
	emitted int
	buf     gopacket.SerializeBuffer
	aux     gopacket.SerializeBuffer
	scan    []uint16 // the scanner's port order
	scanAt  int
	scanSrc uint16
	known   map[netip.Addr]bool // the victims and every chosen IPv4 host
}

// stream is one class of flows: a Poisson process of flow starts in
// [from, to), each expanded into packets by expand.
type stream struct {
	rate     float64 // flows per second
	from, to time.Duration
	next     time.Duration
	rng      *rand.Rand
	expand   func(g *Generator, r *rand.Rand, at time.Duration)
}

// advance draws the next flow start.
func (st *stream) advance() {
	gap := float64(st.rng.ExpFloat64() / st.rate * 1e9)
	if gap >= float64(st.to-st.next) {
		st.next = st.to
		return
	}
	st.next += time.Duration(gap)
}

// Stream ids: each class's random stream is seeded by (Seed, id), so
// changing one class's rate leaves the others' packets as they were.
const (
	sidHosts = iota + 1
	sidTCP
	sidHTTPS
	sidIPv6
	sidDNS
	sidNTP
	sidSYN4
	sidSYN6
	sidAmp
	sidScan
	sidFrag
	sidMalformed
)

func newRand(seed uint64, id int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15*uint64(id)))
}

// New validates s and returns a Generator of its packets.
func New(s Scenario) (*Generator, error) {
	s, err := s.normalize()
	if err != nil {
		return nil, err
	}
	g := &Generator{s: s, buf: gopacket.NewSerializeBuffer(), aux: gopacket.NewSerializeBuffer()}
	g.chooseHosts(newRand(s.Seed, sidHosts))
	add := func(id int, rate float64, from, to time.Duration, expand func(*Generator, *rand.Rand, time.Duration)) {
		if rate <= 0 || from >= to {
			return
		}
		st := &stream{rate: rate, from: from, to: to, next: from, rng: newRand(s.Seed, id), expand: expand}
		st.advance()
		g.streams = append(g.streams, st)
	}
	d, a0, a1 := s.Duration, s.AttackStart, s.AttackEnd
	add(sidTCP, s.TCPFlows, 0, d, func(g *Generator, r *rand.Rand, at time.Duration) {
		g.tcpFlow(r, at, false, []uint16{22, 80, 8080}[r.IntN(3)], "tcp")
	})
	add(sidHTTPS, s.HTTPSFlows, 0, d, func(g *Generator, r *rand.Rand, at time.Duration) { g.tcpFlow(r, at, false, 443, "https") })
	add(sidIPv6, s.IPv6Flows, 0, d, func(g *Generator, r *rand.Rand, at time.Duration) { g.tcpFlow(r, at, true, 443, "ipv6") })
	add(sidDNS, s.DNSRate, 0, d, (*Generator).dnsQuery)
	add(sidNTP, s.NTPRate, 0, d, (*Generator).ntpPoll)
	add(sidSYN4, s.SYNFlood4, a0, a1, func(g *Generator, r *rand.Rand, at time.Duration) { g.synFlood(r, at, false) })
	add(sidSYN6, s.SYNFlood6, a0, a1, func(g *Generator, r *rand.Rand, at time.Duration) { g.synFlood(r, at, true) })
	add(sidAmp, s.Amplification, a0, a1, (*Generator).amplified)
	if s.ScanRate > 0 {
		r := newRand(s.Seed, sidScan)
		g.scan = make([]uint16, s.ScanPorts)
		for i := range g.scan {
			g.scan[i] = uint16(i + 1)
		}
		r.Shuffle(len(g.scan), func(i, j int) { g.scan[i], g.scan[j] = g.scan[j], g.scan[i] })
		g.scanSrc = uint16(32768 + r.IntN(28232))
	}
	add(sidScan, s.ScanRate, a0, a1, (*Generator).scanProbe)
	add(sidFrag, s.Fragments/2, a0, a1, (*Generator).fragmented) // two fragments a datagram
	add(sidMalformed, s.Malformed, a0, a1, (*Generator).malformed)
	return g, nil
}

// Scenario returns the Scenario g generates, with its defaults filled in.
func (g *Generator) Scenario() Scenario { return g.s }

// Hosts returns the addresses g chose.
func (g *Generator) Hosts() Hosts { return g.hosts }

// Next returns the next packet, or io.EOF after the last one.
func (g *Generator) Next() (Packet, error) {
	for {
		var st *stream
		for _, c := range g.streams {
			if c.next < c.to && (st == nil || c.next < st.next) {
				st = c
			}
		}
		if len(g.pending) > 0 && (st == nil || g.pending[0].at <= st.next) {
			p := heap.Pop(&g.pending).(*pkt)
			if p.at >= g.s.Duration || (p.label.Dir == Out && !g.s.Outbound) {
				continue
			}
			if g.emitted >= g.s.MaxPackets {
				return Packet{}, fmt.Errorf("%w: more than MaxPackets (%d) packets", ErrTooLarge, g.s.MaxPackets)
			}
			data, err := g.frame(p)
			if err != nil {
				return Packet{}, fmt.Errorf("packet %d (%s/%s): %w", g.emitted, p.label.Class, p.label.Kind, err)
			}
			g.emitted++
			return Packet{Time: g.s.Start.Add(p.at), Label: p.label, Data: data}, nil
		}
		if st == nil {
			return Packet{}, io.EOF
		}
		st.expand(g, st.rng, st.next)
		st.advance()
	}
}

// push queues p.
func (g *Generator) push(p *pkt) {
	p.seq = g.seq
	g.seq++
	heap.Push(&g.pending, p)
}

// Generate returns all of s's packets.
func Generate(s Scenario) ([]Packet, error) {
	g, err := New(s)
	if err != nil {
		return nil, err
	}
	var out []Packet
	for {
		p, err := g.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
}

// pktHeap orders pending packets by time, then by the order they were
// queued.
type pktHeap []*pkt

func (h pktHeap) Len() int { return len(h) }
func (h pktHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h pktHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pktHeap) Push(x any)   { *h = append(*h, x.(*pkt)) }
func (h *pktHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}
