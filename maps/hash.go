package maps

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// Hash maps (BPF_MAP_TYPE_HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH,
// HASH_OF_MAPS; DEVMAP_HASH reuses the table), after kernel/bpf/hashtab.c.
//
// Layout in the mapping (offsets from the header):
//
//	data ─► buckets: n_buckets × 8 bytes, n_buckets = roundup_pow_of_two(max_entries)
//	        ┌──────────────┬──────────────┐
//	        │ head u32     │ reserved u32 │   head: element index, or nulls(bucket)
//	        └──────────────┴──────────────┘
//	aux ──► elements: total × elem_size bytes
//	        ┌──────────────┬──────────────┬──────────────────┬─────────────────────────┐
//	        │ next u32     │ hash u32     │ key (roundUp8)   │ value                   │
//	        └──────────────┴──────────────┴──────────────────┴─────────────────────────┘
//	        value: roundUp8(value_size) bytes, per-CPU: cpus × roundUp8(value_size),
//	        hash of maps: the inner map's Handle (8 bytes); LRU maps add 16
//	        bytes of recency state after the value (lru.go)
//
// Chains are hlist_nulls lists, as in the kernel: a chain ends in the
// "nulls" value 1<<31 | bucket rather than a plain terminator. Lookups take
// no lock; they follow next words loaded atomically, and an element being
// reused can carry a reader into another chain, which then ends in another
// bucket's nulls: the reader notices and restarts. A freed element keeps
// its next word for readers standing on it (the kernel's pcpu_freelist
// overlays hash_node.pprev for the same reason).
//
// Updates take the bucket's lock (locks.go). A new key takes an element
// from the free list (a lock-free stack with a generation tag against ABA,
// falling back to elements never used, so untouched memory stays
// uncommitted). A replaced key gets a new element, linked at the head
// before the old one is unlinked (htab_map_update_elem), so a concurrent
// lookup finds one whole value or the other. total = max_entries plus
// spares for replacements in flight (the kernel's per-CPU extra_elems); if
// more replacements than that race, the value is overwritten in place under
// the bucket lock instead. Per-CPU values are updated in place, as the
// kernel does.
//
// The element count, the free list and the LRU lists are Go memory
// (header.go says why). Whatever the mapping holds, a chain walked under
// its bucket lock is checked link by link: every index is below total,
// every element's hash belongs to the bucket, the chain is no longer than
// the table and ends in its own bucket's nulls. Anything else is
// ErrCorrupt. A lock-free lookup that keeps meeting a chain it cannot
// finish walks it again under the lock, where only corruption can explain
// it.
//
// Type-specific header words (see header.go), written by New:
//
//	+84  total u32: elements in the mapping
//	+112 tick u64 (atomic): the LRU clock (lru.go)
const (
	hdrTotal = hdrTypeState + 12
	hdrTick  = hdrTypeState + 40

	nullsBit = 1 << 31

	// maxElements bounds the elements of one table: indices and nulls
	// share 32 bits.
	maxElements = 1<<31 - 1

	// inUse marks an element's free-list link while the element holds a
	// key, so freeing it twice is noticed.
	inUse = 1<<32 - 1

	// findRetries bounds the restarts of a lock-free lookup before it
	// walks the chain under the bucket lock.
	findRetries = 4
)

// HeaderHashTotal is the offset of the total word of a hash family
// header, and HashNulls the bit that marks a chain's end (with the
// bucket's index): what native code needs to walk a chain as find does.
const (
	HeaderHashTotal = hdrTotal
	HashNulls       = nullsBit
	// HashRetries is how many times a lock-free lookup walks a chain that
	// ended in another bucket's nulls before it asks the locked walk.
	HashRetries = findRetries
	// HeaderHashTick is the offset of an LRU hash's clock, a u64 each
	// lookup takes the next tick of (lru.go).
	HeaderHashTick = hdrTick
	// LRUHotSize is the size of the state at the end of an LRU hash's
	// elements that a lookup writes, LRUHotTick and LRUHotDirty the
	// offsets in it of the element's tick (u64) and dirty flag (u32):
	// a lookup stores a new tick, and queues an element not dirty for
	// the next drain (which Go does).
	LRUHotSize  = hotSize
	LRUHotTick  = hotTick
	LRUHotDirty = hotDirty
)

