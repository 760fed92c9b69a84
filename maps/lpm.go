package maps

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

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
// 2·max_entries+1 nodes always hold the trie. Freed nodes wait out a grace
// period before they are reused (grace.go), as the kernel's do (kfree_rcu),
// so that a value pointer a program got inside its run's Section stays that
// prefix's value until the run ends; max(max_entries, 64) more nodes hold
// them meanwhile. Address space is reserved for all and pages are committed
// as nodes are first used. (The kernel allocates nodes on demand instead;
// waggle's reservation limits max_entries to 715,827,881, ENOMEM above.)
// An update takes nodes only once it will link them, so an update that
// fails (a full trie, EEXIST) takes no node.
//
// Updates and deletes take the map's lock and bump a sequence counter to
// odd before changing links and back to even after; lookups take no lock
// and retry when the counter moved (a seqlock: it keeps each walk, and a
// Go-side lookup's copy of the value, consistent whether or not a section
// holds the trie), and after a few retries wait for the lock. Freed nodes
// queue first-in first-out with the epoch of their free; an update takes
// the oldest once its grace period has passed, else a node never used. When
// there is neither, every spare node is waiting for a section to end: a
// Go-side update then waits for it, as synchronize_rcu would (the lock
// released meanwhile), and a program's update, which must not wait (its
// own run may be the section), reuses the oldest node early, counted in
// early. A Go-side wait gives up after graceWait and reuses early too,
// and waits no more until the epoch moves: a section that never ends must
// not stall every update. Only a section that lasts while writers free more
// than max(max_entries, 64) nodes can see an early reuse; Linux, which
// allocates nodes, has no such bound.
//
// The lock, the entry count and the free queue are Go memory (header.go
// says why); the seqlock's counter and the root are header words, which a
// native lookup reads to walk the trie as lookup does (a corrupt root is a
// bad link, a corrupt counter sends lookups to the lock). Every node a
// walk reaches is checked: an
// index below the node slots, a prefix length no longer than the key's
// data and longer than its parent's (which bounds every descent by the
// key's bits), and, under the lock, a node in use rather than free.
// NextKey also checks that each child's data extends its parent's prefix
// and sits on the side its bit says, so that the key it returns leads
// back to the same node and a loop over NextKey ends. Anything else is
// ErrCorrupt.
//
// Type-specific header words: +96 nodes u32 (the node slots, written by
// New), +100 root u32 (the root node's index, 0 for none), +104 seq u32
// (odd while a writer changes links).
const (
	hdrLPMNodes = hdrTypeState + 24
	hdrLPMRoot  = hdrTypeState + 28
	hdrLPMSeq   = hdrTypeState + 32

	lpmIM = 1 // LPM_TREE_NODE_FLAG_IM

	// lpmRetries bounds a lookup's lock-free attempts.
	lpmRetries = 16

	// lpmLimbo is the least number of nodes reserved for freed nodes
	// waiting out a grace period.
	lpmLimbo = 64

	// lpmBatch is how many freed nodes queue before an update advances
	// the epoch to reuse them, while nodes never used remain: advancing
	// costs two atomic read-modify-writes, which a queue of this length
	// shares among as many updates.
	lpmBatch = 16
)

// errGrace is insert's answer when every spare node waits for a grace
// period and the caller may wait (lpmTrie.update).
var errGrace = errors.New("no node past its grace period")

type lpmTrie struct {
	base
	dsize, dround uint64 // data bytes, rounded up to 8
	maxPrefix     uint32
	vsize         uint64
	nsize         uint64 // node size
	nodes         uint32 // node slots, including unused index 0
	max           uint32

	mu   sync.Mutex
	seq  *atomic.Uint32 // odd while a writer changes links (header word hdrLPMSeq)
	root *atomic.Uint32 // header word hdrLPMRoot
	g    grace          // readers' sections, and the epoch freed nodes are tagged with
	// Under mu:
	entries            uint32
	bump               uint32 // first node never used
	freeHead, freeTail uint32
	freeLen            uint32   // nodes in the free queue
	links              []uint32 // the free queue's links
	freedAt            []uint64 // the epoch each free node was freed in
	used               []bool   // nodes in the trie (or being put there)
	inUse              uint32   // how many
	fulls              uint64   // ENOSPC answers, for audits
	auditErr           error    // what the last audit found
	waitFor            uint64   // the epoch errGrace waits out
	stalled            uint64   // 1 + the epoch in which a Go-side wait gave up, 0 if none
	early              uint64   // nodes reused before their grace period
	waits              uint64   // Go-side updates that waited for a grace period
	graceWait          time.Duration
}

