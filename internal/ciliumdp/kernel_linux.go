//go:build linux

package ciliumdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/kernel"
)

// KernelObject is an object loaded into the kernel program by program, as
// Cilium's loader loads it: maps unpinned (each object its own), programs
// of untyped sections of the object's type, tail calls put in their prog
// arrays. Every program is verified on its own, so that each has its own
// verdict and cost.
type KernelObject struct {
	// Coll holds the maps.
	Coll *ebpf.Collection
	// Progs are the programs the kernel accepted.
	Progs map[string]*ebpf.Program
	// Errs has every program: nil, or why the kernel refused it.
	Errs map[string]error
	// Loads are what the kernel said of each program it verified and
	// what the verification cost (none for a program refused before the
	// verifier ran: a type or helper this kernel lacks).
	Loads map[string]KernelLoad
	// Slots are the prog arrays' slots: prog array, slot, program.
	Slots map[string]map[uint32]string

	spec  *ebpf.CollectionSpec         // the maps' specs, for Reload
	specs map[string]*ebpf.ProgramSpec // the programs' specs, typed
}

// Reload verifies the program name again with the object's maps, as
// LoadKernel did, and releases it: what a benchmark of the kernel's
// verifier repeats. The error is the kernel's refusal.
func (k *KernelObject) Reload(name string) (KernelLoad, error) {
	ps := k.specs[name]
	if ps == nil {
		return KernelLoad{}, fmt.Errorf("no program %q", name)
	}
	p, load, err := loadProgram(ps, k.Coll.Maps)
	if errors.Is(err, errNeedsLibrary) {
		p, load, err = loadWithLibrary(k.spec, name, ps, k.Coll.Maps)
	}
	if p != nil {
		p.Close()
	}
	return load, err
}

// Close releases the programs and maps.
func (k *KernelObject) Close() {
	for _, p := range k.Progs {
		p.Close()
	}
	k.Coll.Close()
}

// LoadKernel loads the object at path into the kernel as Cilium's loader
// does, each program on its own with the verifier's statistics (log level
// 4). def is the type of programs whose section names none, sections the
// types of sections libbpf does not know (SectionTypes). A program the
// kernel refuses is in Errs, not an error; the error is for an object
// whose maps or prog arrays do not load. It needs root.
func LoadKernel(path string, def ebpf.ProgramType, sections map[string]Typed) (*KernelObject, error) {
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return nil, err
	}
	k := &KernelObject{Progs: map[string]*ebpf.Program{}, Errs: map[string]error{}, Loads: map[string]KernelLoad{}, Slots: map[string]map[uint32]string{}}
	// The entry programs' attach type, for the programs they tail-call:
	// since Linux 6.17 a tail call needs both type and attach type to
	// match.
	attach := ebpf.AttachNone
	for _, ps := range spec.Programs {
		if ps.Type == def && ps.AttachType != ebpf.AttachNone {
			attach = ps.AttachType
		}
	}
	byID := map[uint32]string{}
	defs := map[string]elfMap{}
	for name, ms := range spec.Maps {
		ms.Pinning = ebpf.PinNone
		if ms.Extra != nil {
			// struct bpf_elf_map (iproute2's, Cilium's until 2025): id,
			// pinning, inner_id, inner_idx follow the five common
			// fields; cilium/ebpf wants them drained.
			extra := make([]byte, ms.Extra.Size())
			if _, err := ms.Extra.ReadAt(extra, 0); err != nil && len(extra) > 0 {
				return nil, fmt.Errorf("map %s: %w", name, err)
			}
			ms.Extra = nil
			var def elfMap
			for i, f := range []*uint32{&def.id, &def.pinning, &def.innerID, &def.innerIdx} {
				if len(extra) >= 4*i+4 {
					*f = binary.LittleEndian.Uint32(extra[4*i:])
				}
			}
			if def.id != 0 {
				byID[def.id] = name
			}
			defs[name] = def
		}
		if ms.Type == ebpf.ProgramArray {
			for _, kv := range ms.Contents {
				key, ok1 := kv.Key.(uint32)
				prog, ok2 := kv.Value.(string)
				if ok1 && ok2 {
					if k.Slots[name] == nil {
						k.Slots[name] = map[uint32]string{}
					}
					k.Slots[name][key] = prog
				}
			}
			ms.Contents = nil
		}
	}
	// iproute2's maps of maps: the inner map is the map whose id is
	// inner_id, and a map with an id and inner_idx goes in that slot of
	// the maps of maps whose inner_id is its id (bpf_maps_attach_all).
	var inner [][3]string // outer, inner, slot
	for name, d := range defs {
		ms := spec.Maps[name]
		if (ms.Type == ebpf.ArrayOfMaps || ms.Type == ebpf.HashOfMaps) && ms.InnerMap == nil && d.innerID != 0 {
			if in, ok := byID[d.innerID]; ok {
				ms.InnerMap = spec.Maps[in].Copy()
				ms.InnerMap.Contents = nil
			}
		}
		if d.id != 0 && d.innerID == 0 && d.innerIdx != ^uint32(0) {
			for outer, od := range defs {
				if od.innerID == d.id {
					inner = append(inner, [3]string{outer, name, strconv.FormatUint(uint64(d.innerIdx), 10)})
				}
			}
		}
	}
	for name, ps := range spec.Programs {
		if tt, ok := sections[ps.SectionName]; ok && ps.Type == ebpf.UnspecifiedProgram {
			ps.Type, ps.AttachType = tt.Type, tt.Attach
		}
		if ps.Type == ebpf.UnspecifiedProgram {
			ps.Type, ps.AttachType = def, attach
		}
		if id, key, ok := tailCallSection(ps.SectionName); ok {
			if m, ok := byID[id]; ok {
				if k.Slots[m] == nil {
					k.Slots[m] = map[uint32]string{}
				}
				k.Slots[m][key] = name
			}
		}
	}
	if err := k.load(spec, inner); err != nil {
		return nil, err
	}
	return k, nil
}

