package waggle

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/netenv"
	"github.com/waggle-bpf/waggle/progtype"
)

// BatchRun is one run of Program.RunBatch: its input, and what the run
// returned. A slice of them, with their buffers, can be reused from batch
// to batch.
type BatchRun struct {
	// Data is the packet for XDP and socket buffer programs, as
	// RunOptions.Data.
	Data []byte
	// Context is the context in the program type's UAPI layout (an
	// xdp_md, a __sk_buff, ...), as RunOptions.Context; nil for none.
	// It is a []byte only: encode a struct once (binary.Encode) rather
	// than on every run.
	Context []byte
	// DataOut, if not nil, receives the packet after the run: RunBatch
	// writes it into DataOut's whole capacity and sets DataOut to the
	// packet's length, so the same buffer serves batch after batch.
	// Too small a buffer fails the run with ENOSPC, as in Linux.
	DataOut []byte
	// ContextOut, if not nil, receives the context after the run (a
	// prefix, if shorter), as RunOptions.ContextOut does.
	ContextOut []byte
	// Output, if not nil, receives everything the run returned, as
	// RunOptions.Output: copies, which allocate.
	Output *progtype.Output
	// Retval is what RunBatch sets: the run's return value, the low 32
	// bits of r0.
	Retval uint32
}

// RunBatchOptions are what the runs of a Program.RunBatch share: the
// fields of RunOptions that are not one run's input or output.
type RunBatchOptions struct {
	// Flags are BPF_PROG_TEST_RUN's flags, as RunOptions.Flags.
	Flags uint32
	// CPU is the worker slot every run of the batch uses (per-CPU map
	// values, bpf_get_smp_processor_id), below Collection.CPUs(); it
	// needs BPF_F_TEST_RUN_ON_CPU in Flags, as RunOptions.CPU does.
	CPU uint32
	// Task, Memory, Tunnel, Socket, PerfValue and Ingress are those of
	// RunOptions, for every run.
	Task      *progtype.Task
	Memory    []progtype.Region
	Tunnel    *netenv.Tunnel
	Socket    *netenv.Socket
	PerfValue *progtype.PerfEventValue
	Ingress   bool
	// Workers spreads the batch over this many goroutines, one per CPU
	// slot: runs is cut into Workers consecutive parts, and part k runs
	// on CPU slot k (so Workers may not exceed Collection.CPUs, and CPU
	// and BPF_F_TEST_RUN_ON_CPU are not for it). 0 and 1 run the batch on
	// the calling goroutine. As on a Linux host, the runs on different
	// CPUs see each other's map updates only as atomics and per-CPU maps
	// order them.
	Workers int
}

// RunBatch runs the program once for each element of runs, in order, on
// one execution context and one CPU slot (opts.CPU), and sets each one's
// Retval and the outputs it asks for. Each run is what Run would do with
// the element's Data and Context and opts' other fields, map side effects
// included; RunBatch pays once for what Run pays on every call (the
// collection's reference, the program's preparation, the execution
// context), reads no clock and allocates nothing unless an element asks
// for an Output.
//
// It returns the number of runs that completed. A run that fails (an
// input BPF_PROG_TEST_RUN refuses, a fault, a DataOut too small) stops the
// batch: the count is its index, runs[count], and the error names it
// ("run 3 of 64: ..."). A nil opts is the zero RunBatchOptions.
//
// A batch runs on the calling goroutine, or with opts.Workers on one
// goroutine per CPU slot. With workers, a failing run stops only its
// worker's part: RunBatch returns the first failing run's index and
// error, and runs of later parts may have run.
func (p *Program) RunBatch(runs []BatchRun, opts *RunBatchOptions) (int, error) {
	return p.RunBatchContext(context.Background(), runs, opts)
}

// RunBatchContext is RunBatch under ctx: when ctx is canceled or its
// deadline passes, the run in progress ends as RunContext's would (at its
// next backward jump, call or callback) and no further run starts; the
// error wraps ErrStopped and ctx's cause.
func (p *Program) RunBatchContext(ctx context.Context, runs []BatchRun, opts *RunBatchOptions) (int, error) {
	if !p.coll.acquire() {
		return 0, fmt.Errorf("program %s: %w", p.name, errCollectionClosed)
	}
	defer p.coll.release()
	return p.runBatchHeld(ctx, runs, opts)
}

