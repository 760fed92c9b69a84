package scalar

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

// The soundness properties: for abstract states and concrete numbers in
// them, the concrete result of an instruction (computed by isa's RFC 9669
// reference semantics) is in the abstract result.

// interesting draws a number of a kind that exercises the bounds' corner
// cases: small, around the 32- and 64-bit sign and carry boundaries, or
// anything.
func interesting(r *rand.Rand) uint64 {
	switch r.IntN(8) {
	case 0:
		return r.Uint64()
	case 1:
		return uint64(r.IntN(300))
	case 2:
		return uint64(-int64(r.IntN(300)))
	case 3:
		return uint64(1)<<31 + uint64(int64(r.IntN(16)-8))
	case 4:
		return uint64(1)<<32 + uint64(int64(r.IntN(16)-8))
	case 5:
		return uint64(1)<<63 + uint64(int64(r.IntN(16)-8))
	case 6:
		return uint64(r.IntN(64))
	default:
		return r.Uint64() >> r.IntN(64)
	}
}

// abstractOf builds a Value holding all of xs: their tnum union with some
// bits forgotten, and bounds around them with some slack or none, then
// Sync; or, sometimes, the constant xs[0] (so callers take xs[:1] when
// IsConst). It fails the test if Sync loses one of xs.
func abstractOf(tb testing.TB, r *rand.Rand, xs ...uint64) Value {
	tb.Helper()
	if r.IntN(8) == 0 {
		return Const(xs[0])
	}
	t := TnumConst(xs[0])
	for _, x := range xs[1:] {
		t = t.Union(TnumConst(x))
	}
	if r.IntN(2) == 0 {
		forget := r.Uint64() & r.Uint64()
		t = Tnum{Value: t.Value &^ forget, Mask: t.Mask | forget}
	}
	v := Unknown()
	v.Var = t
	umin, umax := xs[0], xs[0]
	smin, smax := int64(xs[0]), int64(xs[0])
	u32min, u32max := uint32(xs[0]), uint32(xs[0])
	s32min, s32max := int32(xs[0]), int32(xs[0])
	for _, x := range xs[1:] {
		umin, umax = min(umin, x), max(umax, x)
		smin, smax = min(smin, int64(x)), max(smax, int64(x))
		u32min, u32max = min(u32min, uint32(x)), max(u32max, uint32(x))
		s32min, s32max = min(s32min, int32(x)), max(s32max, int32(x))
	}
	slack := func() uint64 { return uint64(r.IntN(4)) << (r.IntN(4) * 8) }
	if r.IntN(3) != 0 {
		v.UMin = subSat(umin, slack())
		v.UMax = addSat(umax, slack())
	}
	if r.IntN(3) != 0 {
		v.SMin = int64(max(uint64(smin)-slack(), 0)) // wrap tolerated below
		if v.SMin > smin {
			v.SMin = math.MinInt64
		}
		v.SMax = smax + int64(slack())
		if v.SMax < smax {
			v.SMax = math.MaxInt64
		}
	}
	if r.IntN(3) != 0 {
		v.U32Min = uint32(subSat(uint64(u32min), slack()))
		if d := uint32(slack()); u32max+d >= u32max {
			v.U32Max = u32max + d
		} else {
			v.U32Max = math.MaxUint32
		}
	}
	if r.IntN(3) != 0 {
		v.S32Min, v.S32Max = s32min, s32max
	}
	for _, x := range xs {
		if !v.Contains(x) {
			tb.Fatalf("BUG: generator: %v does not hold %#x", v, x)
		}
	}
	before := v
	v.Sync()
	for _, x := range xs {
		if !v.Contains(x) {
			tb.Fatalf("Sync(%#v) = %v, lost %#x", before, v, x)
		}
	}
	if !v.Consistent() {
		tb.Fatalf("Sync(%#v) = %#v, inconsistent", before, v)
	}
	return v
}

