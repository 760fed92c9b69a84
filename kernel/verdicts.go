package kernel

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// VerdictMap is the name of the map CountVerdicts adds to an object: an
// array of one element, VerdictSlots+1 u64 counters, where the programs
// count the values they return.
const VerdictMap = "waggle_verdicts"

// VerdictSlots is how many return values the counters tell apart: 0 to
// VerdictSlots-1 (every XDP action, and tc's up to TC_ACT_TRAP) each have
// their counter, larger ones share the last.
const VerdictSlots = 8

// CountVerdicts makes every program of type typ in spec count the values
// it returns, in VerdictMap, which it adds: what a program attached to a
// live hook decided, as the user-space engines report it for each run.
// Every program of the type counts, not only the one attached: a tail call
// ends in the program it calls, and that one's return is the verdict.
//
// Each exit of a program's main function becomes a jump to an epilogue
// appended to the function, which adds one to the verdict's counter and
// exits (r0 unchanged; r2-r4 are free at an exit):
//
//	w3 = w0
//	if r3 < VerdictSlots goto +1
//	r3 = VerdictSlots               ; the counter of the larger values
//	r3 <<= 3
//	r2 = map_value(waggle_verdicts) ; BPF_PSEUDO_MAP_VALUE: element 0
//	r2 += r3
//	r4 = 1
//	lock *(u64 *)(r2 + 0) += r4
//	exit
//
// It uses no helper, no stack and no register that lives past the exit,
// so a program the verifier took before it takes after. An exit replaced
// by a jump has the same size, so no jump of the program moves; the
// functions after the main one move, and cilium/ebpf places calls to them
// by symbol when it loads.
func CountVerdicts(spec *ebpf.CollectionSpec, typ ebpf.ProgramType) error {
	if _, ok := spec.Maps[VerdictMap]; ok {
		return fmt.Errorf("the object has a map named %s already", VerdictMap)
	}
	spec.Maps[VerdictMap] = &ebpf.MapSpec{
		Name: VerdictMap, Type: ebpf.Array, KeySize: 4, ValueSize: 8 * (VerdictSlots + 1), MaxEntries: 1,
	}
	n := 0
	for name, ps := range spec.Programs {
		if ps.Type != typ {
			continue
		}
		insns, err := countExits(ps.Instructions)
		if err != nil {
			return fmt.Errorf("program %s: %w", name, err)
		}
		ps.Instructions = insns
		n++
	}
	if n == 0 {
		return fmt.Errorf("no %v program to count the verdicts of", typ)
	}
	return nil
}

// countExits returns insns with the main function's exits jumping to the
// counting epilogue, appended to it.
func countExits(insns asm.Instructions) (asm.Instructions, error) {
	// The main function ends where the first function it (or another)
	// calls, or passes to a helper as a callback, starts. (A symbol alone
	// is no function: jump labels are symbols too.)
	called := map[string]bool{}
	for _, ins := range insns {
		if (ins.IsFunctionCall() || ins.IsLoadOfFunctionPointer()) && ins.Reference() != "" {
			called[ins.Reference()] = true
		}
	}
	end := len(insns)
	for i := 1; i < len(insns); i++ {
		if called[insns[i].Symbol()] {
			end = i
			break
		}
	}
	// Slot positions: ld_imm64 takes two.
	pos := make([]int64, end+1)
	for i := range end {
		pos[i+1] = pos[i] + int64(insns[i].Size()/asm.InstructionSize)
	}
	epi := pos[end]
	out := make(asm.Instructions, 0, len(insns)+9)
	exits := 0
	for i, ins := range insns[:end] {
		if ins.OpCode.JumpOp() == asm.Exit {
			off := epi - (pos[i] + 1)
			if off > 1<<15-1 {
				return nil, fmt.Errorf("instruction %d: the epilogue is %d instructions away, beyond a jump's reach", i, off)
			}
			j := asm.Instruction{OpCode: asm.Ja.Op(asm.ImmSource), Offset: int16(off)}
			ins = j.WithMetadata(ins.Metadata)
			exits++
		}
		out = append(out, ins)
	}
	if exits == 0 {
		return nil, fmt.Errorf("no exit in the main function")
	}
	value := asm.LoadMapValue(asm.R2, 0, 0).WithReference(VerdictMap)
	out = append(out,
		asm.Mov.Reg32(asm.R3, asm.R0),
		asm.Instruction{OpCode: asm.JLT.Op(asm.ImmSource), Dst: asm.R3, Offset: 1, Constant: VerdictSlots},
		asm.Mov.Imm(asm.R3, VerdictSlots),
		asm.LSh.Imm(asm.R3, 3),
		value,
		asm.Add.Reg(asm.R2, asm.R3),
		asm.Mov.Imm(asm.R4, 1),
		asm.StoreXAdd(asm.R2, asm.R4, asm.DWord),
		asm.Return(),
	)
	return append(out, insns[end:]...), nil
}

// Verdicts are the counters of VerdictMap: Counts[v] is how many times a
// program returned v, Other how many times it returned VerdictSlots or
// more.
type Verdicts struct {
	Counts [VerdictSlots]uint64
	Other  uint64
}

// Total is the number of runs counted.
func (v *Verdicts) Total() uint64 {
	n := v.Other
	for _, c := range v.Counts {
		n += c
	}
	return n
}

// ReadVerdicts reads the counters of m, the VerdictMap of a loaded object.
func ReadVerdicts(m *ebpf.Map) (Verdicts, error) {
	var raw [VerdictSlots + 1]uint64
	if err := m.Lookup(uint32(0), &raw); err != nil {
		return Verdicts{}, fmt.Errorf("read %s: %w", VerdictMap, err)
	}
	var v Verdicts
	copy(v.Counts[:], raw[:VerdictSlots])
	v.Other = raw[VerdictSlots]
	return v, nil
}
