package waggle

import (
	"errors"
	"fmt"
	"iter"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// MapUpdateFlags are the flags of Map.Update, as cilium/ebpf names them.
type MapUpdateFlags uint64

// Update flags.
const (
	UpdateAny     MapUpdateFlags = MapUpdateFlags(maps.UpdateAny)     // create or replace
	UpdateNoExist MapUpdateFlags = MapUpdateFlags(maps.UpdateNoExist) // create only
	UpdateExist   MapUpdateFlags = MapUpdateFlags(maps.UpdateExist)   // replace only
	UpdateLock    MapUpdateFlags = MapUpdateFlags(maps.UpdateLock)    // take the value's spin lock
)

// Errors of map operations, for errors.Is, with cilium/ebpf's names.
var (
	ErrKeyNotExist = maps.ErrKeyNotExist
	ErrKeyExist    = maps.ErrKeyExist
)

// Map is a map of a collection, with cilium/ebpf's Map methods. Keys and
// values are []byte of the map's sizes, encoding.Binary(Un)Marshalers, or
// fixed-size types encoding/binary reads and writes in the host's byte
// order. Values of per-CPU maps are slices with one element per CPU.
type Map struct {
	name    string
	m       maps.Map
	spec    maps.Spec
	coll    *Collection
	lockOff int // where a value holds its bpf_spin_lock (spinLockOffset)
	// fields are its values' special fields as the verifier needs them
	// (mapFields).
	fields verifier.Map
}

// Name returns the map's name.
func (m *Map) Name() string { return m.name }

// Type returns the map type.
func (m *Map) Type() ebpf.MapType { return ebpf.MapType(m.spec.Type) }

// KeySize returns the size of a key in bytes.
func (m *Map) KeySize() uint32 { return m.spec.KeySize }

// ValueSize returns the size of a value in bytes (of one CPU's value for
// per-CPU maps).
func (m *Map) ValueSize() uint32 { return m.spec.ValueSize }

// MaxEntries returns the map's capacity.
func (m *Map) MaxEntries() uint32 { return m.spec.MaxEntries }

// Flags returns the map's flags.
func (m *Map) Flags() uint32 { return m.spec.Flags }

// Underlying returns waggle's map, for its program-side and type-specific
// methods (ring buffer readers, prog arrays).
func (m *Map) Underlying() maps.Map { return m.m }

func (m *Map) perCPU() bool {
	switch m.spec.Type {
	case maps.PerCPUArray, maps.PerCPUHash, maps.LRUPerCPUHash, maps.PerCPUCgroupStorage:
		return true
	}
	return false
}

func (m *Map) stride() int { return (int(m.spec.ValueSize) + 7) &^ 7 }

// valueBytes is the size of a Go-side value: one value, or every CPU's.
func (m *Map) valueBytes() int {
	if m.perCPU() {
		return m.stride() * m.coll.cpus
	}
	return int(m.spec.ValueSize)
}

func (m *Map) key(key any) ([]byte, error) {
	if m.spec.KeySize == 0 {
		if key != nil {
			return nil, fmt.Errorf("map %s has no keys, pass nil", m.name)
		}
		return nil, nil
	}
	return marshal(key, int(m.spec.KeySize))
}

func (m *Map) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("map %s: %s: %w", m.name, op, err)
}

// Lookup copies the value for key into valueOut.
func (m *Map) Lookup(key, valueOut any) error {
	b, err := m.LookupBytes(key)
	if err != nil {
		return err
	}
	if b == nil {
		return m.wrap("lookup", ErrKeyNotExist)
	}
	if m.perCPU() {
		return m.wrap("lookup", unmarshalPerCPU(b, m.stride(), int(m.spec.ValueSize), valueOut))
	}
	return m.wrap("lookup", unmarshal(b, valueOut))
}

// LookupBytes returns the value for key as bytes, nil if the key is absent.
func (m *Map) LookupBytes(key any) ([]byte, error) {
	if !m.coll.acquire() {
		return nil, m.wrap("lookup", errCollectionClosed)
	}
	defer m.coll.release()
	k, err := m.key(key)
	if err != nil {
		return nil, m.wrap("lookup", err)
	}
	v := make([]byte, m.valueBytes())
	switch err := m.m.Lookup(k, v); {
	case errors.Is(err, maps.ENOENT):
		return nil, nil
	case err != nil:
		return nil, m.wrap("lookup", err)
	}
	return v, nil
}

