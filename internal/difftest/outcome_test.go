package difftest

import (
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

// TestInterp_Fault checks that a bad access is an error in both modes: a
// *engine.Fault in checked mode, a recovered fault in fast mode (which only
// verified programs should reach, but a differential test must survive an
// engine bug).
func TestInterp_Fault(t *testing.T) {
	prog := []isa.Instruction{
		{Op: isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov), Dst: isa.R3, Imm: 0x7ead0000},
		{Op: isa.Opcode(isa.ClassLDX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(isa.SizeDW), Dst: isa.R0, Src: isa.R3},
		{Op: isa.OpExit},
	}
	e := NewInterp()
	if o := e.Run(prog, make([]byte, 16), Checked()); o.Err == nil {
		t.Errorf("checked: %v, want a fault", o)
	}
	if o := e.Run(prog, make([]byte, 16), Fast()); o.Err == nil || !strings.Contains(o.Err.Error(), "panicked") {
		t.Errorf("fast: %v, want a recovered fault", o)
	}
	// The Interp still works afterwards.
	ok := []isa.Instruction{{Op: isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov), Imm: 3}, {Op: isa.OpExit}}
	if o := e.Run(ok, nil, Fast()); o.Err != nil || o.Ret != 3 {
		t.Errorf("after the fault: %v", o)
	}
}
