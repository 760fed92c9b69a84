package fuzzgen

import (
	"math"

	"github.com/waggle-bpf/waggle/isa"
)

// asm collects slots and resolves jumps to labels.
type asm struct {
	insns  []isa.Instruction
	labels []int // slot of each label, -1 while unbound
	fixups []fixup
}

type fixup struct{ pc, label int }

func (a *asm) emit(ins ...isa.Instruction) { a.insns = append(a.insns, ins...) }

func (a *asm) newLabel() int {
	a.labels = append(a.labels, -1)
	return len(a.labels) - 1
}

func (a *asm) bind(l int) { a.labels[l] = len(a.insns) }

// jump emits a jump whose target is label l.
func (a *asm) jump(ins isa.Instruction, l int) {
	a.fixups = append(a.fixups, fixup{len(a.insns), l})
	a.emit(ins)
}

// funcRef emits a lddw of the address of the subprogram at label l
// (BPF_PSEUDO_FUNC, imm relative like a call's) into dst.
func (a *asm) funcRef(dst isa.Register, l int) {
	lo := isa.LoadImm64(dst, isa.PseudoFunc, 0)
	a.fixups = append(a.fixups, fixup{len(a.insns), l})
	a.emit(lo[0], lo[1])
}

func (a *asm) resolve() []isa.Instruction {
	for _, f := range a.fixups {
		t := a.labels[f.label]
		if t < 0 {
			panic("BUG: fuzzgen: unbound label")
		}
		rel := t - f.pc - 1
		if ins := a.insns[f.pc]; ins.Op == isa.OpJA32 || ins.IsLocalCall() || ins.IsLoadImm64() && ins.Src == isa.PseudoFunc {
			a.insns[f.pc].Imm = int32(rel)
		} else {
			if rel < math.MinInt16 || rel > math.MaxInt16 {
				panic("BUG: fuzzgen: jump out of int16 range")
			}
			a.insns[f.pc].Off = int16(rel)
		}
	}
	return a.insns
}

// pending is a forward jump waiting for its target: the boundary after
// left more nodes of the block.
type pending struct{ label, left int }

// block emits up to n nodes at nesting depth. Forward conditional jumps land
// on node boundaries of the same block (or its end), so they never enter a
// loop or the middle of a fixed sequence.
func (g *gen) block(n, depth int) {
	var pend []pending
	for i := 0; i < n && g.budget > 0; i++ {
		g.budget--
		// Finish the previous nodes' jumps once this node is emitted.
		var fresh *pending
		switch k := g.r.IntN(100); {
		case k < 12 && g.branch():
			l := g.a.newLabel()
			g.a.jump(g.condJump(), l)
			fresh = &pending{l, 1 + g.r.IntN(min(8, n-i))}
		case k < 16 && depth < g.cfg.MaxDepth && g.branch():
			g.ifElse(depth + 1)
		case k < 19 && depth < g.cfg.MaxDepth && !g.cfg.NoLoops && g.loopBranches < 0:
			g.loop(depth + 1)
		default:
			g.leaf()
		}
		kept := pend[:0]
		for _, p := range pend {
			if p.left--; p.left == 0 {
				g.a.bind(p.label)
			} else {
				kept = append(kept, p)
			}
		}
		pend = kept
		if fresh != nil {
			pend = append(pend, *fresh)
		}
	}
	for _, p := range pend {
		g.a.bind(p.label)
	}
}

// ifElse emits
//
//	if cond goto else
//	then-block
//	goto end        (ja, or gotol)
//	else: else-block
//	end:
func (g *gen) ifElse(depth int) {
	elseL, end := g.a.newLabel(), g.a.newLabel()
	g.a.jump(g.condJump(), elseL)
	g.block(1+g.r.IntN(6), depth)
	if g.chance(2) {
		g.a.jump(isa.Instruction{Op: isa.OpJA32}, end)
	} else {
		g.a.jump(isa.Instruction{Op: isa.OpJA}, end)
	}
	g.a.bind(elseL)
	g.budget++ // the else block has at least one node even when the budget is spent
	g.block(1+g.r.IntN(6), depth)
	g.a.bind(end)
}

