package verifuzz

import (
	"slices"
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
