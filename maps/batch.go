package maps

import (
	"errors"
	"fmt"
	"iter"
)

// Batch operations and iteration, with cilium/ebpf's semantics over byte
// slices: keys and values are packed back to back (KeySize bytes per key;
// ValueSize per value, or roundUp8(ValueSize)·CPUs for per-CPU maps).
//
// The types that have batch operations are those Linux gives them:
// lookup and update batches for arrays, per-CPU arrays, arrays of maps,
// hashes of every kind and LPM tries; delete batches for hashes and tries;
// lookup-and-delete batches for hashes. Others fail with ENOTSUPP
// (BPF_DO_BATCH in kernel/bpf/syscall.c).

// BatchCursor remembers where a LookupBatch or LookupAndDeleteBatch stopped.
// The zero value starts at the beginning. A cursor belongs to one map.
type BatchCursor struct {
	started bool
	done    bool
	bucket  uint64 // hash maps: the next bucket (the kernel's batch token)
	key     []byte // other maps: the last key returned
}

// batchKind says which batch operations a type has.
func batchKind(t Type) (lookup, del, lookupDel bool) {
	switch t {
	case Hash, PerCPUHash, LRUHash, LRUPerCPUHash, HashOfMaps:
		return true, true, true
	case LPMTrie:
		return true, true, false
	case Array, PerCPUArray, ArrayOfMaps:
		return true, false, false
	}
	return false, false, false
}

func batchSizes(m Map, op string, keys, values []byte, withValues bool) (int, error) {
	s := m.Spec()
	b := &base{spec: s}
	if s.KeySize == 0 || len(keys)%int(s.KeySize) != 0 {
		return 0, b.errorf(EINVAL, "%s: keys buffer of %d bytes is not a whole number of %d-byte keys", op, len(keys), s.KeySize)
	}
	n := len(keys) / int(s.KeySize)
	if withValues {
		if vs := b.goValueSize(); len(values) != n*vs {
			return 0, b.errorf(EINVAL, "%s: values buffer of %d bytes, want %d keys × %d bytes", op, len(values), n, vs)
		}
	}
	return n, nil
}

// LookupBatch copies up to len(keys)/KeySize entries after cursor into keys
// and values and returns how many. At the end of the map it returns the
// count with ErrKeyNotExist (ENOENT), as BPF_MAP_LOOKUP_BATCH does; later
// calls with the same cursor return 0, ErrKeyNotExist. A hash map returns
// whole buckets only: ENOSPC if the buffers cannot hold the next bucket.
func LookupBatch(m Map, cursor *BatchCursor, keys, values []byte) (int, error) {
	return lookupBatch(m, cursor, keys, values, false)
}

// LookupAndDeleteBatch is LookupBatch that also deletes what it returns
// (hash maps only).
func LookupAndDeleteBatch(m Map, cursor *BatchCursor, keys, values []byte) (int, error) {
	return lookupBatch(m, cursor, keys, values, true)
}

func lookupBatch(m Map, cursor *BatchCursor, keys, values []byte, del bool) (int, error) {
	op := "lookup batch"
	if del {
		op = "lookup and delete batch"
	}
	lookup, _, lookupDel := batchKind(m.Spec().Type)
	if (!del && !lookup) || (del && !lookupDel) {
		return 0, unsupportedBatch(m, op)
	}
	n, err := batchSizes(m, op, keys, values, true)
	if err != nil || n == 0 {
		return 0, err
	}
	if cursor == nil {
		return 0, (&base{spec: m.Spec()}).errorf(EINVAL, "%s: nil cursor", op)
	}
	if cursor.done {
		return 0, ENOENT
	}
	var h *hashMap
	switch x := m.(type) {
	case *hashMap:
		h = x
	case *devHash:
		h = x.hashMap
	}
	if h != nil {
		if h.closed.Load() {
			return 0, h.errorf(EBADF, "%s: map is closed", op)
		}
		if h.inner != nil {
			return 0, h.errorf(EOPNOTSUPP, "%s: inner maps have no ids in user space", op)
		}
		return h.lookupBatch(cursor, keys, values, n, del)
	}
	return genericLookupBatch(m, cursor, keys, values, n)
}

