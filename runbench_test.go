package waggle_test

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
)

// BenchmarkRun_exit is the fixed cost of Program.Run on each engine: an
// XDP program that is "r0 = 2; exit", on a 64-byte packet. It is what the
// engine seam adds to every run (one interface call), and the issue 8
// baseline (about 230 ns and 2 allocations):
//
//	go test -run '^$' -bench Run_exit -benchtime 200000x .
func BenchmarkRun_exit(b *testing.B) {
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"exit": {
		Name: "exit", Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()},
	}}}
	for _, e := range waggle.Engines() {
		b.Run(e.String(), func(b *testing.B) {
			coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{CPUs: 1, Engine: e})
			if err != nil {
				b.Fatal(err)
			}
			defer coll.Close()
			prog := coll.Programs["exit"]
			opts := &waggle.RunOptions{Data: make([]byte, 64)}
			b.ReportAllocs()
			cpuLoop(b, func() {
				if ret, err := prog.Run(opts); err != nil || ret != 2 {
					b.Fatalf("ret %d, %v", ret, err)
				}
			})
		})
	}
}
