package kernel

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/internal/ktest"
)

// BenchmarkCountVerdicts measures what counting the verdicts costs a run
// of the counter example in the kernel: BPF_PROG_TEST_RUN repeats it 1000
// times per iteration, and ns/run is the kernel's own mean.
func BenchmarkCountVerdicts(b *testing.B) {
	mustSupported(b)
	for _, counted := range []bool{false, true} {
		name := "plain"
		if counted {
			name = "counted"
		}
		b.Run(name, func(b *testing.B) {
			spec, err := ebpf.LoadCollectionSpec("../examples/counter/counter.o")
			if err != nil {
				b.Fatal(err)
			}
			if counted {
				if err := CountVerdicts(spec, ebpf.XDP); err != nil {
					b.Fatal(err)
				}
			}
			coll, err := ebpf.NewCollection(spec)
			if err != nil {
				b.Fatal(err)
			}
			defer coll.Close()
			prog := coll.Programs["xdp_count"]
			frame := ktest.IPv4Frame(6)
			var total float64
			n := 0
			for b.Loop() {
				_, d, err := prog.Benchmark(frame, 1000, nil)
				if err != nil {
					b.Fatal(err)
				}
				total += float64(d.Nanoseconds())
				n++
			}
			b.ReportMetric(total/float64(n), "ns/run")
		})
	}
}
