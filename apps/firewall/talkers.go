package firewall

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// MapTalkers is the per-CPU LRU hash of the packets and bytes each source
// address sent (struct talker_key, struct talker).
const MapTalkers = "talkers"

// MaxTalkers is how many sources the talkers map holds: past that, the
// least recently seen are forgotten.
const MaxTalkers = 16384

// Sizes of the talkers map's key and value (struct talker_key, struct
// talker).
const (
	talkerKeySize = 20
	talkerSize    = 32
)

// Talker is what one source address sent since the firewall was loaded (or
// since the talkers map last forgot it), summed over CPUs.
type Talker struct {
	Addr    netip.Addr `json:"addr"`
	Packets uint64     `json:"packets"`
	Bytes   uint64     `json:"bytes"`
	// Rule decided the source's last packet (on the CPU that saw it last).
	Rule uint32 `json:"rule"`
	// Last is the program's clock at that packet: bpf_ktime_get_ns
	// (CLOCK_MONOTONIC) on an interface, the capture's time in a replay.
	Last uint64 `json:"last_ns"`
}

// talkerValue is struct talker, one CPU's.
type talkerValue struct {
	Packets uint64
	Bytes   uint64
	Last    uint64
	Rule    uint32
	Pad     uint32
}

// talkerAddr decodes a struct talker_key.
func talkerAddr(key []byte) (netip.Addr, error) {
	if len(key) != talkerKeySize {
		return netip.Addr{}, fmt.Errorf("firewall: a talker key of %d bytes, not %d", len(key), talkerKeySize)
	}
	switch key[0] {
	case 4:
		return netip.AddrFrom4([4]byte(key[4:8])), nil
	case 6:
		return netip.AddrFrom16([16]byte(key[4:20])), nil
	}
	return netip.Addr{}, fmt.Errorf("firewall: a talker key of family %d", key[0])
}

// sumTalker adds up one source's per-CPU values.
func sumTalker(addr netip.Addr, per []talkerValue) Talker {
	t := Talker{Addr: addr}
	for _, v := range per {
		t.Packets += v.Packets
		t.Bytes += v.Bytes
		if v.Packets != 0 && v.Last >= t.Last {
			t.Last, t.Rule = v.Last, v.Rule
		}
	}
	return t
}

// talkerValues decodes the per-CPU values of a talker as waggle's maps give
// them: one struct talker per CPU, back to back.
func talkerValues(b []byte) ([]talkerValue, error) {
	if len(b)%talkerSize != 0 {
		return nil, fmt.Errorf("firewall: talker values of %d bytes, not a multiple of %d", len(b), talkerSize)
	}
	out := make([]talkerValue, len(b)/talkerSize)
	for i := range out {
		v := b[i*talkerSize:]
		out[i] = talkerValue{Packets: ne.Uint64(v), Bytes: ne.Uint64(v[8:]), Last: ne.Uint64(v[16:]), Rule: ne.Uint32(v[24:])}
	}
	return out, nil
}

// topTalkers sorts ts by packets, then bytes (most first), then address,
// and keeps the first n (all for n <= 0).
func topTalkers(ts []Talker, n int) []Talker {
	slices.SortFunc(ts, func(a, b Talker) int {
		if c := cmp.Compare(b.Packets, a.Packets); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Bytes, a.Bytes); c != 0 {
			return c
		}
		return a.Addr.Compare(b.Addr)
	})
	if n > 0 && len(ts) > n {
		ts = ts[:n:n]
	}
	return ts
}

// TopTalkers returns the n sources (all for n <= 0) that sent the most
// packets through the replayer's firewall, most first.
func (r *Replayer) TopTalkers(n int) ([]Talker, error) {
	m := r.coll.Maps[MapTalkers]
	if m == nil {
		return nil, fmt.Errorf("firewall: the object has no map %s", MapTalkers)
	}
	var ts []Talker
	for k, v := range m.All() {
		addr, err := talkerAddr(k)
		if err != nil {
			return nil, err
		}
		per, err := talkerValues(v)
		if err != nil {
			return nil, err
		}
		if t := sumTalker(addr, per); t.Packets != 0 {
			ts = append(ts, t)
		}
	}
	return topTalkers(ts, n), nil
}

// UnderAttack reports whether the replayer's firewall has its limits
// tightened (the attack map's flag).
func (r *Replayer) UnderAttack() (bool, error) {
	m := r.coll.Maps[MapAttack]
	if m == nil {
		return false, fmt.Errorf("firewall: the object has no map %s", MapAttack)
	}
	b, err := m.LookupBytes(uint32(0))
	if err != nil {
		return false, fmt.Errorf("firewall: map %s: %w", MapAttack, err)
	}
	return attackOn(b)
}

// SamplesLost counts the samples the replayer's ring buffer had no room
// for, summed over CPUs.
func (r *Replayer) SamplesLost() (uint64, error) {
	m := r.coll.Maps[mapDrops]
	if m == nil {
		return 0, fmt.Errorf("firewall: the object has no map %s", mapDrops)
	}
	b, err := m.LookupBytes(uint32(dropsLost))
	if err != nil {
		return 0, fmt.Errorf("firewall: map %s: %w", mapDrops, err)
	}
	var n uint64
	for off := 0; off+8 <= len(b); off += 8 {
		n += ne.Uint64(b[off:])
	}
	return n, nil
}

// attackOn reads struct attack's flag.
func attackOn(b []byte) (bool, error) {
	if len(b) < 24 {
		return false, fmt.Errorf("firewall: an attack value of %d bytes", len(b))
	}
	return ne.Uint64(b[16:]) != 0, nil
}
