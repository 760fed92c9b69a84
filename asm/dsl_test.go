package asm

import (
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

func TestDSL(t *testing.T) {
	for _, tc := range []struct {
		in   Insn
		want string
	}{
		{Add64.Imm(R1, -5), "r1 += -0x5"},
		{Sub64.Reg(R1, R2), "r1 -= r2"},
		{Mul32.Imm(R1, 3), "w1 *= 0x3"},
		{Div64.Reg(R1, R2), "r1 /= r2"},
		{SDiv64.Reg(R1, R2), "r1 s/= r2"},
		{SDiv32.Imm(R1, 3), "w1 s/= 0x3"},
		{Or32.Reg(R1, R2), "w1 |= w2"},
		{And64.Imm(R1, 0xff), "r1 &= 0xff"},
		{Lsh64.Imm(R1, 3), "r1 <<= 0x3"},
		{Rsh32.Reg(R1, R2), "w1 >>= w2"},
		{Mod64.Imm(R1, 7), "r1 %= 0x7"},
		{SMod32.Reg(R1, R2), "w1 s%= w2"},
		{SMod64.Imm(R1, 7), "r1 s%= 0x7"},
		{Xor64.Reg(R1, R2), "r1 ^= r2"},
		{Mov64.Imm(R0, 1), "r0 = 0x1"},
		{Mov32.Reg(R0, R2), "w0 = w2"},
		{Arsh64.Imm(R1, 1), "r1 s>>= 0x1"},
		{Add32.Reg(R1, R2), "w1 += w2"},
		{Sub32.Imm(R1, 1), "w1 -= 0x1"},
		{Mul64.Reg(R1, R2), "r1 *= r2"},
		{Div32.Imm(R1, 2), "w1 /= 0x2"},
		{Or64.Imm(R1, 1), "r1 |= 0x1"},
		{And32.Reg(R1, R2), "w1 &= w2"},
		{Lsh32.Reg(R1, R2), "w1 <<= w2"},
		{Rsh64.Imm(R1, 1), "r1 >>= 0x1"},
		{Mod32.Imm(R1, 3), "w1 %= 0x3"},
		{Xor32.Imm(R1, 1), "w1 ^= 0x1"},
		{Arsh32.Reg(R1, R2), "w1 s>>= w2"},
		{Neg64(R3), "r3 = -r3"},
		{Neg32(R3), "w3 = -w3"},
		{MovSX64(R1, R2, 32), "r1 = (s32)r2"},
		{MovSX32(R1, R2, 8), "w1 = (s8)w2"},
		{LE(R1, 16), "r1 = le16 r1"},
		{BE(R1, 32), "r1 = be32 r1"},
		{BSwap(R1, 64), "r1 = bswap64 r1"},
		{Call(1), "call 0x1"},
		{CallKfunc(77), "call kfunc#77"},
		{CallX(R2), "callx r2"},
		{Exit(), "exit"},
		{LoadMem(R0, R1, 4, isa.SizeW), "r0 = *(u32 *)(r1 + 0x4)"},
		{LoadMemSX(R0, R1, -2, isa.SizeH), "r0 = *(s16 *)(r1 - 0x2)"},
		{StoreMem(RFP, -8, R1, isa.SizeDW), "*(u64 *)(r10 - 0x8) = r1"},
		{StoreImm(RFP, -4, 7, isa.SizeW), "*(u32 *)(r10 - 0x4) = 0x7"},
		{Atomic(isa.AtomicAdd, R1, 0, R2, isa.SizeDW), "lock *(u64 *)(r1 + 0x0) += r2"},
		{Atomic(isa.AtomicXor|isa.AtomicFetch, R1, 4, R2, isa.SizeW), "w2 = atomic_fetch_xor((u32 *)(r1 + 0x4), w2)"},
		{Atomic(isa.AtomicCmpXchg, R1, 8, R3, isa.SizeDW), "r0 = cmpxchg_64(r1 + 0x8, r0, r3)"},
		{LoadAbs(12, isa.SizeH), "r0 = *(u16 *)skb[0xc]"},
		{LoadInd(R6, 2, isa.SizeB), "r0 = *(u8 *)skb[r6 + 0x2]"},
	} {
		prog, err := Assemble(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(Disassemble(prog, Plain)); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestAssemble_labels(t *testing.T) {
	prog, err := Assemble(
		LoadImm64(R1, 0x1122334455667788),
		LoadMapFD(R2, 3),
		LoadMapValue(R3, 4, 16),
		LoadFunc(R4, "f"),
		JEq.Imm(R1, 0, "out"),
		JNE.Reg(R1, R2, "out"),
		JGT.Imm32(R1, 1, "out"),
		JSLE.Reg32(R1, R2, "out"),
		Ja("out"),
		Ja32("out"),
		CallLocal("f"),
		Exit().WithLabel("out"),
		Mov64.Imm(R0, 0).WithLabel("f"),
		Exit(),
	)
	if err != nil {
		t.Fatal(err)
	}
	want := `r1 = 0x1122334455667788 ll
r2 = map_fd(3) ll
r3 = map_value(4, 0x10) ll
r4 = func(L16) ll
if r1 == 0x0 goto L15
if r1 != r2 goto L15
if w1 > 0x1 goto L15
if w1 s<= w2 goto L15
goto L15
gotol L15
call L16
L15:
exit
L16:
r0 = 0x0
exit
`
	if got := Disassemble(prog, Labels); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if err := isa.ValidateProgram(prog); err != nil {
		t.Error(err)
	}
}

func TestAssemble_errors(t *testing.T) {
	for _, tc := range []struct {
		insns []Insn
		want  string
	}{
		{[]Insn{Ja("nowhere"), Exit()}, `instruction 0: undefined label "nowhere"`},
		{[]Insn{Exit().WithLabel("a"), Exit().WithLabel("a")}, `instruction 1: label "a" defined twice`},
		{append(append([]Insn{Ja("far")}, make([]Insn, 40000)...), Exit().WithLabel("far")), `beyond a 16-bit jump offset`},
	} {
		_, err := Assemble(tc.insns...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error containing %q", err, tc.want)
		}
	}
}
