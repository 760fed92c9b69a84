package isa

import (
	"fmt"
	"strings"
)

// The text form is the one llvm-objdump -d prints for BPF (LLVM 19):
//
//	r1 = -0x5               w1 += w2            r0 = (s32)r2
//	r1 = be16 r1            r1 = bswap64 r1     r0 = 0x1122334455667788 ll
//	r1 = *(u32 *)(r2 + 0x4) r4 = *(s16 *)(r8 + 0x10)
//	*(u64 *)(r10 - 0x8) = r1                    *(u8 *)(r10 - 0x8) = 0x12c
//	lock *(u64 *)(r1 + 0x0) += r2               r5 = atomic_fetch_or((u64 *)(r8 + 0x18), r5)
//	r5 = xchg_64(r8 + 0x18, r5)                 r0 = cmpxchg_64(r1 + 0x4, r0, r2)
//	if r1 s> -0x5 goto +0x3 if w1 == 0x5 goto -0x2   gotol +0x5   call 0x1   exit
//	r0 = *(u8 *)skb[0xc]    r0 = *(u16 *)skb[r1]
//
// Where llvm-objdump-19 without -mattr=+alu32 has no faithful text, the alu32
// form is used: it prints "<unknown>" for 32-bit atomics other than add and
// prints a 32-bit fetch-add as a plain "lock *(u32 *)(..) += r2"; waggle
// prints "w2 = atomic_fetch_add((u32 *)(r1 + 0x4), w2)", "w0 =
// cmpxchg32_32(r1 + 0x4, w0, w2)", "w2 = xchg32_32(r1 + 0x4, w2)". 32-bit
// loads, stores and non-fetching atomics keep the plain form ("r1 = *(u32
// *)..", "lock *(u32 *)(..) += r2").
//
// Where LLVM's text loses fields, the kernel's verifier-log spelling (or a
// waggle one) is used instead:
//
//	call pc+3                  bpf-to-bpf call (LLVM: "call 0x3")
//	call kfunc#7               kfunc call by BTF id (LLVM: "call 0x7")
//	call kfunc#7, 2            the same with off 2, the fd_array index of a module's BTF
//	callx r2                   indirect call, register in dst (as LLVM)
//	r0 = *(u8 *)skb[r1 + 0x4]  legacy indirect packet load (LLVM drops the imm: "skb[r1]")
//	r1 = map_fd(3) ll          lddw src 1 (LLVM: "ld_pseudo r1, 0x1, 0x3")
//	r1 = map_value(3, 0x10) ll lddw src 2 (LLVM drops the second imm)
//	r1 = btf_id(7, 0) ll       lddw src 3
//	r1 = func(pc+3) ll         lddw src 4
//	r1 = map_idx(0) ll         lddw src 5
//	r1 = map_idx_value(0, 0x10) ll  lddw src 6

// String returns the instruction in llvm-objdump syntax. For the first slot of
// a lddw only the low 32 bits of the constant are known; use Format with the
// second slot for the full text.
func (ins Instruction) String() string {
	return Format(ins, Instruction{})
}

// Format returns the text of the instruction ins; next is the following slot,
// read only when ins is a lddw.
func Format(ins, next Instruction) string {
	c := ins.Op.Class()
	switch c {
	case ClassALU, ClassALU64:
		return formatALU(ins, c == ClassALU64)
	case ClassJMP, ClassJMP32:
		return formatJump(ins, c == ClassJMP)
	case ClassLD:
		switch ins.Op.Mode() {
		case ModeIMM:
			if ins.Op.Size() != SizeDW {
				break
			}
			return formatLoadImm64(ins, next)
		case ModeABS:
			return fmt.Sprintf("r0 = *(%s *)skb[%s]", uSize(ins.Op.Size()), hexS(int64(ins.Imm)))
		case ModeIND:
			if ins.Imm == 0 {
				return fmt.Sprintf("r0 = *(%s *)skb[%s]", uSize(ins.Op.Size()), ins.Src)
			}
			return fmt.Sprintf("r0 = *(%s *)skb[%s %s]", uSize(ins.Op.Size()), ins.Src, immOffset(ins.Imm))
		}
	case ClassLDX:
		switch ins.Op.Mode() {
		case ModeMEM:
			return fmt.Sprintf("%s = *(%s *)(%s %s)", ins.Dst, uSize(ins.Op.Size()), ins.Src, offset(ins.Off))
		case ModeMEMSX:
			return fmt.Sprintf("%s = *(%s *)(%s %s)", ins.Dst, sSize(ins.Op.Size()), ins.Src, offset(ins.Off))
		}
	case ClassST:
		if ins.Op.Mode() == ModeMEM {
			return fmt.Sprintf("*(%s *)(%s %s) = %s", uSize(ins.Op.Size()), ins.Dst, offset(ins.Off), hexS(int64(ins.Imm)))
		}
	case ClassSTX:
		switch ins.Op.Mode() {
		case ModeMEM:
			return fmt.Sprintf("*(%s *)(%s %s) = %s", uSize(ins.Op.Size()), ins.Dst, offset(ins.Off), ins.Src)
		case ModeATOMIC:
			return formatAtomic(ins)
		}
	}
	return fmt.Sprintf("<invalid opcode 0x%02x>", uint8(ins.Op))
}

