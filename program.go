package waggle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/loader"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/netenv"
	"github.com/waggle-bpf/waggle/progtype"
)

// Program is a loaded program, ready to run. It is safe for concurrent use:
// runs on different goroutines each get their own execution context.
type Program struct {
	name       string
	section    string
	typ        ebpf.ProgramType
	coll       *Collection
	runners    sync.Pool                 // of *runner
	reachCache atomic.Pointer[progReach] // the maps its runs may use, and their memory

	// Preparation, on first use (Prepare): lp is what it starts from; the
	// fields below it are set once it succeeded, err once it failed.
	lp        *loader.Program
	own       progOwner // its kind, as prog arrays record it
	ownerErr  error     // a prog array it uses holds programs of another kind
	once      sync.Once
	reachOnce sync.Once
	prepared  atomic.Bool // both onces done, and the preparation succeeded
	err       error
	kind      *progtype.Kind
	pt        *progtype.Program // the rewritten program, which makes its runs
	prog      engine.Program
	insns     []isa.Instruction
	lines     lineTable
	arrays    []maps.ProgramArray // the prog arrays it refers to
	refs      []maps.Map          // the maps its instructions name
	tries     []maps.Map          // the tries of refs each run holds from its start (collection.go)
}

// runner is what one run needs, reused across runs: the engine's execution
// context, the program type's run state, the helpers' state.
type runner struct {
	m       engine.Machine
	rr      engine.Rerunner // m, if it is one
	run     *progtype.Run
	st      helpers.State
	args    engine.Args
	regions []engine.Region
	// in is what the input run was last reset with holds besides its
	// Data and Context, when inOK (reset).
	in   inputKey
	inOK bool
	// regionsOf and regionsGen are the run state and its RegionsGen
	// that regions were converted from (setRegions).
	regionsOf  *progtype.Run
	regionsGen uint64
	stop       *atomic.Bool // set when the run's context ends (runContext)
	// keepSection keeps the helpers' grace Section entered from run to
	// run (a batch's runs, sectionRuns at a time): execRun releases what
	// a run holds but the Section.
	keepSection bool
	// ready and readyCPU are the run state and CPU slot that execSetup
	// set rn's arguments and helper state up for, the engine's last run
	// having run on them without error (nil otherwise): a run of the
	// same on an engine.Rerunner, whose arguments setArgs left as they
	// were, reruns (exec).
	ready    *progtype.Run
	readyCPU int
	// pb is m, if it runs packet batches (engine.PacketBatcher); batch,
	// chunk and synced are the packet batch it runs now (runPackets):
	// its description, its runs, and the index of the run whose state
	// batch.Sync made the run state's (-1 for none).
	pb     engine.PacketBatcher
	batch  engine.PacketBatch
	chunk  []BatchRun
	synced int
}

// setRegions makes run's regions the engine's regions of the next run.
// They are mostly those of the run before (the same run state, reset):
// they are converted again only when the run's regions changed
// (progtype.Run.RegionsGen), since copying regions (three pointers each)
// costs write barriers whenever the garbage collector is marking.
func (rn *runner) setRegions(run *progtype.Run) {
	if rn.regionsOf == run && rn.regionsGen == run.RegionsGen() {
		return
	}
	rn.regions = rn.regions[:0]
	for _, r := range run.Regions() {
		rn.regions = append(rn.regions, engine.Region(r))
	}
	rn.regionsOf, rn.regionsGen = run, run.RegionsGen()
}

// getRunner returns a pooled runner, or a new one.
func (p *Program) getRunner() *runner {
	rn, _ := p.runners.Get().(*runner)
	if rn == nil {
		rn = &runner{m: p.coll.engine.NewMachine(), stop: new(atomic.Bool)}
		rn.rr, _ = rn.m.(engine.Rerunner)
		if rn.pb, _ = rn.m.(engine.PacketBatcher); rn.pb != nil {
			rn.batch.Sync = rn.syncPacket
		}
	}
	return rn
}

