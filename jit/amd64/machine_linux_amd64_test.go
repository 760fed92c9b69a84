//go:build linux && amd64

package amd64_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/interp"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/jit/amd64"
)

func parse(tb testing.TB, src string) []isa.Instruction {
	tb.Helper()
	p, err := asm.Parse(src)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// both loads prog on the checked interpreter and the JIT.
func both(tb testing.TB, prog []isa.Instruction, opts engine.Options) (ref, jit engine.Program) {
	tb.Helper()
	ro := opts
	ref, err := interp.Engine{Mode: interp.Checked}.Load(prog, ro)
	if err != nil {
		tb.Fatal(err)
	}
	jo := opts
	jo.UnsafeFastUnverified = true
	jit, err = amd64.Engine{}.Load(prog, jo)
	if err != nil {
		tb.Fatal(err)
	}
	return ref, jit
}

// sameRun runs both programs with a and requires the same r0 and the
// same error class and slot.
func sameRun(t *testing.T, ref, jit engine.Program, a func() *engine.Args) (uint64, error) {
	t.Helper()
	want, werr := interp.Engine{Mode: interp.Checked}.NewMachine().Run(ref, a())
	got, gerr := amd64.Engine{}.NewMachine().Run(jit, a())
	if want != got || (werr == nil) != (gerr == nil) {
		t.Fatalf("interpreter: %d, %v\njit:         %d, %v", want, werr, got, gerr)
	}
	if werr != nil {
		var wf, gf *engine.Fault
		if !errors.As(werr, &wf) || !errors.As(gerr, &gf) || wf.PC != gf.PC || !errors.Is(gerr, wf.Err) {
			t.Fatalf("interpreter: %v\njit:         %v", werr, gerr)
		}
	}
	return got, gerr
}

// TestLimits: the budget, the frame limit and the stop flag end a run
// on the JIT at the slot they end it on the interpreter.
func TestLimits(t *testing.T) {
	loop := parse(t, `
		r0 = 0
	top:
		r0 += 1
		if r0 != 0 goto top
		exit`)
	recurse := parse(t, `
		call f
		exit
	f:
		r0 = 1
		call f
		exit`)
	ref, jit := both(t, loop, engine.Options{Budgeted: true})
	for _, budget := range []uint64{1, 2, 3, 100, 12345} {
		_, err := sameRun(t, ref, jit, func() *engine.Args { return &engine.Args{Budget: budget} })
		if !errors.Is(err, engine.ErrBudget) {
			t.Fatalf("budget %d: %v", budget, err)
		}
	}
	ref, jit = both(t, recurse, engine.Options{})
	if _, err := sameRun(t, ref, jit, func() *engine.Args { return &engine.Args{} }); !errors.Is(err, engine.ErrCallDepth) {
		t.Fatalf("recursion: %v", err)
	}
	// A run that never ends stops when asked.
	var stop atomic.Bool
	time.AfterFunc(20*time.Millisecond, func() { stop.Store(true) })
	_, err := amd64.Engine{}.NewMachine().Run(jit2(t, loop), &engine.Args{Stop: &stop})
	if !errors.Is(err, engine.ErrStopped) {
		t.Fatalf("stop: %v", err)
	}
}

// TestFusedLatch: a loop's exit test followed by its back edge ("if
// cond goto +1; goto top"), which the JIT emits as one latch taken when
// the condition fails, ends and runs out of budget where the interpreter
// does: for every condition, 64- and 32-bit, register and immediate, on
// both sides of each bound, and not fused where another jump goes to the
// back edge.
func TestFusedLatch(t *testing.T) {
	conds := []string{"==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&"}
	for _, cond := range conds {
		for _, w := range []string{"r", "w"} {
			for _, rhs := range []string{"7", "r2", "-3"} {
				if w == "w" && rhs == "r2" {
					rhs = "w2"
				}
				for _, start := range []int{-9, 0, 3, 7, 8, 40} {
					src := fmt.Sprintf(`
						r0 = 0
						r1 = %d
						r2 = 7
					top:
						r0 += 1
						r1 += 1
						if r0 > 30 goto out
						if %s1 %s %s goto +1
						goto top
						r0 += 100
					out:
						exit`, start, w, cond, rhs)
					ref, jit := both(t, parse(t, src), engine.Options{Budgeted: true})
					for _, budget := range []uint64{0, 1, 5, 6, 7, 8, 20, 40, 200} {
						if _, err := sameRun(t, ref, jit, func() *engine.Args { return &engine.Args{Budget: budget} }); err != nil && !errors.Is(err, engine.ErrBudget) {
							t.Fatalf("%s: budget %d: %v", src, budget, err)
						}
					}
				}
			}
		}
	}
	// Another jump to the back edge: not fused, and still right.
	ref, jit := both(t, parse(t, `
		r0 = 0
		if r1 == 5 goto back
	top:
		r0 += 1
		if r0 == 9 goto +1
	back:
		goto top
		exit`), engine.Options{Budgeted: true})
	for _, budget := range []uint64{0, 3, 4, 30} {
		for _, r1 := range []uint64{0, 5} {
			sameRun(t, ref, jit, func() *engine.Args { return &engine.Args{Budget: budget, Regs: [5]uint64{r1}} })
		}
	}
}

func jit2(t *testing.T, prog []isa.Instruction) engine.Program {
	_, j := both(t, prog, engine.Options{Budgeted: true})
	return j
}

// TestHelpers: helpers run in Go with r1-r5 and set r0; r1-r5 and r6-r9
// survive the call as the interpreter keeps them; callbacks re-enter
// the code, nested, through Env.Call; a helper's error is a fault at
// its call.
func TestHelpers(t *testing.T) {
	table := helpers.Table{
		1: func(env helpers.Env, a *[5]uint64) (uint64, error) {
			return a[0]*1000 + a[1]*100 + a[2]*10 + a[3] + a[4]<<32, nil
		},
		// 2 calls the callback in r1 r2 times with the index and sums
		// its results, like bpf_loop.
		2: func(env helpers.Env, a *[5]uint64) (uint64, error) {
			var sum uint64
			for i := range a[1] {
				v, err := env.Call(a[0], [5]uint64{i, a[2]})
				if err != nil {
					return 0, err
				}
				sum += v
			}
			return sum, nil
		},
		3: func(env helpers.Env, a *[5]uint64) (uint64, error) { return 0, errors.New("no") },
	}
	prog := parse(t, `
		r6 = 6
		r7 = 7
		r8 = 8
		r9 = 9
		r1 = 1
		r2 = 2
		r3 = 3
		r4 = 4
		r5 = 5
		call 1
		r0 += r1
		r0 += r2
		r0 += r3
		r0 += r4
		r0 += r5
		r0 += r6
		r0 += r7
		r0 += r8
		r0 += r9
		r6 = r0
		r1 = func(cb)
		r2 = 10
		r3 = 3
		call 2
		r0 += r6
		exit
	cb:
		r0 = r1
		r0 *= r2
		if r1 != 7 goto out
		r1 = func(cb2)
		r2 = 2
		r3 = 1000
		call 2
	out:
		exit
	cb2:
		r0 = r2
		exit`)
	ref, jit := both(t, prog, engine.Options{Helpers: table})
	got, _ := sameRun(t, ref, jit, func() *engine.Args { return &engine.Args{} })
	if want := uint64(1234 + 5<<32 + 45 + 3*45 - 21 + 2000); got != want {
		t.Errorf("r0 %d, want %d", got, want)
	}
	ref, jit = both(t, parse(t, "r0 = 1\ncall 3\nexit"), engine.Options{Helpers: table})
	if _, err := sameRun(t, ref, jit, func() *engine.Args { return &engine.Args{} }); !errors.Is(err, engine.ErrHelper) {
		t.Errorf("failing helper: %v", err)
	}
}

// TestStress runs programs whose helpers grow the goroutine stack (so
// it moves while machine code is parked in a helper) on several
// goroutines while the collector runs: every result must be right.
func TestStress(t *testing.T) {
	table := helpers.Table{1: func(env helpers.Env, a *[5]uint64) (uint64, error) {
		return deep(int(a[0]%64) + 200), nil
	}}
	prog := parse(t, `
		r6 = 0
		r7 = 0
	top:
		r1 = r6
		call 1
		r7 += r0
		r6 += 1
		if r6 < 100 goto top
		r0 = r7
		exit`)
	_, jit := both(t, prog, engine.Options{Helpers: table})
	var want uint64
	for i := range 100 {
		want += deep(i%64 + 200)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				runtime.GC()
			}
		}
	}()
	defer close(done)
	runs := 300
	if testing.Short() {
		runs = 30
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			m := amd64.Engine{}.NewMachine()
			for range runs {
				got, err := m.Run(jit, &engine.Args{})
				if err != nil || got != want {
					t.Errorf("r0 %d, %v, want %d", got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// deep recurses n frames of 1 KiB each, so the goroutine's stack grows.
func deep(n int) uint64 {
	var pad [1024]byte
	pad[n%1024] = byte(n)
	if n == 0 {
		return uint64(pad[0])
	}
	return deep(n-1) + uint64(pad[n%1024])
}

// TestBlindConstants: with BlindConstants the program's immediates are
// nowhere in the machine code, and the program computes the same.
func TestBlindConstants(t *testing.T) {
	prog := parse(t, `
		r0 = 0x12345678
		r0 += 0x7eadbeef
		r0 *= 0x3c0ffee3
		w0 /= 0x4dd1dd1e
		*(u32 *)(r10 - 4) = 0x5eedf00d
		r1 = *(u32 *)(r10 - 4)
		r0 ^= r1
		if r0 == 0x6afebabe goto out
		r2 = 0x1122334455667788 ll
		r0 += r2
	out:
		exit`)
	immediates := [][]byte{{0x78, 0x56, 0x34, 0x12}, {0xef, 0xbe, 0xad, 0x7e}, {0xe3, 0xfe, 0x0f, 0x3c}, {0x1e, 0xdd, 0xd1, 0x4d},
		{0x0d, 0xf0, 0xed, 0x5e}, {0xbe, 0xba, 0xfe, 0x6a}, {0x88, 0x77, 0x66, 0x55}, {0x44, 0x33, 0x22, 0x11}}
	want, _ := interp.NewMachine().Run(mustLoadInterp(t, prog), &engine.Args{})
	for _, blind := range []bool{false, true} {
		p, err := amd64.Engine{}.Load(prog, engine.Options{UnsafeFastUnverified: true, BlindConstants: blind})
		if err != nil {
			t.Fatal(err)
		}
		code := p.(*amd64.Program).Code()
		found := 0
		for _, imm := range immediates {
			if bytes.Contains(code, imm) {
				found++
			}
		}
		if blind && found > 0 || !blind && found != len(immediates) {
			t.Errorf("blind %v: %d of %d immediates in the code", blind, found, len(immediates))
		}
		got, err := amd64.Engine{}.NewMachine().Run(p, &engine.Args{})
		if err != nil || got != want {
			t.Errorf("blind %v: r0 %#x, %v, want %#x", blind, got, err, want)
		}
	}
}

func mustLoadInterp(t *testing.T, prog []isa.Instruction) *interp.Program {
	t.Helper()
	p, err := interp.Load(prog, interp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// BenchmarkMachineRun is the JIT's fixed cost per run, without the
// runtime around it: enter, "r0 = 2; exit", leave.
//
//	go test ./jit/amd64 -run '^$' -bench MachineRun
func BenchmarkMachineRun(b *testing.B) {
	_, p := both(b, parse(b, "r0 = 2\nexit"), engine.Options{Budgeted: true})
	m := amd64.Engine{}.NewMachine()
	a := &engine.Args{Budget: 1 << 30}
	b.ReportAllocs()
	for b.Loop() {
		if r0, err := m.Run(p, a); err != nil || r0 != 2 {
			b.Fatal(r0, err)
		}
	}
}

// BenchmarkHelperExit is the cost of a helper that exits to Go (a
// trivial one), per call: 100 calls per run.
//
//	go test ./jit/amd64 -run '^$' -bench HelperExit
func BenchmarkHelperExit(b *testing.B) {
	table := helpers.Table{7: func(env helpers.Env, a *[5]uint64) (uint64, error) { return a[0] + 1, nil }}
	prog := parse(b, `
		r6 = 0
	top:
		r1 = r6
		call 7
		r6 = r0
		if r6 < 100 goto top
		r0 = r6
		exit`)
	for _, e := range []engine.Engine{interp.Engine{Mode: interp.Fast}, amd64.Engine{}} {
		b.Run(e.Name(), func(b *testing.B) {
			p, err := e.Load(prog, engine.Options{Helpers: table, UnsafeFastUnverified: true})
			if err != nil {
				b.Fatal(err)
			}
			m := e.NewMachine()
			a := &engine.Args{}
			for b.Loop() {
				if r0, err := m.Run(p, a); err != nil || r0 != 100 {
					b.Fatal(r0, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/call")
		})
	}
}

// TestLoad_refused: the JIT refuses what it must not run, with an error,
// never a crash: unverified programs, malformed ones (a jump out of the
// program, falling off the end, a bad opcode, a kfunc call), tracing.
func TestLoad_refused(t *testing.T) {
	ok := parse(t, "r0 = 0\nexit")
	if _, err := (amd64.Engine{}).Load(ok, engine.Options{}); !errors.Is(err, amd64.ErrUnverified) {
		t.Errorf("unverified: %v", err)
	}
	if _, err := (amd64.Engine{}).Load(ok, engine.Options{UnsafeFastUnverified: true, Trace: func(int, *[11]uint64) {}}); !errors.Is(err, engine.ErrNotSupported) {
		t.Errorf("trace: %v", err)
	}
	for name, prog := range map[string][]isa.Instruction{
		"jump out":     {{Op: isa.OpJA, Off: 5}, {Op: isa.OpExit}},
		"no exit":      {{Op: isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov), Imm: 1}},
		"bad opcode":   {{Op: 0xff}, {Op: isa.OpExit}},
		"kfunc":        {{Op: isa.OpCall, Src: isa.PseudoKfuncCall, Imm: 1}, {Op: isa.OpExit}},
		"empty":        nil,
		"unknown call": {{Op: isa.OpCall, Imm: 9999}, {Op: isa.OpExit}},
	} {
		if _, err := (amd64.Engine{}).Load(prog, engine.Options{UnsafeFastUnverified: true}); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
