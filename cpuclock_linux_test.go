package waggle_test

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time the calling thread has used, in
// nanoseconds (CLOCK_THREAD_CPUTIME_ID), and whether the clock exists.
func threadCPU() (int64, bool) {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0, false
	}
	return ts.Nano(), true
}

// cpuLoop runs f b.N times (for b.Loop) on one locked OS thread and
// reports the thread's CPU time per call as "cpu-ns/op": on this shared
// machine wall time counts the time other processes took the core, the
// thread's CPU clock does not.
func cpuLoop(b *testing.B, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, ok := threadCPU()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	if c1, ok1 := threadCPU(); ok && ok1 && n > 0 {
		b.ReportMetric(float64(c1-c0)/float64(n), "cpu-ns/op")
	}
}