// maxLoopBranches bounds the conditional jumps in a loop body. The
// verifier cannot prune states across iterations (the counter differs), so
// every branch in the body multiplies the paths it walks by up to the
// number of iterations; with more branches, or nested loops, a few programs
// in ten thousand take it seconds to verify or exceed its limit of 1M
// instructions.
const maxLoopBranches = 2

// branch reports whether the block may emit a conditional jump, counting it
// against the loop body's allowance when inside a loop.
func (g *gen) branch() bool {
	if g.loopBranches < 0 {
		return true
	}
	if g.loopBranches == 0 {
		return false
	}
	g.loopBranches--
	return true
}

// loop emits a loop of 1 to 4 iterations whose counter c the body does not
// write, with no loop nested in it and at most maxLoopBranches conditional
// jumps, in one of these forms:
//
//	c = n;  head: body; c -= 1; if c != 0 goto head    (64 or 32 bits)
//	c = n;  head: body; c += -1; if c s> 0 goto head
//	wc = 0; head: body; wc += 1; if wc < n goto head
func (g *gen) loop(depth int) {
	var c isa.Register
	for {
		// Not r0: cmpxchg writes it.
		c = isa.Register(1 + g.r.IntN(numRegs-1))
		if g.reserved&(1<<c) == 0 {
			break
		}
	}
	n := int32(1 + g.r.IntN(4))
	wide := g.chance(2)
	form := g.r.IntN(3)
	head := g.a.newLabel()
	switch form {
	case 0, 1:
		g.a.emit(isa.Instruction{Op: aluOp(wide, isa.ALUMov, isa.SourceK), Dst: c, Imm: n})
	default:
		g.a.emit(isa.Instruction{Op: aluOp(false, isa.ALUMov, isa.SourceK), Dst: c, Imm: 0})
	}
	g.a.bind(head)
	exit := -1
	if g.cfg.MayGoto && g.chance(2) {
		// while (can_loop): out of the loop once the budget is spent.
		exit = g.a.newLabel()
		g.a.jump(isa.Instruction{Op: isa.OpMayGoto}, exit)
	}
	g.reserved |= 1 << c
	g.loopBranches = maxLoopBranches
	g.block(1+g.r.IntN(8), depth)
	g.loopBranches = -1
	g.reserved &^= 1 << c
	switch form {
	case 0:
		g.a.emit(isa.Instruction{Op: aluOp(wide, isa.ALUSub, isa.SourceK), Dst: c, Imm: 1})
		g.a.jump(isa.Instruction{Op: jmpOp(wide, isa.JumpNE, isa.SourceK), Dst: c, Imm: 0}, head)
	case 1:
		g.a.emit(isa.Instruction{Op: aluOp(wide, isa.ALUAdd, isa.SourceK), Dst: c, Imm: -1})
		g.a.jump(isa.Instruction{Op: jmpOp(wide, isa.JumpSGT, isa.SourceK), Dst: c, Imm: 0}, head)
	default:
		g.a.emit(isa.Instruction{Op: aluOp(false, isa.ALUAdd, isa.SourceK), Dst: c, Imm: 1})
		g.a.jump(isa.Instruction{Op: jmpOp(wide, isa.JumpLT, isa.SourceK), Dst: c, Imm: n}, head)
	}
	if exit >= 0 {
		g.a.bind(exit)
	}
}

var condOps = []isa.JumpOp{
	isa.JumpEq, isa.JumpGT, isa.JumpGE, isa.JumpSet, isa.JumpNE, isa.JumpSGT,
	isa.JumpSGE, isa.JumpLT, isa.JumpLE, isa.JumpSLT, isa.JumpSLE,
}

// condJump returns a conditional jump, JMP or JMP32, register or immediate,
// with its offset still to be resolved.
func (g *gen) condJump() isa.Instruction {
	op := condOps[g.r.IntN(len(condOps))]
	wide := g.chance(2)
	if g.chance(2) {
		return isa.Instruction{Op: jmpOp(wide, op, isa.SourceX), Dst: g.src(), Src: g.src()}
	}
	return isa.Instruction{Op: jmpOp(wide, op, isa.SourceK), Dst: g.src(), Imm: g.imm32()}
}

