package firewall

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/maps"
)

// benchPrefixes is how many deny prefixes the benchmark loads.
const benchPrefixes = 1_000_000

var benchCompiled = sync.OnceValues(func() (*Compiled, error) {
	dir, err := os.MkdirTemp("", "firewall-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var b strings.Builder
	// Prefix i lies in 11.0.0.0/8's i'th block of 16 addresses: every
	// fourth one a /28, the others a /32.
	for i := range benchPrefixes {
		a := 11<<24 + i*16
		if i%4 == 0 {
			fmt.Fprintf(&b, "%d.%d.%d.%d/28\n", a>>24, a>>16&255, a>>8&255, a&255)
		} else {
			a += 1 + i%15
			fmt.Fprintf(&b, "%d.%d.%d.%d\n", a>>24, a>>16&255, a>>8&255, a&255)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "deny.txt"), []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	cfg, err := ParseConfig([]byte(`
options: {drop_malformed: true, drop_fragments: true}
limits:
  prefix_v4: 24
  pps: {rate: 1000000000, burst: 1000000000}
  bps: {rate: 1000000000000, burst: 1000000000000}
  syn: {rate: 1000000000}
  attack_pps: 1000000000000
rules:
  - {name: office, action: allow, cidrs: [192.0.2.0/24]}
  - {name: denied, action: deny, files: [deny.txt]}
`))
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	return Compile(cfg)
})

func threadCPU(tb testing.TB) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		tb.Fatal(err)
	}
	return ts.Nano()
}

// reportCPU reports the thread CPU time per packet and Mpps per core.
func reportCPU(b *testing.B, cpuNs int64, packets int) {
	per := float64(cpuNs) / float64(packets)
	b.ReportMetric(per, "cpu-ns/pkt")
	b.ReportMetric(1e3/per, "Mpps/core")
}