// genericLookupBatch is generic_map_lookup_batch: NextKey from the cursor's
// key, skipping keys that vanish between NextKey and Lookup, at most as
// many as a walk may step over (walkLimit).
func genericLookupBatch(m Map, cursor *BatchCursor, keys, values []byte, n int) (int, error) {
	s := m.Spec()
	ks := int(s.KeySize)
	vs := len(values) / n
	var prev []byte
	if cursor.started {
		prev = cursor.key
	}
	next := make([]byte, ks)
	cp := 0
	var err error
	for steps := uint64(0); cp < n; steps++ {
		if steps >= walkLimit(uint64(s.MaxEntries)) {
			err = aborted(s, steps, uint64(s.MaxEntries))
			break
		}
		if err = m.NextKey(prev, next); err != nil {
			break
		}
		err = m.Lookup(next, values[cp*vs:(cp+1)*vs])
		if errors.Is(err, ENOENT) {
			prev, next = next, prev
			if next == nil {
				next = make([]byte, ks)
			}
			continue
		}
		if err != nil {
			return cp, err
		}
		copy(keys[cp*ks:], next)
		cp++
		prev, next = next, prev
		if next == nil {
			next = make([]byte, ks)
		}
	}
	if cp > 0 {
		cursor.started = true
		cursor.key = append(cursor.key[:0], prev...)
	}
	if errors.Is(err, ENOENT) {
		cursor.done = true
		return cp, ENOENT
	}
	return cp, err
}

// lookupBatch is __htab_map_lookup_and_delete_batch: whole buckets, the
// cursor being the next bucket. Each bucket's chain is checked whole
// under its lock before anything is copied or deleted; a corrupt one ends
// the batch with ErrCorrupt, the cursor on that bucket.
func (m *hashMap) lookupBatch(cursor *BatchCursor, keys, values []byte, n int, del bool) (int, error) {
	ks := int(m.ks)
	vs := len(values) / n
	b := cursor.bucket
	if b >= m.nb {
		cursor.done = true
		return 0, ENOENT
	}
	total := 0
	var elems []uint32
	for ; b < m.nb; b++ {
		m.lockBucket(uint32(b))
		var err error
		elems, err = m.chain(uint32(b), elems[:0])
		if err == nil && del {
			for _, i := range elems {
				if err = m.linked(i); err != nil {
					break
				}
			}
		}
		if err != nil || len(elems) > n-total {
			m.unlockBucket(uint32(b))
			cursor.started, cursor.bucket = true, b
			switch {
			case err != nil:
				return total, fmt.Errorf("batch: %w", err)
			case total == 0:
				return 0, ENOSPC
			}
			return total, nil
		}
		for _, i := range elems {
			copy(keys[total*ks:], m.keyAt(i))
			m.copyValue(values[total*vs:(total+1)*vs], i)
			total++
			if !del {
				continue
			}
			// Each element is at the head once those before it are gone.
			m.unlink(m.bucketOff(uint32(b)), i)
			if m.lru != nil {
				m.lru.unlinked(i)
			} else {
				err = m.push(i)
			}
			if err == nil {
				err = m.release()
			}
			if err != nil {
				m.unlockBucket(uint32(b))
				cursor.started, cursor.bucket = true, b
				return total, fmt.Errorf("batch: %w", err)
			}
		}
		m.unlockBucket(uint32(b))
	}
	cursor.started, cursor.bucket, cursor.done = true, b, true
	return total, ENOENT
}

// UpdateBatch updates the keys with the values in order and returns how
// many succeeded; it stops at the first error (generic_map_update_batch).
// flags must be 0 (BPF_ANY): Linux refuses other element flags in batches.
func UpdateBatch(m Map, keys, values []byte, flags uint64) (int, error) {
	if lookup, _, _ := batchKind(m.Spec().Type); !lookup {
		return 0, unsupportedBatch(m, "update batch")
	}
	n, err := batchSizes(m, "update batch", keys, values, true)
	if err != nil || n == 0 {
		return 0, err
	}
	if flags != 0 {
		return 0, (&base{spec: m.Spec()}).errorf(EINVAL, "update batch: element flags %#x: only 0 is allowed", flags)
	}
	ks, vs := len(keys)/n, len(values)/n
	for i := range n {
		if err := m.Update(keys[i*ks:(i+1)*ks], values[i*vs:(i+1)*vs], UpdateAny); err != nil {
			return i, err
		}
	}
	return n, nil
}

// DeleteBatch deletes the keys in order and returns how many were
// deleted; it stops at the first error, ENOENT for a missing key
// (generic_map_delete_batch).
func DeleteBatch(m Map, keys []byte) (int, error) {
	if _, del, _ := batchKind(m.Spec().Type); !del {
		return 0, unsupportedBatch(m, "delete batch")
	}
	n, err := batchSizes(m, "delete batch", keys, nil, false)
	if err != nil || n == 0 {
		return 0, err
	}
	ks := len(keys) / n
	for i := range n {
		if err := m.Delete(keys[i*ks : (i+1)*ks]); err != nil {
			return i, err
		}
	}
	return n, nil
}

