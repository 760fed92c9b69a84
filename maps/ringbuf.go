package maps

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// Ring buffers (BPF_MAP_TYPE_RINGBUF), after kernel/bpf/ringbuf.c: one
// ring of max_entries bytes (a power of two, a multiple of the page size)
// shared by every producer, records in reservation order, each an 8-byte
// header and the sample rounded up to 8 bytes:
//
//	┌──────────────────────────────┬──────────────┬──────────────────┐
//	│ len u32: size | BUSY | DISCARD │ pg_off u32   │ sample, rnd up 8 │
//	└──────────────────────────────┴──────────────┴──────────────────┘
//	BUSY = 1<<31 until submitted or discarded; DISCARD = 1<<30.
//	pg_off: pages from the map's Handle to the header, as the kernel uses it
//	to find the ring of a sample.
//
// The kernel maps the data pages twice in a row so that a record wrapping
// past the end is contiguous; waggle reserves twice the data size instead
// and lets a record that starts near the end run into the second half,
// which only the record being written ever touches (the ring never holds
// more than max_entries bytes), so samples are always contiguous.
//
// The mapping: the header page, then the data (2 × max_entries bytes) at
// the first page boundary. What producers share is in the header's
// type-specific words, so that the JIT's native bpf_ringbuf_reserve and
// submit take the same lock and positions as Go (as the kernel's rb
// struct holds them beside the data); programs cannot write the header
// (the verifier gives them no pointer to it, checked engines confine
// them to the data), in Linux neither:
//
//	+72  ┌───────────────────────────┬───────────────────────────┐
//	     │ lock u32: 0 or rbLocked   │ waiting i32: readers      │
//	+80  ├───────────────────────────┴───────────────────────────┤
//	     │ cons u64: the consumer position (the reader's)        │
//	+88  ├───────────────────────────────────────────────────────┤
//	     │ prod u64: the producer position (under lock)          │
//	+96  ├───────────────────────────────────────────────────────┤
//	     │ pending u64: the first record not yet submitted or    │
//	     │ discarded, as far as a reservation looked (under lock)│
//	+104 ├───────────────────────────────────────────────────────┤
//	     │ dropped u64: reservations that did not fit (atomic)   │
//	+112 ├───────────────────────────┬───────────────────────────┤
//	     │ page_shift u32            │ reserved u32, zero        │
//	+120 └───────────────────────────┴───────────────────────────┘
//
// The lock is a spin lock word, as the kernel's rb->spinlock: a producer
// (Go or native code) swaps 0 for rbLocked, holds it for a few dozen
// instructions and stores 0. Native code spins a bounded number of times
// and otherwise asks Go, whose producers spin, then yield the processor,
// so that a producer the scheduler (or a stop-the-world) parked in the
// section is waited for rather than spun against. The word holds rbLocked
// only while a producer is in the section: a write over the header that
// leaves anything else there is seen at once (ErrCorrupt, the lock reset),
// and one that leaves rbLocked is given up after rbLockWait.
//
// Reservations take the lock; Submit and Discard flip the record header
// atomically and take no lock; the reader consumes in order and stops at a
// record still BUSY, as the kernel's consumers do. Where Linux differs: a
// failed bpf_ringbuf_output returns -EAGAIN there as here, but Linux does
// not count drops; waggle counts every reservation that did not fit
// (Dropped).
//
// A waiting reader is woken without loss, native producers included: the
// reader adds itself to waiting and then looks at the next record again;
// a producer flips the record header with a locked instruction and then
// reads waiting. Each side writes, fences and reads the other's word
// (locked x86 instructions and Go's atomics are full barriers), so either
// the reader sees the record or the producer sees the reader and wakes it
// (native code exits to Go for that, and for BPF_RB_FORCE_WAKEUP).
//
// Record headers are in the data, where a program writing past its sample
// reaches them. Reserve and the reader check each header they step over: a
// record must end at or before the producer position. One that does not
// was written over; everything from it up to the producer is given up (the
// reader skips it, Reserve stops waiting for it) and that call fails with
// ErrCorrupt, so the ring goes on working for the records after. The
// positions are checked too (a header written over, which only the
// corruption tests do): the producer at most the ring's size ahead of the
// pending and consumer positions, or those are moved up to it.
const (
	rbBusy    = 1 << 31 // BPF_RINGBUF_BUSY_BIT
	rbDiscard = 1 << 30 // BPF_RINGBUF_DISCARD_BIT
	rbHdrSize = 8       // BPF_RINGBUF_HDR_SZ

	hdrRBLock      = hdrTypeState
	hdrRBWaiting   = hdrTypeState + 4
	hdrRBCons      = hdrTypeState + 8
	hdrRBProd      = hdrTypeState + 16
	hdrRBPending   = hdrTypeState + 24
	hdrRBDropped   = hdrTypeState + 32
	hdrRBPageShift = hdrTypeState + 40

	// rbLocked is the lock word of a held lock ("lock" in ASCII): a
	// value no write over the header is likely to leave by chance.
	rbLocked = 0x6b636f6c
	// rbLockSpins is how often a Go producer tries the lock before it
	// yields the processor between tries.
	rbLockSpins = 64
	// rbLockWait is how long a Go producer waits for the lock before it
	// takes the word for a corrupt one.
	rbLockWait = time.Second
)

