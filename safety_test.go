package waggle_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	casm "github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/hostile/hostile.c -o testdata/hostile/hostile.o

// hostile loads testdata/hostile: programs Linux's verifier refuses.
func hostile(tb testing.TB, opts *waggle.CollectionOptions) *waggle.Collection {
	tb.Helper()
	if opts == nil {
		opts = &waggle.CollectionOptions{CPUs: 2}
	}
	// Its programs are unsafe on purpose: they run unverified, and the
	// checked interpreter stops them.
	opts.Unverified = true
	coll, err := waggle.LoadCollection("testdata/hostile/hostile.o", opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(coll.Close)
	return coll
}

// hostileLine returns "hostile.c:N" for the line of hostile.c holding
// text.
func hostileLine(t *testing.T, text string) string {
	t.Helper()
	src, err := os.ReadFile("testdata/hostile/hostile.c")
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, text) {
			return fmt.Sprintf("hostile.c:%d", i+1)
		}
	}
	t.Fatalf("hostile.c has no %q", text)
	return ""
}

// smallFrame is a 64-byte frame, enough for every XDP program here.
func smallFrame() []byte { return make([]byte, 64) }

// endless is `r0 = 2; goto -1` as an XDP program, as a CollectionSpec.
func endless() *ebpf.CollectionSpec {
	return &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"endless": {Name: "endless", Type: ebpf.XDP, License: "GPL", Instructions: casm.Instructions{
			casm.Mov.Imm(casm.R0, 2),
			{OpCode: casm.Ja.Op(casm.ImmSource), Offset: -1},
			casm.Return(),
		}},
	}}
}

