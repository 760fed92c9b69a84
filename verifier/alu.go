package verifier

import (
	"math"

	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/verifier/scalar"
)

// maxVarOff bounds pointer offsets (BPF_MAX_VAR_OFF).
const maxVarOff = 1 << 29

var aluNames = map[isa.ALUOp]string{
	isa.ALUAdd: "+=", isa.ALUSub: "-=", isa.ALUMul: "*=", isa.ALUDiv: "/=",
	isa.ALUOr: "|=", isa.ALUAnd: "&=", isa.ALULsh: "<<=", isa.ALURsh: ">>=",
	isa.ALUNeg: "neg", isa.ALUMod: "%=", isa.ALUXor: "^=", isa.ALUMov: "=",
	isa.ALUArsh: "s>>=", isa.ALUEnd: "endian",
}

// checkALU is check_alu_op.
func (v *verifier) checkALU(ins isa.Instruction) error {
	pc := v.insnIdx
	op := ins.Op.ALUOp()
	wide := ins.Op.Class() == isa.ClassALU64
	x := ins.Op.Source() == isa.SourceX && op != isa.ALUNeg && op != isa.ALUEnd
	if !x {
		switch op {
		case isa.ALULsh, isa.ALURsh, isa.ALUArsh:
			size := int32(32)
			if wide {
				size = 64
			}
			if ins.Imm < 0 || ins.Imm >= size {
				return v.errorf(pc, "invalid shift %d", ins.Imm)
			}
		case isa.ALUDiv, isa.ALUMod:
			if ins.Imm == 0 {
				return v.errorf(pc, "div by zero")
			}
		}
	}
	var src *reg
	if x {
		var err error
		if src, err = v.readReg(ins.Src); err != nil {
			return err
		}
	}
	if op == isa.ALUMov {
		dst, err := v.writeReg(ins.Dst)
		if err != nil {
			return err
		}
		if !x {
			if wide {
				dst.setConst(uint64(int64(ins.Imm)))
			} else {
				dst.setConst(uint64(uint32(ins.Imm)))
			}
			return nil
		}
		return v.mov(ins, dst, src, wide)
	}
	dst, err := v.readReg(ins.Dst)
	if err != nil {
		return err
	}
	if ins.Dst == isa.R10 {
		return v.errorf(pc, "frame pointer is read only")
	}
	if op == isa.ALUNeg || op == isa.ALUEnd {
		if dst.isPointer() {
			if v.isPointerLeak(dst) {
				return v.errorf(pc, "R%d pointer arithmetic prohibited", ins.Dst)
			}
			dst.setUnknown()
			return nil
		}
		nv := scalar.ALU(op, wide, ins.Off, ins.Imm, ins.Op.Source() == isa.SourceX, dst.v, dst.v)
		dst.setScalar(nv)
		return nil
	}
	var off reg
	if x {
		off = *src
	} else {
		off.setConst(uint64(int64(ins.Imm)))
		if !wide {
			off.setConst(uint64(uint32(ins.Imm)))
		}
	}
	switch {
	case dst.isPointer() && off.isPointer():
		if op == isa.ALUSub && v.allowPtrLeaks {
			dst.setUnknown()
			return nil
		}
		return v.errorf(pc, "R%d pointer %s pointer prohibited", ins.Dst, aluNames[op])
	case off.isPointer():
		// scalar += pointer: the scalar must be precise.
		v.markPrecise(v.cur, ins.Dst)
		return v.ptrALU(ins, dst, &off, dst, wide)
	case dst.isPointer():
		if x {
			v.markPrecise(v.cur, ins.Src)
		}
		return v.ptrALU(ins, dst, dst, &off, wide)
	}
	if err := v.sanitizeVal(ins); err != nil {
		return err
	}
	// Both scalars: the result is no longer a copy of anything, unless it
	// is one plus a constant ("r1 = r2; r1 += 4", addConst).
	linkID, linkOff := v.linkedAdd(ins, dst, &off, wide)
	dst.id = 0
	if minus, zero, ok := scalar.Fork(op, dst.v, off.v); ok {
		// maybe_fork_scalars: explore dst = 0 apart, from this insn.
		br := v.clone(v.cur)
		br.frames[len(br.frames)-1].regs[ins.Dst].setScalar(zero)
		br.path = &step{prev: v.cur.path, insn: pc, taken: false}
		v.push(br, false)
		dst.setScalar(minus)
	}
	nv := scalar.ALU(op, wide, ins.Off, ins.Imm, false, dst.v, off.v)
	dst.setScalar(nv)
	if linkID != 0 {
		dst.id, dst.off = linkID, linkOff
	}
	return nil
}

