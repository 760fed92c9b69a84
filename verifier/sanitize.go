package verifier

import (
	"github.com/waggle-bpf/waggle/isa"
)

// Spectre v1 sanitation of pointer arithmetic for unprivileged programs
// (sanitize_ptr_alu, sanitize_check_bounds). Linux masks the offset of
// every "pointer +/-= register" at run time so that even a mispredicted
// path cannot move the pointer out of its object; the verifier proves the
// masks can be computed: one limit per instruction over all paths, an
// offset whose sign is known, a result inside the object. It also
// explores the path where the mask truncated the offset to 0, as a
// speculative path. waggle's engines do not speculate, so the masks are
// not emitted; the verdicts are Linux's.

// Reasons a pointer operation cannot be sanitized (enum
// REASON_BOUNDS...).
const (
	sanitizeBounds = iota + 1
	sanitizeType
	sanitizePaths
	sanitizeLimit
)

// Bits of an instruction's sanitation state (BPF_ALU_*).
const (
	aluSanitizeSrc uint8 = 1 << iota
	aluSanitizeDst
	aluNegValue
	aluImmediate
	aluNonPointer
)

// ptrLimit is retrieve_ptr_limit: how far the pointer may move in the
// direction the mask allows, or a reason it cannot be told.
func (v *verifier) ptrLimit(ptr *reg, maskToLeft bool) (uint32, int) {
	var max, limit uint32
	switch ptr.typ {
	case ptrStack:
		max = maxStack
		if maskToLeft {
			max++
		}
		limit = uint32(-(int64(ptr.v.Var.Value) + int64(ptr.off)))
	case ptrMapValue:
		if ptr.mapIdx < 0 || int(ptr.mapIdx) >= len(v.p.Maps) {
			return 0, sanitizeType
		}
		max = v.p.Maps[ptr.mapIdx].Spec.ValueSize
		if maskToLeft {
			limit = uint32(ptr.v.SMin + int64(ptr.off))
		} else {
			limit = uint32(ptr.v.UMax + uint64(int64(ptr.off)))
		}
	default:
		return 0, sanitizeType
	}
	if limit >= max {
		return 0, sanitizeLimit
	}
	return limit, 0
}

// sanitizeInfo carries the first phase of sanitizePtr to its second.
type sanitizeInfo struct {
	state      uint8
	limit      uint32
	maskToLeft bool
}

// sanitizePtr is sanitize_ptr_alu: ptr is the pointer operand (before)
// or the result (after), orig the pointer as it was. Before the operation (commit false)
// it checks the offset and the pointer and, for a register offset,
// explores the path where the mask made it 0; after it (commit true) it
// records the instruction's mask, which every path must share.
func (v *verifier) sanitizePtr(ins isa.Instruction, ptr, off *reg, ptrIsDst bool, orig *reg, info *sanitizeInfo, commit bool) int {
	if !v.opts.Unprivileged || ins.Op.Source() == isa.SourceK {
		return 0
	}
	op := ins.Op.ALUOp()
	offImm := off.v.IsConst()
	offNeg := off.v.SMin < 0
	if !v.cur.speculative {
		if !commit {
			if !offImm && (off.v.SMin < 0) != (off.v.SMax < 0) {
				return sanitizeBounds
			}
			info.maskToLeft = op == isa.ALUAdd && offNeg || op == isa.ALUSub && !offNeg
		}
		limit, why := v.ptrLimit(ptr, info.maskToLeft)
		if why != 0 {
			return why
		}
		if !commit {
			info.limit = limit
			if offNeg {
				info.state |= aluNegValue
			}
			if offImm {
				info.state |= aluImmediate
			}
			if ptrIsDst {
				info.state |= aluSanitizeSrc
			} else {
				info.state |= aluSanitizeDst
			}
			if !offImm {
				v.exploreALULimits = true
			}
			return 0
		}
		d := info.limit - limit
		if info.limit < limit {
			d = limit - info.limit
		}
		a := &v.aux[v.insnIdx]
		if a.aluState != 0 && (a.aluState != info.state || a.aluLimit != d) {
			return sanitizePaths
		}
		a.aluState, a.aluLimit = info.state, d
	}
	if commit || offImm {
		return 0
	}
	// The mask may make the offset 0: the pointer as it was, into dst.
	spec := v.clone(v.cur)
	spec.insn = v.insnIdx + 1
	spec.speculative = true
	spec.path = &step{prev: v.cur.path, insn: v.insnIdx}
	spec.cur().regs[ins.Dst] = *orig
	v.push(spec, true)
	return 0
}

