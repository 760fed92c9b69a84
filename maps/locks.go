package maps

import (
	"runtime"
	"sync/atomic"
)

// Locks of the maps' update paths live in Go memory, not in the mapping:
// a program writing over a lock word must not be able to make every later
// update of a bucket spin forever, and a lock word that reads "free" while
// held would let two writers into one chain. (RATIONALE.md, "maps",
// weighs this against bounded spinning on off-heap words.)
//
// Hash maps lock buckets in stripes: bucket b takes lock b mod n, n the
// buckets rounded down to at most maxStripes. A bucket's critical sections
// are a few dozen instructions and never block, so its lock is a spin
// lock (as the kernel's are), whose fast path inlines: a sync.Mutex
// measured about 5 ns more per update. The locks are packed, as the lock
// words were when they sat beside the bucket heads. No code path holds two
// bucket locks at once except audit, which takes them all in order, one
// audit at a time. LRU lists, tries, queues and ring buffers, whose
// critical sections can be long (an LRU drain), take a sync.Mutex.

// maxStripes bounds the bucket locks of one map: enough that writers on
// different buckets rarely meet on machines with dozens of cores, few
// enough that a map's locks take at most 4 KiB.
const maxStripes = 1024

// bucketLock is a spin lock in Go memory: 0 free, 1 held.
type bucketLock struct{ v atomic.Uint32 }

// Lock takes the lock. A waiter spins briefly, then yields its thread to
// the scheduler, so a holder preempted by Go's scheduler gets to finish.
func (l *bucketLock) Lock() {
	if !l.v.CompareAndSwap(0, 1) {
		l.lockSlow()
	}
}

func (l *bucketLock) lockSlow() {
	for i := 0; ; i++ {
		if l.v.Load() == 0 && l.v.CompareAndSwap(0, 1) {
			return
		}
		if i >= 32 {
			runtime.Gosched()
		}
	}
}

// Unlock releases the lock.
func (l *bucketLock) Unlock() { l.v.Store(0) }

// stripes are a hash map's bucket locks.
type stripes []bucketLock

// newStripes returns min(buckets, maxStripes) locks; buckets is a power of
// two.
func newStripes(buckets uint64) stripes { return make(stripes, min(buckets, maxStripes)) }

// of returns the lock of bucket b.
func (s stripes) of(b uint32) *bucketLock { return &s[int(b)&(len(s)-1)] }

// bytes is the Go memory the locks take, for MemoryUsage.
func (s stripes) bytes() uint64 { return uint64(len(s)) * 4 }

// lockAll takes every lock, in order; unlockAll releases them.
func (s stripes) lockAll() {
	for i := range s {
		s[i].Lock()
	}
}

func (s stripes) unlockAll() {
	for i := range s {
		s[i].Unlock()
	}
}
