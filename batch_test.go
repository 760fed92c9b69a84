package waggle_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/maps"
)

// frameFrom returns an Ethernet frame holding an IPv4 header from src.
func frameFrom(src [4]byte) []byte {
	f := make([]byte, 64)
	binary.BigEndian.PutUint16(f[12:], 0x0800) // ETH_P_IP
	f[14] = 0x45                               // version 4, 20-byte header
	binary.BigEndian.PutUint16(f[16:], 50)     // total length
	f[22], f[23] = 64, 17                      // TTL, UDP
	copy(f[26:30], src[:])
	copy(f[30:34], []byte{10, 0, 0, 1})
	return f
}

// An XDP program runs over many packets in one call: RunBatch sets each
// packet's verdict, and the maps see every run.
func ExampleProgram_RunBatch() {
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
	runs := []waggle.BatchRun{
		{Data: frameFrom([4]byte{10, 0, 0, 7})},
		{Data: frameFrom([4]byte{192, 168, 1, 20})},
		{Data: frameFrom([4]byte{192, 168, 2, 20})},
		{Data: frameFrom([4]byte{192, 168, 1, 21})},
	}
	n, err := coll.Programs["xdp_blocklist"].RunBatch(runs, nil)
	fmt.Println(n, err)
	for _, r := range runs {
		fmt.Println(r.Data[26:30], r.Retval) // XDP_DROP is 1, XDP_PASS 2
	}
	var dropped uint64
	if err := coll.Maps["blocklist"].Lookup(key, &dropped); err != nil {
		panic(err)
	}
	fmt.Println("dropped:", dropped)
	// Output:
	// 4 <nil>
	// [10 0 0 7] 2
	// [192 168 1 20] 1
	// [192 168 2 20] 2
	// [192 168 1 21] 1
	// dropped: 2
}

// batchCase is a program and the packets a batch test runs it on.
type batchCase struct {
	name, object, program string
	setup                 func(*waggle.Collection) error
}

// batchCases are the examples that take packets, run over the capture.
func batchCases() []batchCase {
	var cases []batchCase
	for _, ex := range examplePrograms {
		obj := ex.object
		cases = append(cases, batchCase{name: ex.program, object: obj, program: ex.program, setup: func(c *waggle.Collection) error {
			return setup(obj, func(name string, k, v []byte) error { return c.Maps[name].Put(k, v) })
		}})
	}
	return cases
}

// dumpMaps returns every map of coll as text, per-CPU values CPU by CPU,
// for comparing collections.
func dumpMaps(coll *waggle.Collection) string {
	var names []string
	for name := range coll.Maps {
		names = append(names, name)
	}
	slices.Sort(names)
	var b bytes.Buffer
	for _, name := range names {
		m := coll.Maps[name]
		if m.Type() == ebpf.RingBuf || m.Type() == ebpf.PerfEventArray || m.Type() == ebpf.ProgramArray {
			continue
		}
		var entries []string
		for k, v := range m.All() {
			entries = append(entries, fmt.Sprintf("%x=%x", k, v))
		}
		slices.Sort(entries)
		fmt.Fprintf(&b, "%s: %v\n", name, entries)
	}
	return b.String()
}

