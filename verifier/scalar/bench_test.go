package scalar

import (
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

var sinkValue Value

// BenchmarkALU times the transfer functions a verifier runs on every ALU
// instruction it processes, on operands that are neither constant nor
// unknown (the common, slowest case).
func BenchmarkALU(b *testing.B) {
	dst := Range(3, 200)
	src := Range(0, 0xffff)
	k := Const(5)
	for _, bc := range []struct {
		name string
		op   isa.ALUOp
		wide bool
		src  Value
	}{
		{"add64", isa.ALUAdd, true, src},
		{"add32", isa.ALUAdd, false, src},
		{"sub64", isa.ALUSub, true, src},
		{"mul64", isa.ALUMul, true, src},
		{"and64", isa.ALUAnd, true, src},
		{"or64", isa.ALUOr, true, src},
		{"lsh64", isa.ALULsh, true, k},
		{"rsh32", isa.ALURsh, false, k},
		{"arsh64", isa.ALUArsh, true, k},
		{"neg64", isa.ALUNeg, true, src},
		{"mov32", isa.ALUMov, false, src},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				sinkValue = ALU(bc.op, bc.wide, 0, 0, false, dst, bc.src)
			}
		})
	}
}

// BenchmarkBranch times a conditional jump on two ranges: the outcome and
// the refinement of both sides, as for every undecided jump.
func BenchmarkBranch(b *testing.B) {
	a, c := Range(0, 1000), Range(10, 20)
	for _, bc := range []struct {
		name string
		op   isa.JumpOp
		wide bool
	}{
		{"jgt64", isa.JumpGT, true},
		{"jslt32", isa.JumpSLT, false},
		{"jeq64", isa.JumpEq, true},
		{"jset64", isa.JumpSet, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if BranchTaken(bc.op, a, c, bc.wide) == Maybe {
					sinkValue, _ = Refine(bc.op, a, c, bc.wide, true)
					sinkValue, _ = Refine(bc.op, a, c, bc.wide, false)
				}
			}
		})
	}
}

// BenchmarkSync times reg_bounds_sync alone.
func BenchmarkSync(b *testing.B) {
	v := Unknown()
	v.UMin, v.UMax = 0x1_0000_0010, 0x1_8000_0000
	v.S32Min = 1
	for b.Loop() {
		w := v
		w.Sync()
		sinkValue = w
	}
}

// BenchmarkTnumMul times the union-based tnum multiplication, whose loop
// runs once per bit of the first operand.
func BenchmarkTnumMul(b *testing.B) {
	x, y := Tnum{0x10, 0xffef}, Tnum{0x3, 0xf0}
	var t Tnum
	for b.Loop() {
		t = x.Mul(y)
	}
	sinkValue.Var = t
}
