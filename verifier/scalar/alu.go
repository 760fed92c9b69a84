package scalar

import (
	"math"
	"math/bits"

	"github.com/waggle-bpf/waggle/isa"
)

// ALU is the abstract counterpart of isa.ALU: the Value of dst after the
// arithmetic instruction op (64-bit when wide, otherwise 32-bit with the
// result zero-extended) on scalar operands dst and src. src is the second
// operand already selected, Const(uint64(int64(imm))) for BPF_K, as the
// kernel does. off selects sdiv/smod (1) or movsx (8, 16, 32); imm is the
// byte-swap width and be selects BPF_TO_BE, as in isa.ALU.
//
// It follows check_alu_op and adjust_scalar_min_max_vals of Linux 6.12
// with the changes up to 6.18 (the verifier's "linux" target) that show in
// 6.18's log: neg and byte swaps are tracked, mul keeps signed bounds,
// add and sub keep an unsigned range whose both ends wrap, tnum_mul is the
// union-based one. Where the kernel gives up, so does ALU, and the result
// is Unknown(): div and mod, and shifts whose amount is not a known
// constant below the operand width. (The kernel rejects a BPF_K shift by
// the width or more, and a BPF_K div or mod by 0, before it gets here;
// those are the verifier's to reject.)
//
// Before an and or or with a constant the kernel may split the path in
// two (see Fork); ALU itself returns the single state that covers both.
func ALU(op isa.ALUOp, wide bool, off int16, imm int32, be bool, dst, src Value) Value {
	switch op {
	case isa.ALUMov:
		return mov(wide, off, src)
	case isa.ALUDiv, isa.ALUMod:
		// is_safe_to_compute_dst_reg_range refuses div and mod.
		return Unknown()
	case isa.ALUEnd:
		d := dst
		d.byteSwap(wide || be, int(imm))
		d.Sync()
		return d
	case isa.ALUNeg:
		// 0 - dst, with dst as the subtrahend.
		d := Const(0)
		d.sub32(dst)
		d.sub64(dst)
		d.Var = dst.Var.Neg()
		if !wide {
			d.zext32()
		}
		d.Sync()
		return d
	}
	if !safeToCompute(op, wide, src) {
		return Unknown()
	}
	d := dst
	switch op {
	case isa.ALUAdd:
		d.add32(src)
		d.add64(src)
		d.Var = d.Var.Add(src.Var)
	case isa.ALUSub:
		d.sub32(src)
		d.sub64(src)
		d.Var = d.Var.Sub(src.Var)
	case isa.ALUMul:
		d.Var = d.Var.Mul(src.Var)
		d.mul32(src)
		d.mul64(src)
	case isa.ALUAnd:
		d.Var = d.Var.And(src.Var)
		d.and32(src)
		d.and64(src)
	case isa.ALUOr:
		d.Var = d.Var.Or(src.Var)
		d.or32(src)
		d.or64(src)
	case isa.ALUXor:
		d.Var = d.Var.Xor(src.Var)
		d.xor32(src)
		d.xor64(src)
	case isa.ALULsh:
		if wide {
			d.lsh64(src)
		} else {
			d.lsh32(src)
		}
	case isa.ALURsh:
		if wide {
			d.rsh64(src)
		} else {
			d.rsh32(src)
		}
	case isa.ALUArsh:
		if wide {
			d.arsh64(src)
		} else {
			d.arsh32(src)
		}
	default:
		return Unknown()
	}
	if !wide {
		d.zext32()
	}
	d.Sync()
	return d
}

