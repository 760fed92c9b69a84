package trafficgen

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// Scenario describes a capture: how long it lasts, whom it is aimed at and
// how much of each class of traffic it holds. Rates are mean rates of
// Poisson processes. The zero value of a field means its default (see
// DefaultScenario), so a class is turned off with the rate Off.
type Scenario struct {
	// Seed selects the random streams. Two runs of one Scenario give the
	// same bytes.
	Seed uint64
	// Start is the timestamp of the capture's beginning (default
	// 2026-01-01T00:00:00Z).
	Start time.Time
	// Duration is the length of the capture, at most MaxDuration.
	Duration time.Duration

	// Victim4 and Victim6 are the protected host's addresses.
	Victim4, Victim6 netip.Addr

	// AttackStart and AttackEnd bound the attacks (SYN floods,
	// amplification, scan, fragments and malformed packets), as offsets from
	// Start; AttackEnd 0 means Duration. Legitimate traffic runs throughout,
	// so a capture shows the firewall before, during and after an attack.
	AttackStart, AttackEnd time.Duration

	// Legitimate traffic. Flows and queries per second, over all clients.
	Clients    int     // IPv4 clients, and as many IPv6 clients (each in its own /64)
	TCPFlows   float64 // TCP connections to ports 22, 80 and 8080
	HTTPSFlows float64 // TLS connections to port 443 over IPv4
	IPv6Flows  float64 // TLS connections to port 443 over IPv6
	DNSRate    float64 // the victim's queries to its resolvers; answers come back from port 53
	NTPRate    float64 // the victim's NTP polls; answers come back from port 123

	// Attacks, in packets per second.
	SYNFlood4     float64 // SYNs from random IPv4 sources
	SYNFlood6     float64 // SYNs from random IPv6 sources
	Amplification float64 // responses from reflectors, spread over AmpPorts
	Reflectors    int     // number of reflector addresses
	AmpPorts      []uint16
	AmpPayload    int     // the largest UDP payload of an amplified response (DNS, memcached)
	ScanRate      float64 // probes per second from the scanner (slow: about 1)
	ScanPorts     int     // ports the scanner probes, 1..ScanPorts in a random order
	Fragments     float64 // IPv4 and IPv6 fragments
	Malformed     float64 // packets with broken headers, of MalformedKinds

	// MalformedKinds selects the malformed packets; empty means all of
	// MalformedKinds().
	MalformedKinds []string

	// Outbound also emits the victim's own packets (SYN-ACKs, responses,
	// queries), labelled Out. Off, the capture is what a firewall on the
	// victim's interface sees.
	Outbound bool

	// MaxPackets bounds the capture (default 10,000,000, at most
	// 100,000,000). A Scenario whose rates could exceed it is refused.
	MaxPackets int
}

// Off is the rate that turns a class off (zero means "the default").
const Off = -1

// Limits on Scenario values.
const (
	MaxDuration      = 24 * time.Hour
	MaxRate          = 1e8 // per class, packets or flows per second
	MaxClients       = 1 << 20
	MaxReflectors    = 1 << 20
	MaxAmpPayload    = 8952 // a 9000-byte jumbo frame, less the IPv4 and UDP headers and some slack
	MinAmpPayload    = 64
	MaxPacketsLimit  = 100_000_000
	defaultMaxPacket = 10_000_000
)

// DefaultScenario returns the defaults a zero Scenario field takes: 10
// seconds, attacks from second 2 to second 8, 200 clients, and attack rates
// a thousand times the legitimate ones.
func DefaultScenario() Scenario {
	return Scenario{
		Seed:          1,
		Start:         time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Duration:      10 * time.Second,
		Victim4:       netip.MustParseAddr("203.0.113.10"),
		Victim6:       netip.MustParseAddr("2001:db8:ffff::10"),
		AttackStart:   2 * time.Second,
		AttackEnd:     8 * time.Second,
		Clients:       200,
		TCPFlows:      20,
		HTTPSFlows:    40,
		IPv6Flows:     20,
		DNSRate:       20,
		NTPRate:       2,
		SYNFlood4:     20000,
		SYNFlood6:     5000,
		Amplification: 10000,
		Reflectors:    2000,
		AmpPorts:      []uint16{53, 123, 1900, 11211},
		AmpPayload:    1400,
		ScanRate:      1,
		ScanPorts:     1024,
		Fragments:     Off,
		Malformed:     Off,
		MaxPackets:    defaultMaxPacket,
	}
}

