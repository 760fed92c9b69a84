package maps

import (
	"math"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// Bloom filters (BPF_MAP_TYPE_BLOOM_FILTER), after kernel/bpf/bloom_filter.c:
// a bit set of a power-of-two number of bits, nr_hashes jhash functions
// seeded seed+i. Push sets the bits of a value, Peek reports ENOENT when one
// is clear. With BPF_F_ZERO_SEED the bits are the kernel's, false positives
// included.
//
//	data ─► bit set, (mask+1)/64 words; bit h is word h/64, bit h%64
//
// Type-specific header state: +72 nr_hashes u32.
const hdrBloomHashes = hdrTypeState

type bloomMap struct {
	base
	mask    uint32
	nhashes uint32
	seed    uint32
	vsize   uint64
}

func newBloom(spec Spec, seed uint32) (*bloomMap, error) {
	m := &bloomMap{vsize: uint64(spec.ValueSize), seed: seed}
	if spec.Flags&FlagZeroSeed != 0 {
		m.seed = 0
	}
	m.nhashes = uint32(spec.MapExtra)
	if m.nhashes == 0 {
		m.nhashes = 5 // the kernel's default
	}
	// bloom_map_alloc: n·k·7/5 bits (7/5 ≈ 1/ln 2), a power of two, at
	// least 64; on u32 overflow or above 2^31, 2^32 bits.
	nbits := uint64(spec.MaxEntries) * uint64(m.nhashes)
	if nbits > math.MaxUint32 || (nbits/5)*7 > math.MaxUint32 || (nbits/5)*7 > 1<<31 {
		m.mask = math.MaxUint32
	} else {
		nbits = (nbits / 5) * 7
		if nbits <= 64 {
			nbits = 64
		} else {
			nbits = roundUpPow2(nbits)
		}
		m.mask = uint32(nbits - 1)
	}
	words := (uint64(m.mask) + 1 + 63) / 64
	if err := m.init(spec, words*8); err != nil {
		return nil, err
	}
	m.put64(hdrData, m.addr(headerSize))
	m.put32(hdrMask, m.mask)
	m.put32(hdrSeed, m.seed)
	m.put32(hdrBloomHashes, m.nhashes)
	return m, nil
}

// bit returns hash i of value as the kernel's hash() in bloom_filter.c.
func (m *bloomMap) bit(value []byte, i uint32) uint64 {
	var h uint32
	if len(value)%4 == 0 {
		h = jhash2(value, m.seed+i)
	} else {
		h = jhash(value, m.seed+i)
	}
	return uint64(h & m.mask)
}

func (m *bloomMap) wordAddr(bit uint64) uint64 { return m.hdr + headerSize + bit/64*8 }

// PushElem is bloom_map_push_elem: only BPF_ANY.
func (m *bloomMap) PushElem(value []byte, flags uint64) error {
	if uint64(len(value)) != m.vsize {
		return EINVAL
	}
	if m.closed.Load() {
		return EBADF
	}
	if flags != UpdateAny {
		return EINVAL
	}
	for i := uint32(0); i < m.nhashes; i++ {
		b := m.bit(value, i)
		mem.AtomicOr64(m.wordAddr(b), 1<<(b%64))
	}
	return nil
}

// PeekElem is bloom_map_peek_elem: nil if value may be present, ENOENT if
// it certainly is not.
func (m *bloomMap) PeekElem(value []byte) error {
	if uint64(len(value)) != m.vsize {
		return EINVAL
	}
	if m.closed.Load() {
		return EBADF
	}
	for i := uint32(0); i < m.nhashes; i++ {
		b := m.bit(value, i)
		if mem.AtomicLoad64(m.wordAddr(b))&(1<<(b%64)) == 0 {
			return ENOENT
		}
	}
	return nil
}

// PopElem is EOPNOTSUPP (bloom_map_pop_elem).
func (m *bloomMap) PopElem(value []byte) error { return EOPNOTSUPP }

// Lookup tests value (BPF_MAP_LOOKUP_ELEM reads the value from user space
// and peeks).
func (m *bloomMap) Lookup(key, value []byte) error {
	if err := m.check("lookup", key, value, int(m.vsize)); err != nil {
		return err
	}
	if err := m.checkRead("lookup"); err != nil {
		return err
	}
	return m.PeekElem(value)
}

// Update adds value (a push).
func (m *bloomMap) Update(key, value []byte, flags uint64) error {
	if err := m.check("update", key, value, int(m.vsize)); err != nil {
		return err
	}
	if err := m.checkWrite("update"); err != nil {
		return err
	}
	if flags&UpdateLock != 0 {
		return m.errorf(EINVAL, "update: BPF_F_LOCK on a map without bpf_spin_lock")
	}
	if flags != UpdateAny {
		return m.errorf(EINVAL, "update: bloom filters take only BPF_ANY")
	}
	return m.PushElem(value, flags)
}

// Delete is EOPNOTSUPP (bloom_map_delete_elem).
func (m *bloomMap) Delete(key []byte) error {
	if err := m.check("delete", key, nil, 0); err != nil {
		return err
	}
	if err := m.checkWrite("delete"); err != nil {
		return err
	}
	return m.unsupported("delete", EOPNOTSUPP)
}

// NextKey is EOPNOTSUPP (bloom_map_get_next_key).
func (m *bloomMap) NextKey(key, next []byte) error { return m.unsupported("next key", EOPNOTSUPP) }

// LookupAndDelete is ENOTSUPP.
func (m *bloomMap) LookupAndDelete(key, value []byte) error {
	return m.unsupported("lookup and delete", ENOTSUPP)
}

// Regions: programs get no pointers into bloom filters.
func (m *bloomMap) Regions() []Region { return nil }

// Close unmaps the filter.
func (m *bloomMap) Close() error { return m.free() }
