package verifier

import (
	"math"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/isa"
)

// bpf_fastcall: clang (19 on) compiles a call to a helper marked
// bpf_fastcall as if it clobbered only r0 and its arguments, then saves
// and restores each other caller-saved register it needs around the call
// with a spill and fill at the bottom of the stack:
//
//	*(u64 *)(r10 - 16) = r1     ; the pattern: pairs of spill and fill,
//	*(u64 *)(r10 - 8) = r2      ; innermost at the lowest offset of the
//	call bpf_get_smp_processor_id ; function, each pair one register at
//	r2 = *(u64 *)(r10 - 8)      ; one slot, no jump into it
//	r1 = *(u64 *)(r10 - 16)
//
// so that kernels that inline the helper (and keep r1-r5) may drop the
// pairs, and those that do not still run it right. Linux drops them, and
// the slots with them, when nothing else in the function touches those
// slots (mark_fastcall_patterns, check_fastcall_stack_contract,
// remove_fastcall_spills_fills): the function's stack depth shrinks to
// what the rest uses, which decides the combined 512-byte limit.
// waggle's verifier counts the stack the same way and reports the pairs
// in Result.FastcallNops; its engines keep r1-r5 across helper calls and
// give every frame 512 bytes, so they may run the pairs or drop them.

// The opcodes of a pattern's spill and fill.
const (
	opStxDW = isa.Opcode(isa.ClassSTX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(isa.SizeDW) // 0x7b
	opLdxDW = isa.Opcode(isa.ClassLDX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(isa.SizeDW) // 0x79
)

// markFastcall finds the patterns of every function before the walk
// (mark_fastcall_patterns).
func (v *verifier) markFastcall() {
	var target []bool
	for si := range v.subprogs {
		sp := &v.subprogs[si]
		lowest := 0
		for pc := sp.start; pc < sp.end; pc++ {
			if ins := v.insns[pc]; ins.Op == opStxDW && ins.Dst == isa.R10 {
				lowest = min(lowest, int(ins.Off))
			}
		}
		for pc := sp.start; pc < sp.end; pc++ {
			if !v.insns[pc].IsHelperCall() {
				continue
			}
			if target == nil {
				target = v.jumpTargets()
			}
			v.markFastcallCall(sp, pc, lowest, target)
		}
	}
}

// jumpTargets marks the slots a jump, call or function pointer goes to
// (the kernel's jmp_point).
func (v *verifier) jumpTargets() []bool {
	t := make([]bool, len(v.insns))
	for pc := 0; pc < len(v.insns); pc++ {
		if to, ok := v.insns[pc].JumpTarget(pc); ok && to >= 0 && to < len(t) {
			t[to] = true
		}
	}
	return t
}

// markFastcallCall is mark_fastcall_pattern_for_call.
func (v *verifier) markFastcallCall(sp *subprog, pc, lowest int, target []bool) {
	proto, ok := v.p.Helpers[v.insns[pc].Imm]
	if !ok {
		return // refused where reached
	}
	const callerSaved = 0x3f // r0-r5
	clobbered := uint32(0)
	if proto.Ret != helpers.RetVoid {
		clobbered |= 1 << isa.R0
	}
	for i, a := range proto.Args {
		if a != helpers.ArgDontCare {
			clobbered |= 1 << (isa.R1 + isa.Register(i))
		}
	}
	if clobbered == callerSaved {
		return
	}
	expected := ^clobbered & callerSaved
	i, off := 1, lowest
	for ; i <= 6; i, off = i+1, off+8 {
		if pc-i < 0 || pc+i >= len(v.insns) || target[pc-i+1] || target[pc+i] {
			break
		}
		stx, ldx := v.insns[pc-i], v.insns[pc+i]
		if stx.Op != opStxDW || ldx.Op != opLdxDW || stx.Dst != isa.R10 || ldx.Src != isa.R10 ||
			stx.Src != ldx.Dst || expected&(1<<stx.Src) == 0 || int(stx.Off) != off || int(ldx.Off) != off {
			break
		}
		expected &^= 1 << stx.Src
		v.aux[pc-i].fastcallPattern = true
		v.aux[pc+i].fastcallPattern = true
	}
	if i == 1 {
		return
	}
	if proto.Fastcall {
		v.aux[pc].fastcallSpills = uint8(i - 1)
	} else {
		sp.keepFastcallStack = true
	}
	sp.fastcallOff = min(sp.fastcallOff, off)
}

// fastcallContract is check_fastcall_stack_contract: a stack access at off
// of frame's function by anything but a pattern's spill or fill keeps the
// function's patterns (and their slots).
func (v *verifier) fastcallContract(frame, off int) {
	sp := &v.subprogs[v.cur.frames[frame].subprog]
	if sp.fastcallOff <= off || v.aux[v.insnIdx].fastcallPattern {
		return
	}
	sp.fastcallOff = math.MinInt16
	for pc := sp.start; pc < sp.end; pc++ {
		v.aux[pc].fastcallPattern = false
		v.aux[pc].fastcallSpills = 0
	}
}

// removeFastcall is remove_fastcall_spills_fills: after an accepted walk,
// the functions whose patterns all held use only the stack above them.
// It returns the spills and fills Linux removes.
func (v *verifier) removeFastcall() []int {
	var nops []int
	for si := range v.subprogs {
		sp := &v.subprogs[si]
		modified := false
		for pc := sp.start; pc < sp.end; pc++ {
			if n := int(v.aux[pc].fastcallSpills); n > 0 {
				for j := 1; j <= n; j++ {
					nops = append(nops, pc-j, pc+j)
				}
				modified = true
			}
		}
		if modified && !sp.keepFastcallStack {
			sp.stackDepth = -sp.fastcallOff
		}
	}
	return nops
}
