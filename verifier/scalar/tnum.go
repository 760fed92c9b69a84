package scalar

import (
	"fmt"
	"math/bits"
)

// Tnum is a tristate number (struct tnum, include/linux/tnum.h): each of
// the 64 bits is known 0, known 1 or unknown.
//
//	Mask bit  Value bit  meaning
//	   0         0       the bit is 0
//	   0         1       the bit is 1
//	   1         0       the bit is unknown
//	   1         1       (never produced: not a valid tnum)
//
// A Tnum stands for the set of numbers x with x &^ Mask == Value.
type Tnum struct {
	Value uint64
	Mask  uint64
}

// TnumConst is the tnum of exactly v (tnum_const).
func TnumConst(v uint64) Tnum { return Tnum{Value: v} }

// TnumUnknown is the tnum with every bit unknown (tnum_unknown).
func TnumUnknown() Tnum { return Tnum{Mask: ^uint64(0)} }

// TnumRange is the smallest tnum holding every number in [min, max]
// (tnum_range): the bits above the highest bit in which min and max differ
// are known, the rest unknown.
func TnumRange(min, max uint64) Tnum {
	n := bits.Len64(min ^ max)
	if n > 63 {
		return TnumUnknown()
	}
	delta := uint64(1)<<n - 1
	return Tnum{Value: min &^ delta, Mask: delta}
}

// IsConst reports whether every bit is known (tnum_is_const).
func (a Tnum) IsConst() bool { return a.Mask == 0 }

// IsUnknown reports whether no bit is known (tnum_is_unknown).
func (a Tnum) IsUnknown() bool { return a.Mask == ^uint64(0) }

// Contains reports whether v is one of the numbers a stands for.
func (a Tnum) Contains(v uint64) bool { return v&^a.Mask == a.Value }

// In reports whether every number b stands for is in a (tnum_in).
func (a Tnum) In(b Tnum) bool {
	if b.Mask&^a.Mask != 0 {
		return false
	}
	return a.Value == b.Value&^a.Mask
}

// Overlap reports whether a and b have a number in common (tnum_overlap).
func (a Tnum) Overlap(b Tnum) bool {
	known := ^a.Mask & ^b.Mask
	return a.Value&known == b.Value&known
}

// Lsh shifts left by a known amount (tnum_lshift). The shift must be < 64.
func (a Tnum) Lsh(shift uint8) Tnum {
	return Tnum{Value: a.Value << shift, Mask: a.Mask << shift}
}

// Rsh shifts right logically by a known amount (tnum_rshift).
func (a Tnum) Rsh(shift uint8) Tnum {
	return Tnum{Value: a.Value >> shift, Mask: a.Mask >> shift}
}

// Arsh shifts right arithmetically by a known amount, as a 32-bit number
// (zero-extended back to 64) when width is 32 and as a 64-bit number
// otherwise (tnum_arshift). An unknown sign bit stays unknown in every
// bit it is copied into.
func (a Tnum) Arsh(shift uint8, width int) Tnum {
	if width == 32 {
		return Tnum{
			Value: uint64(uint32(int32(uint32(a.Value)) >> shift)),
			Mask:  uint64(uint32(int32(uint32(a.Mask)) >> shift)),
		}
	}
	return Tnum{
		Value: uint64(int64(a.Value) >> shift),
		Mask:  uint64(int64(a.Mask) >> shift),
	}
}

// Add is the tnum of every sum of a number of a and one of b (tnum_add):
// a bit is unknown when either input bit is or when a carry into it may
// differ between the smallest and the largest sums.
func (a Tnum) Add(b Tnum) Tnum {
	sm := a.Mask + b.Mask
	sv := a.Value + b.Value
	sigma := sm + sv
	chi := sigma ^ sv
	mu := chi | a.Mask | b.Mask
	return Tnum{Value: sv &^ mu, Mask: mu}
}

// Sub is the tnum of every difference (tnum_sub), by the same borrow
// argument as Add.
func (a Tnum) Sub(b Tnum) Tnum {
	dv := a.Value - b.Value
	alpha := dv + a.Mask
	beta := dv - b.Mask
	chi := alpha ^ beta
	mu := chi | a.Mask | b.Mask
	return Tnum{Value: dv &^ mu, Mask: mu}
}

// Neg is the tnum of the two's complement negation, 0 - a.
func (a Tnum) Neg() Tnum { return TnumConst(0).Sub(a) }

// And is the bitwise and (tnum_and).
func (a Tnum) And(b Tnum) Tnum {
	alpha := a.Value | a.Mask
	beta := b.Value | b.Mask
	v := a.Value & b.Value
	return Tnum{Value: v, Mask: alpha & beta &^ v}
}

// Or is the bitwise or (tnum_or).
func (a Tnum) Or(b Tnum) Tnum {
	v := a.Value | b.Value
	mu := a.Mask | b.Mask
	return Tnum{Value: v, Mask: mu &^ v}
}

