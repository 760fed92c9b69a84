package waggle

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/engines"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/loader"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/netenv"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// CollectionOptions configure how a collection is loaded. The zero value is
// ready to use.
type CollectionOptions struct {
	// CPUs is the number of worker slots: how many values per-CPU maps hold
	// and the range of RunOptions.CPU. 0 means runtime.NumCPU().
	CPUs int
	// Engine is what runs the programs. The zero value, EngineAuto,
	// picks the JIT (EngineJIT) on linux/amd64 for verified programs and
	// the checked interpreter (EngineInterp) for Unverified ones and on
	// other platforms; Collection.Engine says which it picked. The JIT
	// and EngineInterpFast check no memory access at run time: the
	// verifier proved the program's accesses in bounds, and that proof is
	// all that stands between a verifier bug and the process's memory, as
	// in Linux. EngineInterp checks every access at run time as well, a
	// second line of defence at a fraction of the speed. With Unverified,
	// an engine that does not check (EngineInterpFast, EngineJIT) is
	// refused (ErrUnverifiedFast) unless UnsafeFastUnverified is set.
	Engine Engine
	// UnsafeFastUnverified allows EngineInterpFast for programs that run
	// Unverified: a bad access in one then reads or writes any memory of
	// the process, or crashes it. For tests of programs known to be safe
	// only. Verified programs need no such flag.
	UnsafeFastUnverified bool
	// BlindConstants keeps the programs' immediates out of the machine
	// code EngineJIT generates (Linux's net.core.bpf_jit_harden): each is
	// stored xor a random key and restored at run time, which costs a
	// few percent. Other engines ignore it.
	BlindConstants bool
	// Unverified runs programs without waggle's verifier, in checked mode:
	// every access is checked at run time instead, and a bad one ends the
	// run with a fault. By default a program runs only once the verifier
	// accepted it (Program.Prepare returns the *verifier.Error otherwise),
	// as BPF_PROG_LOAD loads only programs Linux's verifier accepted.
	Unverified bool
	// Budget bounds the instructions each run executes (DefaultBudget,
	// see DefaultBudget for how it is counted); a run that reaches it
	// ends with ErrBudget. 0 means DefaultBudget; math.MaxUint64 means no
	// bound in practice.
	Budget uint64
	// Trace receives bpf_trace_printk output; nil discards it.
	Trace io.Writer
	// ProgramTypes overrides the program type the section name gives, by
	// program or section name (what `--type` does for bpftool).
	ProgramTypes map[string]ebpf.ProgramType
	// AttachTypes overrides the expected attach type the section name
	// gives, keyed as ProgramTypes: with it, the type and attach type a
	// loader names for a section that says neither (bpftool's "prog load
	// OBJ PATH type cgroup/connect4" for Cilium v1.10's "connect4"), on
	// which context access depends (a cgroup_sock_addr program may write
	// user_ip4 only when attached to IPv4 connect or sendmsg).
	AttachTypes map[string]ebpf.AttachType
	// DefaultProgramType is the type of every program that has none: whose
	// section libbpf does not know (iproute2's "1/0", Open vSwitch's
	// "tail-3", Cilium's old "from-netdev", functions of a .text-only
	// object), that ProgramTypes does not name and that no typed program's
	// prog array holds (those take the type of the programs that tail-call
	// them; see loader.Program.Type). It is what tc's "bpf obj FILE type T"
	// does. The zero value leaves them without a type: they cannot run, and
	// Program.Prepare says so.
	DefaultProgramType ebpf.ProgramType
	// Hooks attaches programs to user-defined hook points (progtype.NewHook),
	// by program or section name: those programs see the hook's context and
	// run with Program.Exec. The section name may be anything, such as
	// "waggle/http_request"; its program type is ignored.
	Hooks map[string]*progtype.Kind
	// Net is the host's network the network helpers consult: interfaces,
	// routes and neighbours for bpf_fib_lookup and bpf_check_mtu, sockets
	// for the socket lookups (netenv.New, netenv.Load,
	// netenv.ReadNamespace). nil means netenv.Empty(), a host with only
	// its loopback device, where each helper answers what Linux answers
	// without the route, neighbour or socket.
	Net *netenv.Host
	// RandSeed makes bpf_get_prandom_u32 reproducible: run n of the
	// collection (counting from 1, in the order runs start) draws from a
	// generator seeded with RandSeed and n, so the same runs in the same
	// order see the same numbers. 0 seeds each run from the clock, as
	// Linux's per-CPU state is unpredictable. Tests whose programs are
	// statistical (Cilium's SNAT port allocation asserts on retry
	// counts) use it to pass or fail the same way every time.
	RandSeed uint64
}

