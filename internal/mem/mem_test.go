package mem

import (
	"encoding/binary"
	"sync"
	"testing"
)

func TestLoadStore(t *testing.T) {
	b := Aligned(16)
	a := Addr(b)
	if a%8 != 0 {
		t.Fatalf("Aligned gave address %#x", a)
	}
	Store64(a, 0x1122334455667788)
	Store32(a+8, 0xdeadbeef)
	Store16(a+12, 0xcafe)
	Store8(a+14, 0x7f)
	le := binary.LittleEndian
	if le.Uint64(b) != 0x1122334455667788 || le.Uint32(b[8:]) != 0xdeadbeef || le.Uint16(b[12:]) != 0xcafe || b[14] != 0x7f {
		t.Fatalf("stores wrote % x", b)
	}
	if Load64(a) != 0x1122334455667788 || Load32(a+8) != 0xdeadbeef || Load16(a+12) != 0xcafe || Load8(a+14) != 0x7f {
		t.Error("loads disagree with stores")
	}
	// Unaligned access works on the architectures waggle runs on.
	if Load32(a+1) != 0x44556677 {
		t.Errorf("unaligned load %#x", Load32(a+1))
	}
	if got := Bytes(a+8, 4); len(got) != 4 || got[0] != 0xef {
		t.Errorf("Bytes % x", got)
	}
	if Addr(nil) != 0 || Bytes(a, 0) != nil || Aligned(0) != nil {
		t.Error("empty cases")
	}
}

func TestAtomics(t *testing.T) {
	b := Aligned(16)
	a := Addr(b)
	Store64(a, 0xf0)
	for _, tc := range []struct {
		name     string
		op       func() uint64
		old, now uint64
	}{
		{"add64", func() uint64 { return AtomicAdd64(a, 1) }, 0xf0, 0xf1},
		{"or64", func() uint64 { return AtomicOr64(a, 0x100) }, 0xf1, 0x1f1},
		{"and64", func() uint64 { return AtomicAnd64(a, 0x10f) }, 0x1f1, 0x101},
		{"xor64", func() uint64 { return AtomicXor64(a, 0x1) }, 0x101, 0x100},
		{"xchg64", func() uint64 { return AtomicXchg64(a, 7) }, 0x100, 7},
		{"cmpxchg64 hit", func() uint64 { return AtomicCmpXchg64(a, 7, 9) }, 7, 9},
		{"cmpxchg64 miss", func() uint64 { return AtomicCmpXchg64(a, 7, 11) }, 9, 9},
		{"add32", func() uint64 { return uint64(AtomicAdd32(a, 0xffffffff)) }, 9, 8},
		{"or32", func() uint64 { return uint64(AtomicOr32(a, 0x10)) }, 8, 0x18},
		{"and32", func() uint64 { return uint64(AtomicAnd32(a, 0x10)) }, 0x18, 0x10},
		{"xor32", func() uint64 { return uint64(AtomicXor32(a, 0x11)) }, 0x10, 0x01},
		{"xchg32", func() uint64 { return uint64(AtomicXchg32(a, 5)) }, 1, 5},
		{"cmpxchg32 hit", func() uint64 { return uint64(AtomicCmpXchg32(a, 5, 6)) }, 5, 6},
		{"cmpxchg32 miss", func() uint64 { return uint64(AtomicCmpXchg32(a, 5, 7)) }, 6, 6},
	} {
		if old := tc.op(); old != tc.old || Load64(a) != tc.now {
			t.Errorf("%s: old %#x, now %#x; want %#x, %#x", tc.name, old, Load64(a), tc.old, tc.now)
		}
	}
}

func TestAtomicsConcurrent(t *testing.T) {
	b := Aligned(8)
	a := Addr(b)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10000 {
				AtomicXor32(a, 1)
				AtomicAdd32(a+4, 1)
				for {
					old := uint32(Load32(a + 4))
					if AtomicCmpXchg32(a+4, old, old+1) == old {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	if Load32(a) != 0 || Load32(a+4) != 160000 {
		t.Errorf("xor parity %d, counter %d", Load32(a), Load32(a+4))
	}
}

// TestSliceAt: SliceAt reads the []byte stored at an address, as a batch
// reads its items' packets.
func TestSliceAt(t *testing.T) {
	items := []struct {
		data []byte
		tag  int
	}{{data: []byte("abc"), tag: 1}, {data: nil, tag: 2}, {data: make([]byte, 5, 9), tag: 3}}
	base := SliceAddr(items)
	stride := SliceAddr(items[1:]) - base
	for i, it := range items {
		got := SliceAt(base + uint64(i)*stride)
		if len(got) != len(it.data) || cap(got) != cap(it.data) || len(got) > 0 && &got[0] != &it.data[0] {
			t.Errorf("item %d: %p len %d cap %d, want %p len %d cap %d", i, got, len(got), cap(got), it.data, len(it.data), cap(it.data))
		}
	}
}
