package maps_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

// FuzzSpec: any spec gives an error or a working map, never a panic.
func FuzzSpec(f *testing.F) {
	f.Add(uint32(1), uint32(4), uint32(8), uint32(16), uint32(0), uint64(0), uint8(2))
	f.Add(uint32(11), uint32(8), uint32(4), uint32(16), uint32(1), uint64(0), uint8(1))
	f.Add(uint32(27), uint32(0), uint32(0), uint32(4096), uint32(0), uint64(0), uint8(1))
	f.Add(uint32(30), uint32(0), uint32(4), uint32(100), uint32(0), uint64(3), uint8(1))
	f.Add(uint32(13), uint32(4), uint32(4), uint32(10), uint32(0), uint64(0), uint8(1))
	f.Add(uint32(10), uint32(4), uint32(4), uint32(10), uint32(2), uint64(0), uint8(3))
	f.Fuzz(func(t *testing.T, typ, ks, vs, entries, flags uint32, extra uint64, cpus uint8) {
		if entries > 1<<16 {
			entries %= 1 << 16 // keep what a successful New touches small
		}
		spec := maps.Spec{Type: maps.Type(typ), KeySize: ks, ValueSize: vs, MaxEntries: entries, Flags: flags, MapExtra: extra, CPUs: int(cpus % 9)}
		if typ%7 == 0 {
			spec.InnerMap = &maps.Spec{Type: maps.Type(typ % 34), KeySize: ks % 9, ValueSize: vs % 17, MaxEntries: entries % 5, Flags: flags & 0xff}
			spec.Type = []maps.Type{maps.ArrayOfMaps, maps.HashOfMaps}[typ%2]
		}
		m, err := maps.New(spec)
		if err != nil {
			var e maps.Errno
			if !errors.As(err, &e) {
				t.Fatalf("error without errno: %v", err)
			}
			return
		}
		defer m.Close()
		s := m.Spec()
		if uint64(s.KeySize)+uint64(s.ValueSize) > 1<<20 {
			return
		}
		k, v := make([]byte, s.KeySize), make([]byte, int(s.ValueSize)*max(1, s.CPUs)*2)
		_ = m.Update(k, v[:s.ValueSize], 0)
		_ = m.Lookup(k, v[:s.ValueSize])
		_ = m.NextKey(nil, k)
		_ = m.Delete(k)
		_ = m.LookupAndDelete(k, v[:s.ValueSize])
		if e, ok := m.(maps.Elems); ok {
			e.LookupElem(0, k)
			_ = e.UpdateElem(0, k, v[:s.ValueSize], 0)
			_ = e.DeleteElem(0, k)
		}
		for range maps.All(m) {
		}
		_ = m.Regions()
	})
}

// FuzzOps: any sequence of operations, with keys, values and flags of any
// size, gives errors or results, never a panic; hash maps and tries keep
// their contents consistent with what succeeded.
func FuzzOps(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{3, 0, 8, 1, 2, 0, 0, 0, 32, 10, 0, 0, 1, 1, 0, 24, 10, 0, 0})
	f.Add([]byte{5, 0, 1, 0, 0, 0, 0, 3, 0, 2, 4})
	f.Fuzz(func(t *testing.T, ops []byte) {
		tm := time.AfterFunc(20*time.Second, func() { panic(fmt.Sprintf("operations hang: %x", ops)) })
		runOps(t, ops)
		tm.Stop()
	})
}