type ringBuf struct {
	base
	size, mask uint64
	dataOff    uint64
	pageShift  uint

	// The header words (hdrRB*): the producers' lock, the positions,
	// the drop count and the waiting readers.
	lock                *atomic.Uint32
	cons, prod, dropped *atomic.Uint64
	pending             *uint64 // only under lock
	waiting             *atomic.Int32

	consMu sync.Mutex    // one consumer at a time; Close waits for it
	notify chan struct{} // producers wake a waiting reader
	gone   chan struct{} // closed by Close
}

func newRingBuf(spec Spec) (*ringBuf, error) {
	ps := uint64(pageSize())
	m := &ringBuf{size: uint64(spec.MaxEntries), dataOff: ps, notify: make(chan struct{}, 1), gone: make(chan struct{})}
	m.mask = m.size - 1
	for 1<<m.pageShift < ps {
		m.pageShift++
	}
	if err := m.init(spec, ps-headerSize+2*m.size); err != nil {
		return nil, err
	}
	m.put64(hdrData, m.addr(m.dataOff))
	m.put32(hdrMask, uint32(m.mask))
	m.put32(hdrRBPageShift, uint32(m.pageShift))
	word := func(off int) unsafe.Pointer { return unsafe.Pointer(&m.mapping[off]) }
	m.lock = (*atomic.Uint32)(word(hdrRBLock))
	m.waiting = (*atomic.Int32)(word(hdrRBWaiting))
	m.cons = (*atomic.Uint64)(word(hdrRBCons))
	m.prod = (*atomic.Uint64)(word(hdrRBProd))
	m.pending = (*uint64)(word(hdrRBPending))
	m.dropped = (*atomic.Uint64)(word(hdrRBDropped))
	return m, nil
}

// lockProducers takes the producers' lock (the header's lock word, which
// native producers take too): it spins, then yields between tries. A
// word that holds neither 0 nor rbLocked, or rbLocked for rbLockWait,
// was written over: it is reset and the call fails with ErrCorrupt.
func (m *ringBuf) lockProducers() error {
	if m.lock.CompareAndSwap(0, rbLocked) {
		return nil
	}
	return m.lockWait()
}

// lockWait is lockProducers when the lock was not free.
func (m *ringBuf) lockWait() error {
	var since time.Time
	for i := 0; ; i++ {
		v := m.lock.Load()
		switch {
		case v == 0:
			if m.lock.CompareAndSwap(0, rbLocked) {
				return nil
			}
			continue
		case v != rbLocked:
			m.lock.CompareAndSwap(v, 0)
			return m.corrupt("reserve: the producers' lock word holds %#x", v)
		case i < rbLockSpins:
			continue
		}
		if since.IsZero() {
			since = time.Now()
		} else if i%64 == 0 && time.Since(since) > rbLockWait {
			m.lock.CompareAndSwap(rbLocked, 0)
			return m.corrupt("reserve: the producers' lock was held for more than %v", rbLockWait)
		}
		runtime.Gosched()
	}
}

// unlockProducers releases the producers' lock.
func (m *ringBuf) unlockProducers() { m.lock.Store(0) }

