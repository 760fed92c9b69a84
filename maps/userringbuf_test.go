package maps_test

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"testing"

	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

// drainAll drains m, copying each sample, the callback returning ret.
func drainAll(m maps.Map, ret uint64) ([][]byte, int64) {
	var got [][]byte
	n := m.(maps.UserRingBuffer).Drain(0, func(addr uint64, size uint32) uint64 {
		got = append(got, append([]byte(nil), mem.Bytes(addr, uint64(size))...))
		return ret
	})
	return got, n
}

func TestUserRingBuf(t *testing.T) {
	ps := os.Getpagesize()
	m := mustNew(t, maps.Spec{Type: maps.UserRingBuf, MaxEntries: uint32(ps)})
	w, err := maps.NewUserRingBufWriter(m)
	if err != nil {
		t.Fatal(err)
	}
	if got, n := drainAll(m, 0); n != 0 || len(got) != 0 {
		t.Fatalf("empty ring drained %d: %q", n, got)
	}
	for _, s := range []string{"a", "hello, ring", ""} {
		if err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := w.Reserve(5)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Discard(); err != nil {
		t.Fatal(err)
	}
	if err := d.Submit(); !errors.Is(err, maps.EINVAL) {
		t.Errorf("submit after discard: %v, want EINVAL", err)
	}
	busy, err := w.Reserve(3)
	if err != nil {
		t.Fatal(err)
	}
	copy(busy.Data, "xyz")
	// 16 + 24 + 8 + 16 + 16 bytes taken.
	if w.Free() != ps-80 {
		t.Errorf("free %d, want %d", w.Free(), ps-80)
	}
	// The callback stopping after the first sample: one sample counted.
	got, n := drainAll(m, 1)
	if n != 1 || len(got) != 1 || string(got[0]) != "a" {
		t.Fatalf("drain stopping at once: %d %q", n, got)
	}
	// The discarded sample is skipped, the busy one holds back the rest.
	got, n = drainAll(m, 0)
	if n != 2 || len(got) != 2 || string(got[0]) != "hello, ring" || len(got[1]) != 0 {
		t.Fatalf("drain: %d %q", n, got)
	}
	if err := busy.Submit(); err != nil {
		t.Fatal(err)
	}
	got, n = drainAll(m, 0)
	if n != 1 || string(got[0]) != "xyz" {
		t.Fatalf("drain after submit: %d %q", n, got)
	}
	if w.Free() != ps {
		t.Errorf("free %d after draining everything, want %d", w.Free(), ps)
	}
	if n := m.(maps.UserRingBuffer).Drain(4, nil); n != -int64(maps.EINVAL) {
		t.Errorf("drain flags 4: %d, want -EINVAL", n)
	}
}

func TestUserRingBuf_Limits(t *testing.T) {
	ps := os.Getpagesize()
	m := mustNew(t, maps.Spec{Type: maps.UserRingBuf, MaxEntries: uint32(ps)})
	w, err := maps.NewUserRingBufWriter(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		size int
		want maps.Errno
	}{
		{-1, maps.E2BIG},
		{ps - 7, maps.E2BIG}, // 8-byte header: the record is larger than the ring
		{maps.DynptrMaxSize + 1, maps.E2BIG},
		{math.MaxInt, maps.E2BIG},
	} {
		if _, err := w.Reserve(tc.size); !errors.Is(err, tc.want) {
			t.Errorf("reserve %d: %v, want %v", tc.size, err, tc.want)
		}
	}
	// A record of the whole ring fits once; then nothing fits.
	s, err := w.Reserve(ps - 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Reserve(0); !errors.Is(err, maps.ENOSPC) {
		t.Errorf("reserve in a full ring: %v, want ENOSPC", err)
	}
	s.Data[0], s.Data[ps-9] = 1, 2
	if err := s.Submit(); err != nil {
		t.Fatal(err)
	}
	got, n := drainAll(m, 0)
	if n != 1 || len(got[0]) != ps-8 || got[0][0] != 1 || got[0][ps-9] != 2 {
		t.Fatalf("drain of a full ring: %d", n)
	}
	// Samples wrap past the end and stay contiguous.
	for i := range 3 * ps / 1000 {
		b := make([]byte, 1000)
		b[0], b[999] = byte(i), byte(i+1)
		if err := w.Write(b); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		got, n := drainAll(m, 0)
		if n != 1 || got[0][0] != byte(i) || got[0][999] != byte(i+1) {
			t.Fatalf("sample %d read back wrong", i)
		}
	}
}

// TestUserRingBuf_Corrupt: a header written over (as an unverified
// program may) makes Drain fail as __bpf_user_ringbuf_peek does, without
// reading outside the ring.
func TestUserRingBuf_Corrupt(t *testing.T) {
	ps := os.Getpagesize()
	for _, tc := range []struct {
		name string
		hdr  uint32
		want maps.Errno
	}{
		{"longer than produced", 100, maps.EINVAL},
		{"busy cleared, huge", 0x3fffffff, maps.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustNew(t, maps.Spec{Type: maps.UserRingBuf, MaxEntries: uint32(ps)})
			w, _ := maps.NewUserRingBufWriter(m)
			if err := w.Write([]byte("abcd")); err != nil {
				t.Fatal(err)
			}
			data := m.Regions()[0].Data
			binary.NativeEndian.PutUint32(data, tc.hdr)
			if _, n := drainAll(m, 0); n != -int64(tc.want) {
				t.Errorf("drain: %d, want -%v", n, tc.want)
			}
		})
	}
}

func TestUserRingBuf_WrongMap(t *testing.T) {
	m := mustNew(t, maps.Spec{Type: maps.RingBuf, MaxEntries: uint32(os.Getpagesize())})
	if _, err := maps.NewUserRingBufWriter(m); err == nil {
		t.Error("a writer for a BPF ring buffer")
	}
	u := mustNew(t, maps.Spec{Type: maps.UserRingBuf, MaxEntries: uint32(os.Getpagesize())})
	if err := u.Lookup(nil, nil); !errors.Is(err, maps.ENOTSUPP) {
		t.Errorf("lookup: %v", err)
	}
	w, _ := maps.NewUserRingBufWriter(u)
	s, _ := w.Reserve(4)
	u.Close()
	if err := s.Submit(); !errors.Is(err, maps.EBADF) {
		t.Errorf("submit after close: %v, want EBADF", err)
	}
	if _, err := w.Reserve(4); !errors.Is(err, maps.EBADF) {
		t.Errorf("reserve after close: %v, want EBADF", err)
	}
}
