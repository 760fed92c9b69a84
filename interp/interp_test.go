package interp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/maps"
)

// A few constructors, enough for these tests; programs elsewhere are text.
func mov(dst isa.Register, imm int32) isa.Instruction {
	return isa.Instruction{Op: 0xb7, Dst: dst, Imm: imm}
}
func movr(dst, src isa.Register) isa.Instruction {
	return isa.Instruction{Op: 0xbf, Dst: dst, Src: src}
}
func addr(dst, src isa.Register) isa.Instruction {
	return isa.Instruction{Op: 0x0f, Dst: dst, Src: src}
}
func addi(dst isa.Register, imm int32) isa.Instruction {
	return isa.Instruction{Op: 0x07, Dst: dst, Imm: imm}
}
func ldx(size isa.Size, dst, src isa.Register, off int16) isa.Instruction {
	return isa.Instruction{Op: isa.Opcode(isa.ClassLDX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(size), Dst: dst, Src: src, Off: off}
}
func stx(size isa.Size, dst isa.Register, off int16, src isa.Register) isa.Instruction {
	return isa.Instruction{Op: isa.Opcode(isa.ClassSTX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(size), Dst: dst, Src: src, Off: off}
}
func atomic(size isa.Size, op isa.AtomicOp, dst isa.Register, off int16, src isa.Register) isa.Instruction {
	return isa.Instruction{Op: isa.Opcode(isa.ClassSTX) | isa.Opcode(isa.ModeATOMIC) | isa.Opcode(size), Dst: dst, Src: src, Off: off, Imm: int32(op)}
}
func call(id int32) isa.Instruction { return isa.Instruction{Op: isa.OpCall, Imm: id} }
func callLocal(rel int32) isa.Instruction {
	return isa.Instruction{Op: isa.OpCall, Src: isa.PseudoCall, Imm: rel}
}

var exit = isa.Instruction{Op: isa.OpExit}

// mustLoad loads a test program; the tests' programs are known to be safe,
// so they may run in fast mode unverified.
func mustLoad(tb testing.TB, prog []isa.Instruction, opts Options) *Program {
	tb.Helper()
	opts.UnsafeFastUnverified = opts.Mode == Fast
	p, err := Load(prog, opts)
	if err != nil {
		tb.Fatalf("load: %v", err)
	}
	return p
}

var modes = []Mode{Checked, Fast}

func TestRun_CallLocal(t *testing.T) {
	prog := []isa.Instruction{
		mov(isa.R6, 6), mov(isa.R9, 9), mov(isa.R1, 40),
		stx(isa.SizeDW, isa.R10, -8, isa.R6), // caller's slot
		callLocal(4),
		ldx(isa.SizeDW, isa.R2, isa.R10, -8), // still 6: the callee had its own frame
		addr(isa.R0, isa.R2),
		addr(isa.R0, isa.R9), // r9 restored
		exit,
		// callee at 9
		mov(isa.R9, 1000),
		stx(isa.SizeDW, isa.R10, -8, isa.R9),
		movr(isa.R0, isa.R1),
		addi(isa.R0, 2),
		exit,
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			got, err := mustLoad(t, prog, Options{Mode: mode}).RunMemory(nil)
			if err != nil || got != 42+6+9 {
				t.Fatalf("got %d, %v; want 57", got, err)
			}
		})
	}
}

func TestRun_CallDepth(t *testing.T) {
	// Endless recursion: the eighth frame is refused, as in the kernel.
	prog := []isa.Instruction{callLocal(-1), exit}
	_, err := mustLoad(t, prog, Options{}).RunMemory(nil)
	var f *Fault
	if !errors.Is(err, ErrCallDepth) || !errors.As(err, &f) || f.PC != 0 {
		t.Fatalf("got %v", err)
	}
}

