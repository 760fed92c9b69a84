package fuzzgen

import (
	"encoding/binary"
	"math"
	"math/rand/v2"

	"github.com/waggle-bpf/waggle/isa"
)

// Layout of the packet and the stack; see the package documentation.
const (
	PacketSize  = 256 // bytes the prologue requires
	OutRegs     = 0   // packet offset of the r0-r9 words
	OutStack    = 80  // packet offset of the stack window words
	Scratch     = 144 // packet offset of the body's store area
	ShortReturn = 0xbad

	StackPacket     = -8   // r10 offset of the spilled packet pointer
	StackPacketEnd  = -16  // r10 offset of the spilled end-of-packet pointer
	StackSave       = -24  // r10 offset of the epilogue's r9 save slot
	StackWindow     = -88  // r10 offset of the lowest window slot
	StackSlots      = 8    // window slots of 8 bytes
	StackFree       = -104 // r10 offset of the lowest of the free slots
	StackFreeSlots  = 2    // free slots of 8 bytes: r10-104 and r10-96
	numRegs         = 10
	numOutputWords  = numRegs + StackSlots
	returnSlotsFrom = 2 // the return load is this many slots before the end
)

// Config tunes Generate. The zero value gives the defaults.
type Config struct {
	// MaxNodes bounds the number of body nodes (an instruction or a short
	// fixed sequence); 0 means 128. Each program draws its size uniformly
	// from 1 to MaxNodes.
	MaxNodes int
	// MaxDepth bounds the nesting of if/else and loops; 0 means 3.
	MaxDepth int
	// NoLoops leaves out backward jumps.
	NoLoops bool
	// MayGoto lets loops start with may_goto (BPF_JCOND, Linux 6.9), the
	// way clang compiles can_loop: a jump out of the loop taken only when
	// the kernel's loop budget is spent, which a loop of at most 4
	// iterations never spends. Off by default: older kernels reject it.
	MayGoto bool
}

// Program is one generated program and its input.
type Program struct {
	Seed uint64
	// Insns is the program as the kernel loads it (XDP ctx accesses in
	// slots 0 and 1).
	Insns []isa.Instruction
	// Packet is the input packet, PacketSize bytes.
	Packet []byte
	// BodyStart and BodyEnd delimit the random body, [BodyStart, BodyEnd).
	BodyStart, BodyEnd int
}

// Generate returns the program for seed. The same seed and Config always
// give the same program.
func Generate(seed uint64, cfg Config) *Program {
	if cfg.MaxNodes <= 0 {
		cfg.MaxNodes = 128
	}
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = 3
	}
	g := &gen{
		r:            rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		cfg:          cfg,
		loopBranches: -1,
	}
	p := &Program{Seed: seed, Packet: make([]byte, PacketSize)}
	g.packet(p.Packet)
	g.prologue(p.Packet)
	p.BodyStart = len(g.a.insns)
	g.budget = 1 + g.r.IntN(cfg.MaxNodes)
	g.block(g.budget, 0)
	p.BodyEnd = len(g.a.insns)
	g.epilogue()
	p.Insns = g.a.resolve()
	return p
}

// gen is the state of one generation.
type gen struct {
	r        *rand.Rand
	cfg      Config
	a        asm
	budget   int    // body nodes left
	reserved uint16 // registers the body must not write: live loop counters
	// loopBranches is the number of conditional jumps the loop body being
	// generated may still have, -1 outside loops.
	loopBranches int
}

// Opcodes by their parts.
func aluOp(wide bool, op isa.ALUOp, src isa.Source) isa.Opcode {
	c := isa.ClassALU
	if wide {
		c = isa.ClassALU64
	}
	return isa.Opcode(c) | isa.Opcode(op) | isa.Opcode(src)
}

func jmpOp(wide bool, op isa.JumpOp, src isa.Source) isa.Opcode {
	c := isa.ClassJMP32
	if wide {
		c = isa.ClassJMP
	}
	return isa.Opcode(c) | isa.Opcode(op) | isa.Opcode(src)
}

