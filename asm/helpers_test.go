package asm

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

// mustHex decodes "b7 01 00 00 05 00 00 00 ..." into slots.
func mustHex(tb testing.TB, s string) []isa.Instruction {
	tb.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	prog, err := isa.Decode(b)
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return prog
}

// hexOf prints slots as llvm-objdump's byte column does.
func hexOf(prog []isa.Instruction) string {
	b := isa.Encode(prog)
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(parts, " ")
}

// firstDiff describes the first slot where got and want differ.
func firstDiff(got, want []isa.Instruction) string {
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("slot %d: got %s (%v), want %s (%v)", i, hexOf(got[i:i+1]), got[i], hexOf(want[i:i+1]), want[i])
		}
	}
	return fmt.Sprintf("got %d slots, want %d", len(got), len(want))
}
