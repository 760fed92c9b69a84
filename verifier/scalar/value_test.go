package scalar

import (
	"math"
	"testing"
)

// TestValue_String: each want is a line the Linux 6.18 verifier printed
// (log level 2) for a register in that state.
func TestValue_String(t *testing.T) {
	for _, tc := range []struct {
		v    Value
		want string
	}{
		{Unknown(), "scalar()"},
		{Const(0), "0"},
		{Const(math.MaxUint64), "-1"},
		{Const(32767), "32767"},
		{Const(32768), "0x8000"},
		{Const(uint64(1<<64 - 32768)), "-32768"},
		{Const(1 << 16), "0x10000"},
		{Const(uint64(math.MaxUint64 - 40000)), "0xffffffffffff63bf"},
		{Range(0, 255), "scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))"},
		{Range(0, 0xffffffff), "scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))"},
		{Range(114, 133), "scalar(smin=umin=smin32=umin32=114,smax=umax=smax32=umax32=133,var_off=(0x0; 0xff))"},
		{
			// r7 |= 0x100; r7 = le16 r7
			Value{Var: Tnum{0x100, 0xfeff}, SMin: 256, SMax: 0xffff, UMin: 256, UMax: 0xffff,
				S32Min: 256, S32Max: 0xffff, U32Min: 256, U32Max: 0xffff},
			"scalar(smin=umin=smin32=umin32=256,smax=umax=smax32=umax32=0xffff,var_off=(0x100; 0xfeff))",
		},
		{
			// A 64-bit min that is positive and a 32-bit one that is
			// negative are the same bits but never merged.
			Value{Var: Tnum{0xffffffe0, 0x1f}, SMin: 0xffffffe8, SMax: 0xfffffff7, UMin: 0xffffffe8, UMax: 0xfffffff7,
				S32Min: -24, S32Max: -9, U32Min: 0xffffffe8, U32Max: 0xfffffff7},
			"scalar(smin=umin=umin32=0xffffffe8,smax=umax=umax32=0xfffffff7,smin32=-24,smax32=-9,var_off=(0xffffffe0; 0x1f))",
		},
		{
			Value{Var: TnumUnknown(), SMin: math.MinInt64, SMax: math.MaxInt64, UMin: 1, UMax: 0xffffffffffffff9b,
				S32Min: math.MinInt32, S32Max: math.MaxInt32, U32Max: math.MaxUint32},
			"scalar(umin=1,umax=0xffffffffffffff9b)",
		},
		{
			Value{Var: Tnum{0, 0xffffffff}, SMin: 0, SMax: 0xffffffff, UMax: 0xffffffff,
				S32Min: -255, S32Max: 0, U32Max: math.MaxUint32},
			"scalar(smin=0,smax=umax=0xffffffff,smin32=-255,smax32=0,var_off=(0x0; 0xffffffff))",
		},
		{
			Value{Var: TnumUnknown(), SMin: -100, SMax: 0, UMax: math.MaxUint64,
				S32Min: -100, S32Max: 0, U32Max: math.MaxUint32},
			"scalar(smin=smin32=-100,smax=smax32=0)",
		},
		{
			Value{Var: Tnum{0, 0x7f00000000000000}, SMin: 0, SMax: 0x7f00000000000000, UMax: 0x7f00000000000000,
				S32Min: 0, S32Max: 0, U32Max: 0},
			"scalar(smin=smin32=0,smax=umax=0x7f00000000000000,smax32=umax32=0,var_off=(0x0; 0x7f00000000000000))",
		},
		{
			Value{Var: Tnum{0, 0xffffffff0000001f}, SMin: math.MinInt64 + 8, SMax: 0x7fffffff00000017, UMin: 8, UMax: 0xffffffff00000017,
				S32Min: 8, S32Max: 23, U32Min: 8, U32Max: 23},
			"scalar(smin=0x8000000000000008,smax=0x7fffffff00000017,umin=smin32=umin32=8,umax=0xffffffff00000017,smax32=umax32=23,var_off=(0x0; 0xffffffff0000001f))",
		},
	} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("%#v.String()\n got %s\nwant %s", tc.v, got, tc.want)
		}
	}
}

func TestTnum_String(t *testing.T) {
	for _, tc := range []struct {
		t    Tnum
		want string
	}{
		{TnumConst(5), "5"},
		{TnumConst(0x12345), "0x12345"},
		{Tnum{0, 0xff}, "(0x0; 0xff)"},
		{TnumUnknown(), "(0x0; 0xffffffffffffffff)"},
	} {
		if got := tc.t.String(); got != tc.want {
			t.Errorf("%#v.String() = %s, want %s", tc.t, got, tc.want)
		}
	}
}

// TestTnum_Sound: each tnum operation holds every result of the
// concrete operation on members of its operands.
func TestTnum_Sound(t *testing.T) {
	small := []Tnum{TnumConst(0), TnumConst(5), {0, 3}, {4, 3}, {8, 0x15}, {0x10, 0x0f}, {1, 0xe}, {0, 0x3f}}
	members := func(a Tnum) []uint64 {
		var xs []uint64
		for x := uint64(0); x < 64; x++ {
			if a.Contains(x) {
				xs = append(xs, x)
			}
		}
		return xs
	}
	ops := []struct {
		name string
		abs  func(a, b Tnum) Tnum
		con  func(x, y uint64) uint64
	}{
		{"add", Tnum.Add, func(x, y uint64) uint64 { return x + y }},
		{"sub", Tnum.Sub, func(x, y uint64) uint64 { return x - y }},
		{"mul", Tnum.Mul, func(x, y uint64) uint64 { return x * y }},
		{"and", Tnum.And, func(x, y uint64) uint64 { return x & y }},
		{"or", Tnum.Or, func(x, y uint64) uint64 { return x | y }},
		{"xor", Tnum.Xor, func(x, y uint64) uint64 { return x ^ y }},
	}
	for _, op := range ops {
		for _, a := range small {
			for _, b := range small {
				r := op.abs(a, b)
				for _, x := range members(a) {
					for _, y := range members(b) {
						if z := op.con(x, y); !r.Contains(z) {
							t.Errorf("%s: %v %v -> %v misses %d %s %d = %d", op.name, a, b, r, x, op.name, y, z)
						}
					}
				}
				u := a.Union(b)
				if !u.In(a) || !u.In(b) {
					t.Errorf("%v.Union(%v) = %v does not hold both", a, b, u)
				}
				if a.Overlap(b) {
					in := a.Intersect(b)
					for _, x := range members(a) {
						if b.Contains(x) && !in.Contains(x) {
							t.Errorf("%v.Intersect(%v) = %v misses %d", a, b, in, x)
						}
					}
				}
			}
			for _, x := range members(a) {
				if n := a.Neg(); !n.Contains(-x) {
					t.Errorf("%v.Neg() = %v misses %d", a, n, -x)
				}
			}
		}
	}
	for _, tc := range []struct {
		min, max uint64
		want     Tnum
	}{
		{0, 0, TnumConst(0)},
		{0, 255, Tnum{0, 0xff}},
		{4, 7, Tnum{4, 3}},
		{0x10, 0x1f, Tnum{0x10, 0xf}},
		{0, math.MaxUint64, TnumUnknown()},
		{1 << 63, math.MaxUint64, Tnum{1 << 63, math.MaxInt64}},
	} {
		if got := TnumRange(tc.min, tc.max); got != tc.want {
			t.Errorf("TnumRange(%#x, %#x) = %v, want %v", tc.min, tc.max, got, tc.want)
		}
	}
}
