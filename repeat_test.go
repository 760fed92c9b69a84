package waggle_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
)

// repeatSpec is an XDP program whose runs leave a trace of how many ran:
// it adds one to the packet's first byte, counts itself in slot 0 of an
// array (a lookup the JIT makes natively), and every 8th run (when the
// byte becomes a multiple of 8) calls bpf_ktime_get_ns, a helper served
// in Go, and counts that in slot 1. The JIT makes a run's repeats in its
// machine code until a run exits to Go, so these runs end the repeating
// mid-chunk, which must change nothing the runs leave.
func repeatSpec() *ebpf.CollectionSpec {
	count := func(slot int32) asm.Instructions {
		return asm.Instructions{
			asm.StoreImm(asm.R10, -4, int64(slot), asm.Word),
			asm.Mov.Reg(asm.R2, asm.R10),
			asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, 0).WithReference("counts"),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "pass"),
			asm.Mov.Imm(asm.R1, 1),
			asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		}
	}
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 14),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R6, asm.R2, 0, asm.Byte),
		asm.Add.Imm(asm.R6, 1),
		asm.StoreMem(asm.R2, 0, asm.R6, asm.Byte),
	}
	insns = append(insns, count(0)...)
	insns = append(insns,
		asm.And.Imm(asm.R6, 7),
		asm.JNE.Imm(asm.R6, 0, "pass"),
		asm.FnKtimeGetNs.Call(),
	)
	insns = append(insns, count(1)...)
	insns = append(insns,
		asm.Mov.Imm(asm.R0, 2).WithSymbol("pass"),
		asm.Return(),
	)
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{"counts": {Name: "counts", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 2}},
		Programs: map[string]*ebpf.ProgramSpec{"repeat": {
			Name: "repeat", Type: ebpf.XDP, License: "GPL", Instructions: insns,
		}},
	}
}

// TestRepeat_engines runs the repeats of one Run (RunOptions.Repeat) on
// every engine and, as root, in the kernel: each run on what the one
// before left, however the engine makes them (the JIT makes up to 4096
// in its machine code, ending early at a run that needs Go). The packet's
// first byte, the run counter and the helper counter say how many runs
// there were; they must be what the repeat count says, everywhere.
func TestRepeat_engines(t *testing.T) {
	repeats := []uint32{1, 2, 7, 8, 9, 4095, 4096, 4097, 10000}
	type outcome struct {
		ret          uint32
		first        byte
		runs, called uint64
	}
	want := func(r uint32) outcome {
		return outcome{2, byte(r), uint64(r), uint64(r / 8)}
	}
	counts := func(t *testing.T, lookup func(k uint32) (uint64, error)) (uint64, uint64) {
		t.Helper()
		var v [2]uint64
		for k := range v {
			var err error
			if v[k], err = lookup(uint32(k)); err != nil {
				t.Fatal(err)
			}
		}
		return v[0], v[1]
	}
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			for _, r := range repeats {
				coll, err := waggle.NewCollection(repeatSpec(), &waggle.CollectionOptions{CPUs: 1, Engine: e})
				if err != nil {
					t.Fatal(err)
				}
				out := make([]byte, 64)
				ret, err := coll.Programs["repeat"].Run(&waggle.RunOptions{Data: make([]byte, 64), DataOut: out, Repeat: r})
				if err != nil {
					t.Fatal(err)
				}
				got := outcome{ret: ret, first: out[0]}
				got.runs, got.called = counts(t, func(k uint32) (v uint64, err error) {
					return v, coll.Maps["counts"].Lookup(k, &v)
				})
				coll.Close()
				if got != want(r) {
					t.Errorf("repeat %d: %+v, want %+v", r, got, want(r))
				}
			}
		})
	}
	t.Run("kernel", func(t *testing.T) {
		if err := kernel.Supported(); err != nil {
			t.Skipf("kernel comparison: %v", err)
		}
		for _, r := range repeats {
			kc, err := ebpf.NewCollection(repeatSpec())
			if err != nil {
				t.Fatal(err)
			}
			out := make([]byte, 64)
			ret, err := kc.Programs["repeat"].Run(&ebpf.RunOptions{Data: make([]byte, 64), DataOut: out, Repeat: r})
			if err != nil {
				kc.Close()
				t.Fatal(err)
			}
			got := outcome{ret: ret, first: out[0]}
			got.runs, got.called = counts(t, func(k uint32) (v uint64, err error) {
				return v, kc.Maps["counts"].Lookup(k, &v)
			})
			kc.Close()
			if got != want(r) {
				t.Errorf("repeat %d: %+v, want %+v", r, got, want(r))
			}
		}
	})
}

