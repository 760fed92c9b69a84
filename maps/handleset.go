package maps

import "sync/atomic"

// handleSet is a set of map handles that readers query without a lock: a
// hash of maps' lookup from a program asks whether the handle in a slot is
// one SetInner stored (innerRefs.has), on every bpf_map_lookup_elem.
//
// It is an open-addressing table of atomic words. Writers, serialised by
// their owner's mutex, store into the table in place, and replace it by a
// larger copy (an atomic pointer swap) when it fills up; readers load the
// table pointer and probe. A table always keeps an empty slot, so a probe
// ends. Each answer is the set as it was at some instant of the call; a
// writer that adds a handle before it stores the handle into a slot (and
// drops the old one after) makes every reader that sees the handle in the
// slot find it in the set, as a read lock over both did.
//
//	table ─► ┌───────┬───────┬───────┬─────┬───────┐
//	         │ h     │ 0     │ 1     │ ... │ h'    │   0 empty, 1 deleted
//	         └───────┴───────┴───────┴─────┴───────┘
type handleSet struct {
	tab  atomic.Pointer[handleTable]
	n    int // handles in the set (writers only)
	used int // slots not empty: handles and deleted marks (writers only)
}

type handleTable struct {
	slots []atomic.Uint64
	mask  uint64
}

// Slot words that are not handles: a handle is a map's address, never 0
// or 1.
const (
	handleEmpty   = 0
	handleDeleted = 1
)

// handleSlot is where a probe for h starts (Fibonacci hashing: handles are
// addresses, whose low bits are alike).
func (t *handleTable) handleSlot(h uint64) uint64 {
	return (h * 0x9e3779b97f4a7c15 >> 32) & t.mask
}

// has reports whether h is in the set. It takes no lock.
func (s *handleSet) has(h uint64) bool {
	t := s.tab.Load()
	if t == nil || h <= handleDeleted {
		return false
	}
	for i := t.handleSlot(h); ; i = (i + 1) & t.mask {
		switch t.slots[i].Load() {
		case h:
			return true
		case handleEmpty:
			return false
		}
	}
}

// add puts h in the set. The caller serialises writers.
func (s *handleSet) add(h uint64) {
	if h <= handleDeleted || s.has(h) {
		return
	}
	t := s.tab.Load()
	if t == nil || (s.used+1)*4 > len(t.slots)*3 {
		t = s.grow()
	}
	for i := t.handleSlot(h); ; i = (i + 1) & t.mask {
		switch t.slots[i].Load() {
		case handleEmpty:
			s.used++
			fallthrough
		case handleDeleted:
			t.slots[i].Store(h)
			s.n++
			return
		}
	}
}

// remove takes h out of the set. The caller serialises writers.
func (s *handleSet) remove(h uint64) {
	t := s.tab.Load()
	if t == nil || h <= handleDeleted {
		return
	}
	for i := t.handleSlot(h); ; i = (i + 1) & t.mask {
		switch t.slots[i].Load() {
		case h:
			t.slots[i].Store(handleDeleted)
			s.n--
			return
		case handleEmpty:
			return
		}
	}
}

// clear empties the set. The caller serialises writers.
func (s *handleSet) clear() {
	s.tab.Store(nil)
	s.n, s.used = 0, 0
}

// grow publishes a copy of the table without deleted marks, with room for
// twice the handles, and returns it.
func (s *handleSet) grow() *handleTable {
	size := 16
	for size*3 < (s.n+1)*2*4 {
		size *= 2
	}
	nt := &handleTable{slots: make([]atomic.Uint64, size), mask: uint64(size - 1)}
	if old := s.tab.Load(); old != nil {
		for i := range old.slots {
			if h := old.slots[i].Load(); h > handleDeleted {
				j := nt.handleSlot(h)
				for nt.slots[j].Load() != handleEmpty {
					j = (j + 1) & nt.mask
				}
				nt.slots[j].Store(h)
			}
		}
	}
	s.used = s.n
	s.tab.Store(nt)
	return nt
}
