package engine

import (
	"sort"

	"github.com/waggle-bpf/waggle/isa"
)

// FrameCosts returns, for each function entry of prog (slot 0, the
// targets of bpf-to-bpf calls and of BPF_PSEUDO_FUNC lddw), the fuel a
// frame starting there spends under Args.Budget: the function's length,
// or the rest of the program from the entry when the function does not
// end in exit or goto or jumps outside itself (malformed code, which
// only a checked engine runs). The second slot of a lddw (opcode 0, as
// isa.ValidateProgram requires) is neither a jump nor an exit. Every engine charges these costs, so a
// budget ends a run at the same slot whichever engine runs it.
func FrameCosts(prog []isa.Instruction) map[int]uint64 {
	entries := map[int]bool{0: true}
	for pc, ins := range prog {
		if ins.IsLocalCall() || ins.IsLoadImm64() && ins.Src == isa.PseudoFunc {
			if t, ok := ins.JumpTarget(pc); ok && t >= 0 && t < len(prog) {
				entries[t] = true
			}
		}
	}
	sorted := make([]int, 0, len(entries))
	for e := range entries {
		sorted = append(sorted, e)
	}
	sort.Ints(sorted)
	costs := make(map[int]uint64, len(sorted))
	for k, e := range sorted {
		end := len(prog)
		if k+1 < len(sorted) {
			end = sorted[k+1]
		}
		cost := uint64(end - e)
		if !isExitOrGoto(prog[end-1]) {
			cost = uint64(len(prog) - e)
		}
		for pc := e; pc < end && cost == uint64(end-e); pc++ {
			if !isJump(prog[pc]) {
				continue
			}
			if t, _ := prog[pc].JumpTarget(pc); t < e || t >= end {
				cost = uint64(len(prog) - e)
			}
		}
		costs[e] = cost
	}
	return costs
}

// isJump reports whether ins is a jump: conditional, goto, gotol or
// may_goto (not a call or exit).
func isJump(ins isa.Instruction) bool {
	if !ins.Op.Class().IsJump() {
		return false
	}
	op := ins.Op.JumpOp()
	return op != isa.Call && op != isa.Exit
}

func isExitOrGoto(ins isa.Instruction) bool {
	return ins.Op.Class().IsJump() && (ins.Op.JumpOp() == isa.Exit || ins.Op.JumpOp() == isa.JumpA)
}
