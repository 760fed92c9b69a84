//go:build linux && amd64

package amd64_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/jit/amd64"
)

// batchItem is an item of the packet batches of these tests: a packet
// first, as engine.PacketBatch requires, then the run's return value.
// Batches of them are made with a length known only at run time, so
// that they live on the heap, which does not move.
type batchItem struct {
	data  []byte
	ret   uint32
	other *int // a guard: the batch stops before an item that has one
}

// batchRig is a frame of room bytes and a context of two words, the
// packet's start and end, as an XDP program reads them.
type batchRig struct {
	frame, ctx []byte
}

func newBatchRig(room int) *batchRig {
	r := &batchRig{frame: mem.Aligned(room), ctx: mem.Aligned(16)}
	binary.LittleEndian.PutUint64(r.ctx, mem.Addr(r.frame))
	return r
}

func (r *batchRig) args(budget uint64) *engine.Args {
	return &engine.Args{Regs: [5]uint64{mem.Addr(r.ctx)}, Budget: budget}
}

// batch describes items to RunPackets, with the frame holding used
// bytes of the packet before.
func (r *batchRig) batch(items []batchItem, used int, sync func(int)) *engine.PacketBatch {
	return &engine.PacketBatch{
		Items: uintptr(mem.SliceAddr(items)), Stride: unsafe.Sizeof(batchItem{}), RetOff: unsafe.Offsetof(batchItem{}.ret),
		N: len(items), Frame: uintptr(mem.Addr(r.frame)), Room: len(r.frame), Used: used,
		Ends: [2]uintptr{uintptr(mem.Addr(r.ctx)) + 8}, Sync: sync,
	}
}

// fresh runs p on a fresh frame holding pkt, as a run outside a batch
// would: it returns r0 and the frame after the run.
func fresh(t *testing.T, p engine.Program, room int, pkt []byte, budget uint64) (uint64, []byte, error) {
	t.Helper()
	r := newBatchRig(room)
	copy(r.frame, pkt)
	binary.LittleEndian.PutUint64(r.ctx[8:], mem.Addr(r.frame)+uint64(len(pkt)))
	r0, err := amd64.NewMachine().Run(p, r.args(budget))
	return r0, r.frame, err
}

// sumFrame is a program that sums the whole frame of 512 bytes (what
// is past the packet too: it must be zero), adds one to each packet
// byte, and returns the packet's length << 32 plus the sum. A packet
// whose first byte is 0xEE calls helper 1 first (an exit to Go); one
// whose first byte is 0xDD loops until its budget runs out.
const sumFrame = `
	r6 = *(u64 *)(r1 + 0)
	r7 = *(u64 *)(r1 + 8)
	r2 = *(u8 *)(r6 + 0)
	if r2 != 0xEE goto nocall
	call 1
nocall:
	r2 = *(u8 *)(r6 + 0)
	if r2 != 0xDD goto sum
spin:
	r2 += 1
	goto spin
sum:
	r0 = 0
	r3 = r6
	r4 = r6
	r4 += 512
frame:
	r5 = *(u8 *)(r3 + 0)
	r0 += r5
	r3 += 1
	if r3 < r4 goto frame
	r3 = r6
bump:
	if r3 >= r7 goto out
	r5 = *(u8 *)(r3 + 0)
	r5 += 1
	*(u8 *)(r3 + 0) = r5
	r3 += 1
	goto bump
out:
	r7 -= r6
	r7 <<= 32
	r0 += r7
	exit`

