//go:build linux

package helpers

import "golang.org/x/sys/unix"

func clockNs(id int32) uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		return 0
	}
	return uint64(ts.Sec)*1e9 + uint64(ts.Nsec)
}

func monotonicNs() uint64 { return clockNs(unix.CLOCK_MONOTONIC) }
func boottimeNs() uint64  { return clockNs(unix.CLOCK_BOOTTIME) }

func coarseNs() uint64 { return clockNs(unix.CLOCK_MONOTONIC_COARSE) }

func taiNs() uint64 { return clockNs(unix.CLOCK_TAI) }
