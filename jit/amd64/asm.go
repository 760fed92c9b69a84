package amd64

// The x86-64 instruction encoder: Asm appends one instruction per method call.
//
// Every instruction it emits has this shape (Intel SDM vol. 2, chapter 2):
//
//	[F0] [66] [REX] opcode (1 or 2 bytes) [ModRM] [SIB] [disp8 | disp32] [imm8 | imm16 | imm32 | imm64]
//	 lock  16-bit
//
// The legacy prefixes come first: F0 (LOCK, for atomics) and 66 (operand
// size 16 bits). REX, when present, must come immediately before the opcode.
//
// REX (0x40-0x4F) extends the register numbers from 3 to 4 bits and selects
// 64-bit operands:
//
//	  7     4   3   2   1   0
//	+-------+---+---+---+---+
//	| 0100  | W | R | X | B |
//	+-------+---+---+---+---+
//	W: 64-bit operand size (without it most instructions are 32-bit)
//	R: bit 3 of ModRM.reg
//	X: bit 3 of SIB.index
//	B: bit 3 of ModRM.rm, of SIB.base, or of the register in the opcode
//	   byte (B8+r mov, 50+r push, 58+r pop, C8+r bswap)
//
// A REX with no bit set (0x40) still matters for byte registers: without
// any REX, byte registers 4-7 are ah, ch, dh, bh; with one they are spl,
// bpl, sil, dil (the low bytes of rsp, rbp, rsi, rdi), which is what the
// code generator always means. See prefixes.
//
// ModRM names the operands:
//
//	  7   6   5     3   2     0
//	+-------+---------+---------+
//	|  mod  |   reg   |   rm    |
//	+-------+---------+---------+
//	mod 11: rm is a register
//	mod 00: [rm]    mod 01: [rm + disp8]    mod 10: [rm + disp32]
//	reg: a register, or for group opcodes an opcode extension, written
//	     /digit: 81 /5 is sub r/m, imm32; F7 /3 is neg r/m
//
// Two rm values are special when mod is not 11 (see modrmMem):
//
//	rm 100: a SIB byte follows. So rsp and r12 (low bits 100) cannot be a
//	        base on their own; they need a SIB with "no index".
//	rm 101 with mod 00: [rip + disp32] (no base register). So rbp and r13
//	        (low bits 101) with no displacement are encoded as mod 01 with
//	        disp8 0.
//
// SIB (scale, index, base) follows ModRM when rm is 100:
//
//	  7   6   5     3   2     0
//	+-------+---------+---------+
//	| scale |  index  |  base   |     address = base + index<<scale + disp
//	+-------+---------+---------+
//	index 100 (without REX.X): no index. So rsp cannot be an index
//	        (r12, 100 with REX.X, can).
//	base 101 with mod 00: no base, disp32 only. So rbp and r13 as a
//	        SIB base also need mod 01 and a disp8 of 0.
//
// Immediates and displacements are little-endian, and sign-extended to the
// operand size unless an instruction says otherwise (mov r32, imm32 and
// movabs are not).

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Reg is an x86-64 general-purpose register, numbered as in the encoding:
// the low three bits go into ModRM, SIB or the opcode byte, bit 3 into REX.
type Reg uint8

// The general-purpose registers.
const (
	RAX Reg = iota
	RCX
	RDX
	RBX
	RSP
	RBP
	RSI
	RDI
	R8
	R9
	R10
	R11
	R12
	R13
	R14
	R15
)

var regNames = [...]string{
	"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
}

// String returns the register's 64-bit name: "rax", ..., "r15".
func (r Reg) String() string {
	if int(r) < len(regNames) {
		return regNames[r]
	}
	return fmt.Sprintf("Reg(%d)", uint8(r))
}

// Width is the operand width of register operations: W32 operations zero
// the upper 32 bits of their destination register (the hardware does), W64
// use REX.W.
type Width uint8

// The operand widths.
const (
	W32 Width = 4
	W64 Width = 8
)

// String returns "W32" or "W64".
func (w Width) String() string {
	if w == W32 || w == W64 {
		return fmt.Sprintf("W%d", 8*w)
	}
	return fmt.Sprintf("Width(%d)", uint8(w))
}

// ALUOp is an arithmetic or logic operation: the /digit of the 0x81 group,
// and bits 5-3 of its register forms (op<<3 | 1 is "op r/m, r", op<<3 | 3
// is "op r, r/m").
type ALUOp uint8

// The ALU operations.
const (
	ADD ALUOp = 0
	OR  ALUOp = 1
	ADC ALUOp = 2
	SBB ALUOp = 3
	AND ALUOp = 4
	SUB ALUOp = 5
	XOR ALUOp = 6
	CMP ALUOp = 7
)

// String returns the instruction's mnemonic: "add", "or", ..., "cmp".
func (op ALUOp) String() string {
	if op <= CMP {
		return [...]string{"add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"}[op]
	}
	return fmt.Sprintf("ALUOp(%d)", uint8(op))
}

// ShiftOp is a shift or rotation: the /digit of the 0xC1/0xD3 group.
type ShiftOp uint8

// The shift operations.
const (
	ROL ShiftOp = 0
	ROR ShiftOp = 1
	SHL ShiftOp = 4
	SHR ShiftOp = 5
	SAR ShiftOp = 7
)

// String returns the instruction's mnemonic: "rol", "ror", "shl", "shr"
// or "sar".
func (op ShiftOp) String() string {
	switch op {
	case ROL:
		return "rol"
	case ROR:
		return "ror"
	case SHL:
		return "shl"
	case SHR:
		return "shr"
	case SAR:
		return "sar"
	}
	return fmt.Sprintf("ShiftOp(%d)", uint8(op))
}

