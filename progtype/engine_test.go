package progtype_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/engines"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// mustParse assembles a test program.
func mustParse(tb testing.TB, src string) []isa.Instruction {
	tb.Helper()
	p, err := asm.Parse(src)
	if err != nil {
		tb.Fatalf("parse: %v", err)
	}
	return p
}

// mustKind looks up a program type.
func mustKind(tb testing.TB, t progtype.Type) *progtype.Kind {
	tb.Helper()
	k, err := progtype.Lookup(t)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// helperTable is the type's helpers plus the generic ones it allows.
func helperTable(k *progtype.Kind) helpers.Table { return k.HelperTable("GPL").Funcs }

// checked and fast are the engines tests run programs on: the
// interpreter checking every access, and without checks.
var checked, fast = mustEngine(engines.Interp), mustEngine(engines.InterpFast)

func mustEngine(name string) engine.Engine {
	e, err := engines.ByName(name)
	if err != nil {
		panic(err)
	}
	return e
}

// prepare converts prog's context accesses for k as the runtime does: those
// waggle's verifier finds if it accepts the program (Convert), otherwise
// each decided at run time (Rewrite).
func prepare(tb testing.TB, k *progtype.Kind, prog []isa.Instruction) *progtype.Program {
	tb.Helper()
	table := k.HelperTable("GPL")
	var p *progtype.Program
	res, err := verifier.Verify(context.Background(), &verifier.Program{Name: "test", Insns: prog, Kind: k, Helpers: table.Protos, GPL: true}, nil)
	if err == nil {
		p, err = k.Convert(prog, res.CtxAccesses)
	} else {
		p, err = k.Rewrite(prog)
	}
	if err != nil {
		tb.Fatalf("rewrite: %v", err)
	}
	return p
}

// exec returns an Exec that runs p on the interpreter.
func exec(p engine.Program, st *helpers.State) progtype.Exec {
	return func(r *progtype.Run) (uint64, error) {
		regions := make([]engine.Region, len(r.Regions()))
		for i, reg := range r.Regions() {
			regions[i] = engine.Region(reg)
		}
		if st == nil {
			st = &helpers.State{}
		}
		st.Hook = r
		return p.Engine().NewMachine().Run(p, &engine.Args{
			Regs:    [5]uint64{r.Ctx()},
			Regions: regions,
			Packet:  r.Packet(),
			State:   st,
		})
	}
}

// runProg prepares, loads and runs prog on in, repeat times, as
// BPF_PROG_TEST_RUN does.
func runProg(tb testing.TB, eng engine.Engine, k *progtype.Kind, prog []isa.Instruction, in progtype.Input, repeat int) (*progtype.Output, error) {
	tb.Helper()
	rw := prepare(tb, k, prog)
	p, err := eng.Load(rw.Insns, engine.Options{Helpers: helperTable(k), UnsafeFastUnverified: !eng.Checked(), ContextVariants: rw.Variants, ContextFaults: rw.Faults})
	if err != nil {
		tb.Fatalf("load: %v", err)
	}
	r, err := rw.NewRun(in)
	if err != nil {
		return nil, err
	}
	x := exec(p, nil)
	var r0 uint64
	for i := 0; i < max(repeat, 1); i++ {
		if r0, err = x(r); err != nil {
			return nil, err
		}
	}
	return r.Finish(r0)
}

// mustParseNoTB assembles a program built by the test itself.
func mustParseNoTB(src string) []isa.Instruction {
	p, err := asm.Parse(src)
	if err != nil {
		panic(fmt.Sprintf("parse %q: %v", src, err))
	}
	return p
}

// disasm prints a program for failure messages.
func disasm(p []isa.Instruction) string { return asm.Disassemble(p, asm.Listing) }

// waggleErrno returns the errno a waggle error wraps, 0 for none.
func waggleErrno(err error) int {
	var e maps.Errno
	if errors.As(err, &e) {
		return int(e)
	}
	return 0
}
