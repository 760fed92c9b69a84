package interp

import (
	"fmt"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/isa"
)

// insn is the predecoded form of one slot, 16 bytes. The interpreter
// dispatches on op, a dense internal opcode, so the Go compiler builds one
// jump table for the whole instruction set; each internal opcode fixes the
// class, width, source and signedness the RFC opcode leaves to its fields.
//
//	 0    1    2    3    4        8                16
//	+----+----+----+----+--------+----------------+
//	| op |dst |src | sz |  off   |      imm       |
//	+----+----+----+----+--------+----------------+
//
// off is the memory offset of loads and stores and the absolute target slot
// of jumps and local calls. imm is the sign-extended immediate, the whole
// constant of a lddw, the masked count of a shift by immediate, and the
// index into Program.funcs of a helper call. sz is the access size in bytes
// of checked memory operations and the real opcode of an opBack.
type insn struct {
	op  uint8
	dst uint8
	src uint8
	sz  uint8
	off int32
	imm int64
}

// Internal opcodes. Suffix I: immediate source, R: register source,
// C: checked memory access.
const (
	opInvalid uint8 = iota // second slot of a lddw: never executed

	opAdd64I
	opSub64I
	opMul64I
	opDiv64I
	opSDiv64I
	opOr64I
	opAnd64I
	opLsh64I
	opRsh64I
	opMod64I
	opSMod64I
	opXor64I
	opMov64I
	opArsh64I

	opAdd64R
	opSub64R
	opMul64R
	opDiv64R
	opSDiv64R
	opOr64R
	opAnd64R
	opLsh64R
	opRsh64R
	opMod64R
	opSMod64R
	opXor64R
	opMov64R
	opArsh64R
	opMovSX8to64
	opMovSX16to64
	opMovSX32to64
	opNeg64

	opAdd32I
	opSub32I
	opMul32I
	opDiv32I
	opSDiv32I
	opOr32I
	opAnd32I
	opLsh32I
	opRsh32I
	opMod32I
	opSMod32I
	opXor32I
	opMov32I
	opArsh32I

	opAdd32R
	opSub32R
	opMul32R
	opDiv32R
	opSDiv32R
	opOr32R
	opAnd32R
	opLsh32R
	opRsh32R
	opMod32R
	opSMod32R
	opXor32R
	opMov32R
	opArsh32R
	opMovSX8to32
	opMovSX16to32
	opNeg32

	opLE16 // truncate to 16 bits (to-le on a little-endian host)
	opLE32
	opLE64 // nothing to do
	opSwap16
	opSwap32
	opSwap64

	opLddw

	opLdx8
	opLdx16
	opLdx32
	opLdx64
	opLdxS8
	opLdxS16
	opLdxS32
	opSt8
	opSt16
	opSt32
	opSt64
	opStx8
	opStx16
	opStx32
	opStx64
	opLdxC   // checked load, sz bytes
	opLdxSC  // checked sign-extending load
	opStC    // checked store of imm
	opStxC   // checked store of src
	opAtomic // both modes; checked through Machine.atomic

	opLdAbs // legacy packet load, sz bytes, offset imm
	opLdInd // legacy packet load, sz bytes, offset src + imm

	opJA
	opJEq64I
	opJGT64I
	opJGE64I
	opJSet64I
	opJNE64I
	opJSGT64I
	opJSGE64I
	opJLT64I
	opJLE64I
	opJSLT64I
	opJSLE64I
	opJEq64R
	opJGT64R
	opJGE64R
	opJSet64R
	opJNE64R
	opJSGT64R
	opJSGE64R
	opJLT64R
	opJLE64R
	opJSLT64R
	opJSLE64R
	opJEq32I
	opJGT32I
	opJGE32I
	opJSet32I
	opJNE32I
	opJSGT32I
	opJSGE32I
	opJLT32I
	opJLE32I
	opJSLT32I
	opJSLE32I
	opJEq32R
	opJGT32R
	opJGE32R
	opJSet32R
	opJNE32R
	opJSGT32R
	opJSGE32R
	opJLT32R
	opJLE32R
	opJSLT32R
	opJSLE32R
	opMayGoto // jump to off once the frame's may_goto budget (Machine.loops) is spent

	opCall      // helper funcs[imm]
	opCallLocal // bpf-to-bpf call to slot off, costing imm fuel (engine.FrameCosts)
	opCallX     // helper whose id is in dst (the conformance suite's callx)
	opExit
	opBack       // a backward jump: spend fuel, then run the real opcode sz
	opTrace      // tracing: report the instruction, then run Program.traced[pc]
	opCtxVariant // an access with a context form: Program.variants[pc]

	numOps
)