// RunOptions are the inputs and outputs of Program.Run, as cilium/ebpf's
// RunOptions are for BPF_PROG_TEST_RUN.
type RunOptions struct {
	// Data is the packet for XDP and socket buffer programs. The kernel
	// wants at least 14 bytes (an Ethernet header), and so does waggle.
	Data []byte
	// DataOut receives the packet after the run; Run shortens it to the
	// packet's length. Too small a buffer fails with ENOSPC, as in Linux.
	DataOut []byte
	// Context is the context in the program type's UAPI layout (an
	// xdp_md, a __sk_buff, ...): a []byte or a fixed-size struct.
	Context any
	// ContextOut receives the context after the run: a []byte or a
	// pointer to a fixed-size struct.
	ContextOut any
	// Repeat runs the program this many times (0 and 1 both mean once),
	// each run on what the previous one left, as BPF_PROG_TEST_RUN does.
	Repeat uint32
	// Flags are BPF_PROG_TEST_RUN's flags; only BPF_F_TEST_RUN_ON_CPU
	// (which selects CPU) and the checksum flag of socket buffer programs
	// are meaningful.
	Flags uint32
	// CPU is the worker slot to run on (per-CPU map values,
	// bpf_get_smp_processor_id), below Collection.CPUs().
	CPU uint32
	// Task is the current task for tracing helpers
	// (bpf_get_current_pid_tgid and friends); nil for none.
	Task *progtype.Task
	// Memory is memory the program may read through pointers in its
	// context (the bpf_probe_read_* helpers), beyond the context and
	// packet; bpf_probe_write_user writes the regions marked writable.
	Memory []progtype.Region
	// Tunnel is the tunnel metadata the packet arrived with, as on a
	// collect-metadata tunnel device (bpf_skb_get_tunnel_key); nil for
	// none, as in BPF_PROG_TEST_RUN.
	Tunnel *netenv.Tunnel
	// Socket is the socket the run is about (progtype.Input.Socket): the
	// one the packet belongs to (__sk_buff.sk, bpf_get_socket_cookie,
	// bpf_get_socket_uid), the one a cgroup socket hook runs for, the one
	// a sock_ops callback runs on, whose options bpf_setsockopt changes
	// here (so one Socket carries a connection's options across its
	// callbacks). nil means the one the kernel would make. A Socket is
	// used by one run at a time.
	Socket *netenv.Socket
	// PerfValue is what bpf_perf_prog_read_value returns to a perf_event
	// program: the counter of the event that ran it.
	PerfValue *progtype.PerfEventValue
	// Ingress runs a tc program as at a clsact ingress hook, where
	// bpf_sk_assign works; BPF_PROG_TEST_RUN runs at neither.
	Ingress bool
	// Output, when not nil, receives everything the run returned: the
	// return value, the packet and context, the redirect target
	// (bpf_redirect, bpf_redirect_map, bpf_redirect_neigh,
	// bpf_redirect_peer), the tunnel metadata the program set, the socket
	// bpf_sk_assign chose and the copies bpf_clone_redirect sent.
	Output *progtype.Output
}

// Prepare prepares the program to run, if that has not happened yet, and
// returns why it cannot run: a *PrepareError naming the program (no program
// type, a helper user space lacks or the type may not call, a context
// access the kernel would refuse, a relocation that cannot be applied), or
// nil. The collection prepares each program on first use (Run, Test,
// Benchmark, Exec, Instructions), on its own, as the kernel loads each
// program of an object on its own: one that cannot be prepared fails
// itself, and the runs whose tail calls reach it, but not the others.
//
// Preparing a program also prepares, ignoring their errors, the programs
// that the prog arrays it refers to hold, so that a run never pays for a
// preparation; a tail call into one that failed ends the run with its
// error.
func (p *Program) Prepare() error {
	if p.prepared.Load() {
		return nil // (the check of every run, inlined)
	}
	return p.PrepareContext(context.Background())
}