type hashMap struct {
	base
	percpu bool
	lru    *lruState // nil for non-LRU maps

	ks, ksr uint64 // key size, rounded up to 8
	vsize   uint64 // bytes of a value programs see (8 for hash of maps)
	vstride uint64 // roundUp8(vsize)
	varea   uint64 // value bytes of an element: vstride, or vstride*cpus
	esize   uint64
	nb      uint64 // buckets
	mask    uint32
	seed    uint32
	total   uint32 // elements
	max     uint64

	bucketsOff, elemsOff uint64

	// identity hashes a devmap hash's u32 key as itself
	// (dev_map_index_hash) instead of with jhash.
	identity bool

	inner *innerRefs // hash of maps: the Go maps behind the stored handles

	locks    stripes
	count    atomic.Uint64 // elements holding keys
	freeHead atomic.Uint64 // generation<<32 | index+1 of the first free element
	bump     atomic.Uint32 // first element never used
	// links holds each element's free-list link (index+1 of the next free
	// element, 0 at the end) while it is free, inUse while it holds a key.
	links []uint32

	auditMu  sync.Mutex
	fulls    uint64 // E2BIG answers (under auditMu)
	auditErr error  // what the last audit found
}

// newHash creates a map of the hash family. valueSize is what an element
// stores (the spec's, or 8 for a hash of maps' handles).
func newHash(spec Spec, valueSize uint64, seed uint32) (*hashMap, error) {
	m := &hashMap{
		percpu: spec.Type == PerCPUHash || spec.Type == LRUPerCPUHash,
		ks:     uint64(spec.KeySize), ksr: roundUp8(spec.KeySize),
		vsize: valueSize, vstride: (valueSize + 7) &^ 7,
		max:  uint64(spec.MaxEntries),
		seed: seed,
	}
	if spec.Flags&FlagZeroSeed != 0 {
		m.seed = 0
	}
	m.varea = m.vstride
	if m.percpu {
		m.varea *= uint64(spec.CPUs)
	}
	lru := spec.Type == LRUHash || spec.Type == LRUPerCPUHash
	m.esize = 8 + m.ksr + m.varea
	if lru {
		m.esize += hotSize
	}
	m.nb = roundUpPow2(m.max)
	m.mask = uint32(m.nb - 1)

	var spares uint64
	switch {
	case lru:
		// One spare per LRU list: its updates are serialised by the list
		// lock, so at most one replacement is in flight per list.
		spares = 1
		if spec.Flags&FlagNoCommonLRU != 0 {
			spares = uint64(spec.CPUs)
		}
	case !m.percpu:
		spares = uint64(spec.CPUs) + 1
	}
	total := m.max + spares
	if total > maxElements || m.nb > 1<<31 {
		return nil, specError(&spec, ENOMEM, "max_entries %d: too many elements for one table", spec.MaxEntries)
	}
	m.total = uint32(total)

	m.bucketsOff = headerSize
	m.elemsOff = m.bucketsOff + m.nb*8
	size := m.elemsOff + total*m.esize - headerSize
	if err := m.init(spec, size); err != nil {
		return nil, err
	}
	m.put64(hdrData, m.addr(m.bucketsOff))
	m.put64(hdrAux, m.addr(m.elemsOff))
	m.put32(hdrMask, m.mask)
	m.put32(hdrSeed, m.seed)
	m.put32(hdrElemSize, uint32(m.esize))
	m.put32(hdrTotal, m.total)
	for b := uint64(0); b < m.nb; b++ {
		native.PutUint32(m.mapping[m.bucketsOff+b*8:], nullsBit|uint32(b))
	}
	m.locks = newStripes(m.nb)
	m.private = m.locks.bytes()
	if lru {
		m.lru = newLRU(m)
	} else {
		m.links = make([]uint32, total)
		m.private += total * 4
	}
	return m, nil
}

// hashOf is htab_map_hash: jhash of the key with the map's seed.
func (m *hashMap) hashOf(key []byte) uint32 {
	if m.identity {
		return native.Uint32(key)
	}
	return keyHash(key, m.seed)
}

// Offsets and addresses of buckets and elements.
func (m *hashMap) bucketOff(b uint32) uint64 { return m.bucketsOff + uint64(b)*8 }
func (m *hashMap) elemOff(i uint32) uint64   { return m.elemsOff + uint64(i)*m.esize }
func (m *hashMap) valueOff(i uint32) uint64  { return m.elemOff(i) + 8 + m.ksr }

func (m *hashMap) loadNext(linkOff uint64) uint32 { return mem.AtomicLoad32(m.hdr + linkOff) }
func (m *hashMap) storeNext(linkOff uint64, v uint32) {
	mem.AtomicStore32(m.hdr+linkOff, v)
}

// keyAt returns element i's key.
func (m *hashMap) keyAt(i uint32) []byte {
	o := m.elemOff(i) + 8
	return m.mapping[o : o+m.ks]
}

