//go:build linux

package difftest

import (
	"bytes"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/engines"
	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/internal/jitrt"
	"github.com/waggle-bpf/waggle/internal/mem"
)

// TestJITDiff compares the JIT with the checked interpreter on generated
// programs (fuzzgen: every ALU and jump form, loads and stores of every
// size on the packet and the stack, atomics, loops with and without
// may_goto): r0 and the packet after the run must be identical. Half
// the programs run on the JIT with their constants blinded. A program runs on the JIT only if the checked interpreter
// ran it without a fault, since a fault in machine code kills the
// process. No kernel is needed, so it runs many more programs than
// TestKernelDiff:
//
//	WAGGLE_JITDIFF_N=1000000 WAGGLE_JITDIFF_SEED=0 go test ./internal/difftest -run TestJITDiff -v -timeout 60m
func TestJITDiff(t *testing.T) {
	if err := jitrt.Supported(); err != nil {
		t.Skip(err)
	}
	def := uint64(20_000)
	if testing.Short() {
		def = 2_000
	}
	n := envUint(t, "WAGGLE_JITDIFF_N", def)
	seed0 := envUint(t, "WAGGLE_JITDIFF_SEED", 1<<40)
	var next, ran, faulted atomic.Uint64
	var mu sync.Mutex
	var fails []string
	start := time.Now()
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			e := NewInterp()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				// may_goto in every other program; every other pair of
				// programs with its constants blinded.
				p, want, got := compareJIT(e, seed0+i, i%2 == 0, i%4 >= 2)
				if want.Err != nil {
					faulted.Add(1)
					continue
				}
				ran.Add(1)
				if !same(want, got) {
					mu.Lock()
					if len(fails) < maxReported {
						fails = append(fails, disasm(p.Insns, "  "))
						t.Errorf("seed %d (rerun: WAGGLE_JITDIFF_SEED=%d WAGGLE_JITDIFF_N=1):\nchecked: %v\njit:     %v\nprogram:\n%s", p.Seed, p.Seed, want, got, disasm(p.Insns, "  "))
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d programs (seeds %d..%d) in %v: %d compared, %d ended with an error on the checked interpreter (not run on the JIT), %d differences",
		n, seed0, seed0+n-1, time.Since(start).Round(time.Millisecond), ran.Load(), faulted.Load(), len(fails))
}

// FuzzJITDiff is TestJITDiff for go test -fuzz: the fuzzer picks the
// generator's seed and whether loops use may_goto and the JIT blinds
// constants; the checked interpreter and the JIT must agree.
//
//	go test ./internal/difftest -run '^$' -fuzz FuzzJITDiff -fuzztime 5m
func FuzzJITDiff(f *testing.F) {
	if err := jitrt.Supported(); err != nil {
		f.Skip(err)
	}
	for _, s := range []uint64{0, 1, 42, 1 << 32, 0xdeadbeef} {
		f.Add(s, s%2 == 0, s%3 == 0)
	}
	var (
		mu sync.Mutex
		e  = NewInterp()
	)
	f.Fuzz(func(t *testing.T, seed uint64, mayGoto, blind bool) {
		mu.Lock()
		defer mu.Unlock()
		p, want, got := compareJIT(e, seed, mayGoto, blind)
		if want.Err != nil {
			return // not run on the JIT
		}
		if !same(want, got) {
			t.Fatalf("seed %d (may_goto %v, blinded %v):\nchecked: %v\njit:     %v\nprogram:\n%s", seed, mayGoto, blind, want, got, disasm(p.Insns, "  "))
		}
	})
}

// compareJIT generates the program of seed and runs it on the checked
// interpreter (want) and, if that ran without an error, on the JIT (got),
// whose constants are blinded if blind. A program the interpreter
// faulted on does not run on the JIT: a fault in machine code would end
// the process.
func compareJIT(e *Interp, seed uint64, mayGoto, blind bool) (p *fuzzgen.Program, want, got Outcome) {
	p = fuzzgen.Generate(seed, fuzzgen.Config{MayGoto: mayGoto})
	if want = e.Run(p.Insns, p.Packet, Checked()); want.Err != nil {
		return p, want, Outcome{}
	}
	e.BlindConstants = blind
	got = e.Run(p.Insns, p.Packet, JIT())
	e.BlindConstants = false
	return p, want, got
}

// packetItem is an item of TestPacketBatches' batches: a packet first,
// as engine.PacketBatch requires, then the run's return value.
type packetItem struct {
	data []byte
	ret  uint32
}

// TestPacketBatches runs generated programs over batches of packets
// (engine.PacketBatcher) on the JIT and on the fast interpreter, and
// each packet alone on a fresh copy on the checked interpreter: every
// run's r0, and the last packet after its run, must be the same. The
// packets of a batch are the program's packet at six lengths, longest
// first and shortest last, each with its own bytes, so that a batch
// that left a byte of one packet for the next, or zeroed too little,
// shows. Runs that yield for fuel end a batch, which goes on from the
// next packet, as Program.RunBatch goes on.
//
//	WAGGLE_PACKETS_N=100000 go test ./internal/difftest -run TestPacketBatches -v
func TestPacketBatches(t *testing.T) {
	if err := jitrt.Supported(); err != nil {
		t.Skip(err)
	}
	def := uint64(3000)
	if testing.Short() {
		def = 300
	}
	n := envUint(t, "WAGGLE_PACKETS_N", def)
	seed0 := envUint(t, "WAGGLE_PACKETS_SEED", 1<<41)
	e := NewInterp()
	engs := []engine.Engine{JIT(), mustEngine(engines.InterpFast)}
	machines := []engine.Machine{engs[0].NewMachine(), engs[1].NewMachine()}
	ctx := mem.Aligned(16)
	compared := 0
	for i := range n {
		p := fuzzgen.Generate(seed0+i, fuzzgen.Config{MayGoto: i%2 == 0})
		var pkts [][]byte
		for k, cut := range []int{0, 1, 3, 7, 16, 40} {
			if cut >= len(p.Packet) {
				break
			}
			pkt := bytes.Clone(p.Packet[:len(p.Packet)-cut])
			for j := range pkt {
				pkt[j] ^= byte(k * (j + 1))
			}
			pkts = append(pkts, pkt)
		}
		want := make([]Outcome, len(pkts))
		ok := true
		for k, pkt := range pkts {
			if want[k] = e.Run(p.Insns, pkt, Checked()); want[k].Err != nil {
				ok = false
				break
			}
		}
		if !ok {
			continue // a run the checked interpreter refused: not for a batch
		}
		compared++
		for x, eng := range engs {
			prog, err := eng.Load(fuzzgen.ForInterp(p.Insns), engine.Options{Budgeted: true, UnsafeFastUnverified: true})
			if err != nil {
				t.Fatalf("seed %d: %s: %v", p.Seed, eng.Name(), err)
			}
			items := make([]packetItem, len(pkts))
			for k, pkt := range pkts {
				items[k].data = pkt
			}
			frame := mem.Aligned(len(p.Packet))
			putU64(ctx[0:], mem.Addr(frame))
			args := &engine.Args{Regs: [5]uint64{mem.Addr(ctx)}, Budget: e.Budget,
				Regions: []engine.Region{{Data: ctx}, {Data: frame, Writable: true}}}
			b := &engine.PacketBatch{Stride: unsafe.Sizeof(packetItem{}), RetOff: unsafe.Offsetof(packetItem{}.ret),
				Frame: uintptr(mem.Addr(frame)), Room: len(frame), Ends: [2]uintptr{uintptr(mem.Addr(ctx)) + 8}}
			pb := machines[x].(engine.PacketBatcher)
			for done := 0; done < len(items); {
				b.Items, b.N = uintptr(unsafe.Pointer(&items[done])), len(items)-done
				d, err := pb.RunPackets(prog, args, b)
				if err != nil || d == 0 {
					t.Fatalf("seed %d: %s: RunPackets from packet %d: %d, %v", p.Seed, eng.Name(), done, d, err)
				}
				done += d
			}
			for k, it := range items {
				if it.ret != uint32(want[k].Ret) {
					t.Errorf("seed %d (rerun: WAGGLE_PACKETS_SEED=%d WAGGLE_PACKETS_N=1): %s: packet %d of %d bytes: r0 %#x in a batch, %#x alone\nprogram:\n%s",
						p.Seed, p.Seed, eng.Name(), k, len(it.data), it.ret, uint32(want[k].Ret), disasm(p.Insns, "  "))
				}
			}
			last := want[len(want)-1].Packet
			if !bytes.Equal(frame[:len(last)], last) || !bytes.Equal(frame[len(last):], make([]byte, len(frame)-len(last))) {
				t.Errorf("seed %d: %s: the frame after the batch is %x, the last packet after its run %x", p.Seed, eng.Name(), frame, last)
			}
			runtime.KeepAlive(items)
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("%d programs (seeds %d..%d): %d compared over batches of up to 6 packets on %s and %s", n, seed0, seed0+n-1, compared, engs[0].Name(), engs[1].Name())
}
