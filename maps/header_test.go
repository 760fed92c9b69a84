package maps

import (
	"testing"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// TestHeaderLayout pins the off-heap header that Handle points to: native
// code (the JIT's inlined lookups) reads these offsets, so they change only
// together with it.
func TestHeaderLayout(t *testing.T) {
	for _, tc := range []struct {
		name string
		off  int
		want int
	}{
		{"magic", hdrMagic, 0}, {"type", hdrType, 4}, {"key_size", hdrKeySize, 8},
		{"value_size", hdrValueSize, 12}, {"max_entries", hdrMaxEntries, 16}, {"map_flags", hdrFlags, 20},
		{"value_stride", hdrValueStride, 24}, {"cpus", hdrCPUs, 28}, {"data", hdrData, 32},
		{"aux", hdrAux, 40}, {"mask", hdrMask, 48}, {"seed", hdrSeed, 52}, {"elem_size", hdrElemSize, 56},
		{"type state", hdrTypeState, 72},
		{"jit", hdrJIT, 192}, {"size", headerSize, 256},
		{"hash total", hdrTotal, 84}, {"hash tick", hdrTick, 112},
		{"lpm nodes", hdrLPMNodes, 96}, {"lpm root", hdrLPMRoot, 100}, {"lpm seq", hdrLPMSeq, 104}, {"queue size", hdrQSize, 80},
	} {
		if tc.off != tc.want {
			t.Errorf("%s at %d, want %d", tc.name, tc.off, tc.want)
		}
	}
	if hdrTypeState+8*6+4 > hdrJIT {
		t.Error("type state runs into the JIT's words")
	}

	m, err := New(Spec{Type: PerCPUArray, KeySize: 4, ValueSize: 12, MaxEntries: 5, CPUs: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h := m.Handle()
	for _, f := range []struct {
		name string
		got  uint64
		want uint64
	}{
		{"magic", mem.Load32(h + hdrMagic), HeaderMagic},
		{"type", mem.Load32(h + hdrType), uint64(PerCPUArray)},
		{"key_size", mem.Load32(h + hdrKeySize), 4},
		{"value_size", mem.Load32(h + hdrValueSize), 12},
		{"max_entries", mem.Load32(h + hdrMaxEntries), 5},
		{"value_stride", mem.Load32(h + hdrValueStride), 5 * 16}, // a CPU's block
		{"cpus", mem.Load32(h + hdrCPUs), 3},
		{"data", mem.Load64(h + hdrData), h + headerSize},
		{"elem_size", mem.Load32(h + hdrElemSize), 16},
	} {
		if f.got != f.want {
			t.Errorf("array header %s = %#x, want %#x", f.name, f.got, f.want)
		}
	}
	// The inlined per-CPU array lookup: data + index*elem_size +
	// cpu*value_stride, each CPU's copies in a block of their own.
	key := []byte{3, 0, 0, 0}
	if got, want := m.(Elems).LookupElem(2, key), mem.Load64(h+hdrData)+3*16+2*5*16; got != want {
		t.Errorf("LookupElem %#x, the header says %#x", got, want)
	}

	hm, err := New(Spec{Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 100, Flags: FlagZeroSeed})
	if err != nil {
		t.Fatal(err)
	}
	defer hm.Close()
	h = hm.Handle()
	if err := hm.Update(key, make([]byte, 8), 0); err != nil {
		t.Fatal(err)
	}
	// An inlined hash lookup walks bucket data + (hash&mask)*8 to the
	// element aux + index*elem_size, whose value follows its key.
	hash := jhash2(key, uint32(mem.Load32(h+hdrSeed)))
	b := mem.Load64(h+hdrData) + (uint64(hash)&mem.Load32(h+hdrMask))*8
	idx := mem.AtomicLoad32(b)
	e := mem.Load64(h+hdrAux) + uint64(idx)*mem.Load32(h+hdrElemSize)
	if mem.Load32(h+hdrMask) != 127 || mem.Load32(e+4) != uint64(hash) || mem.Load32(e+8) != 3 {
		t.Errorf("hash element at %#x: hash %#x key %d", e, mem.Load32(e+4), mem.Load32(e+8))
	}
	if got := hm.(Elems).LookupElem(0, key); got != e+8+8 {
		t.Errorf("LookupElem %#x, the layout says %#x", got, e+16)
	}
}