// Fork is maybe_fork_scalars: before "dst &= src" or "dst |= src" with a
// constant src (op as for ALU, either width), when dst is -1 or 0 (as a 64-bit
// number, or else in its low 32 bits), the kernel explores the two cases
// apart, because the result is then exactly known on each. ok reports
// whether it does; minusOne is dst on the current path, and zero is dst on
// a path the verifier pushes to run the same instruction again (the
// kernel's log shows it as "from 7 to 7"). The 32-bit case sets only the
// low half.
func Fork(op isa.ALUOp, dst, src Value) (minusOne, zero Value, ok bool) {
	if op != isa.ALUAnd && op != isa.ALUOr || !src.Var.IsConst() {
		return dst, dst, false
	}
	switch {
	case dst.SMin == -1 && dst.SMax == 0:
		return Const(math.MaxUint64), Const(0), true
	case dst.S32Min == -1 && dst.S32Max == 0:
		minusOne, zero = dst, dst
		minusOne.setConst32(math.MaxUint32)
		zero.setConst32(0)
		return minusOne, zero, true
	}
	return dst, dst, false
}

// safeToCompute is is_safe_to_compute_dst_reg_range: shifts need a known
// amount below the width (checked, as in the kernel, against the 64-bit
// umax even for 32-bit shifts).
func safeToCompute(op isa.ALUOp, wide bool, src Value) bool {
	switch op {
	case isa.ALUAdd, isa.ALUSub, isa.ALUAnd, isa.ALUXor, isa.ALUOr, isa.ALUMul:
		return true
	case isa.ALULsh, isa.ALURsh, isa.ALUArsh:
		var known bool
		width := uint64(64)
		if wide {
			known = src.Var.IsConst() && src.SMin == src.SMax && src.UMin == src.UMax
		} else {
			width = 32
			known = src.IsConst32() && src.S32Min == src.S32Max && src.U32Min == src.U32Max
		}
		return known && src.UMax < width
	}
	return false
}

// mov is the BPF_MOV part of check_alu_op for a scalar source.
func mov(wide bool, off int16, src Value) Value {
	d := src
	if wide {
		if off != 0 {
			d.sext64(int(off) / 8)
		}
		return d
	}
	if off != 0 {
		d.sext32(int(off) / 8)
	}
	d.zext32()
	d.Sync()
	return d
}

// byteSwap is BPF_END on a little-endian host as Linux 6.18 tracks it:
// a swap (bswap, or to big-endian) swaps the tnum's bytes and forgets the
// bounds; then a 16- or 32-bit form truncates (coerce_reg_to_size). The
// caller syncs; a 32-bit class BPF_END is not zero-extended again, since
// le64/be64 keep all 64 bits.
func (v *Value) byteSwap(swap bool, width int) {
	if width != 16 && width != 32 {
		width = 64
	}
	if swap {
		v.Var = v.Var.Bswap(width)
		v.unbound64()
		v.unbound32()
	}
	if width < 64 {
		v.truncate(width / 8)
	}
}

// truncate is coerce_reg_to_size: keep the low size (1, 2 or 4) bytes.
func (v *Value) truncate(size int) {
	v.Var = v.Var.Cast(size)
	mask := uint64(1)<<(size*8) - 1
	if v.UMin&^mask == v.UMax&^mask {
		v.UMin &= mask
		v.UMax &= mask
	} else {
		v.UMin, v.UMax = 0, mask
	}
	v.SMin, v.SMax = int64(v.UMin), int64(v.UMax)
	if size < 4 {
		v.unbound32()
	}
	v.Sync()
}

// zext32 is zext_32_to_64 with __reg_assign_32_into_64: the upper half
// becomes zero and the 64-bit bounds are the 32-bit ones.
func (v *Value) zext32() {
	v.Var = v.Var.Subreg()
	v.UMin, v.UMax = uint64(v.U32Min), uint64(v.U32Max)
	if v.S32Min >= 0 && v.S32Max >= 0 {
		v.SMin, v.SMax = int64(v.S32Min), int64(v.S32Max)
	} else {
		v.SMin, v.SMax = 0, math.MaxUint32
	}
}

