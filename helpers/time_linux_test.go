package helpers

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestKtime_monotonic: bpf_ktime_get_ns reads CLOCK_MONOTONIC: between two
// system-call readings of that clock, it reads a value between them
// (within a microsecond for the pairing of the clocks it counts from).
func TestKtime_monotonic(t *testing.T) {
	for range 100 {
		lo := clockNs(unix.CLOCK_MONOTONIC)
		got, _ := KtimeGetNs(nil, nil)
		hi := clockNs(unix.CLOCK_MONOTONIC)
		if lo == 0 {
			t.Skip("no CLOCK_MONOTONIC here")
		}
		if got+1000 < lo || got > hi+1000 {
			t.Fatalf("ktime_get_ns %d, CLOCK_MONOTONIC read %d before and %d after", got, lo, hi)
		}
	}
}