func subSat(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

func addSat(a, b uint64) uint64 {
	if a+b < a {
		return math.MaxUint64
	}
	return a + b
}

// alus are the arithmetic instruction forms: op, and off (sdiv/smod,
// movsx) and imm (byte swap width) where they matter.
var alus = func() []aluForm {
	var fs []aluForm
	for _, op := range []isa.ALUOp{isa.ALUAdd, isa.ALUSub, isa.ALUMul, isa.ALUOr, isa.ALUAnd,
		isa.ALULsh, isa.ALURsh, isa.ALUXor, isa.ALUArsh, isa.ALUNeg} {
		fs = append(fs, aluForm{op: op, wide: true}, aluForm{op: op})
	}
	for _, off := range []int16{0, 1} {
		for _, op := range []isa.ALUOp{isa.ALUDiv, isa.ALUMod} {
			fs = append(fs, aluForm{op: op, wide: true, off: off}, aluForm{op: op, off: off})
		}
	}
	for _, off := range []int16{0, 8, 16, 32} {
		fs = append(fs, aluForm{op: isa.ALUMov, wide: true, off: off})
		if off != 32 {
			fs = append(fs, aluForm{op: isa.ALUMov, off: off})
		}
	}
	for _, w := range []int32{16, 32, 64} {
		fs = append(fs, aluForm{op: isa.ALUEnd, wide: true, imm: w},
			aluForm{op: isa.ALUEnd, imm: w}, aluForm{op: isa.ALUEnd, imm: w, be: true})
	}
	return fs
}()

type aluForm struct {
	op   isa.ALUOp
	wide bool
	off  int16
	imm  int32
	be   bool
}

func (f aluForm) String() string {
	w := "32"
	if f.wide {
		w = "64"
	}
	return fmt.Sprintf("%#x/%s/off%d/imm%d/be%v", uint8(f.op), w, f.off, f.imm, f.be)
}

// checkALU checks one abstract step against the concrete pairs.
func checkALU(tb testing.TB, f aluForm, a, b Value, as, bs []uint64) {
	tb.Helper()
	got := ALU(f.op, f.wide, f.off, f.imm, f.be, a, b)
	if !got.Consistent() {
		tb.Fatalf("%v: ALU(%#v, %#v) = %#v: inconsistent", f, a, b, got)
	}
	for _, x := range as {
		for _, y := range bs {
			want := isa.ALU(f.op, f.wide, f.off, f.imm, f.be, x, y)
			if !got.Contains(want) {
				tb.Fatalf("%v: %#x op %#x = %#x, not in ALU(%v, %v) = %v (%#v)", f, x, y, want, a, b, got, got)
			}
		}
	}
}

// checkFork checks that Fork's two states hold every number of dst.
func checkFork(tb testing.TB, op isa.ALUOp, a, b Value, as []uint64) {
	tb.Helper()
	neg, zero, ok := Fork(op, a, b)
	if !ok {
		return
	}
	for _, x := range as {
		if !neg.Contains(x) && !zero.Contains(x) {
			tb.Fatalf("Fork(%#x, %v, %v) = %v, %v: neither holds %#x", uint8(op), a, b, neg, zero, x)
		}
	}
}

// jumps are the conditional jumps.
var jumps = []isa.JumpOp{isa.JumpEq, isa.JumpNE, isa.JumpGT, isa.JumpGE, isa.JumpLT, isa.JumpLE,
	isa.JumpSGT, isa.JumpSGE, isa.JumpSLT, isa.JumpSLE, isa.JumpSet}

// checkBranch checks BranchTaken and Refine against the concrete pairs.
func checkBranch(tb testing.TB, op isa.JumpOp, wide bool, a, b Value, as, bs []uint64) {
	tb.Helper()
	pred := BranchTaken(op, a, b, wide)
	tA, tB := Refine(op, a, b, wide, true)
	fA, fB := Refine(op, a, b, wide, false)
	for _, x := range as {
		for _, y := range bs {
			taken := isa.Cond(op, x, y, wide)
			if pred == Always && !taken || pred == Never && taken {
				tb.Fatalf("jump %#x wide=%v: BranchTaken(%v, %v) = %v, but %#x, %#x gives taken=%v", uint8(op), wide, a, b, pred, x, y, taken)
			}
			if pred != Maybe {
				continue
			}
			ra, rb := fA, fB
			if taken {
				ra, rb = tA, tB
			}
			if !ra.Contains(x) || !rb.Contains(y) || !ra.Consistent() || !rb.Consistent() {
				tb.Fatalf("jump %#x wide=%v taken=%v: %#x, %#x in %v, %v; refined to %v, %v (%#v, %#v)",
					uint8(op), wide, taken, x, y, a, b, ra, rb, ra, rb)
			}
		}
	}
}

// checkSelf checks BranchTaken and RefineSelf for a register compared with
// itself.
func checkSelf(tb testing.TB, op isa.JumpOp, wide bool, a Value, as []uint64) {
	tb.Helper()
	pred := BranchTaken(op, a, a, wide)
	for _, x := range as {
		taken := isa.Cond(op, x, x, wide)
		if pred == Always && !taken || pred == Never && taken {
			tb.Fatalf("jump %#x wide=%v: BranchTaken(%v, itself) = %v, but %#x gives taken=%v", uint8(op), wide, a, pred, x, taken)
		}
		if pred != Maybe {
			continue
		}
		if r := RefineSelf(op, a, wide, taken); !r.Contains(x) {
			tb.Fatalf("jump %#x wide=%v taken=%v: %#x in %v, refined to %v", uint8(op), wide, taken, x, a, r)
		}
	}
}

// samples draws 1 to 3 numbers, and the abstract value built from them.
func samples(tb testing.TB, r *rand.Rand) (Value, []uint64) {
	xs := make([]uint64, 1+r.IntN(3))
	for i := range xs {
		xs[i] = interesting(r)
	}
	v := abstractOf(tb, r, xs...)
	if v.IsConst() {
		return v, xs[:1]
	}
	// More members: random fills of the tnum that happen to be in v.
	for range 4 {
		x := v.Var.Value | r.Uint64()&v.Var.Mask
		if v.Contains(x) {
			xs = append(xs, x)
		}
	}
	return v, xs
}

func TestALU_Sound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		a, as := samples(t, r)
		b, bs := samples(t, r)
		for _, f := range alus {
			checkALU(t, f, a, b, as, bs)
		}
		checkFork(t, isa.ALUAnd, a, b, as)
	}
}