// Cond is a condition code, the low nibble of Jcc (0F 80+cc), SETcc
// (0F 90+cc) and CMOVcc (0F 40+cc). B, AE, BE, A are the unsigned
// comparisons; L, GE, LE, G the signed ones.
type Cond uint8

// The condition codes.
const (
	CondO  Cond = 0  // overflow
	CondNO Cond = 1  // no overflow
	CondB  Cond = 2  // below (unsigned <), carry
	CondAE Cond = 3  // above or equal (unsigned >=), no carry
	CondE  Cond = 4  // equal, zero
	CondNE Cond = 5  // not equal, not zero
	CondBE Cond = 6  // below or equal (unsigned <=)
	CondA  Cond = 7  // above (unsigned >)
	CondS  Cond = 8  // sign
	CondNS Cond = 9  // no sign
	CondP  Cond = 10 // parity even
	CondNP Cond = 11 // parity odd
	CondL  Cond = 12 // less (signed <)
	CondGE Cond = 13 // greater or equal (signed >=)
	CondLE Cond = 14 // less or equal (signed <=)
	CondG  Cond = 15 // greater (signed >)
)

// String returns the condition's mnemonic suffix: "o", "no", "b", ...,
// "g", as in "jb", "setb", "cmovb".
func (cc Cond) String() string {
	if cc <= CondG {
		return [...]string{"o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"}[cc]
	}
	return fmt.Sprintf("Cond(%d)", uint8(cc))
}

// Not returns the opposite condition: the encoding pairs them, differing in
// bit 0 (E and NE, L and GE, ...).
func (cc Cond) Not() Cond { return cc ^ 1 }

// Label is a position in the code, bound once, referenced any number of
// times before or after. Labels come from Asm.NewLabel; the zero Label is
// none and panics when used.
type Label int32

// String returns "L1", "L2", ...
func (l Label) String() string { return fmt.Sprintf("L%d", int32(l)) }

// Asm accumulates machine code. The zero value is ready to use.
//
// Each method appends one instruction (Nop and Raw may append several).
// Arguments the encoder cannot encode (a width other than W32 or W64, a
// memory size other than those listed, rsp as an index, a register above
// R15) are bugs in the code generator and panic with a message saying
// which; Finish returns an error for labels referenced but never bound.
//
// Jumps take the short form (rel8) where it reaches, as Linux's JIT
// emits them: a jump backward, to a bound label, whenever the distance
// fits; a jump forward when SetShortJumps said so. Forward jumps are
// numbered in the order they are emitted; after Finish, ShortJumps says
// which of them a short form would have reached, so that a code
// generator emitting the same code again (the same jumps, in the same
// order) can ask for those (SetShortJumps). The shorter code only brings
// labels closer, but for alignment padding: a short jump that ends up
// out of reach fails Finish with a *FarJumpsError naming it.
type Asm struct {
	buf    []byte
	labels []int      // labels[l-1] is the position of Label l, -1 while unbound
	refs   []labelRef // rel32 and rel8 fields Finish patches
	jumps  int        // forward jumps emitted so far
	short  []bool     // short[j]: emit forward jump j short (SetShortJumps)
	reach  []bool     // reach[j]: a short form of forward jump j reaches (Finish)
}

// labelRef is a rel32 (or, if short, rel8) field at buf[at:] holding l's
// position relative to the end of the field. Every label reference this
// encoder emits ends its instruction, so the end of the field is the end
// of the instruction, which is what the CPU adds a rel32 to. jump is the
// number of a forward jump, -1 for other references.
type labelRef struct {
	at    int
	l     Label
	short bool
	jump  int
}

// FarJumpsError is Finish's error when forward jumps that SetShortJumps
// made short do not reach their labels: emit the code again with those
// long.
type FarJumpsError struct {
	Jumps []int // their numbers
}

func (e *FarJumpsError) Error() string {
	return fmt.Sprintf("amd64: finish: short forward jumps %v do not reach their labels", e.Jumps)
}

// SetShortJumps makes forward jump j short where short[j] (ShortJumps).
// Call it before emitting.
func (a *Asm) SetShortJumps(short []bool) { a.short = short }

// ShortJumps returns, after Finish, which forward jumps a short form
// would have reached, assuming the code between them stays as it is.
func (a *Asm) ShortJumps() []bool { return a.reach }

// Len returns the number of bytes emitted so far.
func (a *Asm) Len() int { return len(a.buf) }

// Grow makes room for n more bytes, so that emitting them allocates
// nothing; for a caller that can estimate the size of its code.
func (a *Asm) Grow(n int) { a.buf = slices.Grow(a.buf, n) }

// NewLabel returns a new, unbound label.
func (a *Asm) NewLabel() Label {
	a.labels = append(a.labels, -1)
	return Label(len(a.labels))
}

// Bind places l at the current position, Len(). It panics if l is already
// bound.
func (a *Asm) Bind(l Label) {
	a.checkLabel(l, "Bind")
	if a.labels[l-1] >= 0 {
		panic(fmt.Sprintf("BUG: amd64: Bind(%v): bound twice, at %d and %d", l, a.labels[l-1], len(a.buf)))
	}
	a.labels[l-1] = len(a.buf)
}

// Offset returns the position l is bound to, and false if it is not bound
// yet.
func (a *Asm) Offset(l Label) (int, bool) {
	a.checkLabel(l, "Offset")
	pos := a.labels[l-1]
	return pos, pos >= 0
}

func (a *Asm) checkLabel(l Label, method string) {
	if l <= 0 || int(l) > len(a.labels) {
		panic(fmt.Sprintf("BUG: amd64: %s(%v): not a label of this Asm (it has %d)", method, l, len(a.labels)))
	}
}

