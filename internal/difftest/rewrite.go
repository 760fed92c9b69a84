package difftest

import (
	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/isa"
)

// replace returns a copy of prog in which the width slots starting at pc are
// replaced by seq, with every jump outside seq retargeted: a jump to any of
// the replaced slots goes to the start of seq (or, if seq is empty, to what
// followed them), and jumps past the replaced slots move by
// len(seq)-width. Jumps inside seq are relative to seq and left alone. It
// returns nil if a jump would no longer fit its offset field.
func replace(prog []isa.Instruction, pc, width int, seq []isa.Instruction) []isa.Instruction {
	shift := len(seq) - width
	newIndex := func(x int) int {
		switch {
		case x < pc:
			return x
		case x < pc+width:
			return pc
		}
		return x + shift
	}
	out := make([]isa.Instruction, 0, len(prog)+shift)
	out = append(out, prog[:pc]...)
	out = append(out, seq...)
	out = append(out, prog[pc+width:]...)
	for x := 0; x < len(prog); x++ {
		if x >= pc && x < pc+width {
			continue
		}
		ins := prog[x]
		if ins.IsLoadImm64() {
			x++
			continue
		}
		t, ok := ins.JumpTarget(x)
		if !ok {
			continue
		}
		nx := newIndex(x)
		rel := newIndex(t) - nx - 1
		if ins.Op == isa.OpJA32 {
			out[nx].Imm = int32(rel)
			continue
		}
		if rel != int(int16(rel)) {
			return nil
		}
		out[nx].Off = int16(rel)
	}
	return out
}

// isAtomic reports whether ins is an atomic operation, and whether it
// fetches (cmpxchg and xchg always do).
func isAtomic(ins isa.Instruction) (atomic, fetch bool) {
	if ins.Op.Class() != isa.ClassSTX || ins.Op.Mode() != isa.ModeATOMIC {
		return false, false
	}
	return true, isa.AtomicOp(ins.Imm).Fetches()
}

func isCmpxchg32(ins isa.Instruction) bool {
	a, _ := isAtomic(ins)
	return a && ins.Op.Size() == isa.SizeW && isa.AtomicOp(ins.Imm) == isa.AtomicCmpXchg
}

// zextAfter returns prog with "w0 = w0" inserted after the 32-bit cmpxchg at
// pc: the zero-extension of r0 RFC 9669 §5.3.2 implies, made explicit, so
// it changes nothing for an engine that follows the RFC. A jump to the slot
// after the cmpxchg still lands on that slot, not on the inserted one.
func zextAfter(prog []isa.Instruction, pc int) []isa.Instruction {
	zext := isa.Instruction{Op: isa.Opcode(isa.ClassALU) | isa.Opcode(isa.ALUMov) | isa.Opcode(isa.SourceX), Dst: isa.R0, Src: isa.R0}
	return replace(prog, pc, 1, []isa.Instruction{prog[pc], zext})
}

// zextAfterAll is zextAfter for several 32-bit cmpxchg slots at once.
func zextAfterAll(prog []isa.Instruction, pcs []int) []isa.Instruction {
	for i := len(pcs) - 1; i >= 0 && prog != nil; i-- {
		prog = zextAfter(prog, pcs[i])
	}
	return prog
}

// plainAtomics is plainAtomic for several atomic slots at once.
func plainAtomics(prog []isa.Instruction, pcs []int) []isa.Instruction {
	for i := len(pcs) - 1; i >= 0 && prog != nil; i-- {
		prog = plainAtomic(prog, pcs[i])
	}
	return prog
}

// plainAtomic returns prog with the stack atomic at pc replaced by the
// equivalent sequence of plain loads, ALU operations and stores, using a
// temporary register saved in fuzzgen's free stack slots. For
//
//	src = atomic_fetch_op((size *)(r10 + off), src)
//
// it emits
//
//	*(u64 *)(r10 + free0) = t       save t (t is neither r0 nor src)
//	t = *(size *)(r10 + off)        old value, zero-extended
//	*(u64 *)(r10 + free1) = t       keep it
//	t op= src                       32-bit op for size u32
//	*(size *)(r10 + off) = t        store the new value
//	src = *(u64 *)(r10 + free1)     the fetched old value
//	t = *(u64 *)(r10 + free0)       restore t
//
// (without the fetch, the third and sixth lines are left out), for xchg
//
//	save t; t = old; *(size *)(r10 + off) = src; src = t; restore t
//
// and for cmpxchg
//
//	save t; t = old
//	if t != r0 goto +1              (w-compare for size u32)
//	*(size *)(r10 + off) = src
//	r0 = t
//	restore t
//
// It returns nil if pc is not an atomic on r10.
func plainAtomic(prog []isa.Instruction, pc int) []isa.Instruction {
	ins := prog[pc]
	if a, _ := isAtomic(ins); !a || ins.Dst != isa.R10 {
		return nil
	}
	size := ins.Op.Size()
	wide := size == isa.SizeDW
	src, off := ins.Src, ins.Off
	t := isa.R1
	for t == src || t == isa.R0 {
		t++
	}
	const free0, free1 = fuzzgen.StackFree, fuzzgen.StackFree + 8
	ldx := func(s isa.Size, dst isa.Register, off int16) isa.Instruction {
		return isa.Instruction{Op: isa.Opcode(isa.ClassLDX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(s), Dst: dst, Src: isa.R10, Off: off}
	}
	stx := func(s isa.Size, off int16, src isa.Register) isa.Instruction {
		return isa.Instruction{Op: isa.Opcode(isa.ClassSTX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(s), Dst: isa.R10, Src: src, Off: off}
	}
	alu := func(op isa.ALUOp, wide bool, dst, src isa.Register) isa.Instruction {
		c := isa.ClassALU
		if wide {
			c = isa.ClassALU64
		}
		return isa.Instruction{Op: isa.Opcode(c) | isa.Opcode(op) | isa.Opcode(isa.SourceX), Dst: dst, Src: src}
	}
	seq := []isa.Instruction{stx(isa.SizeDW, free0, t), ldx(size, t, off)}
	switch op := isa.AtomicOp(ins.Imm); op {
	case isa.AtomicXchg:
		seq = append(seq, stx(size, off, src), alu(isa.ALUMov, true, src, t))
	case isa.AtomicCmpXchg:
		c := isa.ClassJMP32
		if wide {
			c = isa.ClassJMP
		}
		seq = append(seq,
			isa.Instruction{Op: isa.Opcode(c) | isa.Opcode(isa.JumpNE) | isa.Opcode(isa.SourceX), Dst: t, Src: isa.R0, Off: 1},
			stx(size, off, src),
			alu(isa.ALUMov, true, isa.R0, t),
		)
	default:
		if op.Fetches() {
			seq = append(seq, stx(isa.SizeDW, free1, t))
		}
		seq = append(seq, alu(op.ALU(), wide, t, src), stx(size, off, t))
		if op.Fetches() {
			seq = append(seq, ldx(isa.SizeDW, src, free1))
		}
	}
	seq = append(seq, ldx(isa.SizeDW, t, free0))
	return replace(prog, pc, 1, seq)
}
