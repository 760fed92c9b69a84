package maps

import "sync"

// Registry resolves the handles programs hold (Map.Handle) back to maps. A
// collection of programs and maps shares one; helpers receive map handles in
// registers and look them up here. The zero value is ready to use.
type Registry struct {
	mu   sync.RWMutex
	maps map[uint64]Map
}

// Add makes m resolvable by its handle.
func (r *Registry) Add(m Map) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.maps == nil {
		r.maps = map[uint64]Map{}
	}
	r.maps[m.Handle()] = m
}

// Remove forgets m.
func (r *Registry) Remove(m Map) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.maps, m.Handle())
}

// Lookup returns the map with the given handle. A handle not registered
// itself may be an inner map that a registered map-in-map holds (what a
// program's lookup in a map-in-map returns); those are found too.
func (r *Registry) Lookup(handle uint64) (Map, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if m, ok := r.maps[handle]; ok {
		return m, true
	}
	for _, m := range r.maps {
		switch o := m.(type) {
		case *fdArray:
			for _, in := range o.inners() {
				if in.Handle() == handle {
					return in, true
				}
			}
		case *hashMap:
			if o.inner != nil {
				if in, ok := o.inner.get(handle); ok {
					return in, true
				}
			}
		}
	}
	return nil, false
}

// RingBufOf returns the registered ring buffer whose data holds addr: the
// map of a sample bpf_ringbuf_submit, bpf_ringbuf_discard and their dynptr
// variants receive without a map argument.
func (r *Registry) RingBufOf(addr uint64) (RingBuffer, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, m := range r.maps {
		if rb, ok := m.(RingBuffer); ok && rb.Contains(addr) {
			return rb, true
		}
	}
	return nil, false
}

// All returns the registered maps, in no particular order.
func (r *Registry) All() []Map {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Map, 0, len(r.maps))
	for _, m := range r.maps {
		out = append(out, m)
	}
	return out
}