// LoadSpec loads the programs of spec into the kernel each on its own, as
// LoadKernel does, with spec's types as they are: the maps first (prog
// arrays filled from their Contents, program names by slot, once the
// programs loaded), then every program with the verifier's statistics.
// spec is modified (its programs move to the KernelObject).
func LoadSpec(spec *ebpf.CollectionSpec) (*KernelObject, error) {
	k := &KernelObject{Progs: map[string]*ebpf.Program{}, Errs: map[string]error{}, Loads: map[string]KernelLoad{}, Slots: map[string]map[uint32]string{}}
	for name, ms := range spec.Maps {
		if ms.Type != ebpf.ProgramArray {
			continue
		}
		for _, kv := range ms.Contents {
			key, ok1 := kv.Key.(uint32)
			prog, ok2 := kv.Value.(string)
			if ok1 && ok2 {
				if k.Slots[name] == nil {
					k.Slots[name] = map[uint32]string{}
				}
				k.Slots[name][key] = prog
			}
		}
		ms.Contents = nil
	}
	if err := k.load(spec, nil); err != nil {
		return nil, err
	}
	return k, nil
}

// load makes the maps of spec, loads its programs each on its own, puts
// the maps inner (outer, inner, slot) in their maps of maps and the
// programs in their prog arrays' Slots.
func (k *KernelObject) load(spec *ebpf.CollectionSpec, inner [][3]string) error {
	progs := spec.Programs
	spec.Programs = nil
	k.spec, k.specs = spec, progs
	var err error
	k.Coll, err = ebpf.NewCollection(spec)
	if err != nil {
		return fmt.Errorf("maps: %w", err)
	}
	for name, ps := range progs {
		// The kernel is asked even when a probe says it lacks a type or
		// helper the program needs, so that the refusal is its own.
		unsupported := kernel.ProgramSpecSupported(ps)
		p, load, err := loadProgram(ps, k.Coll.Maps)
		if errors.Is(err, errNeedsLibrary) {
			p, load, err = loadWithLibrary(spec, name, ps, k.Coll.Maps)
		}
		if err != nil && unsupported != nil {
			err = fmt.Errorf("not supported by this kernel (%v): %w", unsupported, err)
		}
		k.Loads[name] = load
		k.Errs[name] = err
		if err == nil {
			k.Progs[name] = p
		}
	}
	for _, b := range inner {
		key, _ := strconv.ParseUint(b[2], 10, 32)
		om, im := k.Coll.Maps[b[0]], k.Coll.Maps[b[1]]
		if om == nil || im == nil {
			continue
		}
		if err := om.Put(marshalKey(uint32(key), om.KeySize()), im); err != nil {
			k.Close()
			return fmt.Errorf("map of maps %s slot %d (%s): %w", b[0], key, b[1], err)
		}
	}
	for m, slots := range k.Slots {
		km := k.Coll.Maps[m]
		for key, prog := range slots {
			if p := k.Progs[prog]; p != nil && km != nil {
				if err := km.Put(key, p); err != nil {
					k.Close()
					return fmt.Errorf("prog array %s slot %d (%s): %w", m, key, prog, err)
				}
			}
		}
	}
	return nil
}

