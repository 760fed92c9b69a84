package asm

import (
	"fmt"
	"strings"

	"github.com/waggle-bpf/waggle/isa"
)

// Style selects what Disassemble prints besides the instruction text.
// Styles combine: Listing|Labels.
type Style uint8

const (
	// Plain prints one instruction per line in isa.Format's syntax.
	Plain Style = 0
	// Listing prints each instruction as llvm-objdump -d does: the slot
	// index right-aligned in eight columns, a colon, a tab, the raw bytes
	// (all sixteen of a lddw on one line), a tab, the text:
	//
	//	       5:	71 21 f8 ff 00 00 00 00	r1 = *(u8 *)(r2 - 0x8)
	Listing Style = 1 << iota
	// Labels names every jump and call target "L<slot>", prints "L<slot>:"
	// on a line of its own before it, and refers to it by that name
	// ("goto L7", "call L12", "r1 = func(L12) ll"). Targets outside the
	// program or inside a lddw keep their numeric offsets.
	Labels
)

// Disassemble returns the text of a program, one instruction per line, each
// line ending in a newline. For every program isa.ValidateProgram accepts,
// Parse of the result, in any Style, gives back the same instructions.
// Disassemble never fails: invalid instructions print as isa.Format prints
// them, and a lddw cut off by the end of the program prints its one slot.
func Disassemble(prog []isa.Instruction, style Style) string {
	second := make([]bool, len(prog)+1)
	for i := 0; i < len(prog); i++ {
		if prog[i].IsLoadImm64() {
			second[i+1] = true
			i++
		}
	}
	targets := make(map[int]bool)
	if style&Labels != 0 {
		for i := 0; i < len(prog); i++ {
			if second[i] {
				continue
			}
			if t, ok := prog[i].JumpTarget(i); ok && t >= 0 && t < len(prog) && !second[t] {
				targets[t] = true
			}
		}
	}
	var b strings.Builder
	for i := 0; i < len(prog); i++ {
		ins := prog[i]
		if targets[i] {
			fmt.Fprintf(&b, "L%d:\n", i)
		}
		slots := prog[i:min(i+ins.Width(), len(prog))]
		var next isa.Instruction
		if len(slots) == 2 {
			next = slots[1]
		}
		text := isa.Format(ins, next)
		if t, ok := ins.JumpTarget(i); ok && targets[t] {
			text = withLabel(text, ins, t)
		}
		if style&Listing != 0 {
			fmt.Fprintf(&b, "%8d:\t", i)
			for j, x := range isa.Encode(slots) {
				if j > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "%02x", x)
			}
			b.WriteByte('\t')
		}
		b.WriteString(text)
		b.WriteByte('\n')
		i += len(slots) - 1
	}
	return b.String()
}

// withLabel replaces the numeric target at the end of a jump or call's text
// (isa.Format's "goto +0x3", "gotol -0x2", "call pc+3", "func(pc+3) ll")
// with the target's label.
func withLabel(text string, ins isa.Instruction, target int) string {
	label := fmt.Sprintf("L%d", target)
	if ins.IsLoadImm64() {
		return strings.Replace(text, fmt.Sprintf("func(pc%+d)", ins.Imm), "func("+label+")", 1)
	}
	i := strings.LastIndexByte(text, ' ')
	return text[:i+1] + label
}
