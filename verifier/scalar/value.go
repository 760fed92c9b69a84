package scalar

import (
	"fmt"
	"math"
	"strings"
)

// Value is the abstract value of a scalar register: the numbers x with
//
//	Var.Contains(x)
//	SMin <= int64(x) <= SMax        UMin <= x <= UMax
//	S32Min <= int32(x) <= S32Max    U32Min <= uint32(x) <= U32Max
//
// (the var_off, smin_value ... u32_max_value fields of the kernel's struct
// bpf_reg_state). The nine facts are redundant on purpose: each is cheap to
// update for some operations and each can sharpen the others, which Sync
// does. The zero Value is not meaningful; start from Unknown or Const.
type Value struct {
	Var            Tnum
	SMin, SMax     int64
	UMin, UMax     uint64
	S32Min, S32Max int32
	U32Min, U32Max uint32
}

// Unknown is a scalar about which nothing is known (__mark_reg_unknown).
func Unknown() Value {
	v := Value{Var: TnumUnknown()}
	v.unbound64()
	v.unbound32()
	return v
}

// Const is the scalar that is exactly c (__mark_reg_known).
func Const(c uint64) Value {
	return Value{
		Var:  TnumConst(c),
		SMin: int64(c), SMax: int64(c),
		UMin: c, UMax: c,
		S32Min: int32(c), S32Max: int32(c),
		U32Min: uint32(c), U32Max: uint32(c),
	}
}

// Range is the scalar known to lie in [min, max] unsigned, with the other
// facts deduced from that (as after "if r > max goto" on an unknown).
func Range(min, max uint64) Value {
	v := Unknown()
	v.UMin, v.UMax = min, max
	v.Sync()
	return v
}

// Contains reports whether the concrete number x is one of v's.
func (v Value) Contains(x uint64) bool {
	return v.Var.Contains(x) &&
		v.SMin <= int64(x) && int64(x) <= v.SMax &&
		v.UMin <= x && x <= v.UMax &&
		v.S32Min <= int32(x) && int32(x) <= v.S32Max &&
		v.U32Min <= uint32(x) && uint32(x) <= v.U32Max
}

// IsConst reports whether v is a single known number (tnum_is_const of
// var_off: how the kernel decides that a register is a constant).
func (v Value) IsConst() bool { return v.Var.IsConst() }

// IsConst32 reports whether the low 32 bits are known (tnum_subreg_is_const).
func (v Value) IsConst32() bool { return v.Var.Subreg().IsConst() }

// Consistent reports whether v passes the kernel's reg_bounds_sanity_check:
// every range non-empty, and constant tnums agreeing with the ranges. A
// Value that fails it stands for no number; the kernel reports "REG
// INVARIANTS VIOLATION" for one.
func (v Value) Consistent() bool {
	if v.UMin > v.UMax || v.SMin > v.SMax || v.U32Min > v.U32Max || v.S32Min > v.S32Max {
		return false
	}
	if v.Var.Value&v.Var.Mask != 0 {
		return false
	}
	if c := v.Var.Value; v.Var.IsConst() &&
		(v.UMin != c || v.UMax != c || v.SMin != int64(c) || v.SMax != int64(c)) {
		return false
	}
	if s := v.Var.Subreg(); s.IsConst() {
		c := uint32(s.Value)
		if v.U32Min != c || v.U32Max != c || v.S32Min != int32(c) || v.S32Max != int32(c) {
			return false
		}
	}
	return true
}

func (v *Value) unbound64() {
	v.SMin, v.SMax = math.MinInt64, math.MaxInt64
	v.UMin, v.UMax = 0, math.MaxUint64
}

func (v *Value) unbound32() {
	v.S32Min, v.S32Max = math.MinInt32, math.MaxInt32
	v.U32Min, v.U32Max = 0, math.MaxUint32
}

// Sync makes the nine facts agree with each other as far as the kernel
// can (reg_bounds_sync): bounds from the tnum, signed from unsigned and
// back, 32-bit from 64-bit and back, then tnum bits from the bounds.
func (v *Value) Sync() {
	v.updateBounds()
	v.deduceBounds()
	v.deduceBounds()
	v.deduceBounds()
	v.boundOffset()
	v.updateBounds()
}

