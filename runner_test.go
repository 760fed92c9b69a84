package waggle_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/maps"
)

// A Runner runs packets that come one at a time, each verdict before the
// next packet, for less than Program.Run.
func ExampleProgram_NewRunner() {
	coll, err := waggle.LoadCollection("examples/blocklist/blocklist.o", nil)
	if err != nil {
		panic(err)
	}
	defer coll.Close()
	// Drop 192.168.1.0/24: the key is a struct lpm_key.
	key := binary.NativeEndian.AppendUint32(nil, 24)
	key = append(key, 192, 168, 1, 0)
	if err := coll.Maps["blocklist"].Put(key, uint64(0)); err != nil {
		panic(err)
	}
	r, err := coll.Programs["xdp_blocklist"].NewRunner()
	if err != nil {
		panic(err)
	}
	defer r.Close()
	opts := &waggle.RunOptions{}
	for _, src := range [][4]byte{{10, 0, 0, 7}, {192, 168, 1, 20}} {
		opts.Data = frameFrom(src)
		verdict, err := r.Run(opts)
		fmt.Println(src, verdict, err) // XDP_DROP is 1, XDP_PASS 2
	}
	// Output:
	// [10 0 0 7] 2 <nil>
	// [192 168 1 20] 1 <nil>
}

// A Runner runs packets gathered together in one call: each BatchRun
// gets its verdict.
func ExampleRunner_RunBatch() {
	coll, err := waggle.LoadCollection("examples/blocklist/blocklist.o", nil)
	if err != nil {
		panic(err)
	}
	defer coll.Close()
	key := binary.NativeEndian.AppendUint32(nil, 24)
	key = append(key, 192, 168, 1, 0)
	if err := coll.Maps["blocklist"].Put(key, uint64(0)); err != nil {
		panic(err)
	}
	r, err := coll.Programs["xdp_blocklist"].NewRunner()
	if err != nil {
		panic(err)
	}
	defer r.Close()
	runs := make([]waggle.BatchRun, 3)
	for i, src := range [][4]byte{{10, 0, 0, 7}, {192, 168, 1, 20}, {192, 168, 2, 1}} {
		runs[i].Data = frameFrom(src)
	}
	n, err := r.RunBatch(runs, nil)
	fmt.Println(n, err)
	for _, run := range runs {
		fmt.Println(run.Retval) // XDP_DROP is 1, XDP_PASS 2
	}
	// Output:
	// 3 <nil>
	// 2
	// 1
	// 2
}

// TestRunner_equalsRun runs the examples over the bundled capture through
// a Runner and through Program.Run, on each engine, in two collections:
// the same return values, packets, contexts and maps.
func TestRunner_equalsRun(t *testing.T) {
	frames := readPcap(t, "examples/traffic/traffic.pcap")
	if testing.Short() {
		frames = frames[:200]
	}
	for _, e := range waggle.Engines() {
		for _, tc := range batchCases() {
			t.Run(e.String()+"/"+tc.name, func(t *testing.T) {
				open := func() *waggle.Collection {
					coll, err := waggle.LoadCollection(tc.object, &waggle.CollectionOptions{CPUs: 2, Engine: e, RandSeed: 1})
					if err != nil {
						t.Fatal(err)
					}
					if err := tc.setup(coll); err != nil {
						t.Fatal(err)
					}
					return coll
				}
				one, runner := open(), open()
				defer one.Close()
				defer runner.Close()
				r, err := runner.Programs[tc.program].NewRunner()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				for i, f := range frames {
					// Every third run asks for the packet and context,
					// every fifth runs on the other CPU slot.
					mk := func() *waggle.RunOptions {
						opts := &waggle.RunOptions{Data: f, Flags: 1, CPU: uint32(i/5) % 2}
						if i%3 == 0 {
							opts.DataOut, opts.ContextOut = make([]byte, len(f)+512), make([]byte, 256)
						}
						return opts
					}
					want, got := mk(), mk()
					wret, werr := one.Programs[tc.program].Run(want)
					gret, gerr := r.Run(got)
					if gret != wret || fmt.Sprint(gerr) != fmt.Sprint(werr) {
						t.Fatalf("frame %d: Runner returned %d, %v; Run %d, %v", i, gret, gerr, wret, werr)
					}
					if !bytes.Equal(got.DataOut, want.DataOut) || fmt.Sprint(got.ContextOut) != fmt.Sprint(want.ContextOut) {
						t.Fatalf("frame %d: Runner's packet %x, ctx %x; Run's %x, %x", i, got.DataOut, got.ContextOut, want.DataOut, want.ContextOut)
					}
				}
				if a, b := dumpMaps(one), dumpMaps(runner); a != b {
					t.Fatalf("maps after Run:\n%s\nafter the Runner:\n%s", a, b)
				}
			})
		}
	}
}

