package asm

import (
	"fmt"
	"math"

	"github.com/waggle-bpf/waggle/isa"
)

// This file is a small DSL for writing test programs in Go, in the style of
// cilium/ebpf's asm package:
//
//	prog, err := asm.Assemble(
//		asm.Mov64.Imm(asm.R0, 0),
//		asm.JEq.Imm(asm.R1, 0, "out"),
//		asm.LoadMem(asm.R0, asm.R1, 4, isa.SizeW),
//		asm.Exit().WithLabel("out"),
//	)

// Registers, for brevity in DSL code.
const (
	R0  = isa.R0
	R1  = isa.R1
	R2  = isa.R2
	R3  = isa.R3
	R4  = isa.R4
	R5  = isa.R5
	R6  = isa.R6
	R7  = isa.R7
	R8  = isa.R8
	R9  = isa.R9
	R10 = isa.R10
	RFP = isa.RFP
)

// Insn is one instruction of a program under construction: its first slot,
// the high half of a lddw's constant, a label it defines and a label it
// refers to. Assemble turns a list of them into slots.
type Insn struct {
	isa.Instruction
	// Hi is the imm of a lddw's second slot; ignored for other instructions.
	Hi int32
	// Label is the label this instruction defines (see WithLabel).
	Label string
	// Target is the label a jump, local call or function address refers to;
	// Assemble computes the offset into Off (goto, conditional jumps) or Imm
	// (gotol, call, lddw of a function). Empty when the offset is given.
	Target string
}

// WithLabel returns the instruction with a label others can refer to.
func (i Insn) WithLabel(name string) Insn {
	i.Label = name
	return i
}

// Assemble lays the instructions out in slots (two for a lddw) and resolves
// labels. Errors name the instruction by its index in insns.
func Assemble(insns ...Insn) ([]isa.Instruction, error) {
	labels := make(map[string]int)
	slot := 0
	for i, in := range insns {
		if in.Label != "" {
			if _, ok := labels[in.Label]; ok {
				return nil, fmt.Errorf("instruction %d: label %q defined twice", i, in.Label)
			}
			labels[in.Label] = slot
		}
		slot += in.Width()
	}
	prog := make([]isa.Instruction, 0, slot)
	for i, in := range insns {
		ins := in.Instruction
		if in.Target != "" {
			t, ok := labels[in.Target]
			if !ok {
				return nil, fmt.Errorf("instruction %d: undefined label %q", i, in.Target)
			}
			rel := t - len(prog) - 1
			if usesImm(ins) {
				ins.Imm = int32(rel)
			} else {
				if rel < math.MinInt16 || rel > math.MaxInt16 {
					return nil, fmt.Errorf("instruction %d: label %q is %d slots away, beyond a 16-bit jump offset (use Ja32)", i, in.Target, rel)
				}
				ins.Off = int16(rel)
			}
		}
		prog = append(prog, ins)
		if ins.IsLoadImm64() {
			prog = append(prog, isa.Instruction{Imm: in.Hi})
		}
	}
	return prog, nil
}

// usesImm reports whether an instruction's target offset lives in Imm.
func usesImm(ins isa.Instruction) bool {
	return ins.Op == isa.OpJA32 || ins.Op == isa.OpCall || ins.IsLoadImm64()
}

// ALU is an arithmetic operation of a given width, used as
// asm.Add64.Imm(asm.R1, 1) or asm.Mov32.Reg(asm.R0, asm.R2).
type ALU uint16

const signedALU ALU = 0x100 // sdiv and smod: off = 1