// TestRunBatch_equalsRuns requires that a batch gives what a run per
// packet gives: the return values, the packets after the runs, the
// contexts after the runs and the maps afterwards (per-CPU values on the
// batch's CPU slot), for every example over the bundled capture, on every
// engine.
func TestRunBatch_equalsRuns(t *testing.T) {
	frames := readPcap(t, "examples/traffic/traffic.pcap")
	if testing.Short() {
		frames = frames[:200]
	}
	// outputs says which runs of the batch ask for their packet and
	// context: all, one in three (the others only for a verdict, which
	// a batch runs on its fast paths: runPackets, runBatchNext), so the
	// paths alternate, or none; and the collection's random seed (a
	// seed keeps a batch off packet batches, runPackets).
	for _, e := range waggle.Engines() {
		for _, tc := range batchCases() {
			for _, outputs := range []struct {
				name string
				want func(i int) bool
				seed uint64
			}{
				{"outputs", func(int) bool { return true }, 1},
				{"verdicts", func(i int) bool { return i%3 == 0 }, 0},
				{"verdicts-seeded", func(i int) bool { return i%3 == 0 }, 1},
				{"packets", func(i int) bool { return false }, 0},
			} {
				t.Run(e.String()+"/"+tc.name+"/"+outputs.name, func(t *testing.T) {
					open := func() *waggle.Collection {
						coll, err := waggle.LoadCollection(tc.object, &waggle.CollectionOptions{CPUs: 2, Engine: e, RandSeed: outputs.seed})
						if err != nil {
							t.Fatal(err)
						}
						if err := tc.setup(coll); err != nil {
							t.Fatal(err)
						}
						return coll
					}
					one, batch := open(), open()
					defer one.Close()
					defer batch.Close()
					const cpu = 1
					runs := make([]waggle.BatchRun, len(frames))
					for i, f := range frames {
						runs[i] = waggle.BatchRun{Data: f}
						if outputs.want(i) {
							runs[i].DataOut, runs[i].ContextOut = make([]byte, len(f)+512), make([]byte, 256)
						}
					}
					n, err := batch.Programs[tc.program].RunBatch(runs, &waggle.RunBatchOptions{Flags: 1, CPU: cpu})
					if err != nil || n != len(runs) {
						t.Fatalf("RunBatch: %d of %d, %v", n, len(runs), err)
					}
					for i, f := range frames {
						opts := &waggle.RunOptions{Data: f, DataOut: make([]byte, len(f)+512), ContextOut: make([]byte, 256), Flags: 1, CPU: cpu}
						ret, err := one.Programs[tc.program].Run(opts)
						if err != nil {
							t.Fatalf("frame %d: %v", i, err)
						}
						r := &runs[i]
						if !outputs.want(i) {
							if r.Retval != ret || r.DataOut != nil || r.ContextOut != nil {
								t.Fatalf("frame %d: batch returned %d, DataOut %x, ContextOut %x (none asked for); Run %d", i, r.Retval, r.DataOut, r.ContextOut, ret)
							}
							continue
						}
						if r.Retval != ret || !bytes.Equal(r.DataOut, opts.DataOut) || !bytes.Equal(r.ContextOut, opts.ContextOut.([]byte)) {
							t.Fatalf("frame %d: batch returned %d, %x, ctx %x; Run %d, %x, ctx %x", i, r.Retval, r.DataOut, r.ContextOut, ret, opts.DataOut, opts.ContextOut)
						}
					}
					if a, b := dumpMaps(one), dumpMaps(batch); a != b {
						t.Fatalf("maps after the runs:\n%s\nafter the batch:\n%s", a, b)
					}
				})
			}
		}
	}
}

// TestRunBatch_cpu requires that every run of a batch uses the batch's CPU
// slot: bpf_get_smp_processor_id returns it, and per-CPU values on it
// change, not the others.
func TestRunBatch_cpu(t *testing.T) {
	spec := cpuHitsSpec()
	coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{CPUs: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	runs := make([]waggle.BatchRun, 5)
	for i := range runs {
		runs[i].Data = make([]byte, 64)
	}
	if n, err := coll.Programs["p"].RunBatch(runs, &waggle.RunBatchOptions{Flags: 1, CPU: 2}); err != nil || n != 5 {
		t.Fatalf("RunBatch: %d, %v", n, err)
	}
	for i, r := range runs {
		if r.Retval != 2 {
			t.Errorf("run %d: bpf_get_smp_processor_id returned %d, want 2", i, r.Retval)
		}
	}
	var hits []uint64
	if err := coll.Maps["hits"].Lookup(uint32(0), &hits); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hits, []uint64{0, 0, 5, 0}) {
		t.Errorf("per-CPU hits %v, want [0 0 5 0]", hits)
	}
	// A CPU without the flag, or past the collection's, is refused.
	if _, err := coll.Programs["p"].RunBatch(runs, &waggle.RunBatchOptions{CPU: 2}); !errors.Is(err, maps.EINVAL) {
		t.Errorf("CPU without BPF_F_TEST_RUN_ON_CPU: %v, want EINVAL", err)
	}
	if _, err := coll.Programs["p"].RunBatch(runs, &waggle.RunBatchOptions{Flags: 1, CPU: 4}); !errors.Is(err, maps.EINVAL) {
		t.Errorf("CPU 4 of 4: %v, want EINVAL", err)
	}
}