// sanitizeVal is sanitize_val_alu: an unprivileged add or sub of two
// registers holding numbers is marked so, and may not be an instruction
// that moves a pointer on another path (its mask would apply to both).
func (v *verifier) sanitizeVal(ins isa.Instruction) error {
	if !v.opts.Unprivileged || ins.Op.Source() == isa.SourceK {
		return nil
	}
	if op := ins.Op.ALUOp(); op != isa.ALUAdd && op != isa.ALUSub {
		return nil
	}
	a := &v.aux[v.insnIdx]
	if a.aluState != 0 && (a.aluState != aluNonPointer || a.aluLimit != 0) {
		return v.sanitizeErr(ins, sanitizePaths, false)
	}
	a.aluState, a.aluLimit = aluNonPointer, 0
	return nil
}

// sanitizeErr is sanitize_err: the refusal for a reason.
func (v *verifier) sanitizeErr(ins isa.Instruction, why int, offIsDst bool) error {
	const tail = "pointer arithmetic with it prohibited for !root"
	opName := "add"
	if ins.Op.ALUOp() == isa.ALUSub {
		opName = "sub"
	}
	d, s := ins.Dst, ins.Src
	var e *Error
	switch why {
	case sanitizeBounds:
		r := s
		if offIsDst {
			r = d
		}
		e = v.errorf(v.insnIdx, "R%d has unknown scalar with mixed signed bounds, %s", r, tail)
	case sanitizeType:
		r := d
		if offIsDst {
			r = s
		}
		e = v.errorf(v.insnIdx, "R%d has pointer with unsupported alu operation, %s", r, tail)
	case sanitizePaths:
		e = v.errorf(v.insnIdx, "R%d tried to %s from different maps, paths or scalars, %s", d, opName, tail)
	default:
		e = v.errorf(v.insnIdx, "R%d tried to %s beyond pointer bounds, %s", d, opName, tail)
	}
	return hinted(e, "unprivileged programs may move a pointer by a register only within its object, by the same bounds on every path: bound the offset (if (off >= size) return ...) or load with CAP_BPF")
}

// sanitizeBoundsCheck is sanitize_check_bounds: an unprivileged pointer
// must stay inside its object after arithmetic.
func (v *verifier) sanitizeBoundsCheck(d isa.Register, r *reg) error {
	if !v.opts.Unprivileged {
		return nil
	}
	switch r.typ {
	case ptrStack:
		off := int64(r.off) + int64(r.v.Var.Value)
		if !r.v.IsConst() {
			return v.errorf(v.insnIdx, "R%d variable stack access prohibited for !root, var_off=%s off=%d", d, r.v.Var, off)
		}
		if off >= 0 || off < -maxStack {
			return v.errorf(v.insnIdx, "R%d stack pointer arithmetic goes out of range, prohibited for !root; off=%d", d, off)
		}
	case ptrMapValue:
		size := int64(-1)
		if r.mapIdx >= 0 && int(r.mapIdx) < len(v.p.Maps) {
			size = int64(v.p.Maps[r.mapIdx].Spec.ValueSize)
		}
		lo := r.v.SMin + int64(r.off)
		out := size < 0 || r.v.SMin < -maxVarOff || r.v.UMax > maxVarOff || lo < 0 ||
			int64(r.v.UMax)+int64(r.off)+1 > size
		if out {
			return v.errorf(v.insnIdx, "R%d pointer arithmetic of map value goes out of range, prohibited for !root", d)
		}
	}
	return nil
}