// withDefaults returns s with its zero fields set from DefaultScenario and
// its Off rates set to zero.
func (s Scenario) withDefaults() Scenario {
	d := DefaultScenario()
	if s.Start.IsZero() {
		s.Start = d.Start
	}
	if s.Duration == 0 {
		s.Duration = d.Duration
		if s.AttackStart == 0 && s.AttackEnd == 0 {
			s.AttackStart, s.AttackEnd = d.AttackStart, d.AttackEnd
		}
	}
	if !s.Victim4.IsValid() {
		s.Victim4 = d.Victim4
	}
	if !s.Victim6.IsValid() {
		s.Victim6 = d.Victim6
	}
	if s.AttackEnd == 0 {
		s.AttackEnd = s.Duration
	}
	ints := []struct{ v, d *int }{
		{&s.Clients, &d.Clients}, {&s.Reflectors, &d.Reflectors}, {&s.AmpPayload, &d.AmpPayload},
		{&s.ScanPorts, &d.ScanPorts}, {&s.MaxPackets, &d.MaxPackets},
	}
	for _, f := range ints {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	for _, f := range s.rates(&d) {
		if *f.v == 0 {
			*f.v = *f.d
		}
		if *f.v == Off {
			*f.v = 0
		}
	}
	if len(s.AmpPorts) == 0 {
		s.AmpPorts = d.AmpPorts
	}
	if len(s.MalformedKinds) == 0 {
		s.MalformedKinds = MalformedKinds()
	}
	return s
}

type rateField struct {
	name string
	v, d *float64
}

func (s *Scenario) rates(d *Scenario) []rateField {
	if d == nil {
		d = s
	}
	return []rateField{
		{"TCPFlows", &s.TCPFlows, &d.TCPFlows}, {"HTTPSFlows", &s.HTTPSFlows, &d.HTTPSFlows},
		{"IPv6Flows", &s.IPv6Flows, &d.IPv6Flows}, {"DNSRate", &s.DNSRate, &d.DNSRate},
		{"NTPRate", &s.NTPRate, &d.NTPRate}, {"SYNFlood4", &s.SYNFlood4, &d.SYNFlood4},
		{"SYNFlood6", &s.SYNFlood6, &d.SYNFlood6}, {"Amplification", &s.Amplification, &d.Amplification},
		{"ScanRate", &s.ScanRate, &d.ScanRate}, {"Fragments", &s.Fragments, &d.Fragments},
		{"Malformed", &s.Malformed, &d.Malformed},
	}
}

// ErrTooLarge is returned for a Scenario that could produce more packets
// than its MaxPackets.
var ErrTooLarge = errors.New("scenario too large")

// Validate reports the first thing wrong with s (after defaults): negative
// or non-finite rates, durations out of range, victims of the wrong family,
// absurd sizes, and rates that could exceed MaxPackets.
func (s Scenario) Validate() error {
	_, err := s.normalize()
	return err
}

// normalize applies the defaults and validates.
func (s Scenario) normalize() (Scenario, error) {
	for _, f := range s.rates(nil) {
		if math.IsNaN(*f.v) || math.IsInf(*f.v, 0) || (*f.v < 0 && *f.v != Off) {
			return s, fmt.Errorf("scenario: %s = %v: a rate is a finite number of packets or flows per second, or Off", f.name, *f.v)
		}
		if *f.v > MaxRate {
			return s, fmt.Errorf("scenario: %s = %v: more than %v per second", f.name, *f.v, MaxRate)
		}
	}
	if s.Duration < 0 || s.Duration > MaxDuration {
		return s, fmt.Errorf("scenario: duration %v out of range (0, %v]", s.Duration, MaxDuration)
	}
	s = s.withDefaults()
	switch {
	case s.AttackStart < 0 || s.AttackEnd < 0 || s.AttackStart > s.Duration || s.AttackEnd > s.Duration || s.AttackStart > s.AttackEnd:
		return s, fmt.Errorf("scenario: attack window [%v, %v] outside [0, %v]", s.AttackStart, s.AttackEnd, s.Duration)
	case !s.Victim4.Is4():
		return s, fmt.Errorf("scenario: Victim4 %v is not an IPv4 address", s.Victim4)
	case !s.Victim6.Is6() || s.Victim6.Is4In6():
		return s, fmt.Errorf("scenario: Victim6 %v is not an IPv6 address", s.Victim6)
	case s.Clients < 1 || s.Clients > MaxClients:
		return s, fmt.Errorf("scenario: %d clients out of range [1, %d]", s.Clients, MaxClients)
	case s.Reflectors < 1 || s.Reflectors > MaxReflectors:
		return s, fmt.Errorf("scenario: %d reflectors out of range [1, %d]", s.Reflectors, MaxReflectors)
	case s.AmpPayload < MinAmpPayload || s.AmpPayload > MaxAmpPayload:
		return s, fmt.Errorf("scenario: amplification payload %d bytes out of range [%d, %d]", s.AmpPayload, MinAmpPayload, MaxAmpPayload)
	case s.ScanPorts < 1 || s.ScanPorts > 65535:
		return s, fmt.Errorf("scenario: %d scanned ports out of range [1, 65535]", s.ScanPorts)
	case s.MaxPackets < 1 || s.MaxPackets > MaxPacketsLimit:
		return s, fmt.Errorf("scenario: MaxPackets %d out of range [1, %d]", s.MaxPackets, MaxPacketsLimit)
	case len(s.AmpPorts) > 4:
		return s, fmt.Errorf("scenario: %d amplification ports, at most 4", len(s.AmpPorts))
	case len(s.MalformedKinds) > len(malformedKinds):
		return s, fmt.Errorf("scenario: %d malformed kinds, at most %d", len(s.MalformedKinds), len(malformedKinds))
	}
	for _, p := range s.AmpPorts {
		if _, ok := ampKind(p); !ok {
			return s, fmt.Errorf("scenario: amplification port %d: not one of 53, 123, 1900, 11211", p)
		}
	}
	for _, k := range s.MalformedKinds {
		if malformedIndex(k) < 0 {
			return s, fmt.Errorf("scenario: unknown malformed kind %q (want one of %v)", k, MalformedKinds())
		}
	}
	if n := s.bound(); n > float64(s.MaxPackets) {
		return s, fmt.Errorf("%w: up to %.0f packets, MaxPackets is %d", ErrTooLarge, n, s.MaxPackets)
	}
	return s, nil
}

// bound is a generous upper bound on the number of packets s produces:
// for each class, six standard deviations above its mean number of flows,
// times the most packets a flow of the class can have.
func (s Scenario) bound() float64 {
	legit := s.Duration.Seconds()
	attack := (s.AttackEnd - s.AttackStart).Seconds()
	var n float64
	add := func(rate, secs float64, perFlow int) {
		if rate <= 0 || secs <= 0 {
			return
		}
		m := rate * secs
		n += (m + 6*math.Sqrt(m) + 10) * float64(perFlow)
	}
	add(s.TCPFlows, legit, maxTCPFlowPackets)
	add(s.HTTPSFlows, legit, maxTCPFlowPackets)
	add(s.IPv6Flows, legit, maxTCPFlowPackets)
	add(s.DNSRate, legit, 2)
	add(s.NTPRate, legit, 2)
	for _, r := range []float64{s.SYNFlood4, s.SYNFlood6, s.Amplification, s.ScanRate, s.Malformed} {
		add(r, attack, 1)
	}
	add(s.Fragments, attack, 2)
	return n
}

// Presets are named Scenarios (see Preset).
var presets = map[string]func() Scenario{
	"default": DefaultScenario,
	// testdata is the capture committed in apps/firewall/testdata: ten
	// seconds, a few thousand packets of every class, under 1 MB.
	"testdata": func() Scenario {
		return Scenario{
			Seed: 1, Duration: 10 * time.Second, AttackStart: 2 * time.Second, AttackEnd: 8 * time.Second,
			Clients: 40, TCPFlows: 3, HTTPSFlows: 5, IPv6Flows: 3, DNSRate: 10, NTPRate: 1,
			SYNFlood4: 300, SYNFlood6: 100, Amplification: 100, Reflectors: 50, AmpPayload: 512,
			ScanRate: 2, Fragments: 20, Malformed: 20,
		}
	},
}

// Preset returns the Scenario called name: "default" (DefaultScenario) or
// "testdata" (the capture in apps/firewall/testdata).
func Preset(name string) (Scenario, error) {
	f, ok := presets[name]
	if !ok {
		return Scenario{}, fmt.Errorf("unknown preset %q (want default or testdata)", name)
	}
	return f(), nil
}
