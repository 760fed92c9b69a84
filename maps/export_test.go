package maps

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
