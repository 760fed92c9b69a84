package waggle_test

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
)

// BenchmarkExamples runs each example over the frames of the bundled capture
// in waggle, on the default engine (waggle-auto: the JIT on linux/amd64)
// and on the checked interpreter (waggle-interp), and, as root, in the
// kernel through BPF_PROG_TEST_RUN (one syscall per frame, as a test
// harness would), and reports packets per second for each, so they
// compare in one run:
//
//	go test -run '^$' -bench Examples -benchtime 2000x .
func BenchmarkExamples(b *testing.B) {
	frames := readPcap(b, "examples/traffic/traffic.pcap")
	for _, ex := range examplePrograms {
		b.Run(ex.program, func(b *testing.B) {
			for _, e := range []waggle.Engine{waggle.EngineAuto, waggle.EngineInterp} {
				b.Run("waggle-"+e.String(), func(b *testing.B) {
					benchExample(b, ex.object, ex.program, frames, e)
				})
			}
			b.Run("kernel", func(b *testing.B) {
				kc := kernelCollection(b, ex.object, ex.program)
				if err := setup(ex.object, func(name string, k, v []byte) error { return kc.Maps[name].Put(k, v) }); err != nil {
					b.Fatal(err)
				}
				prog := kc.Programs[ex.program]
				out := make([]byte, 4096)
				i := 0
				for b.Loop() {
					frame := frames[i%len(frames)]
					i++
					if _, err := prog.Run(&ebpf.RunOptions{Data: frame, DataOut: out}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
			})
		})
	}
}

// benchExample runs program of object over frames on engine e, one
// Program.Run per frame.
func benchExample(b *testing.B, object, program string, frames [][]byte, e waggle.Engine) {
	coll, err := waggle.LoadCollection(object, &waggle.CollectionOptions{CPUs: 2, Engine: e})
	if err != nil {
		b.Fatal(err)
	}
	defer coll.Close()
	if err := setup(object, func(name string, k, v []byte) error { return coll.Maps[name].Put(k, v) }); err != nil {
		b.Fatal(err)
	}
	prog := coll.Programs[program]
	if err := prog.Prepare(); err != nil { // verified and compiled before the clock starts
		b.Fatal(err)
	}
	out := make([]byte, 4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		frame := frames[i%len(frames)]
		i++
		if _, err := prog.Run(&waggle.RunOptions{Data: frame, DataOut: out}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
}
