//go:build linux

package verifuzz

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
)

// Kernel loads generated programs into Linux and test-runs them, with one
// set of the maps of fuzzgen.PtrMaps reset before every run. Use one per
// goroutine.
type Kernel struct {
	maps []*ebpf.Map
	out  []byte
	// cpus is the number of possible CPUs, the per-CPU values of a
	// per-CPU map; cpu is the CPU the last run ran on, whose values the
	// dump shows; pins counts the pinned runs, which take turns on the
	// CPUs the thread may use.
	cpus, cpu, pins int

	// Time spent loading (verifying) and running, for throughput figures.
	LoadTime, RunTime time.Duration
}

// NewKernel creates the maps. It fails with an error wrapping
// kernel.ErrNotSupported when this process cannot load programs.
func NewKernel() (*Kernel, error) {
	if err := kernel.Supported(); err != nil {
		return nil, err
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("possible CPUs: %w", err)
	}
	k := &Kernel{cpus: cpus}
	for i, m := range fuzzgen.PtrMaps() {
		em, err := ebpf.NewMap(&ebpf.MapSpec{
			Name:       mapName(i),
			Type:       ebpf.MapType(m.Type),
			KeySize:    m.KeySize,
			ValueSize:  m.ValueSize,
			MaxEntries: m.MaxEntries,
			Flags:      m.Flags,
		})
		if err != nil {
			k.Close()
			return nil, fmt.Errorf("create map %d: %w", i, err)
		}
		k.maps = append(k.maps, em)
	}
	return k, nil
}

// Close releases the maps.
func (k *Kernel) Close() {
	for _, m := range k.maps {
		m.Close()
	}
	k.maps = nil
}

// Load loads p with its map references turned into k's map fds. A
// verifier rejection is a *kernel.VerifierError.
func (k *Kernel) Load(p *fuzzgen.PtrProgram) (*kernel.Program, error) {
	insns := append([]isa.Instruction(nil), p.Insns...)
	for i, ins := range insns {
		if ins.IsLoadImm64() && ins.Src == isa.PseudoMapIdx {
			if ins.Imm < 0 || int(ins.Imm) >= len(k.maps) {
				return nil, fmt.Errorf("slot %d: map index %d out of range", i, ins.Imm)
			}
			insns[i].Src, insns[i].Imm = isa.PseudoMapFD, int32(k.maps[ins.Imm].FD())
		}
	}
	opts := kernel.LoadOptions{Type: kernel.ProgType(p.Type)}
	if funcs := progFuncs(p); funcs != nil {
		b, recs, err := funcInfo(funcs)
		if err != nil {
			return nil, err
		}
		h, err := btf.NewHandle(b)
		if err != nil {
			return nil, fmt.Errorf("load BTF: %w", err)
		}
		defer h.Close()
		opts.BTF = &kernel.ProgramBTF{FD: h.FD(), FuncInfo: recs, FuncInfoRecSize: btf.FuncInfoSize}
	}
	t0 := time.Now()
	prog, err := kernel.Load(insns, opts)
	k.LoadTime += time.Since(t0)
	return prog, err
}

// Run resets the maps to p.Maps and test-runs prog (p, loaded by Load) on
// input in.
func (k *Kernel) Run(prog *kernel.Program, p *fuzzgen.PtrProgram, in int) Outcome {
	t0 := time.Now()
	defer func() { k.RunTime += time.Since(t0) }()
	used := usedMaps(p)
	if err := k.reset(used, p.Maps); err != nil {
		return Outcome{Err: err}
	}
	pkt := p.Packets[in]
	if n := len(pkt) + packetSlack; len(k.out) < n {
		k.out = make([]byte, n)
	}
	run := func() (kernel.RunResult, error) {
		return prog.Run(&kernel.RunOptions{Data: pkt, DataOut: k.out[:len(pkt)+packetSlack]})
	}
	var (
		res kernel.RunResult
		err error
	)
	if usesPerCPU(p) {
		res, err = k.runPinned(run)
	} else {
		k.cpu = 0 // every CPU's values are the ones reset wrote
		res, err = run()
	}
	if err != nil {
		return Outcome{Err: err}
	}
	dump, err := k.dump(used)
	if err != nil {
		return Outcome{Err: err}
	}
	return Outcome{Ret: res.Retval, Packet: bytes.Clone(res.Data), Maps: dump}
}