// runBatchHeld is RunBatchContext under a reference on the collection.
func (p *Program) runBatchHeld(ctx context.Context, runs []BatchRun, opts *RunBatchOptions) (int, error) {
	if opts == nil {
		opts = &RunBatchOptions{}
	}
	if err := p.Prepare(); err != nil {
		return 0, err
	}
	if opts.Workers > 1 {
		return p.runBatchWorkers(ctx, runs, opts)
	}
	if opts.Workers < 0 {
		return 0, fmt.Errorf("program %s: RunBatchOptions.Workers is %d: %w", p.name, opts.Workers, maps.EINVAL)
	}
	if err := p.checkCPU(opts.Flags, opts.CPU, "RunBatchOptions"); err != nil {
		return 0, err
	}
	if len(runs) == 0 {
		return 0, nil
	}
	rn := p.getRunner()
	defer p.runners.Put(rn)
	return p.runBatchOn(ctx, rn, runs, opts)
}

// runBatchOn is runBatchHeld on the runner rn, of a prepared program, for
// a non-empty batch whose options were checked.
func (p *Program) runBatchOn(ctx context.Context, rn *runner, runs []BatchRun, opts *RunBatchOptions) (int, error) {
	in := progtype.Input{Flags: opts.Flags &^ bpfFTestRunOnCPU, Task: opts.Task, Memory: opts.Memory,
		Net: p.coll.net, Tunnel: opts.Tunnel, Socket: opts.Socket, Ingress: opts.Ingress, PerfValue: opts.PerfValue}
	var done func()
	if ctx.Done() != nil {
		var err error
		if done, err = rn.runContext(ctx); err != nil {
			return 0, fmt.Errorf("program %s: run 0 of %d: %w", p.name, len(runs), err)
		}
		defer done()
	}
	// The runs of a batch share one grace section (maps.Section) per
	// sectionRuns of them, as a NAPI poll's XDP runs share one RCU
	// section, instead of entering and leaving each trie they use per
	// run: a firewall with four tries spent a quarter of a run on it.
	rn.keepSection = true
	defer func() {
		rn.keepSection = false
		rn.st.Section.Exit()
	}()
	// Packet batches (runPackets) run where nothing but the packet
	// changes from run to run: not under a context (whose end must stop
	// the next run), nor with a seed (which gives each run its random
	// state).
	packets := rn.pb != nil && done == nil && p.coll.seed == 0 && rn.pb.Batches(p.prog)
	// The first run of the batch resets the run state for the batch's
	// input, unless the runner's last run left it set up for it: the
	// same input but for the packet, on the same CPU slot (as a rerun of
	// Program.Run).
	warm := rn.run != nil && rn.ready == rn.run && rn.readyCPU == int(opts.CPU) && rn.inOK && rn.in == keyOf(&in)
	// A packet batch that ends at its first run because the run needed
	// Go (a helper served in Go, say) costs more than that run made
	// otherwise: the next slowRuns runs are made one by one before a
	// packet batch is tried again, so a program that needs Go on every
	// packet (a firewall reading the clock) pays for 1 in slowRuns.
	const slowRuns = 16
	nextPackets := 0
	for i := 0; i < len(runs); {
		b := &runs[i]
		if i > 0 && i%sectionRuns == 0 {
			rn.st.Section.Exit()
		}
		if packets && (i > 0 || warm) && i >= nextPackets {
			// Up to the next run that leaves the section.
			n, err := p.runPackets(ctx, rn, runs[i:min(i+sectionRuns-i%sectionRuns, len(runs))])
			if err != nil {
				return i + n, fmt.Errorf("program %s: run %d of %d: %w", p.name, i+n, len(runs), err)
			}
			if n == 1 && rn.synced == 0 {
				nextPackets = i + 1 + slowRuns
			}
			if n > 0 {
				i += n
				continue
			}
		}
		var err error
		if i > 0 && rn.rr != nil && b.DataOut == nil && b.ContextOut == nil && b.Output == nil {
			err = p.runBatchNext(ctx, rn, b, done != nil)
		} else {
			err = p.runBatchItem(ctx, rn, &in, b, i == 0, int(opts.CPU), done != nil)
		}
		if err != nil {
			return i, fmt.Errorf("program %s: run %d of %d: %w", p.name, i, len(runs), err)
		}
		i++
	}
	return len(runs), nil
}

