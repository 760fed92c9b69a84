package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/loader"
)

// kernelRefused are the flags of "waggle run" that --engine kernel cannot
// honour, and why.
var kernelRefused = []struct{ flag, why string }{
	{"unverified", "the kernel runs only what its verifier accepts"},
	{"cpus", "the kernel's per-CPU maps have a value per CPU of this machine"},
	{"budget", "the kernel bounds runs by verifying them, not with an instruction budget"},
	{"net", "the kernel's helpers see the network namespace waggle runs in"},
	{"trace-printk", "the kernel writes bpf_trace_printk output to /sys/kernel/tracing/trace_pipe; read it there"},
	{"map-init", "setting the kernel's maps is not supported yet; run in user space"},
	{"map-dump", "dumping the kernel's maps is not supported yet; run in user space (or use bpftool while it runs)"},
	{"events", "reading the kernel's ring buffers is not supported yet; run in user space"},
}

// runKernel runs one program of the object at path (read as obj) in the
// running kernel: loaded with Linux's verifier by cilium/ebpf, and each run
// a BPF_PROG_TEST_RUN on the inputs a user-space run takes (--data-in,
// --ctx-in, --repeat, --pcap), with the same output; or, with --iface,
// attached to the interface for real (runKernelIface). The object is also
// read into a waggle collection, never prepared, for the program's name,
// type and verdicts, so the two runs name them alike.
func (e *env) runKernel(cmd *cobra.Command, path string, obj *loader.Object, f *objectFlags) error {
	for _, r := range kernelRefused {
		if cmd.Flags().Changed(r.flag) {
			return fmt.Errorf("--engine kernel with --%s: %s", r.flag, r.why)
		}
	}
	if f.iface != "" {
		if err := kernelIfaceFlags(cmd, f); err != nil {
			return err
		}
	}
	if err := kernel.Supported(); err != nil {
		return fmt.Errorf("--engine kernel: the probe (load an XDP program with BPF_PROG_LOAD and run it with BPF_PROG_TEST_RUN) failed: %w", err)
	}
	if f.progType != "" {
		// As runObject: --type is the type of the program run.
		t := programTypes[f.progType]
		for _, p := range obj.Programs {
			if p.Name == f.program || f.program == "" && len(obj.Programs) == 1 {
				p.Type = t
			}
		}
	}
	coll, err := waggle.NewCollectionFromObject(obj, &waggle.CollectionOptions{CPUs: 1})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer coll.Close()
	prog, err := pickProgram(coll, f.program)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if f.iface != "" {
		return e.runKernelIface(path, prog, f)
	}
	// The object as waggle load loads it (waggle's loader, then
	// cilium/ebpf): the program run, with the type the user-space run
	// gives it, and what its prog arrays hold.
	for _, p := range obj.Programs {
		if p.Name == prog.Name() || p.Type == ebpf.UnspecifiedProgram {
			p.Type = prog.Type()
		}
	}
	lc, err := kernel.LoadObject(obj, &kernel.CollectionOptions{Programs: []string{prog.Name()}})
	if err != nil {
		var le *kernel.LoadError
		if errors.As(err, &le) {
			le.Path = path
			fmt.Fprintf(e.stderr, "%+v\n", le)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	kc, err := kernel.NewCollectionFrom(lc)
	if err != nil {
		lc.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	defer kc.Close()
	kp := kc.Programs[prog.Name()]
	if kp == nil {
		return fmt.Errorf("%s: cilium/ebpf loaded no program %s", path, prog.Name())
	}
	f.ran, f.run = kernelEngine, kernelRun(kp)
	switch {
	case f.pcapIn != "":
		if f.nworkers, err = packetWorkers(f, runtime.NumCPU()); err != nil {
			return err
		}
		return e.runPcap(prog, f)
	case f.workersSet:
		return errors.New("--workers applies to runs over packets, --pcap")
	}
	return e.runData(prog, f)
}

// kernelRun returns a runFunc that test-runs p in the kernel: opts's
// packet, context and repeat count; its DataOut holds the packet after
// the run, as waggle.Program.Run leaves it. The CPU options are waggle's
// slots, which a test run of a packet program does not take (it runs on
// the calling thread's CPU).
func kernelRun(p *kernel.Program) runFunc {
	return func(ctx context.Context, opts *waggle.RunOptions) (uint32, error) {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("%w: %w", waggle.ErrStopped, err)
		}
		ko := &kernel.RunOptions{Data: opts.Data, DataOut: opts.DataOut, Repeat: opts.Repeat}
		if c, ok := opts.Context.([]byte); ok && c != nil {
			ko.Context = c
		}
		if opts.ContextOut != nil {
			out, ok := opts.ContextOut.([]byte)
			if !ok {
				return 0, fmt.Errorf("kernel test run: ContextOut is a %T, want []byte", opts.ContextOut)
			}
			ko.ContextOut = out
		}
		res, err := p.Run(ko)
		if err != nil {
			return 0, err
		}
		if opts.DataOut != nil {
			opts.DataOut = res.Data
		}
		return res.Retval, nil
	}
}