// sext64 is coerce_reg_to_size_sx as Linux 6.18 behaves (seen in its
// log; 6.12 lacks the second case): sign-extend the low size bytes to 64
// bits (movsx). In order:
//
//   - a constant gives a constant;
//   - when the low 32 bits, as a signed number, are inside the target's
//     signed range, sign extension from size bytes is sign extension
//     from 32 bits, so the 64-bit range is the 32-bit one (with a tnum
//     from that range when it does not cross zero) and the low 32 bits
//     keep their bounds;
//   - a range whose ends share their bits above size bytes and
//     sign-extend to the same sign maps to the extended ends;
//   - anything else becomes the target's whole signed range.
func (v *Value) sext64(size int) {
	nbits := uint(size * 8)
	lim := int64(1)<<(nbits-1) - 1
	if v.Var.IsConst() {
		*v = Const(sextBits(v.Var.Value, nbits))
		return
	}
	if int64(v.S32Min) >= -lim-1 && int64(v.S32Max) <= lim {
		lo, hi := int64(v.S32Min), int64(v.S32Max)
		v.SMin, v.SMax = lo, hi
		if (lo >= 0) == (hi >= 0) {
			v.UMin, v.UMax = uint64(lo), uint64(hi)
			v.Var = TnumRange(uint64(lo), uint64(hi))
		} else {
			v.UMin, v.UMax = 0, math.MaxUint64
			v.Var = TnumUnknown()
		}
		v.Sync()
		return
	}
	if uint64(v.SMax)>>nbits<<nbits == uint64(v.SMin)>>nbits<<nbits {
		a := int64(sextBits(uint64(v.SMax), nbits))
		b := int64(sextBits(uint64(v.SMin), nbits))
		lo, hi := min(a, b), max(a, b)
		if (hi >= 0) == (lo >= 0) {
			v.SMin, v.SMax = lo, hi
			v.S32Min, v.S32Max = int32(lo), int32(hi)
			v.UMin, v.UMax = uint64(lo), uint64(hi)
			v.U32Min, v.U32Max = uint32(lo), uint32(hi)
			v.Var = TnumRange(uint64(lo), uint64(hi))
			return
		}
	}
	// set_sext64_default_val
	v.SMin, v.SMax = -lim-1, lim
	v.S32Min, v.S32Max = int32(-lim-1), int32(lim)
	if size == 4 {
		v.S32Min, v.S32Max = math.MinInt32, math.MaxInt32
	}
	v.UMin, v.UMax = 0, math.MaxUint64
	v.U32Min, v.U32Max = 0, math.MaxUint32
	v.Var = TnumUnknown()
}

// sext32 is coerce_subreg_to_size_sx, the 32-bit movsx (the same in 6.12
// and 6.18): sign-extend the low size (1 or 2) bytes to 32 bits. A
// constant gives a constant; a s32 range whose ends share their bits above
// size bytes and sign-extend to the same sign maps to the extended ends;
// anything else becomes the target's whole signed range. The caller
// zero-extends and syncs.
func (v *Value) sext32(size int) {
	nbits := uint(size * 8)
	if v.Var.IsConst() {
		c := uint32(sextBits(v.Var.Value, nbits))
		// The kernel sets var_off to the 64-bit sign extension and only
		// the 32-bit bounds; the zero extension takes the low half.
		v.Var = TnumConst(sextBits(v.Var.Value, nbits))
		v.S32Min, v.S32Max = int32(c), int32(c)
		v.U32Min, v.U32Max = c, c
		return
	}
	if uint32(v.S32Max)>>nbits<<nbits == uint32(v.S32Min)>>nbits<<nbits {
		a := int32(sextBits(uint64(uint32(v.S32Max)), nbits))
		b := int32(sextBits(uint64(uint32(v.S32Min)), nbits))
		lo, hi := min(a, b), max(a, b)
		if (hi >= 0) == (lo >= 0) {
			v.S32Min, v.S32Max = lo, hi
			v.U32Min, v.U32Max = uint32(lo), uint32(hi)
			v.Var = TnumRange(uint64(int64(lo)), uint64(int64(hi))).Subreg()
			return
		}
	}
	// set_sext32_default_val
	lim := int32(1)<<(nbits-1) - 1
	v.S32Min, v.S32Max = -lim-1, lim
	v.U32Min, v.U32Max = 0, math.MaxUint32
	v.Var = TnumUnknown().Subreg()
}

