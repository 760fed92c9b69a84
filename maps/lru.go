package maps

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"

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
// only ever taken whole). Everything else happens under the list's lock:
// every update first drains the touched stack, moving the touched elements
// to the head of the list in the order of their ticks, and reclaiming
// elements that deletes unlinked from their chains. So the list is in exact
// recency order whenever an eviction looks at its tail. Deletes take only
// the bucket lock: they unlink the element and push it on the touched stack
// for the next drain to reclaim.
//
// The lists, the touched stacks and the elements' list state are Go memory
// (header.go says why); what a lookup writes is at the end of each hash
// element (elem_size includes it), in the cache line it already reads:
//
//	┌──────────────────┬───────────┬─────┐
//	│ tick u64         │ dirty u32 │ pad │
//	└──────────────────┴───────────┴─────┘
//
// The tick is stored plainly (a lookup pays for no fence); the dirty flag
// is atomic. On strongly ordered machines (x86) the drain, which clears
// dirty and then reads the tick, sees the last tick; elsewhere it may see
// an older one, which can only misorder elements touched at nearly the
// same moment. Dirty is only a hint that spares a lookup the Go-side flag
// (queued) that decides whether an element is on the touched stack: a
// write over either word can misorder recency, never put an element on a
// stack twice. List l owns elements [l·per, (l+1)·per), per = cap+1.
const (
	// The hot part of an LRU element's state sits at the end of the
	// element itself, in the cache line a lookup already touches.
	hotTick  = 0
	hotDirty = 8
	hotSize  = 16

	stFree     = 0
	stLinked   = 1 // in a chain and on the list
	stUnlinked = 2 // deleted from its chain, still on the list
)

// lruList is one LRU list. Fields are under mu except touched.
type lruList struct {
	mu         sync.Mutex
	head, tail uint32 // index+1, 0: none; head is the most recent
	live       uint32 // elements taken for keys
	free       uint32 // index+1 of the first free element
	bump       uint32 // first element never used
	touched    atomic.Uint32
	_          [64 - 8 - 24]byte
}

// lruElem is an element's list state.
type lruElem struct {
	prev, next uint32 // list links (index+1); next links the free list too
	hash       uint32 // the hash the element was linked with
	state      atomic.Uint32
	queued     atomic.Uint32 // on the touched stack
	touchNext  atomic.Uint32 // the touched stack's link
	snap       uint64        // the tick the drain sorts by
}

type lruState struct {
	m       *hashMap
	nlists  uint32
	per     uint32 // elements a list owns: cap + 1 spare
	cap     uint32
	lists   []lruList
	elems   []lruElem
	scratch []uint32 // the drains' sort buffers
}

func lruLists(spec Spec) uint64 {
	if spec.Flags&FlagNoCommonLRU != 0 {
		return uint64(spec.CPUs)
	}
	return 1
}

func newLRU(m *hashMap) *lruState {
	s := &lruState{m: m, nlists: uint32(lruLists(m.spec))}
	s.per = m.total / s.nlists
	s.cap = s.per - 1
	s.lists = make([]lruList, s.nlists)
	s.elems = make([]lruElem, m.total)
	s.scratch = make([]uint32, m.total)
	for l := range s.lists {
		s.lists[l].bump = uint32(l) * s.per
	}
	m.private += uint64(s.nlists)*64 + uint64(m.total)*(32+4)
	return s
}