func memOp(c isa.Class, m isa.Mode, s isa.Size) isa.Opcode {
	return isa.Opcode(c) | isa.Opcode(m) | isa.Opcode(s)
}

func movImm(dst isa.Register, imm int32) isa.Instruction {
	return isa.Instruction{Op: aluOp(true, isa.ALUMov, isa.SourceK), Dst: dst, Imm: imm}
}

func movReg(dst, src isa.Register) isa.Instruction {
	return isa.Instruction{Op: aluOp(true, isa.ALUMov, isa.SourceX), Dst: dst, Src: src}
}

func ldx(s isa.Size, dst, src isa.Register, off int16) isa.Instruction {
	return isa.Instruction{Op: memOp(isa.ClassLDX, isa.ModeMEM, s), Dst: dst, Src: src, Off: off}
}

func stx(s isa.Size, dst isa.Register, off int16, src isa.Register) isa.Instruction {
	return isa.Instruction{Op: memOp(isa.ClassSTX, isa.ModeMEM, s), Dst: dst, Src: src, Off: off}
}

var sizes = [4]isa.Size{isa.SizeB, isa.SizeH, isa.SizeW, isa.SizeDW}

// packet fills the input: register and stack words are interesting or
// random 64-bit values, the rest random bytes.
func (g *gen) packet(pkt []byte) {
	for i := range pkt {
		pkt[i] = byte(g.r.Uint32())
	}
	for off := 0; off < Scratch; off += 8 {
		binary.LittleEndian.PutUint64(pkt[off:], g.imm64())
	}
}

// prologue emits slots 0-7, the stack window and the register init.
func (g *gen) prologue(pkt []byte) {
	a := &g.a
	a.emit(
		ldx(isa.SizeW, isa.R2, isa.R1, 4), // data_end
		ldx(isa.SizeW, isa.R1, isa.R1, 0), // data
		movReg(isa.R3, isa.R1),
		isa.Instruction{Op: aluOp(true, isa.ALUAdd, isa.SourceK), Dst: isa.R3, Imm: PacketSize},
		isa.Instruction{Op: jmpOp(true, isa.JumpLE, isa.SourceX), Dst: isa.R3, Src: isa.R2, Off: 2},
		isa.Instruction{Op: aluOp(false, isa.ALUMov, isa.SourceK), Dst: isa.R0, Imm: ShortReturn},
		isa.Instruction{Op: isa.OpExit},
		stx(isa.SizeDW, isa.R10, StackPacket, isa.R1),
		stx(isa.SizeDW, isa.R10, StackPacketEnd, isa.R2),
	)
	// The stack window, with r2 as the temporary.
	for j := range StackSlots {
		off := int16(StackWindow + 8*j)
		switch g.r.IntN(4) {
		case 0, 1: // a value unknown to the verifier
			a.emit(ldx(isa.SizeDW, isa.R2, isa.R1, int16(OutStack+8*j)), stx(isa.SizeDW, isa.R10, off, isa.R2))
		case 2: // a known constant, spilled
			lo := isa.LoadImm64(isa.R2, 0, g.imm64())
			a.emit(lo[0], lo[1], stx(isa.SizeDW, isa.R10, off, isa.R2))
		default: // immediates
			if g.r.IntN(2) == 0 {
				a.emit(isa.Instruction{Op: memOp(isa.ClassST, isa.ModeMEM, isa.SizeDW), Dst: isa.R10, Off: off, Imm: g.imm32()})
			} else {
				a.emit(
					isa.Instruction{Op: memOp(isa.ClassST, isa.ModeMEM, isa.SizeW), Dst: isa.R10, Off: off, Imm: g.imm32()},
					isa.Instruction{Op: memOp(isa.ClassST, isa.ModeMEM, isa.SizeW), Dst: isa.R10, Off: off + 4, Imm: g.imm32()},
				)
			}
		}
	}
	// Registers: r1 last, as it is the base of the packet loads.
	for _, r := range []isa.Register{0, 2, 3, 4, 5, 6, 7, 8, 9, 1} {
		off := int16(OutRegs + 8*int(r))
		switch g.r.IntN(8) {
		case 0, 1, 2, 3:
			a.emit(ldx(isa.SizeDW, r, isa.R1, off))
		case 4:
			s := []isa.Size{isa.SizeB, isa.SizeH, isa.SizeW}[g.r.IntN(3)]
			m := isa.ModeMEM
			if g.r.IntN(2) == 0 {
				m = isa.ModeMEMSX
			}
			a.emit(isa.Instruction{Op: memOp(isa.ClassLDX, m, s), Dst: r, Src: isa.R1, Off: off})
		case 5:
			a.emit(isa.Instruction{Op: aluOp(g.r.IntN(2) == 0, isa.ALUMov, isa.SourceK), Dst: r, Imm: g.imm32()})
		default:
			lo := isa.LoadImm64(r, 0, g.imm64())
			a.emit(lo[0], lo[1])
		}
	}
}

