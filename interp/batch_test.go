package interp_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
	"unsafe"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/cpubench"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/interp"
	"github.com/waggle-bpf/waggle/isa"
)

// pktItem is an item of the test batches, laid out as the batch API's
// items (waggle.BatchRun) are: a packet first, the return value further
// on.
type pktItem struct {
	data  []byte
	other []byte // stands for BatchRun's other fields
	ret   uint32
}

var (
	itemStride = reflect.TypeFor[pktItem]().Size()
	itemRetOff = reflect.TypeFor[pktItem]().Field(2).Offset
)

// xdpFrame is the memory of an XDP-like run: a context of two u64 words
// {data, data_end}, which fuzzgen.ForInterp's programs read, and a frame
// of room bytes whose region is the packet from data to data_end (its
// Bounds), as progtype lays out an XDP run.
type xdpFrame struct {
	ctx    []byte
	buf    []byte
	bounds [2]uint64
	args   engine.Args
}

// newXDPFrame returns a frame of room bytes. With whole, the run also
// owns the whole frame read-only, so that a program may read past its
// packet (in checked mode too) and see what the frame holds there.
func newXDPFrame(room int, whole bool) *xdpFrame {
	f := &xdpFrame{ctx: mem.Aligned(16), buf: mem.Aligned(room)}
	f.setEnd(0)
	f.args = engine.Args{
		Regs:    [5]uint64{mem.Addr(f.ctx)},
		Regions: []engine.Region{{Data: f.ctx}, {Data: f.buf, Writable: true, Bounds: &f.bounds, Name: "the packet (data to data_end)"}},
	}
	if whole {
		f.args.Regions = append(f.args.Regions, engine.Region{Data: f.buf, Name: "the frame"})
	}
	return f
}

func (f *xdpFrame) setEnd(n int) {
	data := mem.Addr(f.buf)
	f.bounds = [2]uint64{data, data + uint64(n)}
	binary.LittleEndian.PutUint64(f.ctx[0:], data)
	binary.LittleEndian.PutUint64(f.ctx[8:], data+uint64(n))
}

// load makes the frame a fresh one holding pkt, as a Run per packet
// would have it.
func (f *xdpFrame) load(pkt []byte) {
	clear(f.buf)
	f.setEnd(copy(f.buf, pkt))
}

// batch returns the batch of items over f, whose frame has used bytes of
// the packet before.
func (f *xdpFrame) batch(items []pktItem, used int) *engine.PacketBatch {
	return &engine.PacketBatch{
		Items: uintptr(mem.SliceAddr(items)), Stride: itemStride, RetOff: itemRetOff, N: len(items),
		Frame: uintptr(mem.Addr(f.buf)), Room: len(f.buf), Used: used,
		Ends: [2]uintptr{uintptr(mem.Addr(f.ctx) + 8), uintptr(mem.SliceAddr(f.bounds[:]) + 8)},
	}
}

var engines = []interp.Engine{{Mode: interp.Checked}, {Mode: interp.Fast}}