func (s *lruState) state(i uint32) uint32 { return s.elems[i].state.Load() }
func (s *lruState) setState(i, st uint32) { s.elems[i].state.Store(st) }

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
	e := &s.elems[i]
	if !e.queued.CompareAndSwap(0, 1) {
		return
	}
	mem.AtomicStore32(s.hot(i)+hotDirty, 1)
	t := &s.lists[s.listOf(i)].touched
	for {
		old := t.Load()
		e.touchNext.Store(old)
		if t.CompareAndSwap(old, i+1) {
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
	L := &s.lists[l]
	head := L.head
	s.elems[i].prev = 0
	s.elems[i].next = head
	if head != 0 {
		s.elems[head-1].prev = i + 1
	} else {
		L.tail = i + 1
	}
	L.head = i + 1
}

func (s *lruState) remove(l, i uint32) {
	L := &s.lists[l]
	p, n := s.elems[i].prev, s.elems[i].next
	if p != 0 {
		s.elems[p-1].next = n
	} else {
		L.head = n
	}
	if n != 0 {
		s.elems[n-1].prev = p
	} else {
		L.tail = p
	}
}

func (s *lruState) freePush(l, i uint32) {
	s.setState(i, stFree)
	s.elems[i].next = s.lists[l].free
	s.lists[l].free = i + 1
}

func (s *lruState) freePop(l uint32) (uint32, bool) {
	L := &s.lists[l]
	if top := L.free; top != 0 {
		L.free = s.elems[top-1].next
		return top - 1, true
	}
	if L.bump < (l+1)*s.per {
		L.bump++
		return L.bump - 1, true
	}
	return 0, false
}

// drain empties list l's touched stack: deleted elements are reclaimed,
// used ones move to the head in the order of their ticks. An element is
// on one stack at most once (queued), so the stack holds at most per
// elements.
func (s *lruState) drain(l uint32) {
	L := &s.lists[l]
	top := L.touched.Swap(0)
	if top == 0 {
		return
	}
	scratch := s.scratch[l*s.per : (l+1)*s.per]
	k := 0
	for n := 0; top != 0 && n < len(scratch); n++ {
		i := top - 1
		e := &s.elems[i]
		top = e.touchNext.Load()
		e.queued.Store(0)
		mem.AtomicStore32(s.hot(i)+hotDirty, 0)
		switch e.state.Load() {
		case stLinked:
			e.snap = mem.Load64(s.hot(i) + hotTick)
			scratch[k] = i
			k++
		case stUnlinked:
			s.remove(l, i)
			s.freePush(l, i)
			L.live--
		}
	}
	batch := scratch[:k]
	slices.SortFunc(batch, func(a, b uint32) int {
		return cmp.Compare(s.elems[a].snap, s.elems[b].snap)
	})
	for _, i := range batch {
		s.remove(l, i)
		s.pushHead(l, i)
	}
}

// alloc takes an element for a new key on list l (locked, no bucket lock
// held): a free one while the list has room, else the least recently used
// element, evicted from its chain.
func (s *lruState) alloc(l uint32) (uint32, bool, error) {
	L := &s.lists[l]
	if L.live < s.cap {
		if i, ok := s.freePop(l); ok {
			L.live++
			return i, true, nil
		}
	}
	return s.evict(l)
}

// evict takes the element at list l's tail out of the map and returns it
// for reuse; the list's live count is unchanged (one out, one to come in).
// The element's bucket comes from the hash it was linked with, kept in Go
// memory; its chain must hold it, or the chain was written over.
func (s *lruState) evict(l uint32) (uint32, bool, error) {
	m := s.m
	for t, n := s.lists[l].tail, uint32(0); t != 0 && n <= s.per; n++ {
		i := t - 1
		t = s.elems[i].prev
		if s.state(i) == stLinked {
			b := s.elems[i].hash & m.mask
			m.lockBucket(b)
			if s.state(i) == stLinked {
				link, ok, err := m.linkOf(b, i)
				if err == nil && !ok {
					err = m.corrupt("element %d is linked but not in its bucket %d's chain", i, b)
				}
				if err != nil {
					m.unlockBucket(b)
					return 0, false, err
				}
				m.unlink(link, i)
				s.setState(i, stFree)
				err = m.release()
				m.unlockBucket(b)
				s.remove(l, i)
				if err != nil {
					// Out, and nothing comes in: keep it free.
					s.freePush(l, i)
					s.lists[l].live--
					return 0, false, err
				}
				return i, true, nil
			}
			m.unlockBucket(b)
		}
		if s.state(i) == stUnlinked {
			s.remove(l, i)
			s.setState(i, stFree)
			return i, true, nil
		}
	}
	return 0, false, nil
}

// update is htab_lru_map_update_elem and __htab_lru_percpu_map_update_elem.
func (s *lruState) update(key, value []byte, h uint32, flags uint64, cpu int) error {
	m := s.m
	l := s.listFor(cpu)
	L := &s.lists[l]
	L.mu.Lock()
	defer L.mu.Unlock()
	s.drain(l)

	// Predict from a lock-free lookup, so a doomed update evicts nothing.
	old, exists, err := m.find(key, h)
	if err != nil {
		return err
	}
	if err := checkUpdateFlags(exists, flags); err != nil {
		return err
	}
	b := h & m.mask
	if exists && m.percpu {
		m.lockBucket(b)
		i, _, ok, err := m.findLocked(b, key, h)
		if err == nil && ok {
			err = m.linked(i)
		}
		if err != nil {
			m.unlockBucket(b)
			return err
		}
		if ok {
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
			L.live++
		}
	} else if n, ok, err = s.alloc(l); err != nil {
		return err
	}
	if !ok {
		return ENOMEM // bpf_lru_pop_free found nothing: unreachable here
	}
	m.writeElem(n, h, key, value, cpu)
	s.elems[n].hash = h

	// giveBack returns n, taken for nothing.
	giveBack := func() {
		s.freePush(l, n)
		L.live--
	}
	m.lockBucket(b)
	old, link, found, err := m.findLocked(b, key, h)
	if err == nil && found {
		err = m.linked(old)
	}
	if err == nil {
		err = checkUpdateFlags(found, flags)
	}
	if err != nil {
		m.unlockBucket(b)
		giveBack()
		return err
	}
	if found && m.percpu {
		// Raced with an insert of the same key: update it in place.
		m.writeValue(old, value, cpu, false)
		m.unlockBucket(b)
		giveBack()
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
			L.live--
		} else {
			s.unlinked(old)
		}
	} else {
		m.count.Add(1)
	}
	m.unlockBucket(b)

	// A replacement whose old element vanished meanwhile was an insert:
	// give back an element if that overfilled the list.
	if L.live > s.cap {
		i, ok, err := s.evict(l)
		if err != nil {
			return err
		}
		if ok {
			s.freePush(l, i)
			L.live--
		}
	}
	return nil
}
