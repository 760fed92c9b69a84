//go:build !linux

package cpubench

// ThreadCPU reports that the thread's CPU clock does not exist here.
func ThreadCPU() (int64, bool) { return 0, false }