// aluImm64 and aluReg64 map an RFC ALU operation to the internal opcode of
// its 64-bit form; the 32-bit blocks follow in the same order at fixed
// distances.
var aluImm64 = [16]uint8{
	isa.ALUAdd >> 4: opAdd64I, isa.ALUSub >> 4: opSub64I, isa.ALUMul >> 4: opMul64I,
	isa.ALUDiv >> 4: opDiv64I, isa.ALUOr >> 4: opOr64I, isa.ALUAnd >> 4: opAnd64I,
	isa.ALULsh >> 4: opLsh64I, isa.ALURsh >> 4: opRsh64I, isa.ALUMod >> 4: opMod64I,
	isa.ALUXor >> 4: opXor64I, isa.ALUMov >> 4: opMov64I, isa.ALUArsh >> 4: opArsh64I,
}

var aluReg64 = [16]uint8{
	isa.ALUAdd >> 4: opAdd64R, isa.ALUSub >> 4: opSub64R, isa.ALUMul >> 4: opMul64R,
	isa.ALUDiv >> 4: opDiv64R, isa.ALUOr >> 4: opOr64R, isa.ALUAnd >> 4: opAnd64R,
	isa.ALULsh >> 4: opLsh64R, isa.ALURsh >> 4: opRsh64R, isa.ALUMod >> 4: opMod64R,
	isa.ALUXor >> 4: opXor64R, isa.ALUMov >> 4: opMov64R, isa.ALUArsh >> 4: opArsh64R,
}

// Distances between the 64-bit and 32-bit blocks of the table above.
const (
	alu32Imm = opAdd32I - opAdd64I
	alu32Reg = opAdd32R - opAdd64R
)

var jumpBase = [16]uint8{
	isa.JumpEq >> 4: opJEq64I, isa.JumpGT >> 4: opJGT64I, isa.JumpGE >> 4: opJGE64I,
	isa.JumpSet >> 4: opJSet64I, isa.JumpNE >> 4: opJNE64I, isa.JumpSGT >> 4: opJSGT64I,
	isa.JumpSGE >> 4: opJSGE64I, isa.JumpLT >> 4: opJLT64I, isa.JumpLE >> 4: opJLE64I,
	isa.JumpSLT >> 4: opJSLT64I, isa.JumpSLE >> 4: opJSLE64I,
}

const (
	jumpReg   = opJEq64R - opJEq64I
	jump32    = opJEq32I - opJEq64I
	numCondOp = opJSLE64I - opJEq64I + 1
)

