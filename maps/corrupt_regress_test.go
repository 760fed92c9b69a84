package maps

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// Regression tests for what the FuzzCorrupt fuzzers and issue 6's review
// found: each writes one kind of corruption where the map keeps it (so
// these tests live in the package) and checks that the map answers with
// ErrCorrupt or goes on working, without a hang, a panic or a lock left
// held. Before the fix, each of them hung or panicked.

// bounded runs fn and fails the test if it has not returned after a
// minute: a hang is a crash that names the test, not a stuck test binary.
func bounded(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(time.Minute):
			panic(fmt.Sprintf("%s: map operations hang", t.Name()))
		}
	}()
	defer close(done)
	fn()
}

func mustMap(t *testing.T, spec Spec) Map {
	t.Helper()
	m, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func key4(v uint32) []byte { k := make([]byte, 4); native.PutUint32(k, v); return k }

func wantCorrupt(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("%s: %v, want ErrCorrupt", what, err)
	}
}

func wantNil(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// sameBucket returns n keys (4-byte) that hash to one bucket of m, and
// one that hashes to another.
func sameBucket(m *hashMap, n int) (keys [][]byte, other []byte) {
	want := m.hashOf(key4(0)) & m.mask
	for v := uint32(0); len(keys) < n || other == nil; v++ {
		k := key4(v)
		if m.hashOf(k)&m.mask == want {
			if len(keys) < n {
				keys = append(keys, k)
			}
		} else if other == nil {
			other = k
		}
	}
	return keys, other
}

// index returns the element holding key.
func (m *hashMap) index(t *testing.T, key []byte) uint32 {
	t.Helper()
	i, ok, err := m.find(key, m.hashOf(key))
	if !ok || err != nil {
		t.Fatalf("key %x: %v %v", key, ok, err)
	}
	return i
}

// TestCorrupt_HashChainLoop: a chain whose element links back to itself
// made hashMap.find loop for ever (with the bucket lock held, for updates)
// and Map.All never end.
func TestCorrupt_HashChainLoop(t *testing.T) {
	for _, typ := range []Type{Hash, PerCPUHash, LRUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			m := mustMap(t, Spec{Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 2}).(*hashMap)
			keys, other := sameBucket(m, 3)
			v := make([]byte, m.goValueSize())
			wantNil(t, "update", m.Update(keys[0], v, UpdateAny))
			wantNil(t, "update", m.Update(other, v, UpdateAny))
			a := m.index(t, keys[0])
			m.storeNext(m.elemOff(a), a) // a → a → a ...
			bounded(t, func() {
				wantCorrupt(t, "lookup", m.Lookup(keys[1], v))
				wantCorrupt(t, "update", m.Update(keys[1], v, UpdateAny))
				wantCorrupt(t, "delete", m.Delete(keys[1]))
				wantCorrupt(t, "next key", m.NextKey(keys[0], make([]byte, 4)))
				if a := m.LookupElem(0, keys[2]); a != 0 {
					t.Errorf("LookupElem of a key behind the loop: %#x", a)
				}
				it := Iterate(m)
				for range it.All() {
				}
				wantCorrupt(t, "iterate", it.Err())
				_, err := WalkElems(m, 0, func([]byte, uint64) (bool, error) { return false, nil })
				wantCorrupt(t, "walk", err)
				// The bucket lock was released on every error path, and
				// other buckets work.
				wantCorrupt(t, "update again", m.Update(keys[1], v, UpdateAny))
				wantNil(t, "update elsewhere", m.Update(other, v, UpdateAny))
				wantNil(t, "lookup elsewhere", m.Lookup(other, v))
			})
		})
	}
}

// TestCorrupt_HashLinkPastElements: a link to an element index past the
// table made the walks index past the mapping.
func TestCorrupt_HashLinkPastElements(t *testing.T) {
	m := mustMap(t, Spec{Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 2}).(*hashMap)
	keys, _ := sameBucket(m, 2)
	v := make([]byte, 8)
	wantNil(t, "update", m.Update(keys[0], v, UpdateAny))
	b := m.hashOf(keys[0]) & m.mask
	for _, link := range []uint32{m.total, m.total + 1000, 0x7fffffff} {
		m.storeNext(m.bucketOff(b), link)
		bounded(t, func() {
			wantCorrupt(t, "lookup", m.Lookup(keys[1], v))
			wantCorrupt(t, "update", m.Update(keys[1], v, UpdateAny))
			wantCorrupt(t, "next key", m.NextKey(nil, make([]byte, 4)))
			_, err := LookupBatch(m, &BatchCursor{}, make([]byte, 64), make([]byte, 128))
			wantCorrupt(t, "lookup batch", err)
		})
	}
}