// hexS prints a signed value as LLVM does: 0x1f, -0x5.
func hexS(v int64) string {
	if v < 0 {
		return fmt.Sprintf("-%#x", uint64(-v))
	}
	return fmt.Sprintf("%#x", v)
}

// offset prints a memory offset as "+ 0x4" or "- 0x8".
func offset(off int16) string {
	if off < 0 {
		return fmt.Sprintf("- %#x", -int32(off))
	}
	return fmt.Sprintf("+ %#x", off)
}

// immOffset prints the 32-bit displacement of a legacy indirect packet load
// as "+ 0x4" or "- 0x80000000". (LLVM prints only "skb[r1]" and drops it.)
func immOffset(imm int32) string {
	if imm < 0 {
		return fmt.Sprintf("- %#x", -int64(imm))
	}
	return fmt.Sprintf("+ %#x", imm)
}

// jumpOffset prints a relative jump as "+0x3" or "-0x2".
func jumpOffset(off int64) string {
	if off < 0 {
		return fmt.Sprintf("-%#x", -off)
	}
	return fmt.Sprintf("+%#x", off)
}

func uSize(s Size) string { return "u" + fmt.Sprint(s.Bytes()*8) }
func sSize(s Size) string { return "s" + fmt.Sprint(s.Bytes()*8) }

func regName(r Register, wide bool) string {
	if wide {
		return fmt.Sprintf("r%d", uint8(r))
	}
	return fmt.Sprintf("w%d", uint8(r))
}

