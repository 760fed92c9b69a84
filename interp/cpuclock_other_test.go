//go:build !linux

package interp_test

import "testing"

// cpuLoop runs f b.N times (for b.Loop) and, when each call makes runs > 1
// runs, reports the time per run as "ns/"+unit; only Linux reports the
// thread's CPU time too.
func cpuLoop(b *testing.B, runs int, unit string, f func()) {
	n := 0
	for b.Loop() {
		f()
		n++
	}
	if runs > 1 && n > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*runs), "ns/"+unit)
	}
}