func mustLoadEngine(tb testing.TB, e interp.Engine, prog []isa.Instruction, opts engine.Options) engine.Program {
	tb.Helper()
	opts.UnsafeFastUnverified = !e.Checked()
	p, err := e.Load(prog, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func mustParse(tb testing.TB, text string) []isa.Instruction {
	tb.Helper()
	prog, err := asm.Parse(text)
	if err != nil {
		tb.Fatal(err)
	}
	return prog
}

func batcher(tb testing.TB, e interp.Engine) (engine.Machine, engine.PacketBatcher) {
	tb.Helper()
	m := e.NewMachine()
	pb, ok := m.(engine.PacketBatcher)
	if !ok {
		tb.Fatalf("%s's Machine is not an engine.PacketBatcher", e.Name())
	}
	return m, pb
}

// packets returns n packets of random bytes and lengths from 14 to 1500,
// with runs of shrinking lengths, so that a batch must zero what a longer
// packet left.
func packets(r *rand.Rand, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		var l int
		switch i % 4 {
		case 0:
			l = 1500 - r.IntN(64)
		case 1, 2:
			l = 14 + r.IntN(1500-14+1)
		case 3:
			l = 14 + r.IntN(64)
		}
		out[i] = make([]byte, l)
		for k := range out[i] {
			out[i][k] = byte(r.Uint32())
		}
	}
	return out
}

// frameHash reads the whole frame byte by byte, past the packet too
// (through the frame's read-only region: an access must lie in one
// region, so words would straddle the packet's end), after writing the
// packet's first byte, and returns a hash of it and of the packet's
// length: a batch that left a byte of an earlier packet in the frame gives
// another hash than a fresh frame.
const frameHash = `
	r2 = *(u64 *)(r1 + 0)
	r3 = *(u64 *)(r1 + 8)
	r4 = 0xaa
	*(u8 *)(r2 + 0) = r4
	r0 = r3
	r0 -= r2
	r3 = r2
	r3 += %d
loop:
	r4 = *(u8 *)(r2 + 0)
	r0 *= 0x1000193
	r0 ^= r4
	r2 += 1
	if r2 < r3 goto loop
	r4 = r0
	r4 >>= 32
	r0 ^= r4
	exit
`

// TestRunPackets_frame: every run of a batch finds the frame as a fresh
// one holds its packet, bytes past the packet zero, on both modes, over
// batches of one to 40 packets whose frame carries over from batch to
// batch.
func TestRunPackets_frame(t *testing.T) {
	const room = 1504
	prog := mustParse(t, fmt.Sprintf(frameHash, room))
	for _, e := range engines {
		t.Run(e.Name(), func(t *testing.T) {
			p := mustLoadEngine(t, e, prog, engine.Options{})
			r := rand.New(rand.NewPCG(1, 2))
			pkts := packets(r, 400)
			f, ref := newXDPFrame(room, true), newXDPFrame(room, true)
			_, pb := batcher(t, e)
			refM := e.NewMachine()
			used := 0
			for start := 0; start < len(pkts); {
				n := min(1+r.IntN(40), len(pkts)-start)
				items := make([]pktItem, n)
				for i := range items {
					items[i] = pktItem{data: pkts[start+i], ret: 0xdeadbeef}
				}
				b := f.batch(items, used)
				done, err := pb.RunPackets(p, &f.args, b)
				if err != nil || done != n {
					t.Fatalf("packets %d to %d: %d done, %v", start, start+n, done, err)
				}
				for i, it := range items {
					ref.load(it.data)
					want, err := refM.Run(p, &ref.args)
					if err != nil {
						t.Fatal(err)
					}
					if it.ret != uint32(want) {
						t.Fatalf("packet %d (%d bytes, after %d): r0 %#x, a fresh frame gives %#x", start+i, len(it.data), len(pkts[max(start+i-1, 0)]), it.ret, uint32(want))
					}
				}
				last := items[n-1].data
				if b.Used != len(last) {
					t.Fatalf("Used is %d after a %d-byte packet", b.Used, len(last))
				}
				if f.bounds[1] != mem.Addr(f.buf)+uint64(len(last)) || binary.LittleEndian.Uint64(f.ctx[8:]) != f.bounds[1] {
					t.Fatalf("data_end %#x and bounds %#x, want frame %#x + %d", binary.LittleEndian.Uint64(f.ctx[8:]), f.bounds, mem.Addr(f.buf), len(last))
				}
				runtime.KeepAlive(items)
				used = b.Used
				start += n
			}
		})
	}
}

// withLength returns the generated program's packet at length n, with a
// few of its input bytes (initial registers and stack) changed so that
// packets give different results: cut short (the program then returns
// fuzzgen.ShortReturn), or followed by random bytes.
func withLength(r *rand.Rand, pkt []byte, n int) []byte {
	out := make([]byte, max(n, len(pkt)))
	copy(out, pkt)
	for range 8 {
		out[r.IntN(fuzzgen.Scratch)] = byte(r.Uint32())
	}
	for k := len(pkt); k < n; k++ {
		out[k] = byte(r.Uint32())
	}
	return out[:n]
}

// TestRunPackets_generated: generated programs, which compute and write
// their packet, return in a batch what a Run per packet on a fresh frame
// returns, on both modes, and leave the last packet as that Run does.
func TestRunPackets_generated(t *testing.T) {
	const room, seeds, perBatch = 1500, 1000, 12
	for _, e := range engines {
		t.Run(e.Name(), func(t *testing.T) {
			f, ref := newXDPFrame(room, false), newXDPFrame(room, false)
			f.args.Budget, ref.args.Budget = 1<<20, 1<<20
			_, pb := batcher(t, e)
			refM := e.NewMachine()
			used := 0
			for seed := uint64(1); seed <= seeds; seed++ {
				g := fuzzgen.Generate(seed, fuzzgen.Config{MaxNodes: 64})
				// Budgeted, as difftest runs them: loops spend fuel.
				p := mustLoadEngine(t, e, fuzzgen.ForInterp(g.Insns), engine.Options{Budgeted: true})
				r := rand.New(rand.NewPCG(seed, 7))
				items := make([]pktItem, perBatch)
				for i := range items {
					n := fuzzgen.PacketSize + r.IntN(room-fuzzgen.PacketSize+1)
					if i%4 == 3 {
						n = 14 + r.IntN(fuzzgen.PacketSize-14)
					}
					items[i].data = withLength(r, g.Packet, n)
				}
				b := f.batch(items, used)
				done, err := pb.RunPackets(p, &f.args, b)
				if err != nil || done != perBatch {
					t.Fatalf("seed %d: %d done, %v", seed, done, err)
				}
				for i, it := range items {
					ref.load(it.data)
					want, err := refM.Run(p, &ref.args)
					if err != nil {
						t.Fatalf("seed %d, packet %d: %v", seed, i, err)
					}
					if it.ret != uint32(want) {
						t.Fatalf("seed %d, packet %d (%d bytes): r0 %#x, a Run on a fresh frame gives %#x", seed, i, len(it.data), it.ret, uint32(want))
					}
				}
				// ref holds what the last Run left: the same packet, and
				// zeros past it.
				if string(f.buf) != string(ref.buf) {
					t.Fatalf("seed %d: the frame after the batch differs from a fresh frame after a Run", seed)
				}
				runtime.KeepAlive(items)
				used = b.Used
			}
		})
	}
}

// TestRunPackets_sync: a program that may run Go (a helper call, a legacy
// packet load, a trace function) runs one item per RunPackets, after Sync
// with its index, and finds its own packet; the caller goes on with the
// next items.
func TestRunPackets_sync(t *testing.T) {
	// The helper returns the packet's first byte, and whether Sync came
	// for this item first.
	var synced []int
	var f *xdpFrame
	var current int
	table := helpers.Table{1: func(helpers.Env, *[5]uint64) (uint64, error) {
		ok := uint64(0)
		if len(synced) > 0 && synced[len(synced)-1] == current {
			ok = 0x100
		}
		return ok | uint64(f.buf[0]), nil
	}}
	cases := []struct {
		name  string
		prog  string
		trace bool
		want  func(pkt []byte) uint32
	}{
		{"helper", "call 1\nexit", false, func(pkt []byte) uint32 { return 0x100 | uint32(pkt[0]) }},
		// Args.Packet has a byte: the load succeeds, and r0 is then 7.
		{"legacy packet load", "r6 = r1\nr0 = *(u8 *)skb[0x0]\nr0 = 7\nexit", false, func([]byte) uint32 { return 7 }},
		{"trace", "r0 = *(u64 *)(r1 + 0)\nr0 = *(u8 *)(r0 + 1)\nexit", true, func(pkt []byte) uint32 { return uint32(pkt[1]) }},
	}
	for _, e := range engines {
		for _, tc := range cases {
			t.Run(e.Name()+"/"+tc.name, func(t *testing.T) {
				f = newXDPFrame(64, false)
				f.args.Packet = []byte{1}
				opts := engine.Options{Helpers: table}
				traced := 0
				if tc.trace {
					opts.Trace = func(int, *[11]uint64) {
						if len(synced) == 0 || synced[len(synced)-1] != current {
							t.Errorf("trace of item %d before its Sync (%v)", current, synced)
						}
						traced++
					}
				}
				p := mustLoadEngine(t, e, mustParse(t, tc.prog), opts)
				_, pb := batcher(t, e)
				items := make([]pktItem, 5)
				for i := range items {
					items[i] = pktItem{data: []byte{byte(0x10 + i), byte(0x20 + i), 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, ret: 0xdeadbeef}
				}
				synced = nil
				b := f.batch(items, 0)
				base := b.Items
				b.Sync = func(i int) { synced = append(synced, current+i) }
				for current = 0; current < len(items); current++ {
					b.Items, b.N = base+uintptr(current)*b.Stride, len(items)-current
					done, err := pb.RunPackets(p, &f.args, b)
					if err != nil || done != 1 {
						t.Fatalf("item %d: %d done, %v", current, done, err)
					}
					if got := items[current].ret; got != tc.want(items[current].data) {
						t.Errorf("item %d: %#x, want %#x", current, got, tc.want(items[current].data))
					}
					if current+1 < len(items) && items[current+1].ret != 0xdeadbeef {
						t.Fatalf("item %d ran in the batch of item %d", current+1, current)
					}
				}
				if fmt.Sprint(synced) != "[0 1 2 3 4]" {
					t.Errorf("Sync came for %v", synced)
				}
				if tc.trace && traced != 3*len(items) {
					t.Errorf("traced %d instructions", traced)
				}
				runtime.KeepAlive(items)
			})
		}
	}
}

// TestRunPackets_errors: a run that fails ends the batch with its index
// and the error a Run of it gives, after Sync with its index; the runs
// before it return, the ones after do not run.
func TestRunPackets_errors(t *testing.T) {
	// The packet's first byte counts loop iterations; 0xff reads
	// address 8, which a checked run refuses.
	const prog = `
	r2 = *(u64 *)(r1 + 0)
	r3 = *(u8 *)(r2 + 0)
	if r3 != 0xff goto loop
	r0 = *(u64 *)(r3 - 0xf7)
	exit
loop:
	r3 += -1
	if r3 s> 0 goto loop
	r0 = *(u8 *)(r2 + 1)
	exit
`
	cases := []struct {
		name    string
		checked bool // only on the checked engine
		budget  uint64
		bad     byte
		err     error
	}{
		{"fault", true, 0, 0xff, engine.ErrMemory},
		{"budget", false, 100, 200, engine.ErrBudget},
	}
	for _, e := range engines {
		for _, tc := range cases {
			if tc.checked && !e.Checked() {
				continue
			}
			t.Run(e.Name()+"/"+tc.name, func(t *testing.T) {
				p := mustLoadEngine(t, e, mustParse(t, prog), engine.Options{Budgeted: true})
				f := newXDPFrame(128, false)
				f.args.Budget = tc.budget
				m, pb := batcher(t, e)
				items := make([]pktItem, 8)
				for i := range items {
					n := 100 - 10*i
					items[i] = pktItem{data: make([]byte, n), ret: 0xdeadbeef}
					// 30 iterations spend 60 of the budget of 100: each
					// run has the whole budget.
					items[i].data[0], items[i].data[1] = 30, byte(0x40+i)
				}
				const bad = 5
				items[bad].data[0] = tc.bad
				var synced []int
				b := f.batch(items, 0)
				b.Sync = func(i int) { synced = append(synced, i) }
				done, err := pb.RunPackets(p, &f.args, b)
				if done != bad || !errors.Is(err, tc.err) || fmt.Sprint(synced) != "[5]" {
					t.Fatalf("%d done, %v, Sync for %v", done, err, synced)
				}
				for i, it := range items {
					want := uint32(0x40 + i)
					if i >= bad {
						want = 0xdeadbeef
					}
					if it.ret != want {
						t.Errorf("item %d returned %#x, want %#x", i, it.ret, want)
					}
				}
				if b.Used != len(items[bad].data) {
					t.Errorf("Used %d, the failing packet has %d bytes", b.Used, len(items[bad].data))
				}
				// A Run on the frame as the batch left it (the failing
				// packet's), on the same Machine (a fault may name its
				// stack), fails the same way.
				_, runErr := m.Run(p, &f.args)
				var got, want *engine.Fault
				if !errors.As(err, &got) || !errors.As(runErr, &want) || !reflect.DeepEqual(got, want) {
					t.Fatalf("the batch's error\n\t%#v\nRun's\n\t%#v", err, runErr)
				}
				runtime.KeepAlive(items)
			})
		}
	}
	// A budget for a program that does not count: Run's error, for item 0.
	for _, e := range engines {
		p := mustLoadEngine(t, e, mustParse(t, "r0 = 1\nexit"), engine.Options{})
		f := newXDPFrame(64, false)
		f.args.Budget = 10
		items := []pktItem{{data: make([]byte, 14)}, {data: make([]byte, 14)}}
		var synced []int
		b := f.batch(items, 0)
		b.Sync = func(i int) { synced = append(synced, i) }
		_, pb := batcher(t, e)
		done, err := pb.RunPackets(p, &f.args, b)
		_, runErr := e.NewMachine().Run(p, &f.args)
		if done != 0 || err == nil || runErr == nil || err.Error() != runErr.Error() || fmt.Sprint(synced) != "[0]" {
			t.Errorf("%s: %d done, %v (Run: %v), Sync for %v", e.Name(), done, err, runErr, synced)
		}
		runtime.KeepAlive(items)
	}
}

// TestRunPackets_stack: in checked mode each run of a batch starts with
// a clean stack, as each Run does: what a run wrote reads as zero in the
// next one, and as unwritten with Options.StrictStack.
func TestRunPackets_stack(t *testing.T) {
	// The first packet writes r10-8, the second reads it.
	prog := mustParse(t, `
	r2 = *(u64 *)(r1 + 0)
	r3 = *(u8 *)(r2 + 0)
	if r3 != 1 goto read
	r4 = 5
	*(u64 *)(r10 - 8) = r4
read:
	r0 = *(u64 *)(r10 - 8)
	exit
`)
	e := interp.Engine{Mode: interp.Checked}
	for _, strict := range []bool{false, true} {
		p := mustLoadEngine(t, e, prog, engine.Options{StrictStack: strict})
		f := newXDPFrame(64, false)
		items := []pktItem{{data: make([]byte, 14)}, {data: make([]byte, 14), ret: 0xdeadbeef}}
		items[0].data[0] = 1
		_, pb := batcher(t, e)
		done, err := pb.RunPackets(p, &f.args, f.batch(items, 0))
		switch {
		case items[0].ret != 5:
			t.Errorf("strict %v: the first run returned %d", strict, items[0].ret)
		case !strict && (done != 2 || err != nil || items[1].ret != 0):
			t.Errorf("the second run: %d done, %v, r0 %#x, want 0 (a clean stack)", done, err, items[1].ret)
		case strict && (done != 1 || !errors.Is(err, engine.ErrUninitStack)):
			t.Errorf("strict: %d done, %v, want ErrUninitStack in the second run", done, err)
		}
		runtime.KeepAlive(items)
	}
}

// TestRunPackets_allocs: a batch allocates nothing.
func TestRunPackets_allocs(t *testing.T) {
	prog := mustParse(t, "r2 = *(u64 *)(r1 + 8)\nr1 = *(u64 *)(r1 + 0)\nr0 = *(u8 *)(r1 + 13)\nexit")
	for _, e := range engines {
		p := mustLoadEngine(t, e, prog, engine.Options{})
		f := newXDPFrame(256, false)
		items := make([]pktItem, 64)
		for i := range items {
			items[i].data = make([]byte, 64)
		}
		_, pb := batcher(t, e)
		b := f.batch(items, 0)
		if n := testing.AllocsPerRun(100, func() {
			if done, err := pb.RunPackets(p, &f.args, b); err != nil || done != len(items) {
				t.Fatal(done, err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per batch", e.Name(), n)
		}
		runtime.KeepAlive(items)
	}
}

// TestRunPackets_hostile: an empty batch touches nothing; an inconsistent
// one is an error before any run; a packet longer than the frame is cut
// to it; an end address of 0 is skipped.
func TestRunPackets_hostile(t *testing.T) {
	prog := mustParse(t, "r0 = 3\nexit")
	for _, e := range engines {
		t.Run(e.Name(), func(t *testing.T) {
			p := mustLoadEngine(t, e, prog, engine.Options{})
			_, pb := batcher(t, e)
			f := newXDPFrame(64, false)
			items := []pktItem{{data: make([]byte, 20), ret: 1}, {data: make([]byte, 20), ret: 1}}
			for _, n := range []int{0, -1} {
				b := &engine.PacketBatch{N: n, Items: 8, Stride: 1, RetOff: 1000, Frame: 16, Room: -5, Used: 99,
					Ends: [2]uintptr{24, 32}, Sync: func(int) { t.Error("Sync") }}
				if done, err := pb.RunPackets(p, &f.args, b); done != 0 || err != nil || b.Used != 99 {
					t.Errorf("N %d: %d done, %v, Used %d", n, done, err, b.Used)
				}
			}
			for _, tc := range []struct {
				name string
				edit func(*engine.PacketBatch)
			}{
				{"no items", func(b *engine.PacketBatch) { b.Items = 0 }},
				{"stride too small", func(b *engine.PacketBatch) { b.Stride = 8 }},
				{"return value outside the item", func(b *engine.PacketBatch) { b.RetOff = b.Stride - 2 }},
				{"return value in the packet", func(b *engine.PacketBatch) { b.RetOff = 8 }},
				{"used past the room", func(b *engine.PacketBatch) { b.Used = b.Room + 1 }},
				{"negative room", func(b *engine.PacketBatch) { b.Room, b.Used = -1, 0 }},
				{"no frame", func(b *engine.PacketBatch) { b.Frame = 0 }},
			} {
				b := f.batch(items, 0)
				tc.edit(b)
				b.Sync = func(int) { t.Errorf("%s: Sync", tc.name) }
				if done, err := pb.RunPackets(p, &f.args, b); done != 0 || err == nil {
					t.Errorf("%s: %d done, %v", tc.name, done, err)
				}
				if items[0].ret != 1 {
					t.Fatalf("%s: ran", tc.name)
				}
			}
			// The batch stops, without an error and without touching the
			// frame, before a packet longer than the room or shorter
			// than Min, or an item whose guard word is not zero; the
			// items before it run.
			big := newXDPFrame(64, false)
			long := make([]byte, 100)
			for i := range long {
				long[i] = 0xee
			}
			for _, tc := range []struct {
				name string
				bad  pktItem
			}{{"long", pktItem{data: long}}, {"short", pktItem{data: long[:13]}}, {"guarded", pktItem{data: long[:20], other: []byte{1}}}} {
				for _, at := range []int{0, 2} {
					its := make([]pktItem, 4+at%1)
					for i := range its {
						its[i].data = make([]byte, 30)
					}
					its[at] = tc.bad
					clear(big.buf)
					b := big.batch(its, 0)
					b.Room, b.Min = 40, 14
					b.Guards[1] = unsafe.Offsetof(pktItem{}.other)
					b.Sync = func(i int) { t.Errorf("%s at %d: Sync(%d)", tc.name, at, i) }
					done, err := pb.RunPackets(p, &big.args, b)
					if done != at || err != nil {
						t.Fatalf("%s at %d: %d, %v", tc.name, at, done, err)
					}
					for i, c := range big.buf {
						if c == 0xee {
							t.Fatalf("%s at %d: byte %d of the frame is the refused packet's", tc.name, at, i)
						}
					}
					if want := 30 * min(at, 1); b.Used != want {
						t.Fatalf("%s at %d: Used %d, want %d", tc.name, at, b.Used, want)
					}
				}
			}
			if _, err := pb.RunPackets(foreign{}, &f.args, f.batch(items, 0)); !errors.Is(err, engine.ErrNotSupported) {
				t.Errorf("foreign program: %v", err)
			}
			runtime.KeepAlive(items)
		})
	}
}

// BenchmarkRunPackets is the interpreter's part of the batch API's cost:
// per packet, an XDP program "r0 = 2; exit" over 64-byte packets, N = 64,
// in a batch (RunPackets) and, to compare, by a Run per packet after the
// same copy:
//
//	go test ./interp -run '^$' -bench RunPackets -count 5
func BenchmarkRunPackets(b *testing.B) {
	const n = 64
	prog := mustParse(b, "r0 = 2\nexit")
	for _, e := range engines {
		b.Run(e.Name(), func(b *testing.B) {
			p := mustLoadEngine(b, e, prog, engine.Options{})
			f := newXDPFrame(256, false)
			items := make([]pktItem, n)
			for i := range items {
				items[i].data = make([]byte, 64)
				items[i].data[0] = byte(i)
			}
			m, pb := batcher(b, e)
			batch := f.batch(items, 0)
			b.Run("batch", func(b *testing.B) {
				cpubench.Loop(b, n, "packet", func() {
					if done, err := pb.RunPackets(p, &f.args, batch); err != nil || done != n {
						b.Fatal(done, err)
					}
				})
			})
			b.Run("run", func(b *testing.B) {
				cpubench.Loop(b, n, "packet", func() {
					for i := range items {
						it := &items[i]
						f.setEnd(copy(f.buf, it.data))
						r0, err := m.Run(p, &f.args)
						if err != nil {
							b.Fatal(err)
						}
						it.ret = uint32(r0)
					}
				})
			})
			runtime.KeepAlive(items)
		})
	}
}

// TestRerun: Rerun(n) makes the n runs of n Runs, each on what the one
// before left (a program that counts in its packet); a failing run ends
// it and counts; a program with a helper call makes one run per Rerun;
// a Rerun with no Run before it fails.
func TestRerun(t *testing.T) {
	count := mustParse(t, `
		r2 = *(u64 *)(r1 + 0)
		r3 = *(u64 *)(r1 + 8)
		r4 = r2
		r4 += 8
		if r4 > r3 goto out
		r0 = *(u64 *)(r2 + 0)
		r0 += 1
		*(u64 *)(r2 + 0) = r0
		if r0 != 5 goto out
	spin:
		goto spin
	out:
		exit`)
	for _, e := range engines {
		t.Run(e.Name(), func(t *testing.T) {
			m := e.NewMachine()
			rr := m.(engine.Rerunner)
			if _, _, err := rr.Rerun(3); err == nil {
				t.Fatal("Rerun before any Run")
			}
			p := mustLoadEngine(t, e, count, engine.Options{Budgeted: true})
			f := newXDPFrame(64, false)
			f.load(make([]byte, 8))
			f.args.Budget = 1000
			if r0, err := m.Run(p, &f.args); r0 != 1 || err != nil {
				t.Fatalf("Run: %d, %v", r0, err)
			}
			if r0, ran, err := rr.Rerun(3); r0 != 4 || ran != 3 || err != nil {
				t.Fatalf("Rerun(3): r0 %d, %d runs, %v; want 4, 3 runs", r0, ran, err)
			}
			// The fifth run spins until its budget runs out: the Rerun
			// stops there, the failed run counted.
			if _, ran, err := rr.Rerun(10); ran != 1 || !errors.Is(err, engine.ErrBudget) {
				t.Fatalf("Rerun(10) into a spinning run: %d runs, %v", ran, err)
			}
			if r0, ran, err := rr.Rerun(2); r0 != 7 || ran != 2 || err != nil {
				t.Fatalf("Rerun(2) after it: r0 %d, %d runs, %v; want 7, 2 runs", r0, ran, err)
			}
			calls := 0
			table := helpers.Table{1: func(helpers.Env, *[5]uint64) (uint64, error) { calls++; return 9, nil }}
			hp := mustLoadEngine(t, e, mustParse(t, "call 1\nexit"), engine.Options{Helpers: table})
			if r0, err := m.Run(hp, &engine.Args{}); r0 != 9 || err != nil {
				t.Fatalf("Run with a helper: %d, %v", r0, err)
			}
			if r0, ran, err := rr.Rerun(5); r0 != 9 || ran != 1 || err != nil || calls != 2 {
				t.Fatalf("Rerun(5) with a helper: r0 %d, %d runs, %v, %d calls; want one run", r0, ran, err, calls)
			}
		})
	}
}
