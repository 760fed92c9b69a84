//go:build !linux

package waggle_test

import "testing"

// cpuLoop runs f b.N times (for b.Loop); only Linux reports the thread's
// CPU time.
func cpuLoop(b *testing.B, f func()) {
	for b.Loop() {
		f()
	}
}
