//go:build linux

package difftest

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/internal/jitrt"
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
