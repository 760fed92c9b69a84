package waggle_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/kernel"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/bpfloop/bpfloop.c -o testdata/bpfloop/bpfloop.o

// loopFrame is the packet of testdata/bpfloop's program: after an
// Ethernet header, bpf_loop's count and flags, the index at which the
// callback ends the loop, and whether the callback runs a loop itself.
func loopFrame(n, flags, stop uint32, nested bool) []byte {
	f := make([]byte, 64)
	p := binary.NativeEndian
	p.PutUint32(f[14:], n)
	p.PutUint32(f[18:], flags)
	p.PutUint32(f[22:], stop)
	if nested {
		p.PutUint32(f[26:], 1)
	}
	return f
}

// TestLoop_engines runs bpf_loop on every engine (the JIT runs it
// natively, calling the callback without leaving machine code) and, as
// root, in the kernel, and requires the same return value (which folds in
// the callbacks' sum and count and bpf_loop's result) and the same map
// afterwards: plain loops, loops the callback ends, none at all, those the
// helper refuses (flags, more than BPF_MAX_LOOPS), and a callback that runs
// a loop itself. Runs with a budget too small must end with the same
// fault on every engine.
func TestLoop_engines(t *testing.T) {
	const obj = "testdata/bpfloop/bpfloop.o"
	kernelErr := kernel.Supported()
	if kernelErr != nil {
		t.Logf("no kernel comparison: %v", kernelErr)
	}
	for _, tc := range []struct {
		name         string
		n, flags     uint32
		stop         uint32
		nested       bool
		budget       uint64
		iters, calls uint32 // bpf_loop's return value and the callbacks run
	}{
		{name: "100", n: 100, stop: ^uint32(0), iters: 100, calls: 100},
		{name: "none", n: 0, stop: ^uint32(0), iters: 0},
		{name: "one", n: 1, stop: ^uint32(0), iters: 1, calls: 1},
		{name: "stop at 10", n: 100, stop: 10, iters: 11, calls: 11},
		{name: "stop at 0", n: 100, stop: 0, iters: 1, calls: 1},
		{name: "flags", n: 5, flags: 1, stop: ^uint32(0), iters: 1<<32 - 22},
		{name: "too many", n: helpers.MaxLoops + 1, stop: ^uint32(0), iters: 1<<32 - 7},
		{name: "nested", n: 4, stop: ^uint32(0), nested: true, iters: 4, calls: 12},
		{name: "budget", n: 100000, stop: ^uint32(0), budget: 5000},
		{name: "budget nested", n: 100000, stop: ^uint32(0), nested: true, budget: 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := loopFrame(tc.n, tc.flags, tc.stop, tc.nested)
			type result struct{ ret, err, seen string }
			var first *result
			var firstEngine waggle.Engine
			for _, e := range waggle.Engines() {
				coll, err := waggle.LoadCollection(obj, &waggle.CollectionOptions{Engine: e, Budget: tc.budget})
				if err != nil {
					t.Fatalf("%s: %v", e, err)
				}
				var r result
				ret, err := coll.Programs["loop"].Run(&waggle.RunOptions{Data: frame})
				r.ret = fmt.Sprintf("%#x", ret)
				if err != nil {
					var f *waggle.Fault
					if !errors.As(err, &f) || !errors.Is(err, waggle.ErrBudget) {
						t.Fatalf("%s: %v", e, err)
					}
					r.err = fmt.Sprintf("%v at %d", f.Err, f.PC)
				}
				r.seen = dumpMaps(coll)
				coll.Close()
				if tc.budget != 0 && r.err == "" {
					t.Errorf("%s: returned %s within a budget of %d", e, r.ret, tc.budget)
				}
				if first == nil {
					first, firstEngine = &r, e
				} else if r != *first {
					t.Errorf("%s: %+v, %s gave %+v", e, r, firstEngine, *first)
				}
			}
			if tc.budget != 0 {
				return
			}
			var sum uint64
			for i := range tc.calls {
				sum += uint64(i % max(tc.n, 1))
			}
			if !tc.nested {
				if want := fmt.Sprintf("%#x", uint32(sum<<20)^tc.calls<<8^tc.iters); first.ret != want {
					t.Errorf("returned %s, want %s", first.ret, want)
				}
			}
			if kernelErr != nil {
				return
			}
			kc := kernelCollection(t, obj, "loop")
			kret, err := kc.Programs["loop"].Run(&ebpf.RunOptions{Data: frame})
			if err != nil || fmt.Sprintf("%#x", kret) != first.ret {
				t.Fatalf("kernel: %#x, %v; waggle %s", kret, err, first.ret)
			}
			coll, err := waggle.LoadCollection(obj, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			if _, err := coll.Programs["loop"].Run(&waggle.RunOptions{Data: frame}); err != nil {
				t.Fatal(err)
			}
			compareMaps(t, coll, kc)
		})
	}
}