// recordLen is the bytes the record whose header word is hl takes in the
// ring: header and sample, rounded up to 8.
func recordLen(hl uint32) uint64 { return (uint64(hl&^(rbBusy|rbDiscard)) + rbHdrSize + 7) &^ 7 }

// header returns the address of the record header at position pos.
func (m *ringBuf) header(pos uint64) uint64 { return m.hdr + m.dataOff + pos&m.mask }

// Reserve is __bpf_ringbuf_reserve.
func (m *ringBuf) Reserve(size uint64) uint64 {
	a, _ := m.reserve(size)
	return a
}

// reserve is Reserve, with the error of a ring whose headers were
// written over.
func (m *ringBuf) reserve(size uint64) (uint64, error) {
	if m.closed.Load() {
		return 0, EBADF
	}
	if size > ringbufMaxRecord || (size+rbHdrSize+7)&^7 > m.size {
		m.drop()
		return 0, nil
	}
	l := (size + rbHdrSize + 7) &^ 7
	cons := m.cons.Load()
	if err := m.lockProducers(); err != nil {
		m.drop()
		return 0, err
	}
	pend, prod := *m.pending, m.prod.Load()
	if prod-pend > m.size {
		*m.pending = prod
		m.unlockProducers()
		m.drop()
		return 0, m.corrupt("reserve: the producer position %d is more than the ring ahead of the pending one %d: records up to %d given up", prod, pend, prod)
	}
	for pend != prod {
		hl := mem.AtomicLoad32(m.header(pend))
		if hl&rbBusy != 0 {
			break
		}
		n := recordLen(hl)
		if n > prod-pend {
			*m.pending = prod
			m.unlockProducers()
			m.drop()
			return 0, m.corrupt("reserve: the record at %d claims %d bytes, %d were reserved after it: records up to %d given up", pend, n, prod-pend, prod)
		}
		pend += n
	}
	if pend != *m.pending {
		*m.pending = pend
	}
	next := prod + l
	if next-cons > m.mask || next-pend > m.mask {
		m.unlockProducers()
		m.drop()
		return 0, nil
	}
	h := m.dataOff + prod&m.mask
	mem.AtomicStore32(m.hdr+h, uint32(size)|rbBusy)
	native.PutUint32(m.mapping[h+4:], uint32(h>>m.pageShift))
	m.prod.Store(next)
	m.unlockProducers()
	return m.hdr + h + rbHdrSize, nil
}

func (m *ringBuf) drop() { m.dropped.Add(1) }

// commit is bpf_ringbuf_commit.
func (m *ringBuf) commit(addr, flags uint64, discard bool) error {
	if m.closed.Load() {
		return EBADF
	}
	h := addr - rbHdrSize
	if addr < rbHdrSize || h < m.hdr+m.dataOff || h >= m.hdr+m.dataOff+m.size || (h-m.hdr)%8 != 0 {
		return EINVAL
	}
	l := mem.AtomicLoad32(h)
	if l&rbBusy == 0 {
		return EINVAL // not a reserved sample, or committed twice
	}
	n := l ^ rbBusy
	if discard {
		n |= rbDiscard
	}
	if !mem.CompareAndSwap32(h, l, n) {
		return EINVAL
	}
	m.wake(flags)
	return nil
}

// Wake tells a waiting reader about new data, as the kernel's irq_work
// does unless RingBufNoWakeup (RingBufForceWakeup always wakes). Submit
// and Discard call it; native code that committed a record calls it when
// the header says a reader waits, or for RingBufForceWakeup.
func (m *ringBuf) Wake(flags uint64) {
	if m.closed.Load() {
		return
	}
	m.wake(flags)
}

func (m *ringBuf) wake(flags uint64) {
	if flags&RingBufForceWakeup != 0 || (flags&RingBufNoWakeup == 0 && m.waiting.Load() != 0) {
		select {
		case m.notify <- struct{}{}:
		default:
		}
	}
}

// Submit is bpf_ringbuf_submit.
func (m *ringBuf) Submit(addr, flags uint64) error { return m.commit(addr, flags, false) }

// Discard is bpf_ringbuf_discard.
func (m *ringBuf) Discard(addr, flags uint64) error { return m.commit(addr, flags, true) }