// find looks key up without locks (lookup_nulls_elem_raw): the element
// index, or false. A walk that keeps ending somewhere other than its own
// bucket's nulls, or runs past an index no element has, restarts a few
// times and then walks under the bucket lock, which settles it.
func (m *hashMap) find(key []byte, h uint32) (uint32, bool, error) {
	b := h & m.mask
	nulls := nullsBit | b
	for range findRetries {
		n := m.loadNext(m.bucketOff(b))
		for steps := uint32(0); n&nullsBit == 0 && n < m.total && steps < m.total; steps++ {
			e := m.elemOff(n)
			if native.Uint32(m.mapping[e+4:]) == h && string(m.mapping[e+8:e+8+m.ks]) == string(key) {
				return n, true, nil
			}
			n = m.loadNext(e)
		}
		if n == nulls {
			return 0, false, nil
		}
	}
	mu := m.locks.of(b)
	mu.Lock()
	defer mu.Unlock()
	i, _, ok, err := m.findLocked(b, key, h)
	return i, ok, err
}

// findLocked looks key up in bucket b, whose lock the caller holds,
// checking the chain as it goes (see checkLink). It returns the element and
// the offset of the link word that points to it.
func (m *hashMap) findLocked(b uint32, key []byte, h uint32) (idx uint32, link uint64, ok bool, err error) {
	link = m.bucketOff(b)
	n := m.loadNext(link)
	for steps := uint32(0); n&nullsBit == 0; steps++ {
		// checkLink's checks, inline: this is every update's walk.
		if n >= m.total || steps >= m.total {
			return 0, 0, false, m.checkLink(b, n, steps)
		}
		e := m.elemOff(n)
		eh := native.Uint32(m.mapping[e+4:])
		if eh&m.mask != b {
			return 0, 0, false, m.checkLink(b, n, steps)
		}
		if eh == h && string(m.mapping[e+8:e+8+m.ks]) == string(key) {
			return n, link, true, nil
		}
		link = e
		n = m.loadNext(e)
	}
	if n != nullsBit|b {
		return 0, 0, false, m.checkEnd(b, n)
	}
	return 0, 0, false, nil
}

// checkLink checks element n, reached as the steps-th link of bucket b's
// chain under the bucket lock: an element index, of an element hashed into
// b, within a chain no longer than the table.
func (m *hashMap) checkLink(b, n, steps uint32) error {
	if n >= m.total {
		return m.corrupt("bucket %d: link %d is past the %d elements", b, n, m.total)
	}
	if steps >= m.total {
		return m.corrupt("bucket %d: chain longer than the %d elements (a loop)", b, m.total)
	}
	if eh := native.Uint32(m.mapping[m.elemOff(n)+4:]); eh&m.mask != b {
		return m.corrupt("bucket %d: element %d has hash %#x, of bucket %d", b, n, eh, eh&m.mask)
	}
	return nil
}

// checkEnd checks the terminator of bucket b's chain (locked).
func (m *hashMap) checkEnd(b, n uint32) error {
	if n != nullsBit|b {
		return m.corrupt("bucket %d: chain ends in %#x, not its nulls %#x", b, n, nullsBit|b)
	}
	return nil
}

// chain appends bucket b's elements (locked) to buf, in order, checking
// the whole chain.
func (m *hashMap) chain(b uint32, buf []uint32) ([]uint32, error) {
	n := m.loadNext(m.bucketOff(b))
	for steps := uint32(0); n&nullsBit == 0; steps++ {
		if err := m.checkLink(b, n, steps); err != nil {
			return buf, err
		}
		buf = append(buf, n)
		n = m.loadNext(m.elemOff(n))
	}
	return buf, m.checkEnd(b, n)
}

// linkOf finds the link word pointing to element i in bucket b (locked).
func (m *hashMap) linkOf(b, i uint32) (uint64, bool, error) {
	link := m.bucketOff(b)
	n := m.loadNext(link)
	for steps := uint32(0); n&nullsBit == 0; steps++ {
		if err := m.checkLink(b, n, steps); err != nil {
			return 0, false, err
		}
		if n == i {
			return link, true, nil
		}
		link = m.elemOff(n)
		n = m.loadNext(link)
	}
	return 0, false, m.checkEnd(b, n)
}

// linkHead puts element i at the head of bucket b (locked), as
// hlist_nulls_add_head_rcu does.
func (m *hashMap) linkHead(b, i uint32) {
	bo := m.bucketOff(b)
	m.storeNext(m.elemOff(i), m.loadNext(bo))
	m.storeNext(bo, i)
}

