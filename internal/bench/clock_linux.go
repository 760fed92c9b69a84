//go:build linux

package bench

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/isa"
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

// loadKernel loads c's program (and only it, so that a program of the
// object the kernel refuses fails its own case only) into the kernel,
// and puts c.Maps in its maps; its runs are BPF_PROG_TEST_RUN, which runs
// the program Repeat times in the calling thread.
func loadKernel(c Case) (*runner, error) {
	if err := kernel.Supported(); err != nil {
		return nil, err
	}
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(c.Object))
	if err != nil {
		return nil, err
	}
	ps := spec.Programs[c.Program]
	if ps == nil {
		return nil, fmt.Errorf("the object has no program %s", c.Program)
	}
	if ps.Type == ebpf.UnspecifiedProgram {
		return nil, fmt.Errorf("program %s is of no type the kernel knows (section %q)", c.Program, ps.SectionName)
	}
	keep := tailCallTargets(spec)
	for name := range spec.Programs {
		if name != c.Program && !keep[name] {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		if usesMayGoto(ps) {
			if perr := kernel.MayGotoSupported(); perr != nil {
				return nil, fmt.Errorf("%w (can_loop; Linux 6.9 and later take it), which the program uses: %w", errNoMayGoto, perr)
			}
		}
		return nil, fmt.Errorf("the kernel refused the program: %w", err)
	}
	p := coll.Programs[c.Program]
	if p == nil {
		coll.Close()
		return nil, fmt.Errorf("the kernel did not load program %s", c.Program)
	}
	for i, me := range c.Maps {
		m := coll.Maps[me.Map]
		if m == nil {
			coll.Close()
			return nil, fmt.Errorf("map entry %d: the object has no map %s", i, me.Map)
		}
		var v any = me.Value
		if perCPU(m.Type()) {
			n, err := ebpf.PossibleCPU()
			if err != nil {
				coll.Close()
				return nil, err
			}
			v = slices.Repeat([][]byte{me.Value}, n)
		}
		if err := m.Put(me.Key, v); err != nil {
			coll.Close()
			return nil, fmt.Errorf("map entry %d: %w", i, err)
		}
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

// usesMayGoto reports whether p has a may_goto instruction
// (BPF_JMP|BPF_JCOND), which kernels before 6.9 refuse.
func usesMayGoto(p *ebpf.ProgramSpec) bool {
	for _, ins := range p.Instructions {
		if ins.OpCode == asm.OpCode(isa.OpMayGoto) {
			return true
		}
	}
	return false
}

// tailCallTargets are the programs the object's program arrays name in
// their initial contents: loading them is part of loading any program
// of the object.
func tailCallTargets(spec *ebpf.CollectionSpec) map[string]bool {
	keep := map[string]bool{}
	for _, m := range spec.Maps {
		if m.Type != ebpf.ProgramArray {
			continue
		}
		for _, kv := range m.Contents {
			if name, ok := kv.Value.(string); ok {
				keep[name] = true
			}
		}
	}
	return keep
}
