package isa

import "fmt"

// Opcode is the first byte of an instruction slot. Its low three bits are the
// instruction class; the meaning of the other five depends on the class
// (RFC 9669 §3):
//
//	ALU, ALU64, JMP, JMP32:      LD, LDX, ST, STX:
//	  7     4  3   2   0           7    5 4  3 2   0
//	+--------+---+-----+         +------+----+-----+
//	|  code  | s |class|         | mode |size|class|
//	+--------+---+-----+         +------+----+-----+
//	s: source, 0 = K (imm), 1 = X (src register)
type Opcode uint8

// Class is the instruction class, the low three bits of an Opcode.
type Class uint8

// Instruction classes (RFC 9669 §3.1).
const (
	ClassLD    Class = 0x00 // BPF_LD: 64-bit immediate loads and legacy packet loads
	ClassLDX   Class = 0x01 // BPF_LDX: load into register
	ClassST    Class = 0x02 // BPF_ST: store immediate
	ClassSTX   Class = 0x03 // BPF_STX: store register, atomics
	ClassALU   Class = 0x04 // BPF_ALU: 32-bit arithmetic
	ClassJMP   Class = 0x05 // BPF_JMP: 64-bit jumps, call, exit
	ClassJMP32 Class = 0x06 // BPF_JMP32: 32-bit jumps
	ClassALU64 Class = 0x07 // BPF_ALU64: 64-bit arithmetic
)

// Source selects the second operand of ALU and jump instructions.
type Source uint8

// Operand sources (RFC 9669 §4.1). For BPF_END the same bit selects the byte
// order: SourceLE = K, SourceBE = X.
const (
	SourceK  Source = 0x00 // BPF_K: use the 32-bit immediate
	SourceX  Source = 0x08 // BPF_X: use the src register
	SourceLE Source = 0x00 // BPF_TO_LE
	SourceBE Source = 0x08 // BPF_TO_BE
)

// ALUOp is the operation code (high four bits) of an ALU or ALU64 opcode.
type ALUOp uint8

// Arithmetic operations (RFC 9669 §4.1).
const (
	ALUAdd  ALUOp = 0x00 // BPF_ADD
	ALUSub  ALUOp = 0x10 // BPF_SUB
	ALUMul  ALUOp = 0x20 // BPF_MUL
	ALUDiv  ALUOp = 0x30 // BPF_DIV (SDIV when offset is 1)
	ALUOr   ALUOp = 0x40 // BPF_OR
	ALUAnd  ALUOp = 0x50 // BPF_AND
	ALULsh  ALUOp = 0x60 // BPF_LSH
	ALURsh  ALUOp = 0x70 // BPF_RSH
	ALUNeg  ALUOp = 0x80 // BPF_NEG
	ALUMod  ALUOp = 0x90 // BPF_MOD (SMOD when offset is 1)
	ALUXor  ALUOp = 0xa0 // BPF_XOR
	ALUMov  ALUOp = 0xb0 // BPF_MOV (MOVSX when offset is 8, 16 or 32)
	ALUArsh ALUOp = 0xc0 // BPF_ARSH
	ALUEnd  ALUOp = 0xd0 // BPF_END: byte swap
)

// JumpOp is the operation code (high four bits) of a JMP or JMP32 opcode.
type JumpOp uint8

// Jump operations (RFC 9669 §4.3).
const (
	JumpA    JumpOp = 0x00 // BPF_JA
	JumpEq   JumpOp = 0x10 // BPF_JEQ
	JumpGT   JumpOp = 0x20 // BPF_JGT
	JumpGE   JumpOp = 0x30 // BPF_JGE
	JumpSet  JumpOp = 0x40 // BPF_JSET
	JumpNE   JumpOp = 0x50 // BPF_JNE
	JumpSGT  JumpOp = 0x60 // BPF_JSGT
	JumpSGE  JumpOp = 0x70 // BPF_JSGE
	Call     JumpOp = 0x80 // BPF_CALL
	Exit     JumpOp = 0x90 // BPF_EXIT
	JumpLT   JumpOp = 0xa0 // BPF_JLT
	JumpLE   JumpOp = 0xb0 // BPF_JLE
	JumpSLT  JumpOp = 0xc0 // BPF_JSLT
	JumpSLE  JumpOp = 0xd0 // BPF_JSLE
	JumpCond JumpOp = 0xe0 // BPF_JCOND: may_goto, a kernel extension outside RFC 9669 (Linux 6.9)
)

// MaxLoops is the budget of a may_goto countdown, the kernel's BPF_MAX_LOOPS
// (include/linux/bpf.h): in each call frame, the frame's may_goto
// instructions together fall through this many times, and every later one
// jumps. The verifier of Linux 6.9 to 6.12 sets the counter up in every
// function's prologue; later kernels whose JIT can read the clock (x86-64,
// arm64 since 6.15) give a frame 250 ms instead, refilling a counter of
// 0xffff, so the kernel there is not deterministic.
const MaxLoops = 8 * 1024 * 1024