// TestHostile_bounded: a loop forever and nested bpf_loops (2^69 calls)
// end with a budget error naming the instruction and the C line, through
// LoadCollection and NewCollection, by default and with a budget; a
// context ends them with its cause.
func TestHostile_bounded(t *testing.T) {
	coll := hostile(t, &waggle.CollectionOptions{CPUs: 2, Budget: 1 << 20})
	for _, tc := range []struct{ prog, want string }{
		{"forever", hostileLine(t, "for (;;)")},
		{"nested_loops", hostileLine(t, "bpf_loop(1 << 23, inner")},
	} {
		t.Run(tc.prog, func(t *testing.T) {
			_, err := coll.Programs[tc.prog].Run(&waggle.RunOptions{Data: smallFrame()})
			if !errors.Is(err, waggle.ErrBudget) {
				t.Fatalf("got %v, want a budget error", err)
			}
			for _, want := range []string{"program " + tc.prog, "instruction ", tc.want, "1048576 instructions"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
		})
	}
	t.Run("context", func(t *testing.T) {
		coll := hostile(t, nil) // the default budget: seconds of running
		for _, prog := range []string{"forever", "nested_loops"} {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			_, err := coll.Programs[prog].RunContext(ctx, &waggle.RunOptions{Data: smallFrame()})
			cancel()
			if !errors.Is(err, waggle.ErrStopped) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "instruction ") {
				t.Errorf("%s: got %v, want a deadline error naming the instruction", prog, err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := coll.Programs["forever"].RunContext(ctx, &waggle.RunOptions{Data: smallFrame()}); !errors.Is(err, context.Canceled) {
			t.Errorf("canceled before the run: %v", err)
		}
		// A spent context does not stop the runner's next run.
		if ret, err := coll.Programs["lock_ok"].Run(&waggle.RunOptions{Data: smallFrame()}); err != nil || ret != 2 {
			t.Errorf("after a stopped run: %d, %v", ret, err)
		}
	})
	t.Run("Test and Benchmark", func(t *testing.T) {
		if _, _, err := coll.Programs["forever"].Test(smallFrame()); !errors.Is(err, waggle.ErrBudget) {
			t.Errorf("Test: %v", err)
		}
		if _, _, err := coll.Programs["nested_loops"].Benchmark(smallFrame(), 3, nil); !errors.Is(err, waggle.ErrBudget) {
			t.Errorf("Benchmark: %v", err)
		}
	})
	t.Run("hook", func(t *testing.T) {
		hook, err := progtype.NewHook[StateHook]("loop")
		if err != nil {
			t.Fatal(err)
		}
		spec := endless()
		spec.Programs["endless"].Type = ebpf.UnspecifiedProgram
		c, err := waggle.NewCollection(spec, &waggle.CollectionOptions{Unverified: true, Budget: 1 << 16, Hooks: map[string]*progtype.Kind{"endless": hook.Kind()}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := hook.Run(c.Programs["endless"].Exec(), &StateHook{}, progtype.Input{}); !errors.Is(err, waggle.ErrBudget) {
			t.Errorf("Exec: %v", err)
		}
		c2, err := waggle.NewCollection(spec, &waggle.CollectionOptions{Unverified: true, Hooks: map[string]*progtype.Kind{"endless": hook.Kind()}})
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := hook.Run(c2.Programs["endless"].ExecContext(ctx), &StateHook{}, progtype.Input{}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ExecContext: %v", err)
		}
	})
	t.Run("spec", func(t *testing.T) {
		for _, budget := range []uint64{0, 1000} {
			c, err := waggle.NewCollection(endless(), &waggle.CollectionOptions{Unverified: true, Budget: budget})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			_, err = c.Programs["endless"].RunContext(ctx, &waggle.RunOptions{Data: smallFrame()})
			cancel()
			want := waggle.ErrBudget
			if budget == 0 {
				want = waggle.ErrStopped
			}
			if !errors.Is(err, want) || !strings.Contains(err.Error(), "instruction 1 (goto -0x1)") {
				t.Errorf("budget %d: got %v, want %v at instruction 1", budget, err, want)
			}
		}
	})
}

// TestHostile_budgetIsInstructions: the budget bounds the instructions a
// run executes. A loop of 5 instructions (4 and its jump) passes with a
// budget just above what it runs and fails just below.
func TestHostile_budgetIsInstructions(t *testing.T) {
	// r0 = 0; loop: r0 += 1; r1 = r0; r1 &= 0; if r0 < 100 goto loop; exit
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"count": {Name: "count", Type: ebpf.XDP, License: "GPL", Instructions: casm.Instructions{
			casm.Mov.Imm(casm.R0, 0),
			casm.Add.Imm(casm.R0, 1),
			casm.Mov.Reg(casm.R1, casm.R0),
			casm.And.Imm(casm.R1, 0),
			{OpCode: casm.JLT.Op(casm.ImmSource), Dst: casm.R0, Constant: 100, Offset: -4},
			casm.Return(),
		}},
	}}
	// 1 + 100×4 + 1 = 402 instructions run; the loop's backward jump
	// spends the 4 slots it jumps back over each of the 99 times it is
	// taken, and the budget bounds what runs to at most the budget plus
	// the function's 6 slots.
	for _, tc := range []struct {
		budget uint64
		ok     bool
	}{{99 * 4, true}, {99*4 - 1, false}} {
		c, err := waggle.NewCollection(spec, &waggle.CollectionOptions{Unverified: true, Budget: tc.budget})
		if err != nil {
			t.Fatal(err)
		}
		ret, err := c.Programs["count"].Run(&waggle.RunOptions{Data: smallFrame()})
		c.Close()
		if tc.ok && (err != nil || ret != 100) {
			t.Errorf("budget %d: %d, %v", tc.budget, ret, err)
		}
		if !tc.ok && !errors.Is(err, waggle.ErrBudget) {
			t.Errorf("budget %d: %d, %v; want a budget error", tc.budget, ret, err)
		}
	}
}

// TestHostile_locks: what Linux's verifier refuses about spin locks is an
// error naming the instruction and line, the lock is released whatever
// happened, and the next run takes it.
func TestHostile_locks(t *testing.T) {
	coll := hostile(t, nil)
	ok := coll.Programs["lock_ok"]
	count := func() uint64 {
		var v struct {
			Lock, Pad uint32
			Count     uint64
		}
		if err := coll.Maps["locks"].Lookup(uint32(0), &v); err != nil {
			t.Fatal(err)
		}
		return v.Count
	}
	for _, tc := range []struct{ prog, want string }{
		{"lock_at_exit", "bpf_spin_unlock is missing"},
		{"lock_twice", "a second bpf_spin_lock"},
		{"lock_helper", "a helper call while the run holds"},
		{"lock_stack", "not in a map value"},
		{"lock_packet", "not in a map value"},
		{"lock_field", "its struct bpf_spin_lock is at offset 0"},
		{"lock_bss", "map .bss's value type has no struct bpf_spin_lock field"},
	} {
		t.Run(tc.prog, func(t *testing.T) {
			_, err := coll.Programs[tc.prog].Run(&waggle.RunOptions{Data: smallFrame()})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "hostile.c:") {
				t.Fatalf("got %v, want %q with the source line", err, tc.want)
			}
			before := count()
			done := make(chan error, 1)
			go func() { _, err := ok.Run(&waggle.RunOptions{Data: smallFrame()}); done <- err }()
			select {
			case err := <-done:
				if err != nil || count() != before+1 {
					t.Fatalf("next run: %v, count %d after %d", err, count(), before)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the next run waits for a lock nobody holds")
			}
		})
	}
}

// TestHostile_lockContention: runs on many goroutines increment counters
// under spin locks, in a map value and in global data; no increment is
// lost.
func TestHostile_lockContention(t *testing.T) {
	coll := hostile(t, nil)
	const goroutines, rounds = 8, 300
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			prog := []string{"lock_ok", "lock_global"}[g%2]
			for range rounds {
				if _, err := coll.Programs[prog].Run(&waggle.RunOptions{Data: smallFrame()}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var v struct {
		Lock, Pad uint32
		Count     uint64
	}
	if err := coll.Maps["locks"].Lookup(uint32(0), &v); err != nil || v.Count != goroutines/2*rounds {
		t.Fatalf("count %d, %v; want %d", v.Count, err, goroutines/2*rounds)
	}
	if err := coll.Maps[".data.locks"].Lookup(uint32(0), &v); err != nil || v.Count != goroutines/2*rounds {
		t.Fatalf("global count %d, %v; want %d", v.Count, err, goroutines/2*rounds)
	}
}

// TestHostile_ringBuffer: a record reserved and never released, or
// released twice, is an error; the ring keeps working, and the reader sees
// exactly the records that were submitted.
func TestHostile_ringBuffer(t *testing.T) {
	coll := hostile(t, nil)
	rd, err := maps.NewRingBufReader(coll.Maps["ring"].Underlying())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for _, tc := range []struct{ prog, want string }{
		{"ring_leak", "Unreleased reference"},
		{"ring_ok", ""},
		{"ring_twice", "not a ring buffer record this run reserved"},
		{"ring_ok", ""},
	} {
		_, err := coll.Programs[tc.prog].Run(&waggle.RunOptions{Data: smallFrame()})
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Fatalf("%s: %v, want %q", tc.prog, err, tc.want)
		}
	}
	var got []uint64
	rd.SetDeadline(time.Now().Add(100 * time.Millisecond))
	for {
		rec, err := rd.Read()
		if err != nil {
			break
		}
		got = append(got, binary.LittleEndian.Uint64(rec.RawSample))
	}
	// ring_leak's record is discarded; ring_twice's first submit counts.
	if fmt.Sprint(got) != "[3 2 3]" {
		t.Fatalf("records %v, want [3 2 3]", got)
	}
}

// Memory of testdata/hostile's poke command (struct cmd).
const (
	mHash = iota
	mLRU
	mPerCPUHash
	mArray
	mPerCPUArray
	mLPM
	mRing
	mRodata
	mBSS
	mLocks
)

func pokeFrame(mem, write, key int, off int32, val uint64) []byte {
	b := smallFrame()
	c := b[14:]
	c[0], c[1] = byte(mem), byte(write)
	binary.LittleEndian.PutUint16(c[2:], uint16(key))
	binary.LittleEndian.PutUint32(c[4:], uint32(off))
	binary.LittleEndian.PutUint64(c[8:], val)
	return b
}

// TestHostile_poke: a program may read and write exactly the value bytes
// of the maps it references (whichever slot: that is memory safe, and only
// a verifier can tell slots apart), never a hash element's link, hash or
// key, an LRU or LPM node's bookkeeping, a ring buffer record's header or
// another record, or .rodata; and after every refused access the maps
// work from Go and from the program as before.
func TestHostile_poke(t *testing.T) {
	coll := hostile(t, nil)
	poke := coll.Programs["poke"]
	rd, err := maps.NewRingBufReader(coll.Maps["ring"].Underlying())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	drain := func() { // the ring has no other reader: keep it from filling
		rd.SetDeadline(time.Now())
		for {
			if _, err := rd.Read(); err != nil {
				return
			}
		}
	}
	var offsets []int32
	for off := int32(-72); off <= 264; off += 4 {
		offsets = append(offsets, off)
	}
	offsets = append(offsets, -1, 1, 9, 1<<12, 1<<16, -(1 << 12))
	for _, tc := range []struct {
		name  string
		mem   int
		m     string // the map, to check from Go afterwards
		value int    // bytes of a value as Go sees it
		good  int32  // an offset the program may write, -1 for none
	}{
		{"hash", mHash, "hash", 16, 8},
		{"lru", mLRU, "lru", 16, 8},
		{"percpu_hash", mPerCPUHash, "percpu_hash", 32, 8},
		{"array", mArray, "array", 16, 8},
		{"percpu_array", mPerCPUArray, "percpu_array", 32, 8},
		{"lpm", mLPM, "lpm", 16, 8},
		{"ring", mRing, "ring", 0, 8},
		{"rodata", mRodata, ".rodata", 0, -1},
		{"bss", mBSS, ".bss", 0, 0},
		{"locks", mLocks, "locks", 0, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := coll.Programs["where"].Run(&waggle.RunOptions{Data: pokeFrame(tc.mem, 0, 0, 0, 0)}); err != nil {
				t.Fatal(err)
			}
			var base uint64
			if err := coll.Maps[".bss"].Lookup(uint32(0), &base); err != nil {
				t.Fatal(err)
			}
			// Any value of a map poke references is its memory, the ring
			// buffer's records excepted.
			var regions []maps.Region
			for _, m := range coll.Maps {
				if m.Type() != ebpf.RingBuf && references(poke, m) {
					regions = append(regions, m.Underlying().Regions()...)
				}
			}
			allowed := func(off int32, write bool) bool {
				if tc.mem == mRing { // only the record the run reserved
					return off >= 0 && off+8 <= 16
				}
				return valueBytes(regions, base+uint64(int64(off)), 8, write)
			}
			for _, off := range offsets {
				for write := range 2 {
					val := uint64(0x1111111111111111 * uint64(1+write))
					ret, err := poke.Run(&waggle.RunOptions{Data: pokeFrame(tc.mem, write, 0, off, val)})
					drain()
					ok := allowed(off, write == 1)
					switch {
					case ok && (err != nil || ret != 2):
						t.Errorf("write %d at %d: %d, %v; want it allowed", write, off, ret, err)
					case !ok && !errors.Is(err, waggle.ErrMemory):
						t.Errorf("write %d at %d: %d, %v; want a memory fault", write, off, ret, err)
					}
				}
			}
			if tc.good >= 0 {
				if ret, err := poke.Run(&waggle.RunOptions{Data: pokeFrame(tc.mem, 1, 0, tc.good, 77)}); err != nil || ret != 2 {
					t.Fatalf("a good write: %d, %v", ret, err)
				}
			}
			if tc.value > 0 {
				checkMapFromGo(t, coll.Maps[tc.m], tc.value)
			}
		})
	}
	// Every refused access left the ring buffer usable.
	if ret, err := coll.Programs["ring_ok"].Run(&waggle.RunOptions{Data: smallFrame()}); err != nil || ret != 2 {
		t.Fatalf("ring_ok after the pokes: %d, %v", ret, err)
	}
}

// references reports whether p's instructions load m's handle or the
// address of one of its values (global data).
func references(p *waggle.Program, m *waggle.Map) bool {
	insns := p.Instructions()
	for i := 0; i+1 < len(insns); i++ {
		if !insns[i].IsLoadImm64() {
			continue
		}
		v := isa.Imm64(insns[i], insns[i+1])
		if v == m.Underlying().Handle() || valueBytes(m.Underlying().Regions(), v, 1, false) {
			return true
		}
		i++
	}
	return false
}

// valueBytes reports whether the n bytes at addr are program memory by the
// map's own description of it (maps.Region).
func valueBytes(regions []maps.Region, addr, n uint64, write bool) bool {
	for _, r := range regions {
		lo := mem.Addr(r.Data)
		if addr < lo || addr+n > lo+uint64(len(r.Data)) || (write && !r.Writable) {
			continue
		}
		if r.Stride == 0 || r.Offset == 0 && r.Len == r.Stride {
			return true
		}
		o := (addr - lo) % r.Stride
		if o >= r.Offset && o+n <= r.Offset+r.Len {
			return true
		}
	}
	return false
}

// checkMapFromGo uses m from Go after the pokes: every operation ends
// with a result that agrees with the others.
func checkMapFromGo(t *testing.T, m *waggle.Map, valueBytes int) {
	t.Helper()
	n := 0
	for _, v := range m.All() {
		n++
		if n > int(m.MaxEntries()) {
			t.Fatalf("All returned more than %d entries", m.MaxEntries())
		}
		if len(v) < valueBytes {
			t.Fatalf("value of %d bytes", len(v))
		}
	}
	if n == 0 {
		t.Fatal("All found no entry")
	}
	it := m.Iterate()
	var k []byte
	var v any = new([]byte)
	if m.Type() == ebpf.PerCPUArray || m.Type() == ebpf.PerCPUHash {
		v = new([][16]byte)
	}
	cnt := 0
	for it.Next(&k, v) {
		cnt++
	}
	if it.Err() != nil || cnt != n {
		t.Fatalf("Iterate: %d entries, %v; All found %d", cnt, it.Err(), n)
	}
	var cursor waggle.MapBatchCursor
	keys := make([]byte, int(m.KeySize())*int(m.MaxEntries()))
	vals := make([]byte, len(keys)/int(m.KeySize())*64)
	if got, err := m.BatchLookup(&cursor, keys, vals); (err != nil && !errors.Is(err, waggle.ErrKeyNotExist)) || got != n {
		if !errors.Is(err, maps.EINVAL) { // arrays and LPM tries may refuse batches, as in Linux
			t.Fatalf("BatchLookup: %d, %v; want %d", got, err, n)
		}
	}
	var first = make([]byte, m.KeySize())
	if err := m.NextKey(nil, &first); err != nil {
		t.Fatalf("NextKey: %v", err)
	}
	if m.Type() == ebpf.Array || m.Type() == ebpf.PerCPUArray {
		return
	}
	if err := m.Delete(first); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	left := 0
	for range m.All() {
		left++
	}
	if left != n-1 {
		t.Fatalf("%d entries after a delete, %d before", left, n)
	}
}

// TestHostile_unreferencedMap: a program reaches only the maps it
// references. poke_a references map a only; given the distance from a's
// value to b's (leaked by a program that references both), its write there
// is refused, and b keeps its value.
func TestHostile_unreferencedMap(t *testing.T) {
	arr := func() *ebpf.MapSpec {
		return &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}
	}
	lookup := func(m string, dst casm.Register) casm.Instructions {
		return casm.Instructions{
			casm.StoreImm(casm.RFP, -4, 0, casm.Word),
			casm.LoadMapPtr(casm.R1, 0).WithReference(m),
			casm.Mov.Reg(casm.R2, casm.RFP),
			casm.Add.Imm(casm.R2, -4),
			casm.FnMapLookupElem.Call(),
			casm.Mov.Reg(dst, casm.R0),
		}
	}
	// leak: a[0] = &b[0], and the distance is computed in Go.
	leak := append(lookup("b", casm.R6), lookup("a", casm.R7)...)
	leak = append(leak, casm.StoreMem(casm.R7, 0, casm.R6, casm.DWord), casm.Mov.Imm(casm.R0, 2), casm.Return())
	leakA := append(lookup("a", casm.R7), casm.StoreMem(casm.R7, 0, casm.R7, casm.DWord), casm.Mov.Imm(casm.R0, 2), casm.Return())
	// poke_a: *(a value + packet[14:22]) = 0x4242
	pokeA := casm.Instructions{casm.Mov.Reg(casm.R9, casm.R1)}
	pokeA = append(pokeA, lookup("a", casm.R7)...)
	pokeA = append(pokeA,
		casm.LoadMem(casm.R2, casm.R9, 0, casm.Word), // data
		casm.LoadMem(casm.R3, casm.R2, 14, casm.DWord),
		casm.Add.Reg(casm.R7, casm.R3),
		casm.StoreImm(casm.R7, 0, 0x4242, casm.Word),
		casm.Mov.Imm(casm.R0, 2),
		casm.Return())
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{"a": arr(), "b": arr()},
		Programs: map[string]*ebpf.ProgramSpec{
			"leak":   {Name: "leak", Type: ebpf.XDP, License: "GPL", Instructions: leak},
			"leak_a": {Name: "leak_a", Type: ebpf.XDP, License: "GPL", Instructions: leakA},
			"poke_a": {Name: "poke_a", Type: ebpf.XDP, License: "GPL", Instructions: pokeA},
		},
	}
	coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{Unverified: true})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	var addrA, addrB uint64
	for name, dst := range map[string]*uint64{"leak": &addrB, "leak_a": &addrA} {
		if _, err := coll.Programs[name].Run(&waggle.RunOptions{Data: smallFrame()}); err != nil {
			t.Fatal(err)
		}
		if err := coll.Maps["a"].Lookup(uint32(0), dst); err != nil {
			t.Fatal(err)
		}
	}
	if err := coll.Maps["b"].Put(uint32(0), uint64(7)); err != nil {
		t.Fatal(err)
	}
	in := smallFrame()
	binary.LittleEndian.PutUint64(in[14:], addrB-addrA)
	if _, err := coll.Programs["poke_a"].Run(&waggle.RunOptions{Data: in}); !errors.Is(err, waggle.ErrMemory) {
		t.Fatalf("a write into map b from a program that does not reference it: %v", err)
	}
	var v uint64
	if err := coll.Maps["b"].Lookup(uint32(0), &v); err != nil || v != 7 {
		t.Fatalf("b holds %d, %v; want 7", v, err)
	}
	// The same program may write its own map.
	binary.LittleEndian.PutUint64(in[14:], 0)
	if _, err := coll.Programs["poke_a"].Run(&waggle.RunOptions{Data: in}); err != nil {
		t.Fatal(err)
	}
}

