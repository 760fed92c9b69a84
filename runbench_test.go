package waggle_test

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
)

// BenchmarkRun_exit is the fixed cost of Program.Run on each engine: an
// XDP program that is "r0 = 2; exit", on a 64-byte packet. It is what a
// run costs besides the program (the collection reference, the pooled
// runner, the reset of the XDP frame, the engine's entry and exit); the
// issue 8 baseline was about 230 ns and 2 allocations. cpu-ns/op is the
// thread's CPU time:
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
			cpuLoop(b, 1, "op", func() {
				if ret, err := prog.Run(opts); err != nil || ret != 2 {
					b.Fatalf("ret %d, %v", ret, err)
				}
			})
		})
	}
}

// BenchmarkRunner_exit is BenchmarkRun_exit through a Runner, which
// holds the collection's reference and an execution context from run to
// run:
//
//	go test -run '^$' -bench Runner_exit -benchtime 2000000x .
func BenchmarkRunner_exit(b *testing.B) {
	spec := exitSpec(ebpf.XDP, 2)
	for _, e := range waggle.Engines() {
		b.Run(e.String(), func(b *testing.B) {
			coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{CPUs: 1, Engine: e})
			if err != nil {
				b.Fatal(err)
			}
			defer coll.Close()
			r, err := coll.Programs["exit"].NewRunner()
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			opts := &waggle.RunOptions{Data: make([]byte, 64)}
			b.ReportAllocs()
			cpuLoop(b, 1, "op", func() {
				if ret, err := r.Run(opts); err != nil || ret != 2 {
					b.Fatalf("ret %d, %v", ret, err)
				}
			})
		})
	}
}

// BenchmarkRunBatch is the cost of one run in a batch of 64
// (Program.RunBatch; Runner.RunBatch, over the same 64 packets) beside
// one Program.Run, on each engine: the XDP program "r0 = 2; exit" on
// 64-byte packets, and the examples over the bundled capture. ns/run and
// cpu-ns/run are per packet.
//
//	go test -run '^$' -bench 'RunBatch' .
func BenchmarkRunBatch(b *testing.B) {
	frames := readPcap(b, "examples/traffic/traffic.pcap")
	type bench struct {
		name    string
		load    func(e waggle.Engine) (*waggle.Collection, error)
		program string
		frames  [][]byte
	}
	exit64 := make([][]byte, 64)
	for i := range exit64 {
		exit64[i] = make([]byte, 64)
	}
	benches := []bench{{"exit", func(e waggle.Engine) (*waggle.Collection, error) {
		return waggle.NewCollection(exitSpec(ebpf.XDP, 2), &waggle.CollectionOptions{CPUs: 1, Engine: e})
	}, "exit", exit64}}
	for _, ex := range examplePrograms {
		obj := ex.object
		benches = append(benches, bench{ex.program, func(e waggle.Engine) (*waggle.Collection, error) {
			coll, err := waggle.LoadCollection(obj, &waggle.CollectionOptions{CPUs: 1, Engine: e})
			if err != nil {
				return nil, err
			}
			return coll, setup(obj, func(name string, k, v []byte) error { return coll.Maps[name].Put(k, v) })
		}, ex.program, frames})
	}
	const batch = 64
	for _, bn := range benches {
		for _, e := range waggle.Engines() {
			coll, err := bn.load(e)
			if err != nil {
				b.Fatal(err)
			}
			prog := coll.Programs[bn.program]
			b.Run(bn.name+"/"+e.String()+"/batch", func(b *testing.B) {
				runs := make([]waggle.BatchRun, batch)
				next := 0
				// With as many frames as runs, the batch holds them all
				// from the start: what is timed is RunBatch alone.
				refill := len(bn.frames) != batch
				for i := range runs {
					runs[i].Data = bn.frames[i%len(bn.frames)]
				}
				b.ReportAllocs()
				cpuLoop(b, batch, "run", func() {
					for i := range runs {
						if !refill {
							break
						}
						runs[i].Data = bn.frames[next]
						next = (next + 1) % len(bn.frames)
					}
					if n, err := prog.RunBatch(runs, nil); err != nil || n != batch {
						b.Fatalf("RunBatch: %d, %v", n, err)
					}
				})
			})
			b.Run(bn.name+"/"+e.String()+"/runner", func(b *testing.B) {
				r, err := prog.NewRunner()
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				runs := make([]waggle.BatchRun, batch)
				for i := range runs {
					runs[i].Data = bn.frames[i%len(bn.frames)]
				}
				b.ReportAllocs()
				cpuLoop(b, batch, "run", func() {
					if n, err := r.RunBatch(runs, nil); err != nil || n != batch {
						b.Fatalf("RunBatch: %d, %v", n, err)
					}
				})
			})
			b.Run(bn.name+"/"+e.String()+"/run", func(b *testing.B) {
				next := 0
				opts := &waggle.RunOptions{}
				b.ReportAllocs()
				cpuLoop(b, batch, "run", func() {
					for range batch {
						opts.Data = bn.frames[next]
						next = (next + 1) % len(bn.frames)
						if _, err := prog.Run(opts); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
			coll.Close()
		}
	}
}