func TestRun_Faults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prog   []isa.Instruction
		err    error
		pc     int
		addr   func(data []byte, m *Machine) uint64
		regs   int // 1: data region is read-only
		budget uint64
	}{
		{name: "read past the input", prog: []isa.Instruction{ldx(isa.SizeW, isa.R0, isa.R1, 14), exit}, err: ErrMemory,
			addr: func(d []byte, _ *Machine) uint64 { return mem.Addr(d) + 14 }},
		{name: "read before the input", prog: []isa.Instruction{ldx(isa.SizeB, isa.R0, isa.R1, -1), exit}, err: ErrMemory},
		{name: "write to a read-only region", prog: []isa.Instruction{mov(isa.R0, 0), stx(isa.SizeB, isa.R1, 0, isa.R0), exit}, err: ErrMemory, pc: 1, regs: 1},
		{name: "null pointer", prog: []isa.Instruction{mov(isa.R1, 0), ldx(isa.SizeDW, isa.R0, isa.R1, 0), exit}, err: ErrMemory, pc: 1},
		{name: "below the stack frame", prog: []isa.Instruction{ldx(isa.SizeDW, isa.R0, isa.R10, -520), exit}, err: ErrMemory},
		{name: "above the stack", prog: []isa.Instruction{ldx(isa.SizeB, isa.R0, isa.R10, 0), exit}, err: ErrMemory},
		{name: "straddling the stack top", prog: []isa.Instruction{ldx(isa.SizeDW, isa.R0, isa.R10, -4), exit}, err: ErrMemory},
		{name: "misaligned atomic", prog: []isa.Instruction{mov(isa.R0, 1), atomic(isa.SizeW, isa.AtomicAdd, isa.R10, -6, isa.R0), exit}, err: ErrMemory, pc: 1},
		{name: "atomic on read-only memory", prog: []isa.Instruction{mov(isa.R0, 1), atomic(isa.SizeW, isa.AtomicAdd, isa.R1, 0, isa.R0), exit}, err: ErrMemory, pc: 1, regs: 1},
		{name: "endless loop", prog: []isa.Instruction{{Op: isa.OpJA, Off: -1}, exit}, err: ErrBudget, budget: 1000},
		{name: "callx of an unknown helper", prog: []isa.Instruction{mov(isa.R2, 77), {Op: isa.OpCallX, Dst: 2}, exit}, err: ErrHelper, pc: 1},
		{name: "callx of a failing helper", prog: []isa.Instruction{mov(isa.R2, 2), {Op: isa.OpCallX, Dst: 2}, exit}, err: ErrHelper, pc: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustLoad(t, tc.prog, Options{Budgeted: true, Helpers: helpers.Table{2: func(helpers.Env, *[5]uint64) (uint64, error) {
				return 0, errors.New("boom")
			}}})
			data := mem.Aligned(14)
			m := NewMachine()
			a := &Args{Regs: [5]uint64{mem.Addr(data), 14}, Regions: []Region{{Data: data, Writable: tc.regs == 0}}, Budget: tc.budget}
			_, err := m.Run(p, a)
			if !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
			var f *Fault
			if !errors.As(err, &f) {
				t.Fatalf("%T is not a *Fault", err)
			}
			if f.PC != tc.pc {
				t.Errorf("fault at %d, want %d: %v", f.PC, tc.pc, err)
			}
			if tc.addr != nil && f.Addr != tc.addr(data, m) {
				t.Errorf("fault address %#x, want %#x", f.Addr, tc.addr(data, m))
			}
			t.Log(err)
		})
	}
}

