package asm

import (
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

func TestDisassemble(t *testing.T) {
	lddw := isa.LoadImm64(R1, 0, 0x1122334455667788)
	fn := isa.LoadImm64(R2, isa.PseudoFunc, 2)
	for _, tc := range []struct {
		name  string
		prog  []isa.Instruction
		style Style
		want  string
	}{
		{"empty", nil, Listing | Labels, ""},
		{"lddw listing", []isa.Instruction{lddw[0], lddw[1], {Op: isa.OpExit}}, Listing,
			"       0:\t18 01 00 00 88 77 66 55 00 00 00 00 44 33 22 11\tr1 = 0x1122334455667788 ll\n" +
				"       2:\t95 00 00 00 00 00 00 00\texit\n"},
		{"truncated lddw", []isa.Instruction{lddw[0]}, Listing,
			"       0:\t18 01 00 00 88 77 66 55\tr1 = 0x55667788 ll\n"},
		{"invalid opcode", []isa.Instruction{{Op: 0xff}}, Plain, "<invalid opcode 0xff>\n"},
		{"label on function address", []isa.Instruction{fn[0], fn[1], {Op: isa.OpExit}, {Op: isa.OpExit}}, Labels,
			"r2 = func(L3) ll\nexit\nL3:\nexit\n"},
		{"target inside lddw keeps its offset", []isa.Instruction{{Op: isa.OpJA, Off: 1}, lddw[0], lddw[1]}, Labels,
			"goto +0x1\nr1 = 0x1122334455667788 ll\n"},
		{"target outside the program keeps its offset", []isa.Instruction{{Op: isa.OpCall, Src: isa.PseudoCall, Imm: -5}}, Labels,
			"call pc-5\n"},
		{"backward gotol", []isa.Instruction{{Op: isa.OpExit}, {Op: isa.OpJA32, Imm: -2}}, Labels,
			"L0:\nexit\ngotol L0\n"},
		{"may_goto loop", []isa.Instruction{{Op: isa.OpMayGoto, Off: 2}, {Op: 0x07, Imm: 1}, {Op: isa.OpJA, Off: -3}, {Op: isa.OpExit}}, Labels,
			"L0:\nmay_goto L3\nr0 += 0x1\ngoto L0\nL3:\nexit\n"},
		{"jump to itself", []isa.Instruction{{Op: 0x15, Dst: 1, Off: -1}}, Labels | Listing,
			"L0:\n       0:\t15 01 ff ff 00 00 00 00\tif r1 == 0x0 goto L0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Disassemble(tc.prog, tc.style); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
