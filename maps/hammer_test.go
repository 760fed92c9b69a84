package maps_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

// TestHammer runs programs on 8 goroutines (worker slots 0-7) against a
// shared hash, LRU hash, per-CPU hash and ring buffer while Go-side readers
// and writers use the same maps, then checks that nothing was lost or
// corrupted: counters add up exactly, per-CPU copies hold exactly what
// their CPU added, every ring buffer record arrives intact and in order
// unless it was counted as dropped, and the LRU map neither leaks nor
// overfills.
func TestHammer(t *testing.T) {
	const (
		workers  = 8
		counters = 64  // hash keys [0, 64): only ever incremented
		churn    = 192 // hash keys [64, 256): inserted, replaced, deleted
		magic    = 0x5eed5eed5eed5eed
	)
	rounds := 20000
	if testing.Short() {
		rounds = 2000
	}
	hash := mustNew(t, maps.Spec{Type: maps.Hash, KeySize: 8, ValueSize: 16, MaxEntries: 512, CPUs: workers})
	lru := mustNew(t, maps.Spec{Type: maps.LRUHash, KeySize: 8, ValueSize: 16, MaxEntries: 128, CPUs: workers})
	pcpu := mustNew(t, maps.Spec{Type: maps.PerCPUHash, KeySize: 8, ValueSize: 8, MaxEntries: 64, CPUs: workers})
	ring := mustNew(t, maps.Spec{Type: maps.RingBuf, MaxEntries: 1 << 16})
	he, le, pe := hash.(maps.Elems), lru.(maps.Elems), pcpu.(maps.Elems)
	rb := ring.(maps.RingBuffer)

	value := func(key, n uint64) []byte {
		v := binary.LittleEndian.AppendUint64(nil, n)
		return binary.LittleEndian.AppendUint64(v, key^magic)
	}
	var (
		increments  atomic.Uint64 // counter increments done by programs
		pcpuAdds    [workers][32]uint64
		submitted   [workers]atomic.Uint64
		dropped     atomic.Uint64
		recycled    atomic.Uint64
		corrupt     atomic.Value
		stop        atomic.Bool
		wg, readers sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		corrupt.CompareAndSwap(nil, fmtError(format, args...))
	}
	// checkValue: a value's second word names its key. An element deleted
	// and reused between a lookup and the read may name another key of
	// the same map (the kernel's preallocated maps behave so too); any
	// other content is corruption.
	checkValue := func(key uint64, v []byte, domain uint64) {
		if k := binary.LittleEndian.Uint64(v[8:]) ^ magic; k != key {
			if k < domain {
				recycled.Add(1)
				return
			}
			fail("value of key %d names key %#x", key, k)
		}
	}

	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			key := make([]byte, 8)
			for i := range rounds {
				// Hash: count, churn.
				k := uint64(r.IntN(counters))
				binary.LittleEndian.PutUint64(key, k)
				for {
					if a := he.LookupElem(w, key); a != 0 {
						mem.AtomicAdd64(a, 1)
						break
					}
					err := he.UpdateElem(w, key, value(k, 1), maps.UpdateNoExist)
					if err == nil {
						break
					}
					if !errors.Is(err, maps.EEXIST) {
						fail("create counter %d: %v", k, err)
						return
					}
				}
				increments.Add(1)
				k = counters + uint64(r.IntN(churn))
				binary.LittleEndian.PutUint64(key, k)
				switch r.IntN(4) {
				case 0:
					if a := he.LookupElem(w, key); a != 0 {
						checkValue(k, mem.Bytes(a, 16), counters+churn)
					}
				case 1, 2:
					if err := he.UpdateElem(w, key, value(k, uint64(i)), maps.UpdateAny); err != nil {
						fail("churn update: %v", err)
					}
				default:
					if err := he.DeleteElem(w, key); err != nil && !errors.Is(err, maps.ENOENT) {
						fail("churn delete: %v", err)
					}
				}

				// LRU: lookups refresh, updates evict.
				k = uint64(r.IntN(512))
				binary.LittleEndian.PutUint64(key, k)
				if a := le.LookupElem(w, key); a != 0 {
					checkValue(k, mem.Bytes(a, 16), 512)
				} else if err := le.UpdateElem(w, key, value(k, uint64(i)), maps.UpdateAny); err != nil {
					fail("lru update: %v", err)
				}

				// Per-CPU hash: each worker adds to its own copy.
				pk := uint64(r.IntN(32))
				binary.LittleEndian.PutUint64(key, pk)
				for {
					if a := pe.LookupElem(w, key); a != 0 {
						mem.Store64(a, mem.Load64(a)+1)
						break
					}
					err := pe.UpdateElem(w, key, binary.LittleEndian.AppendUint64(nil, 1), maps.UpdateNoExist)
					if err == nil {
						break
					}
					if !errors.Is(err, maps.EEXIST) {
						fail("per-CPU create: %v", err)
						return
					}
				}
				pcpuAdds[w][pk]++

				// Ring buffer: records of 16 to 80 bytes, some discarded.
				n := 16 + r.IntN(9)*8
				if r.IntN(3) == 0 {
					rec := make([]byte, n)
					binary.LittleEndian.PutUint64(rec, uint64(w)<<32|submitted[w].Load())
					fillPattern(rec[8:], rec[0])
					if err := rb.Output(rec, 0); errors.Is(err, maps.EAGAIN) {
						dropped.Add(1)
					} else if err != nil {
						fail("ringbuf output: %v", err)
					} else {
						submitted[w].Add(1)
					}
					continue
				}
				a := rb.Reserve(uint64(n))
				if a == 0 {
					dropped.Add(1)
					continue
				}
				rec := mem.Bytes(a, uint64(n))
				if r.IntN(10) == 0 {
					copy(rec, "discarded!")
					if err := rb.Discard(a, 0); err != nil {
						fail("discard: %v", err)
					}
					continue
				}
				binary.LittleEndian.PutUint64(rec, uint64(w)<<32|submitted[w].Load())
				fillPattern(rec[8:], rec[0])
				if err := rb.Submit(a, 0); err != nil {
					fail("submit: %v", err)
				}
				submitted[w].Add(1)
			}
		}()
	}

	// Go side: read and write the churn keys, read the counters, walk the
	// maps.
	for g := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r := rand.New(rand.NewPCG(uint64(g), 2))
			key, v := make([]byte, 8), make([]byte, 16)
			pv := make([]byte, 8*workers)
			for !stop.Load() {
				k := counters + uint64(r.IntN(churn))
				binary.LittleEndian.PutUint64(key, k)
				switch r.IntN(5) {
				case 0:
					if err := hash.Update(key, value(k, 7), maps.UpdateAny); err != nil {
						fail("go update: %v", err)
					}
				case 1:
					if err := hash.Delete(key); err != nil && !errors.Is(err, maps.ENOENT) {
						fail("go delete: %v", err)
					}
				case 2:
					if hash.Lookup(key, v) == nil {
						checkValue(k, v, counters+churn)
					}
				case 3:
					lk := uint64(r.IntN(512))
					binary.LittleEndian.PutUint64(key, lk)
					if lru.Lookup(key, v) == nil {
						checkValue(lk, v, 512)
					}
					if r.IntN(4) == 0 {
						_ = lru.Delete(key)
					}
				default:
					binary.LittleEndian.PutUint64(key, uint64(r.IntN(32)))
					_ = pcpu.Lookup(key, pv)
					for k, v := range maps.All(lru) {
						checkValue(binary.LittleEndian.Uint64(k), v, 512)
					}
					// A walk under concurrent updates can see a key
					// twice; the live count may not pass max_entries.
					if n := mem.Load64(lru.Handle() + 64); n > 128 {
						fail("LRU map holds %d keys, max 128", n)
					}
				}
			}
		}()
	}

	// The ring buffer reader, reading until the producers are done and a
	// deadline passes.
	var received [workers]uint64
	rd, err := maps.NewRingBufReader(ring)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	readers.Add(1)
	go func() {
		defer readers.Done()
		var rec maps.RingBufRecord
		for {
			if err := rd.ReadInto(&rec); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					return
				}
				fail("read: %v", err)
				return
			}
			id := binary.LittleEndian.Uint64(rec.RawSample)
			w, seq := id>>32, id&0xffffffff
			if w >= workers || seq != received[w] {
				fail("record %#x out of order: worker %d expected %d", id, w, received[w])
				return
			}
			if !checkPattern(rec.RawSample[8:], rec.RawSample[0]) {
				fail("record %#x corrupted: %x", id, rec.RawSample)
				return
			}
			received[w]++
		}
	}()

	wg.Wait()
	stop.Store(true)
	rd.SetDeadline(time.Now().Add(200 * time.Millisecond))
	readers.Wait()
	if err := corrupt.Load(); err != nil {
		t.Fatal(err)
	}

	// Counters add up.
	var sum uint64
	v := make([]byte, 16)
	key := make([]byte, 8)
	for k := range uint64(counters) {
		binary.LittleEndian.PutUint64(key, k)
		if err := hash.Lookup(key, v); err != nil {
			t.Fatalf("counter %d: %v", k, err)
		}
		sum += binary.LittleEndian.Uint64(v)
	}
	if sum != increments.Load() {
		t.Errorf("counters sum to %d, programs incremented %d times", sum, increments.Load())
	}
	// Per-CPU copies hold exactly their CPU's adds.
	pv := make([]byte, 8*workers)
	for k := range uint64(32) {
		binary.LittleEndian.PutUint64(key, k)
		if err := pcpu.Lookup(key, pv); err != nil {
			t.Fatalf("per-CPU key %d: %v", k, err)
		}
		for w := range workers {
			if got := binary.LittleEndian.Uint64(pv[8*w:]); got != pcpuAdds[w][k] {
				t.Errorf("per-CPU key %d CPU %d: %d, want %d", k, w, got, pcpuAdds[w][k])
			}
		}
	}
	// Every submitted record arrived; drops were counted.
	for w := range workers {
		if received[w] != submitted[w].Load() {
			t.Errorf("worker %d: %d records received, %d submitted", w, received[w], submitted[w].Load())
		}
	}
	if rb.Dropped() != dropped.Load() {
		t.Errorf("ring buffer counted %d drops, producers saw %d", rb.Dropped(), dropped.Load())
	}
	// The LRU map is consistent and leaks nothing: 128 fresh keys all fit
	// and stay.
	for k := uint64(1000); k < 1128; k++ {
		binary.LittleEndian.PutUint64(key, k)
		if err := lru.Update(key, value(k, 0), maps.UpdateNoExist); err != nil {
			t.Fatalf("fresh LRU key %d: %v", k, err)
		}
	}
	n := 0
	for k, v := range maps.All(lru) {
		if kk := binary.LittleEndian.Uint64(k); kk < 1000 || binary.LittleEndian.Uint64(v[8:])^magic != kk {
			t.Fatalf("LRU after refill holds %d = %x", kk, v)
		}
		n++
	}
	if n != 128 {
		t.Errorf("LRU holds %d keys after refilling, want 128", n)
	}
	// The hash map is consistent: every key the walk finds can be looked
	// up, and deleting them all empties it.
	for k := range maps.All(hash) {
		if err := hash.Delete(k); err != nil {
			t.Fatalf("delete %x found by the walk: %v", k, err)
		}
	}
	if err := hash.NextKey(nil, key); !errors.Is(err, maps.ENOENT) {
		t.Errorf("hash not empty after deleting every key: %v", err)
	}
	for k := range uint64(512) {
		binary.LittleEndian.PutUint64(key, k)
		if err := hash.Update(key, value(k, 0), maps.UpdateNoExist); err != nil {
			t.Fatalf("refill %d: %v", k, err)
		}
	}
	t.Logf("%d increments, %d records, %d drops, %d lookups saw a recycled element", increments.Load(), sumRecv(received[:]), dropped.Load(), recycled.Load())
}

