package waggle_test

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
)

// TestArrayLookup_engines reads an array and a per-CPU array with
// bpf_map_lookup_elem at every index and one past the end, on every CPU
// slot, on every engine (the JIT inlines these lookups): the same value,
// or NULL past the end.
func TestArrayLookup_engines(t *testing.T) {
	const cpus, entries = 3, 5
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			"arr":   {Name: "arr", Type: ebpf.Array, KeySize: 4, ValueSize: 12, MaxEntries: entries},
			"pcarr": {Name: "pcarr", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 4, MaxEntries: entries},
		},
		Programs: map[string]*ebpf.ProgramSpec{"lookup_arr": lookupProg("arr", 4), "lookup_pcarr": lookupProg("pcarr", 4)},
	}
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{CPUs: cpus, Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			for k := uint32(0); k < entries; k++ {
				if err := coll.Maps["arr"].Put(k, [3]uint32{100 + k, 1, 2}); err != nil {
					t.Fatal(err)
				}
				v := make([]uint32, cpus)
				for c := range v {
					v[c] = 1000*uint32(c) + k
				}
				if err := coll.Maps["pcarr"].Put(k, v); err != nil {
					t.Fatal(err)
				}
			}
			for cpu := uint32(0); cpu < cpus; cpu++ {
				for k := uint32(0); k <= entries; k++ {
					opts := &waggle.RunOptions{Data: append([]byte{0, byte(k)}, make([]byte, 63)...), CPU: cpu, Flags: 1}
					got, err := coll.Programs["lookup_arr"].Run(opts)
					want := 100 + k
					if k == entries {
						want = 0xdead
					}
					if err != nil || got != want {
						t.Errorf("array, CPU %d, index %d: %#x, %v, want %#x", cpu, k, got, err, want)
					}
					got, err = coll.Programs["lookup_pcarr"].Run(opts)
					want = 1000*cpu + k
					if k == entries {
						want = 0xdead
					}
					if err != nil || got != want {
						t.Errorf("per-CPU array, CPU %d, index %d: %#x, %v, want %#x", cpu, k, got, err, want)
					}
				}
			}
		})
	}
}

// jump sets a jump's offset in slots.
func jump(ins asm.Instruction, off int16) asm.Instruction {
	ins.Offset = off
	return ins
}

// TestNativeHelpers_engines: bpf_get_prandom_u32 (which the JIT computes
// inline) gives the same numbers on every engine from the same seed, and
// bpf_get_smp_processor_id the CPU slot.
func TestNativeHelpers_engines(t *testing.T) {
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"rand": {Name: "rand", Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
			asm.FnGetPrandomU32.Call(),
			asm.Mov.Reg(asm.R6, asm.R0),
			asm.FnGetPrandomU32.Call(),
			asm.LSh.Imm(asm.R6, 7),
			asm.Xor.Reg(asm.R6, asm.R0),
			asm.FnGetPrandomU32.Call(),
			asm.Add.Reg(asm.R0, asm.R6),
			asm.Return(),
		}},
		"cpu": {Name: "cpu", Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
			asm.FnGetSmpProcessorId.Call(),
			asm.Return(),
		}},
	}}
	var want []uint32
	for _, e := range waggle.Engines() {
		coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{CPUs: 3, Engine: e, RandSeed: 42})
		if err != nil {
			t.Fatal(err)
		}
		var got []uint32
		for range 5 {
			r, err := coll.Programs["rand"].Run(&waggle.RunOptions{Data: make([]byte, 64)})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		if want == nil {
			want = got
		} else if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: prandom gave %v, %s gave %v", e, got, waggle.Engines()[0], want)
		}
		for cpu := range uint32(3) {
			r, err := coll.Programs["cpu"].Run(&waggle.RunOptions{Data: make([]byte, 64), CPU: cpu, Flags: 1})
			if err != nil || r != cpu {
				t.Errorf("%s: CPU slot %d: smp id %d, %v", e, cpu, r, err)
			}
		}
		coll.Close()
	}
	if len(want) == 5 && want[0] == want[1] {
		t.Errorf("prandom repeats: %v", want)
	}
}