// Output is bpf_ringbuf_output.
func (m *ringBuf) Output(data []byte, flags uint64) error {
	if flags&^(RingBufNoWakeup|RingBufForceWakeup) != 0 {
		return EINVAL
	}
	a, err := m.reserve(uint64(len(data)))
	if err != nil {
		return err
	}
	if a == 0 {
		return EAGAIN
	}
	copy(m.mapping[a-m.hdr:], data)
	return m.commit(a, flags, false)
}

// Query is bpf_ringbuf_query.
func (m *ringBuf) Query(flags uint64) uint64 {
	if m.closed.Load() {
		return 0
	}
	switch flags {
	case RingBufAvailData:
		return m.prod.Load() - m.cons.Load()
	case RingBufRingSize:
		return m.size
	case RingBufConsPos:
		return m.cons.Load()
	case RingBufProdPos:
		return m.prod.Load()
	}
	return 0
}

// Dropped counts reservations that did not fit.
func (m *ringBuf) Dropped() uint64 {
	if m.closed.Load() {
		return 0
	}
	return m.dropped.Load()
}

// Contains reports whether addr is in the ring's data.
func (m *ringBuf) Contains(addr uint64) bool {
	return addr >= m.hdr+m.dataOff && addr < m.hdr+m.dataOff+2*m.size
}

// consume copies the next submitted sample into buf (grown as needed),
// skipping discarded ones, and reports whether there was one and the bytes
// still to read after it. The caller holds consMu. A header claiming more
// than the producer has reserved was written over: the records up to the
// producer are given up, with ErrCorrupt.
func (m *ringBuf) consume(buf []byte) ([]byte, bool, int, error) {
	cons := m.cons.Load()
	for {
		prod := m.prod.Load()
		if cons == prod {
			return buf, false, 0, nil
		}
		if prod-cons > m.size {
			m.cons.Store(prod)
			return buf, false, 0, m.corrupt("read: the producer position %d is more than the ring ahead of the consumer %d: records up to %d given up", prod, cons, prod)
		}
		h := m.dataOff + cons&m.mask
		l := mem.AtomicLoad32(m.hdr + h)
		if l&rbBusy != 0 {
			return buf, false, int(prod - cons), nil
		}
		n := uint64(l &^ rbDiscard)
		total := recordLen(l)
		if total > prod-cons {
			m.cons.Store(prod)
			return buf, false, 0, m.corrupt("read: the record at %d claims %d bytes, %d were reserved after it: records up to %d given up", cons, total, prod-cons, prod)
		}
		var got bool
		if l&rbDiscard == 0 {
			buf = append(buf[:0], m.mapping[h+rbHdrSize:h+rbHdrSize+n]...)
			got = true
		}
		cons += total
		m.cons.Store(cons)
		if got {
			return buf, true, int(prod - cons), nil
		}
	}
}

// Lookup, Update, Delete and NextKey are ENOTSUPP (ringbuf_map_*).
func (m *ringBuf) Lookup(key, value []byte) error { return m.unsupported("lookup", ENOTSUPP) }

// Update is ENOTSUPP.
func (m *ringBuf) Update(key, value []byte, flags uint64) error {
	return m.unsupported("update", ENOTSUPP)
}

// Delete is ENOTSUPP.
func (m *ringBuf) Delete(key []byte) error { return m.unsupported("delete", ENOTSUPP) }

// NextKey is ENOTSUPP.
func (m *ringBuf) NextKey(key, next []byte) error { return m.unsupported("next key", ENOTSUPP) }

// LookupAndDelete is ENOTSUPP.
func (m *ringBuf) LookupAndDelete(key, value []byte) error {
	return m.unsupported("lookup and delete", ENOTSUPP)
}

// Regions is the data area (twice max_entries): samples are written there.
func (m *ringBuf) Regions() []Region {
	return []Region{{Data: m.mapping[m.dataOff : m.dataOff+2*m.size], Writable: true}}
}

// Close wakes readers, waits for a read in progress and unmaps the ring.
func (m *ringBuf) Close() error {
	m.consMu.Lock()
	defer m.consMu.Unlock()
	if !m.closed.Load() {
		close(m.gone)
	}
	return m.free()
}

// RingBufRecord is a sample read from a ring buffer.
type RingBufRecord struct {
	RawSample []byte
	// Remaining is the number of bytes in the ring after this record,
	// submitted or not.
	Remaining int
}

