package fuzzgen

import (
	"fmt"
	"slices"

	"github.com/waggle-bpf/waggle/isa"
)

// Category names the kind of instruction ins is, at the granularity the
// differential tests count coverage: class, operation, operand source and,
// where it matters, size or width ("alu64 sdiv reg", "jmp32 jsle imm",
// "ldxs h", "atomic32 fetch xor", "bswap64", "be16", "movsx32 8", "loop").
// pc is the slot of ins, so backward jumps can be told apart ("loop").
func Category(ins isa.Instruction, pc int) string {
	op := ins.Op
	switch c := op.Class(); c {
	case isa.ClassALU, isa.ClassALU64:
		w := "32"
		if c == isa.ClassALU64 {
			w = "64"
		}
		src := " imm"
		if op.Source() == isa.SourceX {
			src = " reg"
		}
		switch a := op.ALUOp(); a {
		case isa.ALUEnd:
			if c == isa.ClassALU64 {
				return fmt.Sprintf("bswap%d", ins.Imm)
			}
			if op.Source() == isa.SourceBE {
				return fmt.Sprintf("be%d", ins.Imm)
			}
			return fmt.Sprintf("le%d", ins.Imm)
		case isa.ALUNeg:
			return "alu" + w + " neg"
		case isa.ALUMov:
			if op.Source() == isa.SourceX && ins.Off != 0 {
				return fmt.Sprintf("movsx%s %d", w, ins.Off)
			}
		case isa.ALUDiv, isa.ALUMod:
			if ins.Off == 1 {
				return "alu" + w + " s" + a.String() + src
			}
		}
		return "alu" + w + " " + op.ALUOp().String() + src
	case isa.ClassJMP, isa.ClassJMP32:
		switch {
		case op == isa.OpJA:
			return "ja"
		case op == isa.OpJA32:
			return "gotol"
		case op == isa.OpExit:
			return "exit"
		case op.JumpOp() == isa.Call:
			return "call"
		case ins.IsMayGoto():
			return "may_goto"
		}
		if t, ok := ins.JumpTarget(pc); ok && t <= pc {
			return "loop"
		}
		src := " imm"
		if op.Source() == isa.SourceX {
			src = " reg"
		}
		return c.String() + " " + op.JumpOp().String() + src
	case isa.ClassLD:
		if ins.IsLoadImm64() {
			return "lddw"
		}
		if op == 0 {
			return "lddw" // the second slot
		}
	case isa.ClassLDX:
		if op.Mode() == isa.ModeMEMSX {
			return "ldxs " + op.Size().String()
		}
		return "ldx " + op.Size().String()
	case isa.ClassST:
		return "st " + op.Size().String()
	case isa.ClassSTX:
		if op.Mode() == isa.ModeATOMIC {
			w := "32"
			if op.Size() == isa.SizeDW {
				w = "64"
			}
			return "atomic" + w + " " + isa.AtomicOp(ins.Imm).String()
		}
		return "stx " + op.Size().String()
	}
	return op.String()
}

// Categories lists every category the generator produces in its bodies,
// sorted; a coverage test checks that enough programs produce all of them.
func Categories() []string {
	var all []string
	for _, w := range []string{"32", "64"} {
		for _, op := range aluOps {
			all = append(all, "alu"+w+" "+op.String()+" imm", "alu"+w+" "+op.String()+" reg")
		}
		all = append(all, "alu"+w+" sdiv imm", "alu"+w+" sdiv reg", "alu"+w+" smod imm", "alu"+w+" smod reg", "alu"+w+" neg")
		for _, op := range atomicOps {
			all = append(all, "atomic"+w+" "+op.String())
		}
	}
	for _, c := range []string{"jmp", "jmp32"} {
		for _, op := range condOps {
			all = append(all, c+" "+op.String()+" imm", c+" "+op.String()+" reg")
		}
	}
	for _, n := range []string{"16", "32", "64"} {
		all = append(all, "le"+n, "be"+n, "bswap"+n)
	}
	all = append(all, "movsx64 8", "movsx64 16", "movsx64 32", "movsx32 8", "movsx32 16",
		"lddw", "ja", "gotol", "loop")
	for _, s := range sizes {
		all = append(all, "ldx "+s.String(), "st "+s.String(), "stx "+s.String())
		if s != isa.SizeDW {
			all = append(all, "ldxs "+s.String())
		}
	}
	slices.Sort(all)
	return all
}
