package asm

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/waggle-bpf/waggle/isa"
)

// ParseConformance assembles the dialect of the eBPF conformance suite's
// "-- asm" sections (testdata/conformance/README.md §2), e.g.
//
//	mov %r0, 1
//	ldxw %r0, [%r1+4]
//	jeq %r1, 0, +2
//	lock fetch add32 [%r10-8], %r1
//	call local func1
//	exit
//
// "#" starts a comment. Operands are separated by white space, and one
// trailing comma on each is dropped. A label is "name:" on a line of its
// own; the first exit also defines the label "exit" unless the program
// defines that label itself. As in the upstream assembler, %r11-%r15 are
// accepted so that invalid programs can be written; isa.ValidateProgram
// rejects them.
//
// Errors are *Error values naming the line.
func ParseConformance(src string) ([]isa.Instruction, error) {
	a := newAssembler()
	exitSlot, exitLine := -1, 0
	for i, line := range strings.Split(src, "\n") {
		n := i + 1
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		col := strings.Index(line, fields[0]) + 1
		if strings.HasSuffix(fields[0], ":") {
			name := strings.TrimSuffix(fields[0], ":")
			if len(fields) > 1 {
				return nil, &Error{Line: n, Column: col, Msg: fmt.Sprintf("label %q must be on a line of its own", name)}
			}
			if name == "" || strings.ContainsAny(name, "[]%,+") || strings.HasPrefix(name, "-") {
				return nil, &Error{Line: n, Column: col, Msg: fmt.Sprintf("%q cannot be a label", name)}
			}
			if err := a.define(name, n, col); err != nil {
				return nil, err
			}
			continue
		}
		if fields[0] == "exit" && exitSlot < 0 {
			exitSlot, exitLine = a.slot, n
		}
		c := &confLine{line: n, text: line, mnemonic: fields[0]}
		for _, f := range fields[1:] {
			c.ops = append(c.ops, strings.TrimSuffix(f, ","))
		}
		it, err := c.instruction()
		if err != nil {
			return nil, err
		}
		it.line = n
		a.add(it)
	}
	if _, ok := a.labels["exit"]; !ok && exitSlot >= 0 {
		a.labels["exit"] = labelDef{slot: exitSlot, line: exitLine}
	}
	return a.finish()
}

// confLine is one instruction line of the conformance dialect.
type confLine struct {
	line     int
	text     string
	mnemonic string
	ops      []string
}

func (c *confLine) errorf(tok, format string, args ...any) error {
	col := 0
	if tok != "" {
		col = strings.Index(c.text, tok) + 1
	}
	return &Error{Line: c.line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

func (c *confLine) want(n int, form string) error {
	if len(c.ops) != n {
		hint := ""
		for _, op := range c.ops {
			if strings.Contains(op, ",") {
				hint = " (operands are separated by a comma and a space)"
			}
		}
		return c.errorf(c.mnemonic, "%s takes %d operand(s), %s; found %d%s", c.mnemonic, n, form, len(c.ops), hint)
	}
	return nil
}

var confRegister = regexp.MustCompile(`^%r(\d+)$`)

func (c *confLine) reg(s string) (isa.Register, error) {
	m := confRegister.FindStringSubmatch(s)
	if m == nil {
		if strings.Contains(s, ",") {
			return 0, c.errorf(s, "invalid register %q (operands are separated by a comma and a space)", s)
		}
		return 0, c.errorf(s, "invalid register %q", s)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n > 15 || (len(m[1]) > 1 && m[1][0] == '0') {
		return 0, c.errorf(s, "unknown register %q", s)
	}
	return isa.Register(n), nil
}

func isConfReg(s string) bool { return strings.HasPrefix(s, "%") }

// confNumber reads a token: hex if it contains "0x", decimal otherwise, with
// an optional sign. It returns sign and magnitude.
func (c *confLine) confNumber(s string) (num, error) {
	n := num{text: s}
	t := s
	if strings.HasPrefix(t, "-") {
		n.neg, t = true, t[1:]
	} else {
		t = strings.TrimPrefix(t, "+")
	}
	var err error
	switch {
	case strings.HasPrefix(t, "0x") || strings.HasPrefix(t, "0X"):
		n.mag, err = strconv.ParseUint(t[2:], 16, 64)
	case strings.Contains(t, "0x"):
		err = strconv.ErrSyntax
	default:
		n.mag, err = strconv.ParseUint(t, 10, 64)
	}
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return n, c.errorf(s, "number %q does not fit in 64 bits", s)
		}
		return n, c.errorf(s, "malformed number %q", s)
	}
	return n, nil
}

// imm reads a 32-bit immediate: hex up to 0xffffffff (so 0xffffffff is -1),
// or signed decimal in the int32 range (README §2).
func (c *confLine) imm(s string) (int32, error) {
	n, err := c.confNumber(s)
	if err != nil {
		return 0, err
	}
	hex := strings.Contains(s, "0x") || strings.Contains(s, "0X")
	if hex {
		if v, ok := n.imm32(); ok {
			return v, nil
		}
	} else if v, ok := n.int64(); ok && v >= math.MinInt32 && v <= math.MaxInt32 {
		return int32(v), nil
	}
	return 0, c.errorf(s, "immediate %s does not fit in 32 bits", s)
}

var confMemory = regexp.MustCompile(`^\[(%r\d+)(?:([+-])([0-9A-Za-z]+))?\]$`)

// memory reads [%rN+off], [%rN-off] or [%rN].
func (c *confLine) memory(s string) (isa.Register, int16, error) {
	m := confMemory.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, c.errorf(s, "invalid memory operand %q, want [%%rN+off], [%%rN-off] or [%%rN]", s)
	}
	r, err := c.reg(m[1])
	if err != nil {
		return 0, 0, err
	}
	if m[2] == "" {
		return r, 0, nil
	}
	n, err := c.confNumber(m[2] + m[3])
	if err != nil {
		return 0, 0, err
	}
	off, ok := n.off16()
	if !ok {
		return 0, 0, c.errorf(s, "offset %s%s does not fit in 16 bits", m[2], m[3])
	}
	return r, off, nil
}

