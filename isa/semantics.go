package isa

import (
	"math"
	"math/bits"
)

// This file is the single statement of RFC 9669's arithmetic corner cases.
// Engines inline these (they are leaf functions), the verifier folds
// constants with them, and the table tests in semantics_test.go name each
// case.

// Div64 is BPF_DIV on 64 bits: division by zero gives 0 (RFC 9669 §4.1).
func Div64(a, b uint64) uint64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Mod64 is BPF_MOD on 64 bits: modulo by zero leaves the dividend.
func Mod64(a, b uint64) uint64 {
	if b == 0 {
		return a
	}
	return a % b
}

// SDiv64 is BPF_SDIV on 64 bits: division by zero gives 0, and
// INT64_MIN / -1 gives INT64_MIN (the overflow wraps).
func SDiv64(a, b int64) int64 {
	switch b {
	case 0:
		return 0
	case -1:
		return -a // wraps for math.MinInt64
	}
	return a / b
}

// SMod64 is BPF_SMOD on 64 bits: the result has the sign of the dividend
// (truncated division), modulo by zero leaves the dividend, and
// INT64_MIN % -1 is 0.
func SMod64(a, b int64) int64 {
	switch b {
	case 0:
		return a
	case -1:
		return 0
	}
	return a % b
}

// Div32 is BPF_DIV on 32 bits; the engine zero-extends the result.
func Div32(a, b uint32) uint32 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Mod32 is BPF_MOD on 32 bits: modulo by zero leaves the low half of the
// dividend, which the engine then zero-extends.
func Mod32(a, b uint32) uint32 {
	if b == 0 {
		return a
	}
	return a % b
}

// SDiv32 is BPF_SDIV on 32 bits; INT32_MIN / -1 gives INT32_MIN.
func SDiv32(a, b int32) int32 {
	switch b {
	case 0:
		return 0
	case -1:
		return -a
	}
	return a / b
}

// SMod32 is BPF_SMOD on 32 bits; INT32_MIN % -1 is 0.
func SMod32(a, b int32) int32 {
	switch b {
	case 0:
		return a
	case -1:
		return 0
	}
	return a % b
}

// Shift counts are masked to the operand width (RFC 9669 §4.1: "shift
// operations use a mask of 0x3F (63) for 64-bit operations and 0x1F (31) for
// 32-bit operations"), for immediates too.

// Lsh64 is BPF_LSH on 64 bits.
func Lsh64(a, n uint64) uint64 { return a << (n & 63) }

// Rsh64 is BPF_RSH on 64 bits.
func Rsh64(a, n uint64) uint64 { return a >> (n & 63) }

// Arsh64 is BPF_ARSH on 64 bits.
func Arsh64(a, n uint64) uint64 { return uint64(int64(a) >> (n & 63)) }

// Lsh32 is BPF_LSH on 32 bits.
func Lsh32(a, n uint32) uint32 { return a << (n & 31) }

// Rsh32 is BPF_RSH on 32 bits.
func Rsh32(a, n uint32) uint32 { return a >> (n & 31) }

// Arsh32 is BPF_ARSH on 32 bits.
func Arsh32(a, n uint32) uint32 { return uint32(int32(a) >> (n & 31)) }

// ToBE converts the low width bits of v to big-endian on a little-endian
// host, zero-extending the result (BPF_END | BPF_TO_BE, RFC 9669 §4.2).
func ToBE(v uint64, width int32) uint64 {
	switch width {
	case 16:
		return uint64(bits.ReverseBytes16(uint16(v)))
	case 32:
		return uint64(bits.ReverseBytes32(uint32(v)))
	default:
		return bits.ReverseBytes64(v)
	}
}

// ToLE converts the low width bits of v to little-endian on a little-endian
// host: it only truncates and zero-extends (BPF_END | BPF_TO_LE).
func ToLE(v uint64, width int32) uint64 {
	switch width {
	case 16:
		return uint64(uint16(v))
	case 32:
		return uint64(uint32(v))
	default:
		return v
	}
}

// Bswap swaps the low width bits of v unconditionally and zero-extends
// (BPF_ALU64 | BPF_END, RFC 9669 §4.2).
func Bswap(v uint64, width int32) uint64 { return ToBE(v, width) }

// MovSX64 sign-extends the low width (8, 16 or 32) bits of v to 64 bits
// (BPF_ALU64 | BPF_MOV | BPF_X with offset = width).
func MovSX64(v uint64, width int16) uint64 {
	switch width {
	case 8:
		return uint64(int64(int8(v)))
	case 16:
		return uint64(int64(int16(v)))
	case 32:
		return uint64(int64(int32(v)))
	}
	return v
}