// TestClose_duringRuns: Close while many goroutines run programs and use
// maps: every run and map operation either works or fails with EBADF, never
// touches unmapped memory; runs after Close fail with EBADF.
func TestClose_duringRuns(t *testing.T) {
	for round := range 5 {
		coll := hostile(t, &waggle.CollectionOptions{CPUs: 2, Budget: 1 << 16})
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range 8 {
			wg.Go(func() {
				<-start
				for i := 0; ; i++ {
					var err error
					switch (g + i) % 4 {
					case 0:
						_, err = coll.Programs["forever"].Run(&waggle.RunOptions{Data: smallFrame()})
						if errors.Is(err, waggle.ErrBudget) {
							err = nil
						}
					case 1:
						_, err = coll.Programs["poke"].Run(&waggle.RunOptions{Data: pokeFrame(mHash, 1, i%8, 0, 1)})
					case 2:
						_, err = coll.Programs["lock_ok"].Run(&waggle.RunOptions{Data: smallFrame()})
					case 3:
						var v [16]byte
						err = coll.Maps["hash"].Lookup(uint32(i%8), &v)
						if errors.Is(err, waggle.ErrKeyNotExist) {
							err = nil
						}
					}
					if errors.Is(err, maps.EBADF) {
						return
					}
					if err != nil {
						t.Errorf("round %d: %v", round, err)
						return
					}
				}
			})
		}
		close(start)
		time.Sleep(time.Duration(round) * time.Millisecond)
		coll.Close()
		wg.Wait()
		if _, err := coll.Programs["lock_ok"].Run(&waggle.RunOptions{Data: smallFrame()}); !errors.Is(err, maps.EBADF) {
			t.Fatalf("a run after Close: %v", err)
		}
	}
}