// unlink removes element i, pointed to by link, from its chain; i keeps its
// next word for readers standing on it (hlist_nulls_del_rcu).
func (m *hashMap) unlink(link uint64, i uint32) {
	m.storeNext(link, m.loadNext(m.elemOff(i)))
}

func (m *hashMap) lockBucket(b uint32)   { m.locks.of(b).Lock() }
func (m *hashMap) unlockBucket(b uint32) { m.locks.of(b).Unlock() }

// pop takes a free element: from the free list, else one never used.
func (m *hashMap) pop() (uint32, bool) {
	for {
		old := m.freeHead.Load()
		top := uint32(old)
		if top == 0 {
			break
		}
		next := atomic.LoadUint32(&m.links[top-1])
		if m.freeHead.CompareAndSwap(old, (old>>32+1)<<32|uint64(next)) {
			atomic.StoreUint32(&m.links[top-1], inUse)
			return top - 1, true
		}
	}
	for {
		b := m.bump.Load()
		if b >= m.total {
			return 0, false
		}
		if m.bump.CompareAndSwap(b, b+1) {
			atomic.StoreUint32(&m.links[b], inUse)
			return b, true
		}
	}
}

// holds reports whether element i holds a key: taken from the free list
// and not given back.
func (m *hashMap) holds(i uint32) bool { return atomic.LoadUint32(&m.links[i]) == inUse }

// push returns element i, which must hold a key, to the free list. An
// element that does not was in a chain while free: a write over a link put
// it there. (Two deletes racing to free one such element both get past the
// check; the free list then hands it out twice, which chain checks catch.)
func (m *hashMap) push(i uint32) error {
	p := &m.links[i]
	if atomic.LoadUint32(p) != inUse {
		return m.corrupt("element %d freed twice: it was in a chain while free", i)
	}
	for {
		old := m.freeHead.Load()
		atomic.StoreUint32(p, uint32(old))
		if m.freeHead.CompareAndSwap(old, (old>>32+1)<<32|uint64(i+1)) {
			return nil
		}
	}
}

// reserve counts a new element against max_entries.
func (m *hashMap) reserve() bool {
	for {
		c := m.count.Load()
		if c >= m.max {
			return false
		}
		if m.count.CompareAndSwap(c, c+1) {
			return true
		}
	}
}

// release uncounts an element. Only counted elements come back (the
// callers check that the element holds a key), so the count cannot go
// below zero; if it would, the map says so rather than wrap.
func (m *hashMap) release() error {
	for {
		c := m.count.Load()
		if c == 0 {
			return m.corrupt("element count would go below zero")
		}
		if m.count.CompareAndSwap(c, c-1) {
			return nil
		}
	}
}

// writeElem fills element i with key and value. cpu < 0 means value holds
// every CPU's copy (the Go side); otherwise value is cpu's copy and the
// other CPUs' copies are zeroed (pcpu_init_value).
func (m *hashMap) writeElem(i uint32, h uint32, key, value []byte, cpu int) {
	e := m.elemOff(i)
	native.PutUint32(m.mapping[e+4:], h)
	k := m.mapping[e+8 : e+8+m.ksr]
	copy(k, key)
	clear(k[m.ks:])
	m.writeValue(i, value, cpu, true)
}

// writeValue stores value into element i's value area. For per-CPU maps,
// cpu < 0 copies every CPU's padded copy; otherwise cpu's copy is written,
// and with fresh the other CPUs' copies are zeroed.
func (m *hashMap) writeValue(i uint32, value []byte, cpu int, fresh bool) {
	v := m.mapping[m.valueOff(i) : m.valueOff(i)+m.varea]
	if !m.percpu {
		copy(v, value)
		return
	}
	if cpu < 0 {
		copy(v, value)
		return
	}
	if fresh {
		clear(v)
	}
	s := v[uint64(cpu)*m.vstride : uint64(cpu+1)*m.vstride]
	copy(s, value)
	clear(s[len(value):])
}

// checkUpdateFlags is check_flags: what the flags say about an existing or
// missing key.
func checkUpdateFlags(exists bool, flags uint64) error {
	switch {
	case exists && flags&^UpdateLock == UpdateNoExist:
		return EEXIST
	case !exists && flags&^UpdateLock == UpdateExist:
		return ENOENT
	}
	return nil
}

// update is htab_map_update_elem and __htab_percpu_map_update_elem (cpu as
// for writeValue). LRU maps go to lruUpdate.
func (m *hashMap) update(key, value []byte, flags uint64, cpu int) error {
	if flags > UpdateExist {
		return EINVAL
	}
	h := m.hashOf(key)
	if m.lru != nil {
		return m.lru.update(key, value, h, flags, cpu)
	}
	b := h & m.mask
	m.lockBucket(b)
	err := m.updateLocked(b, h, key, value, flags, cpu)
	m.unlockBucket(b)
	if err == E2BIG {
		return m.full()
	}
	return err
}

