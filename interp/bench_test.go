package interp_test

import (
	"debug/elf"
	"sync/atomic"
	"testing"

	"github.com/waggle-bpf/waggle/interp"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
)

// benchPrograms are the functions of testdata/bench/bench.c, each alone in
// an "xdp" section of bench.o, in file order.
var benchPrograms = []string{"entry", "lcg", "memsum", "fib32"}

// readBench returns the instructions of each program in bench.o, straight
// from the ELF section bytes.
func readBench(tb testing.TB) map[string][]isa.Instruction {
	tb.Helper()
	f, err := elf.Open("testdata/bench/bench.o")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]isa.Instruction{}
	for _, sym := range syms {
		if elf.ST_TYPE(sym.Info) != elf.STT_FUNC || int(sym.Section) >= len(f.Sections) {
			continue
		}
		b, err := f.Sections[sym.Section].Data()
		if err != nil {
			tb.Fatal(err)
		}
		prog, err := isa.Decode(b[sym.Value : sym.Value+sym.Size])
		if err != nil {
			tb.Fatal(err)
		}
		out[sym.Name] = prog
	}
	for _, name := range benchPrograms {
		if out[name] == nil {
			tb.Fatalf("bench.o has no function %s", name)
		}
	}
	return out
}

// executed counts the instructions one run of prog executes, and returns r0.
func executed(tb testing.TB, prog []isa.Instruction) (uint64, uint64) {
	tb.Helper()
	var n uint64
	p, err := interp.Load(prog, interp.Options{Trace: func(int, *[11]uint64) { n++ }})
	if err != nil {
		tb.Fatal(err)
	}
	r0, err := interp.NewMachine().Run(p, &interp.Args{})
	if err != nil {
		tb.Fatal(err)
	}
	return n, r0
}

// TestBenchPrograms checks that the benchmark programs compute what they
// should in every mode, and in the kernel when it is available.
func TestBenchPrograms(t *testing.T) {
	want := map[string]uint64{"entry": 2}
	progs := readBench(t)
	for _, name := range benchPrograms {
		n, r0 := executed(t, progs[name])
		t.Logf("%s: %d instructions, r0 = %d", name, n, r0)
		if w, ok := want[name]; ok && r0 != w {
			t.Errorf("%s: r0 = %d, want %d", name, r0, w)
		}
		p, err := interp.Load(progs[name], interp.Options{Mode: interp.Fast, UnsafeFastUnverified: true})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := interp.NewMachine().Run(p, &interp.Args{}); err != nil || got != r0 {
			t.Errorf("%s fast: %d, %v; checked gave %d", name, got, err, r0)
		}
		if kernel.Supported() != nil {
			continue
		}
		kp, err := kernel.Load(progs[name], kernel.LoadOptions{Type: kernel.XDP, Name: name})
		if err != nil {
			t.Fatalf("%s: kernel: %v", name, err)
		}
		res, err := kp.Run(&kernel.RunOptions{Data: make([]byte, 64)})
		kp.Close()
		if err != nil {
			t.Fatal(err)
		}
		if uint64(res.Retval) != r0 {
			t.Errorf("%s: kernel returned %d, interpreter %d", name, res.Retval, r0)
		}
	}
}

// BenchmarkInterp runs the programs of bench.o in the interpreter (fast,
// checked, and checked with a budget and a stop flag as the runtime runs
// unverified programs) and, as root, in the kernel's JIT through
// BPF_PROG_TEST_RUN, and reports ns per executed instruction so the engines
// compare directly:
//
//	go test ./interp -run '^$' -bench Interp -benchtime 2s
func BenchmarkInterp(b *testing.B) {
	progs := readBench(b)
	for _, name := range benchPrograms {
		prog := progs[name]
		n, _ := executed(b, prog)
		b.Run(name, func(b *testing.B) {
			for _, v := range []struct {
				name    string
				mode    interp.Mode
				bounded bool
			}{{"fast", interp.Fast, false}, {"checked", interp.Checked, false}, {"checked-bounded", interp.Checked, true}} {
				b.Run(v.name, func(b *testing.B) {
					p, err := interp.Load(prog, interp.Options{Mode: v.mode, UnsafeFastUnverified: v.mode == interp.Fast, Budgeted: v.bounded})
					if err != nil {
						b.Fatal(err)
					}
					m := interp.NewMachine()
					a := &interp.Args{}
					if v.bounded {
						a.Budget, a.Stop = 1<<40, new(atomic.Bool)
					}
					for b.Loop() {
						if _, err := m.Run(p, a); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/insn")
				})
			}
			b.Run("kernel", func(b *testing.B) {
				if err := kernel.Supported(); err != nil {
					b.Skip(err)
				}
				kp, err := kernel.Load(prog, kernel.LoadOptions{Type: kernel.XDP, Name: name})
				if err != nil {
					b.Fatal(err)
				}
				defer kp.Close()
				opts := &kernel.RunOptions{Data: make([]byte, 64), DataOut: make([]byte, 512)}
				// The kernel times its own loop of Repeat runs; one syscall
				// per b.N keeps the syscall cost out of the figure.
				opts.Repeat = uint32(max(b.N, 1))
				res, err := kp.Run(opts)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(res.Duration.Nanoseconds()), "kernel-ns/op")
				b.ReportMetric(float64(res.Duration.Nanoseconds())/float64(n), "ns/insn")
			})
		})
	}
}
