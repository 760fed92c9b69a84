package interp_test

import (
	"errors"
	"testing"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/interp"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/maps"
)

// foreign is a Program another engine loaded.
type foreign struct{}

func (foreign) Instructions() []isa.Instruction { return nil }
func (foreign) Engine() engine.Engine           { return nil }

// TestEngine_seam: the interpreter through the engine seam loads, runs
// and refuses as interp.Load and Machine.Run do, reaches the map memory
// the seam's Options.Memory gives, and refuses programs it did not load.
func TestEngine_seam(t *testing.T) {
	prog, err := asm.Parse("r0 = *(u64 *)(r1 + 0)\nexit")
	if err != nil {
		t.Fatal(err)
	}
	value := mem.Aligned(8)
	value[0] = 42
	for _, e := range []interp.Engine{{Mode: interp.Checked}, {Mode: interp.Fast}} {
		t.Run(e.Name(), func(t *testing.T) {
			mm, err := e.NewMemory([]maps.Region{{Data: value}})
			if err != nil || mm.Len() != 1 {
				t.Fatalf("NewMemory: %v, %v", mm, err)
			}
			p, err := e.Load(prog, engine.Options{UnsafeFastUnverified: true, Memory: func() engine.Memory { return mm }})
			if err != nil {
				t.Fatal(err)
			}
			if p.Engine() != engine.Engine(e) || len(p.Instructions()) != len(prog) {
				t.Fatalf("Engine %v, %d slots", p.Engine(), len(p.Instructions()))
			}
			m := e.NewMachine()
			r0, err := m.Run(p, &engine.Args{Regs: [5]uint64{mem.Addr(value)}})
			if err != nil || r0 != 42 {
				t.Fatalf("run: %d, %v", r0, err)
			}
			if _, err := m.Run(foreign{}, &engine.Args{}); !errors.Is(err, engine.ErrNotSupported) {
				t.Fatalf("foreign program: %v", err)
			}
		})
	}
	// Without the memory, the checked engine faults with the seam's Fault.
	e := interp.Engine{Mode: interp.Checked}
	p, err := e.Load(prog, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.NewMachine().Run(p, &engine.Args{Regs: [5]uint64{mem.Addr(value)}})
	var f *engine.Fault
	if !errors.As(err, &f) || !errors.Is(err, engine.ErrMemory) || f.PC != 0 || f.Program != p {
		t.Fatalf("without memory: %v", err)
	}
	// A failed load is a nil Program, not a nil *Program in an interface.
	if p, err := e.Load([]isa.Instruction{{Op: 0xff}}, engine.Options{}); err == nil || p != nil {
		t.Fatalf("bad program: %v, %v", p, err)
	}
	if _, err := (interp.Engine{Mode: interp.Fast}).Load(prog, engine.Options{}); !errors.Is(err, interp.ErrUnverifiedFast) {
		t.Fatalf("fast, unverified: %v", err)
	}
	if e.Name() != "interp" || (interp.Engine{Mode: interp.Fast}).Name() != "interp-fast" || !e.Checked() {
		t.Fatal("names")
	}
}