// Collection is a set of programs and the maps they use, loaded from one
// object. It mirrors cilium/ebpf's Collection.
type Collection struct {
	Programs map[string]*Program
	Maps     map[string]*Map

	cpus   int
	net    *netenv.Host
	hooks  map[string]*progtype.Kind
	engine engine.Engine // CollectionOptions.Engine, picked (kind)
	kind   Engine        // the concrete engine: never EngineAuto
	unsafe bool
	blind  bool // CollectionOptions.BlindConstants
	budget uint64
	verify bool   // CollectionOptions.Unverified unset
	seed   uint64 // CollectionOptions.RandSeed
	// syncookie is the secret of the SYN cookie helpers: random, or
	// derived from RandSeed.
	syncookie *helpers.SyncookieSecret
	runs      atomic.Uint64 // runs started, for seed
	trace     io.Writer
	owners    owners     // of the prog arrays: the kind of program they hold
	all       []maps.Map // in object order, owned
	frozen    []bool     // by object order: the map is frozen (.rodata), as cilium/ebpf freezes it

	refs      atomic.Int64 // runs and map operations in progress ×2, +1 once closed (acquire)
	freed     sync.Once
	locks     maps.SpinLocks
	checkLock func(addr uint64) error // c.lockRule, bound once

	mu      sync.Mutex
	gen     atomic.Uint64           // changes when a map-in-map gets a new inner map
	inner   map[maps.Map][]maps.Map // map-in-map -> every map stored in it
	lockOff map[maps.Map]int        // where values hold their bpf_spin_lock (spinLockOffset)
	kept    []*Collection           // collections whose programs or maps c's maps hold (keep)
	// tables are the helpers each program type may call under a license,
	// on target user: the verifier's prototypes and the engine's
	// implementations (helperTable), built once.
	tables map[tableKey]*progtype.HelperTable
	// protos are the helper prototypes of the other targets (linux; host's
	// are linux's narrowed per program), by kind, target and privilege,
	// for Program.Verify: built once.
	protos map[protoKey]map[int32]helpers.Proto
	// kt is the kernel's BTF for Program.Verify on targets linux and
	// host, shared by the collection's programs: read at most once, when
	// a program first reads a kernel object (kernelTypes).
	kt *verifier.KernelTypes
}

// Engine returns the engine that runs the collection's programs: the one
// CollectionOptions.Engine named, or, for EngineAuto, the one it picked
// (EngineJIT or EngineInterp). It is never EngineAuto.
func (c *Collection) Engine() Engine { return c.kind }

// kernelTypes returns the collection's kernel BTF, loaded when first
// needed.
func (c *Collection) kernelTypes() *verifier.KernelTypes {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kt == nil {
		c.kt = verifier.NewKernelTypes()
	}
	return c.kt
}

// tableKey identifies a helper table: a kind and a license.
type tableKey struct {
	kind    kindKey
	license string
}

// kindKey identifies a progtype.Kind: Lookup makes a new one per call.
type kindKey struct {
	typ    progtype.Type
	attach progtype.AttachType
	name   string
}

// LoadCollection loads the object file at path (an ELF object built by
// clang) and everything it needs.
func LoadCollection(path string, opts *CollectionOptions) (*Collection, error) {
	obj, err := loader.LoadFile(path, loaderOptions(opts))
	if err != nil {
		return nil, err
	}
	return newCollection(obj, opts)
}