func sumRecv(r []uint64) (n uint64) {
	for _, x := range r {
		n += x
	}
	return n
}

func fillPattern(b []byte, seed byte) {
	for i := range b {
		b[i] = seed + byte(i)*31
	}
}

func checkPattern(b []byte, seed byte) bool {
	for i := range b {
		if b[i] != seed+byte(i)*31 {
			return false
		}
	}
	return true
}

type hammerError string

func (e hammerError) Error() string { return string(e) }

func fmtError(format string, args ...any) error {
	return hammerError(fmt.Sprintf(format, args...))
}

// TestHammer_LPM looks prefixes up from programs while Go inserts and
// deletes them: every match must be a prefix of the address looked up (the
// value names its prefix), even when the reader reads the value after the
// prefix was deleted and a new one inserted, since a reader's Section keeps
// freed nodes from reuse, as RCU does in Linux; Go-side lookups copy a
// value that matches too; and the final contents must be what Go left.
func TestHammer_LPM(t *testing.T) {
	m := mustNew(t, maps.Spec{Type: maps.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 256, Flags: maps.FlagNoPrealloc})
	e := m.(maps.Elems)
	prefix := func(r *rand.Rand) (uint32, uint32) {
		plen := uint32(8 + r.IntN(25))
		return plen, (0x0a000000 | r.Uint32()&0x00ff00ff) &^ (1<<(32-plen) - 1)
	}
	key := func(plen, addr uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, plen), addr)
	}
	var stop atomic.Bool
	var bad atomic.Value
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 3))
			var s maps.Section
			for !stop.Load() {
				// A run of a few lookups, as a program makes them.
				s.Enter(m, w)
				for range 1 + r.IntN(4) {
					addr := 0x0a000000 | r.Uint32()&0x00ff00ff
					a := e.LookupElem(w, key(32, addr))
					if a == 0 {
						continue
					}
					if r.IntN(8) == 0 {
						runtime.Gosched() // let the writer free the node
					}
					v := mem.Load64(a)
					plen, p := uint32(v>>32), uint32(v)
					if plen > 32 || addr&^(1<<(32-plen)-1) != p {
						bad.CompareAndSwap(nil, hammerError(fmt.Sprintf("%#x matched %#x/%d", addr, p, plen)))
					}
				}
				s.Exit()
			}
		}()
	}
	// Go-side lookups copy the value they find, with no section.
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 4))
			v := make([]byte, 8)
			for i := 0; !stop.Load(); i++ {
				if i%64 == 0 {
					runtime.Gosched() // leave the writer some time
				}
				addr := 0x0a000000 | r.Uint32()&0x00ff00ff
				if m.Lookup(key(32, addr), v) != nil {
					continue
				}
				x := binary.LittleEndian.Uint64(v)
				plen, p := uint32(x>>32), uint32(x)
				if plen > 32 || addr&^(1<<(32-plen)-1) != p {
					bad.CompareAndSwap(nil, hammerError(fmt.Sprintf("Go side: %#x matched %#x/%d", addr, p, plen)))
				}
			}
		}()
	}
	r := rand.New(rand.NewPCG(9, 9))
	live := map[[2]uint32]bool{}
	for range 20000 {
		plen, p := prefix(r)
		k := key(plen, p)
		if r.IntN(2) == 0 {
			if err := m.Update(k, binary.LittleEndian.AppendUint64(nil, uint64(plen)<<32|uint64(p)), 0); err == nil {
				live[[2]uint32{plen, p}] = true
			} else if !errors.Is(err, maps.ENOSPC) {
				t.Fatal(err)
			}
		} else if m.Delete(k) == nil {
			delete(live, [2]uint32{plen, p})
		}
	}
	stop.Store(true)
	wg.Wait()
	if err := bad.Load(); err != nil {
		t.Fatal(err)
	}
	early, waits := maps.LPMGrace(m, 0)
	t.Logf("%d Go-side updates waited for a grace period, %d nodes reused early", waits, early)
	n := 0
	for k := range maps.All(m) {
		if !live[[2]uint32{binary.LittleEndian.Uint32(k), binary.BigEndian.Uint32(k[4:])}] {
			t.Errorf("unexpected prefix %x", k)
		}
		n++
	}
	if n != len(live) {
		t.Errorf("%d prefixes, want %d", n, len(live))
	}
}