var aluOps = []isa.ALUOp{
	isa.ALUAdd, isa.ALUSub, isa.ALUMul, isa.ALUDiv, isa.ALUOr, isa.ALUAnd, isa.ALULsh,
	isa.ALURsh, isa.ALUMod, isa.ALUXor, isa.ALUMov, isa.ALUArsh,
}

// leaf emits one straight-line node.
func (g *gen) leaf() {
	switch k := g.r.IntN(100); {
	case k < 34:
		g.alu()
	case k < 38:
		g.divSpecial()
	case k < 40:
		g.a.emit(isa.Instruction{Op: aluOp(g.chance(2), isa.ALUNeg, isa.SourceK), Dst: g.dst()})
	case k < 44:
		g.movsx()
	case k < 49:
		g.byteSwap()
	case k < 52:
		lo := isa.LoadImm64(g.dst(), 0, g.imm64())
		g.a.emit(lo[0], lo[1])
	case k < 62:
		g.stackLoad()
	case k < 70:
		g.stackStore()
	case k < 80:
		g.stackAtomic()
	case k < 88:
		g.packetLoad()
	case k < 94:
		g.packetStore()
	default:
		g.packetVarOff()
	}
}

// alu emits an ALU or ALU64 instruction of any operation (sdiv and smod
// included), with a register or an in-range immediate.
func (g *gen) alu() {
	wide := g.chance(2)
	op := aluOps[g.r.IntN(len(aluOps))]
	var off int16
	if (op == isa.ALUDiv || op == isa.ALUMod) && g.chance(2) {
		off = 1 // sdiv, smod
	}
	d := g.dst()
	if g.chance(2) {
		g.a.emit(isa.Instruction{Op: aluOp(wide, op, isa.SourceX), Dst: d, Src: g.src(), Off: off})
		return
	}
	var imm int32
	switch op {
	case isa.ALUDiv, isa.ALUMod:
		imm = g.divisor()
	case isa.ALULsh, isa.ALURsh, isa.ALUArsh:
		width := 32
		if wide {
			width = 64
		}
		switch g.r.IntN(4) {
		case 0:
			imm = 0
		case 1:
			imm = int32(width - 1)
		default:
			imm = int32(g.r.IntN(width))
		}
	default:
		imm = g.imm32()
	}
	g.a.emit(isa.Instruction{Op: aluOp(wide, op, isa.SourceK), Dst: d, Off: off, Imm: imm})
}

// divSpecial emits a division or modulo, signed or not, 32 or 64 bits, by a
// register just set to 0, -1 or INT_MIN, sometimes of a dividend just set to
// INT_MIN.
func (g *gen) divSpecial() {
	wide := g.chance(2)
	s := g.dst()
	switch g.r.IntN(4) {
	case 0, 1:
		g.a.emit(movImm(s, 0))
	case 2:
		g.a.emit(movImm(s, -1))
	default:
		if wide {
			lo := isa.LoadImm64(s, 0, 1<<63)
			g.a.emit(lo[0], lo[1])
		} else {
			g.a.emit(movImm(s, math.MinInt32))
		}
	}
	d := g.dstNot(s)
	if g.chance(3) {
		if wide {
			lo := isa.LoadImm64(d, 0, 1<<63)
			g.a.emit(lo[0], lo[1])
		} else {
			g.a.emit(movImm(d, math.MinInt32))
		}
	}
	op := isa.ALUDiv
	if g.chance(2) {
		op = isa.ALUMod
	}
	var off int16
	if g.chance(2) {
		off = 1
	}
	g.a.emit(isa.Instruction{Op: aluOp(wide, op, isa.SourceX), Dst: d, Src: s, Off: off})
}