// TestRepeat_stop: a context that ends stops a Run's repeats between
// runs, even of a program with no loop or call to notice it in, on every
// engine. Without the poll between repeats, 2^32-1 runs would take
// minutes.
func TestRepeat_stop(t *testing.T) {
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := waggle.NewCollection(exitSpec(ebpf.XDP, 2), &waggle.CollectionOptions{CPUs: 1, Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			_, err = coll.Programs["exit"].RunContext(ctx, &waggle.RunOptions{Data: make([]byte, 64), Repeat: 1<<32 - 1})
			if !errors.Is(err, waggle.ErrStopped) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err %v, want ErrStopped and the deadline", err)
			}
		})
	}
}

// TestRepeat_tailCalls: every repeat is a run of its own, with its own
// limit of 33 tail calls. The program counts its entries and tail-calls
// itself until the limit stops it: 34 entries a run, however the engine
// makes the repeats (a tail call needs the JIT's runtime, which must end
// the repeating there, so that the next run starts with a count of 0).
func TestRepeat_tailCalls(t *testing.T) {
	spec := func() *ebpf.CollectionSpec {
		return &ebpf.CollectionSpec{
			Maps: map[string]*ebpf.MapSpec{
				"counts": {Name: "counts", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1},
				"jmp": {Name: "jmp", Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 1,
					Contents: []ebpf.MapKV{{Key: uint32(0), Value: "tail"}}},
			},
			Programs: map[string]*ebpf.ProgramSpec{"tail": {
				Name: "tail", Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
					asm.Mov.Reg(asm.R6, asm.R1),
					asm.StoreImm(asm.R10, -4, 0, asm.Word),
					asm.Mov.Reg(asm.R2, asm.R10),
					asm.Add.Imm(asm.R2, -4),
					asm.LoadMapPtr(asm.R1, 0).WithReference("counts"),
					asm.FnMapLookupElem.Call(),
					asm.JEq.Imm(asm.R0, 0, "out"),
					asm.Mov.Imm(asm.R1, 1),
					asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
					asm.Mov.Reg(asm.R1, asm.R6),
					asm.LoadMapPtr(asm.R2, 0).WithReference("jmp"),
					asm.Mov.Imm(asm.R3, 0),
					asm.FnTailCall.Call(),
					asm.Mov.Imm(asm.R0, 2).WithSymbol("out"),
					asm.Return(),
				}}},
		}
	}
	const repeat = 100
	const want = 34 * repeat
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := waggle.NewCollection(spec(), &waggle.CollectionOptions{CPUs: 1, Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			if _, err := coll.Programs["tail"].Run(&waggle.RunOptions{Data: make([]byte, 64), Repeat: repeat}); err != nil {
				t.Fatal(err)
			}
			var n uint64
			if err := coll.Maps["counts"].Lookup(uint32(0), &n); err != nil {
				t.Fatal(err)
			}
			if n != want {
				t.Errorf("%d entries in %d runs, want %d", n, repeat, want)
			}
		})
	}
	t.Run("kernel", func(t *testing.T) {
		if err := kernel.Supported(); err != nil {
			t.Skipf("kernel comparison: %v", err)
		}
		kc, err := ebpf.NewCollection(spec())
		if err != nil {
			t.Fatal(err)
		}
		defer kc.Close()
		if _, err := kc.Programs["tail"].Run(&ebpf.RunOptions{Data: make([]byte, 64), Repeat: repeat}); err != nil {
			t.Fatal(err)
		}
		var n uint64
		if err := kc.Maps["counts"].Lookup(uint32(0), &n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%d entries in %d runs, want %d", n, repeat, want)
		}
	})
}