func newLPM(spec Spec) (*lpmTrie, error) {
	m := &lpmTrie{dsize: uint64(spec.KeySize) - 4, vsize: uint64(spec.ValueSize), max: spec.MaxEntries}
	m.dround = (m.dsize + 7) &^ 7
	m.maxPrefix = uint32(m.dsize * 8)
	m.nsize = 16 + m.dround + roundUp8(spec.ValueSize)
	n := 2*uint64(spec.MaxEntries) + 2 + max(uint64(spec.MaxEntries), lpmLimbo)
	if n > maxElements {
		return nil, specError(&spec, ENOMEM, "max_entries %d: waggle reserves nodes up front and supports at most %d entries", spec.MaxEntries, (maxElements-2)/3)
	}
	m.nodes = uint32(n)
	if err := m.init(spec, n*m.nsize); err != nil {
		return nil, err
	}
	m.put64(hdrData, m.addr(headerSize))
	m.put32(hdrElemSize, uint32(m.nsize))
	m.put32(hdrLPMNodes, m.nodes)
	m.seq = (*atomic.Uint32)(unsafe.Pointer(&m.mapping[hdrLPMSeq]))
	m.root = (*atomic.Uint32)(unsafe.Pointer(&m.mapping[hdrLPMRoot]))
	m.bump = 1
	m.links = make([]uint32, n)
	m.freedAt = make([]uint64, n)
	m.used = make([]bool, n)
	m.g = newGrace(spec.CPUs)
	m.graceWait = graceWait
	m.private = n*13 + uint64(len(m.g.stripes))*64
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

// slot addresses: a link word is either the root (0) or a node's child.
type lpmSlot uint64

func (m *lpmTrie) rootSlot() lpmSlot { return 0 }
func (m *lpmTrie) childSlot(n, bit uint32) lpmSlot {
	return lpmSlot(m.off(n) + uint64(bit)*4)
}
func (m *lpmTrie) load(s lpmSlot) uint32 {
	if s == 0 {
		return m.root.Load()
	}
	return mem.AtomicLoad32(m.hdr + uint64(s))
}
func (m *lpmTrie) store(s lpmSlot, v uint32) {
	if s == 0 {
		m.root.Store(v)
		return
	}
	mem.AtomicStore32(m.hdr+uint64(s), v)
}

// extractBit is extract_bit: bit index of data, most significant first.
func extractBit(data []byte, index uint32) uint32 {
	return uint32(data[index/8]>>(7-index%8)) & 1
}

// errRetry is a lock-free walk's answer to a trie that makes no sense: a
// writer changed it underneath, or it is corrupt; the lock tells which.
var errRetry = errors.New("retry under the lock")

// checkNode checks node n, reached below a node of prefix length parent
// (-1 at the root): an index of a node slot, a prefix length within the
// key's bits and longer than the parent's, and under the lock (locked) a
// node in use.
func (m *lpmTrie) checkNode(n uint32, parent int64, locked bool) error {
	if n >= m.nodes {
		if !locked {
			return errRetry
		}
		return m.corrupt("link to node %d, past the %d nodes", n, m.nodes)
	}
	np := int64(m.prefixlen(n))
	if np > int64(m.maxPrefix) || np <= parent {
		if !locked {
			return errRetry
		}
		if np > int64(m.maxPrefix) {
			return m.corrupt("node %d: prefix length %d, at most %d", n, np, m.maxPrefix)
		}
		return m.corrupt("node %d: prefix length %d below a node of %d (a loop or a misplaced node)", n, np, parent)
	}
	if locked && !m.used[n] {
		return m.corrupt("node %d is in the trie but free", n)
	}
	return nil
}

// checkEdge checks that child c of node n (both checked) holds n's prefix
// and, at n's prefix length, the bit of the side it hangs on: where a
// lookup of c's key would look for it.
func (m *lpmTrie) checkEdge(n, bit, c uint32) error {
	np := m.prefixlen(n)
	if m.match(c, np, m.data(n)) < np || extractBit(m.data(c), np) != bit {
		return m.corrupt("node %d hangs on side %d of node %d but its data does not say so", c, bit, n)
	}
	return nil
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
// (whose prefixlen is how many bits of its data to match), 0 if none. With
// value not nil it also copies the node's value there, within the same
// seqlock read (or under the lock), so that the copy is the value of the
// prefix found even if a writer frees and reuses the node meanwhile.
func (m *lpmTrie) lookup(key, value []byte) (uint32, error) {
	plen, kdata := native.Uint32(key), key[4:]
	if plen > m.maxPrefix {
		return 0, nil
	}
	for try := 0; try < lpmRetries; try++ {
		s := m.seq.Load()
		if s&1 != 0 {
			runtime.Gosched()
			continue
		}
		found, err := m.walk(plen, kdata, false)
		if err == nil && found != 0 && value != nil {
			m.copyValue(value, found)
		}
		if err == nil && m.seq.Load() == s {
			return found, nil
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	found, err := m.walk(plen, kdata, true)
	if err == nil && found != 0 && value != nil {
		m.copyValue(value, found)
	}
	return found, err
}

// copyValue copies node n's value, which a writer may be reusing: lookup
// checks afterwards that none did.
func (m *lpmTrie) copyValue(value []byte, n uint32) {
	copy(value, m.mapping[m.valueOff(n):m.valueOff(n)+m.vsize])
}

func (m *lpmTrie) walk(plen uint32, kdata []byte, locked bool) (uint32, error) {
	found := uint32(0)
	parent := int64(-1)
	for n := m.root.Load(); n != 0; {
		if err := m.checkNode(n, parent, locked); err != nil {
			return 0, err
		}
		matchlen := m.match(n, plen, kdata)
		if matchlen == m.maxPrefix {
			return n, nil
		}
		np := m.prefixlen(n)
		if matchlen < np {
			break
		}
		if m.flags(n)&lpmIM == 0 {
			found = n
		}
		parent = int64(np)
		n = m.child(n, extractBit(kdata, np))
	}
	return found, nil
}

// Writers hold the lock and make the sequence counter odd while they work.
func (m *lpmTrie) writeLock() {
	m.mu.Lock()
	m.seq.Add(1)
}

func (m *lpmTrie) writeUnlock() {
	m.seq.Add(1)
	m.mu.Unlock()
}

// alloc takes a node: the oldest freed one once its grace period has
// passed, else one never used. It advances the epoch to get there only
// once lpmBatch nodes queue or none was never used, so that the updates of
// a trie without readers share the cost and still reuse nodes freed
// moments ago, whose memory is in cache. When every spare node is still
// waiting for sections to end, a caller that may wait (mayWait, the Go
// side) gets errGrace and waits for the oldest (update); a program's
// update reuses the oldest early. 2·max_entries+1 nodes always suffice for
// the trie (see above), so running out of nodes altogether means nodes
// were lost: cut off the trie by a write over a link.
func (m *lpmTrie) alloc(mayWait bool) (uint32, error) {
	n := uint32(0)
	switch {
	case m.freeHead != 0 && m.g.reusable(m.freedAt[m.freeHead]):
		n = m.popFree()
	case m.freeHead != 0 && (m.freeLen >= lpmBatch || m.bump >= m.nodes) && m.g.passed(m.freedAt[m.freeHead]):
		n = m.popFree()
	case m.bump < m.nodes:
		n = m.bump
		m.bump++
	case m.freeHead != 0 && mayWait && m.stalled != m.g.now()+1:
		m.waitFor = m.freedAt[m.freeHead]
		m.waits++
		return 0, errGrace
	case m.freeHead != 0:
		m.early++
		n = m.popFree()
	default:
		return 0, m.corrupt("all %d nodes in use for %d entries: nodes were cut off the trie", m.nodes-1, m.entries)
	}
	m.used[n] = true
	m.inUse++
	return n, nil
}

// popFree takes the node at the head of the free queue.
func (m *lpmTrie) popFree() uint32 {
	n := m.freeHead
	m.freeHead = m.links[n]
	if m.freeHead == 0 {
		m.freeTail = 0
	}
	m.freeLen--
	return n
}

// release queues node n, which the caller has unlinked, for reuse after a
// grace period. Lookups standing on n see the sequence counter move and
// retry.
func (m *lpmTrie) release(n uint32) error {
	if n == 0 {
		return nil
	}
	if !m.used[n] {
		return m.corrupt("node %d freed twice", n)
	}
	m.used[n] = false
	m.inUse--
	native.PutUint32(m.mapping[m.off(n)+4:], 0)
	native.PutUint32(m.mapping[m.off(n):], 0)
	m.links[n] = 0
	m.freedAt[n] = m.g.now()
	m.freeLen++
	if m.freeTail != 0 {
		m.links[m.freeTail] = n
	} else {
		m.freeHead = n
	}
	m.freeTail = n
	return nil
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

// checkAdd is trie_check_add_elem. A full trie is audited (see full).
func (m *lpmTrie) checkAdd(flags uint64) error {
	if flags == UpdateExist {
		return ENOENT
	}
	if m.entries >= m.max {
		return m.full()
	}
	m.entries++
	return nil
}

// full is the answer to a new prefix in a trie holding max_entries: ENOSPC,
// unless the trie holds fewer, some cut off by a write over a link. Like
// a full hash map (hashMap.full), the trie is walked whole, once every
// max_entries answers.
func (m *lpmTrie) full() error {
	if m.fulls%max(64, uint64(m.max)) == 0 {
		m.auditErr = m.audit()
	}
	m.fulls++
	if m.auditErr != nil {
		return m.auditErr
	}
	return ENOSPC
}

// audit walks the whole trie (locked), checking every node and edge, and
// counts its prefixes and nodes against the entry and node counts.
func (m *lpmTrie) audit() error {
	seen := make([]bool, m.nodes)
	var nodes, leaves uint32
	type at struct {
		n      uint32
		parent int64
	}
	stack := []at{{m.root.Load(), -1}}
	for len(stack) > 0 {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if t.n == 0 {
			continue
		}
		if err := m.checkNode(t.n, t.parent, true); err != nil {
			return err
		}
		if seen[t.n] {
			return m.corrupt("node %d is reached twice", t.n)
		}
		seen[t.n] = true
		nodes++
		if m.flags(t.n)&lpmIM == 0 {
			leaves++
		}
		for bit := range uint32(2) {
			if c := m.child(t.n, bit); c != 0 {
				if err := m.checkNode(c, int64(m.prefixlen(t.n)), true); err != nil {
					return err
				}
				if err := m.checkEdge(t.n, bit, c); err != nil {
					return err
				}
				stack = append(stack, at{c, int64(m.prefixlen(t.n))})
			}
		}
	}
	if leaves != m.entries || nodes != m.inUse {
		return m.corrupt("%d prefixes and %d nodes counted, %d and %d in the trie: some were cut off", m.entries, m.inUse, leaves, nodes)
	}
	return nil
}

// update is trie_update_elem. mayWait (the Go side) lets it wait for a
// grace period when every spare node is waiting for one, with the lock
// released, and start again.
func (m *lpmTrie) update(key, value []byte, flags uint64, mayWait bool) error {
	if flags > UpdateExist {
		return EINVAL
	}
	plen, kdata := native.Uint32(key), key[4:]
	if plen > m.maxPrefix {
		return EINVAL
	}
	stalled := false
	for {
		m.writeLock()
		if stalled {
			m.stalled = m.g.now() + 1
		}
		err := m.insert(plen, kdata, value, flags, mayWait)
		t := m.waitFor
		m.writeUnlock()
		if err != errGrace {
			return err
		}
		stalled = !m.g.wait(t, m.graceWait)
	}
}

// insert links a new node for the prefix (plen, kdata) with value. Unlike
// the kernel, which allocates the node first, it takes nodes only once the
// insert will link them, so failed inserts (a full trie, EEXIST) recycle
// no freed node a program may still be reading.
func (m *lpmTrie) insert(plen uint32, kdata, value []byte, flags uint64, mayWait bool) error {
	slot := m.rootSlot()
	var node, matchlen uint32
	parent := int64(-1)
	for node = m.load(slot); node != 0; node = m.load(slot) {
		if err := m.checkNode(node, parent, true); err != nil {
			return err
		}
		matchlen = m.match(node, plen, kdata)
		np := m.prefixlen(node)
		if np != matchlen || np == plen || np == m.maxPrefix {
			break
		}
		parent = int64(np)
		slot = m.childSlot(node, extractBit(kdata, np))
	}
	if node != 0 && m.prefixlen(node) == matchlen {
		if m.flags(node)&lpmIM == 0 {
			if flags == UpdateNoExist {
				return EEXIST
			}
		} else if err := m.checkAdd(flags); err != nil {
			return err
		}
		nn, err := m.alloc(mayWait)
		if err != nil {
			if m.flags(node)&lpmIM != 0 {
				m.entries--
			}
			return err
		}
		m.fill(nn, plen, 0, kdata, value)
		m.setChild(nn, 0, m.child(node, 0))
		m.setChild(nn, 1, m.child(node, 1))
		m.store(slot, nn)
		return m.release(node)
	}
	if err := m.checkAdd(flags); err != nil {
		return err
	}
	nn, err := m.alloc(mayWait)
	if err != nil {
		m.entries--
		return err
	}
	m.fill(nn, plen, 0, kdata, value)
	switch {
	case node == 0:
		m.store(slot, nn)
		return nil
	case matchlen == plen:
		m.setChild(nn, extractBit(m.data(node), matchlen), node)
		m.store(slot, nn)
		return nil
	}
	im, err := m.alloc(mayWait)
	if err != nil {
		m.entries--
		if rerr := m.release(nn); rerr != nil {
			return rerr
		}
		return err
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
	above := int64(-1)
	for node = m.load(trim); node != 0; node = m.load(trim) {
		if err := m.checkNode(node, above, true); err != nil {
			return err
		}
		matchlen = m.match(node, plen, kdata)
		np := m.prefixlen(node)
		if np != matchlen || np == plen {
			break
		}
		above = int64(np)
		parent = node
		trim2 = trim
		trim = m.childSlot(node, extractBit(kdata, np))
	}
	if node == 0 || m.prefixlen(node) != plen || m.prefixlen(node) != matchlen || m.flags(node)&lpmIM != 0 {
		return ENOENT
	}
	if m.entries == 0 {
		return m.corrupt("prefix %d/%d found in a trie that counts no entries", plen, len(kdata)*8)
	}
	m.entries--
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
		if err := m.release(parent); err != nil {
			return err
		}
		return m.release(node)
	}
	switch {
	case c0 != 0:
		m.store(trim, c0)
	case c1 != 0:
		m.store(trim, c1)
	default:
		m.store(trim, 0)
	}
	return m.release(node)
}

// nextKey is trie_get_next_key: post-order, leftmost first.
func (m *lpmTrie) nextKey(key, next []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	searchRoot := m.root.Load()
	if searchRoot == 0 {
		return ENOENT
	}
	// above is the node searchRoot hangs from (0 for the root), and bit
	// the side.
	var above, bit uint32
	if key != nil && native.Uint32(key) <= m.maxPrefix {
		plen, kdata := native.Uint32(key), key[4:]
		stack := make([]uint32, 0, m.maxPrefix+1)
		var node, matchlen uint32
		parent := int64(-1)
		for node = searchRoot; node != 0; {
			if err := m.checkNode(node, parent, true); err != nil {
				return err
			}
			stack = append(stack, node)
			matchlen = m.match(node, plen, kdata)
			np := m.prefixlen(node)
			if np != matchlen || np == plen {
				break
			}
			parent = int64(np)
			node = m.child(node, extractBit(kdata, np))
		}
		if node != 0 && m.prefixlen(node) == matchlen && m.flags(node)&lpmIM == 0 {
			node = stack[len(stack)-1]
			found := false
			for sp := len(stack) - 1; sp > 0 && !found; sp-- {
				parent := stack[sp-1]
				if m.child(parent, 0) == node {
					if r := m.child(parent, 1); r != 0 {
						searchRoot, above, bit = r, parent, 1
						found = true
						break
					}
				}
				if m.flags(parent)&lpmIM == 0 {
					return m.copyKey(next, parent)
				}
				node = parent
			}
			if !found {
				return ENOENT
			}
		}
	}
	parent := int64(-1)
	if above != 0 {
		parent = int64(m.prefixlen(above))
	}
	var nextNode uint32
	for node := searchRoot; node != 0; {
		if err := m.checkNode(node, parent, true); err != nil {
			return err
		}
		if above != 0 {
			if err := m.checkEdge(above, bit, node); err != nil {
				return err
			}
		}
		parent, above = int64(m.prefixlen(node)), node
		if m.flags(node)&lpmIM != 0 {
			node, bit = m.child(node, 0), 0
			continue
		}
		nextNode = node
		node, bit = m.child(node, 0), 0
		if node == 0 {
			node, bit = m.child(nextNode, 1), 1
		}
	}
	if nextNode == 0 {
		return m.corrupt("intermediate node without a prefix below it")
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
	n, err := m.lookup(key, value)
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	if n == 0 {
		return ENOENT
	}
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
	if err := m.update(key, value, flags, true); err == EINVAL {
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
	n, _ := m.lookup(key, nil)
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
	return m.update(key, value, flags, false)
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

// graceState implements graced: sections hold the trie's epoch.
func (m *lpmTrie) graceState() *grace { return &m.g }

// Close unmaps the trie.
func (m *lpmTrie) Close() error { return m.free() }
