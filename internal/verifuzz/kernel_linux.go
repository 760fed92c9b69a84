//go:build linux

package verifuzz

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

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

	// Time spent loading (verifying) and running, for throughput figures.
	LoadTime, RunTime time.Duration
}

// NewKernel creates the maps. It fails with an error wrapping
// kernel.ErrNotSupported when this process cannot load programs.
func NewKernel() (*Kernel, error) {
	if err := kernel.Supported(); err != nil {
		return nil, err
	}
	k := &Kernel{}
	for i, m := range fuzzgen.PtrMaps() {
		em, err := ebpf.NewMap(&ebpf.MapSpec{
			Name:       mapName(i),
			Type:       ebpf.MapType(m.Type),
			KeySize:    m.KeySize,
			ValueSize:  m.ValueSize,
			MaxEntries: m.MaxEntries,
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
	if err := k.reset(p.Maps); err != nil {
		return Outcome{Err: err}
	}
	pkt := p.Packets[in]
	if n := len(pkt) + packetSlack; len(k.out) < n {
		k.out = make([]byte, n)
	}
	res, err := prog.Run(&kernel.RunOptions{Data: pkt, DataOut: k.out[:len(pkt)+packetSlack]})
	if err != nil {
		return Outcome{Err: err}
	}
	dump, err := k.dump()
	if err != nil {
		return Outcome{Err: err}
	}
	return Outcome{Ret: res.Retval, Packet: bytes.Clone(res.Data), Maps: dump}
}

// reset gives the maps the contents es: arrays get every element written,
// hashes are emptied first.
func (k *Kernel) reset(es []fuzzgen.MapEntry) error {
	for i, spec := range fuzzgen.PtrMaps() {
		m := k.maps[i]
		if spec.Type == fuzzgen.ArrayMap {
			zero := make([]byte, spec.ValueSize)
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
		if err := k.maps[e.Map].Update(e.Key, e.Value, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("fill map %d: %w", e.Map, err)
		}
	}
	return nil
}

// dump returns the maps' contents in the form of dumpWaggle.
func (k *Kernel) dump() (string, error) {
	var all []entry
	for i, m := range k.maps {
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
