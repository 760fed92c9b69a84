package maps_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

// The maps the FuzzCorrupt fuzzers write over, by family: every type New
// creates, small enough that a write at a random offset often lands on a
// link, a count or a header rather than in the middle of nowhere.
var (
	corruptArrays = []maps.Spec{
		{Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4},
		{Type: maps.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 4, CPUs: 2},
	}
	corruptHashes = []maps.Spec{
		{Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 2},
		{Type: maps.PerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 2},
		{Type: maps.HashOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 4, InnerMap: &innerSpec, CPUs: 2},
		{Type: maps.DevMapHash, KeySize: 4, ValueSize: 8, MaxEntries: 4, CPUs: 2},
	}
	corruptLRUs = []maps.Spec{
		{Type: maps.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 2},
		{Type: maps.LRUPerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 2, Flags: maps.FlagNoCommonLRU},
		{Type: maps.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8, CPUs: 2, Flags: maps.FlagNoCommonLRU},
	}
	corruptTries = []maps.Spec{
		{Type: maps.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 8, Flags: maps.FlagNoPrealloc},
	}
	corruptQueues = []maps.Spec{
		{Type: maps.Queue, ValueSize: 8, MaxEntries: 4},
		{Type: maps.Stack, ValueSize: 8, MaxEntries: 4},
		{Type: maps.BloomFilter, ValueSize: 8, MaxEntries: 8},
	}
	corruptRingBufs = []maps.Spec{
		{Type: maps.RingBuf, MaxEntries: 4096},
	}
	corruptPerf = []maps.Spec{
		{Type: maps.PerfEventArray, KeySize: 4, ValueSize: 4, MaxEntries: 2, CPUs: 2},
	}
	corruptSlots = []maps.Spec{
		{Type: maps.ProgArray, KeySize: 4, ValueSize: 4, MaxEntries: 4},
		{Type: maps.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 4, InnerMap: &innerSpec},
		{Type: maps.DevMap, KeySize: 4, ValueSize: 8, MaxEntries: 4},
		{Type: maps.CPUMap, KeySize: 4, ValueSize: 4, MaxEntries: 4, CPUs: 2},
		{Type: maps.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 4},
		{Type: maps.StackTrace, KeySize: 4, ValueSize: 8, MaxEntries: 4},
	}
)

var innerSpec = maps.Spec{Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 2}

// interesting are words FuzzCorrupt writes over aligned words of a
// mapping: indices just inside and outside a small map, hash chain
// terminators, ring buffer header bits, all ones.
var interesting = []uint32{
	0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 32, 33, 0x7fffffff, 0x80000000, 0x80000001,
	0x80000003, 0x80000007, 0x40000000, 0x40000008, 0xc0000000, 0x1000, 0xfff8, 0xffffffff,
}

// The FuzzCorrupt fuzzers, one per family of map types: whatever is
// written over a map's memory (header, metadata, links, records, values;
// not only what programs may write), every later operation, from the Go
// side and from the program side, gives a result or an error with an
// errno, never a panic or a hang, and a loop over NextKey or All ends. A
// watchdog turns a hang (a loop, a lock left held) into a crash that names
// the input. The first byte of an input picks the spec of the family.
func FuzzCorrupt_Array(f *testing.F)   { fuzzCorrupt(f, corruptArrays) }
func FuzzCorrupt_Hash(f *testing.F)    { fuzzCorrupt(f, corruptHashes) }
func FuzzCorrupt_LRU(f *testing.F)     { fuzzCorrupt(f, corruptLRUs) }
func FuzzCorrupt_LPM(f *testing.F)     { fuzzCorrupt(f, corruptTries) }
func FuzzCorrupt_Queue(f *testing.F)   { fuzzCorrupt(f, corruptQueues) }
func FuzzCorrupt_RingBuf(f *testing.F) { fuzzCorrupt(f, corruptRingBufs) }
func FuzzCorrupt_Perf(f *testing.F)    { fuzzCorrupt(f, corruptPerf) }
func FuzzCorrupt_Slots(f *testing.F)   { fuzzCorrupt(f, corruptSlots) }

