package maps

import (
	"runtime"
	"sync/atomic"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// spinLock takes the spin lock in the off-heap word at addr (0 free, 1
// held). Critical sections under these locks are a few dozen instructions
// and never block, so waiting spins; after a few rounds the waiter yields
// (runtime.Gosched), because the holder may be a goroutine the Go scheduler
// preempted, and on a machine with fewer threads than goroutines spinning
// would only delay it.
func spinLock(addr uint64) {
	for i := 0; ; i++ {
		if mem.AtomicLoad32(addr) == 0 && mem.CompareAndSwap32(addr, 0, 1) {
			return
		}
		if i >= 32 {
			runtime.Gosched()
		}
	}
}

// spinUnlock releases the spin lock at addr.
func spinUnlock(addr uint64) { mem.AtomicStore32(addr, 0) }

// SpinLocks is a table of the bpf_spin_lock locks programs take, keyed by
// the lock's address (the struct bpf_spin_lock field of a map value). The
// lock state lives here, not in the value: programs and Go-side updates can
// write the value's bytes (an unverified program can, the kernel's verifier
// would not let it), and a lock word they set to "held" with no holder
// would make every later bpf_spin_lock on it spin forever. The word in the
// value stays as written, zero normally, which is also what a Go-side
// lookup of a value with a lock sees in Linux.
//
// Addresses share a fixed number of stripes, so two locks may exclude each
// other needlessly, never wrongly; a run holds at most one lock (Linux's
// rule, which the engines enforce), so sharing cannot deadlock. The zero
// value is ready to use. Runs that may share map values must share the
// table.
type SpinLocks struct {
	stripes [spinLockStripes]spinStripe
}

const spinLockStripes = 64

type spinStripe struct {
	held atomic.Uint32
	_    [60]byte // one cache line per stripe
}

func (l *SpinLocks) stripe(addr uint64) *spinStripe {
	return &l.stripes[(addr>>2)*0x9e3779b97f4a7c15>>58]
}

// Lock takes the lock at addr, waiting as long as another run holds it
// (spinning, then yielding to the Go scheduler, since the holder may be a
// preempted goroutine). It gives up and returns false when stop is set
// (the run's context ended); stop may be nil.
func (l *SpinLocks) Lock(addr uint64, stop *atomic.Bool) bool {
	s := l.stripe(addr)
	for i := 0; ; i++ {
		if s.held.Load() == 0 && s.held.CompareAndSwap(0, 1) {
			return true
		}
		if i >= 32 {
			if stop != nil && stop.Load() {
				return false
			}
			runtime.Gosched()
		}
	}
}

// Unlock releases the lock at addr, which the caller holds.
func (l *SpinLocks) Unlock(addr uint64) { l.stripe(addr).held.Store(0) }