// target reads +N, -N (relative) or a label into it.
func (c *confLine) target(it *item, s string, fix fixup) error {
	if !strings.HasPrefix(s, "+") && !strings.HasPrefix(s, "-") {
		it.fix, it.label, it.labelCol = fix, s, strings.Index(c.text, s)+1
		return nil
	}
	n, err := c.confNumber(s)
	if err != nil {
		return err
	}
	v, ok := n.int64()
	switch fix {
	case fixOff:
		if !ok || v < math.MinInt16 || v > math.MaxInt16 {
			return c.errorf(s, "jump offset %s does not fit in 16 bits (ja32 takes a 32-bit one)", s)
		}
		it.slots[0].Off = int16(v)
	default:
		if !ok || v < math.MinInt32 || v > math.MaxInt32 {
			return c.errorf(s, "offset %s does not fit in 32 bits", s)
		}
		it.slots[0].Imm = int32(v)
	}
	return nil
}

var confALU = map[string]isa.ALUOp{
	"add": isa.ALUAdd, "sub": isa.ALUSub, "mul": isa.ALUMul, "div": isa.ALUDiv, "sdiv": isa.ALUDiv,
	"or": isa.ALUOr, "and": isa.ALUAnd, "lsh": isa.ALULsh, "rsh": isa.ALURsh, "mod": isa.ALUMod,
	"smod": isa.ALUMod, "xor": isa.ALUXor, "mov": isa.ALUMov, "arsh": isa.ALUArsh, "neg": isa.ALUNeg,
}

var confJump = map[string]isa.JumpOp{
	"jeq": isa.JumpEq, "jgt": isa.JumpGT, "jge": isa.JumpGE, "jset": isa.JumpSet, "jne": isa.JumpNE,
	"jsgt": isa.JumpSGT, "jsge": isa.JumpSGE, "jlt": isa.JumpLT, "jle": isa.JumpLE, "jslt": isa.JumpSLT,
	"jsle": isa.JumpSLE,
}

var confSizes = map[string]isa.Size{"b": isa.SizeB, "h": isa.SizeH, "w": isa.SizeW, "dw": isa.SizeDW}

var confAtomic = map[string]isa.AtomicOp{
	"add": isa.AtomicAdd, "or": isa.AtomicOr, "and": isa.AtomicAnd, "xor": isa.AtomicXor,
	"xchg": isa.AtomicXchg, "cmpxchg": isa.AtomicCmpXchg,
}

// width splits a mnemonic into its base and its width suffix: "add32" is
// ("add", false), "add" and "add64" are ("add", true).
func width(m string) (string, bool) {
	if b, ok := strings.CutSuffix(m, "32"); ok {
		return b, false
	}
	b, _ := strings.CutSuffix(m, "64")
	return b, true
}