// Finish patches every label reference and returns the code. It returns an
// error naming the labels that are referenced but not bound (a label never
// referenced may stay unbound).
//
// The returned slice is the Asm's own buffer, not a copy: emitting more
// afterwards may change it. Finish may be called again, for instance after
// binding the labels it named.
func (a *Asm) Finish() ([]byte, error) {
	var unbound []Label
	var far []int
	a.reach = slices.Grow(a.reach[:0], a.jumps)[:a.jumps]
	clear(a.reach)
	for _, r := range a.refs {
		target := a.labels[r.l-1]
		if target < 0 {
			if !slices.Contains(unbound, r.l) {
				unbound = append(unbound, r.l)
			}
			continue
		}
		if r.short {
			rel := target - (r.at + 1)
			if rel < math.MinInt8 || rel > math.MaxInt8 {
				far = append(far, r.jump)
				continue
			}
			a.buf[r.at] = byte(int8(rel))
			if r.jump >= 0 {
				a.reach[r.jump] = true
			}
			continue
		}
		rel := int64(target) - int64(r.at+4)
		if rel < math.MinInt32 || rel > math.MaxInt32 {
			return nil, fmt.Errorf("amd64: finish: %v at %d is out of rel32 range from %d", r.l, target, r.at)
		}
		binary.LittleEndian.PutUint32(a.buf[r.at:], uint32(int32(rel)))
		// The short form brings the label as much closer as it is
		// shorter: its rel8 would be this rel32.
		if r.jump >= 0 && rel <= math.MaxInt8 {
			a.reach[r.jump] = true
		}
	}
	if len(unbound) > 0 {
		return nil, fmt.Errorf("amd64: finish: labels referenced but never bound: %v", unbound)
	}
	if len(far) > 0 {
		return nil, &FarJumpsError{Jumps: far}
	}
	return a.buf, nil
}

// Raw emits b as it is.
func (a *Asm) Raw(b ...byte) { a.buf = append(a.buf, b...) }

// ---- encoding helpers ----

// enc says which prefixes an instruction needs beyond its operands'.
type enc uint8

const (
	encW       enc = 1 << iota // REX.W: 64-bit operand size
	enc16                      // 66: 16-bit operand size
	encLock                    // F0: LOCK
	encByteReg                 // ModRM.reg is a byte register (spl..dil need a REX)
	encByteRM                  // ModRM.rm is a byte register (spl..dil need a REX)
)

// noIndex is the index of a memory operand without one.
const noIndex Reg = 0xff

// enc returns the encoding flag of a register operation's width.
func (w Width) enc(method string) enc {
	switch w {
	case W32:
		return 0
	case W64:
		return encW
	}
	panic(fmt.Sprintf("BUG: amd64: %s: width %d, want W32 (4) or W64 (8)", method, uint8(w)))
}

// sized returns the prefixes and opcode of an operation on a size-byte
// memory operand, for the many opcodes whose 8-bit form is the 16/32/64-bit
// opcode minus one (the "w" bit of the original 8086 encoding: 88/89 mov,
// 86/87 xchg, 0F C0/C1 xadd, 0F B0/B1 cmpxchg, C6/C7 mov imm).
func sized(size int, op uint16, method string) (enc, uint16) {
	switch size {
	case 1:
		return encByteReg, op - 1
	case 2:
		return enc16, op
	case 4:
		return 0, op
	case 8:
		return encW, op
	}
	panic(fmt.Sprintf("BUG: amd64: %s: size %d, want 1, 2, 4 or 8", method, size))
}

// highByte reports whether r, as a byte register, is spl, bpl, sil or dil,
// which need a REX prefix (without one the same numbers mean ah, ch, dh, bh).
func highByte(r Reg) bool { return r >= RSP && r <= RDI }

// prefixes emits the legacy prefixes and, when needed, the REX prefix of an
// instruction whose ModRM.reg field is reg (a register or a /digit), whose
// SIB.index is x and whose ModRM.rm, SIB.base or opcode register is b.
// Registers 8-15 set their REX bit; the low three bits go into the fields,
// written by the caller.
func (a *Asm) prefixes(e enc, reg, x, b Reg) {
	if reg > R15 || x > R15 || b > R15 {
		panic(fmt.Sprintf("BUG: amd64: register out of range (reg %v, index %v, base %v)", reg, x, b))
	}
	if e&encLock != 0 {
		a.buf = append(a.buf, 0xF0)
	}
	if e&enc16 != 0 {
		a.buf = append(a.buf, 0x66)
	}
	rex := byte(0x40)
	if e&encW != 0 {
		rex |= 0x08
	}
	rex |= byte(reg>>3) << 2 // R
	rex |= byte(x>>3) << 1   // X
	rex |= byte(b >> 3)      // B
	if rex != 0x40 || e&encByteReg != 0 && highByte(reg) || e&encByteRM != 0 && highByte(b) {
		a.buf = append(a.buf, rex)
	}
}

// opcode emits a one-byte opcode, or a two-byte one (0F xx) given as 0x0Fxx.
func (a *Asm) opcode(op uint16) {
	if op > 0xff {
		a.buf = append(a.buf, byte(op>>8))
	}
	a.buf = append(a.buf, byte(op))
}

// rr emits an instruction with register operands: ModRM mod 11, reg and rm
// both registers (or reg a /digit).
func (a *Asm) rr(e enc, op uint16, reg, rm Reg) {
	a.prefixes(e, reg, 0, rm)
	a.opcode(op)
	a.buf = append(a.buf, 0xC0|byte(reg&7)<<3|byte(rm&7))
}

