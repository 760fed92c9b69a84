package isa

import (
	"errors"
	"fmt"
)

// Classes of validation failure, for callers that branch with errors.Is.
var (
	ErrReserved        = errors.New("reserved field is not zero")
	ErrInvalidOpcode   = errors.New("invalid opcode")
	ErrInvalidRegister = errors.New("invalid register")
	ErrReadOnlyFP      = errors.New("frame pointer r10 is read-only")
	ErrJumpRange       = errors.New("jump out of range")
	ErrLoadImm64       = errors.New("invalid lddw")
	ErrNoExit          = errors.New("last instruction is not exit or goto")
	ErrEmpty           = errors.New("program has no instructions")
)

// Error describes an invalid instruction. Index is the slot index, as the
// kernel and llvm-objdump number instructions.
type Error struct {
	Index  int
	Insn   Instruction
	Err    error  // one of the Err* classes above
	Detail string // what exactly is wrong and, when known, what to change
}

func (e *Error) Error() string {
	s := fmt.Sprintf("instruction %d (%s): %v", e.Index, e.Insn.Op, e.Err)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Validate checks the fields of a single slot against RFC 9669 and the
// kernel's reserved-field rules (kernel/bpf/verifier.c, do_check and
// check_*): unknown opcodes, registers above r10, writes to r10 and non-zero
// reserved fields. It cannot check what depends on neighbouring slots; see
// ValidateProgram. The returned error, if any, is an *Error with Index 0.
func (ins Instruction) Validate() error {
	if err := ins.check(); err != nil {
		err.Insn = ins
		return err
	}
	return nil
}

// ValidateProgram checks every slot with Validate and the program as a whole:
// it is not empty, every lddw has its second slot (opcode 0, other fields
// zero), every jump and local call lands on an instruction in the program and
// not inside a lddw, and the last instruction is exit or an unconditional
// jump, so execution can never run past the end. Errors are *Error values
// naming the slot index.
func ValidateProgram(prog []Instruction) error {
	return ValidateProgramWith(prog, ValidateOptions{})
}

// ValidateOptions relax ValidateProgramWith's checks for callers that make
// them elsewhere.
type ValidateOptions struct {
	// FPWrites leaves writes to r10 (ErrReadOnlyFP) to the caller. Linux's
	// verifier refuses them only on the paths that reach them
	// (check_reg_arg with DST_OP), so a write to r10 in dead code loads;
	// a verifier that walks the paths sets this and refuses the write
	// where it is reached.
	FPWrites bool
}

// ValidateProgramWith is ValidateProgram with some checks left to the
// caller, as o says.
func ValidateProgramWith(prog []Instruction, o ValidateOptions) error {
	if len(prog) == 0 {
		return &Error{Err: ErrEmpty}
	}
	// second[i] is true when slot i is the second half of a lddw.
	second := make([]bool, len(prog))
	for i := 0; i < len(prog); i++ {
		ins := prog[i]
		// writesDst is each path's last check, so an instruction refused
		// only for writing r10 is otherwise valid.
		if err := ins.check(); err != nil && !(o.FPWrites && err.Err == ErrReadOnlyFP) {
			err.Index, err.Insn = i, ins
			return err
		}
		if !ins.IsLoadImm64() {
			continue
		}
		if i+1 == len(prog) {
			return &Error{Index: i, Insn: ins, Err: ErrLoadImm64, Detail: "truncated: the second slot is missing at the end of the program"}
		}
		hi := prog[i+1]
		if hi.Op != 0 || hi.Dst != 0 || hi.Src != 0 || hi.Off != 0 {
			return &Error{Index: i, Insn: ins, Err: ErrLoadImm64, Detail: fmt.Sprintf("second slot %d must have opcode, registers and offset 0, has opcode 0x%02x dst %d src %d off %d", i+1, uint8(hi.Op), hi.Dst, hi.Src, hi.Off)}
		}
		switch ins.Src {
		case PseudoMapFD, PseudoMapIdx, PseudoFunc:
			if hi.Imm != 0 {
				return &Error{Index: i, Insn: ins, Err: ErrLoadImm64, Detail: fmt.Sprintf("pseudo source %d needs 0 in the second slot's imm, has %d", ins.Src, hi.Imm)}
			}
		}
		second[i+1] = true
		i++
	}
	for i := 0; i < len(prog); i++ {
		ins := prog[i]
		if t, ok := ins.JumpTarget(i); ok {
			if t < 0 || t >= len(prog) {
				return &Error{Index: i, Insn: ins, Err: ErrJumpRange, Detail: fmt.Sprintf("target %d is outside the program's %d slots", t, len(prog))}
			}
			if second[t] {
				return &Error{Index: i, Insn: ins, Err: ErrJumpRange, Detail: fmt.Sprintf("target %d is the second slot of the lddw at %d", t, t-1)}
			}
		}
		i += ins.Width() - 1
	}
	last := len(prog) - 1
	if second[last] {
		last--
	}
	if op := prog[last].Op; op != OpExit && op != OpJA && op != OpJA32 {
		return &Error{Index: last, Insn: prog[last], Err: ErrNoExit, Detail: "execution would run past the end of the program"}
	}
	return nil
}

func reserved(field string, v any, want string) *Error {
	return &Error{Err: ErrReserved, Detail: fmt.Sprintf("%s is %v, must be %s", field, v, want)}
}

func invalidOp(format string, args ...any) *Error {
	return &Error{Err: ErrInvalidOpcode, Detail: fmt.Sprintf(format, args...)}
}

func (ins Instruction) check() *Error {
	if ins.Dst > MaxRegister {
		return &Error{Err: ErrInvalidRegister, Detail: fmt.Sprintf("dst is r%d, registers are r0-r10", ins.Dst)}
	}
	if ins.Src > MaxRegister && !ins.IsLoadImm64() {
		return &Error{Err: ErrInvalidRegister, Detail: fmt.Sprintf("src is r%d, registers are r0-r10", ins.Src)}
	}
	switch c := ins.Op.Class(); c {
	case ClassALU, ClassALU64:
		return ins.checkALU(c)
	case ClassJMP, ClassJMP32:
		return ins.checkJump(c)
	case ClassLD:
		return ins.checkLD()
	case ClassLDX:
		switch ins.Op.Mode() {
		case ModeMEM:
		case ModeMEMSX:
			if ins.Op.Size() == SizeDW {
				return invalidOp("0x%02x: sign-extending load of 8 bytes does not exist, use ldxdw", uint8(ins.Op))
			}
		default:
			return invalidOp("0x%02x: ldx mode %s, only mem and memsx exist", uint8(ins.Op), ins.Op.Mode())
		}
		if ins.Imm != 0 {
			return reserved("imm", ins.Imm, "0")
		}
		return ins.writesDst()
	case ClassST:
		if ins.Op.Mode() != ModeMEM {
			return invalidOp("0x%02x: st mode %s, only mem exists", uint8(ins.Op), ins.Op.Mode())
		}
		if ins.Src != 0 {
			return reserved("src", ins.Src, "r0")
		}
	case ClassSTX:
		switch ins.Op.Mode() {
		case ModeMEM:
			if ins.Imm != 0 {
				return reserved("imm", ins.Imm, "0")
			}
		case ModeATOMIC:
			if s := ins.Op.Size(); s != SizeW && s != SizeDW {
				return invalidOp("0x%02x: atomic of size %s, only w (4 bytes) and dw (8 bytes) exist", uint8(ins.Op), s)
			}
			op := AtomicOp(ins.Imm)
			if !op.Valid() {
				return invalidOp("atomic operation imm %#x is not add, or, and, xor (each with or without fetch 0x01), xchg 0xe1 or cmpxchg 0xf1", ins.Imm)
			}
			if op.Fetches() && op != AtomicCmpXchg && ins.Src == RFP {
				return &Error{Err: ErrReadOnlyFP, Detail: "a fetching atomic writes the old value into src"}
			}
		default:
			return invalidOp("0x%02x: stx mode %s, only mem and atomic exist", uint8(ins.Op), ins.Op.Mode())
		}
	}
	return nil
}

func (ins Instruction) writesDst() *Error {
	if ins.Dst == RFP {
		return &Error{Err: ErrReadOnlyFP, Detail: "use another destination register"}
	}
	return nil
}

func (ins Instruction) checkALU(c Class) *Error {
	op := ins.Op.ALUOp()
	x := ins.Op.Source() == SourceX
	switch op {
	case 0xe0, 0xf0:
		return invalidOp("0x%02x: unknown %s operation %#x", uint8(ins.Op), c, uint8(op))
	case ALUEnd:
		if c == ClassALU64 && x {
			return invalidOp("0x%02x: bswap (alu64 end) has no big-endian form, use 0xd7", uint8(ins.Op))
		}
		if ins.Src != 0 {
			return reserved("src", ins.Src, "r0")
		}
		if ins.Off != 0 {
			return reserved("off", ins.Off, "0")
		}
		if ins.Imm != 16 && ins.Imm != 32 && ins.Imm != 64 {
			return invalidOp("byte swap width imm is %d, must be 16, 32 or 64", ins.Imm)
		}
		return ins.writesDst()
	case ALUNeg:
		if x {
			return invalidOp("0x%02x: neg has no register-source form, use 0x%02x", uint8(ins.Op), uint8(ins.Op)&^0x08)
		}
		if ins.Src != 0 {
			return reserved("src", ins.Src, "r0")
		}
		if ins.Off != 0 {
			return reserved("off", ins.Off, "0")
		}
		if ins.Imm != 0 {
			return reserved("imm", ins.Imm, "0")
		}
		return ins.writesDst()
	case ALUMov:
		if x {
			if ins.Imm != 0 {
				return reserved("imm", ins.Imm, "0")
			}
			switch ins.Off {
			case 0, 8, 16:
			case 32:
				if c == ClassALU {
					return reserved("off", ins.Off, "0, 8 or 16 for a 32-bit mov (movsx32 from 32 bits is a plain mov)")
				}
			default:
				return reserved("off", ins.Off, "0 (mov) or 8, 16, 32 (movsx)")
			}
			return ins.writesDst()
		}
	case ALUDiv, ALUMod:
		if ins.Off != 0 && ins.Off != 1 {
			return reserved("off", ins.Off, "0 (unsigned) or 1 (signed)")
		}
		if x {
			if ins.Imm != 0 {
				return reserved("imm", ins.Imm, "0")
			}
		} else if ins.Src != 0 {
			return reserved("src", ins.Src, "r0")
		}
		return ins.writesDst()
	}
	if x {
		if ins.Imm != 0 {
			return reserved("imm", ins.Imm, "0")
		}
	} else if ins.Src != 0 {
		return reserved("src", ins.Src, "r0")
	}
	if ins.Off != 0 {
		return reserved("off", ins.Off, "0")
	}
	return ins.writesDst()
}

func (ins Instruction) checkJump(c Class) *Error {
	x := ins.Op.Source() == SourceX
	switch op := ins.Op.JumpOp(); op {
	case 0xf0:
		return invalidOp("0x%02x: jump operation 0xf0 does not exist", uint8(ins.Op))
	case JumpCond:
		// BPF_JCOND, Linux's extension: only may_goto (src 0) exists, and
		// the kernel refuses every other field (check_cond_jmp_op,
		// "invalid may_goto off %d imm %d").
		if c == ClassJMP32 || x {
			return invalidOp("0x%02x: jcond exists only as 0xe5 (may_goto, class jmp, immediate source)", uint8(ins.Op))
		}
		if ins.Src != 0 {
			return invalidOp("jcond src is %d, only 0 (may_goto) exists", ins.Src)
		}
		if ins.Dst != 0 {
			return reserved("dst", ins.Dst, "r0")
		}
		if ins.Imm != 0 {
			return reserved("imm", ins.Imm, "0")
		}
		if ins.Off == 0 {
			return &Error{Err: ErrJumpRange, Detail: "may_goto +0 goes to the next instruction either way; the kernel refuses it (invalid may_goto off 0)"}
		}
	case JumpA:
		if x {
			return invalidOp("0x%02x: ja has no register form", uint8(ins.Op))
		}
		if ins.Dst != 0 {
			return reserved("dst", ins.Dst, "r0")
		}
		if ins.Src != 0 {
			return reserved("src", ins.Src, "r0")
		}
		if c == ClassJMP32 {
			if ins.Off != 0 {
				return reserved("off", ins.Off, "0 (gotol keeps its target in imm)")
			}
		} else if ins.Imm != 0 {
			return reserved("imm", ins.Imm, "0 (goto keeps its target in off)")
		}
	case Call:
		if c == ClassJMP32 {
			return invalidOp("0x%02x: call exists only in class jmp", uint8(ins.Op))
		}
		if x {
			// callx: LLVM's indirect call, register in dst (the conformance
			// suite's encoding). RFC 9669 reserves it; see RATIONALE.md.
			if ins.Src != 0 {
				return reserved("src", ins.Src, "r0")
			}
			if ins.Off != 0 {
				return reserved("off", ins.Off, "0")
			}
			if ins.Imm != 0 {
				return reserved("imm", ins.Imm, "0")
			}
			return nil
		}
		if ins.Dst != 0 {
			return reserved("dst", ins.Dst, "r0")
		}
		switch ins.Src {
		case 0, PseudoCall:
			if ins.Off != 0 {
				return reserved("off", ins.Off, "0")
			}
		case PseudoKfuncCall:
		default:
			return invalidOp("call src is %d, must be 0 (helper), 1 (local) or 2 (kfunc)", ins.Src)
		}
	case Exit:
		if c == ClassJMP32 {
			return invalidOp("0x%02x: exit exists only in class jmp", uint8(ins.Op))
		}
		if x {
			return invalidOp("0x%02x: exit has no register form", uint8(ins.Op))
		}
		if ins.Dst != 0 {
			return reserved("dst", ins.Dst, "r0")
		}
		if ins.Src != 0 {
			return reserved("src", ins.Src, "r0")
		}
		if ins.Off != 0 {
			return reserved("off", ins.Off, "0")
		}
		if ins.Imm != 0 {
			return reserved("imm", ins.Imm, "0")
		}
	default:
		if x {
			if ins.Imm != 0 {
				return reserved("imm", ins.Imm, "0")
			}
		} else if ins.Src != 0 {
			return reserved("src", ins.Src, "r0")
		}
	}
	return nil
}

func (ins Instruction) checkLD() *Error {
	switch ins.Op.Mode() {
	case ModeIMM:
		if ins.Op.Size() != SizeDW {
			if ins.Op == 0 {
				return invalidOp("0x00 is not an instruction (a stray second slot of a lddw?)")
			}
			return invalidOp("0x%02x: 64-bit immediate load must have size dw (0x18)", uint8(ins.Op))
		}
		if ins.Src > PseudoMapIdxValue {
			return invalidOp("lddw pseudo source is %d, must be 0-6", ins.Src)
		}
		if ins.Off != 0 {
			return reserved("off", ins.Off, "0")
		}
		return ins.writesDst()
	case ModeABS, ModeIND:
		if ins.Op.Size() == SizeDW {
			return invalidOp("0x%02x: legacy packet load of 8 bytes does not exist", uint8(ins.Op))
		}
		if ins.Dst != 0 {
			return reserved("dst", ins.Dst, "r0 (the result always goes to r0)")
		}
		if ins.Off != 0 {
			return reserved("off", ins.Off, "0")
		}
		if ins.Op.Mode() == ModeABS && ins.Src != 0 {
			return reserved("src", ins.Src, "r0")
		}
		return nil
	}
	return invalidOp("0x%02x: ld mode %s does not exist", uint8(ins.Op), ins.Op.Mode())
}