// errNeedsLibrary says that a program needs cilium/ebpf's loader.
var errNeedsLibrary = errors.New("needs cilium/ebpf's loader")

// statsLogSize is the log buffer of a load at BPF_LOG_STATS: the
// verifier's message and three lines of statistics fit; kernel.Load grows
// it if not.
const statsLogSize = 16 << 10

// loadProgram loads one program with BPF_PROG_LOAD through waggle's
// kernel package, so that the cost measured is the system call's alone:
// the instructions as cilium/ebpf marshals them, its maps' descriptors in
// the map loads, the BTF of the program's functions and lines. A program
// that needs more of cilium/ebpf (CO-RE, kfuncs, ksyms, kconfig) gives
// errNeedsLibrary, as does one with an attach target (AttachTo).
func loadProgram(ps *ebpf.ProgramSpec, maps map[string]*ebpf.Map) (*ebpf.Program, KernelLoad, error) {
	var load KernelLoad
	if ps.AttachTo != "" || ps.AttachTarget != nil {
		// The attach target's BTF id is the kernel's (iterators,
		// tracing): cilium/ebpf finds it.
		return nil, load, errNeedsLibrary
	}
	insns := make(asm.Instructions, len(ps.Instructions))
	copy(insns, ps.Instructions)
	for i := range insns {
		ins := &insns[i]
		if btf.CORERelocationMetadata(ins) != nil || ins.IsKfuncCall() {
			return nil, load, errNeedsLibrary
		}
		if ins.IsLoadFromMap() && ins.Reference() != "" {
			m := maps[ins.Reference()]
			if m == nil {
				return nil, load, errNeedsLibrary
			}
			if err := ins.AssociateMap(m); err != nil {
				return nil, load, fmt.Errorf("instruction %d: %w", i, err)
			}
		}
	}
	var b btf.Builder
	fi, li, err := btf.MarshalExtInfos(insns, &b)
	if err != nil {
		return nil, load, fmt.Errorf("marshal ext_infos: %w", err)
	}
	opts := kernel.LoadOptions{
		Type:               kernel.ProgType(ps.Type),
		License:            ps.License,
		Name:               objName(ps.Name),
		ExpectedAttachType: uint32(ps.AttachType),
		Flags:              ps.Flags,
		LogLevel:           4,
		LogSize:            statsLogSize,
	}
	if !b.Empty() {
		h, err := btf.NewHandle(&b)
		if err != nil {
			return nil, load, fmt.Errorf("load BTF: %w", err)
		}
		defer h.Close()
		opts.BTF = &kernel.ProgramBTF{FD: h.FD(), FuncInfo: fi, FuncInfoRecSize: btf.FuncInfoSize, LineInfo: li, LineInfoRecSize: btf.LineInfoSize}
	}
	bo := ps.ByteOrder
	if bo == nil {
		bo = binary.LittleEndian
	}
	var code bytes.Buffer
	if err := insns.Marshal(&code, bo); err != nil {
		return nil, load, err
	}
	var cost kernel.LoadCost
	opts.Cost = &cost
	kp, err := kernel.LoadBytes(code.Bytes(), opts)
	load.CPU, load.Wall, load.Calls = cost.CPU, cost.Wall, cost.Calls
	if err != nil {
		var ve *kernel.VerifierError
		if errors.As(err, &ve) {
			load.Log = ve.Log
			parseStats(&load)
		}
		return nil, load, err
	}
	defer kp.Close()
	load.Log = kp.VerifierLog()
	parseStats(&load)
	fd, err := unix.FcntlInt(uintptr(kp.FD()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, load, fmt.Errorf("dup program fd: %w", err)
	}
	p, err := ebpf.NewProgramFromFD(fd)
	if err != nil {
		return nil, load, err
	}
	return p, load, nil
}

// objName is name as the kernel takes a program name (bpf_obj_name_cpy):
// at most 15 bytes of letters, digits, '_' and '.'.
func objName(name string) string {
	var b strings.Builder
	for _, c := range []byte(name) {
		if b.Len() == unix.BPF_OBJ_NAME_LEN-1 {
			break
		}
		if c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// loadWithLibrary loads one program through cilium/ebpf: the cost then
// includes the library's work (KernelLoad.Library).
func loadWithLibrary(spec *ebpf.CollectionSpec, name string, ps *ebpf.ProgramSpec, maps map[string]*ebpf.Map) (*ebpf.Program, KernelLoad, error) {
	load := KernelLoad{Library: true}
	one := &ebpf.CollectionSpec{Maps: spec.Maps, Programs: map[string]*ebpf.ProgramSpec{name: ps}, Types: spec.Types, ByteOrder: spec.ByteOrder}
	runtime.LockOSThread()
	var c0, c1 unix.Timespec
	cpuErr := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &c0)
	w0 := time.Now()
	c, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{
		MapReplacements: maps,
		Programs:        ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats, LogSizeStart: statsLogSize},
	})
	load.Wall = time.Since(w0)
	if cpuErr == nil && unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &c1) == nil {
		load.CPU = time.Duration(c1.Nano() - c0.Nano())
	}
	runtime.UnlockOSThread()
	load.Calls = 1
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			load.Log = strings.Join(ve.Log, "\n")
			parseStats(&load)
		}
		return nil, load, err
	}
	p := c.Programs[name]
	delete(c.Programs, name)
	c.Close()
	load.Log = p.VerifierLog
	parseStats(&load)
	return p, load, nil
}

