package difftest

import (
	"fmt"
	"strings"

	"github.com/waggle-bpf/waggle/isa"
)

// formatData writes a program in the .data format: a header of comment
// lines, the disassembly as comments, then "-- raw", "-- mem" and
// "-- result".
func formatData(header []string, insns []isa.Instruction, mem []byte, result uint64) string {
	var b strings.Builder
	for _, h := range header {
		for _, l := range strings.Split(h, "\n") {
			b.WriteString(strings.TrimRight("# "+l, " ") + "\n")
		}
	}
	b.WriteString("#\n")
	b.WriteString(disasm(insns, "#   "))
	b.WriteString("-- raw\n")
	enc := isa.Encode(insns)
	for i := 0; i < len(enc); i += 8 {
		var w uint64
		for j := 7; j >= 0; j-- {
			w = w<<8 | uint64(enc[i+j])
		}
		fmt.Fprintf(&b, "0x%016x\n", w)
	}
	b.WriteString("-- mem\n")
	for i := 0; i < len(mem); i += 16 {
		line := make([]string, 0, 16)
		for _, c := range mem[i:min(i+16, len(mem))] {
			line = append(line, fmt.Sprintf("%02x", c))
		}
		b.WriteString(strings.Join(line, " ") + "\n")
	}
	fmt.Fprintf(&b, "-- result\n%#x\n", result)
	return b.String()
}

// disasm returns the program in llvm-objdump syntax, one slot index per
// instruction, each line prefixed.
func disasm(insns []isa.Instruction, prefix string) string {
	var b strings.Builder
	for i := 0; i < len(insns); i++ {
		var next isa.Instruction
		if i+1 < len(insns) {
			next = insns[i+1]
		}
		fmt.Fprintf(&b, "%s%4d: %s\n", prefix, i, isa.Format(insns[i], next))
		if insns[i].IsLoadImm64() {
			i++
		}
	}
	return b.String()
}