func (m *hashMap) updateLocked(b, h uint32, key, value []byte, flags uint64, cpu int) error {
	old, link, exists, err := m.findLocked(b, key, h)
	if err != nil {
		return err
	}
	if err := checkUpdateFlags(exists, flags); err != nil {
		return err
	}
	if exists && m.percpu {
		m.writeValue(old, value, cpu, false)
		return nil
	}
	var n uint32
	if !exists {
		if !m.reserve() {
			return E2BIG
		}
		var ok bool
		if n, ok = m.pop(); !ok {
			// More replacements in flight than spares hold the rest.
			if err := m.release(); err != nil {
				return err
			}
			return E2BIG
		}
	} else {
		var ok bool
		if n, ok = m.pop(); !ok {
			// More replacements in flight than spares: overwrite in
			// place, under the bucket lock.
			m.writeValue(old, value, cpu, false)
			return nil
		}
	}
	m.writeElem(n, h, key, value, cpu)
	m.linkHead(b, n)
	if exists {
		if link == m.bucketOff(b) {
			link = m.elemOff(n) // old was the head; n is now before it
		}
		m.unlink(link, old)
		return m.push(old)
	}
	return nil
}

// linked checks that element i, found in a chain under its bucket lock,
// holds a key: an element on the free list (or, for LRU maps, not linked)
// got into the chain by a write over a link.
func (m *hashMap) linked(i uint32) error {
	if m.lru != nil {
		if st := m.lru.state(i); st != stLinked {
			return m.corrupt("element %d is in a chain but its LRU state is %d", i, st)
		}
		return nil
	}
	if !m.holds(i) {
		return m.corrupt("element %d is in a chain but free", i)
	}
	return nil
}

// full is the answer to a new key when max_entries elements are counted:
// E2BIG, unless the elements counted are not all in the chains. A write
// over a chain can cut elements off it; they stay counted, and the map
// would answer E2BIG with room to spare for ever. So a full map is audited
// (every chain walked, under every lock) on its first E2BIG and then once
// every max_entries (at least 64) E2BIGs, which answer as the last audit
// found: the walk costs about one failed insert per element.
func (m *hashMap) full() error {
	if !m.auditMu.TryLock() {
		return E2BIG // another audit is walking
	}
	defer m.auditMu.Unlock()
	if m.fulls%max(64, m.max) == 0 {
		m.auditErr = m.audit()
	}
	m.fulls++
	if m.auditErr != nil {
		return m.auditErr
	}
	return E2BIG
}

// audit walks every chain under every bucket lock and checks that the
// elements in them are exactly the elements counted.
func (m *hashMap) audit() error {
	m.locks.lockAll()
	defer m.locks.unlockAll()
	var buf []uint32
	reachable := uint64(0)
	for b := uint32(0); uint64(b) < m.nb; b++ {
		var err error
		if buf, err = m.chain(b, buf[:0]); err != nil {
			return err
		}
		for _, i := range buf {
			if err := m.linked(i); err != nil {
				return err
			}
		}
		reachable += uint64(len(buf))
	}
	if c := m.count.Load(); c != reachable {
		return m.corrupt("%d elements counted, %d in the chains: a chain lost some", c, reachable)
	}
	return nil
}

// remove is htab_map_delete_elem; with value non-nil it first copies the
// value out (htab_map_lookup_and_delete_elem).
func (m *hashMap) remove(key, value []byte) error {
	h := m.hashOf(key)
	b := h & m.mask
	m.lockBucket(b)
	defer m.unlockBucket(b)
	i, link, ok, err := m.findLocked(b, key, h)
	if err != nil {
		return err
	}
	if !ok {
		return ENOENT
	}
	if err := m.linked(i); err != nil {
		return err
	}
	if value != nil {
		m.copyValue(value, i)
	}
	m.unlink(link, i)
	if m.lru != nil {
		m.lru.unlinked(i)
	} else if err := m.push(i); err != nil {
		return err
	}
	return m.release()
}

// copyValue copies element i's value out as the Go side sees it.
func (m *hashMap) copyValue(dst []byte, i uint32) {
	o := m.valueOff(i)
	if m.percpu {
		copy(dst, m.mapping[o:o+m.varea])
		return
	}
	copy(dst, m.mapping[o:o+uint64(m.spec.ValueSize)])
}