// linkedAdd is the BPF_ADD_CONST part of adjust_reg_min_max_vals (Linux
// 6.18 with its stable fixes): the id and offset dst keeps after "dst +=
// c" or "dst -= c" when it is linked and not yet offset, or 0.
func (v *verifier) linkedAdd(ins isa.Instruction, dst, src *reg, wide bool) (uint32, int32) {
	op := ins.Op.ALUOp()
	if v.opts.Unprivileged || op != isa.ALUAdd && op != isa.ALUSub || dst.id == 0 || dst.id&addConst != 0 ||
		ins.Op.Source() == isa.SourceX && ins.Src == ins.Dst {
		return 0, 0
	}
	var c int64
	flag := addConst64
	if wide {
		if !src.v.IsConst() {
			return 0, 0
		}
		c = int64(src.v.Var.Value)
		if c < math.MinInt32 || c > math.MaxInt32 {
			return 0, 0
		}
	} else {
		// The link holds only for a dst whose upper half was zero.
		if !src.v.Var.Subreg().IsConst() || dst.v.UMax > math.MaxUint32 {
			return 0, 0
		}
		c, flag = int64(int32(uint32(src.v.Var.Value))), addConst32
	}
	if op == isa.ALUSub {
		if c == math.MinInt32 {
			return 0, 0
		}
		c = -c
	}
	return dst.id | flag, int32(c)
}

// mov is the register form of BPF_MOV.
func (v *verifier) mov(ins isa.Instruction, dst, src *reg, wide bool) error {
	pc := v.insnIdx
	sx := ins.Off != 0
	if src.isPointer() {
		if wide && !sx {
			*dst = *src
			return nil
		}
		if v.isPointerLeak(src) {
			if sx {
				return v.errorf(pc, "R%d sign-extension part of pointer", ins.Src)
			}
			return v.errorf(pc, "R%d partial copy of pointer", ins.Src)
		}
		dst.setUnknown()
		if !wide {
			dst.setScalar(scalar.ALU(isa.ALUMov, false, 0, 0, false, scalar.Unknown(), scalar.Unknown()))
		}
		return nil
	}
	// A copy of an unknown scalar is linked to it: a bounds check on one
	// applies to both.
	if wide && !sx {
		v.idBeforeMov(src)
		*dst = *src
		return nil
	}
	id := uint32(0)
	if !wide && !sx && src.v.UMax <= math.MaxUint32 && !src.v.IsConst() {
		v.idBeforeMov(src)
		id = src.id
	}
	nv := scalar.ALU(isa.ALUMov, wide, ins.Off, 0, false, scalar.Unknown(), src.v)
	dst.setScalar(nv)
	dst.id = id
	return nil
}