// PrepareContext is Prepare with a context that bounds the verification
// (the verifier stops when ctx is done, and the program stays
// unprepared with that error). The context of the first preparation
// counts: a program is prepared once.
func (p *Program) PrepareContext(ctx context.Context) error {
	if err := p.prepareSelf(ctx); err != nil {
		return err
	}
	p.reachOnce.Do(p.prepareReachable)
	p.prepared.Store(true)
	return nil
}

// prepareSelf prepares the program alone, once.
func (p *Program) prepareSelf(ctx context.Context) error {
	p.once.Do(func() {
		p.err = p.coll.prepare(ctx, p)
		p.lp = nil
	})
	return p.err
}

// prepareReachable prepares the programs the prog arrays of p hold, and
// those their prog arrays hold, and so on.
func (p *Program) prepareReachable() {
	seen := map[*Program]bool{p: true}
	work := []*Program{p}
	for len(work) > 0 {
		q := work[len(work)-1]
		work = work[:len(work)-1]
		for _, pa := range q.arrays {
			m, ok := pa.(maps.Map)
			if !ok {
				continue
			}
			for k := uint32(0); k < m.Spec().MaxEntries; k++ {
				v, ok := pa.Program(k)
				t, isProg := v.(*Program)
				if !ok || !isProg || seen[t] {
					continue
				}
				seen[t] = true
				if t.prepareSelf(context.Background()) == nil {
					work = append(work, t)
				}
			}
		}
	}
}

// Name returns the program's name (its function's symbol).
func (p *Program) Name() string { return p.name }

// Type returns the program type.
func (p *Program) Type() ebpf.ProgramType { return p.typ }

// Section returns the ELF section the program came from.
func (p *Program) Section() string { return p.section }

// Instructions returns the program as it runs: linked, with map references
// resolved and context accesses rewritten. Slot indices are the object's.
// It is nil for a program that cannot be prepared (Prepare says why).
func (p *Program) Instructions() []isa.Instruction {
	if p.Prepare() != nil {
		return nil
	}
	return p.insns
}

// SourceLine returns the C source line of slot pc, from the object's BTF
// line info, if it has one.
func (p *Program) SourceLine(pc int) (file string, line int, text string, ok bool) {
	if p.Prepare() != nil {
		return "", 0, "", false
	}
	l, ok := p.lines.line(pc)
	return l.File, l.Line, l.Text, ok
}

// Kind returns the program type's description: its context layout, the
// helpers it may call. It is nil for a program that cannot be prepared.
func (p *Program) Kind() *progtype.Kind {
	if p.Prepare() != nil {
		return nil
	}
	return p.kind
}

// Run runs the program once (or opts.Repeat times) and returns its return
// value, the low 32 bits of r0, like cilium/ebpf's Program.Run. Every run
// is bounded by the collection's budget (CollectionOptions.Budget).
func (p *Program) Run(opts *RunOptions) (uint32, error) {
	ret, _, err := p.run(context.Background(), opts, false)
	return ret, err
}

// RunContext is Run under ctx: when ctx is canceled or its deadline
// passes, the run in progress ends at its next backward jump, call or
// callback with an error wrapping ErrStopped and ctx's cause
// (context.Canceled, context.DeadlineExceeded). (RunOptions.Context is
// the program's context, as in cilium/ebpf, hence a parameter here.)
func (p *Program) RunContext(ctx context.Context, opts *RunOptions) (uint32, error) {
	ret, _, err := p.run(ctx, opts, false)
	return ret, err
}

// Test runs the program on in and returns its return value and the packet
// after the run, like cilium/ebpf's Program.Test.
func (p *Program) Test(in []byte) (uint32, []byte, error) {
	out := make([]byte, len(in)+256+64)
	opts := &RunOptions{Data: in, DataOut: out}
	ret, _, err := p.run(context.Background(), opts, false)
	return ret, opts.DataOut, err
}