// TestRunPackets: every run of a packet batch gives what a run on a
// fresh frame holding its packet gives, whatever the packets before it
// left in the frame (longer ones, bytes the program changed); the frame
// and the context's end are the last packet's afterwards.
func TestRunPackets(t *testing.T) {
	calls := 0
	table := helpers.Table{1: func(env helpers.Env, a *[5]uint64) (uint64, error) { calls++; return 0, nil }}
	_, p := both(t, parse(t, sumFrame), engine.Options{Helpers: table, Budgeted: true})
	const room = 512
	rng := rand.New(rand.NewPCG(1, 2))
	// Every way the stub copies (words, 16-byte blocks, rep movsb), at
	// and around their limits, and at random; a longest packet, then
	// shorter ones.
	sizes := []int{room, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 255, 256, 257, 300, 64, 14}
	n := len(sizes) + 40
	items := make([]batchItem, n)
	for i := range items {
		size := 1 + rng.IntN(room)
		if i < len(sizes) {
			size = sizes[i]
		}
		pkt := make([]byte, size)
		for k := range pkt {
			pkt[k] = byte(1 + rng.IntN(0xD0)) // never 0, 0xDD or 0xEE
		}
		items[i].data = pkt
	}
	want := make([]uint64, n)
	for i, it := range items {
		r0, _, err := fresh(t, p, room, it.data, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = r0
	}
	r := newBatchRig(room)
	m := amd64.NewMachine()
	b := r.batch(items, 0, func(i int) { t.Fatalf("Sync(%d) in a batch that needs no Go", i) })
	done, err := m.RunPackets(p, r.args(1<<20), b)
	if err != nil || done != n {
		t.Fatalf("RunPackets: %d of %d, %v", done, n, err)
	}
	for i, it := range items {
		if it.ret != uint32(want[i]) {
			t.Errorf("item %d (%d bytes): r0 %#x, a fresh run %#x", i, len(it.data), it.ret, uint32(want[i]))
		}
	}
	last := items[n-1].data
	if b.Used != len(last) {
		t.Errorf("Used %d, the last packet has %d bytes", b.Used, len(last))
	}
	if end := binary.LittleEndian.Uint64(r.ctx[8:]); end != mem.Addr(r.frame)+uint64(len(last)) {
		t.Errorf("data_end %#x, want frame + %d", end, len(last))
	}
	bumped := bytes.Clone(last)
	for k := range bumped {
		bumped[k]++
	}
	if !bytes.Equal(r.frame[:len(last)], bumped) || !bytes.Equal(r.frame[len(last):], make([]byte, room-len(last))) {
		t.Errorf("frame after the batch:\n%x\nwant the last packet, each byte plus one, then zeros", r.frame)
	}
	if calls != 0 {
		t.Errorf("the helper ran %d times", calls)
	}
}

// TestRunPackets_exit: a run that exits to Go ends the batch after it,
// with Sync called once for its item before the helper runs; a run that
// fails ends it before, with Sync called for it and the error Run gives.
func TestRunPackets_exit(t *testing.T) {
	var order []string
	table := helpers.Table{1: func(env helpers.Env, a *[5]uint64) (uint64, error) {
		order = append(order, "helper")
		return 0, nil
	}}
	_, p := both(t, parse(t, sumFrame), engine.Options{Helpers: table, Budgeted: true})
	const room = 512
	items := make([]batchItem, 6+len(order))
	for i := range items {
		items[i].data = bytes.Repeat([]byte{byte(i + 1)}, 60)
	}
	items[2].data[0] = 0xEE
	r := newBatchRig(room)
	m := amd64.NewMachine()
	var synced []int
	sync := func(i int) { synced = append(synced, i); order = append(order, "sync") }
	done, err := m.RunPackets(p, r.args(1<<20), r.batch(items, 0, sync))
	if err != nil || done != 3 {
		t.Fatalf("RunPackets: %d, %v; want 3 runs (the third calls a helper)", done, err)
	}
	if len(synced) != 1 || synced[0] != 2 || len(order) != 2 || order[0] != "sync" {
		t.Fatalf("Sync calls %v, order %v: want Sync(2) before the helper", synced, order)
	}
	if items[3].ret != 0 {
		t.Errorf("item 3 ran in a batch cut at item 2")
	}
	want, _, err := fresh(t, p, room, items[2].data, 1<<20)
	if err != nil || items[2].ret != uint32(want) {
		t.Errorf("item 2: r0 %#x, a fresh run %#x (%v)", items[2].ret, uint32(want), err)
	}

	// The rest, from item 3, with item 4 spinning until the budget runs
	// out: its yields to Go call Sync(1) (the batch's second item) once.
	synced = synced[:0]
	items[4].data[0] = 0xDD
	rest := items[3:]
	done, err = m.RunPackets(p, r.args(100_000), r.batch(rest, 60, sync))
	_, _, werr := fresh(t, p, room, items[4].data, 100_000)
	if done != 1 || !errors.Is(err, engine.ErrBudget) || err.Error() != werr.Error() {
		t.Fatalf("RunPackets: %d, %v; want 1 run, then %v", done, err, werr)
	}
	if len(synced) != 1 || synced[0] != 1 {
		t.Errorf("Sync calls %v, want [1]", synced)
	}
	if items[5].ret != 0 {
		t.Errorf("item 5 ran after a failed run")
	}
}

// TestRunPackets_allocs: a batch allocates nothing.
func TestRunPackets_allocs(t *testing.T) {
	_, p := both(t, parse(t, "r0 = 2\nexit"), engine.Options{})
	r := newBatchRig(256)
	items := make([]batchItem, 64+len(t.Name())%1)
	for i := range items {
		items[i].data = make([]byte, 64)
	}
	m := amd64.NewMachine()
	a := r.args(0)
	b := r.batch(items, 0, nil)
	if n := testing.AllocsPerRun(100, func() {
		if done, err := m.RunPackets(p, a, b); err != nil || done != len(items) {
			t.Fatal(done, err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per batch", n)
	}
	if done, err := m.RunPackets(p, a, r.batch(nil, 0, nil)); done != 0 || err != nil {
		t.Errorf("an empty batch: %d, %v", done, err)
	}
}

// TestRunPackets_refuse: a batch stops before an item whose packet is
// too short or too long, or whose guard words are not zero, and returns
// its index without an error, having run the items before it.
func TestRunPackets_refuse(t *testing.T) {
	_, p := both(t, parse(t, "r0 = 7\nexit"), engine.Options{})
	r := newBatchRig(512)
	m := amd64.NewMachine()
	for _, tc := range []struct {
		name string
		bad  batchItem
	}{
		{"short", batchItem{data: make([]byte, 13)}},
		{"long", batchItem{data: make([]byte, 513)}},
		{"guard", batchItem{data: make([]byte, 64), other: new(int)}},
	} {
		for _, at := range []int{0, 1, 5} {
			items := make([]batchItem, 6+at%1)
			for i := range items {
				items[i].data = make([]byte, 14+i)
			}
			items[at] = tc.bad
			b := r.batch(items, 0, nil)
			b.Min = 14
			b.Guards[2] = unsafe.Offsetof(batchItem{}.other)
			done, err := m.RunPackets(p, r.args(0), b)
			if done != at || err != nil {
				t.Errorf("%s item at %d: RunPackets %d, %v", tc.name, at, done, err)
			}
			for i, it := range items {
				if want := uint32(7 * btoi(i < at)); it.ret != want {
					t.Errorf("%s item at %d: item %d returned %d, want %d", tc.name, at, i, it.ret, want)
				}
			}
		}
	}
}

func btoi(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// BenchmarkRunPackets is the cost of one run in a batch of 64 packets
// (of 14, 64 and 1500 bytes) of "r0 = 2; exit":
//
//	go test ./jit/amd64 -run '^$' -bench RunPackets
func BenchmarkRunPackets(b *testing.B) {
	_, p := both(b, parse(b, "r0 = 2\nexit"), engine.Options{})
	for _, size := range []int{14, 64, 1500} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			r := newBatchRig(4096)
			items := make([]batchItem, 64+len(b.Name())%1)
			for i := range items {
				items[i].data = make([]byte, size)
			}
			m := amd64.NewMachine()
			a := r.args(0)
			pb := r.batch(items, 0, nil)
			pb.Min, pb.Guards = 14, [4]uintptr{unsafe.Offsetof(batchItem{}.other)} // as RunBatch checks its items
			b.ReportAllocs()
			for b.Loop() {
				if done, err := m.RunPackets(p, a, pb); err != nil || done != len(items) {
					b.Fatal(done, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(items)), "ns/run")
		})
	}
}