// rm emits an instruction with a memory operand [base+disp] and reg (a
// register or a /digit) in ModRM.reg.
func (a *Asm) rm(e enc, op uint16, reg, base Reg, disp int32) {
	a.rmIndex(e, op, reg, base, noIndex, 1, disp)
}

// rmIndex emits an instruction with a memory operand
// [base+index*scale+disp] and reg in ModRM.reg; index may be noIndex.
func (a *Asm) rmIndex(e enc, op uint16, reg, base, index Reg, scale uint8, disp int32) {
	x := RAX // no index: REX.X stays clear
	if index != noIndex {
		x = index
	}
	a.prefixes(e, reg, x, base)
	a.opcode(op)
	a.modrmMem(reg, base, index, scale, disp)
}

// modrmMem emits the ModRM byte, the SIB byte if one is needed, and the
// displacement of the memory operand [base+index*scale+disp], with reg in
// ModRM.reg. The REX bits of reg, index and base are the caller's.
func (a *Asm) modrmMem(reg, base, index Reg, scale uint8, disp int32) {
	var mod byte
	switch {
	case disp == 0 && base&7 != 5:
		// mod 00, [base]. Not for rbp and r13: mod 00 with rm (or SIB
		// base) 101 means rip-relative (or no base), so they take the
		// disp8 form below with a displacement of 0.
		mod = 0
	case disp >= math.MinInt8 && disp <= math.MaxInt8:
		mod = 1 // disp8, sign-extended
	default:
		mod = 2 // disp32
	}
	if index == noIndex && base&7 != 4 {
		a.buf = append(a.buf, mod<<6|byte(reg&7)<<3|byte(base&7))
	} else {
		// A SIB byte: for an index, and for rsp and r12 as a base, whose
		// low bits 100 in ModRM.rm mean "SIB follows". Without an index,
		// SIB.index is 100, "none" (rsp cannot be an index for this reason).
		idx, ss := byte(4), byte(0)
		if index != noIndex {
			if index == RSP {
				panic("BUG: amd64: rsp cannot be an index register")
			}
			idx = byte(index & 7)
			switch scale {
			case 1:
				ss = 0
			case 2:
				ss = 1
			case 4:
				ss = 2
			case 8:
				ss = 3
			default:
				panic(fmt.Sprintf("BUG: amd64: scale %d, want 1, 2, 4 or 8", scale))
			}
		}
		a.buf = append(a.buf, mod<<6|byte(reg&7)<<3|4, ss<<6|idx<<3|byte(base&7))
	}
	switch mod {
	case 1:
		a.buf = append(a.buf, byte(int8(disp)))
	case 2:
		a.imm32(uint32(disp))
	}
}

func (a *Asm) imm8(v int8)    { a.buf = append(a.buf, byte(v)) }
func (a *Asm) imm16(v uint16) { a.buf = binary.LittleEndian.AppendUint16(a.buf, v) }
func (a *Asm) imm32(v uint32) { a.buf = binary.LittleEndian.AppendUint32(a.buf, v) }
func (a *Asm) imm64(v uint64) { a.buf = binary.LittleEndian.AppendUint64(a.buf, v) }

// fitsInt8 reports whether v survives sign extension from 8 bits, so the
// short imm8 or disp8 form can carry it.
func fitsInt8(v int32) bool { return v >= math.MinInt8 && v <= math.MaxInt8 }

// rel32 emits a rel32 field referring to l, patched by Finish.
func (a *Asm) rel32(l Label, method string) {
	a.checkLabel(l, method)
	a.refs = append(a.refs, labelRef{at: len(a.buf), l: l, jump: -1})
	a.imm32(0)
}

// jump emits a jump to l: short (op8 rel8) where it reaches (see Asm),
// else long (op32 rel32).
func (a *Asm) jump(l Label, op8 []byte, op32 []byte, method string) {
	a.checkLabel(l, method)
	if target := a.labels[l-1]; target >= 0 {
		if rel := target - (len(a.buf) + len(op8) + 1); rel >= math.MinInt8 {
			a.buf = append(a.buf, op8...)
			a.buf = append(a.buf, byte(int8(rel)))
			return
		}
		a.buf = append(a.buf, op32...)
		a.rel32(l, method)
		return
	}
	j := a.jumps
	a.jumps++
	if j < len(a.short) && a.short[j] {
		a.buf = append(a.buf, op8...)
		a.refs = append(a.refs, labelRef{at: len(a.buf), l: l, short: true, jump: j})
		a.buf = append(a.buf, 0)
		return
	}
	a.buf = append(a.buf, op32...)
	a.refs = append(a.refs, labelRef{at: len(a.buf), l: l, jump: j})
	a.imm32(0)
}

func checkALU(op ALUOp, method string) {
	if op > CMP {
		panic(fmt.Sprintf("BUG: amd64: %s: ALU op %d, want 0-7", method, uint8(op)))
	}
}

func checkShift(op ShiftOp, method string) {
	if op > SAR || op == 6 {
		panic(fmt.Sprintf("BUG: amd64: %s: shift op %d, want 0-5 or 7", method, uint8(op)))
	}
}

func checkCond(cc Cond, method string) {
	if cc > CondG {
		panic(fmt.Sprintf("BUG: amd64: %s: condition %d, want 0-15", method, uint8(cc)))
	}
}

// ---- register and immediate operations ----

// ALU emits "op dst, src" (AT&T: op src, dst) in the r/m, r form: opcode
// op<<3|1 (01 add, 09 or, 11 adc, 19 sbb, 21 and, 29 sub, 31 xor, 39 cmp),
// dst in ModRM.rm.
func (a *Asm) ALU(op ALUOp, w Width, dst, src Reg) {
	checkALU(op, "ALU")
	a.rr(w.enc("ALU"), uint16(op)<<3|1, src, dst)
}