func fuzzCorrupt(f *testing.F, specs []maps.Spec) {
	for i := range specs {
		// Fill, corrupt a few words of the first elements, use again.
		f.Add([]byte{byte(i), 0x00, 1, 0x10, 2, 0x20, 3, 0x00, 4, 0x07, 0, 0x40, 3, 2, 0x17, 0, 0x80, 1, 0x27, 1, 0x00, 0x1f, 0x01, 0x03, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e})
		f.Add([]byte{byte(i), 0x06, 1, 0x16, 2, 0x0b, 0x0c, 0x11, 0x21, 0x47, 0, 0x64, 0xff, 0x03, 0x13, 0x09, 0x0e, 0x0d})
		f.Add([]byte{byte(i), 0x00, 1, 0, 0, 0x00, 2, 0, 0, 0x10, 3, 0, 0, 0x08, 0, 0x08, 1, 0x08, 0x01, 0x28, 0x03, 0x09, 0, 0x10, 0x10, 0x0b, 0x0c, 0x0f})
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				panic(fmt.Sprintf("map operations hang after corruption: input %x", in))
			}
		}()
		runCorrupt(t, specs, in)
	})
}

// input hands out the fuzzer's bytes, zeros when they run out.
type input struct{ b []byte }

func (r *input) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *input) u16() int { return int(r.byte()) | int(r.byte())<<8 }

func (r *input) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = r.byte()
	}
	return b
}

// corruptRun is one map under FuzzCorrupt.
type corruptRun struct {
	t     *testing.T
	m     maps.Map
	s     maps.Spec
	vs    int // Go-side value size
	inner maps.Map
	rb    *maps.RingBufReader
	perf  *maps.PerfReader
	wrote bool // something was written over the map's memory
}

func runCorrupt(t *testing.T, specs []maps.Spec, in []byte) {
	r := &input{in}
	spec := specs[int(r.byte())%len(specs)]
	c := &corruptRun{t: t, m: mustNew(t, spec)}
	defer c.m.Close()
	c.s = c.m.Spec()
	c.vs = len(goValue(c.m))
	switch c.s.Type {
	case maps.ArrayOfMaps, maps.HashOfMaps:
		c.inner = mustNew(t, innerSpec)
		defer c.inner.Close()
	case maps.RingBuf:
		rb, err := maps.NewRingBufReader(c.m)
		if err != nil {
			t.Fatal(err)
		}
		c.rb = rb
		defer rb.Close()
	case maps.PerfEventArray:
		pr, err := maps.NewPerfReader(c.m, 1)
		if err != nil {
			t.Fatal(err)
		}
		c.perf = pr
		defer pr.Close()
	}
	for len(r.b) > 0 {
		c.step(r)
	}
	c.sweep()
}

// key makes a key of the map's size from one byte: few distinct keys, so
// operations meet each other's elements; tries get a prefix length too.
func (c *corruptRun) key(b byte) []byte {
	k := make([]byte, c.s.KeySize)
	switch {
	case c.s.Type == maps.LPMTrie:
		binary.LittleEndian.PutUint32(k, uint32(b%33))
		k[4], k[5] = b&0xc0, b<<2
	case len(k) >= 4:
		k[0] = b % 12
	}
	return k
}

// ok fails the test for an error that carries no errno (or is not one of
// the few non-errno errors the API documents).
func (c *corruptRun) ok(what string, err error) {
	c.t.Helper()
	var e maps.Errno
	if err == nil || errors.As(err, &e) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, os.ErrClosed) || errors.Is(err, maps.ErrIterationAborted) {
		return
	}
	c.t.Fatalf("%s: error without errno: %v", what, err)
}

func (c *corruptRun) step(r *input) {
	m, s := c.m, c.s
	op := r.byte()
	key := c.key(r.byte())
	val := make([]byte, c.vs)
	copy(val, r.bytes(2))
	flags := uint64(op>>5) % 4
	switch op % 16 {
	case 0:
		c.ok("update", m.Update(key, val, flags))
	case 1:
		c.ok("lookup", m.Lookup(key, val))
	case 2:
		c.ok("delete", m.Delete(key))
	case 3:
		var k []byte
		if op&0x10 != 0 {
			k = key
		}
		c.ok("next key", m.NextKey(k, make([]byte, s.KeySize)))
	case 4:
		c.ok("lookup and delete", m.LookupAndDelete(key, val))
	case 5, 6:
		c.program(op, key, val, flags)
	case 7, 8, 9:
		c.corrupt(r, op)
	case 10:
		c.batch(op, key, val)
	case 11:
		n := 0
		it := maps.Iterate(m)
		for range it.All() {
			if n++; n > iterBound(s) {
				c.t.Fatalf("All: more than %d entries", iterBound(s))
			}
		}
		c.ok("iterate", it.Err())
	case 12:
		c.walk(r)
	case 13:
		c.objects(op, key, val)
	case 14:
		c.rings(op, key)
	default:
		c.sweep()
	}
}

