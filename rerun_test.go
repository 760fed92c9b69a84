package waggle_test

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
)

// TestRun_rerun runs one program many times through Program.Run, which
// reruns what its runner ran last when only the packet changed (on an
// engine that can): the CPU slot changing between runs, and runs after a
// run that failed, must each run as the first would.
func TestRun_rerun(t *testing.T) {
	for _, e := range waggle.Engines() {
		t.Run(e.String()+"/cpu", func(t *testing.T) {
			coll, err := waggle.NewCollection(cpuHitsSpec(), &waggle.CollectionOptions{CPUs: 2, Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			prog := coll.Programs["p"]
			want := [2]uint64{}
			for i, cpu := range []uint32{0, 1, 1, 0, 0, 1, 0, 1, 1, 1} {
				want[cpu]++
				ret, err := prog.Run(&waggle.RunOptions{Data: make([]byte, 14+i), Flags: 1, CPU: cpu})
				if err != nil || ret != cpu {
					t.Fatalf("run %d on CPU %d: %d, %v", i, cpu, ret, err)
				}
			}
			var hits []uint64
			if err := coll.Maps["hits"].Lookup(uint32(0), &hits); err != nil {
				t.Fatal(err)
			}
			if len(hits) != 2 || hits[0] != want[0] || hits[1] != want[1] {
				t.Fatalf("hits per CPU %v, want %v", hits, want)
			}
		})
		t.Run(e.String()+"/afterFault", func(t *testing.T) {
			coll, err := waggle.NewCollection(countSpec(), &waggle.CollectionOptions{CPUs: 1, Engine: e, Budget: 200})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			prog := coll.Programs["count"]
			pkt := make([]byte, 15)
			for i, n := range []byte{3, 200, 5, 200, 200, 7, 1, 0, 250, 9} {
				pkt[14] = n
				ret, err := prog.Run(&waggle.RunOptions{Data: pkt})
				switch {
				case n >= 100 && !errors.Is(err, waggle.ErrBudget):
					t.Fatalf("run %d counting to %d: %d, %v; want the budget's error", i, n, ret, err)
				case n < 100 && (err != nil || ret != uint32(n)):
					t.Fatalf("run %d counting to %d: %d, %v", i, n, ret, err)
				}
			}
		})
	}
}

// countSpec is an XDP program "count" that counts to the packet's byte 14
// in a loop (three instructions a step) and returns the count.
func countSpec() *ebpf.CollectionSpec {
	return &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"count": {Name: "count", Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 15),
		asm.Mov.Imm(asm.R0, 0),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.LoadMem(asm.R5, asm.R2, 14, asm.Byte),
		asm.JGE.Reg(asm.R0, asm.R5, "out").WithSymbol("loop"),
		asm.Add.Imm(asm.R0, 1),
		asm.JLT.Imm(asm.R0, 256, "loop"),
		asm.Return().WithSymbol("out"),
	}}}}
}
