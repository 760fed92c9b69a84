package waggle_test

import (
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/maps"
)

// BenchmarkRingbuf times one run of ringSpec's r24 (a reservation of 24
// bytes, two stores, a submit) per op on every engine and in the kernel
// (BPF_PROG_TEST_RUN), in chunks of 2^17 repeats of one Run:
//
//   - submit: the ring has room; a reader drains it between chunks, with
//     the timer stopped;
//   - full: the ring is full and no reader is open, so each run's
//     reservation fails (NULL, a drop counted), as the firewall's samples
//     do when no one reads them.
//
// It reports ns/op (wall) and cpu-ns/op (the thread's CPU clock, which on
// a shared machine does not count the time other processes took).
func BenchmarkRingbuf(b *testing.B) {
	// Large chunks: one BPF_PROG_TEST_RUN of an XDP program costs about
	// 0.6 ms here before its first repeat (measured with a program that
	// only returns), 600 ns a run in chunks of 1024, 5 in these.
	const chunk = 1 << 17
	const ringBytes = 1 << 23 // 2 chunks of 32-byte records
	data := make([]byte, 64)
	binary.LittleEndian.PutUint64(data, 7)
	type target struct {
		run   func(n uint32) uint32 // n runs, the last's return value
		drain func()
	}
	bench := func(b *testing.B, tg target, full bool) {
		if full {
			for tg.run(1) != 2 {
			}
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		b.ReportAllocs()
		b.ResetTimer()
		var cpu int64
		want := uint32(1)
		if full {
			want = 2
		}
		for done := 0; done < b.N; done += chunk {
			n := min(chunk, b.N-done)
			c0, _ := threadCPU()
			ret := tg.run(uint32(n))
			c1, _ := threadCPU()
			cpu += c1 - c0
			if ret != want {
				b.Fatalf("returned %d, want %d", ret, want)
			}
			if !full {
				b.StopTimer()
				tg.drain()
				b.StartTimer()
			}
		}
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}
	for _, mode := range []string{"submit", "full"} {
		for _, e := range waggle.Engines() {
			b.Run(mode+"/"+e.String(), func(b *testing.B) {
				coll, err := waggle.NewCollection(ringSpec(ringBytes), &waggle.CollectionOptions{CPUs: 1, Engine: e})
				if err != nil {
					b.Fatal(err)
				}
				defer coll.Close()
				rd, err := maps.NewRingBufReader(coll.Maps["events"].Underlying())
				if err != nil {
					b.Fatal(err)
				}
				defer rd.Close()
				prog := coll.Programs["r24"]
				opts := &waggle.RunOptions{Data: data}
				var rec maps.RingBufRecord
				bench(b, target{
					run: func(n uint32) uint32 {
						opts.Repeat = n
						ret, err := prog.Run(opts)
						if err != nil {
							b.Fatal(err)
						}
						return ret
					},
					drain: func() {
						rd.SetDeadline(time.Now())
						for rd.ReadInto(&rec) == nil {
						}
					},
				}, mode == "full")
			})
		}
		b.Run(mode+"/kernel", func(b *testing.B) {
			if err := kernel.Supported(); err != nil {
				b.Skipf("kernel: %v", err)
			}
			kc, err := ebpf.NewCollection(ringSpec(ringBytes))
			if err != nil {
				b.Fatal(err)
			}
			defer kc.Close()
			var rd *ringbuf.Reader
			if mode == "submit" {
				// Only then: a reader's epoll registration makes the
				// kernel's commits (and more) cost several times more.
				if rd, err = ringbuf.NewReader(kc.Maps["events"]); err != nil {
					b.Fatal(err)
				}
				defer rd.Close()
			}
			prog := kc.Programs["r24"]
			var rec ringbuf.Record
			bench(b, target{
				run: func(n uint32) uint32 {
					ret, err := prog.Run(&ebpf.RunOptions{Data: data, Repeat: n})
					if err != nil {
						b.Fatal(err)
					}
					return ret
				},
				drain: func() {
					rd.SetDeadline(time.Now())
					for {
						if err := rd.ReadInto(&rec); errors.Is(err, os.ErrDeadlineExceeded) || err != nil {
							return
						}
					}
				},
			}, mode == "full")
		})
	}
}
