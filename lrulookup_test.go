package waggle_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
)

// lruSpec is an XDP program that looks the u32 at byte 14 of its packet
// up in the LRU hash "lru" (of typ): found, it adds 1 to the value and
// returns 1; not found, it inserts the key with value 1 (evicting the
// least recently used key of a full map) and returns 2.
func lruSpec(typ ebpf.MapType) *ebpf.CollectionSpec {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 18),
		{OpCode: asm.JGT.Op(asm.RegSource), Dst: asm.R4, Src: asm.R3, Offset: 23}, // to "r0 = 2"
		asm.LoadMem(asm.R5, asm.R2, 14, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R5, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference("lru"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		{OpCode: asm.JEq.Op(asm.ImmSource), Dst: asm.R0, Constant: 0, Offset: 5},
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 1),
		asm.Return(),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreMem(asm.RFP, -16, asm.R1, asm.DWord),
		asm.LoadMapPtr(asm.R1, 0).WithReference("lru"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -16),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnMapUpdateElem.Call(),
		asm.Mov.Imm(asm.R0, 2),
		asm.Return(),
	}
	return &ebpf.CollectionSpec{
		Maps:     map[string]*ebpf.MapSpec{"lru": {Name: "lru", Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 16}},
		Programs: map[string]*ebpf.ProgramSpec{"count": {Name: "count", Type: ebpf.XDP, License: "GPL", Instructions: insns}},
	}
}

// TestLRULookup_engines runs a stream of lookups and inserts of skewed
// keys through LRU hashes (and per-CPU ones) far smaller than the keys,
// on every engine (the JIT stamps a found element's recency natively), and
// requires the same hits and misses packet by packet and the same map
// afterwards: which keys an insert evicts depends on the exact order of
// every lookup before it.
func TestLRULookup_engines(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	frames := make([][]byte, 5000)
	for i := range frames {
		k := uint32(rng.ExpFloat64() * 12) // a few hot keys, a long tail
		frames[i] = make([]byte, 64)
		binary.NativeEndian.PutUint32(frames[i][14:], k%64)
	}
	for _, typ := range []ebpf.MapType{ebpf.LRUHash, ebpf.LRUCPUHash} {
		var want []uint32
		var wantMap string
		for _, e := range waggle.Engines() {
			coll, err := waggle.NewCollection(lruSpec(typ), &waggle.CollectionOptions{Engine: e, CPUs: 1})
			if err != nil {
				t.Fatalf("%v, %s: %v", typ, e, err)
			}
			runs := make([]waggle.BatchRun, len(frames))
			for i := range runs {
				runs[i].Data = frames[i]
			}
			if k, err := coll.Programs["count"].RunBatch(runs, nil); err != nil {
				t.Fatalf("%v, %s: run %d: %v", typ, e, k, err)
			}
			var got []uint32
			hits := 0
			for _, r := range runs {
				got = append(got, r.Retval)
				if r.Retval == 1 {
					hits++
				}
			}
			var entries []string
			for k, v := range coll.Maps["lru"].All() {
				entries = append(entries, fmt.Sprintf("%x=%x", k, v))
			}
			slices.Sort(entries)
			coll.Close()
			m := fmt.Sprint(entries)
			if want == nil {
				want, wantMap = got, m
				if hits < len(frames)/4 || hits > len(frames)*9/10 {
					t.Fatalf("%v: %d hits of %d: the test wants evictions and hits", typ, hits, len(frames))
				}
				continue
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%v, %s: packet %d: %d, %s gave %d", typ, e, i, got[i], waggle.Engines()[0], want[i])
				}
			}
			if m != wantMap {
				t.Fatalf("%v, %s: the map holds %s, %s's %s", typ, e, m, waggle.Engines()[0], wantMap)
			}
		}
	}
}
