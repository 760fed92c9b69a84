//go:build linux

package helpers

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

func clockNs(id int32) uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		return 0
	}
	return uint64(ts.Sec)*1e9 + uint64(ts.Nsec)
}

// monotonicNs reads CLOCK_MONOTONIC as Go's own clock reads it, through
// the vDSO: one CLOCK_MONOTONIC reading paired with a time.Time of the
// same moment, then time.Since, which is CLOCK_MONOTONIC too. golang.org/x/sys's
// ClockGettime is a system call, which cost bpf_ktime_get_ns about 1 µs
// on a virtual machine (the firewall's replay spent most of its time in
// it).
func monotonicNs() uint64 {
	b := monoBase()
	return b.ns + uint64(time.Since(b.at))
}

// monoBase is the pairing monotonicNs counts from, made once.
var monoBase = sync.OnceValue(func() struct {
	ns uint64
	at time.Time
} {
	at := time.Now()
	return struct {
		ns uint64
		at time.Time
	}{clockNs(unix.CLOCK_MONOTONIC), at}
})

func boottimeNs() uint64 { return clockNs(unix.CLOCK_BOOTTIME) }

func coarseNs() uint64 { return clockNs(unix.CLOCK_MONOTONIC_COARSE) }

func taiNs() uint64 { return clockNs(unix.CLOCK_TAI) }