func (c *confLine) instruction() (item, error) {
	m := c.mnemonic
	switch m {
	case "exit":
		if err := c.want(0, "none"); err != nil {
			return item{}, err
		}
		return one(isa.Instruction{Op: isa.OpExit}), nil
	case "ja", "ja32":
		if err := c.want(1, "a target"); err != nil {
			return item{}, err
		}
		it := one(isa.Instruction{Op: isa.OpJA})
		fix := fixOff
		if m == "ja32" {
			it.slots[0].Op, fix = isa.OpJA32, fixImm
		}
		return it, c.target(&it, c.ops[0], fix)
	case "call":
		return c.call()
	case "lock":
		return c.lock()
	case "lddw":
		if err := c.want(2, "a register and a 64-bit immediate"); err != nil {
			return item{}, err
		}
		dst, err := c.reg(c.ops[0])
		if err != nil {
			return item{}, err
		}
		n, err := c.confNumber(c.ops[1])
		if err != nil {
			return item{}, err
		}
		v, ok := n.imm64()
		if !ok {
			return item{}, c.errorf(c.ops[1], "immediate %s does not fit in 64 bits", c.ops[1])
		}
		return two(isa.LoadImm64(dst, 0, v)), nil
	}
	switch m {
	case "be16", "be32", "be64", "le16", "le32", "le64", "bswap16", "bswap32", "bswap64", "swap16", "swap32", "swap64":
		if err := c.want(1, "a register"); err != nil {
			return item{}, err
		}
		dst, err := c.reg(c.ops[0])
		if err != nil {
			return item{}, err
		}
		bits, _ := strconv.Atoi(m[len(m)-2:])
		op := aluOpcode(true, isa.ALUEnd, isa.SourceLE)
		switch m[:2] {
		case "be":
			op = aluOpcode(false, isa.ALUEnd, isa.SourceBE)
		case "le":
			op = aluOpcode(false, isa.ALUEnd, isa.SourceLE)
		}
		return one(isa.Instruction{Op: op, Dst: dst, Imm: int32(bits)}), nil
	case "movsx832", "movsx1632", "movsx864", "movsx1664", "movsx3264":
		if err := c.want(2, "two registers"); err != nil {
			return item{}, err
		}
		dst, err := c.reg(c.ops[0])
		if err != nil {
			return item{}, err
		}
		src, err := c.reg(c.ops[1])
		if err != nil {
			return item{}, err
		}
		from, _ := strconv.Atoi(strings.TrimPrefix(m[:len(m)-2], "movsx"))
		return one(isa.Instruction{Op: aluOpcode(strings.HasSuffix(m, "64"), isa.ALUMov, isa.SourceX), Dst: dst, Src: src, Off: int16(from)}), nil
	}
	if strings.HasPrefix(m, "ldx") || strings.HasPrefix(m, "st") {
		return c.memoryOp()
	}
	base, wide := width(m)
	if _, ok := confALU[base]; ok {
		return c.alu(base, wide)
	}
	if op, ok := confJump[base]; ok {
		return c.jump(op, wide)
	}
	return item{}, c.errorf(m, "invalid mnemonic %q", m)
}

func (c *confLine) alu(base string, wide bool) (item, error) {
	op := confALU[base]
	if op == isa.ALUNeg {
		if err := c.want(1, "a register"); err != nil {
			return item{}, err
		}
		dst, err := c.reg(c.ops[0])
		if err != nil {
			return item{}, err
		}
		return one(isa.Instruction{Op: aluOpcode(wide, op, isa.SourceK), Dst: dst}), nil
	}
	if err := c.want(2, "a register and a register or immediate"); err != nil {
		return item{}, err
	}
	dst, err := c.reg(c.ops[0])
	if err != nil {
		return item{}, err
	}
	ins := isa.Instruction{Dst: dst}
	if base == "sdiv" || base == "smod" {
		ins.Off = 1
	}
	if isConfReg(c.ops[1]) {
		ins.Op = aluOpcode(wide, op, isa.SourceX)
		ins.Src, err = c.reg(c.ops[1])
	} else {
		ins.Op = aluOpcode(wide, op, isa.SourceK)
		ins.Imm, err = c.imm(c.ops[1])
	}
	return one(ins), err
}

func (c *confLine) jump(op isa.JumpOp, wide bool) (item, error) {
	if err := c.want(3, "a register, a register or immediate, and a target"); err != nil {
		return item{}, err
	}
	dst, err := c.reg(c.ops[0])
	if err != nil {
		return item{}, err
	}
	cls := isa.ClassJMP
	if !wide {
		cls = isa.ClassJMP32
	}
	ins := isa.Instruction{Op: isa.Opcode(cls) | isa.Opcode(op), Dst: dst}
	if isConfReg(c.ops[1]) {
		ins.Op |= isa.Opcode(isa.SourceX)
		ins.Src, err = c.reg(c.ops[1])
	} else {
		ins.Imm, err = c.imm(c.ops[1])
	}
	if err != nil {
		return item{}, err
	}
	it := one(ins)
	return it, c.target(&it, c.ops[2], fixOff)
}

