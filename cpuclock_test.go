package waggle_test

import (
	"testing"

	"github.com/waggle-bpf/waggle/internal/cpubench"
)

// cpuLoop is cpubench.Loop, the benchmarks' thread-CPU timing.
func cpuLoop(b *testing.B, runs int, unit string, f func()) { cpubench.Loop(b, runs, unit, f) }

// threadCPU is cpubench.ThreadCPU.
func threadCPU() (int64, bool) { return cpubench.ThreadCPU() }