func TestBranch_Sound(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		a, as := samples(t, r)
		b, bs := samples(t, r)
		if r.IntN(3) == 0 { // a BPF_K jump: b is a sign-extended imm
			c := uint64(int64(int32(interesting(r))))
			b, bs = Const(c), []uint64{c}
		}
		for _, op := range jumps {
			checkBranch(t, op, true, a, b, as, bs)
			checkBranch(t, op, false, a, b, as, bs)
			checkSelf(t, op, true, a, as)
			checkSelf(t, op, false, a, as)
		}
	}
}

// FuzzScalar is both soundness properties, driven by the fuzzer: the
// operands' first members come from the input, so coverage guides it to
// the corners of the bounds code.
func FuzzScalar(f *testing.F) {
	f.Add(uint64(0), uint64(1), uint64(5), uint64(0xff), uint64(1), uint8(0))
	f.Add(uint64(1)<<63, uint64(math.MaxUint64), uint64(31), uint64(32), uint64(7), uint8(40))
	f.Add(uint64(0x7fffffff), uint64(0x80000000), uint64(0xffffffff), uint64(1)<<32, uint64(99), uint8(77))
	f.Fuzz(func(t *testing.T, a0, a1, b0, b1, seed uint64, sel uint8) {
		r := rand.New(rand.NewPCG(seed, uint64(sel)))
		as := []uint64{a0, a1}
		bs := []uint64{b0, b1}
		if sel&1 != 0 {
			as = as[:1]
		}
		if sel&2 != 0 {
			bs = bs[:1]
		}
		a := abstractOf(t, r, as...)
		if a.IsConst() {
			as = as[:1]
		}
		b := abstractOf(t, r, bs...)
		if b.IsConst() {
			bs = bs[:1]
		}
		f := alus[int(sel)%len(alus)]
		checkALU(t, f, a, b, as, bs)
		checkFork(t, f.op, a, b, as)
		// A chain: the result of one step is the operand of the next.
		c := ALU(f.op, f.wide, f.off, f.imm, f.be, a, b)
		var cs []uint64
		for _, x := range as {
			for _, y := range bs {
				cs = append(cs, isa.ALU(f.op, f.wide, f.off, f.imm, f.be, x, y))
			}
		}
		g := alus[int(seed%uint64(len(alus)))]
		checkALU(t, g, c, b, cs, bs)
		op := jumps[int(sel>>2)%len(jumps)]
		checkBranch(t, op, sel&0x80 != 0, a, b, as, bs)
		checkBranch(t, op, sel&0x80 != 0, c, a, cs, as)
		checkSelf(t, op, sel&0x40 != 0, c, cs)
	})
}

// TestFork: the kernel splits and/or on a register that is -1 or 0, in
// 64 bits or in the low 32, and only with a constant operand.
func TestFork(t *testing.T) {
	minus1or0 := Unknown()
	minus1or0.SMin, minus1or0.SMax = -1, 0
	minus1or0.Sync()
	low := Unknown()
	low.S32Min, low.S32Max = -1, 0
	low.Sync()
	for _, tc := range []struct {
		name      string
		op        isa.ALUOp
		dst, src  Value
		ok        bool
		neg, zero uint64 // a member of each side
	}{
		{"and64", isa.ALUAnd, minus1or0, Const(5), true, math.MaxUint64, 0},
		{"or64", isa.ALUOr, minus1or0, Const(5), true, math.MaxUint64, 0},
		{"and32", isa.ALUAnd, low, Const(5), true, 0x12345678ffffffff, 0x1234567800000000},
		{"xor", isa.ALUXor, minus1or0, Const(5), false, 0, 0},
		{"src_unknown", isa.ALUAnd, minus1or0, Range(0, 7), false, 0, 0},
		{"dst_wider", isa.ALUAnd, Range(0, 1), Const(5), false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			neg, zero, ok := Fork(tc.op, tc.dst, tc.src)
			if ok != tc.ok {
				t.Fatalf("Fork(%v, %v) ok = %v", tc.dst, tc.src, ok)
			}
			if !ok {
				return
			}
			if !neg.Contains(tc.neg) || neg.Contains(tc.zero) || !zero.Contains(tc.zero) || zero.Contains(tc.neg) {
				t.Errorf("Fork(%v) = %v, %v", tc.dst, neg, zero)
			}
		})
	}
}