// ptrALU is adjust_ptr_min_max_vals: ptr op off, into dst.
func (v *verifier) ptrALU(ins isa.Instruction, dst, ptr, off *reg, wide bool) error {
	pc := v.insnIdx
	op := ins.Op.ALUOp()
	d := ins.Dst
	known := off.v.IsConst()
	if known && (off.v.SMin != off.v.SMax || off.v.UMin != off.v.UMax) || off.v.SMin > off.v.SMax || off.v.UMin > off.v.UMax {
		dst.setUnknown()
		return nil
	}
	if !wide {
		if op == isa.ALUSub && v.allowPtrLeaks {
			dst.setUnknown()
			return nil
		}
		return hinted(v.errorf(pc, "R%d 32-bit pointer arithmetic prohibited", d),
			"do pointer arithmetic in 64 bits (u64/long offsets, not u32)")
	}
	if ptr.maybeNull() {
		return hinted(v.errorf(pc, "R%d pointer arithmetic on %s prohibited, null-check it first", d, ptr.typeName()),
			"test the pointer against NULL before using it: if (!p) return ...;")
	}
	switch ptr.typ {
	case ptrCtx, ptrMapValue, ptrMapKey, ptrStack, ptrPacketMeta, ptrPacket, ptrBTFID, ptrMem, ptrFunc, ptrDynptr:
	case ptrFlowKeys:
		if !known {
			return v.errorf(pc, "R%d pointer arithmetic on %s prohibited", d, ptr.typeName())
		}
	case constMapPtr:
		if known && off.v.SMin == 0 && op == isa.ALUAdd {
			break
		}
		return v.errorf(pc, "R%d pointer arithmetic on %s prohibited", d, ptr.typeName())
	default:
		return v.errorf(pc, "R%d pointer arithmetic on %s prohibited", d, ptr.typeName())
	}
	p := *ptr
	o := *off
	if err := v.saneOffset(pc, &o, &p); err != nil {
		return err
	}
	if err := v.saneOffset(pc, &p, &p); err != nil {
		return err
	}
	var info sanitizeInfo
	sanitize := op == isa.ALUAdd || op == isa.ALUSub
	if sanitize {
		if why := v.sanitizePtr(ins, &p, &o, ptr == dst, ptr, &info, false); why != 0 {
			return v.sanitizeErr(ins, why, off == dst)
		}
	}
	res := p
	switch op {
	case isa.ALUAdd:
		if known && int64(p.off)+o.v.SMin == int64(int32(int64(p.off)+o.v.SMin)) {
			res.off = p.off + int32(o.v.SMin)
			break
		}
		res.v = addPtr(p.v, o.v)
		if p.isPkt() {
			res.id = v.nextID()
			res.rng = 0
		}
	case isa.ALUSub:
		if dst != ptr {
			return v.errorf(pc, "R%d tried to subtract pointer from scalar", d)
		}
		if p.typ == ptrStack {
			return v.errorf(pc, "R%d subtraction from stack pointer prohibited", d)
		}
		if known && int64(p.off)-o.v.SMin == int64(int32(int64(p.off)-o.v.SMin)) {
			res.off = p.off - int32(o.v.SMin)
			break
		}
		res.v = subPtr(p.v, o.v)
		if p.isPkt() {
			res.id = v.nextID()
			if o.v.SMin < 0 {
				res.rng = 0
			}
		}
	case isa.ALUAnd, isa.ALUOr, isa.ALUXor:
		return v.errorf(pc, "R%d bitwise operator %s on pointer prohibited", d, aluNames[op])
	default:
		return v.errorf(pc, "R%d pointer arithmetic with %s operator prohibited", d, aluNames[op])
	}
	if err := v.saneOffset(pc, &res, &p); err != nil {
		return err
	}
	if err := v.sanitizeBoundsCheck(d, &res); err != nil {
		return err
	}
	if sanitize {
		if why := v.sanitizePtr(ins, &res, &o, ptr == dst, ptr, &info, true); why != 0 {
			return v.sanitizeErr(ins, why, off == dst)
		}
	}
	*dst = res
	return nil
}

// addPtr adds a scalar to a pointer's variable offset, without wrapping
// ranges (the pointer part of adjust_ptr_min_max_vals).
func addPtr(a, b scalar.Value) scalar.Value {
	r := scalar.Unknown()
	r.Var = a.Var.Add(b.Var)
	if s, o := addS64(a.SMin, b.SMin); !o {
		if t, o2 := addS64(a.SMax, b.SMax); !o2 {
			r.SMin, r.SMax = s, t
		}
	}
	if a.UMax+b.UMax >= a.UMax && a.UMin+b.UMin >= a.UMin {
		r.UMin, r.UMax = a.UMin+b.UMin, a.UMax+b.UMax
	}
	r.Sync()
	return r
}

func subPtr(a, b scalar.Value) scalar.Value {
	r := scalar.Unknown()
	r.Var = a.Var.Sub(b.Var)
	if s, o := subS64(a.SMin, b.SMax); !o {
		if t, o2 := subS64(a.SMax, b.SMin); !o2 {
			r.SMin, r.SMax = s, t
		}
	}
	if a.UMin >= b.UMax {
		r.UMin, r.UMax = a.UMin-b.UMax, a.UMax-b.UMin
	}
	r.Sync()
	return r
}

func addS64(a, b int64) (int64, bool) {
	c := a + b
	return c, (c > a) != (b > 0)
}

func subS64(a, b int64) (int64, bool) {
	c := a - b
	return c, (c < a) != (b > 0)
}

// saneOffset is check_reg_sane_offset.
func (v *verifier) saneOffset(pc int, r, ptr *reg) error {
	t := ptr.typeName()
	if r.typ == scalarReg && r.v.IsConst() {
		val := int64(r.v.Var.Value)
		if val >= maxVarOff || val <= -maxVarOff {
			return v.errorf(pc, "math between %s pointer and %d is not allowed", t, val)
		}
	}
	if r.off >= maxVarOff || r.off <= -maxVarOff {
		return v.errorf(pc, "%s pointer offset %d is not allowed", t, r.off)
	}
	if r.v.SMin == math.MinInt64 {
		return hinted(v.errorf(pc, "math between %s pointer and register with unbounded min value is not allowed", t),
			"bound the offset before adding it to the pointer: if (off > MAX) return ...; or off &= MASK;")
	}
	if r.v.SMin >= maxVarOff || r.v.SMin <= -maxVarOff {
		return v.errorf(pc, "value %d makes %s pointer be out of bounds", r.v.SMin, t)
	}
	return nil
}
