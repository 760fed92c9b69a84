package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/mapdump"
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
	// The waggle collection names the program and its verdicts, and
	// stages --map-init and --map-dump (kernelMaps): a per-CPU map's
	// value there has one slot per CPU the kernel's has.
	cpus := 1
	if len(f.mapInit) > 0 || f.dumpMaps {
		var err error
		if cpus, err = ebpf.PossibleCPU(); err != nil {
			return fmt.Errorf("--engine kernel: %w", err)
		}
	}
	coll, err := waggle.NewCollectionFromObject(obj, &waggle.CollectionOptions{CPUs: cpus})
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
	kmaps := lc.Collection.Maps
	kc, err := kernel.NewCollectionFrom(lc)
	if err != nil {
		lc.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	defer kc.Close()
	if err := e.kernelMaps(obj, coll, kmaps, f); err != nil {
		return err
	}
	if f.ev != nil {
		defer f.ev.close()
	}
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

// kernelMaps applies --map-init to the kernel's maps and sets up
// --map-dump of them, through the waggle collection coll of the same
// object: --map-init's document is read into coll's maps as a user-space
// run reads it (the same errors, the same typed entries), and their
// elements are copied into the kernel's; --map-dump copies the kernel's
// elements into coll's maps after the runs and prints those as a
// user-space run prints its own. Maps of programs or maps are the
// object's in the kernel: --map-init refuses them.
//
// --events reads the kernel's ring buffers and perf event arrays after
// each run (f.ev; the caller closes it).
func (e *env) kernelMaps(obj *loader.Object, coll *waggle.Collection, kmaps map[string]*ebpf.Map, f *objectFlags) error {
	if len(f.mapInit) == 0 && !f.dumpMaps && !f.events {
		return nil
	}
	om := newObjectMaps(obj, coll, func(msg string) { fmt.Fprintln(e.stderr, "waggle: warning:", msg) })
	if f.events {
		var err error
		if f.ev, err = newKernelEventPrinter(e, om, kmaps, f.asJSON); err != nil {
			return err
		}
	}
	if err := om.init(f.mapInit); err != nil {
		return err
	}
	for _, name := range om.order {
		if !om.initialized[name] {
			continue
		}
		desc, km := om.desc[name], kmaps[name]
		if why := dumpable(desc.Type); why != "" {
			return fmt.Errorf("--engine kernel with --map-init: map %s is a %s: only elements of bytes are copied into the kernel (%s)", name, typeName(desc.Type), why)
		}
		if km == nil {
			return fmt.Errorf("--engine kernel with --map-init: the kernel's collection has no map %s", name)
		}
		for k, v := range coll.Maps[name].All() {
			if err := km.Update(k, kernelValue(desc.Type, v, int(desc.ValueSize)), ebpf.UpdateAny); err != nil {
				return fmt.Errorf("--map-init: map %s in the kernel, key %x: %w", name, k, err)
			}
		}
	}
	if !f.dumpMaps {
		return nil
	}
	if err := om.checkDump(f.mapDump); err != nil {
		return err
	}
	f.dump = func() (json.RawMessage, error) {
		for _, name := range om.order {
			if km := kmaps[name]; km != nil && dumpable(om.desc[name].Type) == "" {
				if err := copyKernelMap(coll.Maps[name], km); err != nil {
					return nil, fmt.Errorf("--map-dump: map %s in the kernel: %w", name, err)
				}
			}
		}
		return om.dump(f.mapDump)
	}
	return nil
}

// kernelValue is v, a value as a waggle map holds it (a per-CPU map's
// values one after the other, each padded to 8 bytes), as cilium/ebpf
// takes it for the kernel's map: a per-CPU map's as one []byte per CPU.
func kernelValue(t ebpf.MapType, v []byte, size int) any {
	if !mapdump.PerCPU(t) {
		return v
	}
	stride := (size + 7) &^ 7
	var vs [][]byte
	for off := 0; off+size <= len(v); off += stride {
		vs = append(vs, v[off:off+size])
	}
	return vs
}

// copyKernelMap makes w hold km's elements: w's keys that km lacks are
// deleted (an array's stay, as the kernel's array has every key).
func copyKernelMap(w *waggle.Map, km *ebpf.Map) error {
	var stale [][]byte
	for k := range w.All() {
		stale = append(stale, bytes.Clone(k))
	}
	seen := map[string]bool{}
	it := km.Iterate()
	var k []byte
	put := func(v []byte) error {
		seen[string(k)] = true
		return w.Put(k, v)
	}
	if mapdump.PerCPU(km.Type()) {
		var vs [][]byte
		for it.Next(&k, &vs) {
			var all []byte
			for _, v := range vs {
				all = append(all, v...)
				all = append(all, make([]byte, (len(v)+7)&^7-len(v))...)
			}
			if err := put(all); err != nil {
				return err
			}
		}
	} else {
		var v []byte
		for it.Next(&k, &v) {
			if err := put(v); err != nil {
				return err
			}
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range stale {
		if !seen[string(k)] && km.Type() != ebpf.Array && km.Type() != ebpf.PerCPUArray {
			if err := w.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}