// tailCallSection parses iproute2's "ID/KEY" section names (sscanf "%i/%i").
func tailCallSection(s string) (id, key uint32, ok bool) {
	a, b, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	i, err1 := strconv.ParseUint(a, 0, 32)
	k, err2 := strconv.ParseUint(b, 0, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uint32(i), uint32(k), true
}

// elfMap is the part of iproute2's struct bpf_elf_map past the five
// fields every legacy definition has.
type elfMap struct{ id, pinning, innerID, innerIdx uint32 }

// marshalKey is key as the bytes of a map key of size n.
func marshalKey(key uint32, n uint32) []byte {
	b := make([]byte, max(n, 4))
	binary.NativeEndian.PutUint32(b, key)
	return b[:n]
}

// KernelPrograms is Programs with the running kernel's verdict on each:
// every object loaded with LoadKernel, each program verified on its own.
// A program of an object whose maps the kernel refuses is rejected with
// that error. It needs root (kernel.Supported).
func KernelPrograms(objs []Built) ([]Program, error) {
	if err := kernel.Supported(); err != nil {
		return nil, err
	}
	var out []Program
	for _, o := range objs {
		progs, err := Programs([]Built{o})
		if err != nil {
			return nil, err
		}
		k, kerr := LoadKernel(o.Path, DefaultType(o.Name), SectionTypes(o.Name))
		for i := range progs {
			p := &progs[i]
			p.Checked = true
			switch {
			case kerr != nil:
				p.Kernel = Verdict{Error: "the kernel refuses the object: " + firstLine(kerr.Error())}
			default:
				err, ok := k.Errs[p.Name]
				if !ok {
					err = fmt.Errorf("program %s: not in the kernel's collection", p.Name)
				}
				p.Load = k.Loads[p.Name]
				p.Kernel = verdictOf(err, p.Load)
				p.kernelErr = err
			}
		}
		if kerr == nil {
			k.Close()
		}
		out = append(out, progs...)
	}
	return out, nil
}