// Lookup copies key's value (every CPU's copy for per-CPU maps). A Go-side
// lookup of an LRU map does not mark the element used, as
// htab_lru_map_lookup_elem_sys does not.
func (m *hashMap) Lookup(key, value []byte) error {
	if err := m.check("lookup", key, value, m.goValueSize()); err != nil {
		return err
	}
	if err := m.checkRead("lookup"); err != nil {
		return err
	}
	if m.inner != nil {
		return m.inner.lookupID(m, key, value)
	}
	i, ok, err := m.find(key, m.hashOf(key))
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	if !ok {
		return ENOENT
	}
	m.copyValue(value, i)
	return nil
}

// Update sets key's value with the kernel's flag semantics: EEXIST for
// UpdateNoExist on a present key, ENOENT for UpdateExist on a missing one,
// E2BIG for a new key in a full map (an LRU map evicts instead).
func (m *hashMap) Update(key, value []byte, flags uint64) error {
	if err := m.check("update", key, value, m.goValueSize()); err != nil {
		return err
	}
	if err := m.checkWrite("update"); err != nil {
		return err
	}
	if flags&UpdateLock != 0 {
		return m.errorf(EINVAL, "update: BPF_F_LOCK on a map without bpf_spin_lock")
	}
	if m.inner != nil {
		return m.errorf(EOPNOTSUPP, "update: values are maps, not file descriptors: use SetInner")
	}
	if err := m.update(key, value, flags, -1); err != nil {
		if err == EINVAL {
			return m.errorf(EINVAL, "update: unknown flags %#x", flags)
		}
		return err
	}
	return nil
}

// Delete removes key (ENOENT if absent).
func (m *hashMap) Delete(key []byte) error {
	if err := m.check("delete", key, nil, 0); err != nil {
		return err
	}
	if err := m.checkWrite("delete"); err != nil {
		return err
	}
	if m.inner != nil {
		return m.inner.remove(m, key)
	}
	return m.remove(key, nil)
}

// LookupAndDelete copies key's value and removes it.
func (m *hashMap) LookupAndDelete(key, value []byte) error {
	if err := m.check("lookup and delete", key, value, m.goValueSize()); err != nil {
		return err
	}
	if err := m.checkRead("lookup and delete"); err != nil {
		return err
	}
	if err := m.checkWrite("lookup and delete"); err != nil {
		return err
	}
	if m.inner != nil {
		return m.unsupported("lookup and delete", ENOTSUPP)
	}
	return m.remove(key, value)
}

// NextKey is htab_map_get_next_key: the key after key in its chain, else
// the first key of the following buckets; a key not present restarts from
// the first bucket.
//
// Unlike the kernel's, it reads chains under their bucket locks and checks
// them whole, and checks that the key it returns hashes to its element's
// bucket and appears once there: so NextKey(NextKey(k)) always moves on
// in bucket and chain order, and a caller looping over NextKey ends, with
// ENOENT or ErrCorrupt, whatever the mapping holds.
func (m *hashMap) NextKey(key, next []byte) error {
	if err := m.checkNext(key, next); err != nil {
		return err
	}
	if err := m.checkRead("next key"); err != nil {
		return err
	}
	b := uint64(0)
	if key != nil {
		h := m.hashOf(key)
		kb := h & m.mask
		m.lockBucket(kb)
		where, err := m.nextInChain(kb, key, h, next)
		m.unlockBucket(kb)
		switch {
		case err != nil:
			return fmt.Errorf("next key: %w", err)
		case where == nextCopied:
			return nil
		case where == keyLast:
			b = uint64(kb) + 1
		}
	}
	for ; b < m.nb; b++ {
		if m.loadNext(m.bucketOff(uint32(b))) == nullsBit|uint32(b) {
			continue
		}
		m.lockBucket(uint32(b))
		ok, err := m.firstKey(uint32(b), next)
		m.unlockBucket(uint32(b))
		if err != nil {
			return fmt.Errorf("next key: %w", err)
		}
		if ok {
			return nil
		}
	}
	return ENOENT
}

// Where nextInChain found key.
const (
	keyAbsent  = iota // not in its chain: start from the first bucket
	keyLast           // last of its chain: go on with the next bucket
	nextCopied        // the key after it is in next
)

