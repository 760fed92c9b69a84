package isa

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Register is an eBPF register number. r0-r9 are general purpose, r10 is the
// read-only frame pointer. Values above r10 are encodable but invalid.
type Register uint8

// Registers (RFC 9669 §2.4 and the calling convention of §4.3.1).
const (
	R0  Register = iota // return value, helper and function results
	R1                  // argument 1, context pointer at entry
	R2                  // argument 2
	R3                  // argument 3
	R4                  // argument 4
	R5                  // argument 5
	R6                  // callee-saved
	R7                  // callee-saved
	R8                  // callee-saved
	R9                  // callee-saved
	R10                 // frame pointer, read-only
	RFP = R10
)

// MaxRegister is the highest valid register number.
const MaxRegister = R10

func (r Register) String() string { return fmt.Sprintf("r%d", uint8(r)) }

// Size of one instruction slot in bytes.
const InstructionSize = 8

// Instruction is one 8-byte slot of an eBPF program (RFC 9669 §3). A 64-bit
// immediate load occupies two consecutive slots: the first holds the opcode
// and the low 32 bits of the constant, the second has opcode 0 and holds the
// high 32 bits in Imm.
type Instruction struct {
	Op  Opcode
	Dst Register // 4 bits
	Src Register // 4 bits
	Off int16
	Imm int32
}

// IsLoadImm64 reports whether the slot is the first half of a lddw.
func (ins Instruction) IsLoadImm64() bool { return ins.Op == OpLoadImm64 }

// Imm64 combines the immediates of a lddw pair: lo is the first slot, hi the
// second.
func Imm64(lo, hi Instruction) uint64 {
	return uint64(uint32(lo.Imm)) | uint64(uint32(hi.Imm))<<32
}

// LoadImm64 returns the two slots of "dst = imm ll" with the given pseudo
// source (0 for a plain constant).
func LoadImm64(dst, src Register, imm uint64) [2]Instruction {
	return [2]Instruction{
		{Op: OpLoadImm64, Dst: dst, Src: src, Imm: int32(uint32(imm))},
		{Imm: int32(uint32(imm >> 32))},
	}
}

// Width returns the number of slots the instruction starting here occupies:
// 2 for lddw, 1 otherwise.
func (ins Instruction) Width() int {
	if ins.IsLoadImm64() {
		return 2
	}
	return 1
}

// JumpTarget returns the slot index a jump or local call at index pc goes to,
// and whether the instruction has a target at all. Conditional jumps and ja
// use Off; gotol (ja32) and bpf-to-bpf calls use Imm (RFC 9669 §4.3).
func (ins Instruction) JumpTarget(pc int) (int, bool) {
	c := ins.Op.Class()
	if !c.IsJump() {
		if ins.IsLoadImm64() && ins.Src == PseudoFunc {
			return pc + 1 + int(ins.Imm), true
		}
		return 0, false
	}
	switch ins.Op.JumpOp() {
	case Exit:
		return 0, false
	case Call:
		if ins.Op == OpCall && ins.Src == PseudoCall {
			return pc + 1 + int(ins.Imm), true
		}
		return 0, false
	case JumpA:
		if c == ClassJMP32 {
			return pc + 1 + int(ins.Imm), true
		}
	}
	return pc + 1 + int(ins.Off), true
}

// IsLocalCall reports whether the instruction is a bpf-to-bpf call.
func (ins Instruction) IsLocalCall() bool { return ins.Op == OpCall && ins.Src == PseudoCall }

// IsHelperCall reports whether the instruction calls a helper by id.
func (ins Instruction) IsHelperCall() bool { return ins.Op == OpCall && ins.Src == 0 }

// IsMayGoto reports whether the instruction is may_goto (BPF_JMP|BPF_JCOND,
// src BPF_MAY_GOTO): a jump taken only once the frame's loop budget is spent
// (see MaxLoops).
func (ins Instruction) IsMayGoto() bool { return ins.Op == OpMayGoto && ins.Src == 0 }

// IsExit reports whether the instruction is exit.
func (ins Instruction) IsExit() bool { return ins.Op == OpExit }

// ErrTruncated is returned (wrapped) when a byte stream does not hold a whole
// number of slots.
var ErrTruncated = errors.New("truncated instruction")

// Marshal writes the 8-byte encoding of ins into b. On a big-endian byte
// order the register nibbles swap places, as in the kernel's bpf_insn.
func (ins Instruction) Marshal(b []byte, bo binary.ByteOrder) {
	_ = b[7]
	b[0] = byte(ins.Op)
	if bo == binary.ByteOrder(binary.BigEndian) {
		b[1] = byte(ins.Dst&0xf)<<4 | byte(ins.Src&0xf)
	} else {
		b[1] = byte(ins.Src&0xf)<<4 | byte(ins.Dst&0xf)
	}
	bo.PutUint16(b[2:], uint16(ins.Off))
	bo.PutUint32(b[4:], uint32(ins.Imm))
}

// Unmarshal decodes one slot from the first 8 bytes of b.
func Unmarshal(b []byte, bo binary.ByteOrder) Instruction {
	_ = b[7]
	ins := Instruction{
		Op:  Opcode(b[0]),
		Off: int16(bo.Uint16(b[2:])),
		Imm: int32(bo.Uint32(b[4:])),
	}
	if bo == binary.ByteOrder(binary.BigEndian) {
		ins.Dst, ins.Src = Register(b[1]>>4), Register(b[1]&0xf)
	} else {
		ins.Dst, ins.Src = Register(b[1]&0xf), Register(b[1]>>4)
	}
	return ins
}

// Encode returns the little-endian bytecode of a program.
func Encode(prog []Instruction) []byte {
	b := make([]byte, len(prog)*InstructionSize)
	for i, ins := range prog {
		ins.Marshal(b[i*InstructionSize:], binary.LittleEndian)
	}
	return b
}

// Decode splits little-endian bytecode into slots. It does not validate the
// instructions (see Validate); it only fails when len(b) is not a multiple of
// eight.
func Decode(b []byte) ([]Instruction, error) {
	return DecodeOrder(b, binary.LittleEndian)
}

// DecodeOrder is Decode for an explicit byte order.
func DecodeOrder(b []byte, bo binary.ByteOrder) ([]Instruction, error) {
	if rem := len(b) % InstructionSize; rem != 0 {
		return nil, fmt.Errorf("instruction %d: %w: %d trailing bytes, a slot is 8", len(b)/InstructionSize, ErrTruncated, rem)
	}
	prog := make([]Instruction, len(b)/InstructionSize)
	for i := range prog {
		prog[i] = Unmarshal(b[i*InstructionSize:], bo)
	}
	return prog, nil
}