var aluSymbols = [16]string{"+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "", "%=", "^=", "=", "s>>=", "", "", ""}

func formatALU(ins Instruction, wide bool) string {
	dst := regName(ins.Dst, wide)
	op := ins.Op.ALUOp()
	switch op {
	case ALUNeg:
		return fmt.Sprintf("%s = -%s", dst, dst)
	case ALUEnd:
		r := regName(ins.Dst, true)
		name := "le"
		if wide {
			name = "bswap"
		} else if ins.Op.Source() == SourceBE {
			name = "be"
		}
		return fmt.Sprintf("%s = %s%d %s", r, name, ins.Imm, r)
	case 0xe0, 0xf0:
		return fmt.Sprintf("<invalid opcode 0x%02x>", uint8(ins.Op))
	}
	sym := aluSymbols[op>>4]
	if ins.Off == 1 && (op == ALUDiv || op == ALUMod) {
		sym = "s" + sym
	}
	var src string
	if ins.Op.Source() == SourceX {
		src = regName(ins.Src, wide)
		if op == ALUMov && wide && ins.Off == 1 {
			// The kernel's arena pointer cast, which Validate rejects;
			// printed as LLVM and the kernel do.
			return fmt.Sprintf("%s = addr_space_cast(%s, %#x, %#x)", dst, src, uint32(ins.Imm)>>16, uint16(ins.Imm))
		}
		if op == ALUMov && ins.Off != 0 {
			src = fmt.Sprintf("(s%d)%s", ins.Off, src)
		}
	} else {
		src = hexS(int64(ins.Imm))
	}
	return fmt.Sprintf("%s %s %s", dst, sym, src)
}

var condSymbols = [16]string{"", "==", ">", ">=", "&", "!=", "s>", "s>=", "", "", "<", "<=", "s<", "s<=", "", ""}

func formatJump(ins Instruction, wide bool) string {
	op := ins.Op.JumpOp()
	switch op {
	case JumpA:
		if !wide {
			return "gotol " + jumpOffset(int64(ins.Imm))
		}
		return "goto " + jumpOffset(int64(ins.Off))
	case Exit:
		return "exit"
	case Call:
		if ins.Op.Source() == SourceX {
			return fmt.Sprintf("callx %s", ins.Dst)
		}
		switch ins.Src {
		case PseudoCall:
			return fmt.Sprintf("call pc%+d", ins.Imm)
		case PseudoKfuncCall:
			if ins.Off != 0 {
				// off selects the module BTF (an fd_array index).
				return fmt.Sprintf("call kfunc#%d, %d", ins.Imm, ins.Off)
			}
			return fmt.Sprintf("call kfunc#%d", ins.Imm)
		}
		return "call " + hexS(int64(ins.Imm))
	case JumpCond:
		if wide && ins.Op.Source() == SourceK && ins.Src == 0 {
			// BPF_JCOND with BPF_MAY_GOTO, printed as LLVM does.
			return "may_goto " + jumpOffset(int64(ins.Off))
		}
		return fmt.Sprintf("<invalid opcode 0x%02x>", uint8(ins.Op))
	case 0xf0:
		return fmt.Sprintf("<invalid opcode 0x%02x>", uint8(ins.Op))
	}
	var src string
	if ins.Op.Source() == SourceX {
		src = regName(ins.Src, wide)
	} else {
		src = hexS(int64(ins.Imm))
	}
	return fmt.Sprintf("if %s %s %s goto %s", regName(ins.Dst, wide), condSymbols[op>>4], src, jumpOffset(int64(ins.Off)))
}

func formatLoadImm64(lo, hi Instruction) string {
	switch lo.Src {
	case PseudoMapFD:
		return fmt.Sprintf("%s = map_fd(%d) ll", lo.Dst, lo.Imm)
	case PseudoMapValue:
		return fmt.Sprintf("%s = map_value(%d, %s) ll", lo.Dst, lo.Imm, hexS(int64(hi.Imm)))
	case PseudoBTFID:
		return fmt.Sprintf("%s = btf_id(%d, %d) ll", lo.Dst, lo.Imm, hi.Imm)
	case PseudoFunc:
		return fmt.Sprintf("%s = func(pc%+d) ll", lo.Dst, lo.Imm)
	case PseudoMapIdx:
		return fmt.Sprintf("%s = map_idx(%d) ll", lo.Dst, lo.Imm)
	case PseudoMapIdxValue:
		return fmt.Sprintf("%s = map_idx_value(%d, %s) ll", lo.Dst, lo.Imm, hexS(int64(hi.Imm)))
	}
	return fmt.Sprintf("%s = %s ll", lo.Dst, hexS(int64(Imm64(lo, hi))))
}

func formatAtomic(ins Instruction) string {
	wide := ins.Op.Size() == SizeDW
	op := AtomicOp(ins.Imm)
	mem := fmt.Sprintf("%s %s", ins.Dst, offset(ins.Off))
	size := uSize(ins.Op.Size())
	switch {
	case op == AtomicXchg:
		if wide {
			return fmt.Sprintf("%s = xchg_64(%s, %s)", ins.Src, mem, ins.Src)
		}
		return fmt.Sprintf("%s = xchg32_32(%s, %s)", regName(ins.Src, false), mem, regName(ins.Src, false))
	case op == AtomicCmpXchg:
		if wide {
			return fmt.Sprintf("r0 = cmpxchg_64(%s, r0, %s)", mem, ins.Src)
		}
		return fmt.Sprintf("w0 = cmpxchg32_32(%s, w0, %s)", mem, regName(ins.Src, false))
	case !op.Valid():
		return fmt.Sprintf("<invalid atomic operation %#x>", ins.Imm)
	case op.Fetches():
		src := regName(ins.Src, wide)
		return fmt.Sprintf("%s = atomic_fetch_%s((%s *)(%s), %s)", src, strings.ToLower(op.ALU().String()), size, mem, src)
	}
	return fmt.Sprintf("lock *(%s *)(%s) %s %s", size, mem, aluSymbols[op.ALU()>>4], ins.Src)
}