// TestCorrupt_HashLockWords: the words where bucket and map locks used to
// live, written "held", made every later update of the bucket spin for
// ever. Locks are Go memory now: the words mean nothing.
func TestCorrupt_HashLockWords(t *testing.T) {
	m := mustMap(t, Spec{Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 2}).(*hashMap)
	for b := uint32(0); uint64(b) < m.nb; b++ {
		native.PutUint32(m.mapping[m.bucketOff(b)+4:], 1)
	}
	native.PutUint32(m.mapping[60:], 1)
	bounded(t, func() {
		for k := range uint32(8) {
			wantNil(t, "update", m.Update(key4(k), make([]byte, 8), UpdateAny))
		}
		for k := range uint32(8) {
			wantNil(t, "delete", m.Delete(key4(k)))
		}
	})
}

// TestCorrupt_HashCounts: the element count and the free list lived in
// the header, where a write could make a map with room answer E2BIG for
// ever, or hand one element to two keys. They are Go memory now; writing
// over the whole header changes nothing.
func TestCorrupt_HashCounts(t *testing.T) {
	m := mustMap(t, Spec{Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 2}).(*hashMap)
	v := make([]byte, 8)
	for k := range uint32(8) {
		wantNil(t, "update", m.Update(key4(k), v, UpdateAny))
	}
	for o := 64; o < headerSize; o++ {
		m.mapping[o] = 0xff
	}
	if err := m.Update(key4(100), v, UpdateAny); !errors.Is(err, E2BIG) {
		t.Fatalf("update of a full map: %v, want E2BIG", err)
	}
	for k := range uint32(8) {
		wantNil(t, "delete", m.Delete(key4(k)))
	}
	for k := range uint32(8) {
		wantNil(t, "update", m.Update(key4(10+k), v, UpdateAny))
	}
	seen := map[uint32]bool{}
	for k := range uint32(8) {
		i := m.index(t, key4(10+k))
		if seen[i] {
			t.Fatalf("element %d holds two keys", i)
		}
		seen[i] = true
	}
}

// TestCorrupt_HashCutChain: a bucket head written to its own terminator
// cuts its elements off; they stayed counted, and the map answered E2BIG
// with room to spare, for ever (capacity leaked). Now a full map is
// audited and answers ErrCorrupt.
func TestCorrupt_HashCutChain(t *testing.T) {
	for _, typ := range []Type{Hash, PerCPUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			m := mustMap(t, Spec{Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 2}).(*hashMap)
			v := make([]byte, m.goValueSize())
			wantNil(t, "update", m.Update(key4(0), v, UpdateAny))
			b := m.hashOf(key4(0)) & m.mask
			m.storeNext(m.bucketOff(b), nullsBit|b)
			bounded(t, func() {
				var err error
				for k := uint32(1); err == nil && k < 100; k++ {
					err = m.Update(key4(k), v, UpdateAny)
				}
				wantCorrupt(t, "update of a map with an element cut off", err)
			})
		})
	}
}

// TestCorrupt_HashFreeElementLinked: a link to a free element made a
// delete free it again, so that it could later hold two keys.
func TestCorrupt_HashFreeElementLinked(t *testing.T) {
	m := mustMap(t, Spec{Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 2}).(*hashMap)
	keys, _ := sameBucket(m, 2)
	v := make([]byte, 8)
	wantNil(t, "update", m.Update(keys[0], v, UpdateAny))
	a := m.index(t, keys[0])
	b := m.hashOf(keys[0]) & m.mask
	x := m.total - 1 // never used
	e := m.elemOff(x)
	native.PutUint32(m.mapping[e+4:], m.hashOf(keys[1]))
	copy(m.mapping[e+8:], keys[1])
	m.storeNext(e, nullsBit|b)
	m.storeNext(m.elemOff(a), x)
	bounded(t, func() {
		wantCorrupt(t, "delete of the free element", m.Delete(keys[1]))
		wantCorrupt(t, "replace of the free element", m.Update(keys[1], v, UpdateExist))
		if c := m.count.Load(); c != 1 {
			t.Errorf("count %d, want 1", c)
		}
	})
}