// movsx emits a sign-extending move: 8, 16 or 32 bits into 64, or 8 or 16
// into 32.
func (g *gen) movsx() {
	if g.chance(2) {
		g.a.emit(isa.Instruction{Op: aluOp(true, isa.ALUMov, isa.SourceX), Dst: g.dst(), Src: g.src(), Off: []int16{8, 16, 32}[g.r.IntN(3)]})
		return
	}
	g.a.emit(isa.Instruction{Op: aluOp(false, isa.ALUMov, isa.SourceX), Dst: g.dst(), Src: g.src(), Off: []int16{8, 16}[g.r.IntN(2)]})
}

// byteSwap emits le, be (class ALU) or bswap (class ALU64) of 16, 32 or 64
// bits.
func (g *gen) byteSwap() {
	width := []int32{16, 32, 64}[g.r.IntN(3)]
	var op isa.Opcode
	switch g.r.IntN(3) {
	case 0:
		op = aluOp(false, isa.ALUEnd, isa.SourceLE)
	case 1:
		op = aluOp(false, isa.ALUEnd, isa.SourceBE)
	default:
		op = aluOp(true, isa.ALUEnd, isa.SourceLE)
	}
	g.a.emit(isa.Instruction{Op: op, Dst: g.dst(), Imm: width})
}

// stackOff returns the offset of an aligned access of size s in the stack
// window (the verifier requires stack accesses to be aligned).
func (g *gen) stackOff(s isa.Size) int16 {
	n := s.Bytes()
	return int16(StackWindow + n*g.r.IntN(StackSlots*8/n))
}

func (g *gen) stackLoad() {
	s := sizes[g.r.IntN(4)]
	m := isa.ModeMEM
	if s != isa.SizeDW && g.chance(2) {
		m = isa.ModeMEMSX
	}
	g.a.emit(isa.Instruction{Op: memOp(isa.ClassLDX, m, s), Dst: g.dst(), Src: isa.R10, Off: g.stackOff(s)})
}

func (g *gen) stackStore() {
	s := sizes[g.r.IntN(4)]
	if g.chance(3) {
		g.a.emit(isa.Instruction{Op: memOp(isa.ClassST, isa.ModeMEM, s), Dst: isa.R10, Off: g.stackOff(s), Imm: g.imm32()})
		return
	}
	g.a.emit(stx(s, isa.R10, g.stackOff(s), g.src()))
}

var atomicOps = []isa.AtomicOp{
	isa.AtomicAdd, isa.AtomicOr, isa.AtomicAnd, isa.AtomicXor,
	isa.AtomicAdd | isa.AtomicFetch, isa.AtomicOr | isa.AtomicFetch,
	isa.AtomicAnd | isa.AtomicFetch, isa.AtomicXor | isa.AtomicFetch,
	isa.AtomicXchg, isa.AtomicCmpXchg,
}

// stackAtomic emits an atomic operation of 4 or 8 bytes on a window slot.
func (g *gen) stackAtomic() {
	s := isa.SizeW
	if g.chance(2) {
		s = isa.SizeDW
	}
	op := atomicOps[g.r.IntN(len(atomicOps))]
	var src isa.Register
	switch {
	case op == isa.AtomicCmpXchg:
		if g.reserved&1 != 0 {
			op = isa.AtomicAdd
		}
		src = g.src()
	case op.Fetches():
		src = g.dst() // written with the old value
	default:
		src = g.src()
	}
	g.a.emit(isa.Instruction{Op: memOp(isa.ClassSTX, isa.ModeATOMIC, s), Dst: isa.R10, Src: src, Off: g.stackOff(s), Imm: int32(op)})
}

// loadOp returns a load opcode of size s, sign-extending half the time
// when it can be.
func (g *gen) loadOp(s isa.Size) isa.Opcode {
	if s != isa.SizeDW && g.chance(2) {
		return memOp(isa.ClassLDX, isa.ModeMEMSX, s)
	}
	return memOp(isa.ClassLDX, isa.ModeMEM, s)
}

