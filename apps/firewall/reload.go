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
	lists := make([]listMap, len(c.Lists))
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
		lists[i] = listMap{name: l.Map, have: have,
			put: func(k, v []byte) error { return m.Put(k, v) },
			del: func(k []byte) error {
				if err := m.Delete(k); !errors.Is(err, waggle.ErrKeyNotExist) {
					return err
				}
				return nil
			}}
	}
	cm := r.coll.Maps[MapConfig]
	if cm == nil {
		return nil, fmt.Errorf("firewall: the object has no map %s", MapConfig)
	}
	err := reloadLists(c, lists, func() error {
		cfg := slices.Clone(c.Config)
		ne.PutUint32(cfg, ne.Uint32(cfg)|flagReplay)
		if err := cm.Put(uint32(0), cfg); err != nil {
			return fmt.Errorf("firewall: map %s: %w", MapConfig, err)
		}
		return nil
	}, res)
	if err != nil {
		return nil, err
	}
	r.comp.Store(c)
	return res, nil
}

// listMap is one list's map as an in-place reload sees it, in the kernel
// or in user space: its entries now, and how to put and delete one (a
// key already gone is no error).
type listMap struct {
	name string
	have map[string][]byte
	put  func(k, v []byte) error
	del  func(k []byte) error
}

// reloadLists changes maps (the maps of c's lists, in order) in place, an
// entry at a time, in the order that lets packets run meanwhile: the new
// and changed prefixes of every list, then the configuration (setConfig),
// then the removal of the prefixes c lacks. A packet meets the old rules
// or the new ones, never a list missing a prefix both have. It counts
// what it did in res.
func reloadLists(c *Compiled, maps []listMap, setConfig func() error, res *ApplyResult) error {
	removals := make([][][]byte, len(maps))
	for i := range c.Lists {
		l, m := &c.Lists[i], &maps[i]
		want := make(map[string]struct{}, l.Len())
		for j := range l.Len() {
			k, v := l.Entry(j)
			want[string(k)] = struct{}{}
			old, ok := m.have[string(k)]
			if ok && bytes.Equal(old, v) {
				continue
			}
			if err := m.put(k, v); err != nil {
				return fmt.Errorf("firewall: map %s: %w", m.name, err)
			}
			if ok {
				res.Changed++
			} else {
				res.Added++
			}
		}
		for k := range m.have {
			if _, ok := want[k]; !ok {
				removals[i] = append(removals[i], []byte(k))
			}
		}
	}
	if err := setConfig(); err != nil {
		return err
	}
	for i, keys := range removals {
		for _, k := range keys {
			if err := maps[i].del(k); err != nil {
				return fmt.Errorf("firewall: map %s: delete a stale prefix: %w", maps[i].name, err)
			}
			res.Removed++
		}
	}
	return nil
}