// Size is the access width of a load or store, bits 3-4 of the opcode.
type Size uint8

// Access sizes (RFC 9669 §5.1).
const (
	SizeW  Size = 0x00 // BPF_W: 4 bytes
	SizeH  Size = 0x08 // BPF_H: 2 bytes
	SizeB  Size = 0x10 // BPF_B: 1 byte
	SizeDW Size = 0x18 // BPF_DW: 8 bytes
)

// Bytes returns the number of bytes the size accesses.
func (s Size) Bytes() int {
	switch s {
	case SizeW:
		return 4
	case SizeH:
		return 2
	case SizeB:
		return 1
	default:
		return 8
	}
}

// Mode is the addressing mode of a load or store, the high three bits.
type Mode uint8

// Addressing modes (RFC 9669 §5).
const (
	ModeIMM    Mode = 0x00 // BPF_IMM: 64-bit immediate (lddw)
	ModeABS    Mode = 0x20 // BPF_ABS: legacy packet access, absolute offset
	ModeIND    Mode = 0x40 // BPF_IND: legacy packet access, register + offset
	ModeMEM    Mode = 0x60 // BPF_MEM: regular load or store
	ModeMEMSX  Mode = 0x80 // BPF_MEMSX: sign-extending load
	ModeATOMIC Mode = 0xc0 // BPF_ATOMIC: atomic read-modify-write
)

// AtomicOp is the immediate of a BPF_ATOMIC instruction (RFC 9669 §5.3).
type AtomicOp int32

// Atomic operations. Fetch may be or-ed into Add, Or, And and Xor; Xchg and
// CmpXchg always include it.
const (
	AtomicAdd     AtomicOp = 0x00 // BPF_ADD
	AtomicOr      AtomicOp = 0x40 // BPF_OR
	AtomicAnd     AtomicOp = 0x50 // BPF_AND
	AtomicXor     AtomicOp = 0xa0 // BPF_XOR
	AtomicFetch   AtomicOp = 0x01 // BPF_FETCH: load the old value into src
	AtomicXchg    AtomicOp = 0xe1 // BPF_XCHG | BPF_FETCH
	AtomicCmpXchg AtomicOp = 0xf1 // BPF_CMPXCHG | BPF_FETCH: compares with r0, old value into r0
)

// Valid reports whether op is one of the atomic operations RFC 9669 defines.
func (op AtomicOp) Valid() bool {
	switch op {
	case AtomicAdd, AtomicOr, AtomicAnd, AtomicXor,
		AtomicAdd | AtomicFetch, AtomicOr | AtomicFetch, AtomicAnd | AtomicFetch, AtomicXor | AtomicFetch,
		AtomicXchg, AtomicCmpXchg:
		return true
	}
	return false
}

// Fetches reports whether the operation loads the old value back.
func (op AtomicOp) Fetches() bool { return op&AtomicFetch != 0 }

// ALU returns the arithmetic operation of a non-exchanging atomic.
func (op AtomicOp) ALU() ALUOp { return ALUOp(op &^ AtomicFetch) }

// Pseudo source values: the src field of lddw and call gives the kind of the
// immediate (RFC 9669 §4.3.1 and §5.4; kernel include/uapi/linux/bpf.h).
const (
	PseudoMapFD       Register = 1 // BPF_PSEUDO_MAP_FD: imm is a map fd
	PseudoMapValue    Register = 2 // BPF_PSEUDO_MAP_VALUE: map fd, offset into value in the second imm
	PseudoBTFID       Register = 3 // BPF_PSEUDO_BTF_ID: kernel variable by BTF id
	PseudoFunc        Register = 4 // BPF_PSEUDO_FUNC: address of a subprogram, imm relative
	PseudoMapIdx      Register = 5 // BPF_PSEUDO_MAP_IDX: map by index into fd_array
	PseudoMapIdxValue Register = 6 // BPF_PSEUDO_MAP_IDX_VALUE

	PseudoCall      Register = 1 // BPF_PSEUDO_CALL: bpf-to-bpf call, imm relative
	PseudoKfuncCall Register = 2 // BPF_PSEUDO_KFUNC_CALL: kernel function by BTF id
)

// Composite opcodes used across waggle.
const (
	OpLoadImm64 Opcode = Opcode(ClassLD) | Opcode(ModeIMM) | Opcode(SizeDW) // 0x18 lddw
	OpCall      Opcode = Opcode(ClassJMP) | Opcode(Call)                    // 0x85 call
	OpCallX     Opcode = Opcode(ClassJMP) | Opcode(Call) | Opcode(SourceX)  // 0x8d callx
	OpExit      Opcode = Opcode(ClassJMP) | Opcode(Exit)                    // 0x95 exit
	OpJA        Opcode = Opcode(ClassJMP) | Opcode(JumpA)                   // 0x05 goto
	OpJA32      Opcode = Opcode(ClassJMP32) | Opcode(JumpA)                 // 0x06 gotol
	OpMayGoto   Opcode = Opcode(ClassJMP) | Opcode(JumpCond)                // 0xe5 may_goto (src 0)
)