// Benchmark runs the program repeat times on in and returns its return
// value and the mean time of one run, like cilium/ebpf's Benchmark.
// reset, if not nil, is called before timing starts.
func (p *Program) Benchmark(in []byte, repeat int, reset func()) (uint32, time.Duration, error) {
	if repeat < 0 || uint64(repeat) > 1<<32-1 {
		return 0, 0, fmt.Errorf("repeat %d out of range", repeat)
	}
	if reset != nil {
		reset()
	}
	return p.run(context.Background(), &RunOptions{Data: in, Repeat: uint32(repeat)}, true)
}

// Exec returns a function that runs the program on a prepared run of its
// program type: what a user hook's Run takes (progtype.Hook.Run), so a Go
// program runs attached programs at its own hook points:
//
//	r0, err := hook.Run(prog.Exec(), &req, progtype.Input{})
//
// Runs use CPU slot 0.
func (p *Program) Exec() progtype.Exec { return p.ExecContext(context.Background()) }

// ExecContext is Exec whose runs stop when ctx ends, as RunContext's do.
func (p *Program) ExecContext(ctx context.Context) progtype.Exec {
	return func(run *progtype.Run) (uint64, error) {
		if err := p.Prepare(); err != nil {
			return 0, err
		}
		if !p.coll.acquire() {
			return 0, fmt.Errorf("program %s: %w", p.name, errCollectionClosed)
		}
		defer p.coll.release()
		rn := p.getRunner()
		defer p.runners.Put(rn)
		r0, err := p.execOn(ctx, rn, run, 0, 1)
		if err != nil {
			return 0, fmt.Errorf("program %s: %w", p.name, err)
		}
		return r0, nil
	}
}

// execOn runs the program repeat times on run with runner rn's engine
// context, on CPU slot cpu, and returns the last r0. Whichever way a run
// ends, what it still holds (a spin lock, ring buffer records) is given
// back, so the next run finds the maps usable. Errors carry the source
// line.
func (p *Program) execOn(ctx context.Context, rn *runner, run *progtype.Run, cpu int, repeat uint32) (uint64, error) {
	var done func()
	if ctx.Done() != nil {
		var err error
		if done, err = rn.runContext(ctx); err != nil {
			return 0, err
		}
	}
	r0, err := p.exec(rn, run, cpu, repeat)
	if done != nil {
		done()
	}
	if err != nil {
		return 0, p.runError(ctx, run, err)
	}
	return r0, nil
}

// exec is execOn under the context's stop flag (runContext), if any, with
// the engine's error as it is.
func (p *Program) exec(rn *runner, run *progtype.Run, cpu int, repeat uint32) (uint64, error) {
	// A run on what the runner's last run had, but for the packet and
	// context a reset copied into the same buffers, is a rerun (the
	// runs of one Program.Run after another on the same input kind).
	again := rn.rr != nil && rn.ready == run && rn.readyCPU == cpu && !rn.setArgs(run)
	if !again {
		p.execSetup(rn, run, cpu)
	}
	st := &rn.st
	st.Rand, st.TailCall = p.coll.randState(), nil
	r0, _, err := p.execRun(rn, again, 1)
	// The repeats run what the first ran, on the same arguments: an
	// engine that can runs them again for less (engine.Rerunner), many
	// at a time, and the context is polled between those.
	for left := repeat - 1; left > 0 && err == nil; {
		if rn.stop.Load() {
			return 0, engine.ErrStopped
		}
		var ran uint32
		r0, ran, err = p.execRun(rn, true, min(left, repeatChunk))
		left -= ran
	}
	return r0, err
}

// repeatChunk is the most repeats one Rerun makes: the runs between
// polls of the run's context, and the longest a writer of an LPM trie
// the program uses waits for them (they hold its grace section).
const repeatChunk = 1 << 12

