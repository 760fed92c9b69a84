package maps

import "time"

// Mappings returns the memory of m that a stray write could reach, for
// tests that write over it: the map's mapping (header, metadata, storage)
// and, for a perf event array, the rings its readers installed.
func Mappings(m Map) [][]byte {
	var out [][]byte
	if b, ok := m.(interface{ mappingBytes() []byte }); ok {
		out = append(out, b.mappingBytes())
	}
	if p, ok := m.(*perfArray); ok {
		for i := range p.rings {
			if r := p.rings[i].Load(); r != nil {
				r.mu.Lock()
				if !r.dead {
					out = append(out, r.data)
				}
				r.mu.Unlock()
			}
		}
	}
	return out
}

func (b *base) mappingBytes() []byte { return b.mapping }

// LPMGrace sets how long Go-side updates of trie m wait for a grace period
// (unless wait is 0) and returns how many nodes its updates reused early
// and how many times a Go-side update waited, so far.
func LPMGrace(m Map, wait time.Duration) (early, waits uint64) {
	t := m.(*lpmTrie)
	t.mu.Lock()
	defer t.mu.Unlock()
	if wait > 0 {
		t.graceWait = wait
	}
	return t.early, t.waits
}