// epilogue stores r0-r9 and the stack window into the packet and returns
// one word of it.
func (g *gen) epilogue() {
	a := &g.a
	a.emit(
		stx(isa.SizeDW, isa.R10, StackSave, isa.R9),
		ldx(isa.SizeDW, isa.R9, isa.R10, StackPacket),
	)
	for r := isa.R0; r <= isa.R8; r++ {
		a.emit(stx(isa.SizeDW, isa.R9, int16(OutRegs+8*int(r)), r))
	}
	a.emit(
		ldx(isa.SizeDW, isa.R8, isa.R10, StackSave),
		stx(isa.SizeDW, isa.R9, OutRegs+8*9, isa.R8),
	)
	for j := range StackSlots {
		a.emit(
			ldx(isa.SizeDW, isa.R8, isa.R10, int16(StackWindow+8*j)),
			stx(isa.SizeDW, isa.R9, int16(OutStack+8*j), isa.R8),
		)
	}
	var ret isa.Instruction
	switch g.r.IntN(4) {
	case 0, 1: // r0
		ret = ldx(isa.SizeDW, isa.R0, isa.R9, OutRegs)
	case 2: // another output word
		ret = ldx(isa.SizeDW, isa.R0, isa.R9, int16(8*g.r.IntN(numOutputWords)))
	default: // the high or low half of one
		ret = ldx(isa.SizeW, isa.R0, isa.R9, int16(4*g.r.IntN(2*numOutputWords)))
	}
	a.emit(ret, isa.Instruction{Op: isa.OpExit})
}

// ReturnWord returns a copy of insns (a generated program, or one derived
// from it that kept its last two slots) that returns the 4 bytes at packet
// offset off of the output instead: the low 32 bits of r0, which is all the
// kernel's XDP test run reports, are then exactly those bytes. off must be
// in [0, PacketSize-4].
func ReturnWord(insns []isa.Instruction, off int) []isa.Instruction {
	out := append([]isa.Instruction(nil), insns...)
	out[len(out)-returnSlotsFrom] = ldx(isa.SizeW, isa.R0, isa.R9, int16(off))
	return out
}

// CtxLoads reports whether slots 0 and 1 of insns are the prologue's xdp_md
// loads.
func CtxLoads(insns []isa.Instruction) bool {
	return len(insns) >= 2 && insns[0] == ldx(isa.SizeW, isa.R2, isa.R1, 4) && insns[1] == ldx(isa.SizeW, isa.R1, isa.R1, 0)
}

// ForInterp returns insns with the two xdp_md loads replaced by 8-byte
// loads from a context of two u64 words, {data, data_end}, for an engine
// that does not rewrite context accesses. The slot count does not change, so
// instruction indices stay the kernel's.
func ForInterp(insns []isa.Instruction) []isa.Instruction {
	out := append([]isa.Instruction(nil), insns...)
	if CtxLoads(out) {
		out[0] = ldx(isa.SizeDW, isa.R2, isa.R1, 8)
		out[1] = ldx(isa.SizeDW, isa.R1, isa.R1, 0)
	}
	return out
}

