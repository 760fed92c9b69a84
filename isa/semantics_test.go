package isa

import (
	"math"
	"testing"
)

// TestALU names each arithmetic corner case of RFC 9669 §4.1-§4.2 and checks
// the reference ALU function every engine is compared against.
func TestALU(t *testing.T) {
	const minI64 = uint64(1) << 63
	for _, tc := range []struct {
		name     string
		op       ALUOp
		wide     bool
		off      int16
		imm      int32
		be       bool
		dst, src uint64
		want     uint64
	}{
		{name: "add64 wraps", op: ALUAdd, wide: true, dst: math.MaxUint64, src: 2, want: 1},
		{name: "add32 zero-extends", op: ALUAdd, dst: 0xffffffff_ffffffff, src: 1, want: 0},
		{name: "sub32 wraps and zero-extends", op: ALUSub, dst: 0, src: 1, want: 0xffffffff},
		{name: "mul32 uses low halves", op: ALUMul, dst: 0x1_00000003, src: 0x1_00000005, want: 15},
		{name: "div64 by zero is 0", op: ALUDiv, wide: true, dst: 42, src: 0, want: 0},
		{name: "div32 by zero is 0", op: ALUDiv, dst: 0xffffffff_00000042, src: 0, want: 0},
		{name: "div32 by high-only divisor is by zero", op: ALUDiv, dst: 42, src: 0x1_00000000, want: 0},
		{name: "div64 unsigned", op: ALUDiv, wide: true, dst: math.MaxUint64, src: 2, want: math.MaxInt64},
		{name: "mod64 by zero leaves dst", op: ALUMod, wide: true, dst: 0xdead_beef_0000_0042, src: 0, want: 0xdead_beef_0000_0042},
		{name: "mod32 by zero leaves dst's zero-extended low half", op: ALUMod, dst: 0xdead_beef_0000_0042, src: 0, want: 0x42},
		{name: "sdiv64 INT_MIN by -1 is INT_MIN", op: ALUDiv, wide: true, off: 1, dst: minI64, src: math.MaxUint64, want: minI64},
		{name: "sdiv32 INT_MIN by -1 is INT_MIN", op: ALUDiv, off: 1, dst: 0x80000000, src: 0xffffffff, want: 0x80000000},
		{name: "sdiv64 by zero is 0", op: ALUDiv, wide: true, off: 1, dst: 7, src: 0, want: 0},
		{name: "sdiv64 truncates toward zero", op: ALUDiv, wide: true, off: 1, dst: uint64(1<<64 - 7), src: 2, want: uint64(1<<64 - 3)},
		{name: "sdiv32 negative", op: ALUDiv, off: 1, dst: uint64(uint32(0xfffffff9)), src: 2, want: 0xfffffffd},
		{name: "smod64 INT_MIN by -1 is 0", op: ALUMod, wide: true, off: 1, dst: minI64, src: math.MaxUint64, want: 0},
		{name: "smod32 INT_MIN by -1 is 0", op: ALUMod, off: 1, dst: 0x80000000, src: 0xffffffff, want: 0},
		{name: "smod64 has the sign of the dividend", op: ALUMod, wide: true, off: 1, dst: uint64(1<<64 - 7), src: 3, want: uint64(1<<64 - 1)},
		{name: "smod64 negative divisor", op: ALUMod, wide: true, off: 1, dst: 7, src: uint64(1<<64 - 3), want: 1},
		{name: "smod64 by zero leaves dst", op: ALUMod, wide: true, off: 1, dst: uint64(1<<64 - 7), src: 0, want: uint64(1<<64 - 7)},
		{name: "smod32 by zero leaves the zero-extended low half", op: ALUMod, off: 1, dst: 0xffffffff_fffffff9, src: 0, want: 0xfffffff9},
		{name: "lsh64 count masked to 6 bits", op: ALULsh, wide: true, dst: 1, src: 65, want: 2},
		{name: "lsh32 count masked to 5 bits", op: ALULsh, dst: 1, src: 33, want: 2},
		{name: "rsh32 ignores the high half", op: ALURsh, dst: 0xffffffff_80000000, src: 31, want: 1},
		{name: "arsh64 sign-fills", op: ALUArsh, wide: true, dst: minI64, src: 63, want: math.MaxUint64},
		{name: "arsh32 sign-fills the low half only", op: ALUArsh, dst: 0x80000000, src: 31, want: 0xffffffff},
		{name: "arsh32 negative count masked", op: ALUArsh, dst: 0x80000000, src: uint64(1<<64 - 1), want: 0xffffffff},
		{name: "neg64", op: ALUNeg, wide: true, dst: 1, want: math.MaxUint64},
		{name: "neg32 zero-extends", op: ALUNeg, dst: 1, want: 0xffffffff},
		{name: "neg64 INT_MIN", op: ALUNeg, wide: true, dst: minI64, want: minI64},
		{name: "mov32 zero-extends", op: ALUMov, dst: 5, src: 0xffffffff_ffffffff, want: 0xffffffff},
		{name: "movsx64 s8", op: ALUMov, wide: true, off: 8, src: 0x80, want: 0xffffffff_ffffff80},
		{name: "movsx64 s16", op: ALUMov, wide: true, off: 16, src: 0x7fff, want: 0x7fff},
		{name: "movsx64 s32", op: ALUMov, wide: true, off: 32, src: 0x80000000, want: 0xffffffff_80000000},
		{name: "movsx32 s8 zero-extends the 32-bit result", op: ALUMov, off: 8, src: 0xff, want: 0xffffffff},
		{name: "movsx32 s16", op: ALUMov, off: 16, src: 0x8000, want: 0xffff8000},
		{name: "le16 truncates", op: ALUEnd, imm: 16, dst: 0x11223344_55667788, want: 0x7788},
		{name: "le32 truncates", op: ALUEnd, imm: 32, dst: 0x11223344_55667788, want: 0x55667788},
		{name: "le64 is identity", op: ALUEnd, imm: 64, dst: 0x11223344_55667788, want: 0x11223344_55667788},
		{name: "be16 swaps and zero-extends", op: ALUEnd, be: true, imm: 16, dst: 0x11223344_55667788, want: 0x8877},
		{name: "be32 swaps and zero-extends", op: ALUEnd, be: true, imm: 32, dst: 0x11223344_55667788, want: 0x88776655},
		{name: "be64 swaps", op: ALUEnd, be: true, imm: 64, dst: 0x11223344_55667788, want: 0x88776655_44332211},
		{name: "bswap16", op: ALUEnd, wide: true, imm: 16, dst: 0x11223344_55667788, want: 0x8877},
		{name: "bswap32", op: ALUEnd, wide: true, imm: 32, dst: 0x11223344_55667788, want: 0x88776655},
		{name: "bswap64", op: ALUEnd, wide: true, imm: 64, dst: 0x11223344_55667788, want: 0x88776655_44332211},
		{name: "xor32 zero-extends", op: ALUXor, dst: 0xffffffff_00000000, src: 1, want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ALU(tc.op, tc.wide, tc.off, tc.imm, tc.be, tc.dst, tc.src); got != tc.want {
				t.Errorf("got %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestCond(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   JumpOp
		a, b uint64
		wide bool
		want bool
	}{
		{"jgt is unsigned", JumpGT, math.MaxUint64, 1, true, true},
		{"jsgt is signed", JumpSGT, math.MaxUint64, 1, true, false},
		{"jslt -1 < 0", JumpSLT, math.MaxUint64, 0, true, true},
		{"jeq32 ignores the high half", JumpEq, 0xdead_0000_0005, 5, false, true},
		{"jsgt32 signed on the low half", JumpSGT, 0x0000_0000_8000_0000, 0, false, false},
		{"jsge32", JumpSGE, 0x1_0000_0000, 0, false, true},
		{"jset", JumpSet, 0b1010, 0b0010, true, true},
		{"jset32 ignores the high half", JumpSet, 0x1_0000_0000, 0x1_0000_0000, false, false},
		{"jne", JumpNE, 1, 2, true, true},
		{"jle equal", JumpLE, 7, 7, true, true},
		{"jlt32 unsigned", JumpLT, 0xffffffff, 0, false, false},
		{"jsle32", JumpSLE, 0xffffffff, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Cond(tc.op, tc.a, tc.b, tc.wide); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
