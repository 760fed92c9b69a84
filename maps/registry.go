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

// Lookup returns the map with the given handle.
func (r *Registry) Lookup(handle uint64) (Map, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.maps[handle]
	return m, ok
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