// ForConformance returns insns with the two xdp_md loads replaced so that
// the program runs under the conformance suite's convention (r1 = the
// packet, r2 = its length): "r2 += r1" makes r2 the end of the packet, and
// "r1 = r1" keeps the slot count.
func ForConformance(insns []isa.Instruction) []isa.Instruction {
	out := append([]isa.Instruction(nil), insns...)
	if CtxLoads(out) {
		out[0] = isa.Instruction{Op: aluOp(true, isa.ALUAdd, isa.SourceX), Dst: isa.R2, Src: isa.R1}
		out[1] = movReg(isa.R1, isa.R1)
	}
	return out
}

// Interesting constants.
var (
	interesting32 = []int32{
		0, 1, -1, 2, -2, 3, 7, 8, 16, 31, 32, 63, 64, 0x7f, 0x80, 0xff, 0x100,
		0x7fff, 0x8000, 0xffff, 0x10000, math.MaxInt32, math.MinInt32, math.MinInt32 + 1,
		math.MaxInt32 - 1, 0x55555555, -0x55555556, 0x0f0f0f0f,
	}
	interesting64 = []uint64{
		0, 1, math.MaxUint64, 2, math.MaxUint64 - 1, 0x7f, 0x80, 0xff, 0x8000, 0xffff,
		0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, 0x1_0000_0001,
		math.MaxInt64, 1 << 63, 1<<63 + 1, 0xffffffff80000000, 0xffffffff7fffffff,
		0x00000000ffff8000, 0x8000000000000001, 0x5555555555555555, 0xaaaaaaaaaaaaaaaa,
		0x0123456789abcdef, 0xfedcba9876543210,
	}
)

// imm32 returns an interesting or random 32-bit immediate.
func (g *gen) imm32() int32 {
	switch g.r.IntN(6) {
	case 0, 1:
		return interesting32[g.r.IntN(len(interesting32))]
	case 2:
		v := int32(1) << g.r.IntN(31)
		return []int32{v, -v, v - 1, v + 1}[g.r.IntN(4)]
	case 3:
		return int32(g.r.IntN(33)) - 16
	default:
		return int32(g.r.Uint32())
	}
}

// imm64 returns an interesting or random 64-bit constant.
func (g *gen) imm64() uint64 {
	switch g.r.IntN(6) {
	case 0, 1:
		return interesting64[g.r.IntN(len(interesting64))]
	case 2:
		v := uint64(1) << g.r.IntN(64)
		return []uint64{v, -v, v - 1, v + 1}[g.r.IntN(4)]
	case 3:
		return uint64(int64(g.imm32()))
	case 4:
		return uint64(g.r.Uint32()) // zero-extended
	default:
		return g.r.Uint64()
	}
}

// divisor returns an immediate divisor: never 0 (the verifier rejects a
// division by the immediate 0), often -1 or INT_MIN.
func (g *gen) divisor() int32 {
	switch g.r.IntN(4) {
	case 0:
		return -1
	case 1:
		return math.MinInt32
	}
	for {
		if v := g.imm32(); v != 0 {
			return v
		}
	}
}

// src returns any register r0-r9 as a source.
func (g *gen) src() isa.Register { return isa.Register(g.r.IntN(numRegs)) }

// dst returns a register the body may write.
func (g *gen) dst() isa.Register {
	for {
		r := isa.Register(g.r.IntN(numRegs))
		if g.reserved&(1<<r) == 0 {
			return r
		}
	}
}

// dstNot returns a writable register other than not.
func (g *gen) dstNot(not isa.Register) isa.Register {
	for {
		if r := g.dst(); r != not {
			return r
		}
	}
}

func (g *gen) chance(n int) bool { return g.r.IntN(n) == 0 }