// Arithmetic operations (RFC 9669 §4.1). The 32-bit forms zero-extend.
const (
	Add64  = ALU(isa.ClassALU64) | ALU(isa.ALUAdd)
	Sub64  = ALU(isa.ClassALU64) | ALU(isa.ALUSub)
	Mul64  = ALU(isa.ClassALU64) | ALU(isa.ALUMul)
	Div64  = ALU(isa.ClassALU64) | ALU(isa.ALUDiv)
	SDiv64 = Div64 | signedALU
	Or64   = ALU(isa.ClassALU64) | ALU(isa.ALUOr)
	And64  = ALU(isa.ClassALU64) | ALU(isa.ALUAnd)
	Lsh64  = ALU(isa.ClassALU64) | ALU(isa.ALULsh)
	Rsh64  = ALU(isa.ClassALU64) | ALU(isa.ALURsh)
	Mod64  = ALU(isa.ClassALU64) | ALU(isa.ALUMod)
	SMod64 = Mod64 | signedALU
	Xor64  = ALU(isa.ClassALU64) | ALU(isa.ALUXor)
	Mov64  = ALU(isa.ClassALU64) | ALU(isa.ALUMov)
	Arsh64 = ALU(isa.ClassALU64) | ALU(isa.ALUArsh)

	Add32  = ALU(isa.ClassALU) | ALU(isa.ALUAdd)
	Sub32  = ALU(isa.ClassALU) | ALU(isa.ALUSub)
	Mul32  = ALU(isa.ClassALU) | ALU(isa.ALUMul)
	Div32  = ALU(isa.ClassALU) | ALU(isa.ALUDiv)
	SDiv32 = Div32 | signedALU
	Or32   = ALU(isa.ClassALU) | ALU(isa.ALUOr)
	And32  = ALU(isa.ClassALU) | ALU(isa.ALUAnd)
	Lsh32  = ALU(isa.ClassALU) | ALU(isa.ALULsh)
	Rsh32  = ALU(isa.ClassALU) | ALU(isa.ALURsh)
	Mod32  = ALU(isa.ClassALU) | ALU(isa.ALUMod)
	SMod32 = Mod32 | signedALU
	Xor32  = ALU(isa.ClassALU) | ALU(isa.ALUXor)
	Mov32  = ALU(isa.ClassALU) | ALU(isa.ALUMov)
	Arsh32 = ALU(isa.ClassALU) | ALU(isa.ALUArsh)
)

func (op ALU) insn(src isa.Source) isa.Instruction {
	ins := isa.Instruction{Op: isa.Opcode(op&0xff) | isa.Opcode(src)}
	if op&signedALU != 0 {
		ins.Off = 1
	}
	return ins
}

// Imm returns "dst op= imm".
func (op ALU) Imm(dst isa.Register, imm int32) Insn {
	ins := op.insn(isa.SourceK)
	ins.Dst, ins.Imm = dst, imm
	return Insn{Instruction: ins}
}

// Reg returns "dst op= src".
func (op ALU) Reg(dst, src isa.Register) Insn {
	ins := op.insn(isa.SourceX)
	ins.Dst, ins.Src = dst, src
	return Insn{Instruction: ins}
}

// Neg64 returns "dst = -dst".
func Neg64(dst isa.Register) Insn { return Insn{Instruction: isa.Instruction{Op: 0x87, Dst: dst}} }

// Neg32 returns "w(dst) = -w(dst)".
func Neg32(dst isa.Register) Insn { return Insn{Instruction: isa.Instruction{Op: 0x84, Dst: dst}} }

// MovSX64 returns "dst = (s<bits>)src", sign-extending the low 8, 16 or 32
// bits of src.
func MovSX64(dst, src isa.Register, bits int16) Insn {
	return Insn{Instruction: isa.Instruction{Op: 0xbf, Dst: dst, Src: src, Off: bits}}
}

// MovSX32 returns "w(dst) = (s<bits>)w(src)" for 8 or 16 bits.
func MovSX32(dst, src isa.Register, bits int16) Insn {
	return Insn{Instruction: isa.Instruction{Op: 0xbc, Dst: dst, Src: src, Off: bits}}
}

// LE returns "dst = le<bits> dst": truncate to bits (a no-op swap on a
// little-endian machine).
func LE(dst isa.Register, bits int32) Insn {
	return Insn{Instruction: isa.Instruction{Op: 0xd4, Dst: dst, Imm: bits}}
}

