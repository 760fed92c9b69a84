package inspect

import (
	"bytes"
	"io"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/isa"
)

// BenchmarkFormatXlated formats a 4096-slot program of loads, ALU, map
// references and helper calls, with source lines on every fourth slot.
func BenchmarkFormatXlated(b *testing.B) {
	var prog []isa.Instruction
	lines := map[int]SourceLine{}
	for len(prog) < 4096 {
		lines[len(prog)] = SourceLine{File: "p.c", Line: "x += y;", Number: 3}
		prog = append(prog,
			isa.Instruction{Op: isa.OpLoadImm64, Dst: isa.R1, Src: isa.PseudoMapFD, Imm: 7}, isa.Instruction{},
			isa.Instruction{Op: isa.Opcode(isa.ClassLDX) | isa.Opcode(isa.SizeW) | isa.Opcode(isa.ModeMEM), Dst: isa.R2, Src: isa.R1, Off: 4},
			isa.Instruction{Op: isa.OpCall, Imm: 1})
	}
	a := Annotations{Lines: lines, MapName: func(uint32) string { return "counts" }}
	b.ReportAllocs()
	for b.Loop() {
		FormatXlated(prog, a)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(prog)), "ns/insn")
}

// BenchmarkDisasmJited disassembles 64 KiB of typical JIT output.
func BenchmarkDisasmJited(b *testing.B) {
	pattern := []byte{
		0x55,             // push %rbp
		0x48, 0x89, 0xe5, // mov %rsp,%rbp
		0x48, 0x8b, 0x77, 0x08, // mov 0x8(%rdi),%rsi
		0x48, 0x83, 0xc2, 0x0e, // add $0xe,%rdx
		0x0f, 0x87, 0x10, 0x00, 0x00, 0x00, // ja +0x10
		0xe8, 0x00, 0x10, 0x00, 0x00, // call
		0xc9, 0xc3, // leave; ret
	}
	code := bytes.Repeat(pattern, 65536/len(pattern))
	in := JitedInput{Code: code, Addrs: []uint64{0xffffffffc0000000}, Symbol: func(uint64) string { return "" }}
	b.SetBytes(int64(len(code)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DisasmJited(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteC_kernel writes the running kernel's types as C (a
// vmlinux.h).
func BenchmarkWriteC_kernel(b *testing.B) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		b.Skipf("kernel BTF: %v", err)
	}
	types, err := SelectTypes(spec, nil)
	if err != nil {
		b.Fatal(err)
	}
	types = TypeDefinitions(types)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteC(io.Discard, types); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(types)), "types")
}

// BenchmarkEntryJSON formats an LPM trie element with its BTF types.
func BenchmarkEntryJSON(b *testing.B) {
	m := lpmMap()
	e := Entry{Key: []byte{32, 0, 0, 0, 10, 0, 0, 1}, Value: []byte{5, 0, 0, 0, 0, 0, 0, 0}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EntryJSON(m, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseKey parses a typed LPM key from the command line.
func BenchmarkParseKey(b *testing.B) {
	m := lpmMap()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseKey(m, `{"prefixlen": 24, "addr": [192, 168, 0, 0]}`); err != nil {
			b.Fatal(err)
		}
	}
}
