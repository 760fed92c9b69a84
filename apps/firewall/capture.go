package firewall

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/waggle-bpf/waggle/internal/capture"
)

// Report is what a replayed capture came to.
type Report struct {
	Packets int `json:"packets"`
	// Verdicts counts packets by XDP action ("XDP_DROP": 3).
	Verdicts map[string]int `json:"verdicts"`
	// Rules are the per-rule counters after the capture, for the rules
	// that counted something, by id.
	Rules []RuleCount `json:"rules"`
	// SYNProtection is the SYN protection the replay had in force (a
	// replay has the SYN cookie helpers: see SYNProtection).
	SYNProtection string  `json:"syn_protection"`
	Seconds       float64 `json:"seconds"`
	// PacketsPerSec is the replay's speed, parsing the capture included.
	PacketsPerSec float64 `json:"packets_per_sec"`
}

// RuleCount is a rule and what it counted.
type RuleCount struct {
	RuleInfo
	Counter
}

// ReplayCapture runs every frame of a pcap or pcapng capture (size bytes,
// -1 if unknown) through the firewall, in order, its timestamps as the
// clock, and calls each (if not nil) with every packet's number (from 1),
// the packet and its verdict. Frames must be Ethernet. A capture that
// breaks off ends the replay with an error naming the packet, after each
// has seen the packets before it.
func (r *Replayer) ReplayCapture(src io.Reader, size int64, each func(n int, p Packet, v Verdict) error) (*Report, error) {
	start := time.Now()
	rd, err := capture.NewReader(src, size)
	if err != nil {
		return nil, err
	}
	rep := &Report{Verdicts: map[string]int{}}
	pkts := make([]Packet, 0, r.batch)
	bufs := make([][]byte, r.batch)
	verdicts := make([]Verdict, r.batch)
	flush := func() error {
		if err := r.Run(pkts, verdicts); err != nil {
			return err
		}
		for i, p := range pkts {
			rep.Packets++
			rep.Verdicts[ActionName(verdicts[i].Action)]++
			if each != nil {
				if err := each(rep.Packets, p, verdicts[i]); err != nil {
					return err
				}
			}
		}
		pkts = pkts[:0]
		return nil
	}
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return nil, ferr
			}
			if cerr := r.report(rep, start); cerr != nil {
				return nil, cerr
			}
			return rep, err
		}
		if p.LinkType != capture.LinkTypeEthernet {
			return nil, fmt.Errorf("packet %d: link type %s; the firewall takes Ethernet frames", rd.Packets(), capture.LinkTypeName(p.LinkType))
		}
		i := len(pkts)
		bufs[i] = append(bufs[i][:0], p.Data...)
		pkts = append(pkts, Packet{Data: bufs[i], Time: p.Timestamp})
		if len(pkts) == r.batch {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if err := r.report(rep, start); err != nil {
		return nil, err
	}
	return rep, nil
}

// report fills rep's per-rule counters and speed.
func (r *Replayer) report(rep *Report, start time.Time) error {
	counters, err := r.Counters()
	if err != nil {
		return err
	}
	for id, c := range counters {
		info, ok := r.Compiled().Rule(id)
		if !ok {
			info = RuleInfo{ID: id, Name: r.Compiled().RuleName(id)}
		}
		rep.Rules = append(rep.Rules, RuleCount{RuleInfo: info, Counter: c})
	}
	slices.SortFunc(rep.Rules, func(a, b RuleCount) int { return int(a.ID) - int(b.ID) })
	rep.SYNProtection = SYNProtection(r.Compiled().Config)
	rep.Seconds = time.Since(start).Seconds()
	if rep.Seconds > 0 {
		rep.PacketsPerSec = float64(rep.Packets) / rep.Seconds
	}
	return nil
}

// NewCaptureWriter returns a pcap writer of Ethernet frames with
// nanosecond timestamps (for replay's --out and capture's --dropped):
// write takes a packet and its length on the wire (at least len(p.Data));
// flush flushes it.
func NewCaptureWriter(w io.Writer) (write func(p Packet, length int) error, flush func() error, err error) {
	cw, err := capture.NewWriter(w, capture.LinkTypeEthernet, capture.Nanoseconds)
	if err != nil {
		return nil, nil, err
	}
	return func(p Packet, length int) error { return cw.WritePacket(p.Time, max(length, len(p.Data)), p.Data) }, cw.Flush, nil
}

// Sample is a packet the program sent to the ring buffer "samples"
// (struct sample): a dropped one, or any with Options.SampleAll; its first
// bytes, its verdict and the rule that decided it.
type Sample struct {
	Rule   uint32
	Action uint32 // XDPDrop, XDPPass...
	// Length is the packet's length; Data holds its first
	// min(Length, SampleBytes) bytes.
	Length int
	// Time is the program's clock when it decided the packet: the
	// capture's time in replay, CLOCK_MONOTONIC (bpf_ktime_get_ns)
	// attached.
	Time uint64
	Data []byte
}

// Timestamp is the sample's time as a pcap timestamp: Time plus shift
// (WallClockShift for a sample of an attached firewall, 0 for a replay's).
func (s Sample) Timestamp(shift time.Duration) time.Time {
	return time.Unix(0, int64(s.Time)).Add(shift)
}

// ParseSample decodes a ring buffer record of the program's.
func ParseSample(raw []byte) (Sample, error) {
	if len(raw) < SampleSize {
		return Sample{}, fmt.Errorf("firewall sample: %d bytes, want %d (a firewall of another version: apply again to swap in this one's program)", len(raw), SampleSize)
	}
	s := Sample{Rule: ne.Uint32(raw), Length: int(ne.Uint32(raw[4:])), Time: ne.Uint64(raw[8:]), Action: ne.Uint32(raw[16+SampleBytes:])}
	s.Data = raw[16 : 16+min(s.Length, SampleBytes)]
	return s, nil
}
