package progtype

import (
	"encoding/binary"
	"math/bits"
)

// The Internet checksum arithmetic of Linux on x86-64, bit for bit: helpers
// return __wsum values (bpf_csum_diff) whose exact 32-bit form depends on
// the architecture's csum_partial, so it is reproduced rather than
// re-derived. Values are in the byte order of memory: a 16- or 32-bit
// quantity read from a packet with a little-endian load.

var le = binary.LittleEndian

// be reads and writes network-order fields.
var be = binary.BigEndian

// csumPartial is csum_partial (arch/x86/lib/csum-partial_64.c): the
// one's-complement sum of buf as little-endian 64-bit words (the tail
// zero-padded) added to sum with end-around carry, folded to 32 bits by
// csum_finalize_sum. The kernel's order of additions differs (two
// accumulators over 80-byte blocks), but end-around-carry addition is
// associative and commutative, so the result is the same.
func csumPartial(buf []byte, sum uint32) uint32 {
	acc := uint64(sum)
	var c uint64
	for len(buf) >= 8 {
		acc, c = bits.Add64(acc, le.Uint64(buf), 0)
		acc += c
		buf = buf[8:]
	}
	if len(buf) > 0 {
		var tail [8]byte
		copy(tail[:], buf)
		acc, c = bits.Add64(acc, le.Uint64(tail[:]), 0)
		acc += c
	}
	// csum_finalize_sum: (temp64 + ror64(temp64, 32)) >> 32
	return uint32((acc + bits.RotateLeft64(acc, -32)) >> 32)
}

// csumAdd is csum_add (include/net/checksum.h): 32-bit one's-complement
// addition.
func csumAdd(a, b uint32) uint32 {
	r := a + b
	if r < b {
		r++
	}
	return r
}

// csumSub is csum_sub.
func csumSub(a, b uint32) uint32 { return csumAdd(a, ^b) }

// csumFold is x86-64 csum_fold (arch/x86/include/asm/checksum_64.h): fold
// a 32-bit sum to 16 bits and invert it.
func csumFold(sum uint32) uint16 {
	r, c := bits.Add32(sum&0xffff0000, sum<<16, 0)
	r, _ = bits.Add32(r, 0xffff, c)
	return uint16(^r >> 16)
}

// csum16Add is csum16_add: 16-bit one's-complement addition.
func csum16Add(a, b uint16) uint16 {
	r := a + b
	if r < b {
		r++
	}
	return r
}

// csumBlockAdd is csum_block_add: a block's sum at an odd offset is
// byte-rotated first (csum_shift).
func csumBlockAdd(sum, sum2 uint32, off int) uint32 {
	if off&1 != 0 {
		sum2 = bits.RotateLeft32(sum2, -8)
	}
	return csumAdd(sum, sum2)
}

// csumBlockSub is csum_block_sub.
func csumBlockSub(sum, sum2 uint32, off int) uint32 { return csumBlockAdd(sum, ^sum2, off) }

// csumReplace4 is csum_replace4: update the 16-bit checksum at *sum for a
// 32-bit field changing from from to to (RFC 1624).
func csumReplace4(sum uint16, from, to uint32) uint16 {
	tmp := csumSub(^uint32(sum), from)
	return csumFold(csumAdd(tmp, to))
}

// csumReplace2 is csum_replace2.
func csumReplace2(sum, from, to uint16) uint16 {
	return ^csum16Add(csum16Add(^sum, ^from), to)
}

// csumReplaceByDiff is csum_replace_by_diff.
func csumReplaceByDiff(sum uint16, diff uint32) uint16 {
	return csumFold(csumAdd(diff, ^uint32(sum)))
}

// csumFrom32to16 is csum_from32to16 (include/net/checksum.h): fold a
// 32-bit sum to 16 bits without inverting it.
func csumFrom32to16(sum uint32) uint16 {
	sum += sum>>16 | sum<<16
	return uint16(sum >> 16)
}

// ChecksumDiff is bpf_csum_diff (net/core/filter.c) as a pure function: the
// one's-complement sum of to minus that of from, added to seed, folded to
// 16 bits. This is the helper since Linux 6.13 ("bpf: Fix bpf_csum_diff's
// return value"), whose result no longer depends on the architecture and
// which takes buffers of any length; before, it returned the unfolded
// 32-bit sum of x86-64's csum_partial and required multiples of 4 bytes
// of at most 512 together.
func ChecksumDiff(from, to []byte, seed uint32) uint16 {
	ret := seed
	switch {
	case len(from) > 0 && len(to) > 0:
		ret = csumSub(csumPartial(to, ret), csumPartial(from, 0))
	case len(to) > 0:
		ret = csumPartial(to, ret)
	case len(from) > 0:
		ret = ^csumPartial(from, ^ret)
	}
	return csumFrom32to16(ret)
}