// Update sets the value for key. In a prog array the value may be a
// *Program, in a map-in-map a *Map, in a cgroup array a *progtype.Cgroup.
func (m *Map) Update(key, value any, flags MapUpdateFlags) error {
	if !m.coll.acquire() {
		return m.wrap("update", errCollectionClosed)
	}
	defer m.coll.release()
	k, err := m.key(key)
	if err != nil {
		return m.wrap("update", err)
	}
	switch v := value.(type) {
	case *Program:
		pa, ok := m.m.(maps.ProgramArray)
		if !ok {
			return m.wrap("update", fmt.Errorf("a %s holds no programs", m.spec.Type))
		}
		if len(k) != 4 {
			return m.wrap("update", maps.EINVAL)
		}
		// Linux takes the descriptor of a loaded program; a program that
		// cannot be prepared has none.
		if err := v.Prepare(); err != nil {
			return m.wrap("update", err)
		}
		if err := m.coll.owners.claim(pa, m.name, v.own); err != nil {
			return m.wrap("update", err)
		}
		if err := m.coll.keep(v.coll); err != nil {
			return m.wrap("update", err)
		}
		return m.wrap("update", pa.SetProgram(leUint32(k), v))
	case *progtype.Cgroup:
		cs, ok := m.m.(maps.CgroupSlots)
		if !ok || m.spec.Type != maps.CgroupArray {
			return m.wrap("update", fmt.Errorf("a %s holds no cgroups", m.spec.Type))
		}
		if len(k) != 4 {
			return m.wrap("update", maps.EINVAL)
		}
		return m.wrap("update", cs.SetCgroup(leUint32(k), v))
	case *Map:
		mm, ok := m.m.(maps.MapOfMaps)
		if !ok {
			return m.wrap("update", fmt.Errorf("a %s holds no maps", m.spec.Type))
		}
		if err := m.coll.keep(v.coll); err != nil {
			return m.wrap("update", err)
		}
		if err := mm.SetInner(k, v.m); err != nil {
			return m.wrap("update", err)
		}
		m.coll.addInner(m.m, v.m, v.lockOff)
		return nil
	}
	var b []byte
	if m.perCPU() {
		b, err = marshalPerCPU(value, m.coll.cpus, m.stride(), int(m.spec.ValueSize))
	} else {
		b, err = marshal(value, int(m.spec.ValueSize))
	}
	if err != nil {
		return m.wrap("update", err)
	}
	return m.wrap("update", m.m.Update(k, b, uint64(flags)))
}

// Put is Update with UpdateAny.
func (m *Map) Put(key, value any) error { return m.Update(key, value, UpdateAny) }

// Delete removes key.
func (m *Map) Delete(key any) error {
	if !m.coll.acquire() {
		return m.wrap("delete", errCollectionClosed)
	}
	defer m.coll.release()
	k, err := m.key(key)
	if err != nil {
		return m.wrap("delete", err)
	}
	return m.wrap("delete", m.m.Delete(k))
}

// NextKey stores the key after key into nextKeyOut (the first key for a
// nil key). ErrKeyNotExist after the last key.
func (m *Map) NextKey(key, nextKeyOut any) error {
	if !m.coll.acquire() {
		return m.wrap("next key", errCollectionClosed)
	}
	defer m.coll.release()
	var k []byte
	if key != nil {
		var err error
		if k, err = m.key(key); err != nil {
			return m.wrap("next key", err)
		}
	}
	next := make([]byte, m.spec.KeySize)
	if err := m.m.NextKey(k, next); err != nil {
		return m.wrap("next key", err)
	}
	return m.wrap("next key", unmarshal(next, nextKeyOut))
}

// All iterates over the map's keys and values as bytes (values of per-CPU
// maps hold every CPU's, padded to 8 bytes each). Entries changed during
// the iteration may be seen or not, as with the kernel's iteration.
func (m *Map) All() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		var key []byte
		for {
			next := make([]byte, m.spec.KeySize)
			v := make([]byte, m.valueBytes())
			if !m.coll.acquire() {
				return
			}
			err := m.m.NextKey(key, next)
			if err == nil {
				err = m.m.Lookup(next, v)
				if errors.Is(err, maps.ENOENT) {
					err = errSkip
				}
			}
			m.coll.release()
			if err != nil && err != errSkip {
				return
			}
			if err == nil {
				if !yield(next, v) {
					return
				}
			}
			key = next
		}
	}
}