func unsupportedBatch(m Map, op string) error {
	return (&base{spec: m.Spec()}).errorf(ENOTSUPP, "%s is not supported by %s maps", op, m.Spec().Type)
}

// Iterator walks a map's entries, as cilium/ebpf's MapIterator does. Hash
// maps are walked bucket by bucket, so entries deleted or added during the
// walk never make it restart; other maps follow NextKey, and if a key they
// stand on is deleted the walk restarts from the first key (as NextKey
// does in Linux), giving up with ErrIterationAborted after max_entries
// restarts.
type Iterator struct {
	m       Map
	cursor  BatchCursor
	keys    []byte
	values  []byte
	n, pos  int
	err     error
	done    bool
	prev    []byte
	started bool
	steps   uint64
}

// ErrIterationAborted is returned by Iterator.Err when a walk restarted
// too often because keys were deleted under it.
var ErrIterationAborted = errors.New("iteration aborted: keys deleted during the walk too often")

// Iterate returns an iterator over m's entries.
func Iterate(m Map) *Iterator { return &Iterator{m: m} }

// Next copies the next entry into key and value and reports whether there
// was one; at the end or on error it returns false (see Err).
func (it *Iterator) Next(key, value []byte) bool {
	if it.done {
		return false
	}
	s := it.m.Spec()
	b := &base{spec: s}
	if len(key) != int(s.KeySize) || len(value) != b.goValueSize() {
		it.err = b.errorf(EINVAL, "iterate: key of %d and value of %d bytes, want %d and %d", len(key), len(value), s.KeySize, b.goValueSize())
		it.done = true
		return false
	}
	if _, isHash := it.m.(*hashMap); isHash && it.m.(*hashMap).inner == nil {
		return it.nextBatch(key, value, int(s.KeySize), b.goValueSize())
	}
	return it.nextKey(key, value, s)
}

func (it *Iterator) nextBatch(key, value []byte, ks, vs int) bool {
	for it.pos >= it.n {
		if it.cursor.done {
			it.done = true
			return false
		}
		if it.keys == nil {
			it.keys, it.values = make([]byte, 64*ks), make([]byte, 64*vs)
		}
		n, err := LookupBatch(it.m, &it.cursor, it.keys, it.values)
		if errors.Is(err, ENOSPC) {
			it.keys, it.values = make([]byte, 2*len(it.keys)), make([]byte, 2*len(it.values))
			continue
		}
		if err != nil && !errors.Is(err, ENOENT) {
			it.err, it.done = err, true
			return false
		}
		it.n, it.pos = n, 0
		if n == 0 && it.cursor.done {
			it.done = true
			return false
		}
	}
	copy(key, it.keys[it.pos*ks:])
	copy(value, it.values[it.pos*vs:(it.pos+1)*vs])
	it.pos++
	return true
}

func (it *Iterator) nextKey(key, value []byte, s Spec) bool {
	for {
		var prev []byte
		if it.started {
			prev = it.prev
		}
		err := it.m.NextKey(prev, key)
		if errors.Is(err, ENOENT) {
			it.done = true
			return false
		}
		if err != nil {
			it.err, it.done = err, true
			return false
		}
		if it.steps++; it.steps > 2*uint64(s.MaxEntries)+1 {
			it.err, it.done = ErrIterationAborted, true
			return false
		}
		it.started = true
		it.prev = append(it.prev[:0], key...)
		err = it.m.Lookup(key, value)
		if errors.Is(err, ENOENT) {
			continue // deleted since NextKey
		}
		if err != nil {
			it.err, it.done = err, true
			return false
		}
		return true
	}
}

// Err returns the error that ended the walk, nil at a normal end.
func (it *Iterator) Err() error { return it.err }

// All returns the rest of the walk as a sequence of fresh key and value
// slices; check Err afterwards.
func (it *Iterator) All() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		s := it.m.Spec()
		vs := (&base{spec: s}).goValueSize()
		for {
			k, v := make([]byte, s.KeySize), make([]byte, vs)
			if !it.Next(k, v) || !yield(k, v) {
				return
			}
		}
	}
}

// All returns m's entries as a sequence of fresh key and value slices. It
// stops quietly on error; use Iterate to see the error.
func All(m Map) iter.Seq2[[]byte, []byte] { return Iterate(m).All() }