// nextInChain finds key in bucket b (locked) and copies the key after it
// into next, checking the whole chain.
func (m *hashMap) nextInChain(b uint32, key []byte, h uint32, next []byte) (int, error) {
	var sb [16]uint32
	elems, err := m.chain(b, sb[:0])
	if err != nil {
		return 0, err
	}
	at := -1
	for p, i := range elems {
		if !m.holdsKey(i, key, h) {
			continue
		}
		if at >= 0 {
			return 0, m.corrupt("bucket %d: elements %d and %d hold the same key", b, elems[at], i)
		}
		at = p
	}
	switch {
	case at < 0:
		return keyAbsent, nil
	case at == len(elems)-1:
		return keyLast, nil
	}
	n := elems[at+1]
	if err := m.checkKey(n); err != nil {
		return 0, err
	}
	copy(next, m.keyAt(n))
	return nextCopied, nil
}

// firstKey copies the first key of bucket b (locked) into next; false if
// the bucket is empty.
func (m *hashMap) firstKey(b uint32, next []byte) (bool, error) {
	n := m.loadNext(m.bucketOff(b))
	if n&nullsBit != 0 {
		return false, m.checkEnd(b, n)
	}
	if err := m.checkLink(b, n, 0); err != nil {
		return false, err
	}
	if err := m.checkKey(n); err != nil {
		return false, err
	}
	copy(next, m.keyAt(n))
	return true, nil
}

// holdsKey reports whether element i holds key, whose hash is h.
func (m *hashMap) holdsKey(i uint32, key []byte, h uint32) bool {
	e := m.elemOff(i)
	return native.Uint32(m.mapping[e+4:]) == h && string(m.mapping[e+8:e+8+m.ks]) == string(key)
}

// checkKey checks that element i's key hashes to the hash stored with it,
// so that looking the key up finds the element again.
func (m *hashMap) checkKey(i uint32) error {
	stored := native.Uint32(m.mapping[m.elemOff(i)+4:])
	if h := m.hashOf(m.keyAt(i)); h != stored {
		return m.corrupt("element %d: key hashes to %#x, the element says %#x", i, h, stored)
	}
	return nil
}

// LookupElem returns the address of key's value (cpu's copy for per-CPU
// maps; the inner map's handle for a hash of maps), 0 if absent. An LRU
// lookup marks the element used. A corrupt chain gives 0, as an absent key
// does: the helper has no other answer.
func (m *hashMap) LookupElem(cpu int, key []byte) uint64 {
	if uint64(len(key)) != m.ks || m.closed.Load() {
		return 0
	}
	i, ok, _ := m.find(key, m.hashOf(key))
	if !ok {
		return 0
	}
	if m.lru != nil {
		m.lru.touch(i)
	}
	a := m.hdr + m.valueOff(i)
	if m.percpu {
		if uint(cpu) >= uint(m.spec.CPUs) {
			return 0
		}
		return a + uint64(cpu)*m.vstride
	}
	if m.inner != nil {
		// Only a handle SetInner stored: anything else in the slot was
		// written over it.
		if h := mem.AtomicLoad64(a); m.inner.has(h) {
			return h
		}
		return 0
	}
	return a
}

// UpdateElem is bpf_map_update_elem from a program; per-CPU maps update
// cpu's copy.
func (m *hashMap) UpdateElem(cpu int, key, value []byte, flags uint64) error {
	if m.spec.Flags&FlagRdOnlyProg != 0 {
		return EPERM
	}
	if uint64(len(key)) != m.ks || uint64(len(value)) != uint64(m.spec.ValueSize) {
		return EINVAL
	}
	if m.closed.Load() {
		return EBADF
	}
	if m.inner != nil {
		return EOPNOTSUPP // the verifier refuses map-in-map updates from programs
	}
	if flags > UpdateExist {
		return EINVAL
	}
	if m.percpu && uint(cpu) >= uint(m.spec.CPUs) {
		return EINVAL
	}
	if !m.percpu && m.lru == nil {
		cpu = -1
	}
	return m.update(key, value, flags, cpu)
}

// DeleteElem is bpf_map_delete_elem from a program.
func (m *hashMap) DeleteElem(cpu int, key []byte) error {
	if m.spec.Flags&FlagRdOnlyProg != 0 {
		return EPERM
	}
	if uint64(len(key)) != m.ks {
		return EINVAL
	}
	if m.closed.Load() {
		return EBADF
	}
	if m.inner != nil {
		return m.inner.remove(m, key)
	}
	return m.remove(key, nil)
}

// Regions is the element array; program memory is each element's value.
func (m *hashMap) Regions() []Region {
	return []Region{{
		Data:     m.mapping[m.elemsOff : m.elemsOff+uint64(m.total)*m.esize],
		Writable: m.spec.Flags&FlagRdOnlyProg == 0 && m.inner == nil,
		Stride:   m.esize, Offset: 8 + m.ksr, Len: m.varea,
	}}
}

