package interp_test

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
// reports the thread's CPU time per call as "cpu-ns/op", or, when each
// call makes runs > 1 runs (or calls, ...: unit), the time per one as
// "cpu-ns/"+unit and "ns/"+unit: on this shared machine wall time counts
// the time other processes took the core, the thread's CPU clock does
// not.
func cpuLoop(b *testing.B, runs int, unit string, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, ok := threadCPU()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	c1, ok1 := threadCPU()
	if n == 0 {
		return
	}
	if runs > 1 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*runs), "ns/"+unit)
	}
	if ok && ok1 {
		if runs > 1 {
			b.ReportMetric(float64(c1-c0)/float64(n*runs), "cpu-ns/"+unit)
		} else {
			b.ReportMetric(float64(c1-c0)/float64(n), "cpu-ns/op")
		}
	}
}