// TestHammer_Perf writes from every CPU at once: each CPU's samples arrive
// in order, and what did not arrive was reported lost.
func TestHammer_Perf(t *testing.T) {
	const cpus = 8
	m := mustNew(t, maps.Spec{Type: maps.PerfEventArray, KeySize: 4, ValueSize: 4, MaxEntries: cpus, CPUs: cpus})
	rd, err := maps.NewPerfReader(m, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	pe := m.(maps.PerfEvents)
	var wg sync.WaitGroup
	var sent [cpus]uint64
	for c := range cpus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range uint64(5000) {
				if pe.Output(c, maps.PerfCurrentCPU, binary.LittleEndian.AppendUint64(nil, i)) == nil {
					sent[c]++
				}
			}
		}()
	}
	var next, lost [cpus]uint64
	done := make(chan struct{})
	go func() { wg.Wait(); rd.SetDeadline(time.Now().Add(200 * time.Millisecond)); close(done) }()
	var rec maps.PerfRecord
	for {
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			t.Fatal(err)
		}
		if rec.LostSamples > 0 {
			lost[rec.CPU] += rec.LostSamples
			continue
		}
		seq := binary.LittleEndian.Uint64(rec.RawSample)
		if seq < next[rec.CPU] {
			t.Fatalf("CPU %d: sample %d after %d", rec.CPU, seq, next[rec.CPU])
		}
		next[rec.CPU] = seq + 1
	}
	<-done
	for c := range cpus {
		// A loss is reported with the next sample that fits; losses at
		// the very end stay pending.
		if sent[c]+lost[c] > 5000 {
			t.Errorf("CPU %d: %d sent and %d lost of 5000", c, sent[c], lost[c])
		}
	}
}