// sextBits sign-extends the low n bits of x.
func sextBits(x uint64, n uint) uint64 {
	s := 64 - n
	return uint64(int64(x<<s) >> s)
}

func (v *Value) add32(s Value) {
	smin, o1 := addOverflow32(v.S32Min, s.S32Min)
	smax, o2 := addOverflow32(v.S32Max, s.S32Max)
	if o1 || o2 {
		v.S32Min, v.S32Max = math.MinInt32, math.MaxInt32
	} else {
		v.S32Min, v.S32Max = smin, smax
	}
	// When both ends wrap the range is still a range, shifted.
	umin, c1 := bits.Add32(v.U32Min, s.U32Min, 0)
	umax, c2 := bits.Add32(v.U32Max, s.U32Max, 0)
	if c1 == 0 && c2 != 0 {
		v.U32Min, v.U32Max = 0, math.MaxUint32
	} else {
		v.U32Min, v.U32Max = umin, umax
	}
}

func (v *Value) add64(s Value) {
	smin, o1 := addOverflow64(v.SMin, s.SMin)
	smax, o2 := addOverflow64(v.SMax, s.SMax)
	if o1 || o2 {
		v.SMin, v.SMax = math.MinInt64, math.MaxInt64
	} else {
		v.SMin, v.SMax = smin, smax
	}
	umin, c1 := bits.Add64(v.UMin, s.UMin, 0)
	umax, c2 := bits.Add64(v.UMax, s.UMax, 0)
	if c1 == 0 && c2 != 0 {
		v.UMin, v.UMax = 0, math.MaxUint64
	} else {
		v.UMin, v.UMax = umin, umax
	}
}

func (v *Value) sub32(s Value) {
	smin, o1 := subOverflow32(v.S32Min, s.S32Max)
	smax, o2 := subOverflow32(v.S32Max, s.S32Min)
	if o1 || o2 {
		v.S32Min, v.S32Max = math.MinInt32, math.MaxInt32
	} else {
		v.S32Min, v.S32Max = smin, smax
	}
	// When both ends wrap the range is still a range, shifted.
	if v.U32Min < s.U32Max && v.U32Max >= s.U32Min {
		v.U32Min, v.U32Max = 0, math.MaxUint32
	} else {
		v.U32Min -= s.U32Max
		v.U32Max -= s.U32Min
	}
}

func (v *Value) sub64(s Value) {
	smin, o1 := subOverflow64(v.SMin, s.SMax)
	smax, o2 := subOverflow64(v.SMax, s.SMin)
	if o1 || o2 {
		v.SMin, v.SMax = math.MinInt64, math.MaxInt64
	} else {
		v.SMin, v.SMax = smin, smax
	}
	if v.UMin < s.UMax && v.UMax >= s.UMin {
		v.UMin, v.UMax = 0, math.MaxUint64
	} else {
		v.UMin -= s.UMax
		v.UMax -= s.UMin
	}
}

func addOverflow32(a, b int32) (int32, bool) {
	r := a + b
	return r, (a >= 0) == (b >= 0) && (r >= 0) != (a >= 0)
}

func addOverflow64(a, b int64) (int64, bool) {
	r := a + b
	return r, (a >= 0) == (b >= 0) && (r >= 0) != (a >= 0)
}

func subOverflow32(a, b int32) (int32, bool) {
	r := a - b
	return r, (a >= 0) != (b >= 0) && (r >= 0) != (a >= 0)
}

func subOverflow64(a, b int64) (int64, bool) {
	r := a - b
	return r, (a >= 0) != (b >= 0) && (r >= 0) != (a >= 0)
}