// TestCorrupt_HashKeyRehash: an element whose key no longer hashes to its
// bucket made NextKey(NextKey(k)) start over from the first bucket, so a
// loop over NextKey never ended.
func TestCorrupt_HashKeyRehash(t *testing.T) {
	m := mustMap(t, Spec{Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 2}).(*hashMap)
	v := make([]byte, 8)
	for k := range uint32(4) {
		wantNil(t, "update", m.Update(key4(k), v, UpdateAny))
	}
	i := m.index(t, key4(2))
	copy(m.mapping[m.elemOff(i)+8:], key4(77))
	bounded(t, func() {
		var prev []byte
		next := make([]byte, 4)
		var err error
		for n := 0; err == nil; n++ {
			if n > 8 {
				t.Fatal("NextKey loop does not end")
			}
			if err = m.NextKey(prev, next); err == nil {
				prev = append(prev[:0], next...)
			}
		}
		wantCorrupt(t, "next key", err)
	})
}

// TestCorrupt_LRUChainLoop: an LRU map whose chain loops before the
// element to evict: updates fail with ErrCorrupt and release both the
// list and the bucket locks.
func TestCorrupt_LRUChainLoop(t *testing.T) {
	m := mustMap(t, Spec{Type: LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 2}).(*hashMap)
	keys, _ := sameBucket(m, 2)
	b := m.hashOf(keys[0]) & m.mask
	v := make([]byte, 8)
	// keys[0] is the least recently used, evicted next; keys[1], in
	// front of it in the chain, loops.
	wantNil(t, "update", m.Update(keys[0], v, UpdateAny))
	var fresh [][]byte
	for k := uint32(1000); len(fresh) < 9; k++ {
		if m.hashOf(key4(k))&m.mask != b {
			fresh = append(fresh, key4(k))
		}
	}
	for _, k := range fresh[:6] {
		wantNil(t, "update", m.Update(k, v, UpdateAny))
	}
	wantNil(t, "update", m.Update(keys[1], v, UpdateAny))
	a := m.index(t, keys[1])
	m.storeNext(m.elemOff(a), a)
	bounded(t, func() {
		wantCorrupt(t, "update evicting behind a looping chain", m.Update(fresh[6], v, UpdateAny))
		wantCorrupt(t, "again", m.Update(fresh[7], v, UpdateAny))
		if n := m.count.Load(); n != 8 {
			t.Errorf("count %d, want 8", n)
		}
		wantNil(t, "lookup elsewhere", m.Lookup(fresh[0], v))
	})
}

// TestCorrupt_LRUHotState: the LRU's touched stack and list links were in
// the mapping; written over, a drain indexed past its sort buffer (lru.go
// drain index panic). They are Go memory now, and what lookups still
// write in the elements (tick, dirty) can only misorder recency.
func TestCorrupt_LRUHotState(t *testing.T) {
	for _, flags := range []uint32{0, FlagNoCommonLRU} {
		m := mustMap(t, Spec{Type: LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 2, Flags: flags}).(*hashMap)
		v := make([]byte, 8)
		bounded(t, func() {
			for round := range uint32(200) {
				for k := range uint32(12) {
					m.LookupElem(int(k%2), key4(k))
				}
				for i := range m.total {
					h := m.lru.hot(i)
					mem.Store64(h+hotTick, uint64(round*7919+i*104729))
					mem.AtomicStore32(h+hotDirty, (round+i)%2)
				}
				wantNil(t, "update", m.lru.update(key4(round%16), v, m.hashOf(key4(round%16)), UpdateAny, int(round%2)))
			}
			n := 0
			for range All(m) {
				n++
			}
			if n > 8 || uint64(n) != m.count.Load() {
				t.Errorf("%d keys, count %d, max_entries 8", n, m.count.Load())
			}
		})
	}
}

// trie returns a trie of 8-byte keys (4 bytes of data) holding 10.0.0.0/8,
// 10.1.0.0/16 and 10.2.0.0/16.
func trie(t *testing.T) *lpmTrie {
	t.Helper()
	m := mustMap(t, Spec{Type: LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 8, Flags: FlagNoPrealloc}).(*lpmTrie)
	for _, p := range [][2]uint32{{8, 0x0a000000}, {16, 0x0a010000}, {16, 0x0a020000}} {
		wantNil(t, "update", m.Update(lpmKey(p[0], p[1]), make([]byte, 8), UpdateAny))
	}
	return m
}

