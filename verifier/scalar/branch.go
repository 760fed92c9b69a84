package scalar

import (
	"math/bits"

	"github.com/waggle-bpf/waggle/isa"
)

// Outcome is what the verifier can tell about a conditional jump before
// following it: taken on every path, on none, or either.
type Outcome int8

// The outcomes of BranchTaken; the values are is_branch_taken's.
const (
	Maybe  Outcome = -1 // either side is possible: both are explored
	Never  Outcome = 0  // the jump is never taken: only the fall-through
	Always Outcome = 1  // the jump is always taken: only the target
)

// String is "maybe", "never" or "always".
func (o Outcome) String() string {
	switch o {
	case Never:
		return "never"
	case Always:
		return "always"
	}
	return "maybe"
}

// BranchTaken says whether "if a op b goto" is taken for every pair of
// numbers in a and b (is_scalar_branch_taken of Linux 6.12). With wide
// false (JMP32) only the low 32 bits are compared. For a BPF_K jump b is
// Const(uint64(int64(imm))). op is a conditional jump; JumpA gives Always
// and anything else Maybe.
func BranchTaken(op isa.JumpOp, a, b Value, wide bool) Outcome {
	t1, t2 := a.Var, b.Var
	umin1, umax1, smin1, smax1 := a.UMin, a.UMax, a.SMin, a.SMax
	umin2, umax2, smin2, smax2 := b.UMin, b.UMax, b.SMin, b.SMax
	if !wide {
		t1, t2 = t1.Subreg(), t2.Subreg()
		umin1, umax1 = uint64(a.U32Min), uint64(a.U32Max)
		smin1, smax1 = int64(a.S32Min), int64(a.S32Max)
		umin2, umax2 = uint64(b.U32Min), uint64(b.U32Max)
		smin2, smax2 = int64(b.S32Min), int64(b.S32Max)
	}
	disjoint := func() bool {
		if !t1.Overlap(t2) || umin1 > umax2 || umax1 < umin2 || smin1 > smax2 || smax1 < smin2 {
			return true
		}
		// 64-bit ranges can overlap while their low halves do not.
		return wide && (a.U32Min > b.U32Max || a.U32Max < b.U32Min ||
			a.S32Min > b.S32Max || a.S32Max < b.S32Min)
	}
	switch op {
	case isa.JumpA:
		return Always
	case isa.JumpEq:
		if t1.IsConst() && t2.IsConst() {
			return outcome(t1.Value == t2.Value)
		}
		if disjoint() {
			return Never
		}
	case isa.JumpNE:
		if t1.IsConst() && t2.IsConst() {
			return outcome(t1.Value != t2.Value)
		}
		if disjoint() {
			return Always
		}
	case isa.JumpSet:
		if !isConst(b, wide) {
			a, b = b, a
			t1, t2 = t2, t1
		}
		if !isConst(b, wide) {
			return Maybe
		}
		if t1.Value&^t1.Mask&t2.Value != 0 {
			return Always
		}
		if (t1.Mask|t1.Value)&t2.Value == 0 {
			return Never
		}
	case isa.JumpGT:
		if umin1 > umax2 {
			return Always
		} else if umax1 <= umin2 {
			return Never
		}
	case isa.JumpSGT:
		if smin1 > smax2 {
			return Always
		} else if smax1 <= smin2 {
			return Never
		}
	case isa.JumpLT:
		if umax1 < umin2 {
			return Always
		} else if umin1 >= umax2 {
			return Never
		}
	case isa.JumpSLT:
		if smax1 < smin2 {
			return Always
		} else if smin1 >= smax2 {
			return Never
		}
	case isa.JumpGE:
		if umin1 >= umax2 {
			return Always
		} else if umax1 < umin2 {
			return Never
		}
	case isa.JumpSGE:
		if smin1 >= smax2 {
			return Always
		} else if smax1 < smin2 {
			return Never
		}
	case isa.JumpLE:
		if umax1 <= umin2 {
			return Always
		} else if umin1 > umax2 {
			return Never
		}
	case isa.JumpSLE:
		if smax1 <= smin2 {
			return Always
		} else if smin1 > smax2 {
			return Never
		}
	}
	return Maybe
}

func outcome(b bool) Outcome {
	if b {
		return Always
	}
	return Never
}