// Close unmaps the map.
func (m *hashMap) Close() error {
	if m.inner != nil {
		m.inner.clear()
	}
	return m.free()
}

// innerRefs keeps the Go maps whose handles a map-in-map stores, so
// Inner can give them back. Go-side changes of a map-in-map are
// serialised by mu; programs may only look up and delete. A program's
// lookup checks the handle it found against set, which takes no lock.
type innerRefs struct {
	mu   sync.Mutex
	refs map[uint64]innerRef
	set  handleSet // the keys of refs, for has
}

type innerRef struct {
	m Map
	n int // slots holding it
}

// add counts one more slot holding m; the caller holds mu.
func (r *innerRefs) add(m Map) {
	if r.refs == nil {
		r.refs = map[uint64]innerRef{}
	}
	h := m.Handle()
	ref := r.refs[h]
	ref.m = m
	ref.n++
	r.refs[h] = ref
	r.set.add(h)
}

// drop counts one slot less holding the map h; the caller holds mu.
func (r *innerRefs) drop(h uint64) {
	if ref, ok := r.refs[h]; ok {
		if ref.n--; ref.n <= 0 {
			delete(r.refs, h)
			r.set.remove(h)
		} else {
			r.refs[h] = ref
		}
	}
}

func (r *innerRefs) get(h uint64) (Map, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, ok := r.refs[h]
	return ref.m, ok
}

// has reports whether h is the handle of a map stored. It takes no lock:
// it is on the path of every lookup a program makes.
func (r *innerRefs) has(h uint64) bool { return r.set.has(h) }

func (r *innerRefs) clear() {
	r.mu.Lock()
	r.refs = nil
	r.set.clear()
	r.mu.Unlock()
}

// lookupID is the Go-side lookup of a map-in-map, which in Linux returns
// the inner map's id: waggle maps have no ids unless the map stored
// provides one (an ID() uint32 method).
func (r *innerRefs) lookupID(m *hashMap, key, value []byte) error {
	i, ok, err := m.find(key, m.hashOf(key))
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	if !ok {
		return ENOENT
	}
	return r.writeID(&m.base, mem.AtomicLoad64(m.hdr+m.valueOff(i)), value)
}

func (r *innerRefs) writeID(b *base, h uint64, value []byte) error {
	in, ok := r.get(h)
	if !ok {
		return ENOENT
	}
	if ider, ok := in.(interface{ ID() uint32 }); ok {
		native.PutUint32(value, ider.ID())
		return nil
	}
	return b.errorf(EOPNOTSUPP, "lookup: inner maps have no ids in user space: use Inner")
}

func (r *innerRefs) remove(m *hashMap, key []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := make([]byte, 8)
	if err := m.remove(key, v); err != nil {
		return err
	}
	r.drop(native.Uint64(v))
	return nil
}

// SetInner stores inner under key (BPF_ANY), for a hash of maps. inner must
// match the InnerMap spec as bpf_map_meta_equal requires; it stays owned by
// the caller, who must keep it open while it is stored and put it in
// the Set of the programs that reference m.
func (m *hashMap) SetInner(key []byte, inner Map) error {
	if m.inner == nil {
		return m.unsupported("set inner", EINVAL)
	}
	if err := m.check("set inner", key, nil, 0); err != nil {
		return err
	}
	if err := m.checkWrite("set inner"); err != nil {
		return err
	}
	if err := checkInnerMatch(&m.base, inner); err != nil {
		return err
	}
	m.inner.mu.Lock()
	defer m.inner.mu.Unlock()
	oldH, had := uint64(0), false
	i, ok, err := m.find(key, m.hashOf(key))
	if err != nil {
		return fmt.Errorf("set inner: %w", err)
	}
	if ok {
		oldH, had = mem.AtomicLoad64(m.hdr+m.valueOff(i)), true
	}
	v := make([]byte, 8)
	native.PutUint64(v, inner.Handle())
	// The new map is counted before a lookup can find its handle, the old
	// one dropped after none can (innerRefs.has takes no lock).
	m.inner.add(inner)
	if err := m.update(key, v, UpdateAny, -1); err != nil {
		m.inner.drop(inner.Handle())
		return err
	}
	if had {
		m.inner.drop(oldH)
	}
	return nil
}

// Inner returns the map stored under key.
func (m *hashMap) Inner(key []byte) (Map, bool) {
	if m.inner == nil || uint64(len(key)) != m.ks || m.closed.Load() {
		return nil, false
	}
	i, ok, _ := m.find(key, m.hashOf(key))
	if !ok {
		return nil, false
	}
	return m.inner.get(mem.AtomicLoad64(m.hdr + m.valueOff(i)))
}