// MovSX32 sign-extends the low width (8 or 16) bits of v to 32 bits and
// zero-extends that to 64 (BPF_ALU | BPF_MOV | BPF_X with offset = width).
func MovSX32(v uint64, width int16) uint64 {
	switch width {
	case 8:
		return uint64(uint32(int32(int8(v))))
	case 16:
		return uint64(uint32(int32(int16(v))))
	}
	return uint64(uint32(v))
}

// Cond reports whether a conditional jump with operation op is taken for
// operands a and b. With wide false (JMP32) only the low 32 bits are
// compared, signed comparisons as int32.
func Cond(op JumpOp, a, b uint64, wide bool) bool {
	if !wide {
		a, b = uint64(uint32(a)), uint64(uint32(b))
		sa, sb := int64(int32(a)), int64(int32(b))
		return cond(op, a, b, sa, sb)
	}
	return cond(op, a, b, int64(a), int64(b))
}

func cond(op JumpOp, a, b uint64, sa, sb int64) bool {
	switch op {
	case JumpA:
		return true
	case JumpEq:
		return a == b
	case JumpNE:
		return a != b
	case JumpGT:
		return a > b
	case JumpGE:
		return a >= b
	case JumpLT:
		return a < b
	case JumpLE:
		return a <= b
	case JumpSet:
		return a&b != 0
	case JumpSGT:
		return sa > sb
	case JumpSGE:
		return sa >= sb
	case JumpSLT:
		return sa < sb
	case JumpSLE:
		return sa <= sb
	}
	return false
}

// ALU computes a non-memory arithmetic instruction: op (with off selecting
// sdiv/smod or movsx, and imm the byte-swap width) applied to dst and src,
// 64-bit when wide, otherwise 32-bit with the result zero-extended. src is
// the already-selected second operand (the sign-extended imm for BPF_K).
// ALUEnd with wide is bswap (BPF_ALU64|BPF_END); without, be selects
// BPF_TO_BE over BPF_TO_LE.
// It is the reference the engines are tested against, not their fast path.
func ALU(op ALUOp, wide bool, off int16, imm int32, be bool, dst, src uint64) uint64 {
	if wide {
		switch op {
		case ALUAdd:
			return dst + src
		case ALUSub:
			return dst - src
		case ALUMul:
			return dst * src
		case ALUDiv:
			if off == 1 {
				return uint64(SDiv64(int64(dst), int64(src)))
			}
			return Div64(dst, src)
		case ALUOr:
			return dst | src
		case ALUAnd:
			return dst & src
		case ALULsh:
			return Lsh64(dst, src)
		case ALURsh:
			return Rsh64(dst, src)
		case ALUNeg:
			return -dst
		case ALUMod:
			if off == 1 {
				return uint64(SMod64(int64(dst), int64(src)))
			}
			return Mod64(dst, src)
		case ALUXor:
			return dst ^ src
		case ALUMov:
			return MovSX64(src, off)
		case ALUArsh:
			return Arsh64(dst, src)
		case ALUEnd:
			return Bswap(dst, imm)
		}
		return dst
	}
	a, b := uint32(dst), uint32(src)
	var r uint32
	switch op {
	case ALUAdd:
		r = a + b
	case ALUSub:
		r = a - b
	case ALUMul:
		r = a * b
	case ALUDiv:
		if off == 1 {
			r = uint32(SDiv32(int32(a), int32(b)))
		} else {
			r = Div32(a, b)
		}
	case ALUOr:
		r = a | b
	case ALUAnd:
		r = a & b
	case ALULsh:
		r = Lsh32(a, b)
	case ALURsh:
		r = Rsh32(a, b)
	case ALUNeg:
		r = -a
	case ALUMod:
		if off == 1 {
			r = uint32(SMod32(int32(a), int32(b)))
		} else {
			r = Mod32(a, b)
		}
	case ALUXor:
		r = a ^ b
	case ALUMov:
		return MovSX32(src, off)
	case ALUArsh:
		r = Arsh32(a, b)
	case ALUEnd:
		if be {
			return ToBE(dst, imm)
		}
		return ToLE(dst, imm)
	}
	return uint64(r)
}

// MinInt64 and MinInt32 as unsigned bit patterns, for tests and the
// verifier's overflow cases.
const (
	MinInt64Bits = uint64(1) << 63
	MinInt32Bits = uint32(math.MaxInt32) + 1
)