func lpmKey(plen, addr uint32) []byte {
	k := key4(plen)
	return append(k, byte(addr>>24), byte(addr>>16), byte(addr>>8), byte(addr))
}

// TestCorrupt_LPMPrefixLen: a node's prefix length written past the key's
// bits made the descent index past the key (lpm.go prefixlen slice bounds
// panic).
func TestCorrupt_LPMPrefixLen(t *testing.T) {
	for _, plen := range []uint32{33, 0x7fffffff, 0xffffffff} {
		m := trie(t)
		for n := uint32(1); n < m.bump; n++ {
			native.PutUint32(m.mapping[m.off(n)+8:], plen)
		}
		bounded(t, func() {
			v := make([]byte, 8)
			wantCorrupt(t, "lookup", m.Lookup(lpmKey(32, 0x0a010203), v))
			wantCorrupt(t, "update", m.Update(lpmKey(24, 0x0a010200), v, UpdateAny))
			wantCorrupt(t, "delete", m.Delete(lpmKey(16, 0x0a010000)))
			wantCorrupt(t, "next key", m.NextKey(nil, make([]byte, 8)))
			if a := m.LookupElem(0, lpmKey(32, 0x0a010203)); a != 0 {
				t.Errorf("LookupElem %#x", a)
			}
		})
	}
}

// TestCorrupt_LPMChildLoop: a child link back to the root made descents
// and NextKey loop.
func TestCorrupt_LPMChildLoop(t *testing.T) {
	m := trie(t)
	root := m.root.Load()
	for n := uint32(1); n < m.bump; n++ {
		if n != root && m.used[n] {
			m.setChild(n, 0, root)
			m.setChild(n, 1, root)
		}
	}
	bounded(t, func() {
		v := make([]byte, 8)
		wantCorrupt(t, "lookup", m.Lookup(lpmKey(32, 0x0a010203), v))
		wantCorrupt(t, "update", m.Update(lpmKey(24, 0x0a010200), v, UpdateAny))
		var prev []byte
		next := make([]byte, 8)
		var err error
		for n := 0; err == nil; n++ {
			if n > 8 {
				t.Fatal("NextKey loop does not end")
			}
			if err = m.NextKey(prev, next); err == nil {
				prev = append(prev[:0], next...)
			}
		}
		wantCorrupt(t, "next key", err)
	})
}

// TestCorrupt_LPMCutSubtree: a child link written to 0 cuts prefixes off
// the trie; they stayed counted, and the trie answered ENOSPC with room to
// spare. Now a full trie is audited and answers ErrCorrupt.
func TestCorrupt_LPMCutSubtree(t *testing.T) {
	m := trie(t)
	root := m.root.Load()
	m.setChild(root, 0, 0)
	m.setChild(root, 1, 0)
	bounded(t, func() {
		var err error
		for i := uint32(0); err == nil && i < 100; i++ {
			err = m.Update(lpmKey(24, 0x0b000000+i<<8), make([]byte, 8), UpdateAny)
		}
		wantCorrupt(t, "update of a trie with prefixes cut off", err)
	})
}

// TestCorrupt_RingBufRecordHeader: a record header written to claim more
// than the ring holds made ringBuf.Reserve loop for ever with the ring's
// lock held. Now that reservation fails with ErrCorrupt, the records up to
// the producer are given up, and the ring works again.
func TestCorrupt_RingBufRecordHeader(t *testing.T) {
	m := mustMap(t, Spec{Type: RingBuf, MaxEntries: 4096}).(*ringBuf)
	r, err := NewRingBufReader(m)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	read := func() ([]byte, error) {
		r.SetDeadline(time.Now().Add(time.Second))
		rec, err := r.Read()
		return rec.RawSample, err
	}
	bounded(t, func() {
		for _, hl := range []uint32{0x3fffffff, 4096, 4089} {
			wantNil(t, "output", m.Output([]byte("first"), 0))
			native.PutUint32(m.mapping[m.dataOff+*m.pending&m.mask:], hl)
			wantCorrupt(t, "output after a header was written over", m.Output([]byte("second"), 0))
			wantNil(t, "output", m.Output([]byte("third"), 0))
			_, err := read()
			wantCorrupt(t, "read", err)
			wantNil(t, "output", m.Output([]byte("fourth"), 0))
			if got, err := read(); err != nil || string(got) != "fourth" {
				t.Errorf("read %q, %v; want fourth", got, err)
			}
		}
		if _, err := read(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read of an empty ring: %v", err)
		}
	})
}

