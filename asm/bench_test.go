package asm

import (
	"os"
	"testing"
)

func BenchmarkParse(b *testing.B) {
	text, err := os.ReadFile("testdata/clang/insns.objdump")
	if err != nil {
		b.Fatal(err)
	}
	src := splitListing(string(text))[".text"]
	prog, err := Parse(src)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Parse(src); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(prog)), "ns/insn")
}

func BenchmarkDisassemble(b *testing.B) {
	prog := elfPrograms(b, "testdata/clang/insns.o")[".text"]
	for b.Loop() {
		Disassemble(prog, Listing|Labels)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(prog)), "ns/insn")
}
