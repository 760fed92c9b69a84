package verifuzz

import (
	"slices"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/isa"
)

// bpfLoopE2BIG calls bpf_loop with one iteration too many and returns
// the high half of its result: the helper returns -E2BIG as a long, so
// 0xffffffff.
//
//	r1 = 0x800001            (BPF_MAX_LOOPS + 1)
//	r2 = func(cb) ll
//	r3 = 0; r4 = 0
//	call bpf_loop
//	r0 >>= 32
//	exit
//	cb: r0 = 0; exit
func bpfLoopE2BIG(typ fuzzgen.ProgType) *fuzzgen.PtrProgram {
	fn := isa.LoadImm64(isa.R2, isa.PseudoFunc, 0)
	fn[0].Imm = 6 // cb: slot 1+6+1 = 8
	mov := func(r isa.Register, imm int32) isa.Instruction {
		return isa.Instruction{Op: isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov), Dst: r, Imm: imm}
	}
	insns := []isa.Instruction{
		mov(isa.R1, 1<<23+1),
		fn[0], fn[1],
		mov(isa.R3, 0),
		mov(isa.R4, 0),
		{Op: isa.OpCall, Imm: 181},
		{Op: isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALURsh), Dst: isa.R0, Imm: 32},
		{Op: isa.OpExit},
		mov(isa.R0, 0), // cb
		{Op: isa.OpExit},
	}
	return &fuzzgen.PtrProgram{Type: typ, Insns: insns, Packets: [][]byte{make([]byte, 64)}}
}

// TestKernelBug_bpfLoopE2BIG pins a difference between Linux 6.18 and
// waggle that FuzzEngines found: bpf_loop with more than BPF_MAX_LOOPS
// iterations returns -E2BIG, a long (0xfffffffffffffff9), from the
// helper (kernel/bpf/bpf_iter.c), which waggle's engines all return; but
// Linux inlines bpf_loop when its flags are a known 0 (inline_bpf_loop in
// kernel/bpf/verifier.c), and the inlined code sets the error with
// BPF_MOV32_IMM(BPF_REG_0, -E2BIG), zero-extended: 0x00000000fffffff9.
// The generator marks its programs that ask for too many iterations
// (PtrProgram.KernelDiff), and Compare leaves their values out of the
// comparison with the kernel. If the kernel starts returning the helper's
// value, this test says so: drop the mark.
func TestKernelBug_bpfLoopE2BIG(t *testing.T) {
	r := NewEngineRunner(false)
	defer r.Close()
	for _, typ := range []fuzzgen.ProgType{fuzzgen.XDP, fuzzgen.SchedCLS, fuzzgen.SocketFilter} {
		res := r.Compare(bpfLoopE2BIG(typ))
		if res.Rejected != "" || res.Refused != nil {
			t.Fatalf("%s: rejected %q, refused %v", typ, res.Rejected, res.Refused)
		}
		if r.NoKernel == nil && !slices.Contains(res.Engines, KernelEngine) {
			t.Errorf("%s: the kernel did not run it: %s", typ, res.Skipped[KernelEngine])
		}
		for i, name := range res.Engines {
			got, want := res.Runs[i][0].Ret, uint32(0xffffffff)
			if name == KernelEngine {
				want = 0
			}
			if res.Runs[i][0].Err != nil || got != want {
				t.Errorf("%s on %s: %v, want ret %#x", typ, name, res.Runs[i][0], want)
			}
		}
	}
}

// bpfLoopDeadCallback calls bpf_loop twice with two callbacks, the second
// time for 0 iterations, and returns the first call's result (1).
//
//	r1 = 1; r2 = func(cb1) ll; r3 = 0; r4 = 0; call bpf_loop; r6 = r0
//	r1 = 0; r2 = func(cb2) ll; r3 = 0; r4 = 0; call bpf_loop
//	r0 = r6; exit
//	cb1: r0 = 0; exit
//	cb2: r0 = 0; exit
func bpfLoopDeadCallback() *fuzzgen.PtrProgram {
	mov := func(r isa.Register, imm int32) isa.Instruction {
		return isa.Instruction{Op: isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov), Dst: r, Imm: imm}
	}
	movReg := func(dst, src isa.Register) isa.Instruction {
		return isa.Instruction{Op: isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov) | isa.Opcode(isa.SourceX), Dst: dst, Src: src}
	}
	var insns []isa.Instruction
	call := func(nr int32, cb int) {
		fn := isa.LoadImm64(isa.R2, isa.PseudoFunc, 0)
		fn[0].Imm = int32(cb - (len(insns) + 1) - 1)
		insns = append(insns, mov(isa.R1, nr), fn[0], fn[1], mov(isa.R3, 0), mov(isa.R4, 0), isa.Instruction{Op: isa.OpCall, Imm: 181})
	}
	call(1, 15)
	insns = append(insns, movReg(isa.R6, isa.R0))
	call(0, 17)
	insns = append(insns, movReg(isa.R0, isa.R6), isa.Instruction{Op: isa.OpExit},
		mov(isa.R0, 0), isa.Instruction{Op: isa.OpExit}, // cb1, slot 15
		mov(isa.R0, 0), isa.Instruction{Op: isa.OpExit}) // cb2, slot 17
	return &fuzzgen.PtrProgram{Type: fuzzgen.XDP, Insns: insns, Packets: [][]byte{make([]byte, 64)}}
}

// TestKernelBug_bpfLoopDeadCallback pins a Linux 6.18 bug FuzzEngines
// found: a program with two bpf_loop calls whose second, for a known 0
// iterations, takes another callback, which the verifier then never
// explores and removes as dead code, is refused with "verifier bug: No
// program to jit at insn N (subprog < 0)" (and a WARN in
// jit_subprogs); waggle accepts it and every engine returns 1. FuzzEngines
// counts such programs among those the kernel did not run. If the kernel
// starts loading it, this test says so.
func TestKernelBug_bpfLoopDeadCallback(t *testing.T) {
	r := NewEngineRunner(false)
	defer r.Close()
	res := r.Compare(bpfLoopDeadCallback())
	if res.Rejected != "" || res.Refused != nil || len(res.Diffs) > 0 {
		t.Fatalf("rejected %q, refused %v, diffs %q", res.Rejected, res.Refused, res.Diffs)
	}
	for i, name := range res.Engines {
		if o := res.Runs[i][0]; o.Err != nil || o.Ret != 1 {
			t.Errorf("%s: %v, want ret 1", name, o)
		}
	}
	if r.NoKernel == nil && !strings.Contains(res.Skipped[KernelEngine], "No program to jit") {
		t.Errorf("the kernel: %q, engines %v: it no longer refuses the program; drop the note in testdata/kernel-bugs/README.md", res.Skipped[KernelEngine], res.Engines)
	}
}