// Class returns the instruction class.
func (op Opcode) Class() Class { return Class(op & 0x07) }

// Source returns the operand source bit of an ALU or jump opcode.
func (op Opcode) Source() Source { return Source(op & 0x08) }

// ALUOp returns the arithmetic operation of an ALU or ALU64 opcode.
func (op Opcode) ALUOp() ALUOp { return ALUOp(op & 0xf0) }

// JumpOp returns the operation of a JMP or JMP32 opcode.
func (op Opcode) JumpOp() JumpOp { return JumpOp(op & 0xf0) }

// Size returns the access size of a load or store opcode.
func (op Opcode) Size() Size { return Size(op & 0x18) }

// Mode returns the addressing mode of a load or store opcode.
func (op Opcode) Mode() Mode { return Mode(op & 0xe0) }

// IsALU reports whether the opcode is of class ALU or ALU64.
func (c Class) IsALU() bool { return c == ClassALU || c == ClassALU64 }

// IsJump reports whether the opcode is of class JMP or JMP32.
func (c Class) IsJump() bool { return c == ClassJMP || c == ClassJMP32 }

// IsLoad reports whether the class is LD or LDX.
func (c Class) IsLoad() bool { return c == ClassLD || c == ClassLDX }

// IsStore reports whether the class is ST or STX.
func (c Class) IsStore() bool { return c == ClassST || c == ClassSTX }

var classNames = [...]string{"ld", "ldx", "st", "stx", "alu", "jmp", "jmp32", "alu64"}

func (c Class) String() string { return classNames[c&7] }

var aluNames = [16]string{"add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "neg", "mod", "xor", "mov", "arsh", "end", "alu0xe0", "alu0xf0"}

func (op ALUOp) String() string { return aluNames[op>>4] }

var jumpNames = [16]string{"ja", "jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge", "call", "exit", "jlt", "jle", "jslt", "jsle", "jcond", "jmp0xf0"}

func (op JumpOp) String() string { return jumpNames[op>>4] }

var sizeNames = [4]string{"w", "h", "b", "dw"}

func (s Size) String() string { return sizeNames[(s>>3)&3] }

func (m Mode) String() string {
	switch m {
	case ModeIMM:
		return "imm"
	case ModeABS:
		return "abs"
	case ModeIND:
		return "ind"
	case ModeMEM:
		return "mem"
	case ModeMEMSX:
		return "memsx"
	case ModeATOMIC:
		return "atomic"
	}
	return fmt.Sprintf("mode%#x", uint8(m))
}

func (op AtomicOp) String() string {
	switch op {
	case AtomicXchg:
		return "xchg"
	case AtomicCmpXchg:
		return "cmpxchg"
	}
	s := ALUOp(op &^ AtomicFetch).String()
	if op.Fetches() {
		s = "fetch " + s
	}
	if !op.Valid() {
		return fmt.Sprintf("atomic%#x", int32(op))
	}
	return s
}

// String returns a short mnemonic in the conformance suite's vocabulary
// (add64, ldxw, jeq32, lock ...), for error messages.
func (op Opcode) String() string {
	c := op.Class()
	switch c {
	case ClassALU, ClassALU64:
		name := op.ALUOp().String()
		if c == ClassALU64 && op.ALUOp() != ALUEnd {
			name += "64"
		} else if c == ClassALU64 {
			name = "bswap"
		}
		if op.ALUOp() == ALUEnd || op.ALUOp() == ALUNeg {
			return name
		}
		if op.Source() == SourceX {
			return name + " reg"
		}
		return name + " imm"
	case ClassJMP, ClassJMP32:
		name := op.JumpOp().String()
		if c == ClassJMP32 {
			if op.JumpOp() == JumpA {
				return "ja32"
			}
			name += "32"
		}
		switch op.JumpOp() {
		case JumpA, Exit:
			return name
		case JumpCond:
			if op == OpMayGoto {
				return "may_goto"
			}
		case Call:
			if op.Source() == SourceX {
				return "callx"
			}
			return name
		}
		if op.Source() == SourceX {
			return name + " reg"
		}
		return name + " imm"
	case ClassLD:
		switch op.Mode() {
		case ModeIMM:
			return "lddw"
		case ModeABS:
			return "ldabs" + op.Size().String()
		case ModeIND:
			return "ldind" + op.Size().String()
		}
	case ClassLDX:
		switch op.Mode() {
		case ModeMEM:
			return "ldx" + op.Size().String()
		case ModeMEMSX:
			return "ldxs" + op.Size().String()
		}
	case ClassST:
		if op.Mode() == ModeMEM {
			return "st" + op.Size().String()
		}
	case ClassSTX:
		switch op.Mode() {
		case ModeMEM:
			return "stx" + op.Size().String()
		case ModeATOMIC:
			return "lock " + op.Size().String()
		}
	}
	return fmt.Sprintf("%s %s %s", c, op.Mode(), op.Size())
}