// BE returns "dst = be<bits> dst": convert to big-endian and truncate.
func BE(dst isa.Register, bits int32) Insn {
	return Insn{Instruction: isa.Instruction{Op: 0xdc, Dst: dst, Imm: bits}}
}

// BSwap returns "dst = bswap<bits> dst", the unconditional byte swap.
func BSwap(dst isa.Register, bits int32) Insn {
	return Insn{Instruction: isa.Instruction{Op: 0xd7, Dst: dst, Imm: bits}}
}

// Jump is a conditional jump operation, used as asm.JEq.Imm(asm.R1, 0,
// "label"). Imm32 and Reg32 compare the low 32 bits (class JMP32).
type Jump uint8

// Conditional jumps (RFC 9669 §4.3).
const (
	JEq  = Jump(isa.JumpEq)
	JGT  = Jump(isa.JumpGT)
	JGE  = Jump(isa.JumpGE)
	JSet = Jump(isa.JumpSet)
	JNE  = Jump(isa.JumpNE)
	JSGT = Jump(isa.JumpSGT)
	JSGE = Jump(isa.JumpSGE)
	JLT  = Jump(isa.JumpLT)
	JLE  = Jump(isa.JumpLE)
	JSLT = Jump(isa.JumpSLT)
	JSLE = Jump(isa.JumpSLE)
)

func (j Jump) insn(c isa.Class, src isa.Source, label string) Insn {
	return Insn{Instruction: isa.Instruction{Op: isa.Opcode(c) | isa.Opcode(j) | isa.Opcode(src)}, Target: label}
}

// Imm returns "if dst op imm goto label".
func (j Jump) Imm(dst isa.Register, imm int32, label string) Insn {
	in := j.insn(isa.ClassJMP, isa.SourceK, label)
	in.Dst, in.Imm = dst, imm
	return in
}

// Reg returns "if dst op src goto label".
func (j Jump) Reg(dst, src isa.Register, label string) Insn {
	in := j.insn(isa.ClassJMP, isa.SourceX, label)
	in.Dst, in.Src = dst, src
	return in
}

// Imm32 returns "if w(dst) op imm goto label".
func (j Jump) Imm32(dst isa.Register, imm int32, label string) Insn {
	in := j.insn(isa.ClassJMP32, isa.SourceK, label)
	in.Dst, in.Imm = dst, imm
	return in
}

// Reg32 returns "if w(dst) op w(src) goto label".
func (j Jump) Reg32(dst, src isa.Register, label string) Insn {
	in := j.insn(isa.ClassJMP32, isa.SourceX, label)
	in.Dst, in.Src = dst, src
	return in
}

// Ja returns "goto label".
func Ja(label string) Insn { return Insn{Instruction: isa.Instruction{Op: isa.OpJA}, Target: label} }

// Ja32 returns "gotol label", the jump with a 32-bit offset.
func Ja32(label string) Insn {
	return Insn{Instruction: isa.Instruction{Op: isa.OpJA32}, Target: label}
}

// Call returns a call of the helper with the given Linux id.
func Call(helper int32) Insn { return Insn{Instruction: isa.Instruction{Op: isa.OpCall, Imm: helper}} }

// CallLocal returns a bpf-to-bpf call of the function at label.
func CallLocal(label string) Insn {
	return Insn{Instruction: isa.Instruction{Op: isa.OpCall, Src: isa.PseudoCall}, Target: label}
}

// CallKfunc returns a call of the kernel function with the given BTF id.
func CallKfunc(btfID int32) Insn {
	return Insn{Instruction: isa.Instruction{Op: isa.OpCall, Src: isa.PseudoKfuncCall, Imm: btfID}}
}

// CallX returns "callx reg", the indirect call (register in dst, as LLVM
// encodes it).
func CallX(reg isa.Register) Insn {
	return Insn{Instruction: isa.Instruction{Op: isa.OpCallX, Dst: reg}}
}

// Exit returns exit.
func Exit() Insn { return Insn{Instruction: isa.Instruction{Op: isa.OpExit}} }