// execSetup makes rn's engine arguments and helper state those of runs of
// run on CPU slot cpu: what execRun keeps from run to run. Fields are set
// one by one, and pointers only when they change: the runner is reused,
// and rebuilding the structs cost write barriers on every run.
func (p *Program) execSetup(rn *runner, run *progtype.Run, cpu int) {
	c := p.coll
	st := &rn.st
	if st.Locks != &c.locks {
		*st = helpers.State{Trace: c.trace, Locks: &c.locks, CheckLock: c.checkLock, Syncookie: c.syncookie}
	}
	st.CPU, st.Held = cpu, 0
	if st.Hook != run {
		st.Hook = run
	}
	if st.Stop != rn.stop {
		st.Stop, rn.args.Stop = rn.stop, rn.stop
	}
	a := &rn.args
	a.Regs = [5]uint64{run.Ctx()}
	a.State, a.Budget = st, c.budget
	rn.setArgs(run)
	rn.ready, rn.readyCPU = run, cpu
}

// setArgs makes the memory of run (its regions and legacy packet) that of
// rn's next run: what a reset for a new input may change. It reports
// whether the arguments changed.
func (rn *runner) setArgs(run *progtype.Run) bool {
	gen := rn.regionsOf == run && rn.regionsGen == run.RegionsGen()
	a := &rn.args
	if !gen {
		// (A pointer store costs a write barrier check: only when they
		// changed.)
		rn.setRegions(run)
		a.Regions = rn.regions
	}
	if pkt := run.Packet(); len(pkt) != len(a.Packet) || len(pkt) != 0 && &pkt[0] != &a.Packet[0] {
		a.Packet = pkt
		return true
	}
	return !gen
}

// execRun is a run with the arguments execSetup (and, after a reset,
// setArgs) made: the state a run starts from, the engine's run, and the
// release of what the run still holds. again says the arguments are those
// of the runner's last run, which an engine.Rerunner runs for less, up
// to n times in a row (see engine.Rerunner): it returns the last r0 and
// how many runs it made.
func (p *Program) execRun(rn *runner, again bool, n uint32) (uint64, uint32, error) {
	st := &rn.st
	p.startRun(rn)
	var r0 uint64
	ran := uint32(1)
	var err error
	if rn.rr != nil && again {
		r0, ran, err = rn.rr.Rerun(n)
	} else {
		r0, err = rn.m.Run(p.prog, &rn.args)
	}
	if rn.keepSection {
		st.ReleaseHeld()
	} else {
		st.Release()
	}
	if err != nil {
		rn.ready = nil // the next run sets the engine up again
	}
	return r0, ran, err
}

// startRun makes rn's helper state that of a run's start, but for its
// random state and tail call (which the caller sets): no tail calls yet,
// the program's map set, the grace sections of its tries entered.
func (p *Program) startRun(rn *runner) {
	st := &rn.st
	st.TailCalls = 0
	if set := p.reach().set; st.Maps != set {
		st.Maps = set // a tail call switched it, or the maps changed
	}
	if !rn.keepSection || !st.Section.Held() {
		// (A batch's section holds them from its chunk's first run.)
		for _, m := range p.tries {
			st.Section.Enter(m, st.CPU)
		}
	}
}

// runError explains the error a run of run under ctx ended with: the
// context's cause for a stopped run, the source line, and for a memory
// fault in the context what the program type says of it.
func (p *Program) runError(ctx context.Context, run *progtype.Run, err error) error {
	if errors.Is(err, engine.ErrStopped) {
		err = fmt.Errorf("%w: %w", err, context.Cause(ctx))
	}
	err = p.annotate(err)
	var f *engine.Fault
	if errors.As(err, &f) && errors.Is(f.Err, engine.ErrMemory) {
		if e := run.ContextFault(f.Addr, f.Size); e != nil {
			err = fmt.Errorf("%w (%w)", e, err)
		}
	}
	return err
}

// bpfFTestRunOnCPU is BPF_F_TEST_RUN_ON_CPU.
const bpfFTestRunOnCPU = 1 << 0

// run is Run returning the mean duration of one run too, when timed (the
// clock is read only then).
func (p *Program) run(ctx context.Context, opts *RunOptions, timed bool) (uint32, time.Duration, error) {
	if !p.coll.acquire() {
		return 0, 0, fmt.Errorf("program %s: %w", p.name, errCollectionClosed)
	}
	// Its own function, so that both functions' defers stay open-coded
	// (the compiler gives up past 15 returns × defers).
	defer p.coll.release()
	return p.runHeld(ctx, opts, timed)
}

