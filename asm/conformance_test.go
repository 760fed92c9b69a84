package asm

import (
	"errors"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

// conformanceCases covers every mnemonic of the conformance dialect
// (testdata/conformance/README.md §2).
var conformanceCases = []struct {
	text, hex string
}{
	{"add %r1, 5", "07 01 00 00 05 00 00 00"},
	{"add64 %r1, %r2", "0f 21 00 00 00 00 00 00"},
	{"add32 %r1, -1", "04 01 00 00 ff ff ff ff"},
	{"add32 %r1, %r2", "0c 21 00 00 00 00 00 00"},
	{"sub %r1, 0xffffffff", "17 01 00 00 ff ff ff ff"},
	{"sub32 %r1, %r2", "1c 21 00 00 00 00 00 00"},
	{"mul %r1, 3", "27 01 00 00 03 00 00 00"},
	{"mul32 %r1, %r2", "2c 21 00 00 00 00 00 00"},
	{"div %r1, 3", "37 01 00 00 03 00 00 00"},
	{"div32 %r1, %r2", "3c 21 00 00 00 00 00 00"},
	{"sdiv %r1, -3", "37 01 01 00 fd ff ff ff"},
	{"sdiv32 %r1, %r2", "3c 21 01 00 00 00 00 00"},
	{"or %r1, 0x10", "47 01 00 00 10 00 00 00"},
	{"or32 %r1, %r2", "4c 21 00 00 00 00 00 00"},
	{"and %r1, 0xff", "57 01 00 00 ff 00 00 00"},
	{"and32 %r1, %r2", "5c 21 00 00 00 00 00 00"},
	{"lsh %r1, 63", "67 01 00 00 3f 00 00 00"},
	{"lsh32 %r1, %r2", "6c 21 00 00 00 00 00 00"},
	{"rsh %r1, 1", "77 01 00 00 01 00 00 00"},
	{"rsh32 %r1, %r2", "7c 21 00 00 00 00 00 00"},
	{"neg %r1", "87 01 00 00 00 00 00 00"},
	{"neg64 %r1", "87 01 00 00 00 00 00 00"},
	{"neg32 %r1", "84 01 00 00 00 00 00 00"},
	{"mod %r1, 7", "97 01 00 00 07 00 00 00"},
	{"mod32 %r1, %r2", "9c 21 00 00 00 00 00 00"},
	{"smod %r1, 7", "97 01 01 00 07 00 00 00"},
	{"smod32 %r1, %r2", "9c 21 01 00 00 00 00 00"},
	{"xor %r1, 1", "a7 01 00 00 01 00 00 00"},
	{"xor32 %r1, %r2", "ac 21 00 00 00 00 00 00"},
	{"mov %r0, 1", "b7 00 00 00 01 00 00 00"},
	{"mov %r0, %r10", "bf a0 00 00 00 00 00 00"},
	{"mov32 %r0, 0x80000000", "b4 00 00 00 00 00 00 80"},
	{"mov32 %r0, -2147483648", "b4 00 00 00 00 00 00 80"},
	{"mov32 %r0, %r1", "bc 10 00 00 00 00 00 00"},
	{"arsh %r1, 2", "c7 01 00 00 02 00 00 00"},
	{"arsh32 %r1, %r2", "cc 21 00 00 00 00 00 00"},
	{"movsx832 %r1, %r2", "bc 21 08 00 00 00 00 00"},
	{"movsx1632 %r1, %r2", "bc 21 10 00 00 00 00 00"},
	{"movsx864 %r1, %r2", "bf 21 08 00 00 00 00 00"},
	{"movsx1664 %r1, %r2", "bf 21 10 00 00 00 00 00"},
	{"movsx3264 %r1, %r2", "bf 21 20 00 00 00 00 00"},
	{"be16 %r1", "dc 01 00 00 10 00 00 00"},
	{"be32 %r1", "dc 01 00 00 20 00 00 00"},
	{"be64 %r1", "dc 01 00 00 40 00 00 00"},
	{"le16 %r1", "d4 01 00 00 10 00 00 00"},
	{"le32 %r1", "d4 01 00 00 20 00 00 00"},
	{"le64 %r1", "d4 01 00 00 40 00 00 00"},
	{"bswap16 %r1", "d7 01 00 00 10 00 00 00"},
	{"bswap32 %r1", "d7 01 00 00 20 00 00 00"},
	{"bswap64 %r1", "d7 01 00 00 40 00 00 00"},
	{"swap16 %r1", "d7 01 00 00 10 00 00 00"},
	{"swap32 %r1", "d7 01 00 00 20 00 00 00"},
	{"swap64 %r1", "d7 01 00 00 40 00 00 00"},
	{"lddw %r0, 0x1122334455667788", "18 00 00 00 88 77 66 55 00 00 00 00 44 33 22 11"},
	{"lddw %r0, -1", "18 00 00 00 ff ff ff ff 00 00 00 00 ff ff ff ff"},
	{"lddw %r0, 18446744073709551615", "18 00 00 00 ff ff ff ff 00 00 00 00 ff ff ff ff"},
	{"ldxb %r0, [%r1]", "71 10 00 00 00 00 00 00"},
	{"ldxh %r0, [%r1+2]", "69 10 02 00 00 00 00 00"},
	{"ldxw %r0, [%r1+0x4]", "61 10 04 00 00 00 00 00"},
	{"ldxdw %r0, [%r10-8]", "79 a0 f8 ff 00 00 00 00"},
	{"ldxsb %r0, [%r1+1]", "91 10 01 00 00 00 00 00"},
	{"ldxsh %r0, [%r1+2]", "89 10 02 00 00 00 00 00"},
	{"ldxsw %r0, [%r1-32768]", "81 10 00 80 00 00 00 00"},
	{"stb [%r10-1], 0x11", "72 0a ff ff 11 00 00 00"},
	{"sth [%r10-2], 0x8001", "6a 0a fe ff 01 80 00 00"},
	{"stw [%r10-4], -1", "62 0a fc ff ff ff ff ff"},
	{"stdw [%r10-8], 0x44332211", "7a 0a f8 ff 11 22 33 44"},
	{"stxb [%r10-1], %r1", "73 1a ff ff 00 00 00 00"},
	{"stxh [%r1+2], %r2", "6b 21 02 00 00 00 00 00"},
	{"stxw [%r1+32767], %r2", "63 21 ff 7f 00 00 00 00"},
	{"stxdw [%r10-8], %r0", "7b 0a f8 ff 00 00 00 00"},
	{"lock add [%r10-8], %r1", "db 1a f8 ff 00 00 00 00"},
	{"lock add32 [%r10-8], %r1", "c3 1a f8 ff 00 00 00 00"},
	{"lock fetch add [%r10-8], %r1", "db 1a f8 ff 01 00 00 00"},
	{"lock fetch add32 [%r10-8], %r1", "c3 1a f8 ff 01 00 00 00"},
	{"lock or [%r10-8], %r1", "db 1a f8 ff 40 00 00 00"},
	{"lock fetch or32 [%r10-8], %r1", "c3 1a f8 ff 41 00 00 00"},
	{"lock and [%r10-8], %r1", "db 1a f8 ff 50 00 00 00"},
	{"lock fetch and [%r10-8], %r1", "db 1a f8 ff 51 00 00 00"},
	{"lock xor32 [%r10-8], %r1", "c3 1a f8 ff a0 00 00 00"},
	{"lock fetch xor [%r10-8], %r1", "db 1a f8 ff a1 00 00 00"},
	{"lock xchg [%r10-8], %r1", "db 1a f8 ff e1 00 00 00"},
	{"lock xchg32 [%r10-8], %r1", "c3 1a f8 ff e1 00 00 00"},
	{"lock cmpxchg [%r10-8], %r1", "db 1a f8 ff f1 00 00 00"},
	{"lock cmpxchg32 [%r10-8], %r1 # compare with %r0", "c3 1a f8 ff f1 00 00 00"},
	{"ja +1", "05 00 01 00 00 00 00 00"},
	{"ja -1", "05 00 ff ff 00 00 00 00"},
	{"ja32 +1", "06 00 00 00 01 00 00 00"},
	{"jeq %r1, 0, +2", "15 01 02 00 00 00 00 00"},
	{"jeq32 %r1, %r2, +2", "1e 21 02 00 00 00 00 00"},
	{"jgt %r1, 0xffffffff, +2", "25 01 02 00 ff ff ff ff"},
	{"jgt32 %r1, %r2, -2", "2e 21 fe ff 00 00 00 00"},
	{"jge %r1, 1, +2", "35 01 02 00 01 00 00 00"},
	{"jge32 %r1, %r2, +2", "3e 21 02 00 00 00 00 00"},
	{"jset %r1, 0x80, +2", "45 01 02 00 80 00 00 00"},
	{"jset32 %r1, %r2, +2", "4e 21 02 00 00 00 00 00"},
	{"jne %r1, 1, +2", "55 01 02 00 01 00 00 00"},
	{"jne64 %r1, 1, +2", "55 01 02 00 01 00 00 00"},
	{"jne32 %r1, %r2, +2", "5e 21 02 00 00 00 00 00"},
	{"jsgt %r1, -1, +2", "65 01 02 00 ff ff ff ff"},
	{"jsgt32 %r1, %r2, +2", "6e 21 02 00 00 00 00 00"},
	{"jsge %r1, -1, +2", "75 01 02 00 ff ff ff ff"},
	{"jsge32 %r1, %r2, +2", "7e 21 02 00 00 00 00 00"},
	{"jlt %r1, 1, +2", "a5 01 02 00 01 00 00 00"},
	{"jlt32 %r1, %r2, +2", "ae 21 02 00 00 00 00 00"},
	{"jle %r1, 1, +2", "b5 01 02 00 01 00 00 00"},
	{"jle32 %r1, %r2, +2", "be 21 02 00 00 00 00 00"},
	{"jslt %r1, -1, +2", "c5 01 02 00 ff ff ff ff"},
	{"jslt32 %r1, %r2, +2", "ce 21 02 00 00 00 00 00"},
	{"jsle %r1, -1, +2", "d5 01 02 00 ff ff ff ff"},
	{"jsle32 %r1, %r2, +2", "de 21 02 00 00 00 00 00"},
	{"call 5", "85 00 00 00 05 00 00 00"},
	{"call helper 5", "85 00 00 00 05 00 00 00"},
	{"call runtime 7", "85 20 00 00 07 00 00 00"},
	{"call local +1", "85 10 00 00 01 00 00 00"},
	{"call %r2", "8d 02 00 00 00 00 00 00"},
	{"exit", "95 00 00 00 00 00 00 00"},
	{"mov %r11, 1", "b7 0b 00 00 01 00 00 00"},
	{"  mov   %r0,   1   # comment", "b7 00 00 00 01 00 00 00"},
}

func TestParseConformance_mnemonics(t *testing.T) {
	for _, tc := range conformanceCases {
		t.Run(tc.text, func(t *testing.T) {
			got, err := ParseConformance(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if want := mustHex(t, tc.hex); !equal(got, want) {
				t.Errorf("ParseConformance(%q) = %s, want %s", tc.text, hexOf(got), tc.hex)
			}
		})
	}
}

func TestParseConformance_labels(t *testing.T) {
	src := `
mov %r0, 0
jeq %r1, 0, exit      # the implicit label of the first exit
call local func1
ja32 done
lddw %r2, 1
done:
exit
func1:
mov %r0, 1
ja exit
exit
`
	want := []isa.Instruction{
		{Op: 0xb7},
		{Op: 0x15, Dst: 1, Off: 4},
		{Op: isa.OpCall, Src: isa.PseudoCall, Imm: 4},
		{Op: isa.OpJA32, Imm: 2},
		{Op: isa.OpLoadImm64, Dst: 2, Imm: 1}, {},
		{Op: isa.OpExit},
		{Op: 0xb7, Imm: 1},
		{Op: isa.OpJA, Off: -3},
		{Op: isa.OpExit},
	}
	got, err := ParseConformance(src)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(got, want) {
		t.Fatal(firstDiff(got, want))
	}

	// A label named exit wins over the implicit one.
	got, err = ParseConformance("ja exit\nexit\nexit:\nexit")
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Off != 1 {
		t.Errorf("ja exit jumps by %d, want 1 (to the explicit label)", got[0].Off)
	}
}

func TestParseConformance_errors(t *testing.T) {
	for _, tc := range []struct {
		src, want string
	}{
		{"mov32 %r0, 2147483648\nexit", `line 1: immediate 2147483648 does not fit in 32 bits`},
		{"mov32 %r0, 0x100000000", `immediate 0x100000000 does not fit in 32 bits`},
		{"mov %r0, -2147483649", `does not fit in 32 bits`},
		{"ja NOT_A_LABEL\nexit", `line 1: undefined label "NOT_A_LABEL"`},
		{"lock or [%r10-8]", `invalid number of operands for lock`},
		{"lock", `invalid number of operands for lock`},
		{"lock nand [%r10-8], %r1", `invalid atomic operation "nand"`},
		{"ldxq %r0, %r1", `invalid mnemonic "ldxq"`},
		{"frob", `invalid mnemonic "frob"`},
		{"ldxsdw %r0, [%r1]", `invalid mnemonic "ldxsdw"`},
		{"ldxb %r0, %r1", `invalid memory operand "%r1"`},
		{"ldxb %r0, [%r1+0x10000]", `offset +0x10000 does not fit in 16 bits`},
		{"ldxb %r0, [%r1-32769]", `offset -32769 does not fit in 16 bits`},
		{"lddw %r0", `lddw takes 2 operand(s)`},
		{"lddw %r0, 0x10000000000000000", `does not fit in 64 bits`},
		{"or %r0, %r50", `unknown register "%r50"`},
		{"or %r0, %r16", `unknown register "%r16"`},
		{"or %r0,%r1", `or takes 2 operand(s), a register and a register or immediate; found 1 (operands are separated by a comma and a space)`},
		{"ldxb %r0,[%r1], %r2", `invalid register "%r0,[%r1]" (operands are separated by a comma and a space)`},
		{"stxb [%r1], %r0,%r2", `invalid register "%r0,%r2" (operands are separated by a comma and a space)`},
		{"mov %r0, 1x", `malformed number "1x"`},
		{"mov %r0, 1 2", `mov takes 2 operand(s)`},
		{"neg %r0, 1", `neg takes 1 operand(s)`},
		{"exit 1", `exit takes 0 operand(s)`},
		{"jeq %r1, 0", `jeq takes 3 operand(s)`},
		{"ja +40000", `jump offset +40000 does not fit in 16 bits`},
		{"call local", `call takes a helper id`},
		{"call remote 1", `invalid call mode "remote"`},
		{"a:\na:", `line 2: label "a" already defined at line 1`},
		{"a: exit", `label "a" must be on a line of its own`},
		{"call local nowhere\nexit", `undefined label "nowhere"`},
	} {
		t.Run(tc.src, func(t *testing.T) {
			_, err := ParseConformance(tc.src)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			var aerr *Error
			if !errors.As(err, &aerr) {
				t.Errorf("error %v is not an *asm.Error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}