// TestHostile_tailCallMemory: a tail-call target reaches the maps it
// references, not its caller's: b, entered from a, can write x (its map)
// but not y (a's), even through a pointer a left on the stack; and the
// error names b.
func TestHostile_tailCallMemory(t *testing.T) {
	arr := func() *ebpf.MapSpec { return &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1} }
	lookup := func(m string) casm.Instructions {
		return casm.Instructions{
			casm.StoreImm(casm.RFP, -16, 0, casm.Word),
			casm.LoadMapPtr(casm.R1, 0).WithReference(m),
			casm.Mov.Reg(casm.R2, casm.RFP),
			casm.Add.Imm(casm.R2, -16),
			casm.FnMapLookupElem.Call(),
		}
	}
	// a: *(r10-8) = &y[0]; tail call b.
	a := casm.Instructions{casm.Mov.Reg(casm.R6, casm.R1)}
	a = append(a, lookup("y")...)
	a = append(a, casm.StoreMem(casm.RFP, -8, casm.R0, casm.DWord),
		casm.Mov.Reg(casm.R1, casm.R6), casm.LoadMapPtr(casm.R2, 0).WithReference("jt"), casm.Mov.Imm(casm.R3, 0),
		casm.FnTailCall.Call(), casm.Mov.Imm(casm.R0, 1), casm.Return())
	// b: x[0] = 5; then, if the packet's byte 20 is 1, *(&y[0]) = 6.
	b := casm.Instructions{casm.Mov.Reg(casm.R6, casm.R1)}
	b = append(b, lookup("x")...)
	b = append(b,
		casm.Instruction{OpCode: casm.JEq.Op(casm.ImmSource), Dst: casm.R0, Constant: 0, Offset: 8},
		casm.StoreImm(casm.R0, 0, 5, casm.Word),
		casm.LoadMem(casm.R2, casm.R6, 0, casm.Word),
		casm.LoadMem(casm.R3, casm.R2, 20, casm.Byte),
		casm.Instruction{OpCode: casm.JNE.Op(casm.ImmSource), Dst: casm.R3, Constant: 1, Offset: 3},
		casm.LoadMem(casm.R4, casm.RFP, -8, casm.DWord),
		casm.StoreImm(casm.R4, 0, 6, casm.Word),
		casm.Mov.Imm(casm.R0, 2),
		casm.Mov.Imm(casm.R0, 2),
		casm.Return())
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{"x": arr(), "y": arr(),
			"jt": {Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}},
		Programs: map[string]*ebpf.ProgramSpec{
			"a": {Name: "a", Type: ebpf.XDP, License: "GPL", Instructions: a},
			"b": {Name: "b", Type: ebpf.XDP, License: "GPL", Instructions: b},
		},
	}
	coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{Unverified: true})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	if err := coll.Maps["jt"].Update(uint32(0), coll.Programs["b"], waggle.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if ret, err := coll.Programs["a"].Run(&waggle.RunOptions{Data: smallFrame()}); err != nil || ret != 2 {
		t.Fatalf("a, tail-calling b: %d, %v", ret, err)
	}
	var x, y uint64
	if err := coll.Maps["x"].Lookup(uint32(0), &x); err != nil || x != 5 {
		t.Fatalf("x = %d, %v; want 5", x, err)
	}
	in := smallFrame()
	in[20] = 1
	_, err = coll.Programs["a"].Run(&waggle.RunOptions{Data: in})
	if !errors.Is(err, waggle.ErrMemory) || !strings.Contains(err.Error(), "in program b, entered by a tail call") {
		t.Fatalf("b writing a's map: %v", err)
	}
	if err := coll.Maps["y"].Lookup(uint32(0), &y); err != nil || y != 0 {
		t.Fatalf("y = %d, %v; want 0", y, err)
	}
}

