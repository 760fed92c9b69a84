package fuzzgen

import (
	"slices"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

func TestGenerate_Deterministic(t *testing.T) {
	for seed := range uint64(50) {
		a, b := Generate(seed, Config{}), Generate(seed, Config{})
		if !slices.Equal(a.Insns, b.Insns) || !slices.Equal(a.Packet, b.Packet) {
			t.Fatalf("seed %d: two different programs", seed)
		}
	}
	if slices.Equal(Generate(1, Config{}).Insns, Generate(2, Config{}).Insns) {
		t.Error("seeds 1 and 2 give the same program")
	}
}

// TestGenerate_Valid checks what the verifier would check structurally:
// valid slots, every jump landing in the program, and no unreachable slot
// (check_cfg rejects those).
func TestGenerate_Valid(t *testing.T) {
	mayGotos := 0
	for seed := range uint64(3000) {
		cfg := Config{MayGoto: seed%2 == 1}
		p := Generate(seed, cfg)
		for _, ins := range p.Insns {
			if ins.IsMayGoto() {
				if !cfg.MayGoto {
					t.Fatalf("seed %d: may_goto without Config.MayGoto", seed)
				}
				mayGotos++
			}
		}
		if err := isa.ValidateProgram(p.Insns); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if len(p.Packet) != PacketSize || !CtxLoads(p.Insns) {
			t.Fatalf("seed %d: bad shape", seed)
		}
		if pc := unreachable(p.Insns); pc >= 0 {
			t.Fatalf("seed %d: slot %d is unreachable", seed, pc)
		}
		for i, ins := range p.Insns {
			if ins.Op.Class() == isa.ClassALU || ins.Op.Class() == isa.ClassALU64 || ins.Op.Class() == isa.ClassLDX {
				if ins.Dst == isa.R10 {
					t.Fatalf("seed %d: slot %d writes r10", seed, i)
				}
			}
		}
	}
	if mayGotos == 0 {
		t.Error("no program generated with Config.MayGoto holds a may_goto")
	}
}

// unreachable returns the first slot no path from slot 0 reaches, or -1.
func unreachable(prog []isa.Instruction) int {
	seen := make([]bool, len(prog))
	work := []int{0}
	for len(work) > 0 {
		pc := work[len(work)-1]
		work = work[:len(work)-1]
		if pc >= len(prog) || seen[pc] {
			continue
		}
		seen[pc] = true
		ins := prog[pc]
		if ins.IsLoadImm64() {
			seen[pc+1] = true
			work = append(work, pc+2)
			continue
		}
		if ins.IsExit() {
			continue
		}
		if t, ok := ins.JumpTarget(pc); ok {
			work = append(work, t)
			if ins.Op == isa.OpJA || ins.Op == isa.OpJA32 {
				continue
			}
		}
		work = append(work, pc+1)
	}
	return slices.Index(seen, false)
}

// TestGenerate_Coverage checks that a few thousand programs exercise every
// instruction category the generator is meant to produce.
func TestGenerate_Coverage(t *testing.T) {
	got := map[string]int{}
	for seed := range uint64(2000) {
		p := Generate(seed, Config{})
		for pc := p.BodyStart; pc < p.BodyEnd; pc++ {
			got[Category(p.Insns[pc], pc)]++
		}
	}
	for _, c := range Categories() {
		if got[c] == 0 {
			t.Errorf("no %q in 2000 programs", c)
		}
	}
	for c := range got {
		if !slices.Contains(Categories(), c) {
			t.Errorf("category %q is not listed in Categories", c)
		}
	}
}

func TestForInterp(t *testing.T) {
	p := Generate(7, Config{})
	for _, f := range []func([]isa.Instruction) []isa.Instruction{ForInterp, ForConformance} {
		q := f(p.Insns)
		if len(q) != len(p.Insns) || !slices.Equal(q[2:], p.Insns[2:]) || CtxLoads(q) {
			t.Errorf("rewrite changed more than slots 0 and 1")
		}
		if !CtxLoads(p.Insns) {
			t.Fatal("rewrite modified its input")
		}
	}
	q := ReturnWord(p.Insns, 12)
	if want := ldx(isa.SizeW, isa.R0, isa.R9, 12); q[len(q)-2] != want || q[len(q)-1] != p.Insns[len(p.Insns)-1] {
		t.Errorf("ReturnWord: %v", q[len(q)-2:])
	}
}

func TestCategory(t *testing.T) {
	for _, tc := range []struct {
		ins  isa.Instruction
		pc   int
		want string
	}{
		{isa.Instruction{Op: aluOp(true, isa.ALUDiv, isa.SourceX), Off: 1}, 0, "alu64 sdiv reg"},
		{isa.Instruction{Op: aluOp(false, isa.ALUMod, isa.SourceK), Imm: 3}, 0, "alu32 mod imm"},
		{isa.Instruction{Op: aluOp(false, isa.ALUMov, isa.SourceX), Off: 8}, 0, "movsx32 8"},
		{isa.Instruction{Op: aluOp(true, isa.ALUEnd, isa.SourceLE), Imm: 16}, 0, "bswap16"},
		{isa.Instruction{Op: aluOp(false, isa.ALUEnd, isa.SourceBE), Imm: 64}, 0, "be64"},
		{isa.Instruction{Op: jmpOp(false, isa.JumpSLE, isa.SourceK), Off: 2}, 5, "jmp32 jsle imm"},
		{isa.Instruction{Op: jmpOp(true, isa.JumpNE, isa.SourceK), Off: -3}, 5, "loop"},
		{isa.Instruction{Op: memOp(isa.ClassSTX, isa.ModeATOMIC, isa.SizeW), Imm: int32(isa.AtomicXor | isa.AtomicFetch)}, 0, "atomic32 fetch xor"},
		{isa.Instruction{Op: memOp(isa.ClassLDX, isa.ModeMEMSX, isa.SizeH)}, 0, "ldxs h"},
	} {
		if got := Category(tc.ins, tc.pc); got != tc.want {
			t.Errorf("Category(%v) = %q, want %q", tc.ins, got, tc.want)
		}
	}
}

func TestUninitStackRead(t *testing.T) {
	for seed := range uint64(2000) {
		p := Generate(seed, Config{})
		if pc := UninitStackRead(p.Insns); pc >= 0 {
			t.Fatalf("seed %d: slot %d reads uninitialised stack", seed, pc)
		}
	}
	st := func(off int16) isa.Instruction {
		return isa.Instruction{Op: memOp(isa.ClassST, isa.ModeMEM, isa.SizeW), Dst: isa.R10, Off: off}
	}
	ld := ldx(isa.SizeDW, isa.R0, isa.R10, -8)
	exit := isa.Instruction{Op: isa.OpExit}
	jeq := isa.Instruction{Op: jmpOp(true, isa.JumpEq, isa.SourceK), Dst: isa.R1, Off: 1}
	for _, tc := range []struct {
		name string
		prog []isa.Instruction
		want int
	}{
		{"written", []isa.Instruction{st(-8), st(-4), ld, exit}, -1},
		{"half", []isa.Instruction{st(-8), ld, exit}, 1},
		{"one_path", []isa.Instruction{st(-8), jeq, st(-4), ld, exit}, 3},
		{"both_paths", []isa.Instruction{st(-8), st(-4), jeq, st(-4), ld, exit}, -1},
		{"atomic", []isa.Instruction{{Op: memOp(isa.ClassSTX, isa.ModeATOMIC, isa.SizeW), Dst: isa.R10, Off: -4}, exit}, 0},
	} {
		if got := UninitStackRead(tc.prog); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