// runPackets runs the first runs of runs that ask for their return value
// only, with packets a plain XDP frame takes, as one packet batch of the
// engine (engine.PacketBatcher), which checks each run: each run is what
// runBatchNext would make of it, for the cost of copying its packet and
// entering the program. It returns how many runs completed, 0 where the
// first run is not for a packet batch or the run state is not that of a
// plain frame (its last run moved the packet, say), and the error of the
// run after them.
func (p *Program) runPackets(ctx context.Context, rn *runner, runs []BatchRun) (int, error) {
	run := rn.run
	f, ok := run.XDPBatchFrame()
	if !ok {
		return 0, nil
	}
	// rn.chunk holding runs is also what makes them leak to the heap:
	// the engine reads and writes the items by address while Go code
	// (Sync, Go helpers) runs on this goroutine, whose stack may move,
	// so their array must not be on a stack.
	rn.chunk, rn.synced = runs, -1
	bt := &rn.batch
	bt.Items, bt.Stride, bt.RetOff = uintptr(unsafe.Pointer(&runs[0])), unsafe.Sizeof(BatchRun{}), unsafe.Offsetof(BatchRun{}.Retval)
	bt.N, bt.Frame, bt.Room, bt.Used, bt.Ends = len(runs), f.Frame, f.Room, f.Used, f.Ends
	// The batch stops before a run that asks for more than its return
	// value, or whose packet the frame does not take as it is.
	bt.Min, bt.Guards = f.Min, batchGuards
	st := &rn.st
	st.Rand, st.TailCall = 0, nil
	p.startRun(rn)
	done, err := rn.pb.RunPackets(p.prog, &rn.args, bt)
	runtime.KeepAlive(runs)
	if st.Held != 0 || len(st.Records) != 0 {
		st.ReleaseHeld()
	}
	if last := done - 1; err == nil && last >= 0 && rn.synced != last {
		run.SetXDPPacket(len(runs[last].Data))
	}
	rn.chunk = nil
	if err != nil {
		rn.ready = nil // as execRun
		return done, p.runError(ctx, run, err)
	}
	return done, nil
}

// syncPacket is the Sync of rn's packet batches: the run state becomes
// that of run i of the batch, whose run needs Go.
func (rn *runner) syncPacket(i int) {
	rn.run.SetXDPPacket(len(rn.chunk[i].Data))
	rn.synced = i
}

// batchGuards are the words of a BatchRun that must be zero for its run
// to be in a packet batch: the pointers of Context, DataOut, ContextOut
// and Output.
var batchGuards = [4]uintptr{
	unsafe.Offsetof(BatchRun{}.Context), unsafe.Offsetof(BatchRun{}.DataOut),
	unsafe.Offsetof(BatchRun{}.ContextOut), unsafe.Offsetof(BatchRun{}.Output),
}

