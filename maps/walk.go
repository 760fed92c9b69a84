package maps

import (
	"errors"
	"fmt"
)

// WalkElems is the walk of bpf_for_each_map_elem: it calls fn with each
// element's key and the address of cpu's copy of its value (what a
// program's lookup would return), in the map's order, until fn returns
// true or an error, and returns the number of calls. key is valid only
// during the call.
//
// Hash maps are walked as bpf_for_each_hash_elem walks them
// (kernel/bpf/hashtab.c): bucket by bucket, along each chain without
// locks, so fn may update and delete elements, a deleted element leading
// on to the rest of its chain. Arrays are walked index by index
// (bpf_for_each_array_elem). Other maps with Elems, which Linux does not
// walk, follow NextKey.
//
// Every walk ends: a chain link past the elements, or a chain that loops,
// fails with ErrCorrupt; a walk that calls fn more than four times per
// element the map can hold fails with ErrIterationAborted. (A callback
// that deletes the element it visits and adds its key back gets the same
// element back, at the head of the chain, behind the walk, so two such
// elements can send a walk back and forth without end. A NextKey walk
// restarts when a key it stands on is deleted.)
func WalkElems(m Map, cpu int, fn func(key []byte, value uint64) (stop bool, err error)) (uint64, error) {
	switch x := m.(type) {
	case *hashMap:
		if x.inner == nil {
			return x.walk(cpu, fn)
		}
	case *arrayMap:
		return x.walk(cpu, fn)
	}
	return walkNextKey(m, cpu, fn)
}

// walkLimit is how many calls a walk of a map of n elements may make.
func walkLimit(n uint64) uint64 { return 4*n + 64 }

// aborted is the error of a walk that reached its limit.
func aborted(s Spec, steps, n uint64) error {
	return fmt.Errorf("%s %q: walk: %d steps for %d elements: %w", s.Type, s.Name, steps, n, ErrIterationAborted)
}

func (m *hashMap) walk(cpu int, fn func([]byte, uint64) (bool, error)) (uint64, error) {
	if m.closed.Load() {
		return 0, m.errorf(EBADF, "walk: map is closed")
	}
	if m.percpu && uint(cpu) >= uint(m.spec.CPUs) {
		return 0, m.errorf(EINVAL, "walk: cpu %d of %d", cpu, m.spec.CPUs)
	}
	limit := walkLimit(uint64(m.total))
	calls := uint64(0)
	for b := uint32(0); uint64(b) < m.nb; b++ {
		n := m.loadNext(m.bucketOff(b))
		for steps := uint32(0); n&nullsBit == 0; steps++ {
			if n >= m.total {
				return calls, m.corrupt("walk: bucket %d: link %d is past the %d elements", b, n, m.total)
			}
			if steps >= m.total {
				// A callback that deletes and adds elements can send the
				// walk round a chain more than once; a loop in the chain
				// itself is corruption. The chain, checked under its
				// lock, tells which.
				m.lockBucket(b)
				_, err := m.chain(b, nil)
				m.unlockBucket(b)
				if err != nil {
					return calls, fmt.Errorf("walk: %w", err)
				}
				steps = 0
			}
			if calls >= limit {
				return calls, aborted(m.spec, calls, uint64(m.total))
			}
			e := m.elemOff(n)
			value := m.hdr + m.valueOff(n)
			if m.percpu {
				value += uint64(cpu) * m.vstride
			}
			calls++
			stop, err := fn(m.mapping[e+8:e+8+m.ks], value)
			if err != nil || stop {
				return calls, err
			}
			n = m.loadNext(e)
		}
	}
	return calls, nil
}

func (m *arrayMap) walk(cpu int, fn func([]byte, uint64) (bool, error)) (uint64, error) {
	if m.closed.Load() {
		return 0, m.errorf(EBADF, "walk: map is closed")
	}
	if m.percpu && uint(cpu) >= uint(m.spec.CPUs) {
		return 0, m.errorf(EINVAL, "walk: cpu %d of %d", cpu, m.spec.CPUs)
	}
	var key [4]byte
	for i := uint64(0); i < m.max; i++ {
		native.PutUint32(key[:], uint32(i))
		value := m.hdr + m.off(i)
		if m.percpu {
			value = m.hdr + m.offCPU(i, cpu)
		}
		stop, err := fn(key[:], value)
		if err != nil || stop {
			return i + 1, err
		}
	}
	return m.max, nil
}

// walkNextKey walks the keys NextKey gives, looking each up; a key
// deleted meanwhile is skipped.
func walkNextKey(m Map, cpu int, fn func([]byte, uint64) (bool, error)) (uint64, error) {
	s := m.Spec()
	e, ok := m.(Elems)
	if !ok {
		return 0, (&base{spec: s}).errorf(EOPNOTSUPP, "walk: %s maps have no elements to walk", s.Type)
	}
	limit := walkLimit(uint64(s.MaxEntries))
	next := make([]byte, s.KeySize)
	var prev []byte
	calls := uint64(0)
	for steps := uint64(0); ; steps++ {
		if steps >= limit {
			return calls, aborted(s, steps, uint64(s.MaxEntries))
		}
		if err := m.NextKey(prev, next); err != nil {
			if errors.Is(err, ENOENT) {
				return calls, nil
			}
			return calls, fmt.Errorf("walk: %w", err)
		}
		prev = append(prev[:0], next...)
		value := e.LookupElem(cpu, next)
		if value == 0 {
			continue // deleted meanwhile
		}
		calls++
		stop, err := fn(next, value)
		if err != nil || stop {
			return calls, err
		}
	}
}
