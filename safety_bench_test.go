package waggle_test

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	casm "github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
)

// BenchmarkCheckedMapAccess measures a checked access to a map value in a
// collection of n maps, all referenced by the program: it looks up the
// last map's value once and loads from it 64 times in a loop.
//
//	go test -run '^$' -bench CheckedMapAccess .
func BenchmarkCheckedMapAccess(b *testing.B) {
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("maps=%d", n), func(b *testing.B) {
			spec := &ebpf.CollectionSpec{Maps: map[string]*ebpf.MapSpec{}, Programs: map[string]*ebpf.ProgramSpec{}}
			var insns casm.Instructions
			for i := range n {
				name := fmt.Sprintf("m%02d", i)
				spec.Maps[name] = &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4}
				insns = append(insns, casm.LoadMapPtr(casm.R1, 0).WithReference(name))
			}
			insns = append(insns,
				casm.StoreImm(casm.RFP, -4, 0, casm.Word),
				casm.Mov.Reg(casm.R2, casm.RFP),
				casm.Add.Imm(casm.R2, -4),
				casm.FnMapLookupElem.Call(),
				casm.Instruction{OpCode: casm.JEq.Op(casm.ImmSource), Dst: casm.R0, Constant: 0, Offset: 5},
				casm.Mov.Imm(casm.R6, 64),
				casm.LoadMem(casm.R1, casm.R0, 0, casm.DWord),
				casm.Add.Imm(casm.R6, -1),
				casm.Instruction{OpCode: casm.JNE.Op(casm.ImmSource), Dst: casm.R6, Constant: 0, Offset: -3},
				casm.Mov.Imm(casm.R0, 2),
				casm.Return())
			spec.Programs["p"] = &ebpf.ProgramSpec{Name: "p", Type: ebpf.XDP, License: "GPL", Instructions: insns}
			coll, err := waggle.NewCollection(spec, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer coll.Close()
			if err := coll.Maps[fmt.Sprintf("m%02d", n-1)].Put(uint32(0), uint64(1)); err != nil {
				b.Fatal(err)
			}
			p := coll.Programs["p"]
			in := make([]byte, 64)
			for b.Loop() {
				if _, err := p.Run(&waggle.RunOptions{Data: in}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/access")
		})
	}
}

// BenchmarkMapHelperCall measures a bpf_map_lookup_elem call from a
// program referencing n maps, in an array, a hash, a hash of maps (whose
// lookups check the inner map's handle) and an LPM trie (which the run's
// read-side section holds from its first lookup): the program looks the
// last map up 32 times in a loop, in the checked interpreter (the
// default engine) and the fast one.
//
//	go test -run '^$' -bench MapHelperCall .
func BenchmarkMapHelperCall(b *testing.B) {
	for _, typ := range []ebpf.MapType{ebpf.Array, ebpf.Hash, ebpf.HashOfMaps, ebpf.LPMTrie} {
		for _, n := range []int{1, 8, 64} {
			for _, e := range waggle.Engines() {
				b.Run(fmt.Sprintf("%s/maps=%d/%s", typ, n, e), func(b *testing.B) {
					benchMapHelperCall(b, typ, n, e)
				})
			}
		}
	}
}

func benchMapHelperCall(b *testing.B, typ ebpf.MapType, n int, e waggle.Engine) {
	spec := &ebpf.CollectionSpec{Maps: map[string]*ebpf.MapSpec{}, Programs: map[string]*ebpf.ProgramSpec{}}
	var insns casm.Instructions
	for i := range n {
		name := fmt.Sprintf("m%02d", i)
		ms := &ebpf.MapSpec{Type: typ, KeySize: 8, ValueSize: 8, MaxEntries: 4}
		switch typ {
		case ebpf.LPMTrie:
			ms.Flags = 1 // BPF_F_NO_PREALLOC
		case ebpf.Array:
			ms.KeySize = 4
		case ebpf.HashOfMaps:
			ms.ValueSize = 4
			ms.InnerMap = &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}
		}
		spec.Maps[name] = ms
		insns = append(insns, casm.LoadMapPtr(casm.R1, 0).WithReference(name))
	}
	if typ == ebpf.HashOfMaps {
		spec.Maps["inner"] = &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}
	}
	insns = append(insns,
		casm.Mov.Reg(casm.R7, casm.R1),
		casm.StoreImm(casm.RFP, -8, 32, casm.Word), // prefix length, for the trie
		casm.StoreImm(casm.RFP, -4, 0, casm.Word),
		casm.Mov.Imm(casm.R6, 32),
		casm.Mov.Reg(casm.R1, casm.R7),
		casm.Mov.Reg(casm.R2, casm.RFP),
		casm.Add.Imm(casm.R2, -8),
		casm.FnMapLookupElem.Call(),
		casm.Add.Imm(casm.R6, -1),
		casm.Instruction{OpCode: casm.JNE.Op(casm.ImmSource), Dst: casm.R6, Constant: 0, Offset: -6},
		casm.Mov.Imm(casm.R0, 2),
		casm.Return())
	spec.Programs["p"] = &ebpf.ProgramSpec{Name: "p", Type: ebpf.XDP, License: "GPL", Instructions: insns}
	coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{Engine: e})
	if err != nil {
		b.Fatal(err)
	}
	defer coll.Close()
	key := []byte{32, 0, 0, 0, 0, 0, 0, 0}
	last := coll.Maps[fmt.Sprintf("m%02d", n-1)]
	switch typ {
	case ebpf.LPMTrie:
		key[0] = 8
	case ebpf.Array:
		key = key[:4] // index 32 is past the end; the lookup still bounds-checks
	}
	var value any = uint64(1)
	if typ == ebpf.HashOfMaps {
		value = coll.Maps["inner"]
	}
	if typ != ebpf.Array {
		if err := last.Put(key, value); err != nil {
			b.Fatal(err)
		}
	}
	p := coll.Programs["p"]
	opts := &waggle.RunOptions{Data: make([]byte, 64)}
	cpuLoop(b, 32, "call", func() {
		if _, err := p.Run(opts); err != nil {
			b.Fatal(err)
		}
	})
}
