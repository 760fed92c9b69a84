package interp

import (
	"math/bits"

	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/isa"
)

// exec is the interpreter loop: one jump-table dispatch per instruction on
// the predecoded op, registers in m.regs indexed by a byte so no bounds
// check is needed. pc is always a valid slot: isa.ValidateProgram
// proved every jump target lands in the program and the last slot is exit
// or goto.
//
// The inner loop holds every operation that needs no function call (fast
// loads and stores inline to one machine instruction); checked accesses,
// helpers, bpf-to-bpf calls, exit, the budget and tracing leave it through
// the switch's default for a slow path below, and come back. Go's calling
// convention has no callee-saved registers, so a call anywhere in the inner
// loop makes the compiler spill pc and the instruction pointer to the stack
// on every iteration. Measured, the spills cost more than the dispatch
// itself (fib32: 2.7 ns per instruction without them, 4.2-5.0 with), which
// is also why the switch keeps its default edge: listing all 256 byte values
// drops the jump table's range check but moves the spills back in.
//
// exec runs p from slot pc until the frame it starts in exits: the whole
// run, or one callback (Machine.Call). Tail calls and returns into a caller
// of another program switch p.
func (m *Machine) exec(p *Program, pc int) (uint64, error) {
	base := m.depth
	code := p.code
	r := &m.regs
	i := &code[pc]
	op := i.op
	pc++
	for {
	fast:
		for {
			d, s := i.dst, i.src
			switch op {
			case opAdd64I:
				r[d] += uint64(i.imm)
			case opSub64I:
				r[d] -= uint64(i.imm)
			case opMul64I:
				r[d] *= uint64(i.imm)
			case opDiv64I:
				r[d] = isa.Div64(r[d], uint64(i.imm))
			case opSDiv64I:
				r[d] = uint64(isa.SDiv64(int64(r[d]), i.imm))
			case opOr64I:
				r[d] |= uint64(i.imm)
			case opAnd64I:
				r[d] &= uint64(i.imm)
			case opLsh64I:
				r[d] <<= uint64(i.imm) & 63
			case opRsh64I:
				r[d] >>= uint64(i.imm) & 63
			case opMod64I:
				r[d] = isa.Mod64(r[d], uint64(i.imm))
			case opSMod64I:
				r[d] = uint64(isa.SMod64(int64(r[d]), i.imm))
			case opXor64I:
				r[d] ^= uint64(i.imm)
			case opMov64I:
				r[d] = uint64(i.imm)
			case opArsh64I:
				r[d] = uint64(int64(r[d]) >> (uint64(i.imm) & 63))
			case opAdd64R:
				r[d] += r[s]
			case opSub64R:
				r[d] -= r[s]
			case opMul64R:
				r[d] *= r[s]
			case opDiv64R:
				r[d] = isa.Div64(r[d], r[s])
			case opSDiv64R:
				r[d] = uint64(isa.SDiv64(int64(r[d]), int64(r[s])))
			case opOr64R:
				r[d] |= r[s]
			case opAnd64R:
				r[d] &= r[s]
			case opLsh64R:
				r[d] <<= r[s] & 63
			case opRsh64R:
				r[d] >>= r[s] & 63
			case opMod64R:
				r[d] = isa.Mod64(r[d], r[s])
			case opSMod64R:
				r[d] = uint64(isa.SMod64(int64(r[d]), int64(r[s])))
			case opXor64R:
				r[d] ^= r[s]
			case opMov64R:
				r[d] = r[s]
			case opArsh64R:
				r[d] = uint64(int64(r[d]) >> (r[s] & 63))
			case opMovSX8to64:
				r[d] = uint64(int64(int8(r[s])))
			case opMovSX16to64:
				r[d] = uint64(int64(int16(r[s])))
			case opMovSX32to64:
				r[d] = uint64(int64(int32(r[s])))
			case opNeg64:
				r[d] = -r[d]
			case opAdd32I:
				r[d] = uint64(uint32(r[d]) + uint32(i.imm))
			case opSub32I:
				r[d] = uint64(uint32(r[d]) - uint32(i.imm))
			case opMul32I:
				r[d] = uint64(uint32(r[d]) * uint32(i.imm))
			case opDiv32I:
				r[d] = uint64(isa.Div32(uint32(r[d]), uint32(i.imm)))
			case opSDiv32I:
				r[d] = uint64(uint32(isa.SDiv32(int32(r[d]), int32(i.imm))))
			case opOr32I:
				r[d] = uint64(uint32(r[d]) | uint32(i.imm))
			case opAnd32I:
				r[d] = uint64(uint32(r[d]) & uint32(i.imm))
			case opLsh32I:
				r[d] = uint64(uint32(r[d]) << (uint32(i.imm) & 31))
			case opRsh32I:
				r[d] = uint64(uint32(r[d]) >> (uint32(i.imm) & 31))
			case opMod32I:
				r[d] = uint64(isa.Mod32(uint32(r[d]), uint32(i.imm)))
			case opSMod32I:
				r[d] = uint64(uint32(isa.SMod32(int32(r[d]), int32(i.imm))))
			case opXor32I:
				r[d] = uint64(uint32(r[d]) ^ uint32(i.imm))
			case opMov32I:
				r[d] = uint64(uint32(i.imm))
			case opArsh32I:
				r[d] = uint64(uint32(int32(r[d]) >> (uint32(i.imm) & 31)))
			case opAdd32R:
				r[d] = uint64(uint32(r[d]) + uint32(r[s]))
			case opSub32R:
				r[d] = uint64(uint32(r[d]) - uint32(r[s]))
			case opMul32R:
				r[d] = uint64(uint32(r[d]) * uint32(r[s]))
			case opDiv32R:
				r[d] = uint64(isa.Div32(uint32(r[d]), uint32(r[s])))
			case opSDiv32R:
				r[d] = uint64(uint32(isa.SDiv32(int32(r[d]), int32(r[s]))))
			case opOr32R:
				r[d] = uint64(uint32(r[d]) | uint32(r[s]))
			case opAnd32R:
				r[d] = uint64(uint32(r[d]) & uint32(r[s]))
			case opLsh32R:
				r[d] = uint64(uint32(r[d]) << (uint32(r[s]) & 31))
			case opRsh32R:
				r[d] = uint64(uint32(r[d]) >> (uint32(r[s]) & 31))
			case opMod32R:
				r[d] = uint64(isa.Mod32(uint32(r[d]), uint32(r[s])))
			case opSMod32R:
				r[d] = uint64(uint32(isa.SMod32(int32(r[d]), int32(r[s]))))
			case opXor32R:
				r[d] = uint64(uint32(r[d]) ^ uint32(r[s]))
			case opMov32R:
				r[d] = uint64(uint32(r[s]))
			case opArsh32R:
				r[d] = uint64(uint32(int32(r[d]) >> (uint32(r[s]) & 31)))
			case opMovSX8to32:
				r[d] = uint64(uint32(int32(int8(r[s]))))
			case opMovSX16to32:
				r[d] = uint64(uint32(int32(int16(r[s]))))
			case opNeg32:
				r[d] = uint64(-uint32(r[d]))
			case opLE16:
				r[d] = uint64(uint16(r[d]))
			case opLE32:
				r[d] = uint64(uint32(r[d]))
			case opLE64:
			case opSwap16:
				r[d] = uint64(bits.ReverseBytes16(uint16(r[d])))
			case opSwap32:
				r[d] = uint64(bits.ReverseBytes32(uint32(r[d])))
			case opSwap64:
				r[d] = bits.ReverseBytes64(r[d])
			case opLddw:
				r[d] = uint64(i.imm)
				pc++
			case opLdx8:
				r[d] = mem.Load8(r[s] + uint64(int64(i.off)))
			case opLdx16:
				r[d] = mem.Load16(r[s] + uint64(int64(i.off)))
			case opLdx32:
				r[d] = mem.Load32(r[s] + uint64(int64(i.off)))
			case opLdx64:
				r[d] = mem.Load64(r[s] + uint64(int64(i.off)))
			case opLdxS8:
				r[d] = uint64(int64(int8(mem.Load8(r[s] + uint64(int64(i.off))))))
			case opLdxS16:
				r[d] = uint64(int64(int16(mem.Load16(r[s] + uint64(int64(i.off))))))
			case opLdxS32:
				r[d] = uint64(int64(int32(mem.Load32(r[s] + uint64(int64(i.off))))))
			case opSt8:
				mem.Store8(r[d]+uint64(int64(i.off)), uint64(i.imm))
			case opSt16:
				mem.Store16(r[d]+uint64(int64(i.off)), uint64(i.imm))
			case opSt32:
				mem.Store32(r[d]+uint64(int64(i.off)), uint64(i.imm))
			case opSt64:
				mem.Store64(r[d]+uint64(int64(i.off)), uint64(i.imm))
			case opStx8:
				mem.Store8(r[d]+uint64(int64(i.off)), r[s])
			case opStx16:
				mem.Store16(r[d]+uint64(int64(i.off)), r[s])
			case opStx32:
				mem.Store32(r[d]+uint64(int64(i.off)), r[s])
			case opStx64:
				mem.Store64(r[d]+uint64(int64(i.off)), r[s])
			case opJA:
				pc = int(i.off)
			case opJEq64I:
				if r[d] == uint64(i.imm) {
					pc = int(i.off)
				}
			case opJGT64I:
				if r[d] > uint64(i.imm) {
					pc = int(i.off)
				}
			case opJGE64I:
				if r[d] >= uint64(i.imm) {
					pc = int(i.off)
				}
			case opJSet64I:
				if r[d]&uint64(i.imm) != 0 {
					pc = int(i.off)
				}
			case opJNE64I:
				if r[d] != uint64(i.imm) {
					pc = int(i.off)
				}
			case opJSGT64I:
				if int64(r[d]) > i.imm {
					pc = int(i.off)
				}
			case opJSGE64I:
				if int64(r[d]) >= i.imm {
					pc = int(i.off)
				}
			case opJLT64I:
				if r[d] < uint64(i.imm) {
					pc = int(i.off)
				}
			case opJLE64I:
				if r[d] <= uint64(i.imm) {
					pc = int(i.off)
				}
			case opJSLT64I:
				if int64(r[d]) < i.imm {
					pc = int(i.off)
				}
			case opJSLE64I:
				if int64(r[d]) <= i.imm {
					pc = int(i.off)
				}
			case opJEq64R:
				if r[d] == r[s] {
					pc = int(i.off)
				}
			case opJGT64R:
				if r[d] > r[s] {
					pc = int(i.off)
				}
			case opJGE64R:
				if r[d] >= r[s] {
					pc = int(i.off)
				}
			case opJSet64R:
				if r[d]&r[s] != 0 {
					pc = int(i.off)
				}
			case opJNE64R:
				if r[d] != r[s] {
					pc = int(i.off)
				}
			case opJSGT64R:
				if int64(r[d]) > int64(r[s]) {
					pc = int(i.off)
				}
			case opJSGE64R:
				if int64(r[d]) >= int64(r[s]) {
					pc = int(i.off)
				}
			case opJLT64R:
				if r[d] < r[s] {
					pc = int(i.off)
				}
			case opJLE64R:
				if r[d] <= r[s] {
					pc = int(i.off)
				}
			case opJSLT64R:
				if int64(r[d]) < int64(r[s]) {
					pc = int(i.off)
				}
			case opJSLE64R:
				if int64(r[d]) <= int64(r[s]) {
					pc = int(i.off)
				}
			case opJEq32I:
				if uint32(r[d]) == uint32(i.imm) {
					pc = int(i.off)
				}
			case opJGT32I:
				if uint32(r[d]) > uint32(i.imm) {
					pc = int(i.off)
				}
			case opJGE32I:
				if uint32(r[d]) >= uint32(i.imm) {
					pc = int(i.off)
				}
			case opJSet32I:
				if uint32(r[d])&uint32(i.imm) != 0 {
					pc = int(i.off)
				}
			case opJNE32I:
				if uint32(r[d]) != uint32(i.imm) {
					pc = int(i.off)
				}
			case opJSGT32I:
				if int32(r[d]) > int32(i.imm) {
					pc = int(i.off)
				}
			case opJSGE32I:
				if int32(r[d]) >= int32(i.imm) {
					pc = int(i.off)
				}
			case opJLT32I:
				if uint32(r[d]) < uint32(i.imm) {
					pc = int(i.off)
				}
			case opJLE32I:
				if uint32(r[d]) <= uint32(i.imm) {
					pc = int(i.off)
				}
			case opJSLT32I:
				if int32(r[d]) < int32(i.imm) {
					pc = int(i.off)
				}
			case opJSLE32I:
				if int32(r[d]) <= int32(i.imm) {
					pc = int(i.off)
				}
			case opJEq32R:
				if uint32(r[d]) == uint32(r[s]) {
					pc = int(i.off)
				}
			case opJGT32R:
				if uint32(r[d]) > uint32(r[s]) {
					pc = int(i.off)
				}
			case opJGE32R:
				if uint32(r[d]) >= uint32(r[s]) {
					pc = int(i.off)
				}
			case opJSet32R:
				if uint32(r[d])&uint32(r[s]) != 0 {
					pc = int(i.off)
				}
			case opJNE32R:
				if uint32(r[d]) != uint32(r[s]) {
					pc = int(i.off)
				}
			case opJSGT32R:
				if int32(r[d]) > int32(r[s]) {
					pc = int(i.off)
				}
			case opJSGE32R:
				if int32(r[d]) >= int32(r[s]) {
					pc = int(i.off)
				}
			case opJLT32R:
				if uint32(r[d]) < uint32(r[s]) {
					pc = int(i.off)
				}
			case opJLE32R:
				if uint32(r[d]) <= uint32(r[s]) {
					pc = int(i.off)
				}
			case opJSLT32R:
				if int32(r[d]) < int32(r[s]) {
					pc = int(i.off)
				}
			case opJSLE32R:
				if int32(r[d]) <= int32(r[s]) {
					pc = int(i.off)
				}
			case opMayGoto:
				// Linux's countdown (the verifier's rewrite of may_goto):
				// fall through while the frame has budget, jump once it
				// is spent.
				if m.loops == 0 {
					pc = int(i.off)
				} else {
					m.loops--
				}
			case opBack:
				// A backward jump that is taken (every loop iteration
				// takes one) spends the slots it jumps back over and
				// polls the stop flag, then runs the jump itself; the
				// slow path reports an empty tank or a stop. One not
				// taken costs nothing (engine.Args.Budget).
				if i.sz != opJA && i.sz != opMayGoto && !taken(i.sz, r[d], r[s], i.imm) {
					break
				}
				cost := uint64(pc - int(i.off))
				if m.fuel < cost || m.stop.Load() {
					break fast
				}
				m.fuel -= cost
				op = i.sz
				continue
			default:
				break fast
			}
			i = &code[pc]
			pc++
			op = i.op
		}
		// The slow path: i is the instruction at pc-1 and op its operation.
		d, s := i.dst, i.src
		switch op {
		case opLdxC:
			v, err := m.load(pc-1, r[s]+uint64(int64(i.off)), i.sz)
			if err != nil {
				return 0, err
			}
			r[d] = v
		case opLdxSC:
			v, err := m.load(pc-1, r[s]+uint64(int64(i.off)), i.sz)
			if err != nil {
				return 0, err
			}
			switch i.sz {
			case 1:
				v = uint64(int64(int8(v)))
			case 2:
				v = uint64(int64(int16(v)))
			case 4:
				v = uint64(int64(int32(v)))
			}
			r[d] = v
		case opStC:
			if err := m.store(pc-1, r[d]+uint64(int64(i.off)), uint64(i.imm), i.sz); err != nil {
				return 0, err
			}
		case opStxC:
			if err := m.store(pc-1, r[d]+uint64(int64(i.off)), r[s], i.sz); err != nil {
				return 0, err
			}
		case opAtomic:
			if err := m.atomic(pc-1, i); err != nil {
				return 0, err
			}
		case opLdAbs:
			v, ok := m.ldAbs(int32(i.imm), i.sz)
			if !ok {
				return 0, nil
			}
			r[0] = v
		case opLdInd:
			v, ok := m.ldAbs(int32(r[s]+uint64(i.imm)), i.sz)
			if !ok {
				return 0, nil
			}
			r[0] = v
		case opCall:
			if err := m.call(pc-1, p.insns[pc-1].Imm, p.funcs[i.imm]); err != nil {
				return 0, err
			}
			if m.state.TailCall != nil {
				next, err := m.tailCall(pc - 1)
				if err != nil {
					return 0, err
				}
				p, code, pc = next, next.code, 0
			}
		case opCallLocal:
			if err := m.callLocal(pc-1, pc, uint64(i.imm)); err != nil {
				return 0, err
			}
			pc = int(i.off)
		case opCallX:
			f, err := p.table.Lookup(int32(r[d]))
			if err != nil {
				return 0, m.fault(pc-1, ErrHelper, "callx: %v", err)
			}
			if err := m.call(pc-1, int32(r[d]), f); err != nil {
				return 0, err
			}
			if m.state.TailCall != nil {
				next, err := m.tailCall(pc - 1)
				if err != nil {
					return 0, err
				}
				p, code, pc = next, next.code, 0
			}
		case opTrace:
			// Report, then run the real operation in the fast loop (which
			// comes back here if it is a slow one).
			m.traceHook(pc - 1)
			op = p.traced[pc-1]
			continue
		case opCtxVariant:
			// Run the context form if the base holds the context.
			v := p.variants[pc-1]
			k := 0
			if r[v.base] == m.ctx {
				if v.fault != nil {
					return 0, m.fault(pc-1, ErrContext, "%v", v.fault)
				}
				if v.skip {
					break
				}
				k = 1
			}
			i = &v.code[k]
			op = i.op
			continue
		case opInvalid:
			return 0, m.fault(pc-1, isa.ErrInvalidOpcode, "executed the second slot of a lddw")
		case opExit:
			if m.depth == base {
				if base == 0 && (m.state.Held != 0 || len(m.state.Records) != 0) {
					return 0, m.unreleased(pc - 1)
				}
				return r[0], nil
			}
			var caller *Program
			pc, caller = m.ret()
			if caller != p {
				p, code = caller, caller.code
				m.prog = p
			}
		case opBack:
			// The fast loop found the tank too low for the jump, or the
			// stop flag set.
			if m.fuel < uint64(pc-int(i.off)) {
				return 0, m.budgetFault(pc - 1)
			}
			return 0, m.fault(pc-1, ErrStopped, "")
		}
		i = &code[pc]
		pc++
		op = i.op
	}
}
