package difftest

import (
	"slices"
	"testing"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/isa"
)

func TestReplace(t *testing.T) {
	ja := func(off int16) isa.Instruction { return isa.Instruction{Op: isa.OpJA, Off: off} }
	mov := func(imm int32) isa.Instruction {
		return isa.Instruction{Op: isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov), Imm: imm}
	}
	exit := isa.Instruction{Op: isa.OpExit}
	gotol := func(imm int32) isa.Instruction { return isa.Instruction{Op: isa.OpJA32, Imm: imm} }
	prog := []isa.Instruction{ja(2), mov(1), mov(2), gotol(-3), exit}
	for _, tc := range []struct {
		name      string
		pc, width int
		seq       []isa.Instruction
		want      []isa.Instruction
	}{
		{"grow", 1, 1, []isa.Instruction{mov(7), mov(8)}, []isa.Instruction{ja(3), mov(7), mov(8), mov(2), gotol(-4), exit}},
		{"delete", 1, 1, nil, []isa.Instruction{ja(1), mov(2), gotol(-2), exit}},
		{"delete_target", 2, 1, nil, []isa.Instruction{ja(1), mov(1), gotol(-2), exit}},
		{"same", 2, 1, []isa.Instruction{mov(9)}, []isa.Instruction{ja(2), mov(1), mov(9), gotol(-3), exit}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := replace(prog, tc.pc, tc.width, tc.seq); !slices.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestRewritesNeutral checks on generated programs that the rewrites used
// to recognise known kernel bugs change nothing in the interpreter: they
// are semantically neutral under RFC 9669.
func TestRewritesNeutral(t *testing.T) {
	e := NewInterp()
	n := 0
	for seed := range uint64(300) {
		p := fuzzgen.Generate(seed, fuzzgen.Config{})
		want := e.Run(p.Insns, p.Packet, Checked())
		if want.Err != nil {
			t.Fatalf("seed %d: %v", seed, want.Err)
		}
		for pc, ins := range p.Insns {
			var variants [][]isa.Instruction
			if isCmpxchg32(ins) {
				variants = append(variants, zextAfter(p.Insns, pc))
			}
			if a, _ := isAtomic(ins); a {
				variants = append(variants, plainAtomic(p.Insns, pc))
			}
			for _, v := range variants {
				n++
				if v == nil {
					t.Fatalf("seed %d: no rewrite at %d", seed, pc)
				}
				if got := e.Run(v, p.Packet, Checked()); !same(want, got) {
					t.Fatalf("seed %d: rewriting slot %d (%v) changes the result:\nwant %v\ngot  %v", seed, pc, ins, want, got)
				}
			}
		}
	}
	if n < 100 {
		t.Fatalf("only %d rewrites tried", n)
	}
}