// taken reports whether the conditional jump op (opJEq64I to opJSLE32R)
// jumps when its destination register holds x and its source register y
// (imm is the immediate, the source of the immediate forms).
func taken(op uint8, x, y uint64, imm int64) bool {
	k := op - opJEq64I
	wide := k < jump32
	if !wide {
		k -= jump32
	}
	if k >= jumpReg {
		k -= jumpReg
	} else {
		y = uint64(imm)
	}
	sx, sy := int64(x), int64(y)
	if !wide {
		x, y = uint64(uint32(x)), uint64(uint32(y))
		sx, sy = int64(int32(x)), int64(int32(y))
	}
	switch k + opJEq64I {
	case opJEq64I:
		return x == y
	case opJGT64I:
		return x > y
	case opJGE64I:
		return x >= y
	case opJSet64I:
		return x&y != 0
	case opJNE64I:
		return x != y
	case opJSGT64I:
		return sx > sy
	case opJSGE64I:
		return sx >= sy
	case opJLT64I:
		return x < y
	case opJLE64I:
		return x <= y
	case opJSLT64I:
		return sx < sy
	case opJSLE64I:
		return sx <= sy
	}
	return false
}

// decode turns validated slots into internal instructions. It resolves
// helper calls against the table; a call to a helper the table lacks is an
// error, as it is when the kernel loads the program.
// funcBase is the value of the PseudoFunc lddw for slot 0; slot n is
// funcBase + n*isa.InstructionSize (see Program.funcPC).
func decode(prog []isa.Instruction, mode Mode, table helpers.Table, funcBase uint64) ([]insn, []helpers.Func, error) {
	code := make([]insn, len(prog))
	var funcs []helpers.Func
	funcIndex := map[int32]int64{}
	for pc := 0; pc < len(prog); pc++ {
		ins := prog[pc]
		d := insn{dst: uint8(ins.Dst), src: uint8(ins.Src), off: int32(ins.Off), imm: int64(ins.Imm)}
		fail := func(format string, args ...any) error {
			return fmt.Errorf("instruction %d (%s): %s", pc, ins, fmt.Sprintf(format, args...))
		}
		switch c := ins.Op.Class(); c {
		case isa.ClassALU, isa.ClassALU64:
			wide := c == isa.ClassALU64
			x := ins.Op.Source() == isa.SourceX
			op := ins.Op.ALUOp()
			switch {
			case op == isa.ALUNeg:
				d.op = opNeg64
				if !wide {
					d.op = opNeg32
				}
			case op == isa.ALUEnd:
				d.op = endOp(wide, ins.Op.Source() == isa.SourceBE, ins.Imm)
			case op == isa.ALUMov && x && ins.Off != 0:
				switch {
				case wide && ins.Off == 8:
					d.op = opMovSX8to64
				case wide && ins.Off == 16:
					d.op = opMovSX16to64
				case wide && ins.Off == 32:
					d.op = opMovSX32to64
				case ins.Off == 8:
					d.op = opMovSX8to32
				default:
					d.op = opMovSX16to32
				}
			default:
				if x {
					d.op = aluReg64[op>>4]
				} else {
					d.op = aluImm64[op>>4]
				}
				if ins.Off == 1 { // sdiv, smod: the next opcode in each block
					d.op++
				}
				if !wide {
					if x {
						d.op += alu32Reg
					} else {
						d.op += alu32Imm
					}
				}
				if !x && (op == isa.ALULsh || op == isa.ALURsh || op == isa.ALUArsh) {
					// RFC 9669 masks shift counts, immediates included.
					if wide {
						d.imm &= 63
					} else {
						d.imm &= 31
					}
				}
			}
		case isa.ClassLD:
			switch ins.Op.Mode() {
			case isa.ModeIMM:
				d.op = opLddw
				switch ins.Src {
				case 0:
					d.imm = int64(isa.Imm64(ins, prog[pc+1]))
				case isa.PseudoFunc:
					// The address of a callback: an opaque value the
					// program hands to helpers (bpf_loop), which give it
					// back to Machine.Call.
					t, _ := ins.JumpTarget(pc)
					d.imm = int64(funcBase + uint64(t)*isa.InstructionSize)
				default:
					return nil, nil, fail("lddw with pseudo source %d must be resolved by the loader before it runs", ins.Src)
				}
				code[pc] = d
				pc++ // the second slot stays opInvalid
				continue
			case isa.ModeABS:
				d.op, d.sz = opLdAbs, uint8(ins.Op.Size().Bytes())
			case isa.ModeIND:
				d.op, d.sz = opLdInd, uint8(ins.Op.Size().Bytes())
			}
		case isa.ClassLDX:
			n := ins.Op.Size().Bytes()
			sx := ins.Op.Mode() == isa.ModeMEMSX
			switch {
			case mode == Checked && sx:
				d.op, d.sz = opLdxSC, uint8(n)
			case mode == Checked:
				d.op, d.sz = opLdxC, uint8(n)
			case sx:
				d.op = [9]uint8{1: opLdxS8, 2: opLdxS16, 4: opLdxS32}[n]
			default:
				d.op = [9]uint8{1: opLdx8, 2: opLdx16, 4: opLdx32, 8: opLdx64}[n]
			}
		case isa.ClassST:
			n := ins.Op.Size().Bytes()
			if mode == Checked {
				d.op, d.sz = opStC, uint8(n)
			} else {
				d.op = [9]uint8{1: opSt8, 2: opSt16, 4: opSt32, 8: opSt64}[n]
			}
		case isa.ClassSTX:
			n := ins.Op.Size().Bytes()
			switch {
			case ins.Op.Mode() == isa.ModeATOMIC:
				d.op, d.sz = opAtomic, uint8(n)
			case mode == Checked:
				d.op, d.sz = opStxC, uint8(n)
			default:
				d.op = [9]uint8{1: opStx8, 2: opStx16, 4: opStx32, 8: opStx64}[n]
			}
		case isa.ClassJMP, isa.ClassJMP32:
			op := ins.Op.JumpOp()
			switch op {
			case isa.Exit:
				d.op = opExit
			case isa.Call:
				switch {
				case ins.Op.Source() == isa.SourceX:
					d.op = opCallX
				case ins.Src == isa.PseudoCall:
					d.op = opCallLocal
					d.off = int32(pc + 1 + int(ins.Imm))
				case ins.Src == isa.PseudoKfuncCall:
					return nil, nil, fail("kfunc calls need a kernel; user space has no kernel functions")
				default:
					f, err := table.Lookup(ins.Imm)
					if err != nil {
						return nil, nil, fail("%v", err)
					}
					idx, ok := funcIndex[ins.Imm]
					if !ok {
						idx = int64(len(funcs))
						funcs = append(funcs, f)
						funcIndex[ins.Imm] = idx
					}
					d.op, d.imm = opCall, idx
				}
			default:
				t, _ := ins.JumpTarget(pc)
				d.off = int32(t)
				switch {
				case op == isa.JumpA:
					d.op = opJA
				case op == isa.JumpCond:
					// Validated: only may_goto has this operation.
					d.op = opMayGoto
				default:
					d.op = jumpBase[op>>4]
					if ins.Op.Source() == isa.SourceX {
						d.op += jumpReg
					}
					if c == isa.ClassJMP32 {
						d.op += jump32
					}
				}
				if t <= pc {
					// Backward: every loop takes one, so fuel is spent
					// here when it is taken (pc-t+1, the slots it jumps
					// back over) and nowhere else but at calls and
					// callbacks.
					d.sz, d.op = d.op, opBack
				}
			}
		}
		if d.op == opInvalid {
			return nil, nil, fail("no interpretation for opcode 0x%02x", uint8(ins.Op))
		}
		code[pc] = d
	}
	return code, funcs, nil
}

// isJump reports whether op is a jump to slot off.
func isJump(op uint8) bool { return op >= opJA && op <= opMayGoto || op == opBack }

func endOp(bswap, be bool, width int32) uint8 {
	if bswap || be {
		switch width {
		case 16:
			return opSwap16
		case 32:
			return opSwap32
		}
		return opSwap64
	}
	switch width {
	case 16:
		return opLE16
	case 32:
		return opLE32
	}
	return opLE64
}
