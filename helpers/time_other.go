//go:build !linux

package helpers

import "time"

// Without Linux clocks, both count from the first use in this process;
// only differences between readings are meaningful, as in the kernel.
var start = time.Now()

func monotonicNs() uint64 { return uint64(time.Since(start)) }
func boottimeNs() uint64  { return uint64(time.Since(start)) }

func coarseNs() uint64 { return uint64(time.Since(start)) }

func taiNs() uint64 { return uint64(time.Now().UnixNano()) }
