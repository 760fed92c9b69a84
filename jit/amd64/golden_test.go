package amd64

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/loader"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.txt from the code generated now")

// TestGolden keeps the machine code of small programs in
// testdata/golden, disassembled: the stubs every program shares (entry,
// exit to Go, yield, fault), a prologue and epilogue, a budgeted loop, a
// helper call and its continuation. A change to the generated code shows
// up here as a diff to review (go test -run TestGolden -update rewrites
// the files).
func TestGolden(t *testing.T) {
	for name, src := range map[string]string{
		"exit": "r0 = 2\nexit",
		"loop": `
			r0 = 0
		top:
			r0 += 1
			if r0 < 10 goto top
			exit`,
		"helper": "r1 = 7\ncall 7\nexit",
	} {
		t.Run(name, func(t *testing.T) {
			prog, err := asm.Parse(src)
			if err != nil {
				t.Fatal(err)
			}
			c, err := compile(prog, options{
				helpers:  helpers.Table{7: func(helpers.Env, *[5]uint64) (uint64, error) { return 0, nil }},
				budgeted: true,
				costs:    engine.FrameCosts(prog),
			})
			if err != nil {
				t.Fatal(err)
			}
			got := disassemble(t, c)
			path := filepath.Join("testdata", "golden", name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -run TestGolden -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("the code of %q changed (go test -run TestGolden -update rewrites %s after review):\ngot:\n%s\nwant:\n%s", name, path, got, want)
			}
		})
	}
}

// disassemble lists c's code, one instruction per line with its offset,
// and marks where the eBPF slots and functions start.
func disassemble(t *testing.T, c *compiled) string {
	t.Helper()
	marks := map[int][]string{}
	for name, off := range c.stubs {
		marks[off] = append(marks[off], name+":")
	}
	for pc, off := range c.pcs {
		if off >= 0 {
			marks[off] = append(marks[off], fmt.Sprintf("; slot %d", pc))
		}
	}
	for pc, off := range c.funcs {
		marks[off] = append([]string{fmt.Sprintf("func %d:", pc)}, marks[off]...)
	}
	var b strings.Builder
	for off := 0; off < len(c.code); {
		for _, m := range marks[off] {
			b.WriteString(m + "\n")
		}
		in, err := x86asm.Decode(c.code[off:], 64)
		if err != nil {
			t.Fatalf("offset %#x: %v", off, err)
		}
		fmt.Fprintf(&b, "  %04x  %s\n", off, x86asm.GNUSyntax(in, uint64(off), nil))
		off += in.Len
	}
	return b.String()
}

// BenchmarkCompile is the time to translate the programs of the
// interpreter's benchmark object (loops, calls, branches), each run
// translating all of them: two passes and sometimes a third, since jumps
// are made short where they reach and small loops placed in one line.
//
//	go test ./jit/amd64 -run '^$' -bench Compile
func BenchmarkCompile(b *testing.B) {
	obj, err := loader.LoadFile("../../interp/testdata/bench/bench.o", loader.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var insns int
	for _, p := range obj.Programs {
		insns += len(p.Insns)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range obj.Programs {
			if _, err := compile(p.Insns, options{budgeted: true, costs: engine.FrameCosts(p.Insns)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*insns), "ns/insn")
}