// program does what helpers do: look a value up and write into it (as
// programs may), update and delete; push, pop and peek.
func (c *corruptRun) program(op byte, key, val []byte, flags uint64) {
	cpu := int(op>>6) % 3
	if e, ok := c.m.(maps.Elems); ok {
		if a := e.LookupElem(cpu, key); a != 0 && c.s.Type != maps.ArrayOfMaps && c.s.Type != maps.HashOfMaps &&
			c.s.Type != maps.DevMap && c.s.Type != maps.DevMapHash && c.s.Type != maps.CPUMap && c.s.Type != maps.XSKMap {
			mem.Store8(a+uint64(op)%uint64(c.s.ValueSize), uint64(op))
		}
		if op&0x10 != 0 {
			c.ok("update elem", e.UpdateElem(cpu, key, val[:c.s.ValueSize], flags))
		} else {
			c.ok("delete elem", e.DeleteElem(cpu, key))
		}
	}
	if v, ok := c.m.(maps.Values); ok {
		b := val[:c.s.ValueSize]
		c.ok("push", v.PushElem(b, flags))
		c.ok("peek", v.PeekElem(b))
		if op&0x10 != 0 {
			c.ok("pop", v.PopElem(b))
		}
	}
}

// corrupt writes over the map's memory: raw bytes at an offset, an
// interesting word at an aligned offset, or a copy of 8 bytes from one
// place to another (duplicating a link or a header).
func (c *corruptRun) corrupt(r *input, op byte) {
	ms := maps.Mappings(c.m)
	if len(ms) == 0 {
		return
	}
	mp := ms[int(op>>4)%len(ms)]
	off := r.u16() % len(mp)
	switch op % 16 {
	case 7:
		n := 1 + int(op>>4)%8
		copy(mp[off:], r.bytes(n))
	case 8:
		off &^= 3
		if off+4 <= len(mp) {
			binary.NativeEndian.PutUint32(mp[off:], interesting[int(r.byte())%len(interesting)])
		}
	case 9:
		from := r.u16() % len(mp)
		copy(mp[off&^3:], mp[from&^3:min(len(mp), from&^3+8)])
	}
	c.wrote = true
}

func (c *corruptRun) batch(op byte, key, val []byte) {
	m, s := c.m, c.s
	n := 1 + int(op>>5)%4
	keys, vals := make([]byte, n*int(s.KeySize)), make([]byte, n*c.vs)
	var cur maps.BatchCursor
	for range 2 * iterBound(s) {
		var got int
		var err error
		if op&0x10 != 0 {
			got, err = maps.LookupAndDeleteBatch(m, &cur, keys, vals)
		} else {
			got, err = maps.LookupBatch(m, &cur, keys, vals)
		}
		c.ok("lookup batch", err)
		if err != nil || got == 0 {
			break
		}
	}
	for i := range n {
		copy(keys[i*int(s.KeySize):], key)
		copy(vals[i*c.vs:], val)
	}
	_, err := maps.UpdateBatch(m, keys, vals, 0)
	c.ok("update batch", err)
	_, err = maps.DeleteBatch(m, keys)
	c.ok("delete batch", err)
}

// walk is bpf_for_each_map_elem with a callback that writes the value,
// deletes or adds elements, and may stop.
func (c *corruptRun) walk(r *input) {
	what, stopAt := r.byte(), int(r.byte()%8)
	e, _ := c.m.(maps.Elems)
	if e == nil {
		return
	}
	calls := 0
	_, err := maps.WalkElems(c.m, 0, func(k []byte, v uint64) (bool, error) {
		calls++
		switch what % 4 {
		case 1:
			c.ok("walk delete", e.DeleteElem(0, k))
		case 2:
			nk := append([]byte(nil), k...)
			nk[len(nk)-1]++
			c.ok("walk update", e.UpdateElem(0, nk, make([]byte, c.s.ValueSize), maps.UpdateAny))
		case 3:
			if c.s.Type != maps.ArrayOfMaps && c.s.Type != maps.HashOfMaps && c.s.Type != maps.DevMapHash &&
				c.s.Type != maps.DevMap && c.s.Type != maps.CPUMap && c.s.Type != maps.XSKMap {
				mem.Store8(v, uint64(calls))
			}
		}
		return stopAt != 0 && calls >= stopAt, nil
	})
	c.ok("walk", err)
}

