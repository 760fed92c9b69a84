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
	maps    []Map    // maps[i] has handles[i]
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
		s.handles = slices.Insert(s.handles, i, h)
		s.maps = slices.Insert(s.maps, i, m)
	}
	return s
}

// Lookup returns the map in s with the given handle.
func (s *Set) Lookup(handle uint64) (Map, bool) {
	if s == nil {
		return nil, false
	}
	h := s.handles
	if len(h) <= 8 {
		for i, x := range h {
			if x == handle {
				return s.maps[i], true
			}
		}
		return nil, false
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
		return s.maps[lo], true
	}
	return nil, false
}

// Resolve is Lookup for helpers: a handle not in s is an error saying so,
// for the helper to fail the run with.
func (s *Set) Resolve(handle uint64) (Map, error) {
	if m, ok := s.Lookup(handle); ok {
		return m, nil
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
	return len(s.maps)
}

// All returns the maps in s, in handle order.
func (s *Set) All() []Map {
	if s == nil {
		return nil
	}
	return slices.Clone(s.maps)
}