// TestRunner_batches runs the examples over the bundled capture in
// batches of many sizes through a Runner, with single runs between them
// that ask for outputs and batches that change CPU slot, and through
// Program.Run one frame at a time: the same return values and maps. A
// Runner's batch starts on what its last run left (a warm run state,
// packet batches from the first run on), which one batch cannot test.
func TestRunner_batches(t *testing.T) {
	frames := readPcap(t, "examples/traffic/traffic.pcap")
	if testing.Short() {
		frames = frames[:300]
	}
	for _, e := range waggle.Engines() {
		for _, tc := range batchCases() {
			t.Run(e.String()+"/"+tc.name, func(t *testing.T) {
				open := func() *waggle.Collection {
					coll, err := waggle.LoadCollection(tc.object, &waggle.CollectionOptions{CPUs: 2, Engine: e})
					if err != nil {
						t.Fatal(err)
					}
					if err := tc.setup(coll); err != nil {
						t.Fatal(err)
					}
					return coll
				}
				one, runner := open(), open()
				defer one.Close()
				defer runner.Close()
				r, err := runner.Programs[tc.program].NewRunner()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				cpu := func(i int) uint32 { return uint32(i/97) % 2 }
				want := make([]uint32, len(frames))
				for i, f := range frames {
					if want[i], err = one.Programs[tc.program].Run(&waggle.RunOptions{Data: f, Flags: 1, CPU: cpu(i)}); err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
				}
				for i, k := 0, 0; i < len(frames); k++ {
					if k%4 == 3 {
						// One run with outputs, alone.
						opts := &waggle.RunOptions{Data: frames[i], Flags: 1, CPU: cpu(i), DataOut: make([]byte, len(frames[i])+512)}
						if ret, err := r.Run(opts); err != nil || ret != want[i] {
							t.Fatalf("frame %d alone: %d, %v; Run %d", i, ret, err, want[i])
						}
						i++
						continue
					}
					// A batch of 1 to 70 runs, on one CPU slot.
					n := min(1+(k*37)%70, len(frames)-i)
					for j := 1; j < n; j++ {
						if cpu(i+j) != cpu(i) {
							n = j
							break
						}
					}
					runs := make([]waggle.BatchRun, n)
					for j := range runs {
						runs[j].Data = frames[i+j]
					}
					if got, err := r.RunBatch(runs, &waggle.RunBatchOptions{Flags: 1, CPU: cpu(i)}); err != nil || got != n {
						t.Fatalf("batch of frames %d-%d: %d, %v", i, i+n-1, got, err)
					}
					for j, run := range runs {
						if run.Retval != want[i+j] {
							t.Fatalf("frame %d, run %d of a batch of %d: %d; Run %d", i+j, j, n, run.Retval, want[i+j])
						}
					}
					i += n
				}
				if a, b := dumpMaps(one), dumpMaps(runner); a != b {
					t.Fatalf("maps after Run:\n%s\nafter the Runner:\n%s", a, b)
				}
			})
		}
	}
}

