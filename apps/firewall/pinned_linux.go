package firewall

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// Pinned reads the maps of a firewall Apply pinned: its counters, its top
// talkers and its attack state, on each call (no caching), so that a
// Prometheus scrape sees the maps as they are.
type Pinned struct {
	dir                       string
	counters, talkers, attack *ebpf.Map
}

// OpenPinned opens the maps of the firewall pinned under dir.
func OpenPinned(dir string) (*Pinned, error) {
	p := &Pinned{dir: dir}
	for _, x := range []struct {
		m    **ebpf.Map
		name string
	}{{&p.counters, MapCounters}, {&p.talkers, MapTalkers}, {&p.attack, MapAttack}} {
		m, err := openPinned(dir, x.name)
		if err != nil {
			p.Close()
			return nil, err
		}
		*x.m = m
	}
	return p, nil
}

// Close releases the maps.
func (p *Pinned) Close() error {
	var errs []error
	for _, m := range []*ebpf.Map{p.counters, p.talkers, p.attack} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}

// Counters returns the per-rule counters, summed over CPUs, for the rules
// that counted something.
func (p *Pinned) Counters() (map[uint32]Counter, error) {
	out, err := kernelCounters(p.counters)
	if err != nil {
		return nil, fmt.Errorf("firewall: %s: counters: %w", p.dir, err)
	}
	return out, nil
}

// kernelCounters reads the kernel's per-CPU counters map m: each rule's
// counters summed over the CPUs, for the rules that counted something.
func kernelCounters(m *ebpf.Map) (map[uint32]Counter, error) {
	out := map[uint32]Counter{}
	var per []Counter
	for id := uint32(0); id < MaxRules; id++ {
		if err := m.Lookup(id, &per); err != nil {
			return nil, err
		}
		var c Counter
		for _, x := range per {
			c.Packets += x.Packets
			c.Bytes += x.Bytes
		}
		if c != (Counter{}) {
			out[id] = c
		}
	}
	return out, nil
}

// TopTalkers returns the n sources (all for n <= 0) that sent the most
// packets, most first.
func (p *Pinned) TopTalkers(n int) ([]Talker, error) {
	var ts []Talker
	k := make([]byte, talkerKeySize)
	var per []talkerValue
	it := p.talkers.Iterate()
	for it.Next(&k, &per) {
		addr, err := talkerAddr(k)
		if err != nil {
			return nil, err
		}
		if t := sumTalker(addr, per); t.Packets != 0 {
			ts = append(ts, t)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("firewall: %s: talkers: %w", p.dir, err)
	}
	return topTalkers(ts, n), nil
}

// SYNProtection names the SYN protection the applied configuration puts
// in force (see SYNProtection).
func (p *Pinned) SYNProtection() (string, error) {
	m, err := openPinned(p.dir, MapConfig)
	if err != nil {
		return "", err
	}
	defer m.Close()
	b, err := m.LookupBytes(uint32(0))
	if err != nil {
		return "", fmt.Errorf("firewall: %s: config: %w", p.dir, err)
	}
	return SYNProtection(b), nil
}

// UnderAttack reports whether the firewall has its limits tightened.
func (p *Pinned) UnderAttack() (bool, error) {
	b, err := p.attack.LookupBytes(uint32(0))
	if err != nil {
		return false, fmt.Errorf("firewall: %s: attack: %w", p.dir, err)
	}
	return attackOn(b)
}

// SamplesLost counts the samples the ring buffer had no room for, summed
// over CPUs: what a capture missed because it read too slowly.
func (p *Pinned) SamplesLost() (uint64, error) {
	m, err := openPinned(p.dir, mapDrops)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	var per []uint64
	if err := m.Lookup(uint32(dropsLost), &per); err != nil {
		return 0, fmt.Errorf("firewall: %s: %s: %w", p.dir, mapDrops, err)
	}
	var n uint64
	for _, x := range per {
		n += x
	}
	return n, nil
}
