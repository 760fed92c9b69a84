package maps

import (
	"encoding/binary"
	"math/bits"
	"runtime"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// Longest-prefix-match tries (BPF_MAP_TYPE_LPM_TRIE), after
// kernel/bpf/lpm_trie.c: keys are struct bpf_lpm_trie_key_u8 { u32
// prefixlen; u8 data[] } with data in network (big-endian) bit order, so
// IPv4 (4 data bytes) and IPv6 (16) prefixes work as they do in Linux. The
// trie is the kernel's: nodes branch on the bit after their prefix, and
// intermediate nodes (no value) join two children; NextKey walks it in the
// kernel's post-order (more specific prefixes first). Go-side Lookup is
// the kernel's longest-prefix match too, as the syscall's is.
//
// Nodes live in the mapping; index 0 is "none":
//
//	data ─► nodes: (2·max_entries + 2) × node_size
//	        ┌──────────┬──────────┬─────────────┬─────────┬──────────────┬──────────────┐
//	        │ child0   │ child1   │ prefixlen   │ flags   │ data (rnd 8) │ value (rnd 8)│
//	        └──────────┴──────────┴─────────────┴─────────┴──────────────┴──────────────┘
//	        u32 each; flags bit 0: intermediate node (LPM_TREE_NODE_FLAG_IM)
//
// A trie of n entries has at most n-1 intermediate nodes, and an update
// allocates its new node before it frees the one it replaces, so
// 2·max_entries+1 nodes always suffice; address space is reserved for them
// and pages are committed as nodes are first used. (The kernel allocates
// nodes on demand instead; waggle's reservation limits max_entries to
// 2^30-1, ENOMEM above.)
//
// Updates and deletes take the map's spin lock and bump a sequence counter
// to odd before changing links and back to even after; lookups take no lock
// and retry when the counter moved (a seqlock, where the kernel uses RCU).
// Freed nodes are reused first-in first-out, so a value address a program
// got from a lookup stays valid as long as possible after a concurrent
// delete (the kernel frees after an RCU grace period, when the program has
// finished).
//
// Type-specific header state:
//
//	+72 root u32   +76 n_entries u32   +80 seq u32 (atomic)
//	+84 free_head u32   +88 free_tail u32   +92 bump u32   +96 nodes u32
const (
	hdrLPMRoot     = hdrTypeState
	hdrLPMEntries  = hdrTypeState + 4
	hdrLPMSeq      = hdrTypeState + 8
	hdrLPMFreeHead = hdrTypeState + 12
	hdrLPMFreeTail = hdrTypeState + 16
	hdrLPMBump     = hdrTypeState + 20
	hdrLPMNodes    = hdrTypeState + 24

	lpmIM = 1 // LPM_TREE_NODE_FLAG_IM
)

type lpmTrie struct {
	base
	dsize, dround uint64 // data bytes, rounded up to 8
	maxPrefix     uint32
	vsize         uint64
	nsize         uint64 // node size
	nodes         uint32 // node slots, including unused index 0
	max           uint32
}

func newLPM(spec Spec) (*lpmTrie, error) {
	m := &lpmTrie{dsize: uint64(spec.KeySize) - 4, vsize: uint64(spec.ValueSize), max: spec.MaxEntries}
	m.dround = (m.dsize + 7) &^ 7
	m.maxPrefix = uint32(m.dsize * 8)
	m.nsize = 16 + m.dround + roundUp8(spec.ValueSize)
	n := 2*uint64(spec.MaxEntries) + 2
	if n > maxElements {
		return nil, specError(&spec, ENOMEM, "max_entries %d: waggle reserves nodes up front and supports at most %d entries", spec.MaxEntries, maxElements/2-1)
	}
	m.nodes = uint32(n)
	if err := m.init(spec, n*m.nsize); err != nil {
		return nil, err
	}
	m.put64(hdrData, m.addr(headerSize))
	m.put32(hdrElemSize, uint32(m.nsize))
	m.put32(hdrLPMNodes, m.nodes)
	m.put32(hdrLPMBump, 1)
	return m, nil
}

// Node fields. Links are read atomically (lookups run during updates);
// prefixlen, flags and data are written before a node is linked.
func (m *lpmTrie) off(n uint32) uint64 { return headerSize + uint64(n)*m.nsize }
func (m *lpmTrie) child(n uint32, bit uint32) uint32 {
	return mem.AtomicLoad32(m.hdr + m.off(n) + uint64(bit)*4)
}
func (m *lpmTrie) setChild(n uint32, bit uint32, c uint32) {
	mem.AtomicStore32(m.hdr+m.off(n)+uint64(bit)*4, c)
}
func (m *lpmTrie) prefixlen(n uint32) uint32 { return native.Uint32(m.mapping[m.off(n)+8:]) }
func (m *lpmTrie) flags(n uint32) uint32     { return native.Uint32(m.mapping[m.off(n)+12:]) }
func (m *lpmTrie) data(n uint32) []byte {
	o := m.off(n) + 16
	return m.mapping[o : o+m.dsize]
}
func (m *lpmTrie) valueOff(n uint32) uint64 { return m.off(n) + 16 + m.dround }

// Header words: root and the sequence counter are atomic, the rest are
// plain under the lock.
func (m *lpmTrie) root() uint32              { return mem.AtomicLoad32(m.hdr + hdrLPMRoot) }
func (m *lpmTrie) word(off int) uint32       { return native.Uint32(m.mapping[off:]) }
func (m *lpmTrie) setWord(off int, v uint32) { native.PutUint32(m.mapping[off:], v) }

// slot addresses: a link word is either the root or a node's child.
type lpmSlot uint64

func (m *lpmTrie) rootSlot() lpmSlot { return lpmSlot(hdrLPMRoot) }
func (m *lpmTrie) childSlot(n, bit uint32) lpmSlot {
	return lpmSlot(m.off(n) + uint64(bit)*4)
}
func (m *lpmTrie) load(s lpmSlot) uint32     { return mem.AtomicLoad32(m.hdr + uint64(s)) }
func (m *lpmTrie) store(s lpmSlot, v uint32) { mem.AtomicStore32(m.hdr+uint64(s), v) }

// extractBit is extract_bit: bit index of data, most significant first.
func extractBit(data []byte, index uint32) uint32 {
	return uint32(data[index/8]>>(7-index%8)) & 1
}

// match is longest_prefix_match: how many leading bits of node n's data
// and key's agree, at most min(n's prefixlen, key's). Like the kernel's,
// it compares 8, then 4, 2 and 1 bytes at a time.
func (m *lpmTrie) match(n uint32, plen uint32, kdata []byte) uint32 {
	limit := min(m.prefixlen(n), plen)
	nd := m.data(n)
	prefix := uint32(0)
	for len(nd) >= 8 {
		if x := binary.BigEndian.Uint64(nd) ^ binary.BigEndian.Uint64(kdata); x != 0 {
			return min(prefix+uint32(bits.LeadingZeros64(x)), limit)
		}
		if prefix += 64; prefix >= limit {
			return limit
		}
		nd, kdata = nd[8:], kdata[8:]
	}
	if len(nd) >= 4 {
		if x := binary.BigEndian.Uint32(nd) ^ binary.BigEndian.Uint32(kdata); x != 0 {
			return min(prefix+uint32(bits.LeadingZeros32(x)), limit)
		}
		if prefix += 32; prefix >= limit {
			return limit
		}
		nd, kdata = nd[4:], kdata[4:]
	}
	for i := range nd {
		if x := nd[i] ^ kdata[i]; x != 0 {
			return min(prefix+uint32(bits.LeadingZeros8(x)), limit)
		}
		if prefix += 8; prefix >= limit {
			return limit
		}
	}
	return min(prefix, limit)
}

// lookup is trie_lookup_elem: the node of the longest prefix matching key
// (whose prefixlen is how many bits of its data to match), 0 if none.
func (m *lpmTrie) lookup(key []byte) uint32 {
	plen, kdata := native.Uint32(key), key[4:]
	if plen > m.maxPrefix {
		return 0
	}
	seq := m.hdr + hdrLPMSeq
	for spins := 0; ; spins++ {
		s := mem.AtomicLoad32(seq)
		if s&1 != 0 {
			if spins > 16 {
				runtime.Gosched()
			}
			continue
		}
		found := m.walk(plen, kdata)
		if mem.AtomicLoad32(seq) == s {
			return found
		}
	}
}

func (m *lpmTrie) walk(plen uint32, kdata []byte) uint32 {
	found := uint32(0)
	n := m.root()
	for steps := uint32(0); n != 0 && n < m.nodes && steps <= m.maxPrefix+1; steps++ {
		matchlen := m.match(n, plen, kdata)
		if matchlen == m.maxPrefix {
			return n
		}
		np := m.prefixlen(n)
		if matchlen < np || np >= m.maxPrefix {
			break
		}
		if m.flags(n)&lpmIM == 0 {
			found = n
		}
		n = m.child(n, extractBit(kdata, np))
	}
	return found
}

// Writers hold the lock and make the sequence counter odd while they work.
func (m *lpmTrie) writeLock() {
	m.lock(hdrLock)
	mem.AtomicAdd32(m.hdr+hdrLPMSeq, 1)
}

func (m *lpmTrie) writeUnlock() {
	mem.AtomicAdd32(m.hdr+hdrLPMSeq, 1)
	m.unlock(hdrLock)
}

// alloc takes a node: a never-used one while there are, else the oldest
// freed one.
func (m *lpmTrie) alloc() (uint32, bool) {
	if b := m.word(hdrLPMBump); b < m.nodes {
		m.setWord(hdrLPMBump, b+1)
		return b, true
	}
	h := m.word(hdrLPMFreeHead)
	if h == 0 {
		return 0, false
	}
	next := native.Uint32(m.mapping[m.off(h):])
	m.setWord(hdrLPMFreeHead, next)
	if next == 0 {
		m.setWord(hdrLPMFreeTail, 0)
	}
	return h, true
}

// release queues node n for reuse, linking the free queue through child0.
// Lookups standing on n see the sequence counter move and retry.
func (m *lpmTrie) release(n uint32) {
	if n == 0 {
		return
	}
	native.PutUint32(m.mapping[m.off(n)+4:], 0)
	native.PutUint32(m.mapping[m.off(n):], 0)
	if t := m.word(hdrLPMFreeTail); t != 0 {
		native.PutUint32(m.mapping[m.off(t):], n)
	} else {
		m.setWord(hdrLPMFreeHead, n)
	}
	m.setWord(hdrLPMFreeTail, n)
}

// fill writes a node's prefix, flags, data and (if value is non-nil) value.
func (m *lpmTrie) fill(n, plen, flags uint32, data, value []byte) {
	o := m.off(n)
	native.PutUint32(m.mapping[o:], 0)
	native.PutUint32(m.mapping[o+4:], 0)
	native.PutUint32(m.mapping[o+8:], plen)
	native.PutUint32(m.mapping[o+12:], flags)
	copy(m.mapping[o+16:o+16+m.dsize], data)
	if value != nil {
		copy(m.mapping[m.valueOff(n):], value)
	}
}

// checkAdd is trie_check_add_elem.
func (m *lpmTrie) checkAdd(flags uint64) error {
	if flags == UpdateExist {
		return ENOENT
	}
	e := m.word(hdrLPMEntries)
	if e == m.max {
		return ENOSPC
	}
	m.setWord(hdrLPMEntries, e+1)
	return nil
}

// update is trie_update_elem.
func (m *lpmTrie) update(key, value []byte, flags uint64) error {
	if flags > UpdateExist {
		return EINVAL
	}
	plen, kdata := native.Uint32(key), key[4:]
	if plen > m.maxPrefix {
		return EINVAL
	}
	m.writeLock()
	defer m.writeUnlock()
	nn, ok := m.alloc()
	if !ok {
		return ENOMEM
	}
	m.fill(nn, plen, 0, kdata, value)

	slot := m.rootSlot()
	var node, matchlen uint32
	for node = m.load(slot); node != 0; node = m.load(slot) {
		matchlen = m.match(node, plen, kdata)
		np := m.prefixlen(node)
		if np != matchlen || np == plen || np == m.maxPrefix {
			break
		}
		slot = m.childSlot(node, extractBit(kdata, np))
	}
	if node == 0 {
		if err := m.checkAdd(flags); err != nil {
			m.release(nn)
			return err
		}
		m.store(slot, nn)
		return nil
	}
	if m.prefixlen(node) == matchlen {
		if m.flags(node)&lpmIM == 0 {
			if flags == UpdateNoExist {
				m.release(nn)
				return EEXIST
			}
		} else if err := m.checkAdd(flags); err != nil {
			m.release(nn)
			return err
		}
		m.setChild(nn, 0, m.child(node, 0))
		m.setChild(nn, 1, m.child(node, 1))
		m.store(slot, nn)
		m.release(node)
		return nil
	}
	if err := m.checkAdd(flags); err != nil {
		m.release(nn)
		return err
	}
	if matchlen == plen {
		m.setChild(nn, extractBit(m.data(node), matchlen), node)
		m.store(slot, nn)
		return nil
	}
	im, ok := m.alloc()
	if !ok {
		m.setWord(hdrLPMEntries, m.word(hdrLPMEntries)-1)
		m.release(nn)
		return ENOMEM
	}
	m.fill(im, matchlen, lpmIM, m.data(node), nil)
	if extractBit(kdata, matchlen) != 0 {
		m.setChild(im, 0, node)
		m.setChild(im, 1, nn)
	} else {
		m.setChild(im, 0, nn)
		m.setChild(im, 1, node)
	}
	m.store(slot, im)
	return nil
}

// remove is trie_delete_elem.
func (m *lpmTrie) remove(key []byte) error {
	plen, kdata := native.Uint32(key), key[4:]
	if plen > m.maxPrefix {
		return EINVAL
	}
	m.writeLock()
	defer m.writeUnlock()
	trim, trim2 := m.rootSlot(), m.rootSlot()
	var parent, node, matchlen uint32
	for node = m.load(trim); node != 0; node = m.load(trim) {
		matchlen = m.match(node, plen, kdata)
		np := m.prefixlen(node)
		if np != matchlen || np == plen {
			break
		}
		parent = node
		trim2 = trim
		trim = m.childSlot(node, extractBit(kdata, np))
	}
	if node == 0 || m.prefixlen(node) != plen || m.prefixlen(node) != matchlen || m.flags(node)&lpmIM != 0 {
		return ENOENT
	}
	m.setWord(hdrLPMEntries, m.word(hdrLPMEntries)-1)
	c0, c1 := m.child(node, 0), m.child(node, 1)
	if c0 != 0 && c1 != 0 {
		native.PutUint32(m.mapping[m.off(node)+12:], m.flags(node)|lpmIM)
		return nil
	}
	if parent != 0 && m.flags(parent)&lpmIM != 0 && c0 == 0 && c1 == 0 {
		if node == m.child(parent, 0) {
			m.store(trim2, m.child(parent, 1))
		} else {
			m.store(trim2, m.child(parent, 0))
		}
		m.release(parent)
		m.release(node)
		return nil
	}
	switch {
	case c0 != 0:
		m.store(trim, c0)
	case c1 != 0:
		m.store(trim, c1)
	default:
		m.store(trim, 0)
	}
	m.release(node)
	return nil
}

// nextKey is trie_get_next_key: post-order, leftmost first.
func (m *lpmTrie) nextKey(key, next []byte) error {
	m.lock(hdrLock)
	defer m.unlock(hdrLock)
	searchRoot := m.root()
	if searchRoot == 0 {
		return ENOENT
	}
	var nextNode uint32
	if key != nil && native.Uint32(key) <= m.maxPrefix {
		plen, kdata := native.Uint32(key), key[4:]
		stack := make([]uint32, 0, m.maxPrefix+1)
		var node, matchlen uint32
		for node = searchRoot; node != 0; {
			stack = append(stack, node)
			matchlen = m.match(node, plen, kdata)
			np := m.prefixlen(node)
			if np != matchlen || np == plen {
				break
			}
			node = m.child(node, extractBit(kdata, np))
		}
		if node != 0 && m.prefixlen(node) == matchlen && m.flags(node)&lpmIM == 0 {
			node = stack[len(stack)-1]
			found := false
			for sp := len(stack) - 1; sp > 0 && !found; sp-- {
				parent := stack[sp-1]
				if m.child(parent, 0) == node {
					if r := m.child(parent, 1); r != 0 {
						searchRoot = r
						found = true
						break
					}
				}
				if m.flags(parent)&lpmIM == 0 {
					nextNode = parent
					return m.copyKey(next, nextNode)
				}
				node = parent
			}
			if !found {
				return ENOENT
			}
		}
	}
	for node := searchRoot; node != 0; {
		if m.flags(node)&lpmIM != 0 {
			node = m.child(node, 0)
			continue
		}
		nextNode = node
		node = m.child(node, 0)
		if node == 0 {
			node = m.child(nextNode, 1)
		}
	}
	return m.copyKey(next, nextNode)
}

func (m *lpmTrie) copyKey(next []byte, n uint32) error {
	native.PutUint32(next, m.prefixlen(n))
	copy(next[4:], m.data(n))
	return nil
}

// Lookup is the longest-prefix match of key, as BPF_MAP_LOOKUP_ELEM does
// it for tries.
func (m *lpmTrie) Lookup(key, value []byte) error {
	if err := m.check("lookup", key, value, int(m.vsize)); err != nil {
		return err
	}
	if err := m.checkRead("lookup"); err != nil {
		return err
	}
	n := m.lookup(key)
	if n == 0 {
		return ENOENT
	}
	copy(value, m.mapping[m.valueOff(n):m.valueOff(n)+m.vsize])
	return nil
}

// Update inserts or replaces the prefix key: ENOSPC when the trie holds
// max_entries prefixes, EINVAL for a prefix longer than the data.
func (m *lpmTrie) Update(key, value []byte, flags uint64) error {
	if err := m.check("update", key, value, int(m.vsize)); err != nil {
		return err
	}
	if err := m.checkWrite("update"); err != nil {
		return err
	}
	if flags&UpdateLock != 0 {
		return m.errorf(EINVAL, "update: BPF_F_LOCK on a map without bpf_spin_lock")
	}
	if err := m.update(key, value, flags); err == EINVAL {
		return m.errorf(EINVAL, "update: flags %#x, prefix length %d (at most %d)", flags, native.Uint32(key), m.maxPrefix)
	} else {
		return err
	}
}

// Delete removes the exact prefix key.
func (m *lpmTrie) Delete(key []byte) error {
	if err := m.check("delete", key, nil, 0); err != nil {
		return err
	}
	if err := m.checkWrite("delete"); err != nil {
		return err
	}
	return m.remove(key)
}

// NextKey walks the trie in the kernel's post-order; a key not in the
// trie (or nil) starts from the leftmost prefix.
func (m *lpmTrie) NextKey(key, next []byte) error {
	if err := m.checkNext(key, next); err != nil {
		return err
	}
	if err := m.checkRead("next key"); err != nil {
		return err
	}
	return m.nextKey(key, next)
}

// LookupAndDelete is ENOTSUPP for tries.
func (m *lpmTrie) LookupAndDelete(key, value []byte) error {
	return m.unsupported("lookup and delete", ENOTSUPP)
}

// LookupElem returns the address of the value of key's longest matching
// prefix, 0 if none.
func (m *lpmTrie) LookupElem(cpu int, key []byte) uint64 {
	if len(key) != int(m.spec.KeySize) || m.closed.Load() {
		return 0
	}
	n := m.lookup(key)
	if n == 0 {
		return 0
	}
	return m.hdr + m.valueOff(n)
}

// UpdateElem is bpf_map_update_elem on a trie.
func (m *lpmTrie) UpdateElem(cpu int, key, value []byte, flags uint64) error {
	if m.spec.Flags&FlagRdOnlyProg != 0 {
		return EPERM
	}
	if len(key) != int(m.spec.KeySize) || uint64(len(value)) != m.vsize {
		return EINVAL
	}
	if m.closed.Load() {
		return EBADF
	}
	return m.update(key, value, flags)
}

// DeleteElem is bpf_map_delete_elem on a trie.
func (m *lpmTrie) DeleteElem(cpu int, key []byte) error {
	if m.spec.Flags&FlagRdOnlyProg != 0 {
		return EPERM
	}
	if len(key) != int(m.spec.KeySize) {
		return EINVAL
	}
	if m.closed.Load() {
		return EBADF
	}
	return m.remove(key)
}

// Regions is the node array; program memory is each node's value.
func (m *lpmTrie) Regions() []Region {
	return []Region{{
		Data:     m.mapping[headerSize : headerSize+uint64(m.nodes)*m.nsize],
		Writable: m.spec.Flags&FlagRdOnlyProg == 0,
		Stride:   m.nsize, Offset: 16 + m.dround, Len: m.vsize,
	}}
}

// Close unmaps the trie.
func (m *lpmTrie) Close() error { return m.free() }