// TestCorrupt_QueueIndices: head and tail lived in the header, where a
// write sent pushes and pops past the slots or made the queue spin on its
// lock word. They are Go memory now: a queue and a stack work on.
func TestCorrupt_QueueIndices(t *testing.T) {
	for _, typ := range []Type{Queue, Stack} {
		m := mustMap(t, Spec{Type: typ, ValueSize: 8, MaxEntries: 4}).(*queueMap)
		for o := 56; o < headerSize; o++ {
			m.mapping[o] = 0xff
		}
		bounded(t, func() {
			v := make([]byte, 8)
			for i := range byte(4) {
				v[0] = i
				wantNil(t, "push", m.PushElem(v, UpdateAny))
			}
			if err := m.PushElem(v, UpdateAny); !errors.Is(err, E2BIG) {
				t.Errorf("push into a full %s: %v", typ, err)
			}
			for i := range byte(4) {
				wantNil(t, "pop", m.PopElem(v))
				want := i
				if typ == Stack {
					want = 3 - i
				}
				if v[0] != want {
					t.Errorf("%s pop %d: %d, want %d", typ, i, v[0], want)
				}
			}
		})
	}
}

// TestCorrupt_SlotMaps: slots of redirect maps and map-in-maps written
// over: what no update stores is no entry, and map-in-map lookups give
// only maps that were stored.
func TestCorrupt_SlotMaps(t *testing.T) {
	dev := mustMap(t, Spec{Type: DevMap, KeySize: 4, ValueSize: 8, MaxEntries: 4}).(*slotMap)
	wantNil(t, "update", dev.Update(key4(1), append(key4(7), key4(0)...), UpdateAny))
	mem.AtomicStore64(dev.slotAddr(1), 7|42<<32) // a program id waggle never stores
	wantCorrupt(t, "devmap lookup", dev.Lookup(key4(1), make([]byte, 8)))
	if _, ok := dev.RedirectTarget(1); ok {
		t.Error("devmap redirect to an entry with a program")
	}
	if dev.LookupElem(0, key4(1)) != 0 {
		t.Error("devmap LookupElem of a corrupt slot")
	}

	cpu := mustMap(t, Spec{Type: CPUMap, KeySize: 4, ValueSize: 4, MaxEntries: 4, CPUs: 2}).(*slotMap)
	mem.AtomicStore64(cpu.slotAddr(3), 100) // CPU 3 of 2
	wantCorrupt(t, "cpumap lookup", cpu.Lookup(key4(3), make([]byte, 4)))

	dh := mustMap(t, Spec{Type: DevMapHash, KeySize: 4, ValueSize: 8, MaxEntries: 4, CPUs: 2}).(*devHash)
	wantNil(t, "update", dh.Update(key4(5), append(key4(9), key4(0)...), UpdateAny))
	mem.AtomicStore64(dh.hdr+dh.valueOff(dh.index(t, key4(5))), 0)
	wantCorrupt(t, "devmap hash lookup", dh.Lookup(key4(5), make([]byte, 8)))
	if _, ok := dh.RedirectTarget(5); ok {
		t.Error("devmap hash redirect to ifindex 0")
	}

	inner := mustMap(t, Spec{Type: Array, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	is := inner.Spec()
	aom := mustMap(t, Spec{Type: ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 4, InnerMap: &is}).(*fdArray)
	wantNil(t, "set inner", aom.SetInner(key4(0), inner))
	mem.AtomicStore64(aom.slotAddr(0), 0xdead)
	if got := aom.LookupElem(0, key4(0)); got != inner.Handle() {
		t.Errorf("array of maps LookupElem %#x, want the inner map %#x", got, inner.Handle())
	}
	hom := mustMap(t, Spec{Type: HashOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 4, InnerMap: &is, CPUs: 2}).(*hashMap)
	wantNil(t, "set inner", hom.SetInner(key4(0), inner))
	mem.AtomicStore64(hom.hdr+hom.valueOff(hom.index(t, key4(0))), 0xdead)
	if got := hom.LookupElem(0, key4(0)); got != 0 {
		t.Errorf("hash of maps LookupElem of a handle never stored: %#x", got)
	}
}

// TestCorrupt_PerfRing: a perf ring's record written over is dropped with
// ErrCorrupt, and the ring works on.
func TestCorrupt_PerfRing(t *testing.T) {
	m := mustMap(t, Spec{Type: PerfEventArray, KeySize: 4, ValueSize: 4, MaxEntries: 1, CPUs: 1}).(*perfArray)
	r, err := NewPerfReader(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	read := func() (PerfRecord, error) {
		r.SetDeadline(time.Now().Add(time.Second))
		return r.Read()
	}
	bounded(t, func() {
		wantNil(t, "output", m.Output(0, PerfCurrentCPU, []byte("first")))
		native.PutUint16(r.rings[0].data[6:], 0xffff) // the record's size
		_, err := read()
		wantCorrupt(t, "read", err)
		wantNil(t, "output", m.Output(0, PerfCurrentCPU, []byte("second")))
		if rec, err := read(); err != nil || string(rec.RawSample[:6]) != "second" {
			t.Errorf("read %q, %v", rec.RawSample, err)
		}
	})
}

// TestWalkElems_CallbackReinserts: a for_each callback that deletes the
// element it visits and adds its key back gets the same element back
// (free elements are reused last in, first out), at the head of the chain
// behind the walk: two such elements send the walk back and forth without
// end. It stops with ErrIterationAborted, and a chain that really loops
// is told apart (TestCorrupt_HashChainLoop).
func TestWalkElems_CallbackReinserts(t *testing.T) {
	for _, typ := range []Type{Hash, LRUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			m := mustMap(t, Spec{Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 1}).(*hashMap)
			keys, _ := sameBucket(m, 2)
			v := make([]byte, 8)
			for _, k := range keys {
				wantNil(t, "update", m.Update(k, v, UpdateAny))
			}
			bounded(t, func() {
				n, err := WalkElems(m, 0, func(k []byte, _ uint64) (bool, error) {
					k = append([]byte(nil), k...)
					wantNil(t, "delete", m.DeleteElem(0, k))
					wantNil(t, "update", m.UpdateElem(0, k, v, UpdateAny))
					return false, nil
				})
				if !errors.Is(err, ErrIterationAborted) || n > walkLimit(uint64(m.total)) {
					t.Errorf("walk: %d calls, %v", n, err)
				}
			})
		})
	}
}

// TestCorrupt_RingBufHeaderWords: the producers' lock and positions are
// header words (native code takes them too). A lock word holding anything
// but 0 or rbLocked, or rbLocked with no producer in the section, and
// positions more than the ring apart fail one call with ErrCorrupt and
// are reset: the ring works on.
func TestCorrupt_RingBufHeaderWords(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(m *ringBuf)
		read  bool // the reader meets it, not the producer
	}{
		{"lock word", func(m *ringBuf) { m.lock.Store(1) }, false},
		{"lock left held", func(m *ringBuf) { m.lock.Store(rbLocked) }, false},
		{"producer behind pending", func(m *ringBuf) { *m.pending = m.prod.Load() + 64 }, false},
		{"producer far ahead", func(m *ringBuf) { m.prod.Store(m.prod.Load() + 1<<40) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustMap(t, Spec{Type: RingBuf, MaxEntries: 4096}).(*ringBuf)
			r, err := NewRingBufReader(m)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			read := func() ([]byte, error) {
				r.SetDeadline(time.Now().Add(time.Second))
				rec, err := r.Read()
				return rec.RawSample, err
			}
			bounded(t, func() {
				wantNil(t, "output", m.Output([]byte("first"), 0))
				if got, err := read(); err != nil || string(got) != "first" {
					t.Fatalf("read %q, %v; want first", got, err)
				}
				tc.write(m)
				if tc.read {
					_, err := read()
					wantCorrupt(t, "read", err)
				}
				wantCorrupt(t, "output after a header word was written over", m.Output([]byte("second"), 0))
				wantNil(t, "output", m.Output([]byte("third"), 0))
				if got, err := read(); err != nil || string(got) != "third" {
					t.Errorf("read %q, %v; want third", got, err)
				}
			})
		})
	}
}
