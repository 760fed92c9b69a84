package waggle_test

import (
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	casm "github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
)

// bigSpec is one XDP program of n instructions of 64-bit arithmetic.
func bigSpec(n int) *ebpf.CollectionSpec {
	insns := casm.Instructions{casm.Mov.Imm(casm.R0, 1), casm.Mov.Imm(casm.R2, 3)}
	for len(insns) < n-1 {
		insns = append(insns, casm.Add.Reg(casm.R0, casm.R2), casm.Xor.Imm(casm.R2, 0x55), casm.LSh.Imm(casm.R0, 1))
	}
	insns = append(insns, casm.Return())
	return &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"big": {Name: "big", Type: ebpf.XDP, License: "GPL", Instructions: insns},
	}}
}

// BenchmarkMemory reports what a loaded program costs on the Go heap beyond
// its instruction bytes, for a 60,000-instruction program (maps live off
// the heap; the maps package measures them):
//
//	go test -run '^$' -bench Memory -benchtime 10x .
func BenchmarkMemory(b *testing.B) {
	spec := bigSpec(60000)
	var insnBytes, heap float64
	var keep []*waggle.Collection
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		coll, err := waggle.NewCollection(spec, nil)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		keep = append(keep, coll)
		heap += float64(after.HeapAlloc) - float64(before.HeapAlloc)
		insnBytes += float64(len(coll.Programs["big"].Instructions()) * 8)
	}
	b.ReportMetric(heap/float64(b.N), "heap-bytes/op")
	b.ReportMetric(insnBytes/float64(b.N), "insn-bytes/op")
	b.ReportMetric((heap-insnBytes)/insnBytes, "x-insn-bytes-beyond")
	for _, c := range keep {
		c.Close()
	}
}