// RingBufReader reads a ring buffer map from Go, as cilium/ebpf's
// ringbuf.Reader reads a kernel one: records in the order they were
// reserved, discarded ones skipped, Read blocking until a record is
// submitted, the deadline passes or the reader or map is closed.
type RingBufReader struct {
	rb       *ringBuf
	deadline atomic.Int64  // unix nanoseconds, 0 for none
	kick     chan struct{} // SetDeadline wakes a waiting Read
	closed   chan struct{}
	once     sync.Once
}

// NewRingBufReader returns a reader of m, which must be a RingBuf map.
// Several readers of one map share its consumer position.
func NewRingBufReader(m Map) (*RingBufReader, error) {
	rb, ok := m.(*ringBuf)
	if !ok {
		return nil, wrongType("ring buffer reader", m, RingBuf)
	}
	if rb.closed.Load() {
		return nil, rb.errorf(EBADF, "ring buffer reader: map is closed")
	}
	return &RingBufReader{rb: rb, kick: make(chan struct{}, 1), closed: make(chan struct{})}, nil
}

// SetDeadline makes Read give up with os.ErrDeadlineExceeded at t, also
// a Read already waiting; the zero time removes the deadline.
func (r *RingBufReader) SetDeadline(t time.Time) {
	if t.IsZero() {
		r.deadline.Store(0)
	} else {
		r.deadline.Store(t.UnixNano())
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Read returns the next record.
func (r *RingBufReader) Read() (RingBufRecord, error) {
	var rec RingBufRecord
	err := r.ReadInto(&rec)
	return rec, err
}

// ReadInto reads the next record into rec, reusing rec.RawSample's
// storage.
func (r *RingBufReader) ReadInto(rec *RingBufRecord) error {
	rb := r.rb
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-r.closed:
			return os.ErrClosed
		default:
		}
		rb.consMu.Lock()
		if rb.closed.Load() {
			rb.consMu.Unlock()
			return os.ErrClosed
		}
		buf, ok, rem, err := rb.consume(rec.RawSample)
		rb.consMu.Unlock()
		if err != nil {
			return err
		}
		if ok {
			rec.RawSample, rec.Remaining = buf, rem
			return nil
		}
		// Announce the wait, then look again, so a producer that
		// committed in between either sees us waiting or is seen. The
		// count is a header word: it changes under consMu, which Close
		// takes before it unmaps the header.
		rb.consMu.Lock()
		if rb.closed.Load() {
			rb.consMu.Unlock()
			return os.ErrClosed
		}
		rb.waiting.Add(1)
		cons := rb.cons.Load()
		ready := rb.prod.Load() != cons && mem.AtomicLoad32(rb.header(cons))&rbBusy == 0
		rb.consMu.Unlock()
		if ready {
			rb.unwait()
			continue
		}
		var expired <-chan time.Time
		if d := r.deadline.Load(); d != 0 {
			wait := time.Until(time.Unix(0, d))
			if wait <= 0 {
				rb.unwait()
				return os.ErrDeadlineExceeded
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			expired = timer.C
		}
		select {
		case <-rb.notify:
		case <-r.kick:
		case <-expired:
			rb.unwait()
			return os.ErrDeadlineExceeded
		case <-r.closed:
			rb.unwait()
			return os.ErrClosed
		case <-rb.gone:
			rb.unwait()
			return os.ErrClosed
		}
		rb.unwait()
	}
}

// unwait ends a reader's wait: it takes itself out of the waiting count
// unless the map was closed (and its header unmapped) meanwhile.
func (m *ringBuf) unwait() {
	m.consMu.Lock()
	if !m.closed.Load() {
		m.waiting.Add(-1)
	}
	m.consMu.Unlock()
}

// AvailableBytes is the number of bytes in the ring not yet read.
func (r *RingBufReader) AvailableBytes() int { return int(r.rb.Query(RingBufAvailData)) }

// BufferSize is the ring's data size.
func (r *RingBufReader) BufferSize() int { return int(r.rb.size) }

// Close makes pending and later reads fail with os.ErrClosed. The map
// stays open.
func (r *RingBufReader) Close() error {
	r.once.Do(func() { close(r.closed) })
	return nil
}
