package maps

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// Every map lives in one off-heap mapping (internal/mem.Alloc) that starts
// with a 256-byte header; Handle is the header's address. Programs hold
// the handle (a lddw with a map reference loads it), helpers resolve it
// through the program's Set, and native code can read the header directly: the
// JIT inlines array lookups from data, stride and max_entries, and hash
// lookups from data, aux, mask, seed and elem_size.
//
// All fields are in host byte order. The header is written once by New
// and read by native code; the Go side never reads it back (it keeps its
// own copies of every field), so a program that writes over a header can
// mislead native code reading it, not the maps. The exceptions are an LPM
// trie's root and seqlock counter, which its updates write and every
// lookup reads (lpm.go): a corrupt root is a link the walk checks, a
// corrupt counter sends lookups to the lock.
//
//	Handle
//	  │
//	  ▼
//	+0   ┌───────────────────────────┬───────────────────────────┐
//	     │ magic u32 = 0x70616d77    │ type u32 (Linux numbering)│
//	+8   ├───────────────────────────┼───────────────────────────┤
//	     │ key_size u32              │ value_size u32            │
//	+16  ├───────────────────────────┼───────────────────────────┤
//	     │ max_entries u32           │ map_flags u32             │
//	+24  ├───────────────────────────┼───────────────────────────┤
//	     │ value_stride u32          │ cpus u32                  │
//	+32  ├───────────────────────────┴───────────────────────────┤
//	     │ data u64: address of the type's main storage          │
//	+40  ├───────────────────────────────────────────────────────┤
//	     │ aux u64: address of the type's second storage         │
//	+48  ├───────────────────────────┬───────────────────────────┤
//	     │ mask u32                  │ seed u32                  │
//	+56  ├───────────────────────────┼───────────────────────────┤
//	     │ elem_size u32             │ reserved u32, zero        │
//	+64  ├───────────────────────────┴───────────────────────────┤
//	     │ reserved u64, zero                                    │
//	+72  ├───────────────────────────────────────────────────────┤
//	     │ type-specific words, 120 bytes (see the type's file)  │
//	+192 ├───────────────────────────────────────────────────────┤
//	     │ reserved for the JIT, 64 bytes, zero                  │
//	+256 └───────────────────────────────────────────────────────┘
//	     storage (data, aux, ...) follows in the same mapping
//
// What changes while a map is in use is split by who must reach it. What a
// lookup reads (hash chains and elements, trie nodes, values, ring buffer
// records) is in the mapping, where native code can follow it without
// calling Go. What only updates touch (locks, element counts, free lists,
// LRU lists, queue positions) is in Go memory, which no program and no
// corrupted word of the mapping can reach: so a map cannot be made to
// hang on a lock word, to lose capacity through a count, or to hand out
// an element twice through a free list. The exception is a ring buffer,
// whose reservations native code makes too: its producers' lock,
// positions, drop count and waiting readers are header words
// (ringbuf.go); the lock word holds one value while held, so that any
// other is seen as corrupt, and one left held is given up after a bound.
// Every index and length the Go side reads from the mapping is checked
// before use (package doc, "Corrupted maps").
//
// value_stride is roundUp8(value_size): the distance between array values
// and between the CPUs' copies of a per-CPU hash value; a per-CPU array's is
// the distance between its CPUs' blocks (max_entries × roundUp8(value_size)).
// cpus is Spec.CPUs. The
// meaning of data, aux, mask, seed and elem_size per type:
//
//	array, percpu_array   data = values (percpu: cpus blocks of max_entries ×
//	                      stride, one per CPU); elem_size = stride; mask = 0
//	hash family           data = buckets, aux = elements, mask = n_buckets-1,
//	                      seed = jhash initval, elem_size (hash.go)
//	lpm_trie              data = nodes, elem_size = node size (lpm.go)
//	queue, stack          data = slots of value_stride bytes (queue.go)
//	bloom_filter          data = bit set, mask = bit mask, seed (bloom.go)
//	ringbuf               data = ring data, mask = size-1; lock, positions
//	                      and drop count in the type words (ringbuf.go)
//	fd arrays, devmaps    data = u64 slots (fdarray.go, devmap.go)
const (
	hdrMagic       = 0
	hdrType        = 4
	hdrKeySize     = 8
	hdrValueSize   = 12
	hdrMaxEntries  = 16
	hdrFlags       = 20
	hdrValueStride = 24
	hdrCPUs        = 28
	hdrData        = 32
	hdrAux         = 40
	hdrMask        = 48
	hdrSeed        = 52
	hdrElemSize    = 56
	hdrTypeState   = 72  // start of the type-specific words
	hdrJIT         = 192 // start of the JIT's reserved words
	headerSize     = 256

	// Offsets of the header words native code reads (the JIT's inline
	// lookups), as the diagram above places them.
	HeaderType        = hdrType
	HeaderMaxEntries  = hdrMaxEntries
	HeaderValueStride = hdrValueStride
	HeaderCPUs        = hdrCPUs
	HeaderKeySize     = hdrKeySize
	HeaderData        = hdrData
	HeaderAux         = hdrAux
	HeaderMask        = hdrMask
	HeaderSeed        = hdrSeed
	HeaderElemSize    = hdrElemSize
	// HeaderLPMNodes, HeaderLPMRoot and HeaderLPMSeq are an LPM trie's
	// node count, root node and seqlock counter (lpm.go).
	HeaderLPMNodes = hdrLPMNodes
	HeaderLPMRoot  = hdrLPMRoot
	HeaderLPMSeq   = hdrLPMSeq
	// HeaderRingLock, HeaderRingWaiting, HeaderRingCons, HeaderRingProd,
	// HeaderRingPending, HeaderRingDropped and HeaderRingPageShift are a
	// ring buffer's producers' lock (u32, RingLocked while held), waiting
	// readers (i32), consumer, producer and pending positions, drop count
	// (u64) and log2 of the page size (u32) (ringbuf.go).
	HeaderRingLock      = hdrRBLock
	HeaderRingWaiting   = hdrRBWaiting
	HeaderRingCons      = hdrRBCons
	HeaderRingProd      = hdrRBProd
	HeaderRingPending   = hdrRBPending
	HeaderRingDropped   = hdrRBDropped
	HeaderRingPageShift = hdrRBPageShift
	// RingLocked is a ring buffer's lock word while a producer holds it.
	RingLocked = rbLocked
	// RingBusy and RingDiscard are a ring buffer record header's
	// BPF_RINGBUF_BUSY_BIT and BPF_RINGBUF_DISCARD_BIT; RingHdrSize is
	// BPF_RINGBUF_HDR_SZ; RingMaxRecord is the largest sample a
	// reservation may ask for.
	RingBusy      = rbBusy
	RingDiscard   = rbDiscard
	RingHdrSize   = rbHdrSize
	RingMaxRecord = ringbufMaxRecord

	// HeaderMagic is the first word of every map header ("wmap" read as
	// little-endian bytes), so a handle can be recognised.
	HeaderMagic = 0x70616d77
)

