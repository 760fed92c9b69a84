package verifuzz

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/loader"
)

// Outcome is what one run of a program on one input gave.
type Outcome struct {
	Ret    uint32 // the low 32 bits of r0, all a test run reports
	Packet []byte // the packet after the run
	Maps   string // the maps' contents after the run (dumpMaps)
	Err    error  // a failed run (in the interpreter, a fault or budget)
}

// Escape reports whether the run ended in an out-of-bounds access caught
// by the checked interpreter.
func (o Outcome) Escape() bool { return errors.Is(o.Err, waggle.ErrMemory) }

func (o Outcome) String() string {
	if o.Err != nil {
		return "error: " + o.Err.Error()
	}
	return fmt.Sprintf("ret %#x, packet % x\n%s", o.Ret, o.Packet, o.Maps)
}

// same reports whether two outcomes are equal.
func same(a, b Outcome) bool {
	return a.Err == nil && b.Err == nil && a.Ret == b.Ret && bytes.Equal(a.Packet, b.Packet) && a.Maps == b.Maps
}

// InterpBudget bounds the instructions of one interpreter run: generated
// loops run at most a few thousand iterations.
const InterpBudget = 1 << 22

// packetSlack is the room beyond the input given to the output packet
// (bpf_xdp_adjust_head may grow it by up to 14 bytes here).
const packetSlack = 256

// Interp runs generated programs in waggle's runtime, interpreter in
// checked mode and without waggle's verifier (the verifier under test has
// judged them), each program in a collection of its own with the maps of
// fuzzgen.PtrMaps.
type Interp struct {
	out []byte
}

// object returns p as waggle's loader would read it: one program of p's
// type and the maps of fuzzgen.PtrMaps it refers to (usedMaps), holding
// their contents, with the program's map indices renumbered to theirs in
// the object. The maps keep their names (mapName of their index in
// PtrMaps). Leaving out the maps p does not use keeps the cost of a
// collection to what the program uses (the LRU hash preallocates a
// thousand elements); no run can touch them.
func object(p *fuzzgen.PtrProgram) *loader.Object {
	obj := &loader.Object{License: "GPL"}
	specs := fuzzgen.PtrMaps()
	used := usedMaps(p)
	at := make([]int32, len(specs))
	for j, i := range used {
		m := specs[i]
		at[i] = int32(j)
		ms := &ebpf.MapSpec{
			Name:       mapName(i),
			Type:       ebpf.MapType(m.Type),
			KeySize:    m.KeySize,
			ValueSize:  m.ValueSize,
			MaxEntries: m.MaxEntries,
			Flags:      m.Flags,
		}
		for _, e := range p.Maps {
			if e.Map == i {
				ms.Contents = append(ms.Contents, ebpf.MapKV{Key: e.Key, Value: waggleValue(m, e.Value)})
			}
		}
		obj.Maps = append(obj.Maps, ms)
	}
	insns := slices.Clone(p.Insns)
	for k, ins := range insns {
		if ins.IsLoadImm64() && ins.Src == isa.PseudoMapIdx && ins.Imm >= 0 && int(ins.Imm) < len(specs) {
			insns[k].Imm = at[ins.Imm]
		}
	}
	obj.Programs = []*loader.Program{{
		Name:    "prog",
		Section: sectionOf(p.Type),
		Type:    ebpf.ProgramType(p.Type),
		License: "GPL",
		Insns:   insns,
		Funcs:   progFuncs(p),
	}}
	return obj
}

// waggleValue returns v, a value of a map of spec m, as waggle's Go side
// takes it: for a per-CPU map, every CPU's value (one CPU, runs use
// CollectionOptions.CPUs 1), padded to 8 bytes.
func waggleValue(m fuzzgen.MapSpec, v []byte) []byte {
	if !m.Type.PerCPU() {
		return v
	}
	out := make([]byte, (len(v)+7)&^7)
	copy(out, v)
	return out
}

func mapName(i int) string { return fmt.Sprintf("m%d", i) }

func sectionOf(t fuzzgen.ProgType) string {
	switch t {
	case fuzzgen.XDP:
		return "xdp"
	case fuzzgen.SchedCLS:
		return "tc"
	}
	return "socket"
}

// Run runs p on each of its inputs in the checked interpreter, on maps
// reset to p.Maps before each run. A program waggle cannot prepare gives
// every input that error.
func (r *Interp) Run(p *fuzzgen.PtrProgram) []Outcome {
	// Unverified: what runs is what the verifier under test accepted, not
	// what waggle's own verifier would let run.
	return r.RunOn(p, &waggle.CollectionOptions{CPUs: 1, Budget: InterpBudget, RandSeed: 1, Unverified: true})
}

