package firewall

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/waggle-bpf/waggle"
)

// Reload changes the replayer's maps in place to c's rules and limits,
// as Apply reloads an attached firewall: each entry by one update, first
// the new and changed prefixes, then the configuration, then the removal
// of prefixes c lacks, so that a packet the program runs on meanwhile (Run
// in another goroutine) meets the old rules or the new ones, never a list
// missing a prefix both have. The buckets, the attack window, the
// counters and the talkers carry over. Reload may run while Run does; it
// must not run concurrently with itself.
func (r *Replayer) Reload(c *Compiled) (*ApplyResult, error) {
	res := &ApplyResult{Reloaded: true}
	type stale struct {
		m    *waggle.Map
		keys [][]byte
	}
	var removals []stale
	for i := range c.Lists {
		l := &c.Lists[i]
		m := r.coll.Maps[l.Map]
		if m == nil {
			return nil, fmt.Errorf("firewall: the object has no map %s", l.Map)
		}
		if int(m.KeySize()) != l.KeySize || int(m.ValueSize()) != l.ValueSize {
			return nil, fmt.Errorf("firewall: map %s has keys of %d and values of %d bytes, not %d and %d", l.Map, m.KeySize(), m.ValueSize(), l.KeySize, l.ValueSize)
		}
		have := map[string][]byte{}
		for k, v := range m.All() {
			have[string(k)] = v
		}
		want := make(map[string]struct{}, l.Len())
		for j := range l.Len() {
			k, v := l.Entry(j)
			want[string(k)] = struct{}{}
			old, ok := have[string(k)]
			if ok && bytes.Equal(old, v) {
				continue
			}
			if err := m.Put(k, v); err != nil {
				return nil, fmt.Errorf("firewall: map %s: %w", l.Map, err)
			}
			if ok {
				res.Changed++
			} else {
				res.Added++
			}
		}
		s := stale{m: m}
		for k := range have {
			if _, ok := want[k]; !ok {
				s.keys = append(s.keys, []byte(k))
			}
		}
		removals = append(removals, s)
	}
	cm := r.coll.Maps[MapConfig]
	if cm == nil {
		return nil, fmt.Errorf("firewall: the object has no map %s", MapConfig)
	}
	cfg := slices.Clone(c.Config)
	ne.PutUint32(cfg, ne.Uint32(cfg)|flagReplay)
	if err := cm.Put(uint32(0), cfg); err != nil {
		return nil, fmt.Errorf("firewall: map %s: %w", MapConfig, err)
	}
	for _, s := range removals {
		for _, k := range s.keys {
			if err := s.m.Delete(k); err != nil && !errors.Is(err, waggle.ErrKeyNotExist) {
				return nil, fmt.Errorf("firewall: map %s: delete a stale prefix: %w", s.m.Name(), err)
			}
			res.Removed++
		}
	}
	r.comp.Store(c)
	return res, nil
}