// isConst is is_reg_const: the whole register, or its low half for JMP32.
func isConst(v Value, wide bool) bool {
	if wide {
		return v.Var.IsConst()
	}
	return v.IsConst32()
}

// constValue is reg_const_value.
func constValue(v Value, wide bool) uint64 {
	if wide {
		return v.Var.Value
	}
	return uint64(uint32(v.Var.Value))
}

// Refine narrows a and b to the numbers for which "if a op b goto" goes
// the way taken says (reg_set_min_max and regs_refine_cond_op of Linux
// 6.12). It is meant for a jump whose BranchTaken is Maybe, as the kernel
// uses it. A side that cannot happen may come out as no number at all;
// the kernel then logs "REG INVARIANTS VIOLATION" and goes on with
// unbounded ranges (and the refined tnum), and so does Refine. For a BPF_K jump b is Const(uint64(int64(imm)))
// and its refinement is of no use.
func Refine(op isa.JumpOp, a, b Value, wide, taken bool) (Value, Value) {
	cond := int(op)
	if !taken {
		cond = reverse(op)
	}
	refine(cond, &a, &b, wide)
	a.Sync()
	b.Sync()
	a.sanitize()
	b.sanitize()
	return a, b
}

// RefineSelf is Refine for a jump that compares a register with itself
// ("if r1 > r1 goto"). The kernel refines both operands in place, and
// here they are one register, so each narrowing of either side lands on
// it.
func RefineSelf(op isa.JumpOp, v Value, wide, taken bool) Value {
	cond := int(op)
	if !taken {
		cond = reverse(op)
	}
	refine(cond, &v, &v, wide)
	v.Sync()
	v.sanitize()
	return v
}

// jsetFalse stands for "no bit of the mask is set", the reverse of JSET
// (BPF_JSET | BPF_X in rev_opcode).
const jsetFalse = int(isa.JumpSet) | 0x08

// reverse is rev_opcode: the condition of the fall-through side.
func reverse(op isa.JumpOp) int {
	switch op {
	case isa.JumpEq:
		return int(isa.JumpNE)
	case isa.JumpNE:
		return int(isa.JumpEq)
	case isa.JumpSet:
		return jsetFalse
	case isa.JumpGE:
		return int(isa.JumpLT)
	case isa.JumpGT:
		return int(isa.JumpLE)
	case isa.JumpLE:
		return int(isa.JumpGT)
	case isa.JumpLT:
		return int(isa.JumpGE)
	case isa.JumpSGE:
		return int(isa.JumpSLT)
	case isa.JumpSGT:
		return int(isa.JumpSLE)
	case isa.JumpSLE:
		return int(isa.JumpSGT)
	case isa.JumpSLT:
		return int(isa.JumpSGE)
	}
	return -1
}

// flip turns "a op b" into "b op' a" (flip_opcode).
func flip(op isa.JumpOp) int {
	switch op {
	case isa.JumpGE:
		return int(isa.JumpLE)
	case isa.JumpGT:
		return int(isa.JumpLT)
	case isa.JumpLE:
		return int(isa.JumpGE)
	case isa.JumpLT:
		return int(isa.JumpGT)
	case isa.JumpSGE:
		return int(isa.JumpSLE)
	case isa.JumpSGT:
		return int(isa.JumpSLT)
	case isa.JumpSLE:
		return int(isa.JumpSGE)
	case isa.JumpSLT:
		return int(isa.JumpSGT)
	}
	return int(op)
}