// ALUImm emits "op dst, imm": 83 /op ib when imm fits in int8, else
// 81 /op id. The immediate is sign-extended to the operand width.
func (a *Asm) ALUImm(op ALUOp, w Width, dst Reg, imm int32) {
	checkALU(op, "ALUImm")
	e := w.enc("ALUImm")
	if fitsInt8(imm) {
		a.rr(e, 0x83, Reg(op), dst)
		a.imm8(int8(imm))
		return
	}
	a.rr(e, 0x81, Reg(op), dst)
	a.imm32(uint32(imm))
}

// Test emits "test x, y" (85 /r): the flags of x AND y.
func (a *Asm) Test(w Width, x, y Reg) {
	a.rr(w.enc("Test"), 0x85, y, x)
}

// TestImm emits "test r, imm32" (F7 /0 id); for W64 the immediate is
// sign-extended.
func (a *Asm) TestImm(w Width, r Reg, imm int32) {
	a.rr(w.enc("TestImm"), 0xF7, 0, r)
	a.imm32(uint32(imm))
}

// Mov emits "mov dst, src" (89 /r). W32 zeroes the upper half of dst, even
// when dst == src: "mov eax, eax" is how to zero-extend a register.
func (a *Asm) Mov(w Width, dst, src Reg) {
	a.rr(w.enc("Mov"), 0x89, src, dst)
}

// MovImm32 emits "mov r32, imm32" (B8+r id): dst becomes imm zero-extended.
func (a *Asm) MovImm32(dst Reg, imm uint32) {
	a.prefixes(0, 0, 0, dst)
	a.buf = append(a.buf, 0xB8+byte(dst&7))
	a.imm32(imm)
}

// MovImm64 sets dst to imm with the shortest form that does not change the
// flags (so not "xor r32, r32" for 0):
//
//	imm <= 0xffffffff                mov r32, imm32          (B8+r id, 5-6 bytes, zero-extends)
//	int64(imm) fits int32            mov r64, simm32         (REX.W C7 /0 id, 7 bytes, sign-extends)
//	otherwise                        movabs r64, imm64       (REX.W B8+r io, 10 bytes)
func (a *Asm) MovImm64(dst Reg, imm uint64) {
	switch s := int64(imm); {
	case imm <= math.MaxUint32:
		a.MovImm32(dst, uint32(imm))
	case s >= math.MinInt32 && s <= math.MaxInt32:
		a.rr(encW, 0xC7, 0, dst)
		a.imm32(uint32(int32(s)))
	default:
		a.prefixes(encW, 0, 0, dst)
		a.buf = append(a.buf, 0xB8+byte(dst&7))
		a.imm64(imm)
	}
}

// Lea emits "lea dst, [base+disp]" (REX.W 8D /r).
func (a *Asm) Lea(dst, base Reg, disp int32) {
	a.rm(encW, 0x8D, dst, base, disp)
}

// LeaIndex emits "lea dst, [base+index*scale+disp]" (REX.W 8D /r with a
// SIB byte). scale is 1, 2, 4 or 8; index cannot be RSP.
func (a *Asm) LeaIndex(dst, base, index Reg, scale uint8, disp int32) {
	if index > R15 {
		panic(fmt.Sprintf("BUG: amd64: LeaIndex: index %v out of range", index))
	}
	a.rmIndex(encW, 0x8D, dst, base, index, scale, disp)
}

// LeaLabel emits "lea dst, [rip+l]" (REX.W 8D /r, ModRM mod 00 rm 101,
// rel32): dst becomes the address of l.
func (a *Asm) LeaLabel(dst Reg, l Label) {
	a.prefixes(encW, dst, 0, 0)
	a.buf = append(a.buf, 0x8D, byte(dst&7)<<3|5)
	a.rel32(l, "LeaLabel")
}

// Neg emits "neg r" (F7 /3).
func (a *Asm) Neg(w Width, r Reg) { a.rr(w.enc("Neg"), 0xF7, 3, r) }

// Not emits "not r" (F7 /2).
func (a *Asm) Not(w Width, r Reg) { a.rr(w.enc("Not"), 0xF7, 2, r) }

// Shift emits "op r, cl" (D3 /op). The CPU masks the count in cl to 5 bits
// (W32) or 6 bits (W64).
func (a *Asm) Shift(op ShiftOp, w Width, r Reg) {
	checkShift(op, "Shift")
	a.rr(w.enc("Shift"), 0xD3, Reg(op), r)
}

// ShiftImm emits "op r, n" (C1 /op ib). The CPU masks n as it masks cl.
func (a *Asm) ShiftImm(op ShiftOp, w Width, r Reg, n uint8) {
	checkShift(op, "ShiftImm")
	a.rr(w.enc("ShiftImm"), 0xC1, Reg(op), r)
	a.imm8(int8(n))
}

// Ror16 emits "ror r16, n" (66 C1 /1 ib), which swaps the two low bytes of
// r for n = 8 and leaves bits 16-63 alone (a 16-bit operation does not
// zero-extend).
func (a *Asm) Ror16(r Reg, n uint8) {
	a.rr(enc16, 0xC1, Reg(ROR), r)
	a.imm8(int8(n))
}

// Imul emits "imul dst, src" (0F AF /r): dst *= src, truncated to the width.
func (a *Asm) Imul(w Width, dst, src Reg) {
	a.rr(w.enc("Imul"), 0x0FAF, dst, src)
}

// Bsr emits "bsr dst, src" (0F BD /r): dst = the index of src's highest
// set bit; src must not be zero (dst is then undefined).
func (a *Asm) Bsr(w Width, dst, src Reg) {
	a.rr(w.enc("Bsr"), 0x0FBD, dst, src)
}