// native is the byte order of off-heap words.
var native = binary.NativeEndian

// base is what every map embeds: its spec, its mapping and the closed flag.
type base struct {
	spec    Spec
	mapping []byte // the whole off-heap mapping: header, then storage
	hdr     uint64 // the mapping's address: Handle
	private uint64 // bytes of state the map keeps in Go memory
	closed  atomic.Bool
	cleanup runtime.Cleanup
}

// init allocates the mapping (header plus storage bytes) and writes the
// header's common fields.
func (b *base) init(spec Spec, storage uint64) error {
	total := uint64(headerSize) + storage
	if total > 1<<46 || total > math.MaxInt {
		return specError(&spec, ENOMEM, "%d bytes of storage is more than the address space allows", storage)
	}
	m, err := mem.Alloc(int(total))
	if err != nil {
		return specError(&spec, ENOMEM, "%v", err)
	}
	b.spec = spec
	b.mapping = m
	b.hdr = mem.Addr(m)
	// The backstop for a map dropped without Close: unmap it once the Go
	// value is unreachable. Whoever runs programs keeps their maps
	// reachable (a Set does) while they may run.
	b.cleanup = runtime.AddCleanup(b, func(m []byte) { _ = mem.Free(m) }, m)
	native.PutUint32(m[hdrMagic:], HeaderMagic)
	native.PutUint32(m[hdrType:], uint32(spec.Type))
	native.PutUint32(m[hdrKeySize:], spec.KeySize)
	native.PutUint32(m[hdrValueSize:], spec.ValueSize)
	native.PutUint32(m[hdrMaxEntries:], spec.MaxEntries)
	native.PutUint32(m[hdrFlags:], spec.Flags)
	native.PutUint32(m[hdrValueStride:], uint32(roundUp8(spec.ValueSize)))
	native.PutUint32(m[hdrCPUs:], uint32(spec.CPUs))
	return nil
}