// NewCollection loads a collection from cilium/ebpf's spec of an object,
// such as the one bpf2go generates (LoadXxx()).
func NewCollection(spec *ebpf.CollectionSpec, opts *CollectionOptions) (*Collection, error) {
	obj, err := loader.FromSpec(spec, loaderOptions(opts))
	if err != nil {
		return nil, err
	}
	return newCollection(obj, opts)
}

// NewCollectionFromObject loads a collection from an object the caller
// has already read with package loader (to inspect it first, or to change
// its programs' types). The collection does not keep obj.
func NewCollectionFromObject(obj *loader.Object, opts *CollectionOptions) (*Collection, error) {
	return newCollection(obj, opts)
}

func loaderOptions(opts *CollectionOptions) loader.Options {
	if opts == nil {
		return loader.Options{}
	}
	return loader.Options{ProgramType: opts.ProgramTypes, AttachType: opts.AttachTypes, DefaultType: opts.DefaultProgramType}
}

func newCollection(obj *loader.Object, opts *CollectionOptions) (_ *Collection, err error) {
	if opts == nil {
		opts = &CollectionOptions{}
	}
	if obj.ByteOrder != nil && obj.ByteOrder.Uint16([]byte{1, 0}) != binary.NativeEndian.Uint16([]byte{1, 0}) {
		// The engines and maps work in the machine's byte order, as
		// Linux's do: the object's constants, map contents and global
		// variables would be read backwards.
		return nil, fmt.Errorf("the object was compiled for %s and this machine is %s; Linux refuses to load it too (build it with -target bpf, or bpfel/bpfeb to match the machine)",
			orderName(obj.ByteOrder), orderName(binary.NativeEndian))
	}
	c := &Collection{
		hooks:     opts.Hooks,
		Programs:  map[string]*Program{},
		Maps:      map[string]*Map{},
		cpus:      opts.CPUs,
		net:       opts.Net,
		unsafe:    opts.UnsafeFastUnverified,
		blind:     opts.BlindConstants,
		verify:    !opts.Unverified,
		budget:    opts.Budget,
		seed:      opts.RandSeed,
		trace:     opts.Trace,
		syncookie: helpers.NewSyncookieSecret(opts.RandSeed),
		lockOff:   map[maps.Map]int{},
	}
	c.checkLock = c.lockRule
	if c.cpus <= 0 {
		c.cpus = runtime.NumCPU()
	}
	if c.budget == 0 {
		c.budget = DefaultBudget
	}
	c.kind = opts.Engine.Resolve(c.verify)
	if c.engine, err = c.kind.impl(); err != nil {
		return nil, err
	}
	if !c.engine.Checked() && !c.verify && !c.unsafe {
		return nil, ErrUnverifiedFast
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for _, ms := range obj.Maps {
		m, err := c.newMap(ms)
		if err != nil {
			return nil, err
		}
		c.all = append(c.all, m.m)
		c.frozen = append(c.frozen, strings.HasPrefix(ms.Name, ".rodata") || ms.Name == ".kconfig")
		c.Maps[ms.Name] = m
	}
	// Programs are prepared on first use (Program.Prepare), each on its
	// own: one that cannot be prepared fails only itself and what needs it.
	progs := make([]*Program, len(obj.Programs))
	for i, lp := range obj.Programs {
		if lp.Type == ebpf.UnspecifiedProgram && opts.DefaultProgramType != ebpf.UnspecifiedProgram {
			// An object read without the option (NewCollectionFromObject).
			cp := *lp
			cp.Type, cp.TypeFrom = opts.DefaultProgramType, loader.TypeFromDefault
			lp = &cp
		}
		p := &Program{name: lp.Name, section: lp.Section, typ: lp.Type, lp: lp, coll: c, own: ownerOf(lp)}
		progs[i] = p
		c.Programs[lp.Name] = p
	}
	// Linux loads the programs before it fills the prog arrays: the
	// first program (in the object's order) that refers to a prog array
	// decides the kind of program it holds; one of another kind is
	// refused, and so is filling the array with one.
	for _, p := range progs {
		if p.lp.Type == ebpf.UnspecifiedProgram || c.hooks[p.name] != nil || c.hooks[p.section] != nil {
			continue
		}
		for _, mi := range progArraysUsed(obj, p.lp) {
			name := obj.Maps[mi].Name
			pa, ok := c.Maps[name].m.(maps.ProgramArray)
			if !ok {
				continue
			}
			if err := c.owners.claim(pa, name, p.own); err != nil && p.ownerErr == nil {
				p.ownerErr = err
			}
		}
	}
	for _, b := range obj.Bindings {
		if err := c.bind(obj, progs, b); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// specOf converts cilium/ebpf's map spec to waggle's.
func (c *Collection) specOf(ms *ebpf.MapSpec) maps.Spec {
	s := maps.Spec{
		Name:       ms.Name,
		Type:       maps.Type(ms.Type),
		KeySize:    ms.KeySize,
		ValueSize:  ms.ValueSize,
		MaxEntries: ms.MaxEntries,
		Flags:      ms.Flags,
		MapExtra:   ms.MapExtra,
		CPUs:       c.cpus,
	}
	if s.Type == maps.PerfEventArray {
		// cilium/ebpf's fixupMagicFields: 4-byte keys and values (a BTF
		// map definition may leave them 0, as xdp-tools' xdpdump declares
		// its map) and a slot per CPU, at most (libbpf and cilium/ebpf
		// default to the CPU count).
		if s.KeySize == 0 {
			s.KeySize = 4
		}
		if s.ValueSize == 0 {
			s.ValueSize = 4
		}
		if s.MaxEntries == 0 || s.MaxEntries > uint32(c.cpus) {
			s.MaxEntries = uint32(c.cpus)
		}
	}
	if ms.InnerMap != nil {
		inner := c.specOf(ms.InnerMap)
		s.InnerMap = &inner
	}
	return s
}

func (c *Collection) newMap(ms *ebpf.MapSpec) (*Map, error) {
	spec := c.specOf(ms)
	if err := checkMapFields(ms); err != nil {
		return nil, fmt.Errorf("map %s: %w", ms.Name, err)
	}
	m, err := maps.New(spec)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", ms.Name, err)
	}
	wm := &Map{name: ms.Name, m: m, spec: spec, coll: c, lockOff: mapLockOffset(ms), fields: mapFields(ms)}
	c.lockOff[m] = wm.lockOff
	for i, kv := range ms.Contents {
		if spec.Type == maps.ProgArray || spec.Type == maps.ArrayOfMaps || spec.Type == maps.HashOfMaps {
			continue // bound after the programs and maps exist (Object.Bindings)
		}
		if err := wm.Update(kv.Key, kv.Value, UpdateAny); err != nil {
			m.Close()
			return nil, fmt.Errorf("map %s: initial contents, entry %d: %w", ms.Name, i, err)
		}
	}
	return wm, nil
}

// bind stores a program or inner map in a prog array or map-in-map, as the
// object's declaration asks.
func (c *Collection) bind(obj *loader.Object, progs []*Program, b loader.Binding) error {
	outer := obj.Maps[b.Map]
	m := c.Maps[outer.Name]
	switch {
	case b.Program >= 0:
		pa, ok := m.m.(maps.ProgramArray)
		if !ok {
			return fmt.Errorf("map %s: holds programs but is a %s", outer.Name, m.spec.Type)
		}
		// The slot holds the Program itself: it is prepared when the
		// program holding the array is, or when a tail call reaches it.
		if own := progs[b.Program].own; own.typ != ebpf.UnspecifiedProgram {
			if err := c.owners.claim(pa, outer.Name, own); err != nil {
				return fmt.Errorf("map %s: slot %d: %w", outer.Name, b.Key, err)
			}
		}
		if err := pa.SetProgram(b.Key, progs[b.Program]); err != nil {
			return fmt.Errorf("map %s: slot %d: %w", outer.Name, b.Key, err)
		}
	case b.Inner >= 0:
		mm, ok := m.m.(maps.MapOfMaps)
		if !ok {
			return fmt.Errorf("map %s: holds maps but is a %s", outer.Name, m.spec.Type)
		}
		key, err := marshal(b.Key, int(m.spec.KeySize))
		if err != nil {
			return fmt.Errorf("map %s: %w", outer.Name, err)
		}
		in := c.Maps[obj.Maps[b.Inner].Name]
		if err := mm.SetInner(key, in.m); err != nil {
			return fmt.Errorf("map %s: slot %d: %w", outer.Name, b.Key, err)
		}
		c.addInner(m.m, in.m, in.lockOff)
	}
	return nil
}

// PrepareError is why a program cannot run: it names the program and its
// section. Program.Prepare, Run, Test, Benchmark and Exec return it, and so
// does a run whose tail call reaches the program.
type PrepareError struct {
	Program string
	Section string
	Err     error
}

// Error returns "program NAME (section SECTION): reason".
func (e *PrepareError) Error() string {
	return fmt.Sprintf("program %s (section %s): %v", e.Program, e.Section, e.Err)
}

// Unwrap returns the reason.
func (e *PrepareError) Unwrap() error { return e.Err }

// prepare makes a program ready to run, as BPF_PROG_LOAD does for one
// program, in one ordered pipeline: the helpers its type allows (one
// table, for the verifier and the engine), the verifier (or, for
// CollectionOptions.Unverified, a check of its helper calls), the rewrite
// of its context accesses, the link of its map references to the
// collection's maps, and the engine. Each step runs once.
func (c *Collection) prepare(ctx context.Context, p *Program) error {
	lp := p.lp
	fail := func(err error) error { return &PrepareError{Program: lp.Name, Section: lp.Section, Err: err} }
	if lp.Err != nil {
		return fail(lp.Err)
	}
	if p.ownerErr != nil {
		return fail(p.ownerErr)
	}
	kind, err := c.kindOf(lp)
	if err != nil {
		return fail(err)
	}
	lines := compactLines(lp.Lines)
	// The helpers: what the verifier checks calls against is what the
	// engine calls.
	table := c.helperTable(kind, lp.License)
	// Verify, and rewrite the context accesses: those the verifier found,
	// or, unverified, every access that may be one, decided at run time.
	// Both see map references as the loader left them, before they become
	// addresses.
	var pp *progtype.Program
	if c.verify {
		res, err := p.verify(ctx, kind, table)
		if err != nil {
			return fail(err)
		}
		pp, err = kind.Convert(lp.Insns, res.CtxAccesses)
		if err != nil {
			return fail(lines.annotate(err))
		}
	} else {
		if err := checkCalls(table, lp); err != nil {
			return fail(err)
		}
		pp, err = kind.Rewrite(lp.Insns)
		if err != nil {
			return fail(lines.annotate(err))
		}
	}
	// Link the map references to the collection's maps.
	rewritten, arrays, err := c.resolveMaps(pp.Insns, kind)
	if err != nil {
		return fail(err)
	}
	pp.Insns = rewritten // same slots as lp.Insns: line info still applies
	// The engine. Every run is bounded (Budgeted), checked runs reach only
	// the memory of the maps the program references (Memory), and helpers
	// only those maps (helpers.State.Maps).
	p.refs = c.referencedMaps(lp)
	// A verified program is valid (the verifier validated it once, and
	// the rewrite and the link keep it so) and may run in fast mode.
	prog, err := c.engine.Load(rewritten, engine.Options{Helpers: table.Funcs, Budgeted: true, Memory: p.memory,
		Verified: c.verify, UnsafeFastUnverified: c.unsafe && !c.verify, ContextVariants: pp.Variants, ContextFaults: pp.Faults,
		BlindConstants: c.blind})
	if err != nil {
		return fail(lines.annotate(err))
	}
	p.kind, p.pt, p.prog, p.insns, p.lines, p.arrays = kind, pp, prog, rewritten, lines, arrays
	if c.verify && c.engine.Name() == engines.JIT {
		// The JIT walks the tries the program names natively, without
		// the helper that enters them into the run's section: every run
		// enters them before it starts (Program.execRun).
		for _, m := range p.refs {
			if m.Spec().Type == maps.LPMTrie {
				p.tries = append(p.tries, m)
			}
		}
	}
	return nil
}

// kindOf returns the program type a program runs as: a user hook's, or
// the one its section or the options name.
func (c *Collection) kindOf(lp *loader.Program) (*progtype.Kind, error) {
	if kind := c.hooks[lp.Name]; kind != nil {
		return kind, nil
	}
	if kind := c.hooks[lp.Section]; kind != nil {
		return kind, nil
	}
	if lp.Type == ebpf.UnspecifiedProgram {
		return nil, fmt.Errorf("section %q names no program type, and no typed program's prog array holds it: give one (CollectionOptions.ProgramTypes or DefaultProgramType; --type on the command line): %w", lp.Section, progtype.ErrUnsupported)
	}
	kind, err := progtype.LookupAttach(progtype.Type(lp.Type), progtype.AttachType(lp.AttachType))
	if err != nil {
		return nil, fmt.Errorf("%w (a user hook's program needs CollectionOptions.Hooks)", err)
	}
	return kind, nil
}

// resolveMaps turns the loader's map references into what programs hold at
// run time: a map's Handle for PseudoMapIdx, the address of global data for
// PseudoMapIdxValue. A cgroup storage map the program uses gets the
// storage of the program's attachment (at the root cgroup), as attaching
// gives it in Linux. It also returns the prog arrays the program refers
// to.
func (c *Collection) resolveMaps(prog []isa.Instruction, kind *progtype.Kind) ([]isa.Instruction, []maps.ProgramArray, error) {
	insns := append([]isa.Instruction(nil), prog...)
	var arrays []maps.ProgramArray
	for i := 0; i+1 < len(insns); i++ {
		ins := insns[i]
		if !ins.IsLoadImm64() {
			continue
		}
		var v uint64
		switch ins.Src {
		case isa.PseudoMapIdx, isa.PseudoMapIdxValue:
			if int(ins.Imm) < 0 || int(ins.Imm) >= len(c.all) {
				return nil, nil, fmt.Errorf("instruction %d: map index %d out of range (%d maps)", i, ins.Imm, len(c.all))
			}
			m := c.all[ins.Imm]
			v = m.Handle()
			if pa, ok := m.(maps.ProgramArray); ok && ins.Src == isa.PseudoMapIdx && !slices.Contains(arrays, pa) {
				arrays = append(arrays, pa)
			}
			if ls, ok := m.(maps.LocalStorage); ok {
				if err := ls.Bind(progtype.RootCgroupID, uint32(kind.AttachPoint())); err != nil {
					return nil, nil, fmt.Errorf("instruction %d: %w", i, err)
				}
			}
			if ins.Src == isa.PseudoMapIdxValue {
				e, ok := m.(maps.Elems)
				if !ok || m.Spec().Type != maps.Array {
					return nil, nil, fmt.Errorf("instruction %d: direct value access into map %s, a %s: only arrays have values at fixed addresses", i, m.Spec().Name, m.Spec().Type)
				}
				base := e.LookupElem(0, make([]byte, 4))
				off := uint64(uint32(insns[i+1].Imm))
				if base == 0 || off >= uint64(m.Spec().ValueSize) {
					return nil, nil, fmt.Errorf("instruction %d: offset %d is outside the %d-byte value of map %s", i, off, m.Spec().ValueSize, m.Spec().Name)
				}
				v = base + off
			}
		default:
			i++
			continue
		}
		pair := isa.LoadImm64(ins.Dst, 0, v)
		insns[i], insns[i+1] = pair[0], pair[1]
		i++
	}
	return insns, arrays, nil
}

// checkCalls checks the helper calls of a program that runs unverified
// against the helpers it may call (the verifier checks them otherwise): a
// call to any other is an error naming the instruction and the helper, and
// saying why.
func checkCalls(table *progtype.HelperTable, lp *loader.Program) error {
	for i, ins := range lp.Insns {
		if !ins.IsHelperCall() {
			continue
		}
		if err := table.Check(ins.Imm); err != nil {
			where := fmt.Sprintf("instruction %d", i)
			if i < len(lp.Lines) && lp.Lines[i].Line > 0 {
				where += fmt.Sprintf(" (%s:%d: %s)", lp.Lines[i].File, lp.Lines[i].Line, strings.TrimSpace(lp.Lines[i].Text))
			}
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

// preparingTailCall wraps bpf_tail_call: prog arrays hold *Program, which
// is prepared when a tail call first reaches it, and the engine continues in
// its engine program, whose helpers accept the maps it references. A target
// that cannot be prepared ends the run with its PrepareError, as Linux
// would never have loaded the object with it.
func preparingTailCall(tail helpers.Func) helpers.Func {
	return func(env helpers.Env, a *[5]uint64) (uint64, error) {
		r0, err := tail(env, a)
		if err != nil {
			return r0, err
		}
		st := env.State()
		if p, ok := st.TailCall.(*Program); ok {
			if err := p.Prepare(); err != nil {
				st.TailCall = nil
				return 0, fmt.Errorf("bpf_tail_call: %w", err)
			}
			st.TailCall = p.prog
			st.Maps = p.reach().set
			for _, m := range p.tries {
				st.Section.Enter(m, st.CPU) // as execRun does for the run's program
			}
		}
		return r0, nil
	}
}

// lineTable is a program's BTF line info, compactly: per slot an index
// into the distinct lines (0: none).
type lineTable struct {
	at    []uint32
	lines []loader.Line // lines[0] is the zero Line
}

func compactLines(lines []loader.Line) lineTable {
	t := lineTable{lines: []loader.Line{{}}}
	if len(lines) == 0 {
		return t
	}
	t.at = make([]uint32, len(lines))
	index := map[loader.Line]uint32{}
	for i, l := range lines {
		if l.Line == 0 {
			continue
		}
		n, ok := index[l]
		if !ok {
			n = uint32(len(t.lines))
			t.lines = append(t.lines, l)
			index[l] = n
		}
		t.at[i] = n
	}
	return t
}

// line returns the source line of slot pc, if known.
func (t lineTable) line(pc int) (loader.Line, bool) {
	if pc < 0 || pc >= len(t.at) || t.at[pc] == 0 {
		return loader.Line{}, false
	}
	return t.lines[t.at[pc]], true
}

// annotate wraps err with the source line of the instruction it names,
// when the object has line info.
func (t lineTable) annotate(err error) error {
	idx := -1
	var ie *isa.Error
	var ae *progtype.AccessError
	var ff *engine.Fault
	switch {
	case errors.As(err, &ie):
		idx = ie.Index
	case errors.As(err, &ae):
		idx = ae.Insn
	case errors.As(err, &ff):
		idx = ff.PC
	}
	if l, ok := t.line(idx); ok {
		return fmt.Errorf("%w\n\tat %s:%d: %s", err, l.File, l.Line, strings.TrimSpace(l.Text))
	}
	return err
}

// CPUs returns the number of worker slots of the collection.
func (c *Collection) CPUs() int { return c.cpus }

// Close releases every map. Runs and map operations in progress keep the
// maps until they end (Close does not wait: the last of them frees the
// maps); runs and map operations that start afterwards fail with EBADF.
func (c *Collection) Close() {
	if c.refs.Or(1)&1 != 0 {
		return // closed before
	}
	if c.refs.Load() == 1 {
		c.free()
	}
}

// programNames lists the programs, sorted, for messages.
func (c *Collection) programNames() string {
	var names []string
	for n := range c.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// randState returns the bpf_get_prandom_u32 state a run starts with: 0
// (seeded from the clock on first use) or, with a RandSeed, a state drawn
// from the seed and the run's number (splitmix64's finaliser, so that
// consecutive runs get unrelated sequences).
func (c *Collection) randState() uint64 {
	if c.seed == 0 {
		return 0
	}
	z := c.seed + c.runs.Add(1)*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return (z ^ z>>31) | 1
}

// orderName names a byte order as clang's BPF targets do.
func orderName(bo binary.ByteOrder) string {
	if bo.Uint16([]byte{1, 0}) == 1 {
		return "little-endian BPF (bpfel)"
	}
	return "big-endian BPF (bpfeb)"
}