// TestHostile_innerMaps: a program reaches the values of the inner maps of
// the map-in-maps it references, also of an inner map stored after it
// loaded, and nothing else.
func TestHostile_innerMaps(t *testing.T) {
	inner := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}
	// p: m = outer[packet byte 20]; v = m[0]; *v = 9.
	p := casm.Instructions{
		casm.LoadMem(casm.R2, casm.R1, 0, casm.Word),
		casm.LoadMem(casm.R3, casm.R2, 20, casm.Byte),
		casm.StoreMem(casm.RFP, -8, casm.R3, casm.Word),
		casm.LoadMapPtr(casm.R1, 0).WithReference("outer"),
		casm.Mov.Reg(casm.R2, casm.RFP),
		casm.Add.Imm(casm.R2, -8),
		casm.FnMapLookupElem.Call(),
		{OpCode: casm.JEq.Op(casm.ImmSource), Dst: casm.R0, Constant: 0, Offset: 7},
		casm.Mov.Reg(casm.R1, casm.R0),
		casm.StoreImm(casm.RFP, -8, 0, casm.Word),
		casm.Mov.Reg(casm.R2, casm.RFP),
		casm.Add.Imm(casm.R2, -8),
		casm.FnMapLookupElem.Call(),
		{OpCode: casm.JEq.Op(casm.ImmSource), Dst: casm.R0, Constant: 0, Offset: 1},
		casm.StoreImm(casm.R0, 0, 9, casm.Word),
		casm.Mov.Imm(casm.R0, 2),
		casm.Return(),
	}
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			"outer": {Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 2, InnerMap: inner.Copy()},
			"in0":   inner.Copy(), "in1": inner.Copy(),
		},
		Programs: map[string]*ebpf.ProgramSpec{"p": {Name: "p", Type: ebpf.XDP, License: "GPL", Instructions: p}},
	}
	coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{Unverified: true})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	for slot, name := range []string{"in0", "in1"} {
		if err := coll.Maps["outer"].Update(uint32(slot), coll.Maps[name], waggle.UpdateAny); err != nil {
			t.Fatal(err)
		}
		in := smallFrame()
		in[20] = byte(slot)
		if ret, err := coll.Programs["p"].Run(&waggle.RunOptions{Data: in}); err != nil || ret != 2 {
			t.Fatalf("slot %d: %d, %v", slot, ret, err)
		}
		var v uint64
		if err := coll.Maps[name].Lookup(uint32(0), &v); err != nil || v != 9 {
			t.Fatalf("%s = %d, %v; want 9", name, v, err)
		}
	}
}