// LoadMem returns "dst = *(size *)(src + off)".
func LoadMem(dst, src isa.Register, off int16, size isa.Size) Insn {
	op := isa.Opcode(isa.ClassLDX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(size)
	return Insn{Instruction: isa.Instruction{Op: op, Dst: dst, Src: src, Off: off}}
}

// LoadMemSX returns the sign-extending load "dst = *(s<size> *)(src + off)"
// (size B, H or W).
func LoadMemSX(dst, src isa.Register, off int16, size isa.Size) Insn {
	op := isa.Opcode(isa.ClassLDX) | isa.Opcode(isa.ModeMEMSX) | isa.Opcode(size)
	return Insn{Instruction: isa.Instruction{Op: op, Dst: dst, Src: src, Off: off}}
}

// StoreMem returns "*(size *)(dst + off) = src".
func StoreMem(dst isa.Register, off int16, src isa.Register, size isa.Size) Insn {
	op := isa.Opcode(isa.ClassSTX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(size)
	return Insn{Instruction: isa.Instruction{Op: op, Dst: dst, Src: src, Off: off}}
}

// StoreImm returns "*(size *)(dst + off) = imm".
func StoreImm(dst isa.Register, off int16, imm int32, size isa.Size) Insn {
	op := isa.Opcode(isa.ClassST) | isa.Opcode(isa.ModeMEM) | isa.Opcode(size)
	return Insn{Instruction: isa.Instruction{Op: op, Dst: dst, Off: off, Imm: imm}}
}

// Atomic returns the atomic operation op on *(size *)(dst + off) with src,
// size W or DW: e.g. Atomic(isa.AtomicAdd|isa.AtomicFetch, R1, 0, R2,
// isa.SizeDW) is "r2 = atomic_fetch_add((u64 *)(r1 + 0x0), r2)".
func Atomic(op isa.AtomicOp, dst isa.Register, off int16, src isa.Register, size isa.Size) Insn {
	return Insn{Instruction: isa.Instruction{Op: atomicOpcode(size), Dst: dst, Src: src, Off: off, Imm: int32(op)}}
}

// LoadImm64 returns "dst = imm ll", the two-slot 64-bit constant load.
func LoadImm64(dst isa.Register, imm uint64) Insn {
	p := isa.LoadImm64(dst, 0, imm)
	return Insn{Instruction: p[0], Hi: p[1].Imm}
}

// LoadMapFD returns "dst = map_fd(fd) ll", the pointer to a map.
func LoadMapFD(dst isa.Register, fd int32) Insn {
	return Insn{Instruction: isa.Instruction{Op: isa.OpLoadImm64, Dst: dst, Src: isa.PseudoMapFD, Imm: fd}}
}

// LoadMapValue returns "dst = map_value(fd, off) ll", the address of the
// value of a single-element map plus off.
func LoadMapValue(dst isa.Register, fd, off int32) Insn {
	return Insn{Instruction: isa.Instruction{Op: isa.OpLoadImm64, Dst: dst, Src: isa.PseudoMapValue, Imm: fd}, Hi: off}
}

// LoadFunc returns "dst = func(label) ll", the address of a function (for
// helpers that take a callback).
func LoadFunc(dst isa.Register, label string) Insn {
	return Insn{Instruction: isa.Instruction{Op: isa.OpLoadImm64, Dst: dst, Src: isa.PseudoFunc}, Target: label}
}

// LoadAbs returns the legacy packet load "r0 = *(size *)skb[off]".
func LoadAbs(off int32, size isa.Size) Insn {
	op := isa.Opcode(isa.ClassLD) | isa.Opcode(isa.ModeABS) | isa.Opcode(size)
	return Insn{Instruction: isa.Instruction{Op: op, Imm: off}}
}

// LoadInd returns the legacy packet load "r0 = *(size *)skb[src + off]".
func LoadInd(src isa.Register, off int32, size isa.Size) Insn {
	op := isa.Opcode(isa.ClassLD) | isa.Opcode(isa.ModeIND) | isa.Opcode(size)
	return Insn{Instruction: isa.Instruction{Op: op, Src: src, Imm: off}}
}
