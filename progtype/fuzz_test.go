package progtype_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/progtype"
)

// allKinds are the kinds the fuzzers rewrite for.
func allKinds(tb testing.TB) []*progtype.Kind {
	var ks []*progtype.Kind
	for _, typ := range []progtype.Type{progtype.XDP, progtype.SocketFilter, progtype.SchedCLS,
		progtype.CgroupSKB, progtype.Kprobe, progtype.Tracepoint, progtype.RawTracepoint, progtype.PerfEvent} {
		ks = append(ks, mustKind(tb, typ))
	}
	h, err := progtype.NewHook[hookCtx]("fuzz")
	if err != nil {
		tb.Fatal(err)
	}
	return append(ks, h.Kind())
}

// FuzzRewrite runs every type's Rewrite and Convert on arbitrary bytecode:
// an error or a result, never a panic. Rewrite keeps the program as it is
// and offers a context form only for loads and stores; Convert of the
// accesses Rewrite found changes exactly those, as Rewrite's forms say.
func FuzzRewrite(f *testing.F) {
	for _, src := range []string{
		"r0 = *(u32 *)(r1 + 0)\nexit",
		"r6 = r1\ncall 5\nr0 = *(u32 *)(r6 + 76)\n*(u32 *)(r6 + 8) = r0\nexit",
		"*(u64 *)(r10 - 8) = r1\nr2 = *(u64 *)(r10 - 8)\nr0 = *(u8 *)(r2 + 9)\nexit",
		"call fn\nexit\nfn:\nr0 = *(u32 *)(r1 + 4)\nexit",
		"r2 = r1\nif r0 == 0 goto l\nr2 = r10\nl:\nr0 = *(u32 *)(r2 - 8)\nexit",
		"*(u64 *)(r10 - 8) = r1\nr1 = 4\nr2 = func(cb) ll\nr3 = r10\nr3 += -8\nr4 = 0\ncall 181\nexit\ncb:\nr3 = *(u64 *)(r2 + 0)\nr0 = *(u32 *)(r3 + 12)\nexit",
	} {
		f.Add(isa.Encode(mustParseNoTB(src)))
	}
	kinds := allKinds(f)
	f.Fuzz(func(t *testing.T, code []byte) {
		prog, err := isa.Decode(code)
		if err != nil {
			return
		}
		for _, k := range kinds {
			p, err := k.Rewrite(prog)
			if err != nil {
				continue
			}
			if !slices.Equal(p.Insns, prog) {
				t.Fatalf("%s: Rewrite changed the program", k)
			}
			var at []int
			for pc, alt := range p.Variants {
				if c := prog[pc].Op.Class(); c != isa.ClassLDX && c != isa.ClassST && c != isa.ClassSTX {
					t.Fatalf("%s: a context form %v for %v, no load or store", k, alt, prog[pc])
				}
				at = append(at, pc)
			}
			slices.Sort(at)
			c, err := k.Convert(prog, at)
			if err != nil {
				t.Fatalf("%s: Convert of the accesses Rewrite converts: %v", k, err)
			}
			for i := range prog {
				if alt, ok := p.Variants[i]; ok && c.Insns[i] != alt || !ok && c.Insns[i] != prog[i] {
					t.Fatalf("%s: instruction %d: Convert gives %v, Rewrite's context form %v", k, i, c.Insns[i], alt)
				}
			}
		}
	})
}

// helperIDs are the type-specific helpers the helper fuzzer calls.
var helperIDs = []int32{44, 65, 54, 188, 189, 190, 23, 28, 9, 26, 68, 10, 11, 40, 135, 39, 32, 31, 38, 43, 50, 18, 19, 34, 41, 48,
	14, 15, 16, 35, 4, 45, 112, 113, 114, 115, 173, 27, 67, 109, 117,
	// Added later, at the end so that the corpus keeps its meaning.
	120, 17, 151, 24, 192,
	163, 13, 37, 69, 123, 80, 98, 122, 46, 47, 25, 22, 55, 36, 51, 152, 155, 124, 95, 84, 85, 86,
	83, 79, 97, 20, 29, 21, 30, 33, 99, 96,
	204, 205, 206, 207}