// runBatchNext is runBatchItem for the common run of a batch, in one
// function: not the first (rn's engine arguments and helper state are
// the batch's), on an engine that reruns for less (engine.Rerunner), and
// asking for nothing but the return value. Each step is runBatchItem's,
// execRun's and finish's, in their order; what cannot change within a
// batch is not checked again.
func (p *Program) runBatchNext(ctx context.Context, rn *runner, b *BatchRun, stoppable bool) error {
	if stoppable && rn.stop.Load() {
		return fmt.Errorf("%w: %w", engine.ErrStopped, context.Cause(ctx))
	}
	run := rn.run
	if err := p.pt.ResetRunData(run, b.Data, b.Context); err != nil {
		return err
	}
	again := !rn.setArgs(run)
	st := &rn.st
	if p.coll.seed != 0 {
		st.Rand = p.coll.randState()
	} else {
		st.Rand = 0
	}
	st.TailCall = nil
	p.startRun(rn)
	var r0 uint64
	var err error
	if again {
		r0, _, err = rn.rr.Rerun(1)
	} else {
		r0, err = rn.m.Run(p.prog, &rn.args)
	}
	if st.Held != 0 || len(st.Records) != 0 {
		st.ReleaseHeld()
	}
	if err != nil {
		rn.ready = nil // as execRun
		return p.runError(ctx, run, err)
	}
	b.Retval, err = run.FinishRetval(r0)
	return err
}

// sectionRuns is how many runs of a batch share a grace section: a
// writer of a trie they use waits for at most that many.
const sectionRuns = 64

// runBatchWorkers is runBatchHeld on opts.Workers goroutines, part k of
// runs on CPU slot k.
func (p *Program) runBatchWorkers(ctx context.Context, runs []BatchRun, opts *RunBatchOptions) (int, error) {
	n := opts.Workers
	switch {
	case n > p.coll.cpus:
		return 0, fmt.Errorf("program %s: RunBatchOptions.Workers is %d, the collection has %d CPU slots: %w", p.name, n, p.coll.cpus, maps.EINVAL)
	case opts.CPU != 0 || opts.Flags&bpfFTestRunOnCPU != 0:
		return 0, fmt.Errorf("program %s: RunBatchOptions.Workers chooses the CPU slots; CPU and BPF_F_TEST_RUN_ON_CPU are for one worker: %w", p.name, maps.EINVAL)
	}
	n = min(n, len(runs))
	type part struct {
		start, done int
		err         error
	}
	parts := make([]part, n)
	var wg sync.WaitGroup
	for k := range n {
		lo, hi := k*len(runs)/n, (k+1)*len(runs)/n
		sub := *opts
		sub.Workers, sub.CPU, sub.Flags = 0, uint32(k), opts.Flags|bpfFTestRunOnCPU
		parts[k].start = lo
		wg.Go(func() {
			parts[k].done, parts[k].err = p.runBatchHeld(ctx, runs[lo:hi], &sub)
		})
	}
	wg.Wait()
	for k, pt := range parts {
		if pt.err != nil {
			// The part's error counts in the part: say where in runs.
			cause := errors.Unwrap(pt.err)
			if cause == nil {
				cause = pt.err
			}
			i := pt.start + pt.done
			return i, fmt.Errorf("program %s: run %d of %d (worker %d): %w", p.name, i, len(runs), k, cause)
		}
	}
	return len(runs), nil
}

// runBatchItem is one run of a batch on rn, the first one if first (which
// resets rn's run state with in, while the others change only its Data and
// Context); stoppable says the batch runs under a context, whose end stops
// it before the run starts.
func (p *Program) runBatchItem(ctx context.Context, rn *runner, in *progtype.Input, b *BatchRun, first bool, cpu int, stoppable bool) error {
	if stoppable && rn.stop.Load() {
		return fmt.Errorf("%w: %w", engine.ErrStopped, context.Cause(ctx))
	}
	again := false
	if first {
		in.Data, in.Context = b.Data, b.Context
		if err := p.reset(rn, in); err != nil {
			return err
		}
		p.execSetup(rn, rn.run, cpu)
	} else {
		if err := p.pt.ResetRunData(rn.run, b.Data, b.Context); err != nil {
			return err
		}
		again = !rn.setArgs(rn.run)
	}
	rn.st.Rand, rn.st.TailCall = p.coll.randState(), nil
	r0, _, err := p.execRun(rn, again, 1)
	if err != nil {
		return p.runError(ctx, rn.run, err)
	}
	if b.DataOut != nil {
		b.DataOut = b.DataOut[:cap(b.DataOut)]
	}
	if b.Retval, err = finish(rn.run, r0, &b.DataOut, nil, b.ContextOut, b.Output); err != nil {
		return err
	}
	return nil
}