func TestLoad_Errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		prog []isa.Instruction
		want string
	}{
		{"unknown helper", []isa.Instruction{call(99), exit}, "instruction 0 (call 0x63): helper 99: unknown helper"},
		{"unresolved map", []isa.Instruction{{Op: isa.OpLoadImm64, Dst: 1, Src: isa.PseudoMapFD, Imm: 3}, {}, exit}, "must be resolved by the loader"},
		{"kfunc", []isa.Instruction{{Op: isa.OpCall, Src: isa.PseudoKfuncCall, Imm: 3}, exit}, "kfunc calls need a kernel"},
		{"invalid", []isa.Instruction{{Op: 0xb7, Dst: 12}, exit}, "invalid register"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.prog, Options{})
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestRun_Helpers(t *testing.T) {
	// helper 1 sums the n bytes at r1 through Env.Memory, which checked mode
	// validates like any access.
	sum := func(env helpers.Env, a *[5]uint64) (uint64, error) {
		b, err := env.Memory(a[0], a[1], false)
		if err != nil {
			return 0, err
		}
		var s uint64
		for _, c := range b {
			s += uint64(c)
		}
		return s, nil
	}
	table := helpers.Table{1: sum}
	prog := []isa.Instruction{call(1), exit}
	for _, mode := range modes {
		p := mustLoad(t, prog, Options{Mode: mode, Helpers: table})
		got, err := p.RunMemory([]byte{1, 2, 3, 4})
		if err != nil || got != 10 {
			t.Fatalf("%s: got %d, %v", mode, got, err)
		}
	}
	// An out-of-range pointer argument is refused in checked mode.
	p := mustLoad(t, []isa.Instruction{mov(isa.R2, 100), call(1), exit}, Options{Helpers: table})
	if _, err := p.RunMemory([]byte{1}); !errors.Is(err, ErrHelper) || !errors.Is(err, ErrMemory) {
		t.Fatalf("got %v", err)
	}
}

func TestRun_LdAbs(t *testing.T) {
	pkt := []byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	for _, tc := range []struct {
		name string
		prog []isa.Instruction
		want uint64
	}{
		{"abs b", []isa.Instruction{{Op: 0x30, Imm: 1}, exit}, 0x22},
		{"abs h is big-endian", []isa.Instruction{{Op: 0x28, Imm: 1}, exit}, 0x2233},
		{"abs w is big-endian", []isa.Instruction{{Op: 0x20, Imm: 2}, exit}, 0x33445566},
		{"abs out of bounds ends with 0", []isa.Instruction{mov(isa.R0, 7), {Op: 0x20, Imm: 3}, mov(isa.R0, 9), exit}, 0},
		{"ind adds the register", []isa.Instruction{mov(isa.R3, 2), {Op: 0x48, Src: 3, Imm: 1}, exit}, 0x4455},
		{"ind negative offset ends with 0", []isa.Instruction{mov(isa.R3, -1), mov(isa.R0, 5), {Op: 0x50, Src: 3}, exit}, 0},
		{"ind offset is 32-bit", []isa.Instruction{{Op: 0x18, Dst: 3, Imm: 1}, {Imm: 1}, {Op: 0x50, Src: 3}, exit}, 0x22},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range modes {
				p := mustLoad(t, tc.prog, Options{Mode: mode})
				got, err := NewMachine().Run(p, &Args{Packet: pkt})
				if err != nil || got != tc.want {
					t.Fatalf("%s: got %#x, %v; want %#x", mode, got, err, tc.want)
				}
			}
		})
	}
}