// TestRunBatch_badRun requires that a run that fails stops the batch: the
// count is its index, the error names it, the runs before it ran and the
// runs after it did not.
func TestRunBatch_badRun(t *testing.T) {
	coll, err := waggle.NewCollection(exitSpec(ebpf.XDP, 2), &waggle.CollectionOptions{CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	prog := coll.Programs["exit"]
	for _, tc := range []struct {
		name string
		bad  waggle.BatchRun
		want error
	}{
		{"short packet", waggle.BatchRun{Data: make([]byte, 10)}, maps.EINVAL},
		{"small DataOut", waggle.BatchRun{Data: make([]byte, 64), DataOut: make([]byte, 10)}, maps.ENOSPC},
		{"bad context", waggle.BatchRun{Data: make([]byte, 64), Context: []byte{0, 0, 0, 0, 64, 0, 0, 0, 1}}, maps.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := []waggle.BatchRun{{Data: make([]byte, 64)}, {Data: make([]byte, 64)}, tc.bad, {Data: make([]byte, 64)}}
			n, err := prog.RunBatch(runs, nil)
			if n != 2 || !errors.Is(err, tc.want) {
				t.Fatalf("RunBatch: %d, %v; want 2 and %v", n, err, tc.want)
			}
			if want := "run 2 of 4"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if runs[0].Retval != 2 || runs[1].Retval != 2 || runs[3].Retval != 0 {
				t.Errorf("return values %d %d %d %d, want 2 2 _ 0", runs[0].Retval, runs[1].Retval, runs[2].Retval, runs[3].Retval)
			}
		})
	}
	// An empty batch runs nothing; a closed collection runs no batch.
	if n, err := prog.RunBatch(nil, nil); n != 0 || err != nil {
		t.Errorf("empty batch: %d, %v", n, err)
	}
	coll.Close()
	if n, err := prog.RunBatch([]waggle.BatchRun{{Data: make([]byte, 64)}}, nil); n != 0 || err == nil {
		t.Errorf("batch after Close: %d, %v", n, err)
	}
}

// TestRunBatch_budget requires that a run that fails in the middle of
// runs made as one packet batch (runPackets) stops the batch as any
// failing run does, on every engine: its index, its error, the runs
// before it made and the ones after it not made.
func TestRunBatch_budget(t *testing.T) {
	// "Spin" 200 times for a packet whose first byte is 0xDD, which a
	// budget of 100 does not allow; return 2 at once for the others.
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"spin": {
		Name: "spin", Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
			asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, 1),
			asm.JGT.Reg(asm.R4, asm.R3, "out"),
			asm.LoadMem(asm.R5, asm.R2, 0, asm.Byte),
			asm.JNE.Imm(asm.R5, 0xDD, "out"),
			asm.Mov.Imm(asm.R6, 0),
			asm.Add.Imm(asm.R6, 1).WithSymbol("spin"),
			asm.JLT.Imm(asm.R6, 200, "spin"),
			asm.Mov.Imm(asm.R0, 2).WithSymbol("out"),
			asm.Return(),
		},
	}}}
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{CPUs: 1, Engine: e, Budget: 100})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			for _, bad := range []int{1, 2, 40, 63, 64, 99} {
				runs := make([]waggle.BatchRun, 100)
				for i := range runs {
					runs[i].Data = make([]byte, 60+i%7)
				}
				runs[bad].Data[0] = 0xDD
				n, err := coll.Programs["spin"].RunBatch(runs, nil)
				if n != bad || !errors.Is(err, waggle.ErrBudget) || !strings.Contains(err.Error(), fmt.Sprintf("run %d of 100", bad)) {
					t.Fatalf("run %d spins: RunBatch %d, %v", bad, n, err)
				}
				for i, r := range runs {
					want := uint32(2)
					if i >= bad {
						want = 0 // not made, or failed
					}
					if r.Retval != want {
						t.Fatalf("run %d spins: run %d returned %d, want %d", bad, i, r.Retval, want)
					}
				}
			}
		})
	}
}