// BenchmarkFirewall runs the firewall with a million deny prefixes
// loaded, on a packet that passes every check (allow and deny lookups,
// attack window, rate bucket: the longest path) and on one a deny prefix
// drops: in waggle's JIT with the batch API, and in the kernel with
// BPF_PROG_TEST_RUN and repeat. Both measure the calling thread's CPU
// clock (the kernel runs the repeats in the caller's thread).
func BenchmarkFirewall(b *testing.B) {
	comp, err := benchCompiled()
	if err != nil {
		b.Fatal(err)
	}
	if n := comp.Lists[2].Len(); n != benchPrefixes {
		b.Fatalf("deny4 holds %d prefixes, want %d", n, benchPrefixes)
	}
	pass := build(b, pkt{src: "10.9.8.7", dst: "10.0.0.1", proto: "tcp", sport: 40000, dport: 443, ack: true, payload: 20})
	drop := build(b, pkt{src: "11.0.0.5", dst: "10.0.0.1", proto: "tcp", sport: 40000, dport: 443, ack: true, payload: 20})
	for _, pk := range []struct {
		name   string
		frame  []byte
		action uint32
	}{{"pass", pass, XDPPass}, {"deny", drop, XDPDrop}} {
		b.Run(pk.name+"/waggle-jit-batch", func(b *testing.B) {
			r := benchReplayer(b, comp)
			const batch = 256
			runs := make([]waggle.BatchRun, batch)
			data, md := ReplayInput(Packet{Data: pk.frame, Time: testTime})
			for i := range runs {
				runs[i] = waggle.BatchRun{Data: data, Context: md}
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			b.ResetTimer()
			start := threadCPU(b)
			done := 0
			for done < b.N {
				n := min(batch, b.N-done)
				if _, err := r.prog.RunBatch(runs[:n], nil); err != nil {
					b.Fatal(err)
				}
				done += n
			}
			cpu := threadCPU(b) - start
			b.StopTimer()
			if runs[0].Retval != pk.action {
				b.Fatalf("%s, want %s", ActionName(runs[0].Retval), ActionName(pk.action))
			}
			reportCPU(b, cpu, b.N)
		})
		b.Run(pk.name+"/kernel-test-run", func(b *testing.B) {
			prog := benchKernel(b, comp)
			data, md := ReplayInput(Packet{Data: pk.frame, Time: testTime})
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			b.ResetTimer()
			start := threadCPU(b)
			ret, err := prog.Run(&ebpf.RunOptions{Data: data, Context: md, Repeat: uint32(b.N)})
			cpu := threadCPU(b) - start
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if ret != pk.action {
				b.Fatalf("%s, want %s", ActionName(ret), ActionName(pk.action))
			}
			reportCPU(b, cpu, b.N)
		})
	}
}

var (
	benchMu   sync.Mutex
	benchR    *Replayer
	benchKern *ebpf.Program
)

// benchReplayer loads the million prefixes into waggle once per process.
func benchReplayer(b *testing.B, comp *Compiled) *Replayer {
	benchMu.Lock()
	defer benchMu.Unlock()
	if benchR == nil {
		r, err := NewReplayer(comp, &waggle.CollectionOptions{CPUs: 1, Engine: waggle.EngineJIT})
		if err != nil {
			b.Fatal(err)
		}
		benchR = r
	}
	return benchR
}

// benchKernel loads the million prefixes into the kernel once per process.
func benchKernel(b *testing.B, comp *Compiled) *ebpf.Program {
	benchMu.Lock()
	defer benchMu.Unlock()
	if benchKern == nil {
		spec, err := Spec()
		if err != nil {
			b.Fatal(err)
		}
		coll, err := ebpf.NewCollection(spec)
		if err != nil {
			b.Skipf("the kernel refused the firewall: %v", err)
		}
		if err := comp.Fill(func(name string) Putter {
			if m := coll.Maps[name]; m != nil {
				return m
			}
			return nil
		}, true); err != nil {
			b.Fatal(err)
		}
		benchKern = coll.Programs[ProgramName]
	}
	return benchKern
}

// BenchmarkFirewall_sampled is BenchmarkFirewall's deny packet with
// options.sample_every 1 (one deny prefix): every drop reserves a sample
// in the ring buffer, fills it (bpf_xdp_load_bytes) and submits it, until
// the ring is full, which it is after the first few thousand packets
// (nobody reads it), and from then on each reservation fails, as when a
// reader falls behind; with -read, a reader drains the ring between
// batches, so that every sample is submitted. The ring buffer helpers are what this adds to the
// deny path: native routines in the JIT (jit/amd64/ringbuf.go).
func BenchmarkFirewall_sampled(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "deny.txt"), []byte("11.0.0.0/24\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := ParseConfig([]byte(`
options: {drop_malformed: true, drop_fragments: true, sample_every: 1}
limits:
  prefix_v4: 24
  pps: {rate: 1000000000, burst: 1000000000}
  bps: {rate: 1000000000000, burst: 1000000000000}
  syn: {rate: 1000000000}
  attack_pps: 1000000000000
rules:
  - {name: denied, action: deny, files: [deny.txt]}
`))
	if err != nil {
		b.Fatal(err)
	}
	cfg.Dir = dir
	comp, err := Compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	drop := build(b, pkt{src: "11.0.0.5", dst: "10.0.0.1", proto: "tcp", sport: 40000, dport: 443, ack: true, payload: 20})
	data, md := ReplayInput(Packet{Data: drop, Time: testTime})
	for _, read := range []bool{false, true} {
		name := "waggle-jit-batch"
		if read {
			// A reader drains the ring between batches (not timed), so
			// that every drop's sample is reserved, filled and submitted.
			name += "-read"
		}
		b.Run(name, func(b *testing.B) {
			r, err := NewReplayer(comp, &waggle.CollectionOptions{CPUs: 1, Engine: waggle.EngineJIT})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			rd, err := maps.NewRingBufReader(r.coll.Maps["samples"].Underlying())
			if err != nil {
				b.Fatal(err)
			}
			defer rd.Close()
			var rec maps.RingBufRecord
			const batch = 256
			runs := make([]waggle.BatchRun, batch)
			for i := range runs {
				runs[i] = waggle.BatchRun{Data: data, Context: md}
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			b.ResetTimer()
			var cpu int64
			for done := 0; done < b.N; done += batch {
				n := min(batch, b.N-done)
				start := threadCPU(b)
				if _, err := r.prog.RunBatch(runs[:n], nil); err != nil {
					b.Fatal(err)
				}
				cpu += threadCPU(b) - start
				if read {
					b.StopTimer()
					rd.SetDeadline(time.Now())
					for rd.ReadInto(&rec) == nil {
					}
					b.StartTimer()
				}
			}
			b.StopTimer()
			if runs[0].Retval != XDPDrop {
				b.Fatalf("%s, want XDP_DROP", ActionName(runs[0].Retval))
			}
			if read && r.coll.Maps["samples"].Underlying().(maps.RingBuffer).Dropped() != 0 {
				b.Fatal("samples dropped although the ring was drained")
			}
			reportCPU(b, cpu, b.N)
		})
	}
	b.Run("kernel-test-run", func(b *testing.B) {
		spec, err := Spec()
		if err != nil {
			b.Fatal(err)
		}
		coll, err := ebpf.NewCollection(spec)
		if err != nil {
			b.Skipf("the kernel refused the firewall: %v", err)
		}
		defer coll.Close()
		if err := comp.Fill(func(name string) Putter {
			if m := coll.Maps[name]; m != nil {
				return m
			}
			return nil
		}, true); err != nil {
			b.Fatal(err)
		}
		prog := coll.Programs[ProgramName]
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		b.ReportAllocs()
		b.ResetTimer()
		start := threadCPU(b)
		ret, err := prog.Run(&ebpf.RunOptions{Data: data, Context: md, Repeat: uint32(b.N)})
		cpu := threadCPU(b) - start
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if ret != XDPDrop {
			b.Fatalf("%s, want XDP_DROP", ActionName(ret))
		}
		reportCPU(b, cpu, b.N)
	})
}