// sanitize is what reg_bounds_sanity_check does to a Value that stands for
// no number (a refined side that cannot happen): the ranges become
// unbounded and the tnum stays.
func (v *Value) sanitize() {
	if !v.Consistent() {
		v.unbound64()
		v.unbound32()
	}
}

// updateBounds is __update_reg_bounds: what the tnum alone proves.
func (v *Value) updateBounds() {
	v.updateBounds32()
	v.updateBounds64()
}

func (v *Value) updateBounds32() {
	t := v.Var.Subreg()
	v.S32Min = max(v.S32Min, int32(uint32(t.Value)|uint32(t.Mask)&(1<<31)))
	v.S32Max = min(v.S32Max, int32(uint32(t.Value)|uint32(t.Mask)&math.MaxInt32))
	v.U32Min = max(v.U32Min, uint32(t.Value))
	v.U32Max = min(v.U32Max, uint32(t.Value|t.Mask))
}

func (v *Value) updateBounds64() {
	t := v.Var
	v.SMin = max(v.SMin, int64(t.Value|t.Mask&(1<<63)))
	v.SMax = min(v.SMax, int64(t.Value|t.Mask&math.MaxInt64))
	v.UMin = max(v.UMin, t.Value)
	v.UMax = min(v.UMax, t.Value|t.Mask)
	// When the tnum and the unsigned range share a single number, that is
	// the value (__update_reg64_bounds of Linux 6.18's stable series). On
	// a dead state, where they share none, this picks a number as the
	// kernel does, so that the logs stay comparable.
	if t.IsConst() {
		return
	}
	tmax := t.Value | t.Mask
	step := func(z uint64) uint64 {
		if n, ok := t.Next(z); ok {
			return n
		}
		return tmax
	}
	next := step(v.UMin)
	uminIn := t.Contains(v.UMin)
	switch {
	case uminIn && next > v.UMax:
		*v = Const(v.UMin)
	case !uminIn && next == tmax:
		*v = Const(tmax)
	case !uminIn && next <= v.UMax && step(next) > v.UMax:
		*v = Const(next)
	}
}

// deduceBounds is __reg_deduce_bounds.
func (v *Value) deduceBounds() {
	v.deduce32()
	v.deduce64()
	v.deduceMixed()
}

// deduce32 is __reg32_deduce_bounds: 32-bit bounds from 64-bit ones whose
// upper halves agree (or are two consecutive numbers around a sign
// change), then s32 and u32 from each other.
func (v *Value) deduce32() {
	if v.UMin>>32 == v.UMax>>32 {
		v.U32Min = max(v.U32Min, uint32(v.UMin))
		v.U32Max = min(v.U32Max, uint32(v.UMax))
		if int32(v.UMin) <= int32(v.UMax) {
			v.S32Min = max(v.S32Min, int32(v.UMin))
			v.S32Max = min(v.S32Max, int32(v.UMax))
		}
	}
	if v.SMin>>32 == v.SMax>>32 {
		if uint32(v.SMin) <= uint32(v.SMax) {
			v.U32Min = max(v.U32Min, uint32(v.SMin))
			v.U32Max = min(v.U32Max, uint32(v.SMax))
		}
		if int32(v.SMin) <= int32(v.SMax) {
			v.S32Min = max(v.S32Min, int32(v.SMin))
			v.S32Max = min(v.S32Max, int32(v.SMax))
		}
	}
	if uint32(v.UMin>>32)+1 == uint32(v.UMax>>32) && int32(v.UMin) < 0 && int32(v.UMax) >= 0 {
		v.S32Min = max(v.S32Min, int32(v.UMin))
		v.S32Max = min(v.S32Max, int32(v.UMax))
	}
	if uint32(v.SMin>>32)+1 == uint32(v.SMax>>32) && int32(v.SMin) < 0 && int32(v.SMax) >= 0 {
		v.S32Min = max(v.S32Min, int32(v.SMin))
		v.S32Max = min(v.S32Max, int32(v.SMax))
	}
	if int32(v.U32Min) <= int32(v.U32Max) {
		v.S32Min = max(v.S32Min, int32(v.U32Min))
		v.S32Max = min(v.S32Max, int32(v.U32Max))
	}
	if uint32(v.S32Min) <= uint32(v.S32Max) {
		v.U32Min = max(v.U32Min, uint32(v.S32Min))
		v.U32Max = min(v.U32Max, uint32(v.S32Max))
	} else if v.U32Max < uint32(v.S32Min) {
		// The u32 range lies in the non-negative part of a s32 range
		// that wraps: both shrink to that part.
		v.S32Min = int32(v.U32Min)
		v.U32Max = min(v.U32Max, uint32(v.S32Max))
	} else if uint32(v.S32Max) < v.U32Min {
		// ... or in its negative part.
		v.S32Max = int32(v.U32Max)
		v.U32Min = max(v.U32Min, uint32(v.S32Min))
	}
}