// runHeld is run under a reference on the collection. It allocates
// nothing and copies only what opts asks for (DataOut, ContextOut,
// Output).
func (p *Program) runHeld(ctx context.Context, opts *RunOptions, timed bool) (uint32, time.Duration, error) {
	if opts == nil {
		opts = &RunOptions{}
	}
	if err := p.Prepare(); err != nil {
		return 0, 0, err
	}
	rn := p.getRunner()
	defer p.runners.Put(rn)
	return p.runOn(ctx, rn, opts, timed)
}

// runOn is runHeld on the runner rn, of a prepared program.
func (p *Program) runOn(ctx context.Context, rn *runner, opts *RunOptions, timed bool) (uint32, time.Duration, error) {
	if err := p.checkCPU(opts.Flags, opts.CPU, "RunOptions"); err != nil {
		return 0, 0, err
	}
	var ctxIn []byte
	var err error
	if opts.Context != nil {
		if ctxIn, err = contextBytes(opts.Context); err != nil {
			return 0, 0, fmt.Errorf("program %s: context: %w", p.name, err)
		}
	}
	if rn.inOK && p.sameKey(&rn.in, opts) {
		// The input of the run before, but for the packet and context:
		// the run state keeps the rest.
		err = p.pt.ResetRunData(rn.run, opts.Data, ctxIn)
	} else {
		in := progtype.Input{Data: opts.Data, Context: ctxIn, Flags: opts.Flags &^ bpfFTestRunOnCPU, Task: opts.Task, Memory: opts.Memory,
			Net: p.coll.net, Tunnel: opts.Tunnel, Socket: opts.Socket, Ingress: opts.Ingress, PerfValue: opts.PerfValue}
		err = p.reset(rn, &in)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("program %s: %w", p.name, err)
	}
	run := rn.run
	repeat := max(opts.Repeat, 1)
	var start time.Time
	if timed {
		start = time.Now()
	}
	r0, err := p.execOn(ctx, rn, run, int(opts.CPU), repeat)
	if err != nil {
		return 0, 0, fmt.Errorf("program %s: %w", p.name, err)
	}
	var dur time.Duration
	if timed {
		dur = time.Since(start) / time.Duration(repeat)
	}
	ret, err := finish(run, r0, &opts.DataOut, opts.ContextOut, nil, opts.Output)
	if err != nil {
		return 0, 0, fmt.Errorf("program %s: %w", p.name, err)
	}
	return ret, dur, nil
}

// checkCPU checks the CPU slot a run asks for, as BPF_PROG_TEST_RUN
// does; what names the options for the message.
func (p *Program) checkCPU(flags, cpu uint32, what string) error {
	if cpu != 0 && flags&bpfFTestRunOnCPU == 0 {
		return fmt.Errorf("program %s: %s.CPU needs BPF_F_TEST_RUN_ON_CPU in Flags, as in Linux: %w", p.name, what, maps.EINVAL)
	}
	if int(cpu) >= p.coll.cpus {
		return fmt.Errorf("program %s: CPU %d, the collection has %d: %w", p.name, cpu, p.coll.cpus, maps.EINVAL)
	}
	return nil
}

// reset prepares rn's run state for in: a new one on the runner's first
// run, the one of the run before afterwards.
func (p *Program) reset(rn *runner, in *progtype.Input) error {
	rn.inOK = false
	if rn.run != nil {
		if err := p.pt.ResetRun(rn.run, *in); err != nil {
			return err
		}
	} else {
		run, err := p.pt.NewRun(*in)
		if err != nil {
			return err
		}
		rn.run = run
	}
	rn.in, rn.inOK = keyOf(in), true
	return nil
}

// keyOf returns the key of in.
func keyOf(in *progtype.Input) inputKey {
	return inputKey{flags: in.Flags, ingress: in.Ingress, task: in.Task, mem: first(in.Memory), memLen: len(in.Memory),
		net: in.Net, tunnel: in.Tunnel, socket: in.Socket, perf: in.PerfValue}
}