// ImulImm emits "imul dst, src, imm": dst = src * imm, with 6B /r ib when
// imm fits in int8, else 69 /r id.
func (a *Asm) ImulImm(w Width, dst, src Reg, imm int32) {
	e := w.enc("ImulImm")
	if fitsInt8(imm) {
		a.rr(e, 0x6B, dst, src)
		a.imm8(int8(imm))
		return
	}
	a.rr(e, 0x69, dst, src)
	a.imm32(uint32(imm))
}

// Div emits "div src" (F7 /6): the unsigned division of rdx:rax (edx:eax)
// by src, quotient in rax, remainder in rdx. It traps on a zero divisor.
func (a *Asm) Div(w Width, src Reg) { a.rr(w.enc("Div"), 0xF7, 6, src) }

// Idiv emits "idiv src" (F7 /7), the signed Div. It also traps on the
// quotient overflow of MinInt / -1.
func (a *Asm) Idiv(w Width, src Reg) { a.rr(w.enc("Idiv"), 0xF7, 7, src) }

// Cqo emits "cqo" (REX.W 99): rdx = the sign of rax, before a 64-bit Idiv.
func (a *Asm) Cqo() { a.buf = append(a.buf, 0x48, 0x99) }

// Cdq emits "cdq" (99): edx = the sign of eax, before a 32-bit Idiv.
func (a *Asm) Cdq() { a.buf = append(a.buf, 0x99) }

// Bswap emits "bswap r" (0F C8+r), reversing the bytes of r32 or r64. (The
// 16-bit form is undefined; use Ror16.)
func (a *Asm) Bswap(w Width, r Reg) {
	a.prefixes(w.enc("Bswap"), 0, 0, r)
	a.buf = append(a.buf, 0x0F, 0xC8+byte(r&7))
}

// Movzx zero-extends the low from bytes of src into dst (all 64 bits): from
// 1 is "movzx r32, r8" (0F B6 /r, with a REX for spl, bpl, sil, dil), from
// 2 is "movzx r32, r16" (0F B7 /r). For 4 use Mov(W32, ...).
func (a *Asm) Movzx(dst, src Reg, from int) {
	switch from {
	case 1:
		a.rr(encByteRM, 0x0FB6, dst, src)
	case 2:
		a.rr(0, 0x0FB7, dst, src)
	default:
		panic(fmt.Sprintf("BUG: amd64: Movzx: from %d, want 1 or 2", from))
	}
}

// Movsx sign-extends the low from bytes of src into dst at width w: from 1
// is movsx (0F BE /r), from 2 movsx (0F BF /r), from 4 movsxd (REX.W 63 /r,
// W64 only). W32 zeroes the upper half of dst, as always.
func (a *Asm) Movsx(w Width, dst, src Reg, from int) {
	e := w.enc("Movsx")
	switch from {
	case 1:
		a.rr(e|encByteRM, 0x0FBE, dst, src)
	case 2:
		a.rr(e, 0x0FBF, dst, src)
	case 4:
		if w != W64 {
			panic("BUG: amd64: Movsx: from 4 needs W64 (movsxd r64, r32)")
		}
		a.rr(e, 0x63, dst, src)
	default:
		panic(fmt.Sprintf("BUG: amd64: Movsx: from %d, want 1, 2 or 4", from))
	}
}

// Cmov emits "cmovcc dst, src" (0F 40+cc /r). W32 zeroes the upper half of
// dst even when the condition is false.
func (a *Asm) Cmov(cc Cond, w Width, dst, src Reg) {
	checkCond(cc, "Cmov")
	a.rr(w.enc("Cmov"), 0x0F40|uint16(cc), dst, src)
}

// Setcc emits "setcc r8" (0F 90+cc /0): the low byte of r becomes 1 if cc
// holds, else 0; the other bytes are unchanged. spl, bpl, sil and dil get a
// REX so that they are not read as ah, ch, dh, bh.
func (a *Asm) Setcc(cc Cond, r Reg) {
	checkCond(cc, "Setcc")
	a.rr(encByteRM, 0x0F90|uint16(cc), 0, r)
}

// Xchg emits "xchg x, y" (87 /r). It never uses the one-byte 90+r form:
// 90 is nop, so "xchg eax, eax" would not zero-extend rax.
func (a *Asm) Xchg(w Width, x, y Reg) {
	a.rr(w.enc("Xchg"), 0x87, y, x)
}

// ---- memory operations ----
//
// Memory operands are [base+disp]. modrmMem picks disp8 when disp fits in
// int8, disp32 otherwise, and no displacement when it is 0; it adds the
// SIB byte rsp and r12 need as a base and the zero disp8 rbp and r13 need.

// Load loads size bytes from [base+disp] into dst, zero-extended to 64
// bits: size 1 and 2 are movzx r32 (0F B6, 0F B7), 4 is mov r32 (8B), 8 is
// mov r64 (REX.W 8B).
func (a *Asm) Load(size int, dst, base Reg, disp int32) {
	switch size {
	case 1:
		a.rm(0, 0x0FB6, dst, base, disp)
	case 2:
		a.rm(0, 0x0FB7, dst, base, disp)
	case 4:
		a.rm(0, 0x8B, dst, base, disp)
	case 8:
		a.rm(encW, 0x8B, dst, base, disp)
	default:
		panic(fmt.Sprintf("BUG: amd64: Load: size %d, want 1, 2, 4 or 8", size))
	}
}

