package amd64

import (
	"fmt"
	"testing"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/internal/engine"
)

// TestSavedRegs: a function saves the registers of r6-r9 it names and
// no others; code whose jumps leave their function makes every function
// save all four, since one function's slots then run in another's frame.
func TestSavedRegs(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      string // per function entry
	}{
		{"none", "r0 = 2\nexit", "map[0:[]]"},
		{"main and a callee", `
			r6 = 1
			call f
			r0 += r6
			exit
		f:
			r7 = r1
			r9 = r7
			r0 = r9
			exit`, "map[0:[rbx] 4:[r13 r15]]"},
		{"a jump out of its function", `
			r6 = 1
			call f
		back:
			exit
		f:
			r0 = 0
			if r1 > 0 goto back
			exit`, "map[0:[rbx r13 r14 r15] 3:[rbx r13 r14 r15]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := asm.Parse(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			fn := map[int]Label{}
			for e := range engine.FrameCosts(prog) {
				fn[e] = 0
			}
			fn[0] = 0
			if got := fmt.Sprint(savedRegs(prog, fn)); got != tc.want {
				t.Errorf("saved %s, want %s", got, tc.want)
			}
		})
	}
}