// TestRun_ContextVariants: an access with a context form runs that form
// when its base holds the run's context (Args.Regs[0]) and its own
// otherwise, in every mode and under tracing; Load refuses variants that
// are no accesses through the same base.
func TestRun_ContextVariants(t *testing.T) {
	ctx, other := mem.Aligned(16), mem.Aligned(16)
	binary.LittleEndian.PutUint32(ctx[0:], 0x11)
	binary.LittleEndian.PutUint32(ctx[8:], 0x88)
	binary.LittleEndian.PutUint32(other[0:], 0x22)
	// r1 = the context; r2 = the other buffer; r3 != 0 switches r1 to it.
	prog := []isa.Instruction{
		{Op: 0x15, Dst: 3, Off: 1}, // if r3 == 0 goto +1
		movr(isa.R1, isa.R2),
		ldx(isa.SizeW, isa.R0, isa.R1, 0), // the ambiguous access
		stx(isa.SizeW, isa.R1, 4, isa.R0), // and a store through it
		exit,
	}
	variants := map[int]isa.Instruction{
		2: ldx(isa.SizeW, isa.R0, isa.R1, 8),
		3: stx(isa.SizeW, isa.R1, 12, isa.R0),
	}
	for _, mode := range modes {
		for _, traced := range []bool{false, true} {
			opts := Options{Mode: mode, ContextVariants: variants}
			if traced {
				opts.Trace = func(int, *[11]uint64) {}
			}
			p := mustLoad(t, prog, opts)
			for _, tc := range []struct {
				switchBase uint64
				want       uint64
				buf        []byte
				at         int
			}{{0, 0x88, ctx, 12}, {1, 0x22, other, 4}} {
				a := &Args{Regs: [5]uint64{mem.Addr(ctx), mem.Addr(other), tc.switchBase}, Regions: []Region{{Data: ctx, Writable: true}, {Data: other, Writable: true}}}
				got, err := NewMachine().Run(p, a)
				if err != nil || got != tc.want || binary.LittleEndian.Uint32(tc.buf[tc.at:]) != uint32(tc.want) {
					t.Errorf("%s, traced %v, r3 %d: r0 %#x, %v; stored % x; want %#x", mode, traced, tc.switchBase, got, err, tc.buf, tc.want)
				}
			}
		}
	}
	for _, tc := range []struct {
		name     string
		variants map[int]isa.Instruction
		want     string
	}{
		{"outside", map[int]isa.Instruction{9: ldx(isa.SizeW, isa.R0, isa.R1, 8)}, "outside the 5-slot program"},
		{"not an access", map[int]isa.Instruction{1: ldx(isa.SizeW, isa.R0, isa.R1, 8)}, "both must be loads or stores"},
		{"other base", map[int]isa.Instruction{2: ldx(isa.SizeW, isa.R0, isa.R2, 8)}, "both must be loads or stores"},
		{"store for load", map[int]isa.Instruction{2: stx(isa.SizeW, isa.R1, 8, isa.R0)}, "both must be loads or stores"},
	} {
		if _, err := Load(prog, Options{ContextVariants: tc.variants}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestRun_ContextFaults: an access in ContextFaults faults (ErrContext,
// naming the reason) when its base holds the context and runs as it is
// otherwise; a store whose context form is "ja +0" is skipped on the
// context only.
func TestRun_ContextFaults(t *testing.T) {
	// r1 = the context; r2 = the other buffer; r3 != 0 switches r1 to it.
	prog := []isa.Instruction{
		{Op: 0x15, Dst: 3, Off: 1}, // if r3 == 0 goto +1
		movr(isa.R1, isa.R2),
		mov(isa.R0, 5),
		stx(isa.SizeW, isa.R1, 0, isa.R0),                   // ignored on the context
		atomic(isa.SizeW, isa.AtomicAdd, isa.R1, 4, isa.R0), // refused on the context
		exit,
	}
	opts := Options{ContextVariants: map[int]isa.Instruction{3: {Op: isa.OpJA}}, ContextFaults: map[int]error{4: errors.New("no atomics here")}}
	for _, mode := range modes {
		opts.Mode = mode
		p := mustLoad(t, prog, opts)
		ctx, other := mem.Aligned(16), mem.Aligned(16)
		a := &Args{Regs: [5]uint64{mem.Addr(ctx), mem.Addr(other), 0}, Regions: []Region{{Data: ctx, Writable: true}, {Data: other, Writable: true}}}
		_, err := NewMachine().Run(p, a)
		var f *Fault
		if !errors.Is(err, ErrContext) || !errors.As(err, &f) || f.PC != 4 || !strings.Contains(err.Error(), "no atomics here") {
			t.Errorf("%s, on the context: %v, want an ErrContext fault at 4", mode, err)
		}
		if binary.LittleEndian.Uint32(ctx) != 0 {
			t.Errorf("%s: the ignored store wrote the context: % x", mode, ctx)
		}
		a.Regs[2] = 1
		if r0, err := NewMachine().Run(p, a); err != nil || r0 != 5 || binary.LittleEndian.Uint32(other) != 5 || binary.LittleEndian.Uint32(other[4:]) != 5 {
			t.Errorf("%s, elsewhere: %d, %v; memory % x", mode, r0, err, other)
		}
	}
	if _, err := Load(prog, Options{ContextFaults: map[int]error{2: errors.New("x")}}); err == nil {
		t.Error("a context fault on a mov loaded")
	}
	if _, err := Load(prog, Options{ContextVariants: map[int]isa.Instruction{3: {Op: isa.OpJA}}, ContextFaults: map[int]error{3: errors.New("x")}}); err == nil {
		t.Error("a slot both a context variant and a context fault loaded")
	}
}

// TestRun_AtomicsConcurrent runs one program on 8 goroutines at once, each
// with its own Machine, all adding to the same counters: atomics must not
// lose updates.
func TestRun_AtomicsConcurrent(t *testing.T) {
	const goroutines, runs = 8, 2000
	prog := []isa.Instruction{
		mov(isa.R2, 1),
		atomic(isa.SizeDW, isa.AtomicAdd, isa.R1, 0, isa.R2),
		mov(isa.R3, 1),
		atomic(isa.SizeW, isa.AtomicAdd|isa.AtomicFetch, isa.R1, 8, isa.R3),
		// cmpxchg loop incrementing the word at 12: r0 = old; r4 = old+1
		ldx(isa.SizeW, isa.R0, isa.R1, 12),
		movr(isa.R4, isa.R0),
		addi(isa.R4, 1),
		movr(isa.R5, isa.R0),
		atomic(isa.SizeW, isa.AtomicCmpXchg, isa.R1, 12, isa.R4),
		{Op: 0x5d, Dst: 0, Src: 5, Off: -6}, // if r0 != r5 goto 4: retry
		exit,
	}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			data := mem.Aligned(16)
			p := mustLoad(t, prog, Options{Mode: mode})
			var wg sync.WaitGroup
			errs := make(chan error, goroutines)
			for range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := NewMachine()
					a := &Args{Regs: [5]uint64{mem.Addr(data)}, Regions: []Region{{Data: data, Writable: true}}}
					for range runs {
						if _, err := m.Run(p, a); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			le := binary.LittleEndian
			if got := le.Uint64(data); got != goroutines*runs {
				t.Errorf("lock add64: %d, want %d", got, goroutines*runs)
			}
			if got := le.Uint32(data[8:]); got != goroutines*runs {
				t.Errorf("fetch add32: %d, want %d", got, goroutines*runs)
			}
			if got := le.Uint32(data[12:]); got != goroutines*runs {
				t.Errorf("cmpxchg32 loop: %d, want %d", got, goroutines*runs)
			}
		})
	}
}

func TestRun_AtomicOps(t *testing.T) {
	const start = 0x0f0f_0000_0000_00f0
	for _, tc := range []struct {
		op      isa.AtomicOp
		size    isa.Size
		src     uint64
		mem     uint64 // memory after
		srcOut  uint64 // src after (fetch) or unchanged
		r0      uint64
		r0Start uint64
	}{
		{op: isa.AtomicAdd, size: isa.SizeDW, src: 0x10, mem: start + 0x10, srcOut: 0x10},
		{op: isa.AtomicAdd | isa.AtomicFetch, size: isa.SizeDW, src: 0x10, mem: start + 0x10, srcOut: start},
		{op: isa.AtomicOr | isa.AtomicFetch, size: isa.SizeW, src: 0x0f, mem: start | 0x0f, srcOut: 0xf0},
		{op: isa.AtomicAnd, size: isa.SizeW, src: 0xffff_ffff_0000_0030, mem: 0x0f0f_0000_0000_0030, srcOut: 0xffff_ffff_0000_0030},
		{op: isa.AtomicXor | isa.AtomicFetch, size: isa.SizeDW, src: 0xff, mem: 0x0f0f_0000_0000_000f, srcOut: start},
		{op: isa.AtomicXchg, size: isa.SizeW, src: 0xaaaa_bbbb_cccc_dddd, mem: 0x0f0f_0000_cccc_dddd, srcOut: 0xf0},
		{op: isa.AtomicCmpXchg, size: isa.SizeDW, src: 7, r0Start: start, mem: 7, srcOut: 7, r0: start},
		{op: isa.AtomicCmpXchg, size: isa.SizeDW, src: 7, r0Start: 1, mem: start, srcOut: 7, r0: start},
		// The 32-bit cmpxchg zero-extends the old value into r0 whether or
		// not it succeeds (see testdata/kernel-bugs).
		{op: isa.AtomicCmpXchg, size: isa.SizeW, src: 7, r0Start: 0xffff_ffff_0000_00f0, mem: 0x0f0f_0000_0000_0007, srcOut: 7, r0: 0xf0},
		{op: isa.AtomicCmpXchg, size: isa.SizeW, src: 7, r0Start: 0xffff_ffff_0000_0001, mem: start, srcOut: 7, r0: 0xf0},
	} {
		t.Run(fmt.Sprintf("%s %s r0=%#x", tc.size, tc.op, tc.r0Start), func(t *testing.T) {
			for _, mode := range modes {
				data := mem.Aligned(8)
				binary.LittleEndian.PutUint64(data, start)
				prog := []isa.Instruction{
					isa.LoadImm64(isa.R2, 0, tc.src)[0], isa.LoadImm64(isa.R2, 0, tc.src)[1],
					isa.LoadImm64(isa.R0, 0, tc.r0Start)[0], isa.LoadImm64(isa.R0, 0, tc.r0Start)[1],
					atomic(tc.size, tc.op, isa.R1, 0, isa.R2),
					stx(isa.SizeDW, isa.R10, -8, isa.R0),
					movr(isa.R0, isa.R2),
					exit,
				}
				got, err := mustLoad(t, prog, Options{Mode: mode}).RunMemory(data)
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.srcOut {
					t.Errorf("%s: src after %#x, want %#x", mode, got, tc.srcOut)
				}
				if m := binary.LittleEndian.Uint64(data); m != tc.mem {
					t.Errorf("%s: memory %#x, want %#x", mode, m, tc.mem)
				}
			}
			if tc.op == isa.AtomicCmpXchg {
				prog := []isa.Instruction{
					isa.LoadImm64(isa.R2, 0, tc.src)[0], isa.LoadImm64(isa.R2, 0, tc.src)[1],
					isa.LoadImm64(isa.R0, 0, tc.r0Start)[0], isa.LoadImm64(isa.R0, 0, tc.r0Start)[1],
					atomic(tc.size, tc.op, isa.R1, 0, isa.R2),
					exit,
				}
				data := mem.Aligned(8)
				binary.LittleEndian.PutUint64(data, start)
				got, err := mustLoad(t, prog, Options{}).RunMemory(data)
				if err != nil || got != tc.r0 {
					t.Errorf("r0 after cmpxchg %#x, %v; want %#x", got, err, tc.r0)
				}
			}
		})
	}
}

// TestRun_Callback runs a bpf_loop-style helper that calls back into the
// program: the callback gets its own frame, reaches the caller's stack
// through the pointer it was given, and r6-r9 survive.
func TestRun_Callback(t *testing.T) {
	loop := func(env helpers.Env, a *[5]uint64) (uint64, error) {
		n, fn, ctx := a[0], a[1], a[2]
		for i := uint64(0); i < n; i++ {
			ret, err := env.Call(fn, [5]uint64{i, ctx})
			if err != nil {
				return 0, err
			}
			if ret != 0 {
				return i + 1, nil
			}
		}
		return n, nil
	}
	prog, err := asm.Parse(`
		r6 = 42
		r1 = 0
		*(u64 *)(r10 - 8) = r1
		r1 = 5
		r2 = func(cb) ll
		r3 = r10
		r3 += -8
		r4 = 0
		call 181
		r1 = *(u64 *)(r10 - 8)
		r0 += r1
		r0 += r6
		exit
	cb:
		r6 = 1000
		r3 = *(u64 *)(r2 + 0)
		r3 += r1
		*(u64 *)(r2 + 0) = r3
		*(u64 *)(r10 - 8) = r3
		r0 = 0
		exit`)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range modes {
		p := mustLoad(t, prog, Options{Mode: mode, Helpers: helpers.Table{181: loop}})
		got, err := p.RunMemory(nil)
		// 5 iterations + (0+1+2+3+4) + 42
		if err != nil || got != 5+10+42 {
			t.Fatalf("%s: got %d, %v; want 57", mode, got, err)
		}
	}
	// A value that is not a function of the program is refused.
	bad := mustLoad(t, []isa.Instruction{mov(isa.R1, 1), isa.LoadImm64(isa.R2, 0, 0x1234)[0], isa.LoadImm64(isa.R2, 0, 0x1234)[1], call(181), exit}, Options{Helpers: helpers.Table{181: loop}})
	if _, err := bad.RunMemory(nil); !errors.Is(err, ErrHelper) {
		t.Fatalf("bad callback: %v", err)
	}
}

// TestRun_TailCall: a helper sets State.TailCall; the engine continues in
// the target with r1 = the context passed to bpf_tail_call, in the same
// frame, and never returns to the caller. A failed tail call falls through.
func TestRun_TailCall(t *testing.T) {
	var progs []*Program
	tailCall := func(env helpers.Env, a *[5]uint64) (uint64, error) {
		st := env.State()
		if a[2] >= uint64(len(progs)) || st.TailCalls >= helpers.MaxTailCalls {
			return uint64(maps.Return(maps.ENOENT)), nil
		}
		st.TailCalls++
		st.TailCall = progs[a[2]]
		return 0, nil
	}
	table := helpers.Table{12: tailCall}
	caller, err := asm.Parse(`
		r6 = r1
		r1 = 7
		*(u64 *)(r10 - 8) = r1
		r1 = r6
		r2 = 0
		r3 = *(u64 *)(r6 + 0)
		call 12
		r0 = 99
		exit`)
	if err != nil {
		t.Fatal(err)
	}
	target, err := asm.Parse(`
		r0 = *(u64 *)(r1 + 8)
		r2 = *(u64 *)(r10 - 8)
		r0 += r2
		exit`)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range modes {
		pc := mustLoad(t, caller, Options{Mode: mode, Helpers: table})
		progs = []*Program{mustLoad(t, target, Options{Mode: mode, Helpers: table})}
		ctx := mem.Aligned(16)
		binary.LittleEndian.PutUint64(ctx[8:], 100)
		st := &helpers.State{}
		a := &Args{Regs: [5]uint64{Addr(ctx)}, Regions: []Region{{Data: ctx}}, State: st}
		got, err := NewMachine().Run(pc, a)
		if err != nil || got != 107 || st.TailCalls != 1 {
			t.Fatalf("%s: tail call gave %d, %v (%d tail calls); want 107", mode, got, err, st.TailCalls)
		}
		binary.LittleEndian.PutUint64(ctx, 5) // no program at index 5
		got, err = NewMachine().Run(pc, a)
		if err != nil || got != 99 {
			t.Fatalf("%s: failed tail call gave %d, %v; want 99", mode, got, err)
		}
	}
}

// TestRun_stackCleared: in checked mode a run never reads what an earlier
// run on the same Machine wrote on the stack, whichever program it was and
// however it ended (an exit, a fault, in a callee's frame).
func TestRun_stackCleared(t *testing.T) {
	writer := mustLoad(t, mustParse(t, `
		r1 = 0x5ec2e7
		*(u64 *)(r10 - 8) = r1
		*(u64 *)(r10 - 512) = r1
		call pc+3
		r1 = 0
		r0 = *(u64 *)(r1 + 0)
		exit
		r1 = 0x5ec2e7
		*(u64 *)(r10 - 8) = r1
		*(u32 *)(r10 - 300) = r1
		r0 = 0
		exit`), Options{})
	reader := mustLoad(t, mustParse(t, `
		r0 = *(u64 *)(r10 - 8)
		r1 = *(u64 *)(r10 - 512)
		r0 |= r1
		call pc+1
		exit
		r1 = *(u64 *)(r10 - 8)
		r0 |= r1
		r1 = *(u32 *)(r10 - 300)
		r0 |= r1
		exit`), Options{})
	m := NewMachine()
	for i := range 3 {
		if _, err := m.Run(writer, &Args{}); !errors.Is(err, ErrMemory) {
			t.Fatalf("writer: %v", err)
		}
		if got, err := m.Run(reader, &Args{}); err != nil || got != 0 {
			t.Fatalf("round %d: the reader found %#x, %v; want 0", i, got, err)
		}
	}
}

func mustParse(tb testing.TB, src string) []isa.Instruction {
	tb.Helper()
	p, err := asm.Parse(src)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestSpan_window: the multiplication that stands in for the division by a
// slot's stride agrees with the division.
func TestSpan_window(t *testing.T) {
	for _, stride := range []uint64{3, 7, 24, 40, 56, 72, 1000, 4104, 1<<20 + 8} {
		s := spanOf(make([]byte, 1), true, stride, 1, stride-2)
		for _, x := range []uint64{0, 1, stride - 1, stride, stride + 1, 5*stride - 1, 5 * stride, 1<<32 - 1, 1 << 32, 1<<40 + 12345, 1<<63 - 1} {
			o := x % stride
			want := o >= 1 && o+1 <= stride-1
			if got := s.window(x, 1); got != want {
				t.Errorf("stride %d, offset %d: %v, want %v", stride, x, got, want)
			}
		}
	}
}

// TestLoad_verified: a program the verifier accepted runs in fast mode
// without UnsafeFastUnverified, and Load does not validate it again (here
// a reserved field only isa.ValidateProgram refuses shows it was not
// run); any other program needs UnsafeFastUnverified for fast mode.
func TestLoad_verified(t *testing.T) {
	ok := []isa.Instruction{mov(isa.R0, 7), exit}
	reserved := []isa.Instruction{mov(isa.R0, 7), {Op: isa.OpExit, Imm: 1}} // exit with imm 1
	if err := isa.ValidateProgram(reserved); err == nil {
		t.Fatal("isa.ValidateProgram accepts the reserved field: the test shows nothing")
	}
	for _, tc := range []struct {
		name    string
		prog    []isa.Instruction
		opts    Options
		wantErr error // nil: loads and returns 7
	}{
		{"fast, unverified", ok, Options{Mode: Fast}, ErrUnverifiedFast},
		{"fast, unverified, unsafe", ok, Options{Mode: Fast, UnsafeFastUnverified: true}, nil},
		{"fast, verified", ok, Options{Mode: Fast, Verified: true}, nil},
		{"checked, verified", ok, Options{Verified: true}, nil},
		{"validated when unverified", reserved, Options{}, isa.ErrReserved},
		{"not validated again when verified", reserved, Options{Verified: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Load(tc.prog, tc.opts)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Load: %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if r0, err := NewMachine().Run(p, &Args{}); r0 != 7 || err != nil {
				t.Fatalf("run: %d, %v; want 7", r0, err)
			}
		})
	}
}