// memoryOp assembles ldx*, ldxs*, st* and stx*.
func (c *confLine) memoryOp() (item, error) {
	m := c.mnemonic
	var rest string
	var class isa.Class
	mode := isa.ModeMEM
	switch {
	case strings.HasPrefix(m, "ldxs") && m != "ldxdw":
		// ldxsb ldxsh ldxsw; "ldxs" followed by b, h, w
		class, mode, rest = isa.ClassLDX, isa.ModeMEMSX, m[4:]
		if rest == "dw" {
			return item{}, c.errorf(m, "invalid mnemonic %q: sign-extending loads are ldxsb, ldxsh and ldxsw", m)
		}
	case strings.HasPrefix(m, "ldx"):
		class, rest = isa.ClassLDX, m[3:]
	case strings.HasPrefix(m, "stx"):
		class, rest = isa.ClassSTX, m[3:]
	default:
		class, rest = isa.ClassST, m[2:]
	}
	sz, ok := confSizes[rest]
	if !ok {
		return item{}, c.errorf(m, "invalid mnemonic %q", m)
	}
	op := isa.Opcode(class) | isa.Opcode(mode) | isa.Opcode(sz)
	if err := c.want(2, "a register and a memory operand"); err != nil {
		return item{}, err
	}
	if class == isa.ClassLDX {
		dst, err := c.reg(c.ops[0])
		if err != nil {
			return item{}, err
		}
		src, off, err := c.memory(c.ops[1])
		return one(isa.Instruction{Op: op, Dst: dst, Src: src, Off: off}), err
	}
	dst, off, err := c.memory(c.ops[0])
	if err != nil {
		return item{}, err
	}
	ins := isa.Instruction{Op: op, Dst: dst, Off: off}
	if class == isa.ClassSTX {
		ins.Src, err = c.reg(c.ops[1])
	} else {
		ins.Imm, err = c.imm(c.ops[1])
	}
	return one(ins), err
}

// call assembles "call N", "call helper N", "call local label", "call
// runtime N" and "call %rN" (callx, register in dst).
func (c *confLine) call() (item, error) {
	switch {
	case len(c.ops) == 1 && isConfReg(c.ops[0]):
		r, err := c.reg(c.ops[0])
		return one(isa.Instruction{Op: isa.OpCallX, Dst: r}), err
	case len(c.ops) == 1 && c.ops[0] != "helper" && c.ops[0] != "local" && c.ops[0] != "runtime":
		imm, err := c.imm(c.ops[0])
		return one(isa.Instruction{Op: isa.OpCall, Imm: imm}), err
	case len(c.ops) == 2 && c.ops[0] == "helper":
		imm, err := c.imm(c.ops[1])
		return one(isa.Instruction{Op: isa.OpCall, Imm: imm}), err
	case len(c.ops) == 2 && c.ops[0] == "runtime":
		imm, err := c.imm(c.ops[1])
		return one(isa.Instruction{Op: isa.OpCall, Src: isa.PseudoKfuncCall, Imm: imm}), err
	case len(c.ops) == 2 && c.ops[0] == "local":
		it := one(isa.Instruction{Op: isa.OpCall, Src: isa.PseudoCall})
		return it, c.target(&it, c.ops[1], fixImm)
	case len(c.ops) == 2:
		return item{}, c.errorf(c.ops[0], "invalid call mode %q (helper, local or runtime)", c.ops[0])
	}
	return item{}, c.errorf("call", "call takes a helper id, %%rN, or a mode (helper, local, runtime) and a target; found %d operands", len(c.ops))
}

// lock assembles "lock [fetch] op[32] [dst+off], src".
func (c *confLine) lock() (item, error) {
	ops := c.ops
	fetch := len(ops) > 0 && ops[0] == "fetch"
	if fetch {
		ops = ops[1:]
	}
	if len(ops) != 3 {
		return item{}, c.errorf("lock", "invalid number of operands for lock: want lock [fetch] op[32] [%%rN+off], %%rM")
	}
	base, wide := width(ops[0])
	aop, ok := confAtomic[base]
	if !ok {
		return item{}, c.errorf(ops[0], "invalid atomic operation %q (add, or, and, xor, xchg, cmpxchg)", ops[0])
	}
	if fetch {
		aop |= isa.AtomicFetch
	}
	dst, off, err := c.memory(ops[1])
	if err != nil {
		return item{}, err
	}
	src, err := c.reg(ops[2])
	if err != nil {
		return item{}, err
	}
	sz := isa.SizeDW
	if !wide {
		sz = isa.SizeW
	}
	return one(isa.Instruction{Op: atomicOpcode(sz), Dst: dst, Src: src, Off: off, Imm: int32(aop)}), nil
}
