package maps

import (
	"errors"
	"fmt"
	"slices"
)

// ErrUnreferenced is the error of a map handle a program passed that is
// not in its Set: a map it does not reference, or no map at all.
var ErrUnreferenced = errors.New("not a map the program references")

// Set is the maps one program may name in helper calls, found by the
// handles programs hold (Map.Handle). In Linux a program can pass helpers
// only the map pointers its lddw instructions load and the inner maps its
// lookups in map-in-maps return: the verifier tracks map pointers and
// refuses anything else. An unverified program can make up a handle, by
// arithmetic on one it holds or from a plain number; resolving handles
// through a Set of the maps it references, rather than through every map
// of its collection, makes such a handle name no map, and the helper
// fails the run. A Set is immutable and safe for concurrent use; a
// program's Set changes (a map stored into a map-in-map it references) by
// being replaced.
type Set struct {
	handles []uint64 // sorted
	entries []Entry  // entries[i] is the map with handles[i]
}

// Entry is a map of a Set with what map helpers ask of it on every call,
// found once, when the Set is built: a helper resolving a handle then
// makes no interface assertion and copies no Spec.
type Entry struct {
	Map Map
	// Elems is Map's element operations, nil for a map without elements.
	Elems Elems
	// KeySize and ValueSize are those of Map's Spec.
	KeySize, ValueSize uint32
	g                  *grace // Map's grace periods, nil for a map without
}

// NewSet returns the set of ms (nil entries and duplicates left out).
func NewSet(ms ...Map) *Set {
	s := &Set{}
	for _, m := range ms {
		if m == nil {
			continue
		}
		h := m.Handle()
		i, found := slices.BinarySearch(s.handles, h)
		if found {
			continue
		}
		spec := m.Spec()
		e := Entry{Map: m, KeySize: spec.KeySize, ValueSize: spec.ValueSize}
		e.Elems, _ = m.(Elems)
		if gm, ok := m.(graced); ok {
			e.g = gm.graceState()
		}
		s.handles = slices.Insert(s.handles, i, h)
		s.entries = slices.Insert(s.entries, i, e)
	}
	return s
}

// find returns the entry of the map with the given handle, nil if s has
// none.
func (s *Set) find(handle uint64) *Entry {
	if s == nil {
		return nil
	}
	h := s.handles
	if len(h) <= 8 {
		for i, x := range h {
			if x == handle {
				return &s.entries[i]
			}
		}
		return nil
	}
	lo, hi := 0, len(h)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if h[mid] < handle {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(h) && h[lo] == handle {
		return &s.entries[lo]
	}
	return nil
}

// Lookup returns the map in s with the given handle.
func (s *Set) Lookup(handle uint64) (Map, bool) {
	if e := s.find(handle); e != nil {
		return e.Map, true
	}
	return nil, false
}

// Resolve is Lookup for helpers: a handle not in s is an error saying so,
// for the helper to fail the run with.
func (s *Set) Resolve(handle uint64) (Map, error) {
	e, err := s.Entry(handle)
	if err != nil {
		return nil, err
	}
	return e.Map, nil
}

// Entry is Resolve returning the map's Entry, which the caller must not
// modify.
func (s *Set) Entry(handle uint64) (*Entry, error) {
	if e := s.find(handle); e != nil {
		return e, nil
	}
	if s == nil {
		return nil, fmt.Errorf("map handle %#x: the run has no maps", handle)
	}
	return nil, fmt.Errorf("map handle %#x: %w (one its lddw instructions load, or a map-in-map it references holds; Linux's verifier allows no other)", handle, ErrUnreferenced)
}

// Len returns the number of maps in s.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.entries)
}

// All returns the maps in s, in handle order.
func (s *Set) All() []Map {
	if s == nil {
		return nil
	}
	all := make([]Map, len(s.entries))
	for i := range s.entries {
		all[i] = s.entries[i].Map
	}
	return all
}