// TestRunner_close: runs on a Runner fail with EBADF once the collection
// or the Runner is closed, and a Runner cannot be made of a closed
// collection; Close twice is harmless.
func TestRunner_close(t *testing.T) {
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := waggle.NewCollection(exitSpec(ebpf.XDP, 2), &waggle.CollectionOptions{Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			prog := coll.Programs["exit"]
			r, err := prog.NewRunner()
			if err != nil {
				t.Fatal(err)
			}
			r2, err := prog.NewRunner()
			if err != nil {
				t.Fatal(err)
			}
			opts := &waggle.RunOptions{Data: smallFrame()}
			if ret, err := r.Run(opts); ret != 2 || err != nil {
				t.Fatalf("Run: %d, %v", ret, err)
			}
			if ret, err := r.Run(nil); ret != 0 || !errors.Is(err, maps.EINVAL) {
				t.Fatalf("Run without a packet: %d, %v; want EINVAL", ret, err)
			}
			runs := []waggle.BatchRun{{Data: smallFrame()}, {Data: smallFrame()}}
			if n, err := r.RunBatch(runs, nil); n != 2 || err != nil || runs[1].Retval != 2 {
				t.Fatalf("RunBatch: %d, %v, %d", n, err, runs[1].Retval)
			}
			if n, err := r.RunBatch(runs, &waggle.RunBatchOptions{Workers: 2}); n != 0 || !errors.Is(err, maps.EINVAL) {
				t.Fatalf("RunBatch on two workers: %d, %v; want EINVAL", n, err)
			}
			if n, err := r.RunBatch(runs, &waggle.RunBatchOptions{CPU: 1}); n != 0 || !errors.Is(err, maps.EINVAL) {
				t.Fatalf("RunBatch on CPU 1 without BPF_F_TEST_RUN_ON_CPU: %d, %v; want EINVAL", n, err)
			}
			r2.Close()
			r2.Close()
			if _, err := r2.Run(opts); !errors.Is(err, maps.EBADF) {
				t.Fatalf("Run on a closed Runner: %v", err)
			}
			if _, err := r2.RunBatch(runs, nil); !errors.Is(err, maps.EBADF) {
				t.Fatalf("RunBatch on a closed Runner: %v", err)
			}
			coll.Close()
			if _, err := r.Run(opts); !errors.Is(err, maps.EBADF) {
				t.Fatalf("Run after the collection's Close: %v", err)
			}
			if _, err := r.RunBatch(runs, nil); !errors.Is(err, maps.EBADF) {
				t.Fatalf("RunBatch after the collection's Close: %v", err)
			}
			if _, err := prog.NewRunner(); !errors.Is(err, maps.EBADF) {
				t.Fatalf("NewRunner after Close: %v", err)
			}
			r.Close()
			if _, err := r.Run(opts); !errors.Is(err, maps.EBADF) {
				t.Fatalf("Run on a closed Runner: %v", err)
			}
		})
	}
}

// TestRunner_closeDuringRuns is TestClose_duringRuns with a Runner per
// goroutine: the Runners hold the maps, so every run either works or
// fails with EBADF, and the collection is freed when the last Runner is
// closed.
func TestRunner_closeDuringRuns(t *testing.T) {
	for round := range 5 {
		coll := hostile(t, &waggle.CollectionOptions{CPUs: 2, Budget: 1 << 16})
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range 4 {
			name := []string{"forever", "poke", "lock_ok", "poke"}[g]
			r, err := coll.Programs[name].NewRunner()
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				defer r.Close()
				<-start
				for i := 0; ; i++ {
					data := smallFrame()
					if name == "poke" {
						data = pokeFrame(mHash, 1, i%8, 0, 1)
					}
					_, err := r.Run(&waggle.RunOptions{Data: data, Flags: 1, CPU: uint32(g % 2)})
					if errors.Is(err, waggle.ErrBudget) {
						err = nil
					}
					if errors.Is(err, maps.EBADF) {
						return
					}
					if err != nil {
						t.Errorf("round %d: %s: %v", round, name, err)
						return
					}
				}
			})
		}
		close(start)
		time.Sleep(time.Duration(round) * time.Millisecond)
		coll.Close()
		wg.Wait()
	}
}

// TestRunner_allocs: a Runner's runs allocate nothing, on every engine.
func TestRunner_allocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := waggle.NewCollection(exitSpec(ebpf.XDP, 2), &waggle.CollectionOptions{Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			r, err := coll.Programs["exit"].NewRunner()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			opts := &waggle.RunOptions{Data: smallFrame()}
			if n := testing.AllocsPerRun(100, func() {
				if ret, err := r.Run(opts); ret != 2 || err != nil {
					t.Fatalf("Run: %d, %v", ret, err)
				}
			}); n != 0 {
				t.Fatalf("%v allocations per run", n)
			}
		})
	}
}