// runPinned calls run on this thread with the thread held to one CPU, and
// records the CPU in k.cpu. BPF_PROG_TEST_RUN runs a program on the
// calling thread's CPU (BPF_F_TEST_RUN_ON_CPU is for raw tracepoints
// only), and the program's per-CPU map operations use that CPU's values:
// the dump shows them, for comparison with waggle's CPU 0. Successive
// runs take turns on the CPUs the thread may use, so that the kernel's
// side covers every CPU's slots.
func (k *Kernel) runPinned(run func() (kernel.RunResult, error)) (kernel.RunResult, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return kernel.RunResult{}, fmt.Errorf("pin the test run: %w", err)
	}
	var allowed []int
	for c := range k.cpus {
		if old.IsSet(c) {
			allowed = append(allowed, c)
		}
	}
	if len(allowed) == 0 {
		return kernel.RunResult{}, fmt.Errorf("pin the test run: none of the %d possible CPUs is allowed", k.cpus)
	}
	cpu := allowed[k.pins%len(allowed)]
	k.pins++
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return kernel.RunResult{}, fmt.Errorf("pin the test run to CPU %d: %w", cpu, err)
	}
	res, err := run()
	if rerr := unix.SchedSetaffinity(0, &old); rerr != nil && err == nil {
		err = fmt.Errorf("unpin the test run: %w", rerr)
	}
	k.cpu = cpu
	return res, err
}

// MayEvict reports whether Linux's LRU hash of fuzzgen.PtrMaps may evict
// in p's runs although it is far from full, which waggle's does not: p
// uses it and this machine has more possible CPUs than
// fuzzgen.LRUMaxCPUs. Such runs are compared for failure only.
func (k *Kernel) MayEvict(p *fuzzgen.PtrProgram) bool {
	return k.cpus > fuzzgen.LRUMaxCPUs && usesMap(p, func(t fuzzgen.MapType) bool { return t == fuzzgen.LRUHashMap })
}

// usesPerCPU reports whether p refers to a per-CPU map.
func usesPerCPU(p *fuzzgen.PtrProgram) bool { return usesMap(p, fuzzgen.MapType.PerCPU) }

// value returns v, a value of a map of spec m, as the kernel takes it: for
// a per-CPU map, the same value for every possible CPU.
func (k *Kernel) value(m fuzzgen.MapSpec, v []byte) any {
	if !m.Type.PerCPU() {
		return v
	}
	all := make([][]byte, k.cpus)
	for c := range all {
		all[c] = v
	}
	return all
}

// reset gives the maps of used (indices into fuzzgen.PtrMaps; the
// program's, as the others do not take part) the contents es: arrays get every element written,
// hashes and tries are emptied first. A per-CPU map gets the same values
// on every CPU.
func (k *Kernel) reset(used []int, es []fuzzgen.MapEntry) error {
	specs := fuzzgen.PtrMaps()
	for _, i := range used {
		spec, m := specs[i], k.maps[i]
		if spec.Type.IsArray() {
			zero := k.value(spec, make([]byte, spec.ValueSize))
			key := make([]byte, 4)
			for j := range spec.MaxEntries {
				key[0], key[1], key[2], key[3] = byte(j), byte(j>>8), byte(j>>16), byte(j>>24)
				if err := m.Update(key, zero, ebpf.UpdateAny); err != nil {
					return fmt.Errorf("reset map %d: %w", i, err)
				}
			}
			continue
		}
		for {
			key, err := m.NextKeyBytes(nil)
			if err != nil {
				return fmt.Errorf("reset map %d: %w", i, err)
			}
			if key == nil {
				break
			}
			if err := m.Delete(key); err != nil {
				return fmt.Errorf("reset map %d: %w", i, err)
			}
		}
	}
	for _, e := range es {
		if !slices.Contains(used, e.Map) {
			continue
		}
		if err := k.maps[e.Map].Update(e.Key, k.value(specs[e.Map], e.Value), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("fill map %d: %w", e.Map, err)
		}
	}
	return nil
}

// dump returns the contents of the maps of used in the form of dumpWaggle; of a per-CPU
// map, the values of the CPU the last run ran on (k.cpu).
func (k *Kernel) dump(used []int) (string, error) {
	var all []entry
	specs := fuzzgen.PtrMaps()
	for _, i := range used {
		m := k.maps[i]
		stride := int(specs[i].ValueSize+7) &^ 7
		var key any // untyped nil: the first key
		for n := 0; ; n++ {
			next, err := m.NextKeyBytes(key)
			if err != nil {
				return "", fmt.Errorf("map %d: %w", i, err)
			}
			if next == nil {
				break
			}
			v, err := m.LookupBytes(next)
			if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return "", fmt.Errorf("map %d: %w", i, err)
			}
			if v != nil && specs[i].Type.PerCPU() {
				if len(v) != stride*k.cpus {
					return "", fmt.Errorf("map %d: a per-CPU value of %d bytes, want %d", i, len(v), stride*k.cpus)
				}
				v = v[stride*k.cpu : stride*k.cpu+int(specs[i].ValueSize)]
			}
			if v != nil {
				all = append(all, entry{i, next, v})
			}
			key = next
			if n > 1000 {
				return "", fmt.Errorf("map %d: iteration does not end", i)
			}
		}
	}
	return formatEntries(all), nil
}