// LoadSX loads size bytes from [base+disp] into dst, sign-extended to 64
// bits: size 1 and 2 are movsx r64 (REX.W 0F BE, 0F BF), 4 is movsxd r64
// (REX.W 63).
func (a *Asm) LoadSX(size int, dst, base Reg, disp int32) {
	switch size {
	case 1:
		a.rm(encW, 0x0FBE, dst, base, disp)
	case 2:
		a.rm(encW, 0x0FBF, dst, base, disp)
	case 4:
		a.rm(encW, 0x63, dst, base, disp)
	default:
		panic(fmt.Sprintf("BUG: amd64: LoadSX: size %d, want 1, 2 or 4", size))
	}
}

// Store stores the low size bytes of src to [base+disp]: mov m8, r8 (88,
// with a REX for spl, bpl, sil, dil), m16 (66 89), m32 (89), m64 (REX.W 89).
func (a *Asm) Store(size int, base Reg, disp int32, src Reg) {
	e, op := sized(size, 0x89, "Store")
	a.rm(e, op, src, base, disp)
}

// StoreImm stores the low size bytes of imm to [base+disp]: mov m8, imm8
// (C6 /0 ib), m16, imm16 (66 C7 /0 iw), m32, imm32 (C7 /0 id), and for size
// 8 mov m64, simm32 (REX.W C7 /0 id), imm sign-extended to 64 bits.
func (a *Asm) StoreImm(size int, base Reg, disp int32, imm int32) {
	e, op := sized(size, 0xC7, "StoreImm")
	a.rm(e, op, 0, base, disp) // ModRM.reg is /0, no byte register
	switch size {
	case 1:
		a.imm8(int8(imm))
	case 2:
		a.imm16(uint16(imm))
	default:
		a.imm32(uint32(imm))
	}
}

// ALULoad emits "op dst, [base+disp]" (opcode op<<3|3: 03 add, 0B or, ...,
// 3B cmp).
func (a *Asm) ALULoad(op ALUOp, w Width, dst, base Reg, disp int32) {
	checkALU(op, "ALULoad")
	a.rm(w.enc("ALULoad"), uint16(op)<<3|3, dst, base, disp)
}

// Load64Index emits "mov dst, qword [base+index]" (REX.W 8B /r with a
// SIB byte, scale 1).
func (a *Asm) Load64Index(dst, base, index Reg) {
	a.rmIndex(encW, 0x8B, dst, base, index, 1, 0)
}

// ALULoad64Index emits "op dst, qword [base+index]" (opcode op<<3|3 with
// a SIB byte, scale 1).
func (a *Asm) ALULoad64Index(op ALUOp, dst, base, index Reg) {
	checkALU(op, "ALULoad64Index")
	a.rmIndex(encW, uint16(op)<<3|3, dst, base, index, 1, 0)
}

// ALUStore emits "op [base+disp], src" (opcode op<<3|1: 01 add, 09 or, ...,
// 39 cmp).
func (a *Asm) ALUStore(op ALUOp, w Width, base Reg, disp int32, src Reg) {
	checkALU(op, "ALUStore")
	a.rm(w.enc("ALUStore"), uint16(op)<<3|1, src, base, disp)
}

// ALUMemImm emits "op dword/qword [base+disp], imm": 83 /op ib when imm
// fits in int8, else 81 /op id; imm is sign-extended to the width.
func (a *Asm) ALUMemImm(op ALUOp, w Width, base Reg, disp int32, imm int32) {
	checkALU(op, "ALUMemImm")
	e := w.enc("ALUMemImm")
	if fitsInt8(imm) {
		a.rm(e, 0x83, Reg(op), base, disp)
		a.imm8(int8(imm))
		return
	}
	a.rm(e, 0x81, Reg(op), base, disp)
	a.imm32(uint32(imm))
}

// CmpMem8Imm emits "cmp byte [base+disp], imm" (80 /7 ib).
func (a *Asm) CmpMem8Imm(base Reg, disp int32, imm int8) {
	a.rm(0, 0x80, Reg(CMP), base, disp)
	a.imm8(imm)
}

// ---- atomics ----
//
// The LOCK prefix (F0) makes a read-modify-write of memory atomic; xchg
// with memory is atomic without it.

// LockALU emits "lock op [base+disp], src" for size 4 or 8 (F0 [REX.W]
// op<<3|1 /r). op is ADD, OR, AND, XOR (or ADC, SBB, SUB); CMP writes
// nothing and cannot be locked.
func (a *Asm) LockALU(op ALUOp, size int, base Reg, disp int32, src Reg) {
	checkALU(op, "LockALU")
	if op == CMP {
		panic("BUG: amd64: LockALU: lock cmp is not an instruction")
	}
	if size != 4 && size != 8 {
		panic(fmt.Sprintf("BUG: amd64: LockALU: size %d, want 4 or 8", size))
	}
	e := encLock
	if size == 8 {
		e |= encW
	}
	a.rm(e, uint16(op)<<3|1, src, base, disp)
}

// LockXadd emits "lock xadd [base+disp], src" (F0 0F C0/C1 /r): src gets
// the old value, memory the sum. size is 1, 2, 4 or 8.
func (a *Asm) LockXadd(size int, base Reg, disp int32, src Reg) {
	e, op := sized(size, 0x0FC1, "LockXadd")
	a.rm(e|encLock, op, src, base, disp)
}

// XchgMem emits "xchg [base+disp], src" (86/87 /r), atomic without a LOCK
// prefix. size is 1, 2, 4 or 8.
func (a *Asm) XchgMem(size int, base Reg, disp int32, src Reg) {
	e, op := sized(size, 0x87, "XchgMem")
	a.rm(e, op, src, base, disp)
}

