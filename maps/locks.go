package maps

import "sync"

// Locks of the maps' update paths live in Go memory, not in the mapping:
// a program writing over a lock word must not be able to make every later
// update of a bucket spin forever, and a lock word that reads "free" while
// held would let two writers into one chain. (RATIONALE.md, "maps",
// weighs this against bounded spinning on off-heap words.)
//
// Hash maps lock buckets in stripes: bucket b takes lock b mod n, n the
// buckets rounded down to at most maxStripes, each lock on its own cache
// line. No code path holds two bucket locks at once except audit, which
// takes them all in order, one audit at a time.

// maxStripes bounds the bucket locks of one map: enough that writers on
// different buckets rarely meet on machines with dozens of cores, few
// enough that a map's locks take at most 64 KiB.
const maxStripes = 1024

// paddedMutex is a mutex alone on its cache line.
type paddedMutex struct {
	sync.Mutex
	_ [64 - 8]byte
}

// stripes are a hash map's bucket locks.
type stripes []paddedMutex

// newStripes returns min(buckets, maxStripes) locks; buckets is a power of
// two.
func newStripes(buckets uint64) stripes { return make(stripes, min(buckets, maxStripes)) }

// of returns the lock of bucket b.
func (s stripes) of(b uint32) *sync.Mutex { return &s[int(b)&(len(s)-1)].Mutex }

// bytes is the Go memory the locks take, for MemoryUsage.
func (s stripes) bytes() uint64 { return uint64(len(s)) * 64 }

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