// errSkip marks a key deleted between NextKey and Lookup in All.
var errSkip = errors.New("skip")

// Iterate returns an iterator over the map, like cilium/ebpf's.
func (m *Map) Iterate() *MapIterator {
	return &MapIterator{m: m}
}

// MapIterator iterates over a map's entries.
type MapIterator struct {
	m    *Map
	key  []byte
	done bool
	err  error
}

// Next stores the next key and value into keyOut and valueOut and reports
// whether there was one. Check Err afterwards.
func (it *MapIterator) Next(keyOut, valueOut any) bool {
	for !it.done {
		if !it.m.coll.acquire() {
			it.err, it.done = it.m.wrap("iterate", errCollectionClosed), true
			return false
		}
		ok := it.next(keyOut, valueOut)
		it.m.coll.release()
		if ok {
			return true
		}
	}
	return false
}

// next is one step of Next, under a reference on the collection: false
// when it returned no entry (the iteration goes on unless done is set: a
// key deleted between NextKey and Lookup is skipped).
func (it *MapIterator) next(keyOut, valueOut any) bool {
	next := make([]byte, it.m.spec.KeySize)
	if err := it.m.m.NextKey(it.key, next); err != nil {
		if !errors.Is(err, maps.ENOENT) {
			it.err = it.m.wrap("iterate", err)
		}
		it.done = true
		return false
	}
	it.key = next
	v := make([]byte, it.m.valueBytes())
	if err := it.m.m.Lookup(next, v); errors.Is(err, maps.ENOENT) {
		return false // deleted since NextKey
	} else if err != nil {
		it.err, it.done = it.m.wrap("iterate", err), true
		return false
	}
	var err error
	if err = unmarshal(next, keyOut); err == nil {
		if it.m.perCPU() {
			err = unmarshalPerCPU(v, it.m.stride(), int(it.m.spec.ValueSize), valueOut)
		} else {
			err = unmarshal(v, valueOut)
		}
	}
	if err != nil {
		it.err, it.done = it.m.wrap("iterate", err), true
		return false
	}
	return true
}

// Err returns the error that ended the iteration, if any.
func (it *MapIterator) Err() error { return it.err }

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// MapBatchCursor remembers where BatchLookup stopped; the zero value starts
// at the beginning. A cursor belongs to one map.
type MapBatchCursor = maps.BatchCursor

// BatchLookup copies up to len(keys)/KeySize entries after cursor into keys
// and values (laid out back to back, per-CPU values with every CPU's) and
// returns how many, as BPF_MAP_LOOKUP_BATCH does: at the end of the map the
// error is ErrKeyNotExist.
func (m *Map) BatchLookup(cursor *MapBatchCursor, keys, values []byte) (int, error) {
	if !m.coll.acquire() {
		return 0, m.wrap("batch lookup", errCollectionClosed)
	}
	defer m.coll.release()
	n, err := maps.LookupBatch(m.m, cursor, keys, values)
	return n, m.wrap("batch lookup", err)
}

// BatchLookupAndDelete is BatchLookup that also deletes what it returns.
func (m *Map) BatchLookupAndDelete(cursor *MapBatchCursor, keys, values []byte) (int, error) {
	if !m.coll.acquire() {
		return 0, m.wrap("batch lookup and delete", errCollectionClosed)
	}
	defer m.coll.release()
	n, err := maps.LookupAndDeleteBatch(m.m, cursor, keys, values)
	return n, m.wrap("batch lookup and delete", err)
}

// BatchUpdate sets the values of the keys, in order, and returns how many
// it set before the first error.
func (m *Map) BatchUpdate(keys, values []byte, flags MapUpdateFlags) (int, error) {
	if !m.coll.acquire() {
		return 0, m.wrap("batch update", errCollectionClosed)
	}
	defer m.coll.release()
	n, err := maps.UpdateBatch(m.m, keys, values, uint64(flags))
	return n, m.wrap("batch update", err)
}

// BatchDelete deletes the keys, in order, and returns how many it deleted
// before the first error.
func (m *Map) BatchDelete(keys []byte) (int, error) {
	if !m.coll.acquire() {
		return 0, m.wrap("batch delete", errCollectionClosed)
	}
	defer m.coll.release()
	n, err := maps.DeleteBatch(m.m, keys)
	return n, m.wrap("batch delete", err)
}
