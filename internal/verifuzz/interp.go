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
// type referring to the maps of fuzzgen.PtrMaps by index, holding
// contents.
func object(p *fuzzgen.PtrProgram) *loader.Object {
	obj := &loader.Object{License: "GPL"}
	for i, m := range fuzzgen.PtrMaps() {
		ms := &ebpf.MapSpec{
			Name:       mapName(i),
			Type:       ebpf.MapType(m.Type),
			KeySize:    m.KeySize,
			ValueSize:  m.ValueSize,
			MaxEntries: m.MaxEntries,
		}
		for _, e := range p.Maps {
			if e.Map == i {
				ms.Contents = append(ms.Contents, ebpf.MapKV{Key: e.Key, Value: e.Value})
			}
		}
		obj.Maps = append(obj.Maps, ms)
	}
	obj.Programs = []*loader.Program{{
		Name:    "prog",
		Section: sectionOf(p.Type),
		Type:    ebpf.ProgramType(p.Type),
		License: "GPL",
		Insns:   p.Insns,
		Funcs:   progFuncs(p),
	}}
	return obj
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
	for in, pkt := range p.Packets {
		if in > 0 {
			if err := resetWaggle(c, p.Maps); err != nil {
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
		dump, err := dumpWaggle(c)
		if err != nil {
			out[in].Err = err
			continue
		}
		out[in] = Outcome{Ret: ret, Packet: bytes.Clone(opts.DataOut), Maps: dump}
	}
	return out
}

// resetWaggle gives the collection's maps the contents es, as Kernel.reset
// does.
func resetWaggle(c *waggle.Collection, es []fuzzgen.MapEntry) error {
	for i, spec := range fuzzgen.PtrMaps() {
		m := c.Maps[mapName(i)]
		if spec.Type == fuzzgen.ArrayMap {
			zero := make([]byte, spec.ValueSize)
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
		if err := c.Maps[mapName(e.Map)].Put(e.Key, e.Value); err != nil {
			return fmt.Errorf("fill map %d: %w", e.Map, err)
		}
	}
	return nil
}

// dumpWaggle returns the contents of the collection's maps.
func dumpWaggle(c *waggle.Collection) (string, error) {
	var all []entry
	for i := range fuzzgen.PtrMaps() {
		for k, v := range c.Maps[mapName(i)].All() {
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