// TestRunBatchContext_canceled requires that a canceled context stops a
// batch before its next run.
func TestRunBatchContext_canceled(t *testing.T) {
	coll, err := waggle.NewCollection(exitSpec(ebpf.XDP, 2), &waggle.CollectionOptions{CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	runs := []waggle.BatchRun{{Data: make([]byte, 64)}}
	n, err := coll.Programs["exit"].RunBatchContext(ctx, runs, nil)
	if n != 0 || !errors.Is(err, waggle.ErrStopped) || !errors.Is(err, context.Canceled) {
		t.Fatalf("RunBatchContext after cancel: %d, %v", n, err)
	}
}

// TestRunBatch_allocs requires that a batch allocates nothing once its
// runner exists, with and without DataOut and ContextOut buffers.
func TestRunBatch_allocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops pooled runners at random: allocation counts are meaningless")
	}
	frames := readPcap(t, "examples/traffic/traffic.pcap")[:64]
	for _, e := range waggle.Engines() {
		for _, tc := range []struct{ object, program string }{
			{"examples/counter/counter.o", "xdp_count"},
			{"examples/tcrewrite/rewrite.o", "tc_rewrite"},
			{"examples/sockfilter/filter.o", "socket_http"},
		} {
			t.Run(e.String()+"/"+tc.program, func(t *testing.T) {
				coll, err := waggle.LoadCollection(tc.object, &waggle.CollectionOptions{CPUs: 1, Engine: e})
				if err != nil {
					t.Fatal(err)
				}
				defer coll.Close()
				prog := coll.Programs[tc.program]
				plain := make([]waggle.BatchRun, len(frames))
				out := make([]waggle.BatchRun, len(frames))
				for i, f := range frames {
					plain[i] = waggle.BatchRun{Data: f}
					out[i] = waggle.BatchRun{Data: f, DataOut: make([]byte, len(f)+256), ContextOut: make([]byte, 256)}
				}
				for name, runs := range map[string][]waggle.BatchRun{"plain": plain, "out": out} {
					n := testing.AllocsPerRun(20, func() {
						if n, err := prog.RunBatch(runs, nil); err != nil || n != len(runs) {
							t.Fatalf("RunBatch: %d, %v", n, err)
						}
					})
					if n != 0 {
						t.Errorf("%s: %v allocations per batch, want 0", name, n)
					}
				}
			})
		}
	}
}

// TestRunBatch_workers spreads a batch over worker goroutines, one per
// CPU slot: every run ran, on the slot of its part (the per-CPU counter
// and bpf_get_smp_processor_id say which), on every engine; a failing
// run is reported by its index in the whole batch; bad worker counts are
// refused.
func TestRunBatch_workers(t *testing.T) {
	spec := cpuHitsSpec()
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{CPUs: 3, Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			runs := make([]waggle.BatchRun, 100)
			for i := range runs {
				runs[i].Data = make([]byte, 64)
			}
			if n, err := coll.Programs["p"].RunBatch(runs, &waggle.RunBatchOptions{Workers: 3}); err != nil || n != 100 {
				t.Fatalf("RunBatch: %d, %v", n, err)
			}
			// Parts of consecutive runs: [0, 33), [33, 66), [66, 100).
			for i, r := range runs {
				want := uint32(0)
				for k := range 3 {
					if i >= k*100/3 {
						want = uint32(k)
					}
				}
				if r.Retval != want {
					t.Fatalf("run %d on CPU slot %d, want %d", i, r.Retval, want)
				}
			}
			var hits []uint64
			if err := coll.Maps["hits"].Lookup(uint32(0), &hits); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(hits, []uint64{33, 33, 34}) {
				t.Errorf("per-CPU hits %v, want [33 33 34]", hits)
			}
			// The first failing run is named in the whole batch.
			runs[70].Data = make([]byte, 10)
			if n, err := coll.Programs["p"].RunBatch(runs, &waggle.RunBatchOptions{Workers: 3}); n != 70 || !errors.Is(err, maps.EINVAL) || !bytes.Contains([]byte(err.Error()), []byte("run 70 of 100")) {
				t.Errorf("a bad run 70: %d, %v", n, err)
			}
			for _, bad := range []waggle.RunBatchOptions{{Workers: 4}, {Workers: -1}, {Workers: 2, CPU: 1, Flags: 1}} {
				if _, err := coll.Programs["p"].RunBatch(runs, &bad); !errors.Is(err, maps.EINVAL) {
					t.Errorf("%+v: %v, want EINVAL", bad, err)
				}
			}
		})
	}
}

// cpuHitsSpec is an XDP program p that counts its runs in the per-CPU
// array hits and returns the CPU slot it ran on.
func cpuHitsSpec() *ebpf.CollectionSpec {
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{"hits": {Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1}},
		Programs: map[string]*ebpf.ProgramSpec{"p": {Name: "p", Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, 0).WithReference("hits"),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.Instruction{OpCode: asm.JEq.Op(asm.ImmSource), Dst: asm.R0, Constant: 0, Offset: 3},
			asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
			asm.Add.Imm(asm.R1, 1),
			asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
			asm.FnGetSmpProcessorId.Call(),
			asm.Return(),
		}}},
	}
}
