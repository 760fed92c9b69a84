package kernel

import (
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle/internal/ktest"
)

// TestCountVerdicts: every example's XDP programs, made to count their
// verdicts, still load, and count each test run under the value it
// returned; the dispatcher's tail calls count in the program called.
func TestCountVerdicts(t *testing.T) {
	mustSupported(t)
	objs, err := filepath.Glob("../examples/*/*.o")
	if err != nil {
		t.Fatal(err)
	}
	tested := 0
	for _, obj := range objs {
		spec, err := ebpf.LoadCollectionSpec(obj)
		if err != nil {
			continue // objects only waggle's loader reads
		}
		var xdp []string
		for name, ps := range spec.Programs {
			if ps.Type == ebpf.XDP {
				xdp = append(xdp, name)
			}
		}
		if len(xdp) == 0 {
			continue
		}
		t.Run(filepath.Base(obj), func(t *testing.T) {
			if err := CountVerdicts(spec, ebpf.XDP); err != nil {
				t.Fatal(err)
			}
			coll, err := ebpf.NewCollection(spec)
			if err != nil {
				t.Fatalf("%+v", err)
			}
			defer coll.Close()
			frame := ktest.IPv4Frame(6)
			var want Verdicts
			for _, name := range xdp {
				ret, err := coll.Programs[name].Run(&ebpf.RunOptions{Data: frame, Repeat: 3})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if ret < VerdictSlots {
					want.Counts[ret] += 3
				} else {
					want.Other += 3
				}
			}
			got, err := ReadVerdicts(coll.Maps[VerdictMap])
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("counted %+v, want %+v", got, want)
			}
		})
		tested++
	}
	if tested < 3 {
		t.Fatalf("%d example objects with XDP programs", tested)
	}
	// A subprogram's exit returns to its caller: only the main function's
	// count, whichever of its exits ends the run.
	spec := &ebpf.CollectionSpec{Maps: map[string]*ebpf.MapSpec{}, Programs: map[string]*ebpf.ProgramSpec{
		"calls": {Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R1, 5).WithSymbol("calls"),
			asm.Call.Label("fn"),
			asm.JEq.Imm(asm.R0, 5, "five"),
			asm.Return(),
			asm.Mov.Imm(asm.R0, 9).WithSymbol("five"),
			asm.Return(),
			asm.Mov.Reg(asm.R0, asm.R1).WithSymbol("fn"),
			asm.Return(),
		}},
	}}
	if err := CountVerdicts(spec, ebpf.XDP); err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Fatalf("%+v", err)
	}
	defer coll.Close()
	if ret, err := coll.Programs["calls"].Run(&ebpf.RunOptions{Data: ktest.IPv4Frame(6), Repeat: 2}); err != nil || ret != 9 {
		t.Fatalf("run: %d, %v", ret, err)
	}
	if got, err := ReadVerdicts(coll.Maps[VerdictMap]); err != nil || got != (Verdicts{Other: 2}) {
		t.Fatalf("counted %+v, %v; want 2 above the slots", got, err)
	}
	if err := CountVerdicts(&ebpf.CollectionSpec{Maps: map[string]*ebpf.MapSpec{}, Programs: map[string]*ebpf.ProgramSpec{}}, ebpf.XDP); err == nil {
		t.Error("counting the verdicts of an object without XDP programs succeeded")
	}
}