// inputKey is what a progtype.Input holds besides its Data and Context,
// comparable: runs whose inputs have the same key differ only in their
// packet and context, and reset a run state with ResetRunData.
type inputKey struct {
	flags   uint32
	ingress bool
	task    *progtype.Task
	mem     *progtype.Region // the first of Memory, nil for none
	memLen  int
	net     *netenv.Host
	tunnel  *netenv.Tunnel
	socket  *netenv.Socket
	perf    *progtype.PerfEventValue
}

// sameKey reports whether k is the key of the input opts gives a run of
// p, field by field (building the key and comparing the structs called
// memequal on every run).
func (p *Program) sameKey(k *inputKey, opts *RunOptions) bool {
	return k.flags == opts.Flags&^bpfFTestRunOnCPU && k.ingress == opts.Ingress && k.task == opts.Task &&
		k.mem == first(opts.Memory) && k.memLen == len(opts.Memory) && k.net == p.coll.net &&
		k.tunnel == opts.Tunnel && k.socket == opts.Socket && k.perf == opts.PerfValue
}

// first returns the address of s's first element, nil for an empty s.
func first(s []progtype.Region) *progtype.Region {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// finish ends a run whose r0 was r0 and copies out what the caller asks
// for: the packet into *dataOut (shortened to the packet's length), the
// context into ctxOut (RunOptions.ContextOut) or ctxOutBytes, everything
// into output. Without them it allocates and copies nothing.
func finish(run *progtype.Run, r0 uint64, dataOut *[]byte, ctxOut any, ctxOutBytes []byte, output *progtype.Output) (uint32, error) {
	if *dataOut == nil && ctxOut == nil && ctxOutBytes == nil && output == nil {
		return run.FinishRetval(r0)
	}
	var parts progtype.OutputParts
	if *dataOut != nil {
		parts |= progtype.OutputData
	}
	if ctxOut != nil || ctxOutBytes != nil {
		parts |= progtype.OutputContext
	}
	var view progtype.Output // lent by the Run, copied below
	out := &view
	if output != nil {
		var err error
		if out, err = run.Finish(r0); err != nil { // every part, copied
			return 0, err
		}
	} else if err := run.FinishInto(r0, out, parts); err != nil {
		return 0, err
	}
	if d := *dataOut; d != nil && out.Data != nil {
		if len(out.Data) > len(d) {
			return 0, fmt.Errorf("the packet grew to %d bytes, DataOut holds %d: %w", len(out.Data), len(d), maps.ENOSPC)
		}
		*dataOut = d[:copy(d, out.Data)]
	}
	if out.Context != nil {
		if ctxOutBytes != nil {
			copy(ctxOutBytes, out.Context) // a prefix, as the kernel copies ctx_size_out
		}
		if ctxOut != nil {
			if err := contextOut(out.Context, ctxOut); err != nil {
				return 0, fmt.Errorf("context out: %w", err)
			}
		}
	}
	if output != nil {
		*output = *out
	}
	return out.Retval, nil
}

// contextBytes returns the bytes of a context given as []byte or a
// fixed-size value.
func contextBytes(ctx any) ([]byte, error) {
	if b, ok := ctx.([]byte); ok {
		return b, nil
	}
	return marshalAny(ctx)
}

// contextOut stores the context after the run into out; a []byte shorter
// than the context receives a prefix, as the kernel copies ctx_size_out.
func contextOut(ctx []byte, out any) error {
	if b, ok := out.([]byte); ok {
		copy(b, ctx)
		return nil
	}
	n := binarySize(out)
	if n < 0 {
		return errors.New("ContextOut must be a []byte or a pointer to a fixed-size type")
	}
	if n > len(ctx) {
		return fmt.Errorf("ContextOut holds %d bytes, the context has %d", n, len(ctx))
	}
	return unmarshal(ctx[:n], out)
}
