//go:build linux

package cpubench

import "golang.org/x/sys/unix"

// ThreadCPU returns the CPU time the calling thread has used, in
// nanoseconds, and whether the clock exists.
func ThreadCPU() (int64, bool) {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0, false
	}
	return ts.Nano(), true
}