// deduce64 is __reg64_deduce_bounds: s64 and u64 from each other when the
// range does not cross the sign boundary in the other's order.
func (v *Value) deduce64() {
	if int64(v.UMin) <= int64(v.UMax) {
		v.SMin = max(v.SMin, int64(v.UMin))
		v.SMax = min(v.SMax, int64(v.UMax))
	}
	if uint64(v.SMin) <= uint64(v.SMax) {
		v.UMin = max(v.UMin, uint64(v.SMin))
		v.UMax = min(v.UMax, uint64(v.SMax))
	} else if v.UMax < uint64(v.SMin) {
		v.SMin = int64(v.UMin)
		v.UMax = min(v.UMax, uint64(v.SMax))
	} else if uint64(v.SMax) < v.UMin {
		v.SMax = int64(v.UMax)
		v.UMin = max(v.UMin, uint64(v.SMin))
	}
}

// deduceMixed is __reg_deduce_mixed_bounds: 64-bit bounds tightened by
// substituting the 32-bit bounds into their low halves.
func (v *Value) deduceMixed() {
	const hi = ^uint64(math.MaxUint32)
	v.UMin = max(v.UMin, v.UMin&hi|uint64(v.U32Min))
	v.UMax = min(v.UMax, v.UMax&hi|uint64(v.U32Max))
	v.SMin = max(v.SMin, int64(uint64(v.SMin)&hi|uint64(v.U32Min)))
	v.SMax = min(v.SMax, int64(uint64(v.SMax)&hi|uint64(v.U32Max)))
	if uint32(v.S32Min) <= uint32(v.S32Max) {
		v.UMin = max(v.UMin, v.UMin&hi|uint64(uint32(v.S32Min)))
		v.UMax = min(v.UMax, v.UMax&hi|uint64(uint32(v.S32Max)))
		v.SMin = max(v.SMin, int64(uint64(v.SMin)&hi|uint64(uint32(v.S32Min))))
		v.SMax = min(v.SMax, int64(uint64(v.SMax)&hi|uint64(uint32(v.S32Max))))
	}
	// A sign-extended 32-bit number whose low half is non-negative cannot
	// have all-ones upper bits.
	if v.S32Min >= 0 && v.SMin >= math.MinInt32 && v.SMax <= math.MaxInt32 {
		v.SMin, v.SMax = int64(v.S32Min), int64(v.S32Max)
		v.UMin, v.UMax = uint64(v.S32Min), uint64(v.S32Max)
		v.Var = v.Var.Intersect(TnumRange(uint64(v.SMin), uint64(v.SMax)))
	}
}

// boundOffset is __reg_bound_offset: tnum bits from the unsigned ranges.
func (v *Value) boundOffset() {
	t64 := v.Var.Intersect(TnumRange(v.UMin, v.UMax))
	t32 := t64.Subreg().Intersect(TnumRange(uint64(v.U32Min), uint64(v.U32Max)))
	v.Var = t64.ClearSubreg().Or(t32)
}

