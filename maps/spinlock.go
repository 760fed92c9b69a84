package maps

import (
	"runtime"

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