// refine is regs_refine_cond_op: r1 op r2 is known to hold.
func refine(op int, r1, r2 *Value, wide bool) {
	switch isa.JumpOp(op) {
	case isa.JumpGE, isa.JumpGT, isa.JumpSGE, isa.JumpSGT:
		// a > b is b < a (flip_opcode).
		op = flip(isa.JumpOp(op))
		r1, r2 = r2, r1
	}
	switch {
	case op == int(isa.JumpEq):
		if !wide {
			r1.U32Min = max(r1.U32Min, r2.U32Min)
			r1.U32Max = min(r1.U32Max, r2.U32Max)
			r1.S32Min = max(r1.S32Min, r2.S32Min)
			r1.S32Max = min(r1.S32Max, r2.S32Max)
			r2.U32Min, r2.U32Max = r1.U32Min, r1.U32Max
			r2.S32Min, r2.S32Max = r1.S32Min, r1.S32Max
			t := r1.Var.Subreg().Intersect(r2.Var.Subreg())
			r1.Var = r1.Var.WithSubreg(t)
			r2.Var = r2.Var.WithSubreg(t)
		} else {
			r1.UMin = max(r1.UMin, r2.UMin)
			r1.UMax = min(r1.UMax, r2.UMax)
			r1.SMin = max(r1.SMin, r2.SMin)
			r1.SMax = min(r1.SMax, r2.SMax)
			r2.UMin, r2.UMax = r1.UMin, r1.UMax
			r2.SMin, r2.SMax = r1.SMin, r1.SMax
			r1.Var = r1.Var.Intersect(r2.Var)
			r2.Var = r1.Var
		}
	case op == int(isa.JumpNE):
		if !isConst(*r2, wide) {
			r1, r2 = r2, r1
		}
		if !isConst(*r2, wide) {
			return
		}
		// Only a bound equal to the constant can move, by one.
		val := constValue(*r2, wide)
		if !wide {
			if r1.U32Min == uint32(val) {
				r1.U32Min++
			}
			if r1.U32Max == uint32(val) {
				r1.U32Max--
			}
			if r1.S32Min == int32(val) {
				r1.S32Min++
			}
			if r1.S32Max == int32(val) {
				r1.S32Max--
			}
		} else {
			if r1.UMin == val {
				r1.UMin++
			}
			if r1.UMax == val {
				r1.UMax--
			}
			if r1.SMin == int64(val) {
				r1.SMin++
			}
			if r1.SMax == int64(val) {
				r1.SMax--
			}
		}
	case op == int(isa.JumpSet):
		if !isConst(*r2, wide) {
			r1, r2 = r2, r1
		}
		if !isConst(*r2, wide) {
			return
		}
		// Only a single-bit mask says which bit is set.
		val := constValue(*r2, wide)
		if bits.OnesCount64(val) != 1 {
			return
		}
		if !wide {
			r1.Var = r1.Var.WithSubreg(r1.Var.Subreg().Or(TnumConst(val)))
		} else {
			r1.Var = r1.Var.Or(TnumConst(val))
		}
	case op == jsetFalse:
		if !isConst(*r2, wide) {
			r1, r2 = r2, r1
		}
		if !isConst(*r2, wide) {
			return
		}
		val := constValue(*r2, wide)
		// __mark_reg_unbounded: Sync rebuilds the bounds from the tnum.
		r1.unbound64()
		r1.unbound32()
		if !wide {
			r1.Var = r1.Var.WithSubreg(r1.Var.Subreg().And(TnumConst(^val)))
		} else {
			r1.Var = r1.Var.And(TnumConst(^val))
		}
	case op == int(isa.JumpLE):
		if !wide {
			r1.U32Max = min(r1.U32Max, r2.U32Max)
			r2.U32Min = max(r1.U32Min, r2.U32Min)
		} else {
			r1.UMax = min(r1.UMax, r2.UMax)
			r2.UMin = max(r1.UMin, r2.UMin)
		}
	case op == int(isa.JumpLT):
		if !wide {
			r1.U32Max = min(r1.U32Max, r2.U32Max-1)
			r2.U32Min = max(r1.U32Min+1, r2.U32Min)
		} else {
			r1.UMax = min(r1.UMax, r2.UMax-1)
			r2.UMin = max(r1.UMin+1, r2.UMin)
		}
	case op == int(isa.JumpSLE):
		if !wide {
			r1.S32Max = min(r1.S32Max, r2.S32Max)
			r2.S32Min = max(r1.S32Min, r2.S32Min)
		} else {
			r1.SMax = min(r1.SMax, r2.SMax)
			r2.SMin = max(r1.SMin, r2.SMin)
		}
	case op == int(isa.JumpSLT):
		if !wide {
			r1.S32Max = min(r1.S32Max, r2.S32Max-1)
			r2.S32Min = max(r1.S32Min+1, r2.S32Min)
		} else {
			r1.SMax = min(r1.SMax, r2.SMax-1)
			r2.SMin = max(r1.SMin+1, r2.SMin)
		}
	}
}
