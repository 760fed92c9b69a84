package maps

import (
	"cmp"
	"slices"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// LRU hash maps (BPF_MAP_TYPE_LRU_HASH, LRU_PERCPU_HASH): a hash table
// (hash.go) whose elements are also kept on a least-recently-used list. An
// update that needs a new element in a full map evicts the least recently
// used one; a program's lookup makes an element the most recently used, and
// so do an insert and an update.
//
// waggle's LRU is exact, where the kernel's is an approximation
// (kernel/bpf/bpf_lru_list.c). The differences a program can observe:
//   - The kernel gives each CPU a local free list that it refills from the
//     global one target_free elements at a time, and when the global list
//     runs dry it evicts target_free elements at once (__bpf_lru_list_shrink),
//     so a kernel LRU map may hold fewer than max_entries elements, and may
//     evict before it is full when several CPUs insert. waggle evicts exactly
//     one element, exactly when the map is full.
//   - The kernel's lookups set a reference bit, and eviction gives
//     referenced elements a second chance by rotating its active and
//     inactive lists; which element goes is only roughly the least recently
//     used. waggle evicts the element used least recently, in the order of
//     a clock shared by all CPUs.
//   - The kernel takes a free element before it checks the update flags, so
//     an update that fails with EEXIST or ENOENT can still evict; and
//     replacing a key in a full map can evict another. waggle checks first,
//     and replaces with a spare element.
//   - With BPF_F_NO_COMMON_LRU each CPU has its own list of
//     max_entries/cpus elements, as in the kernel; an element replaced or
//     deleted from another CPU goes back to its own CPU's list. Go-side
//     updates use CPU 0's list (the kernel uses the CPU the syscall runs on).
//   - Go-side lookups do not mark elements used, as in the kernel
//     (htab_lru_map_lookup_elem_sys).
//
// How lookups stay lock-free: a lookup stamps the element with the next
// tick of the map's clock and, if the element was clean, marks it dirty and
// pushes it on its list's "touched" stack (a lock-free push; the stack is
// only ever taken whole). Everything else happens under the list's spin
// lock: every update first drains the touched stack, moving the touched
// elements to the head of the list in the order of their ticks, and
// reclaiming elements that deletes unlinked from their chains. So the list
// is in exact recency order whenever an eviction looks at its tail. Deletes
// take only the bucket lock: they unlink the element and push it on the
// touched stack for the next drain to reclaim.
//
// Layout, after the hash table's free list links:
//
//	lru ─────► lists: nlists × 64 bytes
//	           ┌──────┬──────┬──────┬──────┬──────┬──────┬──────┬──────┬─────────┬─────┐
//	           │ lock │ head │ tail │ live │ cap  │ free │ bump │ end  │ touched │ pad │ u32 each
//	           └──────┴──────┴──────┴──────┴──────┴──────┴──────┴──────┴─────────┴─────┘
//	           head (most recent), tail, free and touched hold index+1 (0: none);
//	           list l owns elements [bump₀, end) = [l·per, (l+1)·per), per = cap+1
//	lru_aux ─► element states: total × 24 bytes
//	           ┌──────┬──────┬──────────┬────────────┬───────┐
//	           │ prev │ next │ snap u64 │ touch_next │ state │
//	           └──────┴──────┴──────────┴────────────┴───────┘
//	           state: 0 free, 1 linked (in a chain and on the list),
//	           2 unlinked (deleted from its chain, still on the list)
//	scratch ─► total × u32: the drain's sort buffer
//
// and at the end of each hash element (elem_size includes it), what a
// lookup writes, in the cache line it already reads:
//
//	┌──────────────────┬───────────┬─────┐
//	│ tick u64         │ dirty u32 │ pad │
//	└──────────────────┴───────────┴─────┘
//
// The tick is stored plainly (a lookup pays for no fence); the dirty flag
// is atomic. On strongly ordered machines (x86) the drain, which clears
// dirty and then reads the tick, sees the last tick; elsewhere it may see
// an older one, which can only misorder elements touched at nearly the
// same moment.
const (
	lstLock    = 0
	lstHead    = 4
	lstTail    = 8
	lstLive    = 12
	lstCap     = 16
	lstFree    = 20
	lstBump    = 24
	lstEnd     = 28
	lstTouched = 32
	lstSize    = 64

	auxPrev      = 0
	auxNext      = 4
	auxSnap      = 8
	auxTouchNext = 16
	auxState     = 20
	auxSize      = 24

	// The hot part of an LRU element's state sits at the end of the
	// element itself, in the cache line a lookup already touches.
	hotTick  = 0
	hotDirty = 8
	hotSize  = 16

	stFree     = 0
	stLinked   = 1
	stUnlinked = 2
)

type lruState struct {
	m                            *hashMap
	nlists                       uint32
	per                          uint32 // elements a list owns: cap + 1 spare
	listsOff, auxOff, scratchOff uint64
}

func lruLists(spec Spec) uint64 {
	if spec.Flags&FlagNoCommonLRU != 0 {
		return uint64(spec.CPUs)
	}
	return 1
}

// lruStorage is the bytes of LRU state for total elements.
func lruStorage(spec Spec, total uint64) uint64 {
	return 8 + lruLists(spec)*lstSize + total*auxSize + total*4
}

func newLRU(m *hashMap, off uint64) *lruState {
	s := &lruState{m: m, nlists: uint32(lruLists(m.spec))}
	s.per = m.total / s.nlists
	s.listsOff = (off + 7) &^ 7
	s.auxOff = off + uint64(s.nlists)*lstSize
	s.scratchOff = s.auxOff + uint64(m.total)*auxSize
	m.put64(hdrLRU, m.addr(s.listsOff))
	m.put64(hdrLRUAux, m.addr(s.auxOff))
	m.put32(hdrNLists, s.nlists)
	for l := uint32(0); l < s.nlists; l++ {
		s.put(l, lstCap, s.per-1)
		s.put(l, lstBump, l*s.per)
		s.put(l, lstEnd, (l+1)*s.per)
	}
	return s
}

// List fields (plain: only touched under the list lock, except touched).
func (s *lruState) list(l uint32) uint64 { return s.listsOff + uint64(l)*lstSize }
func (s *lruState) get(l uint32, f uint64) uint32 {
	return native.Uint32(s.m.mapping[s.list(l)+f:])
}
func (s *lruState) put(l uint32, f uint64, v uint32) {
	native.PutUint32(s.m.mapping[s.list(l)+f:], v)
}

// Element state fields.
func (s *lruState) aux(i uint32) uint64 { return s.auxOff + uint64(i)*auxSize }
func (s *lruState) auxGet(i uint32, f uint64) uint32 {
	return native.Uint32(s.m.mapping[s.aux(i)+f:])
}
func (s *lruState) auxPut(i uint32, f uint64, v uint32) {
	native.PutUint32(s.m.mapping[s.aux(i)+f:], v)
}
func (s *lruState) state(i uint32) uint32 { return mem.AtomicLoad32(s.m.hdr + s.aux(i) + auxState) }
func (s *lruState) setState(i, st uint32) { mem.AtomicStore32(s.m.hdr+s.aux(i)+auxState, st) }

func (s *lruState) listOf(i uint32) uint32 { return i / s.per }

// listFor picks the list an update on cpu draws from.
func (s *lruState) listFor(cpu int) uint32 {
	if s.nlists == 1 || cpu < 0 {
		return 0
	}
	return uint32(cpu) % s.nlists
}

// tick advances the map's clock.
func (s *lruState) tick() uint64 { return mem.AtomicAdd64(s.m.hdr+hdrTick, 1) + 1 }

// hot returns the address of element i's hot state.
func (s *lruState) hot(i uint32) uint64 { return s.m.hdr + s.m.elemOff(i) + s.m.esize - hotSize }

// touch marks element i used (a program's lookup). Lock-free.
func (s *lruState) touch(i uint32) {
	h := s.hot(i)
	mem.Store64(h+hotTick, s.tick())
	if mem.AtomicLoad32(h+hotDirty) == 0 {
		s.markDirty(i)
	}
}

// markDirty pushes i on its list's touched stack unless it is there.
func (s *lruState) markDirty(i uint32) {
	if !mem.CompareAndSwap32(s.hot(i)+hotDirty, 0, 1) {
		return
	}
	a := s.m.hdr + s.aux(i)
	ta := s.m.hdr + s.list(s.listOf(i)) + lstTouched
	for {
		old := mem.AtomicLoad32(ta)
		mem.AtomicStore32(a+auxTouchNext, old)
		if mem.CompareAndSwap32(ta, old, i+1) {
			return
		}
	}
}

// unlinked records that a delete took i out of its chain (the caller holds
// the bucket lock); the list's next drain reclaims it.
func (s *lruState) unlinked(i uint32) {
	s.setState(i, stUnlinked)
	s.markDirty(i)
}

// List operations; the caller holds list l's lock.

func (s *lruState) pushHead(l, i uint32) {
	head := s.get(l, lstHead)
	s.auxPut(i, auxPrev, 0)
	s.auxPut(i, auxNext, head)
	if head != 0 {
		s.auxPut(head-1, auxPrev, i+1)
	} else {
		s.put(l, lstTail, i+1)
	}
	s.put(l, lstHead, i+1)
}

func (s *lruState) remove(l, i uint32) {
	p, n := s.auxGet(i, auxPrev), s.auxGet(i, auxNext)
	if p != 0 {
		s.auxPut(p-1, auxNext, n)
	} else {
		s.put(l, lstHead, n)
	}
	if n != 0 {
		s.auxPut(n-1, auxPrev, p)
	} else {
		s.put(l, lstTail, p)
	}
}

func (s *lruState) freePush(l, i uint32) {
	s.setState(i, stFree)
	s.auxPut(i, auxNext, s.get(l, lstFree))
	s.put(l, lstFree, i+1)
}

func (s *lruState) freePop(l uint32) (uint32, bool) {
	if top := s.get(l, lstFree); top != 0 {
		s.put(l, lstFree, s.auxGet(top-1, auxNext))
		return top - 1, true
	}
	if b := s.get(l, lstBump); b < s.get(l, lstEnd) {
		s.put(l, lstBump, b+1)
		return b, true
	}
	return 0, false
}

// drain empties list l's touched stack: deleted elements are reclaimed,
// used ones move to the head in the order of their ticks.
func (s *lruState) drain(l uint32) {
	top := mem.AtomicXchg32(s.m.hdr+s.list(l)+lstTouched, 0)
	if top == 0 {
		return
	}
	scratch := mem.Uint32s(s.m.mapping[s.scratchOff+uint64(l*s.per)*4 : s.scratchOff+uint64((l+1)*s.per)*4])
	k := 0
	for n := uint32(0); top != 0 && n <= s.per; n++ {
		i := top - 1
		a := s.m.hdr + s.aux(i)
		top = mem.AtomicLoad32(a + auxTouchNext)
		mem.AtomicStore32(s.hot(i)+hotDirty, 0)
		switch s.state(i) {
		case stLinked:
			native.PutUint64(s.m.mapping[s.aux(i)+auxSnap:], mem.Load64(s.hot(i)+hotTick))
			scratch[k] = i
			k++
		case stUnlinked:
			s.remove(l, i)
			s.freePush(l, i)
			s.put(l, lstLive, s.get(l, lstLive)-1)
		}
	}
	batch := scratch[:k]
	slices.SortFunc(batch, func(a, b uint32) int {
		return cmp.Compare(native.Uint64(s.m.mapping[s.aux(a)+auxSnap:]), native.Uint64(s.m.mapping[s.aux(b)+auxSnap:]))
	})
	for _, i := range batch {
		s.remove(l, i)
		s.pushHead(l, i)
	}
}

// alloc takes an element for a new key on list l (locked, no bucket lock
// held): a free one while the list has room, else the least recently used
// element, evicted from its chain.
func (s *lruState) alloc(l uint32) (uint32, bool) {
	if s.get(l, lstLive) < s.get(l, lstCap) {
		if i, ok := s.freePop(l); ok {
			s.put(l, lstLive, s.get(l, lstLive)+1)
			return i, true
		}
	}
	return s.evict(l)
}

// evict takes the element at list l's tail out of the map and returns it
// for reuse; the list's live count is unchanged (one out, one to come in).
func (s *lruState) evict(l uint32) (uint32, bool) {
	m := s.m
	for t, n := s.get(l, lstTail), uint32(0); t != 0 && n <= s.per; n++ {
		i := t - 1
		t = s.auxGet(i, auxPrev)
		if s.state(i) == stLinked {
			h := native.Uint32(m.mapping[m.elemOff(i)+4:])
			b := h & m.mask
			m.lockBucket(b)
			if s.state(i) == stLinked {
				if link, ok := m.linkOf(b, i); ok {
					m.unlink(link, i)
					s.setState(i, stFree)
					m.unlockBucket(b)
					m.release()
					s.remove(l, i)
					return i, true
				}
			}
			m.unlockBucket(b)
		}
		if s.state(i) == stUnlinked {
			s.remove(l, i)
			s.setState(i, stFree)
			return i, true
		}
	}
	return 0, false
}

// update is htab_lru_map_update_elem and __htab_lru_percpu_map_update_elem.
func (s *lruState) update(key, value []byte, h uint32, flags uint64, cpu int) error {
	m := s.m
	l := s.listFor(cpu)
	m.lock(s.list(l) + lstLock)
	defer m.unlock(s.list(l) + lstLock)
	s.drain(l)

	// Predict from a lock-free lookup, so a doomed update evicts nothing.
	old, exists := m.find(key, h)
	if err := checkUpdateFlags(exists, flags); err != nil {
		return err
	}
	b := h & m.mask
	if exists && m.percpu {
		m.lockBucket(b)
		if i, _, ok := m.findLocked(b, key, h); ok {
			m.writeValue(i, value, cpu, false)
			if s.listOf(i) == l {
				s.remove(l, i)
				s.pushHead(l, i)
			} else {
				s.touch(i)
			}
			m.unlockBucket(b)
			return nil
		}
		m.unlockBucket(b)
		exists = false
		if err := checkUpdateFlags(false, flags); err != nil {
			return err
		}
	}
	var n uint32
	var ok bool
	if exists {
		// A replacement: the list's spare is free (live ≤ cap < per).
		if n, ok = s.freePop(l); ok {
			s.put(l, lstLive, s.get(l, lstLive)+1)
		}
	} else {
		n, ok = s.alloc(l)
	}
	if !ok {
		return ENOMEM // bpf_lru_pop_free found nothing: unreachable here
	}
	m.writeElem(n, h, key, value, cpu)

	m.lockBucket(b)
	old, link, found := m.findLocked(b, key, h)
	if err := checkUpdateFlags(found, flags); err != nil {
		m.unlockBucket(b)
		s.freePush(l, n)
		s.put(l, lstLive, s.get(l, lstLive)-1)
		return err
	}
	if found && m.percpu {
		// Raced with an insert of the same key: update it in place.
		m.writeValue(old, value, cpu, false)
		m.unlockBucket(b)
		s.freePush(l, n)
		s.put(l, lstLive, s.get(l, lstLive)-1)
		return nil
	}
	s.pushHead(l, n)
	s.setState(n, stLinked)
	m.linkHead(b, n)
	if found {
		if link == m.bucketOff(b) {
			link = m.elemOff(n)
		}
		m.unlink(link, old)
		if s.listOf(old) == l {
			s.remove(l, old)
			s.freePush(l, old)
			s.put(l, lstLive, s.get(l, lstLive)-1)
		} else {
			s.unlinked(old)
		}
	} else {
		mem.AtomicAdd64(m.hdr+hdrCount, 1)
	}
	m.unlockBucket(b)

	// A replacement whose old element vanished meanwhile was an insert:
	// give back an element if that overfilled the list.
	if s.get(l, lstLive) > s.get(l, lstCap) {
		if i, ok := s.evict(l); ok {
			s.freePush(l, i)
			s.put(l, lstLive, s.get(l, lstLive)-1)
		}
	}
	return nil
}
