package loader

import (
	"bytes"
	"debug/elf"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

// checkNoCrash loads b and fails if the loader crashed (a panic it caught
// is reported as an internal error) or returned an Object that breaks the
// loader's promises.
func checkNoCrash(t *testing.T, b []byte) {
	t.Helper()
	obj, err := Load(bytes.NewReader(b), Options{})
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "internal error") || strings.Contains(msg, "panicked") {
			t.Fatalf("crash turned into an error: %v", err)
		}
		return
	}
	for _, p := range obj.Programs {
		if p.Err != nil {
			if msg := p.Err.Error(); strings.Contains(msg, "internal error") || strings.Contains(msg, "panicked") {
				t.Fatalf("%s: crash turned into an error: %v", p.Name, p.Err)
			}
			continue
		}
		if len(p.Lines) != len(p.Insns) || len(p.Funcs) == 0 {
			t.Fatalf("%s: %d lines, %d slots, %d funcs", p.Name, len(p.Lines), len(p.Insns), len(p.Funcs))
		}
		for pc := 0; pc < len(p.Insns); pc++ {
			ins := p.Insns[pc]
			if !ins.IsLoadImm64() {
				continue
			}
			switch ins.Src {
			case isa.PseudoMapIdx, isa.PseudoMapIdxValue:
				if ins.Imm < 0 || int(ins.Imm) >= len(obj.Maps) {
					t.Fatalf("%s: slot %d: map index %d of %d", p.Name, pc, ins.Imm, len(obj.Maps))
				}
			}
			pc++
		}
	}
	for _, bnd := range obj.Bindings {
		if bnd.Map < 0 || bnd.Map >= len(obj.Maps) || bnd.Program >= len(obj.Programs) || bnd.Inner >= len(obj.Maps) {
			t.Fatalf("binding %+v out of range", bnd)
		}
	}
}

// seeds are the test objects and their RELA forms.
func seeds(tb testing.TB) [][]byte {
	var out [][]byte
	for _, path := range objects(tb) {
		b := mustRead(tb, path)
		out = append(out, b, toRELA(tb, b, nil))
	}
	return out
}

// FuzzLoad feeds mutated test objects to Load: it must return an error or a
// sound Object, never panic. cilium/ebpf's own panics, if any, come back as
// errors saying so.
func FuzzLoad(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b)
		f.Add(b[:len(b)/3])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkNoCrash(t, b)
	})
}

// TestLoad_mutations runs the kind of damage FuzzLoad finds on every test
// object deterministically: truncations, and random bytes written over the
// parts a loader reads (section and symbol tables, relocations, map
// definitions, instructions).
func TestLoad_mutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 200
	if testing.Short() {
		n = 20
	}
	for _, b := range seeds(t) {
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		// Regions worth damaging: every section's bytes and the section
		// header table.
		type region struct{ off, size uint64 }
		var regions []region
		for _, s := range f.Sections {
			if s.Type != elf.SHT_NOBITS && s.Size > 0 && s.Offset+s.Size <= uint64(len(b)) {
				regions = append(regions, region{s.Offset, s.Size})
			}
		}
		shoff := f.ByteOrder.Uint64(b[0x28:])
		regions = append(regions, region{shoff, uint64(len(f.Sections)) * 64})
		for cut := 0; cut < len(b); cut += max(1, len(b)/n) {
			checkNoCrash(t, b[:cut])
		}
		for range n {
			m := slices.Clone(b)
			r := regions[rng.IntN(len(regions))]
			for range 1 + rng.IntN(4) {
				at := r.off + rng.Uint64N(r.size)
				if at < uint64(len(m)) {
					m[at] = byte(rng.Uint32())
				}
			}
			checkNoCrash(t, m)
		}
	}
}