// TestClose_keptByAnother: a program or map of one collection stored in
// another's prog array or map-in-map stays usable after its own
// collection's Close, until the other closes too.
func TestClose_keptByAnother(t *testing.T) {
	jt := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{"jt": {Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}},
		// AttachXDP, as the "xdp" section gives b's program: a prog array
		// holds programs of one expected attach type.
		Programs: map[string]*ebpf.ProgramSpec{"a": {Name: "a", Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: "GPL", Instructions: casm.Instructions{
			casm.LoadMapPtr(casm.R2, 0).WithReference("jt"), casm.Mov.Imm(casm.R3, 0),
			casm.FnTailCall.Call(), casm.Mov.Imm(casm.R0, 1), casm.Return(),
		}}},
	}
	a, err := waggle.NewCollection(jt, &waggle.CollectionOptions{Unverified: true})
	if err != nil {
		t.Fatal(err)
	}
	b := hostile(t, nil)
	if err := a.Maps["jt"].Update(uint32(0), b.Programs["lock_ok"], waggle.UpdateAny); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := b.Programs["lock_ok"].Run(&waggle.RunOptions{Data: smallFrame()}); !errors.Is(err, maps.EBADF) {
		t.Fatalf("b's program after b.Close: %v", err)
	}
	// a's tail call still reaches b's program and b's map.
	for range 3 {
		if ret, err := a.Programs["a"].Run(&waggle.RunOptions{Data: smallFrame()}); err != nil || ret != 2 {
			t.Fatalf("a tail-calling into closed b: %d, %v", ret, err)
		}
	}
	v := make([]byte, 16)
	if err := b.Maps["locks"].Underlying().Lookup([]byte{0, 0, 0, 0}, v); err != nil || v[8] != 3 {
		t.Fatalf("b's map, kept by a: % x, %v; want a count of 3", v, err)
	}
	a.Close()
	if err := b.Maps["locks"].Underlying().Lookup([]byte{0, 0, 0, 0}, make([]byte, 16)); !errors.Is(err, maps.EBADF) {
		t.Fatalf("b's map after a.Close: %v, want EBADF", err)
	}
}