var opsSpecs = []maps.Spec{
	{Type: maps.Array, KeySize: 4, ValueSize: 4, MaxEntries: 4},
	{Type: maps.PerCPUArray, KeySize: 4, ValueSize: 4, MaxEntries: 4, CPUs: 2},
	{Type: maps.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 4, CPUs: 2},
	{Type: maps.LPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 4, Flags: maps.FlagNoPrealloc},
	{Type: maps.LRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 4, CPUs: 2},
	{Type: maps.Queue, ValueSize: 4, MaxEntries: 4},
	{Type: maps.Stack, ValueSize: 4, MaxEntries: 4},
	{Type: maps.BloomFilter, ValueSize: 4, MaxEntries: 4},
	{Type: maps.LRUPerCPUHash, KeySize: 4, ValueSize: 4, MaxEntries: 4, CPUs: 2, Flags: maps.FlagNoCommonLRU},
	{Type: maps.DevMapHash, KeySize: 4, ValueSize: 8, MaxEntries: 4},
	{Type: maps.RingBuf, MaxEntries: 4096},
	{Type: maps.CPUMap, KeySize: 4, ValueSize: 4, MaxEntries: 4, CPUs: 2},
	{Type: maps.PerCPUHash, KeySize: 4, ValueSize: 4, MaxEntries: 4, CPUs: 2},
}

func runOps(t *testing.T, ops []byte) {
	if len(ops) == 0 {
		return
	}
	spec := opsSpecs[int(ops[0])%len(opsSpecs)]
	m, err := maps.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := m.Spec()
	vsize := int(s.ValueSize)
	if s.Type == maps.PerCPUArray || s.Type == maps.PerCPUHash || s.Type == maps.LRUPerCPUHash {
		vsize = 8 * s.CPUs
	}
	model := map[string]bool{}
	exact := s.Type == maps.Hash || s.Type == maps.PerCPUHash
	next := func(n int) []byte {
		if len(ops) < n {
			n = len(ops)
		}
		b := ops[:n]
		ops = ops[n:]
		return b
	}
	ops = ops[1:]
	for len(ops) > 0 {
		op := next(1)[0]
		size := int(op >> 4)
		if op&8 == 0 {
			size = int(s.KeySize)
		}
		key := append([]byte(nil), next(size)...)
		for len(key) < size {
			key = append(key, 0)
		}
		val := make([]byte, vsize)
		copy(val, next(2))
		flags := uint64(op>>4) % 6
		var err error
		switch op % 8 {
		case 0:
			err = m.Update(key, val, flags)
			if err == nil && len(key) == int(s.KeySize) {
				model[string(key)] = true
			}
		case 1:
			err = m.Lookup(key, val)
		case 2:
			err = m.Delete(key)
			if err == nil {
				delete(model, string(key))
			}
		case 3:
			err = m.NextKey(key, make([]byte, s.KeySize))
		case 4:
			err = m.LookupAndDelete(key, val)
			if err == nil {
				delete(model, string(key))
			}
		case 5:
			if e, ok := m.(maps.Elems); ok {
				if a := e.LookupElem(int(flags)%3, key); a != 0 {
					mem.Store8(a, 1) // programs write their values
				}
				err = e.UpdateElem(int(flags)%3, key, val[:s.ValueSize], flags)
				if err == nil {
					model[string(key)] = true
				}
			}
		case 6:
			if e, ok := m.(maps.Elems); ok {
				err = e.DeleteElem(0, key)
				if err == nil {
					delete(model, string(key))
				}
			} else if rb, ok := m.(maps.RingBuffer); ok {
				if a := rb.Reserve(uint64(len(key))); a != 0 {
					if flags&1 == 0 {
						_ = rb.Submit(a, flags)
					} else {
						_ = rb.Discard(a, flags)
					}
				}
				_ = rb.Output(key, flags)
				rb.Query(flags)
			}
		default:
			if q, ok := m.(maps.Values); ok {
				_ = q.PushElem(val[:s.ValueSize], flags)
				_ = q.PeekElem(val[:s.ValueSize])
				_ = q.PopElem(val[:s.ValueSize])
			}
			var c maps.BatchCursor
			_, _ = maps.LookupBatch(m, &c, make([]byte, int(s.KeySize)*2), make([]byte, vsize*2))
		}
		var e maps.Errno
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("error without errno: %v", err)
		}
	}
	if exact {
		n := 0
		for k := range maps.All(m) {
			if !model[string(k)] {
				t.Fatalf("key %x in the map, not in the model", k)
			}
			n++
		}
		if n != len(model) {
			t.Fatalf("%d keys, model has %d", n, len(model))
		}
	}
}