// RunOn is Run in a collection loaded with opts.
func (r *Interp) RunOn(p *fuzzgen.PtrProgram, opts *waggle.CollectionOptions) []Outcome {
	c, err := waggle.NewCollectionFromObject(object(p), opts)
	if err != nil {
		out := make([]Outcome, len(p.Packets))
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	defer c.Close()
	return runInputs(c, p, &r.out)
}

// runInputs runs c's program on each of p's inputs, with c's maps reset to
// p.Maps before each run but the first (c was loaded with them), reusing
// *buf for the output packet.
func runInputs(c *waggle.Collection, p *fuzzgen.PtrProgram, buf *[]byte) []Outcome {
	out := make([]Outcome, len(p.Packets))
	used := usedMaps(p)
	for in, pkt := range p.Packets {
		if in > 0 {
			if err := resetWaggle(c, used, p.Maps); err != nil {
				out[in].Err = err
				continue
			}
		}
		if n := len(pkt) + packetSlack; len(*buf) < n {
			*buf = make([]byte, n)
		}
		opts := &waggle.RunOptions{Data: pkt, DataOut: (*buf)[:len(pkt)+packetSlack]}
		ret, err := c.Programs["prog"].Run(opts)
		if err != nil {
			out[in].Err = err
			continue
		}
		dump, err := dumpWaggle(c, used)
		if err != nil {
			out[in].Err = err
			continue
		}
		out[in] = Outcome{Ret: ret, Packet: bytes.Clone(opts.DataOut), Maps: dump}
	}
	return out
}

// resetWaggle gives the collection's maps (those of used) the contents
// es, as Kernel.reset does.
func resetWaggle(c *waggle.Collection, used []int, es []fuzzgen.MapEntry) error {
	specs := fuzzgen.PtrMaps()
	for _, i := range used {
		spec := specs[i]
		m := c.Maps[mapName(i)]
		if spec.Type.IsArray() {
			zero := waggleValue(spec, make([]byte, spec.ValueSize))
			for j := range spec.MaxEntries {
				if err := m.Put(j, zero); err != nil {
					return fmt.Errorf("reset map %d: %w", i, err)
				}
			}
			continue
		}
		var keys [][]byte
		for k := range m.All() {
			keys = append(keys, k)
		}
		for _, k := range keys {
			if err := m.Delete(k); err != nil {
				return fmt.Errorf("reset map %d: %w", i, err)
			}
		}
	}
	for _, e := range es {
		if !slices.Contains(used, e.Map) {
			continue
		}
		if err := c.Maps[mapName(e.Map)].Put(e.Key, waggleValue(specs[e.Map], e.Value)); err != nil {
			return fmt.Errorf("fill map %d: %w", e.Map, err)
		}
	}
	return nil
}

// dumpWaggle returns the contents of the collection's maps (those of
// used); of a per-CPU map, the value of CPU 0, the one the runs use.
func dumpWaggle(c *waggle.Collection, used []int) (string, error) {
	var all []entry
	specs := fuzzgen.PtrMaps()
	for _, i := range used {
		spec := specs[i]
		for k, v := range c.Maps[mapName(i)].All() {
			if spec.Type.PerCPU() {
				v = v[:spec.ValueSize]
			}
			all = append(all, entry{i, k, v})
		}
	}
	return formatEntries(all), nil
}

type entry struct {
	m    int
	k, v []byte
}

// formatEntries returns the entries sorted by map and key, one a line.
func formatEntries(es []entry) string {
	slices.SortFunc(es, func(a, b entry) int {
		if a.m != b.m {
			return a.m - b.m
		}
		return bytes.Compare(a.k, b.k)
	})
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%s[%s] = %s\n", mapName(e.m), hex.EncodeToString(e.k), hex.EncodeToString(e.v))
	}
	return b.String()
}

// usedMaps returns the indices into fuzzgen.PtrMaps of the maps p refers
// to, in order. Only they take part in runs and their comparison: a run
// cannot change the others.
func usedMaps(p *fuzzgen.PtrProgram) []int {
	n := len(fuzzgen.PtrMaps())
	var used []int
	for _, ins := range p.Insns {
		if ins.IsLoadImm64() && ins.Src == isa.PseudoMapIdx && ins.Imm >= 0 && int(ins.Imm) < n && !slices.Contains(used, int(ins.Imm)) {
			used = append(used, int(ins.Imm))
		}
	}
	slices.Sort(used)
	return used
}

// usesMap reports whether p refers to a map of fuzzgen.PtrMaps whose type
// is.
func usesMap(p *fuzzgen.PtrProgram, is func(fuzzgen.MapType) bool) bool {
	specs := fuzzgen.PtrMaps()
	for _, ins := range p.Insns {
		if ins.IsLoadImm64() && ins.Src == isa.PseudoMapIdx && ins.Imm >= 0 && int(ins.Imm) < len(specs) && is(specs[ins.Imm].Type) {
			return true
		}
	}
	return false
}