// put32 and put64 write header words during construction.
func (b *base) put32(off int, v uint32) { native.PutUint32(b.mapping[off:], v) }
func (b *base) put64(off int, v uint64) { native.PutUint64(b.mapping[off:], v) }

// Spec returns the map's description.
func (b *base) Spec() Spec {
	s := b.spec
	if s.InnerMap != nil {
		in := *s.InnerMap
		s.InnerMap = &in
	}
	return s
}

// Handle returns the address of the map's header.
func (b *base) Handle() uint64 { return b.hdr }

// MemoryUsage returns the bytes of the map's mapping and of the state it
// keeps in Go memory.
func (b *base) MemoryUsage() uint64 { return uint64(cap(b.mapping)) + b.private }

// free unmaps the mapping once; later calls fail with EBADF.
func (b *base) free() error {
	if b.closed.Swap(true) {
		return b.errorf(EBADF, "close: already closed")
	}
	b.cleanup.Stop()
	return mem.Free(b.mapping)
}

// errorf wraps errno with the map and what went wrong.
func (b *base) errorf(errno Errno, format string, args ...any) error {
	return fmt.Errorf("%s %q: %s: %w", b.spec.Type, b.spec.Name, fmt.Sprintf(format, args...), errno)
}

// corrupt is the error of an operation that found the mapping in a state
// no operation leaves it in (ErrCorrupt).
func (b *base) corrupt(format string, args ...any) error {
	return b.errorf(ErrCorrupt, format, args...)
}

// check validates the sizes of a Go-side call's key and value (value nil
// for calls without one; n is the expected value length) and that the map
// is open.
func (b *base) check(op string, key []byte, value []byte, n int) error {
	if b.closed.Load() {
		return b.errorf(EBADF, "%s: map is closed", op)
	}
	if len(key) != int(b.spec.KeySize) {
		return b.errorf(EINVAL, "%s: key is %d bytes, want %d", op, len(key), b.spec.KeySize)
	}
	if value != nil && len(value) != n {
		return b.errorf(EINVAL, "%s: value is %d bytes, want %d", op, len(value), n)
	}
	return nil
}

// checkNext validates NextKey's arguments: key may be nil.
func (b *base) checkNext(key, next []byte) error {
	if b.closed.Load() {
		return b.errorf(EBADF, "next key: map is closed")
	}
	if key != nil && len(key) != int(b.spec.KeySize) {
		return b.errorf(EINVAL, "next key: key is %d bytes, want %d", len(key), b.spec.KeySize)
	}
	if len(next) != int(b.spec.KeySize) {
		return b.errorf(EINVAL, "next key: buffer is %d bytes, want %d", len(next), b.spec.KeySize)
	}
	return nil
}

// checkRead and checkWrite apply BPF_F_WRONLY and BPF_F_RDONLY to the Go
// side (map_get_sys_perms in kernel/bpf/syscall.c).
func (b *base) checkRead(op string) error {
	if b.spec.Flags&FlagWrOnly != 0 {
		return b.errorf(EPERM, "%s: map is write-only from user space (BPF_F_WRONLY)", op)
	}
	return nil
}

func (b *base) checkWrite(op string) error {
	if b.spec.Flags&FlagRdOnly != 0 {
		return b.errorf(EPERM, "%s: map is read-only from user space (BPF_F_RDONLY)", op)
	}
	return nil
}

// unsupported is the error of an operation a type does not have.
func (b *base) unsupported(op string, errno Errno) error {
	if b.closed.Load() {
		return b.errorf(EBADF, "%s: map is closed", op)
	}
	return b.errorf(errno, "%s is not supported by %s maps", op, b.spec.Type)
}

// valueSize is the Go-side value length: per-CPU maps carry every CPU's
// copy at stride roundUp8(ValueSize).
func (b *base) goValueSize() int {
	switch b.spec.Type {
	case PerCPUArray, PerCPUHash, LRUPerCPUHash, PerCPUCgroupStorage:
		return int(roundUp8(b.spec.ValueSize)) * b.spec.CPUs
	}
	return int(b.spec.ValueSize)
}

// addr returns the address of byte off of the mapping.
func (b *base) addr(off uint64) uint64 { return b.hdr + off }
