// Package cpubench times benchmarks on the calling thread's CPU clock
// (CLOCK_THREAD_CPUTIME_ID): on a shared machine wall time counts the
// time other processes took the core, the thread's CPU clock does not.
package cpubench

import (
	"runtime"
	"testing"
)

// Loop runs f b.N times (for b.Loop) on one locked OS thread and reports
// the thread's CPU time per call as "cpu-ns/op", or, when each call makes
// runs > 1 runs (or calls, ...: unit), the time per one as
// "cpu-ns/"+unit and "ns/"+unit. Where the thread's clock does not exist
// (outside Linux), it reports the wall time per unit only.
func Loop(b *testing.B, runs int, unit string, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, ok := ThreadCPU()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	c1, ok1 := ThreadCPU()
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