// packetLoad emits
//
//	t = *(u64 *)(r10 - 8)      the packet pointer
//	t = *(size *)(t + off)     anywhere in the packet
//
// so that t holds a pointer only between the two.
func (g *gen) packetLoad() {
	t := g.dst()
	s := sizes[g.r.IntN(4)]
	g.a.emit(
		ldx(isa.SizeDW, t, isa.R10, StackPacket),
		isa.Instruction{Op: g.loadOp(s), Dst: t, Src: t, Off: int16(g.r.IntN(PacketSize - s.Bytes() + 1))},
	)
}

// packetStore emits
//
//	t = *(u64 *)(r10 - 8)
//	*(size *)(t + off) = src or imm   in the scratch area
//	t = *(size2 *)(t + off2)          t is a scalar again
func (g *gen) packetStore() {
	t := g.dst()
	s := sizes[g.r.IntN(4)]
	off := int16(Scratch + g.r.IntN(PacketSize-Scratch-s.Bytes()+1))
	g.a.emit(ldx(isa.SizeDW, t, isa.R10, StackPacket))
	if g.chance(3) {
		g.a.emit(isa.Instruction{Op: memOp(isa.ClassST, isa.ModeMEM, s), Dst: t, Off: off, Imm: g.imm32()})
	} else {
		src := g.src()
		for src == t {
			src = g.src()
		}
		g.a.emit(stx(s, t, off, src))
	}
	s2 := sizes[g.r.IntN(4)]
	g.a.emit(isa.Instruction{Op: g.loadOp(s2), Dst: t, Src: t, Off: int16(g.r.IntN(PacketSize - s2.Bytes() + 1))})
}

// packetVarOff emits an access at a variable packet offset. Adding a
// variable to a packet pointer forgets its checked range, so the access
// needs its own check against the end of the packet, which never fails at
// run time (i + k <= PacketSize):
//
//	i &= mask                   64 or 32 bits; mask+1 is a power of two <= 64
//	t = *(u64 *)(r10 - 8)       the packet pointer
//	t += i
//	t += k
//	e = *(u64 *)(r10 - 16)      the end of the packet
//	if t > e goto fail
//	*(size *)(t - d) = src      sometimes, in the scratch area
//	t = *(size *)(t - d2)
//	goto +1
//	fail: t = imm
//	e = imm                     t and e are scalars again on both paths
func (g *gen) packetVarOff() {
	i := g.dst()
	t := g.dstNot(i)
	var e isa.Register
	for e = g.dstNot(i); e == t; e = g.dstNot(i) {
	}
	mask := 1<<(g.r.IntN(6)+1) - 1
	k := PacketSize - mask - g.r.IntN(8)
	g.a.emit(
		isa.Instruction{Op: aluOp(g.chance(2), isa.ALUAnd, isa.SourceK), Dst: i, Imm: int32(mask)},
		ldx(isa.SizeDW, t, isa.R10, StackPacket),
		isa.Instruction{Op: aluOp(true, isa.ALUAdd, isa.SourceX), Dst: t, Src: i},
		isa.Instruction{Op: aluOp(true, isa.ALUAdd, isa.SourceK), Dst: t, Imm: int32(k)},
		ldx(isa.SizeDW, e, isa.R10, StackPacketEnd),
	)
	fail := g.a.newLabel()
	g.a.jump(isa.Instruction{Op: jmpOp(true, isa.JumpGT, isa.SourceX), Dst: t, Src: e}, fail)
	if g.chance(2) {
		s := sizes[g.r.IntN(4)]
		// t - d lies in [Scratch, k - size]
		d := s.Bytes() + g.r.IntN(k-s.Bytes()-Scratch+1)
		src := g.src()
		for src == t || src == e {
			src = g.src()
		}
		g.a.emit(stx(s, t, int16(-d), src))
	}
	s := sizes[g.r.IntN(4)]
	d := s.Bytes() + g.r.IntN(k-s.Bytes()+1)
	g.a.emit(
		isa.Instruction{Op: g.loadOp(s), Dst: t, Src: t, Off: int16(-d)},
		isa.Instruction{Op: isa.OpJA, Off: 1},
	)
	g.a.bind(fail)
	g.a.emit(movImm(t, g.imm32()), movImm(e, g.imm32()))
}
