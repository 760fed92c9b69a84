package maps

import "math/bits"

// jhash and jhash2 are Bob Jenkins' lookup3 hash as include/linux/jhash.h
// defines it. Hash maps (kernel/bpf/hashtab.c htab_map_hash), bloom filters
// (kernel/bpf/bloom_filter.c) use them with the map's seed, so with
// BPF_F_ZERO_SEED a waggle map places keys in the same buckets as the
// kernel's and iterates them in the same order.

const jhashInitval = 0xdeadbeef

func jhashMix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

func jhashFinal(a, b, c uint32) uint32 {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}

// jhash hashes bytes (jhash in include/linux/jhash.h); words are read in
// host byte order as the kernel's __get_unaligned_cpu32 reads them.
func jhash(k []byte, initval uint32) uint32 {
	length := uint32(len(k))
	a := jhashInitval + length + initval
	b, c := a, a
	for len(k) > 12 {
		a += native.Uint32(k)
		b += native.Uint32(k[4:])
		c += native.Uint32(k[8:])
		a, b, c = jhashMix(a, b, c)
		k = k[12:]
	}
	switch len(k) {
	case 12:
		c += uint32(k[11]) << 24
		fallthrough
	case 11:
		c += uint32(k[10]) << 16
		fallthrough
	case 10:
		c += uint32(k[9]) << 8
		fallthrough
	case 9:
		c += uint32(k[8])
		fallthrough
	case 8:
		b += uint32(k[7]) << 24
		fallthrough
	case 7:
		b += uint32(k[6]) << 16
		fallthrough
	case 6:
		b += uint32(k[5]) << 8
		fallthrough
	case 5:
		b += uint32(k[4])
		fallthrough
	case 4:
		a += uint32(k[3]) << 24
		fallthrough
	case 3:
		a += uint32(k[2]) << 16
		fallthrough
	case 2:
		a += uint32(k[1]) << 8
		fallthrough
	case 1:
		a += uint32(k[0])
		return jhashFinal(a, b, c)
	}
	return c
}

// jhash2 hashes len(k)/4 host-order words (jhash2 in include/linux/jhash.h);
// len(k) is a multiple of 4.
func jhash2(k []byte, initval uint32) uint32 {
	length := uint32(len(k) / 4)
	a := jhashInitval + length<<2 + initval
	b, c := a, a
	for len(k) > 12 {
		a += native.Uint32(k)
		b += native.Uint32(k[4:])
		c += native.Uint32(k[8:])
		a, b, c = jhashMix(a, b, c)
		k = k[12:]
	}
	switch len(k) {
	case 12:
		c += native.Uint32(k[8:])
		fallthrough
	case 8:
		b += native.Uint32(k[4:])
		fallthrough
	case 4:
		a += native.Uint32(k)
		return jhashFinal(a, b, c)
	}
	return c
}

// keyHash is htab_map_hash: jhash2 for keys of whole words, jhash
// otherwise.
func keyHash(key []byte, seed uint32) uint32 {
	if len(key)%4 == 0 {
		return jhash2(key, seed)
	}
	return jhash(key, seed)
}
