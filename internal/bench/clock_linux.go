//go:build linux

package bench

import (
	"bytes"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/kernel"
)

// threadTime returns the calling thread's CPU time in nanoseconds.
func threadTime() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, fmt.Errorf("bench: thread CPU clock: %w", err)
	}
	return ts.Nano(), nil
}

// lockThread keeps the goroutine on its thread, whose CPU clock the
// measurements read.
func lockThread() func() {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}

// loadKernel loads c into the kernel; its runs are BPF_PROG_TEST_RUN,
// which runs the program Repeat times in the calling thread.
func loadKernel(c Case) (*runner, error) {
	if err := kernel.Supported(); err != nil {
		return nil, err
	}
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(c.Object))
	if err != nil {
		return nil, err
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, err
	}
	p := coll.Programs[c.Program]
	if p == nil {
		coll.Close()
		return nil, fmt.Errorf("the object has no program %s", c.Program)
	}
	opts := &ebpf.RunOptions{Data: c.Data}
	return &runner{
		engine: Kernel,
		run: func(repeat uint32) (uint32, error) {
			opts.Repeat = repeat
			return p.Run(opts)
		},
		close: coll.Close,
	}, nil
}