// mul32 and mul64 are scalar32_min_max_mul and scalar_min_max_mul as
// Linux 6.18 does them: unsigned bounds unless a product of the ends
// overflows, signed bounds from the four products of the ends unless one
// overflows.
func (v *Value) mul32(s Value) {
	hi1, umax := bits.Mul32(v.U32Max, s.U32Max)
	hi2, umin := bits.Mul32(v.U32Min, s.U32Min)
	if hi1 != 0 || hi2 != 0 {
		v.U32Min, v.U32Max = 0, math.MaxUint32
	} else {
		v.U32Min, v.U32Max = umin, umax
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, p := range [4]int64{
		int64(v.S32Min) * int64(s.S32Min), int64(v.S32Min) * int64(s.S32Max),
		int64(v.S32Max) * int64(s.S32Min), int64(v.S32Max) * int64(s.S32Max),
	} {
		if p < math.MinInt32 || p > math.MaxInt32 {
			v.S32Min, v.S32Max = math.MinInt32, math.MaxInt32
			return
		}
		lo, hi = min(lo, p), max(hi, p)
	}
	v.S32Min, v.S32Max = int32(lo), int32(hi)
}

func (v *Value) mul64(s Value) {
	hi1, umax := bits.Mul64(v.UMax, s.UMax)
	hi2, umin := bits.Mul64(v.UMin, s.UMin)
	if hi1 != 0 || hi2 != 0 {
		v.UMin, v.UMax = 0, math.MaxUint64
	} else {
		v.UMin, v.UMax = umin, umax
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, f := range [4][2]int64{{v.SMin, s.SMin}, {v.SMin, s.SMax}, {v.SMax, s.SMin}, {v.SMax, s.SMax}} {
		p, ok := mulInt64(f[0], f[1])
		if !ok {
			v.SMin, v.SMax = math.MinInt64, math.MaxInt64
			return
		}
		lo, hi = min(lo, p), max(hi, p)
	}
	v.SMin, v.SMax = lo, hi
}

// mulInt64 is a*b and whether it fits in int64 (check_mul_overflow).
func mulInt64(a, b int64) (int64, bool) {
	p := a * b
	if a == 0 || b == 0 {
		return 0, true
	}
	if (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return p, false
	}
	return p, p/b == a
}

// The bitwise ops below run after v.Var holds the result tnum (as in the
// kernel, which updates var_off first).

func (v *Value) signed32FromUnsigned() {
	if int32(v.U32Min) <= int32(v.U32Max) {
		v.S32Min, v.S32Max = int32(v.U32Min), int32(v.U32Max)
	} else {
		v.S32Min, v.S32Max = math.MinInt32, math.MaxInt32
	}
}

func (v *Value) signed64FromUnsigned() {
	if int64(v.UMin) <= int64(v.UMax) {
		v.SMin, v.SMax = int64(v.UMin), int64(v.UMax)
	} else {
		v.SMin, v.SMax = math.MinInt64, math.MaxInt64
	}
}

func (v *Value) setConst32(c uint32) {
	// __mark_reg32_known
	v.Var = v.Var.WithSubreg(TnumConst(uint64(c)))
	v.S32Min, v.S32Max = int32(c), int32(c)
	v.U32Min, v.U32Max = c, c
}

func (v *Value) and32(s Value) {
	t := v.Var.Subreg()
	if s.IsConst32() && t.IsConst() {
		v.setConst32(uint32(t.Value))
		return
	}
	v.U32Min = uint32(t.Value)
	v.U32Max = min(v.U32Max, s.U32Max)
	v.signed32FromUnsigned()
}

func (v *Value) and64(s Value) {
	if s.Var.IsConst() && v.Var.IsConst() {
		*v = Const(v.Var.Value)
		return
	}
	v.UMin = v.Var.Value
	v.UMax = min(v.UMax, s.UMax)
	v.signed64FromUnsigned()
	v.updateBounds()
}

func (v *Value) or32(s Value) {
	t := v.Var.Subreg()
	if s.IsConst32() && t.IsConst() {
		v.setConst32(uint32(t.Value))
		return
	}
	v.U32Min = max(v.U32Min, s.U32Min)
	v.U32Max = uint32(t.Value | t.Mask)
	v.signed32FromUnsigned()
}

func (v *Value) or64(s Value) {
	if s.Var.IsConst() && v.Var.IsConst() {
		*v = Const(v.Var.Value)
		return
	}
	v.UMin = max(v.UMin, s.UMin)
	v.UMax = v.Var.Value | v.Var.Mask
	v.signed64FromUnsigned()
	v.updateBounds()
}

func (v *Value) xor32(s Value) {
	t := v.Var.Subreg()
	if s.IsConst32() && t.IsConst() {
		v.setConst32(uint32(t.Value))
		return
	}
	v.U32Min = uint32(t.Value)
	v.U32Max = uint32(t.Value | t.Mask)
	v.signed32FromUnsigned()
}

func (v *Value) xor64(s Value) {
	if s.Var.IsConst() && v.Var.IsConst() {
		*v = Const(v.Var.Value)
		return
	}
	v.UMin = v.Var.Value
	v.UMax = v.Var.Value | v.Var.Mask
	v.signed64FromUnsigned()
	v.updateBounds()
}

// lshBounds32 is __scalar32_min_max_lsh.
func (v *Value) lshBounds32(umin, umax uint64) {
	v.S32Min, v.S32Max = math.MinInt32, math.MaxInt32
	if umax > 31 || uint64(v.U32Max) > 1<<(31-umax) {
		v.U32Min, v.U32Max = 0, math.MaxUint32
	} else {
		v.U32Min <<= umin
		v.U32Max <<= umax
	}
}

func (v *Value) lsh32(s Value) {
	umin, umax := uint64(s.U32Min), uint64(s.U32Max)
	sub := v.Var.Subreg()
	v.lshBounds32(umin, umax)
	v.Var = sub.Lsh(uint8(umin)).Subreg()
	v.unbound64()
	v.updateBounds32()
}

func (v *Value) lsh64(s Value) {
	umin, umax := s.UMin, s.UMax
	// __scalar64_min_max_lsh
	if umin == 32 && umax == 32 {
		v.SMax = int64(v.S32Max) << 32
		v.SMin = int64(v.S32Min) << 32
	} else {
		v.SMin, v.SMax = math.MinInt64, math.MaxInt64
	}
	if v.UMax > 1<<(63-umax) {
		v.UMin, v.UMax = 0, math.MaxUint64
	} else {
		v.UMin <<= umin
		v.UMax <<= umax
	}
	v.lshBounds32(umin, umax)
	v.Var = v.Var.Lsh(uint8(umin))
	v.updateBounds()
}

func (v *Value) rsh32(s Value) {
	sub := v.Var.Subreg()
	umin, umax := s.U32Min, s.U32Max
	v.S32Min, v.S32Max = math.MinInt32, math.MaxInt32
	v.Var = sub.Rsh(uint8(umin))
	v.U32Min >>= umax
	v.U32Max >>= umin
	v.unbound64()
	v.updateBounds32()
}

func (v *Value) rsh64(s Value) {
	umin, umax := s.UMin, s.UMax
	v.SMin, v.SMax = math.MinInt64, math.MaxInt64
	v.Var = v.Var.Rsh(uint8(umin))
	v.UMin >>= umax
	v.UMax >>= umin
	v.unbound32()
	v.updateBounds()
}

func (v *Value) arsh32(s Value) {
	umin := s.U32Min
	v.S32Min >>= umin
	v.S32Max >>= umin
	v.Var = v.Var.Subreg().Arsh(uint8(umin), 32)
	v.U32Min, v.U32Max = 0, math.MaxUint32
	v.unbound64()
	v.updateBounds32()
}

func (v *Value) arsh64(s Value) {
	umin := s.UMin
	v.SMin >>= umin
	v.SMax >>= umin
	v.Var = v.Var.Arsh(uint8(umin), 64)
	v.UMin, v.UMax = 0, math.MaxUint64
	v.unbound32()
	v.updateBounds()
}