// objects stores programs and maps, and reads redirect targets.
func (c *corruptRun) objects(op byte, key, val []byte) {
	if pa, ok := c.m.(maps.ProgramArray); ok {
		idx := uint32(key[0]) % 6
		if op&0x10 != 0 {
			c.ok("set program", pa.SetProgram(idx, "prog"))
		}
		pa.Program(idx)
	}
	if mm, ok := c.m.(maps.MapOfMaps); ok && c.inner != nil {
		if op&0x10 != 0 {
			c.ok("set inner", mm.SetInner(key, c.inner))
		}
		mm.Inner(key)
	}
	if rd, ok := c.m.(maps.Redirector); ok {
		rd.RedirectTarget(uint64(key[0]))
		n := 0
		rd.RedirectTargets(func(maps.Redirect) bool {
			if n++; n > iterBound(c.s) {
				c.t.Fatalf("RedirectTargets: more than %d entries", iterBound(c.s))
			}
			return true
		})
	}
}

// rings produces into and reads from ring buffers and perf rings.
func (c *corruptRun) rings(op byte, key []byte) {
	if rb, ok := c.m.(maps.RingBuffer); ok {
		size := uint64(op>>3) * 8
		if a := rb.Reserve(size); a != 0 {
			if size > 0 {
				mem.Store8(a, uint64(op))
			}
			if op&1 == 0 {
				c.ok("submit", rb.Submit(a, 0))
			} else {
				c.ok("discard", rb.Discard(a, 0))
			}
		}
		c.ok("output", rb.Output(key, 0))
		rb.Query(uint64(op) % 4)
		rb.Dropped()
	}
	if c.rb != nil {
		for range 4 {
			c.rb.SetDeadline(time.Now())
			_, err := c.rb.Read()
			c.ok("ring read", err)
			if err != nil {
				break
			}
		}
	}
	if pe, ok := c.m.(maps.PerfEvents); ok {
		c.ok("perf output", pe.Output(int(op)%2, maps.PerfCurrentCPU, key))
	}
	if c.perf != nil {
		for range 4 {
			c.perf.SetDeadline(time.Now())
			_, err := c.perf.Read()
			c.ok("perf read", err)
			if err != nil {
				break
			}
		}
	}
}

// sweep looks at the whole map: a NextKey loop and a batch walk must end
// within the bound whatever the memory holds, and every key they give
// can be looked up and deleted.
func (c *corruptRun) sweep() {
	m, s := c.m, c.s
	if s.KeySize == 0 {
		return
	}
	var keys [][]byte
	var prev []byte
	next := make([]byte, s.KeySize)
	for n := 0; ; n++ {
		if n > iterBound(s) {
			c.t.Fatalf("NextKey: more than %d keys", iterBound(s))
		}
		err := m.NextKey(prev, next)
		c.ok("next key", err)
		if err != nil {
			break
		}
		keys = append(keys, append([]byte(nil), next...))
		prev = append(prev[:0], next...)
	}
	n := 0
	for range maps.All(m) {
		if n++; n > iterBound(s) {
			c.t.Fatalf("All: more than %d entries", iterBound(s))
		}
	}
	val := make([]byte, c.vs)
	for _, k := range keys {
		c.ok("lookup", m.Lookup(k, val))
		c.ok("delete", m.Delete(k))
	}
}

// iterBound is more entries than a map of spec s can hold, spares and
// trie nodes included.
func iterBound(s maps.Spec) int { return 4*int(s.MaxEntries) + 64 }

