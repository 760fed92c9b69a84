package bench

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle"
)

// processCPU returns the CPU time the process has used, every thread's.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFirewallBatch is the XDP parser and hash blocklist of the suite
// (xdp_firewall: IPv4 packets it drops, IPv6 ones it passes, in turn)
// over in-memory packets through Program.RunBatch, on each engine, with
// one worker and with one per core: what issue 8's "20 Mpps per core with
// the JIT" is about. Mpps is packets per second of wall time, cpu-ns/pkt
// the process's CPU time (every worker's) per packet, so 1000/cpu-ns is
// Mpps per core.
//
//	go test ./internal/bench -run '^$' -bench FirewallBatch
func BenchmarkFirewallBatch(b *testing.B) {
	var v4, v6 Case
	for _, c := range Suite() {
		switch c.Name {
		case "xdp_firewall":
			v4 = c
		case "xdp_firewall_v6":
			v6 = c
		}
	}
	if v4.Object == nil || v6.Object == nil {
		b.Fatal("the suite has no xdp_firewall cases")
	}
	// Batches long enough (about a millisecond with the JIT) that
	// starting the workers' goroutines, and the scheduler's spinning
	// while they start, is noise.
	const batch = 16384
	for _, e := range waggle.Engines() {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/workers=%d", e, workers), func(b *testing.B) {
				coll, p, err := load(v4, &waggle.CollectionOptions{CPUs: 2, Engine: e})
				if err != nil {
					b.Fatal(err)
				}
				defer coll.Close()
				runs := make([]waggle.BatchRun, batch)
				for i := range runs {
					runs[i].Data = v4.Data
					if i%2 == 1 {
						runs[i].Data = v6.Data
					}
				}
				opts := &waggle.RunBatchOptions{Workers: workers}
				b.ReportAllocs()
				c0 := processCPU(b)
				for b.Loop() {
					if n, err := p.RunBatch(runs, opts); err != nil || n != batch {
						b.Fatalf("RunBatch: %d, %v", n, err)
					}
				}
				cpu := processCPU(b) - c0
				pkts := float64(b.N * batch)
				b.ReportMetric(pkts/b.Elapsed().Seconds()/1e6, "Mpps")
				b.ReportMetric(float64(cpu.Nanoseconds())/pkts, "cpu-ns/pkt")
				if runs[0].Retval != 1 || runs[1].Retval != 2 {
					b.Fatalf("verdicts %d and %d, want XDP_DROP and XDP_PASS", runs[0].Retval, runs[1].Retval)
				}
			})
		}
	}
}