// FuzzHelpers calls the type-specific helpers with arbitrary arguments on
// arbitrary packets, twice in a row, in the checked interpreter: a result or
// an error, never a panic.
func FuzzHelpers(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint64(0xfffffffffffffff2), uint64(0), uint64(0), uint64(0), uint8(0), ipv4UDP())
	f.Add(uint8(2), uint8(16), uint64(30), uint64(0), uint64(4), uint64(1), uint8(2), ipv4UDP())
	f.Add(uint8(1), uint8(20), uint64(8), uint64(1), uint64(0x12), uint64(0), uint8(0), ipv6TCP())
	f.Add(uint8(1), uint8(21), uint64(0x81), uint64(7), uint64(0), uint64(0), uint8(0), testPackets()[6].data)
	kinds := []*progtype.Kind{mustKind(f, progtype.XDP), mustKind(f, progtype.SchedCLS), mustKind(f, progtype.SocketFilter), mustKind(f, progtype.Kprobe)}
	f.Fuzz(func(t *testing.T, kind, which uint8, a2, a3, a4, a5 uint64, ptrs uint8, data []byte) {
		k := kinds[int(kind)%len(kinds)]
		id := helperIDs[int(which)%len(helperIDs)]
		id2 := helperIDs[int(which/2+ptrs)%len(helperIDs)]
		reg := func(r int, v uint64, stack bool) string {
			if stack {
				return fmt.Sprintf("r%d = r10\nr%d += %d", r, r, -int(v%64)-8)
			}
			return fmt.Sprintf("r%d = %#x ll", r, v)
		}
		src := "r6 = r1\n" + reg(2, a2, ptrs&1 != 0) + "\n" + reg(3, a3, ptrs&2 != 0) + "\n" + reg(4, a4, ptrs&4 != 0) +
			"\n" + reg(5, a5, ptrs&8 != 0) + fmt.Sprintf("\nr1 = r6\ncall %d\nr1 = r6\nr2 = r0\nr3 = r10\nr3 += -32\nr4 = 8\nr5 = 1\ncall %d\nexit", id, id2)
		if ptrs&16 != 0 {
			src = "r1 = r10\nr1 += -16\nr2 = 16\n" + src[len("r6 = r1\n"):] // r1 on the stack
			src = "r6 = r1\n" + src
		}
		prog := mustParseNoTB(src)
		p, err := k.Rewrite(prog)
		if err != nil {
			return
		}
		ip, err := checked.Load(p.Insns, engine.Options{Helpers: helperTable(k), ContextVariants: p.Variants, ContextFaults: p.Faults})
		if err != nil {
			return
		}
		in := progtype.Input{Data: data, Task: &progtype.Task{PID: 1, Comm: "fuzz", Struct: data}, Memory: []progtype.Region{{Data: data}}}
		if k.Type() == progtype.Kprobe {
			in = progtype.Input{Context: data[:min(len(data), progtype.PtRegsSize)], Task: in.Task, Memory: in.Memory}
		}
		run, err := p.NewRun(in)
		if err != nil {
			return
		}
		st := &helpers.State{Hook: run}
		regions := make([]engine.Region, 0, len(run.Regions()))
		for _, r := range run.Regions() {
			regions = append(regions, engine.Region(r))
		}
		r0, err := ip.Engine().NewMachine().Run(ip, &engine.Args{Regs: [5]uint64{run.Ctx()}, Regions: regions, Packet: run.Packet(), State: st})
		if err != nil {
			return
		}
		if _, err := run.Finish(r0); err != nil {
			return
		}
	})
}

// TestFuzzHelpersCoverage: FuzzHelpers calls every helper its program
// types implement, so that a helper added later is fuzzed too.
func TestFuzzHelpersCoverage(t *testing.T) {
	listed := map[int32]bool{}
	for _, id := range helperIDs {
		listed[id] = true
	}
	for _, typ := range []progtype.Type{progtype.XDP, progtype.SchedCLS, progtype.SocketFilter, progtype.Kprobe} {
		for _, d := range mustKind(t, typ).Helpers() {
			if !listed[d.ID] {
				t.Errorf("%v implements bpf_%s (%d), which FuzzHelpers does not call: add it to helperIDs", typ, d.Name, d.ID)
			}
		}
	}
}
