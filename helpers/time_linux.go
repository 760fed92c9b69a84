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

// monoBase is the pairing monotonicNs counts from, made once: the
// CLOCK_MONOTONIC reading of the tightest of a few brackets of time.Now
// readings, paired with the bracket's middle, so that a slow first system
// call (page faults, a busy machine) does not put the clock ahead.
var monoBase = sync.OnceValue(func() struct {
	ns uint64
	at time.Time
} {
	var best struct {
		ns uint64
		at time.Time
	}
	window := time.Duration(1<<63 - 1)
	for range 8 {
		before := time.Now()
		ns := clockNs(unix.CLOCK_MONOTONIC)
		d := time.Since(before)
		if d < window {
			window = d
			best.ns, best.at = ns, before.Add(d/2)
		}
	}
	return best
})

func boottimeNs() uint64 { return clockNs(unix.CLOCK_BOOTTIME) }

func coarseNs() uint64 { return clockNs(unix.CLOCK_MONOTONIC_COARSE) }

func taiNs() uint64 { return clockNs(unix.CLOCK_TAI) }