// String prints v as the kernel's verifier log prints a scalar register
// (print_reg_state, print_scalar_ranges and tnum_strn of Linux 6.12): a
// constant as a number, otherwise "scalar(...)" listing only the bounds
// that say something, with equal neighbours merged ("smin=umin=0"), and
// the tnum unless it is unknown. Numbers from -32768 to 65535 print in
// decimal, others in hex.
func (v Value) String() string {
	if v.Var.IsConst() {
		return formatSnum(int64(v.Var.Value))
	}
	type minmax struct {
		name   string
		val    uint64
		omit   bool
		signed bool
	}
	s32 := func(x int32) uint64 {
		if isSnumDecimal(int64(x)) {
			return uint64(int64(x))
		}
		return uint64(uint32(x))
	}
	m := [...]minmax{
		{"smin", uint64(v.SMin), v.SMin == math.MinInt64, true},
		{"smax", uint64(v.SMax), v.SMax == math.MaxInt64, true},
		{"umin", v.UMin, v.UMin == 0, false},
		{"umax", v.UMax, v.UMax == math.MaxUint64, false},
		{"smin32", s32(v.S32Min), v.S32Min == math.MinInt32, true},
		{"smax32", s32(v.S32Max), v.S32Max == math.MaxInt32, true},
		{"umin32", uint64(v.U32Min), v.U32Min == 0, false},
		{"umax32", uint64(v.U32Max), v.U32Max == math.MaxUint32, false},
	}
	var b strings.Builder
	b.WriteString("scalar(")
	sep := ""
	for i := range m {
		m1 := &m[i]
		if m1.omit {
			continue
		}
		neg1 := m1.signed && int64(m1.val) < 0
		b.WriteString(sep + m1.name + "=")
		sep = ","
		// Same-kind bounds (min with min, max with max) two or more
		// places on that print the same number are printed together.
		for j := i + 2; j < len(m); j += 2 {
			m2 := &m[j]
			if m2.omit || m2.val != m1.val {
				continue
			}
			if neg2 := m2.signed && int64(m2.val) < 0; neg2 != neg1 {
				continue
			}
			m2.omit = true
			b.WriteString(m2.name + "=")
		}
		if m1.signed {
			b.WriteString(formatSnum(int64(m1.val)))
		} else {
			b.WriteString(formatUnum(m1.val))
		}
	}
	if !v.Var.IsUnknown() {
		b.WriteString(sep + "var_off=" + v.Var.String())
	}
	b.WriteString(")")
	return b.String()
}

func isSnumDecimal(x int64) bool { return x >= math.MinInt16 && x <= math.MaxInt16 }

func formatSnum(x int64) string {
	if isSnumDecimal(x) {
		return fmt.Sprint(x)
	}
	return fmt.Sprintf("%#x", uint64(x))
}

func formatUnum(x uint64) string {
	if x <= math.MaxUint16 {
		return fmt.Sprint(x)
	}
	return fmt.Sprintf("%#x", x)
}

// Truncate returns v cut to its low size bytes (1, 2 or 4) and
// zero-extended, as a load of size bytes or a narrowing fill leaves a
// register (coerce_reg_to_size). Size 8 returns v.
func (v Value) Truncate(size int) Value {
	if size >= 8 {
		return v
	}
	v.truncate(size)
	return v
}

// SignExtend returns v cut to its low size bytes (1, 2 or 4) and
// sign-extended to 64 bits, as a sign-extending load leaves a register
// (coerce_reg_to_size_sx). Size 8 returns v.
func (v Value) SignExtend(size int) Value {
	if size >= 8 {
		return v
	}
	v.sext64(size)
	v.Sync()
	return v
}

// Within reports whether every number of v is one of old's: old's ranges
// hold v's and old's tnum holds v's (range_within and tnum_in, how the
// kernel decides that an explored state covers the current one).
func (v Value) Within(old Value) bool {
	return old.SMin <= v.SMin && v.SMax <= old.SMax &&
		old.UMin <= v.UMin && v.UMax <= old.UMax &&
		old.S32Min <= v.S32Min && v.S32Max <= old.S32Max &&
		old.U32Min <= v.U32Min && v.U32Max <= old.U32Max &&
		old.Var.In(v.Var)
}