// TestCorrupt_Concurrent writes random bytes over each map's memory while
// goroutines use it from Go and from programs: every operation returns,
// with a result or an error that carries an errno, and no lock is left
// held (the watchdog would see the goroutines stop).
func TestCorrupt_Concurrent(t *testing.T) {
	rounds := 3000
	if testing.Short() {
		rounds = 300
	}
	var all []maps.Spec
	for _, f := range [][]maps.Spec{corruptArrays, corruptHashes, corruptLRUs, corruptTries, corruptQueues, corruptRingBufs, corruptSlots} {
		all = append(all, f...)
	}
	for _, spec := range all {
		t.Run(spec.Type.String(), func(t *testing.T) {
			m := mustNew(t, spec)
			var inner maps.Map
			if spec.InnerMap != nil {
				inner = mustNew(t, innerSpec)
			}
			ms := maps.Mappings(m)
			done := make(chan struct{})
			errs := make(chan error, 4)
			watchdog := time.AfterFunc(2*time.Minute, func() {
				panic(fmt.Sprintf("%s: operations hang while the map is written over", spec.Type))
			})
			defer watchdog.Stop()
			for w := range 3 {
				go func() {
					errs <- concurrentOps(m, inner, uint64(w), rounds)
				}()
			}
			go func() {
				defer close(done)
				rng := rand.New(rand.NewPCG(uint64(len(ms[0])), 7))
				for range rounds {
					mp := ms[rng.IntN(len(ms))]
					off := rng.IntN(len(mp)) &^ 3
					if off+4 <= len(mp) {
						v := interesting[rng.IntN(len(interesting))]
						if rng.IntN(2) == 0 {
							v = rng.Uint32()
						}
						mem.AtomicStore32(mem.Addr(mp)+uint64(off), v)
					}
				}
			}()
			<-done
			for range 3 {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// concurrentOps does random operations on m and returns the first error
// without an errno.
func concurrentOps(m maps.Map, inner maps.Map, seed uint64, rounds int) error {
	rng := rand.New(rand.NewPCG(seed, 11))
	s := m.Spec()
	vs := len(goValue(m))
	check := func(what string, err error) error {
		var e maps.Errno
		if err == nil || errors.As(err, &e) || errors.Is(err, maps.ErrIterationAborted) || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		return fmt.Errorf("%s %s: error without errno: %w", s.Type, what, err)
	}
	for range rounds {
		key := make([]byte, s.KeySize)
		if len(key) >= 4 {
			key[0] = byte(rng.IntN(12))
			if s.Type == maps.LPMTrie {
				key[0] = byte(rng.IntN(33))
				key[4] = byte(rng.IntN(4))
			}
		}
		val := make([]byte, vs)
		var err error
		what := ""
		switch rng.IntN(9) {
		case 0:
			what, err = "update", m.Update(key, val, maps.UpdateAny)
		case 1:
			what, err = "lookup", m.Lookup(key, val)
		case 2:
			what, err = "delete", m.Delete(key)
		case 3:
			what, err = "next key", m.NextKey(key, make([]byte, s.KeySize))
		case 4:
			if e, ok := m.(maps.Elems); ok {
				e.LookupElem(rng.IntN(2), key)
				what, err = "update elem", e.UpdateElem(rng.IntN(2), key, val[:s.ValueSize], maps.UpdateAny)
			}
		case 5:
			if e, ok := m.(maps.Elems); ok {
				what, err = "delete elem", e.DeleteElem(0, key)
			}
			if v, ok := m.(maps.Values); ok {
				_ = v.PushElem(val[:s.ValueSize], maps.UpdateExist)
				what, err = "pop", v.PopElem(val[:s.ValueSize])
			}
		case 6:
			it := maps.Iterate(m)
			for range it.All() {
			}
			what, err = "iterate", it.Err()
		case 7:
			if _, ok := m.(maps.Elems); ok {
				_, err = maps.WalkElems(m, 0, func([]byte, uint64) (bool, error) { return false, nil })
				what = "walk"
			}
			if mm, ok := m.(maps.MapOfMaps); ok && inner != nil {
				what, err = "set inner", mm.SetInner(key, inner)
			}
		case 8:
			if rb, ok := m.(maps.RingBuffer); ok {
				what, err = "output", rb.Output(key, 0)
				if a := rb.Reserve(16); a != 0 {
					_ = rb.Submit(a, 0)
				}
			}
			var c maps.BatchCursor
			_, berr := maps.LookupAndDeleteBatch(m, &c, make([]byte, 4*int(s.KeySize)), make([]byte, 4*vs))
			if e := check("batch", berr); e != nil {
				return e
			}
		}
		if e := check(what, err); e != nil {
			return e
		}
	}
	return nil
}
