package interp

import (
	"fmt"
	"math/bits"
	"sort"

	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

// span is a region in address form: [lo, hi), and when stride is not zero
// only the len bytes at off within each stride-byte slot (map values
// between their slots' links and keys).
type span struct {
	lo, hi   uint64
	stride   uint64
	off, len uint64
	mask     uint64 // stride-1 when stride is a power of two, else 0
	recip    uint64 // ⌊(2^64-1)/stride⌋+1, to divide by stride with a multiplication
	writable bool
	// bounds, when not 0, is the address of a Region.Bounds, which
	// narrows [lo, hi) to the two addresses it holds now. region is 1 +
	// the index of the span's Args.Regions entry (for its Name), 0 for
	// map memory. A span holds no Go pointer: building a run's spans is
	// then a plain copy, half the cost of one with pointer fields.
	bounds uint64
	region uint32
}

// extent returns the span's range as it is now.
func (s *span) extent() (lo, hi uint64) {
	lo, hi = s.lo, s.hi
	if s.bounds != 0 {
		lo, hi = max(lo, mem.Load64(s.bounds)), min(hi, mem.Load64(s.bounds+8))
	}
	return lo, hi
}

func spanOf(data []byte, writable bool, stride, off, n uint64) span {
	lo := mem.Addr(data)
	s := span{lo: lo, hi: lo + uint64(len(data)), writable: writable}
	if stride != 0 && (off != 0 || n != stride) {
		s.stride, s.off, s.len = stride, off, n
		if stride&(stride-1) == 0 {
			s.mask = stride - 1
		} else {
			s.recip = ^uint64(0)/stride + 1
		}
	}
	return s
}

// holds reports whether the n bytes at addr lie inside s (inside one slot's
// window for a strided span).
func (s *span) holds(addr, n uint64) bool {
	if addr < s.lo || addr >= s.hi || s.hi-addr < n {
		return false
	}
	if s.stride == 0 {
		return true
	}
	return s.window(addr-s.lo, n)
}

// window reports whether the n bytes at offset x of the span lie inside
// one slot's window. A division by the stride costs more than the rest of
// a checked access, so it is a multiplication by the reciprocal: q is
// ⌊x/stride⌋ or one more (x·recip/2^64 exceeds x/stride by less than 1),
// which one correction step fixes.
func (s *span) window(x, n uint64) bool {
	var o uint64
	if s.mask != 0 {
		o = x & s.mask
	} else {
		q, _ := bits.Mul64(x, s.recip)
		o = x - q*s.stride
		if int64(o) < 0 {
			o += s.stride
		}
	}
	return o >= s.off && o-s.off < s.len && s.len-(o-s.off) >= n
}

// why explains, for an address inside s, why an access of n bytes is not
// allowed; name is what s is ("the region" if "").
func (s *span) why(addr, n uint64, name string) string {
	if s.stride == 0 {
		lo, hi := s.extent()
		if name == "" {
			name = "the region"
		}
		return fmt.Sprintf("the access runs past the end of %s [%#x, %#x)", name, lo, hi)
	}
	o := (addr - s.lo) % s.stride
	return fmt.Sprintf("[%#x, %#x) is map storage of %d-byte slots whose value is the %d bytes at offset %d; this access covers slot offsets %d to %d (a slot's links, key or flags, or past its value), which programs may not touch",
		s.lo, s.hi, s.stride, s.len, s.off, o, o+n-1)
}

// Memory is memory a program may reach besides its stack and its run's
// Args.Regions: the values of the maps it references, prepared for checked
// runs (sorted by address, found by binary search). A Memory is immutable
// and safe for concurrent use; build a new one when the set changes.
type Memory struct {
	spans []span // sorted by lo, not overlapping
}

// NewMemory prepares regions for checked runs. A region with a Stride
// allows only the Len bytes at Offset of each slot, as maps.Region
// describes; overlapping regions are an error.
func NewMemory(regions []maps.Region) (*Memory, error) {
	mm := &Memory{}
	for _, r := range regions {
		if len(r.Data) == 0 {
			continue
		}
		if r.Stride != 0 && (r.Offset > r.Stride || r.Len > r.Stride-r.Offset) {
			return nil, fmt.Errorf("interp: region of %d-byte slots with a %d-byte window at %d", r.Stride, r.Len, r.Offset)
		}
		mm.spans = append(mm.spans, spanOf(r.Data, r.Writable, r.Stride, r.Offset, r.Len))
	}
	sort.Slice(mm.spans, func(i, j int) bool { return mm.spans[i].lo < mm.spans[j].lo })
	for i := 1; i < len(mm.spans); i++ {
		if mm.spans[i].lo < mm.spans[i-1].hi {
			return nil, fmt.Errorf("interp: regions [%#x, %#x) and [%#x, %#x) overlap", mm.spans[i-1].lo, mm.spans[i-1].hi, mm.spans[i].lo, mm.spans[i].hi)
		}
	}
	return mm, nil
}

// find returns the span whose range holds addr, or nil.
func (mm *Memory) find(addr uint64) *span {
	if mm == nil {
		return nil
	}
	s := mm.spans
	lo, hi := 0, len(s)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if s[h].hi <= addr {
			lo = h + 1
		} else {
			hi = h
		}
	}
	if lo < len(s) && s[lo].lo <= addr {
		return &s[lo]
	}
	return nil
}

// Len returns the number of regions.
func (mm *Memory) Len() int {
	if mm == nil {
		return 0
	}
	return len(mm.spans)
}