// Xor is the bitwise exclusive or (tnum_xor).
func (a Tnum) Xor(b Tnum) Tnum {
	v := a.Value ^ b.Value
	mu := a.Mask | b.Mask
	return Tnum{Value: v &^ mu, Mask: mu}
}

// Mul is the product (tnum_mul as Linux 6.18 computes it): long
// multiplication over a's bits, adding b shifted for a bit known 1 and
// taking the union of "added" and "not added" for an unknown bit.
func (a Tnum) Mul(b Tnum) Tnum {
	var acc Tnum
	for a.Value != 0 || a.Mask != 0 {
		switch {
		case a.Value&1 != 0:
			acc = acc.Add(b)
		case a.Mask&1 != 0:
			acc = acc.Union(acc.Add(b))
		}
		a = a.Rsh(1)
		b = b.Lsh(1)
	}
	return acc
}

// Intersect is the tnum of the numbers in both a and b, given that they
// overlap (tnum_intersect): a bit is known when either side knows it.
func (a Tnum) Intersect(b Tnum) Tnum {
	v := a.Value | b.Value
	mu := a.Mask & b.Mask
	return Tnum{Value: v &^ mu, Mask: mu}
}

// Union is the smallest tnum holding every number of a and of b
// (tnum_union of later kernels): a bit is known only when both sides know
// it and agree.
func (a Tnum) Union(b Tnum) Tnum {
	mu := a.Mask | b.Mask | (a.Value ^ b.Value)
	return Tnum{Value: a.Value &^ mu, Mask: mu}
}

// Next is the smallest number of a greater than z, and false when there
// is none (tnum_step of later kernels). The numbers of a are a.Value + s
// for the subsets s of a.Mask, in the order of s.
func (a Tnum) Next(z uint64) (uint64, bool) {
	if z < a.Value {
		return a.Value, true
	}
	k := z - a.Value
	// The smallest subset s of the mask above k sets the lowest bit i
	// that is in the mask, clear in k, and above every bit of k outside
	// the mask, keeps k's bits above i and clears those below.
	lowest := 0
	if bad := k &^ a.Mask; bad != 0 {
		lowest = bits.Len64(bad)
	}
	for i := lowest; i < 64; i++ {
		bit := uint64(1) << i
		if a.Mask&bit != 0 && k&bit == 0 {
			return a.Value + (k>>i>>1<<1<<i | bit), true
		}
	}
	return 0, false
}

// Bswap reverses the bytes of the low width (16, 32 or 64) bits and
// clears the rest, as BPF_END does to the number (tnum_bswap16/32/64).
func (a Tnum) Bswap(width int) Tnum {
	switch width {
	case 16:
		return Tnum{Value: uint64(bits.ReverseBytes16(uint16(a.Value))), Mask: uint64(bits.ReverseBytes16(uint16(a.Mask)))}
	case 32:
		return Tnum{Value: uint64(bits.ReverseBytes32(uint32(a.Value))), Mask: uint64(bits.ReverseBytes32(uint32(a.Mask)))}
	}
	return Tnum{Value: bits.ReverseBytes64(a.Value), Mask: bits.ReverseBytes64(a.Mask)}
}

// Sext sign-extends the low size (1, 2 or 4) bytes to 64 bits: the bits
// above take the value of the sign bit, unknown if it is unknown.
func (a Tnum) Sext(size int) Tnum {
	s := uint(64 - size*8)
	return Tnum{
		Value: uint64(int64(a.Value<<s) >> s),
		Mask:  uint64(int64(a.Mask<<s) >> s),
	}
}

// Cast keeps the low size bytes, size 1 to 8 (tnum_cast).
func (a Tnum) Cast(size int) Tnum {
	if size >= 8 {
		return a
	}
	m := uint64(1)<<(size*8) - 1
	return Tnum{Value: a.Value & m, Mask: a.Mask & m}
}

// Subreg is the low 32 bits, zero-extended (tnum_subreg).
func (a Tnum) Subreg() Tnum { return a.Cast(4) }

// ClearSubreg is a with the low 32 bits known zero (tnum_clear_subreg).
func (a Tnum) ClearSubreg() Tnum { return a.Rsh(32).Lsh(32) }

// WithSubreg is a's high 32 bits with sub's low 32 bits (tnum_with_subreg).
func (a Tnum) WithSubreg(sub Tnum) Tnum { return a.ClearSubreg().Or(sub.Subreg()) }

// String prints a the way the verifier log does (tnum_strn): a known
// number in decimal up to 65535 and in hex above, otherwise
// "(value; mask)" in hex.
func (a Tnum) String() string {
	if a.Mask == 0 {
		return formatUnum(a.Value)
	}
	return fmt.Sprintf("(%#x; %#x)", a.Value, a.Mask)
}