// LockCmpxchg emits "lock cmpxchg [base+disp], src" (F0 0F B0/B1 /r): if
// memory equals rax (eax, ax, al), it becomes src, else rax gets it; ZF
// says which. size is 1, 2, 4 or 8.
func (a *Asm) LockCmpxchg(size int, base Reg, disp int32, src Reg) {
	e, op := sized(size, 0x0FB1, "LockCmpxchg")
	a.rm(e|encLock, op, src, base, disp)
}

// ---- control flow ----
//
// Label references are rel32, relative to the end of the instruction, and
// patched by Finish. Code is small enough that no short (rel8) forms are
// needed, so nothing moves once emitted.

// Jmp emits "jmp l": EB rel8 where it reaches (see Asm), else E9 rel32.
func (a *Asm) Jmp(l Label) {
	a.jump(l, []byte{0xEB}, []byte{0xE9}, "Jmp")
}

// Jcc emits "jcc l": 70+cc rel8 where it reaches (see Asm), else 0F 80+cc
// rel32.
func (a *Asm) Jcc(cc Cond, l Label) {
	checkCond(cc, "Jcc")
	a.jump(l, []byte{0x70 | byte(cc)}, []byte{0x0F, 0x80 | byte(cc)}, "Jcc")
}

// Call emits "call l" (E8 rel32).
func (a *Asm) Call(l Label) {
	a.buf = append(a.buf, 0xE8)
	a.rel32(l, "Call")
}

// CallReg emits "call r" (FF /2), an indirect call to the address in r.
func (a *Asm) CallReg(r Reg) { a.rr(0, 0xFF, 2, r) }

// JmpReg emits "jmp r" (FF /4), an indirect jump to the address in r.
func (a *Asm) JmpReg(r Reg) { a.rr(0, 0xFF, 4, r) }

// Ret emits "ret" (C3).
func (a *Asm) Ret() { a.buf = append(a.buf, 0xC3) }

// Push emits "push r" (50+r; 64-bit without REX.W).
func (a *Asm) Push(r Reg) {
	a.prefixes(0, 0, 0, r)
	a.buf = append(a.buf, 0x50+byte(r&7))
}

// Pop emits "pop r" (58+r).
func (a *Asm) Pop(r Reg) {
	a.prefixes(0, 0, 0, r)
	a.buf = append(a.buf, 0x58+byte(r&7))
}

// Int3 emits "int3" (CC), a breakpoint trap.
func (a *Asm) Int3() { a.buf = append(a.buf, 0xCC) }

// Pause emits "pause" (F3 90), the spin-wait hint.
func (a *Asm) Pause() { a.buf = append(a.buf, 0xF3, 0x90) }

// RepMovsb emits "rep movsb" (F3 A4): rcx bytes from [rsi] to [rdi],
// forward (the direction flag is clear in code that never sets it).
func (a *Asm) RepMovsb() { a.buf = append(a.buf, 0xF3, 0xA4) }

// MovdquLoad emits "movdqu xmm, [base+disp]" (F3 0F 6F): 16 bytes,
// unaligned, into xmm register x (0-7).
func (a *Asm) MovdquLoad(x int, base Reg, disp int32) { a.sse16(0x0F6F, x, base, disp) }

// MovdquStore emits "movdqu [base+disp], xmm" (F3 0F 7F): the 16 bytes
// of xmm register x (0-7), unaligned.
func (a *Asm) MovdquStore(base Reg, disp int32, x int) { a.sse16(0x0F7F, x, base, disp) }

// sse16 emits an F3-prefixed SSE instruction between xmm register x and
// memory: the mandatory prefix goes before any REX prefix.
func (a *Asm) sse16(op uint16, x int, base Reg, disp int32) {
	if x < 0 || x > 7 {
		panic(fmt.Sprintf("BUG: amd64: xmm%d out of range", x))
	}
	a.buf = append(a.buf, 0xF3)
	a.rm(0, op, Reg(x), base, disp)
}

// RepStosb emits "rep stosb" (F3 AA): rcx bytes of al to [rdi], forward.
func (a *Asm) RepStosb() { a.buf = append(a.buf, 0xF3, 0xAA) }

// nops holds the recommended multi-byte NOPs of the Intel SDM (vol. 2B,
// "NOP"), the n-byte one at nops[n*(n-1)/2:][:n]: 0F 1F /0 (nop r/m32)
// with ever longer memory operands, and 66 prefixes.
const nops = "" +
	"\x90" + // 1: nop
	"\x66\x90" + // 2: xchg ax, ax
	"\x0f\x1f\x00" + // 3: nop dword [rax]
	"\x0f\x1f\x40\x00" + // 4: nop dword [rax+0] (disp8)
	"\x0f\x1f\x44\x00\x00" + // 5: nop dword [rax+rax*1+0] (SIB, disp8)
	"\x66\x0f\x1f\x44\x00\x00" + // 6: nop word [rax+rax*1+0]
	"\x0f\x1f\x80\x00\x00\x00\x00" + // 7: nop dword [rax+0] (disp32)
	"\x0f\x1f\x84\x00\x00\x00\x00\x00" + // 8: nop dword [rax+rax*1+0] (SIB, disp32)
	"\x66\x0f\x1f\x84\x00\x00\x00\x00\x00" // 9: nop word [rax+rax*1+0] (SIB, disp32)

// maxNop is the longest NOP in nops.
const maxNop = 9

// Nop emits exactly n bytes of NOPs (none for 0), as few instructions as
// the recommended forms allow: 9-byte NOPs, then one shorter one.
func (a *Asm) Nop(n int) {
	if n < 0 {
		panic(fmt.Sprintf("BUG: amd64: Nop(%d)", n))
	}
	for n > 0 {
		k := min(n, maxNop)
		a.buf = append(a.buf, nops[k*(k-1)/2:][:k]...)
		n -= k
	}
}
