package asm

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/waggle-bpf/waggle/isa"
)

// Parse assembles a program written in LLVM's BPF syntax, the one
// llvm-objdump -d and isa.Format print, or in the kernel verifier log's
// spelling of it. One instruction per line; a lddw takes two slots of the
// result, as in the kernel. See the package documentation for what is
// accepted and how the ambiguities of LLVM's text are resolved.
//
// Errors are *Error values naming the line. Parse does not validate the
// program as a whole (see isa.ValidateProgram).
func Parse(src string) ([]isa.Instruction, error) {
	a := newAssembler()
	sections := 0
	for i, line := range strings.Split(src, "\n") {
		if err := a.llvmLine(i+1, line, &sections); err != nil {
			return nil, err
		}
	}
	return a.finish()
}

// Patterns of llvm-objdump and verifier-log decorations around the
// instruction text. Compiled once; regexps are safe for concurrent use.
var (
	reFileFormat = regexp.MustCompile(`^\S+:\s+file format \S+$`)
	reSection    = regexp.MustCompile(`^Disassembly of section (.*):$`)
	reReloc      = regexp.MustCompile(`^[0-9a-fA-F]+:\s+R_[A-Z0-9_]+(\s|$)`)
	reSymbol     = regexp.MustCompile(`^(?:[0-9a-fA-F]+ )?<([^<>\s]+)>:$`)
	reIndex      = regexp.MustCompile(`^\d+:(\s+|$)`)
	reBytes      = regexp.MustCompile(`^(?:[0-9a-fA-F]{2} ){7}[0-9a-fA-F]{2}(?: (?:[0-9a-fA-F]{2} ){7}[0-9a-fA-F]{2})?(\s+|$)`)
	reOpcode     = regexp.MustCompile(`^\(([0-9a-fA-F]{2})\)(\s+|$)`)
	reLabel      = regexp.MustCompile(`^([A-Za-z_.$][A-Za-z0-9_.$]*):(\s+|$)`)
	reAnnotation = regexp.MustCompile(`\s+<[^<>\s]+>$`)
)

// llvmLine parses one line of LLVM or kernel text.
func (a *assembler) llvmLine(n int, line string, sections *int) error {
	line = strings.TrimSuffix(line, "\r")
	line = strings.TrimRight(cutComment(line), " \t")
	s := strings.TrimLeft(line, " \t")
	col := len(line) - len(s) + 1 // column of s[0]
	// The regexps run only when a cheap test says they may match: most
	// lines are plain instructions.
	if s == "" || strings.Contains(s, "file format ") && reFileFormat.MatchString(s) || strings.Contains(s, "R_") && reReloc.MatchString(s) {
		return nil
	}
	if strings.HasPrefix(s, "Disassembly of section ") {
		if m := reSection.FindStringSubmatch(s); m != nil {
			*sections++
			if *sections > 1 {
				return &Error{Line: n, Column: col, Msg: fmt.Sprintf("second section %q: a listing holds one program per section; parse each section alone", m[1])}
			}
			return nil
		}
	}
	if strings.HasSuffix(s, ">:") {
		if m := reSymbol.FindStringSubmatch(s); m != nil {
			if !labelName(m[1]) {
				return &Error{Line: n, Column: col, Msg: fmt.Sprintf("symbol %q cannot be a label", m[1])}
			}
			return a.define(m[1], n, col)
		}
	}
	advance := func(k int) {
		col += k
		s = s[k:]
	}

	it := item{line: n}
	hint := -1
	if isDigit(s[0]) {
		if m := reIndex.FindStringIndex(s); m != nil {
			advance(m[1])
		}
	}
	if len(s) >= 23 && s[2] == ' ' {
		if m := reBytes.FindStringIndex(s); m != nil {
			b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(s[:m[1]]), " ", ""))
			if err != nil {
				return &Error{Line: n, Column: col, Msg: fmt.Sprintf("bad bytes column: %v", err)}
			}
			if it.raw, err = isa.Decode(b); err != nil {
				return &Error{Line: n, Column: col, Msg: fmt.Sprintf("bad bytes column: %v", err)}
			}
			advance(m[1])
		}
	}
	if strings.HasPrefix(s, "(") {
		if m := reOpcode.FindStringSubmatchIndex(s); m != nil {
			v, _ := strconv.ParseUint(s[m[2]:m[3]], 16, 8)
			hint = int(v)
			advance(m[1])
		}
	}
	for strings.IndexByte(s, ':') >= 0 {
		m := reLabel.FindStringSubmatchIndex(s)
		if m == nil {
			break
		}
		name := s[m[2]:m[3]]
		if !labelName(name) {
			return &Error{Line: n, Column: col, Msg: fmt.Sprintf("%q cannot be a label: it is a register or \"pc\"", name)}
		}
		if err := a.define(name, n, col); err != nil {
			return err
		}
		advance(m[1])
	}
	if strings.HasSuffix(s, ">") {
		s = reAnnotation.ReplaceAllString(s, "")
	}
	if s == "" {
		if it.raw != nil {
			return &Error{Line: n, Column: col, Msg: "bytes without instruction text"}
		}
		return nil
	}
	it.text = s
	if s == "<unknown>" {
		if it.raw == nil {
			return &Error{Line: n, Column: col, Msg: "llvm-objdump could not print this instruction; keep its bytes column (no --no-show-raw-insn), or disassemble with --mattr=+alu32"}
		}
		it.rawOnly = true
		it.n = len(it.raw)
		a.add(it)
		return nil
	}
	toks, err := lex(s, n, col)
	if err != nil {
		return err
	}
	p := &parser{toks: toks, line: n, end: col + len(s), hint: hint}
	parsed, err := p.instruction()
	if err != nil {
		return err
	}
	parsed.line, parsed.raw, parsed.text = n, it.raw, it.text
	if hint >= 0 && parsed.slots[0].Op != isa.Opcode(hint) {
		return &Error{Line: n, Column: col, Msg: fmt.Sprintf("opcode prefix (%02x) does not match the instruction, which encodes (%02x)", hint, uint8(parsed.slots[0].Op))}
	}
	a.add(parsed)
	return nil
}

// parser reads one instruction from the tokens of a line.
type parser struct {
	toks []token
	pos  int
	line int
	end  int // column after the last character, for "end of line" errors
	hint int // the kernel's "(18)" opcode prefix, -1 when absent
}

func (p *parser) peek() token { return p.peekAt(0) }

func (p *parser) peekAt(k int) token {
	if p.pos+k < len(p.toks) {
		return p.toks[p.pos+k]
	}
	return token{kind: tEOF, col: p.end}
}

func (p *parser) next() token {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *parser) accept(s string) bool {
	if p.peek().is(s) {
		p.pos++
		return true
	}
	return false
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return &Error{Line: p.line, Column: t.col, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) expect(s string) error {
	if t := p.next(); !t.is(s) {
		return p.errorf(t, "expected %q, found %s", s, t)
	}
	return nil
}

// done checks that nothing follows the instruction.
func (p *parser) done(it item) (item, error) {
	if t := p.peek(); t.kind != tEOF {
		return item{}, p.errorf(t, "unexpected %s after the instruction", t)
	}
	return it, nil
}

func (p *parser) isReg(k int) bool {
	t := p.peekAt(k)
	_, _, kind := register(t.text)
	return t.kind == tIdent && kind != notRegister
}

// reg reads a register, r0-r10 or w0-w10.
func (p *parser) reg() (isa.Register, bool, token, error) {
	t := p.next()
	r, wide, kind := register(t.text)
	switch {
	case t.kind != tIdent || kind == notRegister:
		return 0, false, t, p.errorf(t, "expected a register, found %s", t)
	case kind == badRegister:
		return 0, false, t, p.errorf(t, "unknown register %q", t.text)
	}
	return r, wide, t, nil
}

// wideReg reads a 64-bit register name (r0-r10).
func (p *parser) wideReg() (isa.Register, error) {
	r, wide, t, err := p.reg()
	if err == nil && !wide {
		err = p.errorf(t, "expected a 64-bit register r%d, found %q", r, t.text)
	}
	return r, err
}

// sameWidth reports a mix of r and w registers in one operation.
func (p *parser) sameWidth(wide bool, t token, srcWide bool) error {
	if wide != srcWide {
		return p.errorf(t, "%q mixes 32-bit (w) and 64-bit (r) registers in one instruction", t.text)
	}
	return nil
}

// num is a number as written: sign and magnitude, and its text for messages.
type num struct {
	neg  bool
	mag  uint64
	text string
	tok  token
}

// number reads an optional sign and a decimal or 0x-hex number.
func (p *parser) number() (num, error) {
	first := p.peek()
	var n num
	sign := ""
	if p.accept("-") {
		n.neg, sign = true, "-"
	} else if p.accept("+") {
		sign = "+"
	}
	t := p.next()
	if t.kind != tNum {
		return n, p.errorf(t, "expected a number, found %s", t)
	}
	mag, err := parseMagnitude(t.text)
	if err != nil {
		return n, p.errorf(t, "%v", err)
	}
	n.mag, n.tok = mag, first
	n.text = sign + t.text
	return n, nil
}

func parseMagnitude(s string) (uint64, error) {
	var v uint64
	var err error
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		v, err = strconv.ParseUint(s[2:], 16, 64)
	} else {
		v, err = strconv.ParseUint(s, 10, 64)
	}
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("number %q does not fit in 64 bits", s)
	}
	if err != nil {
		return 0, fmt.Errorf("malformed number %q", s)
	}
	return v, nil
}

// imm32 accepts -2^31..2^32-1 and keeps the low 32 bits, so 0xffffffff and
// -1 are the same immediate (as LLVM's assembler and the kernel's jump
// printing treat them).
func (n num) imm32() (int32, bool) {
	if n.neg {
		if n.mag > 1<<31 {
			return 0, false
		}
		return int32(-int64(n.mag)), true
	}
	if n.mag > math.MaxUint32 {
		return 0, false
	}
	return int32(uint32(n.mag)), true
}

func (n num) int64() (int64, bool) {
	if n.neg {
		if n.mag > 1<<63 {
			return 0, false
		}
		return int64(-n.mag), true // wraps to MinInt64 for 1<<63
	}
	if n.mag > math.MaxInt64 {
		return 0, false
	}
	return int64(n.mag), true
}

// imm64 accepts -2^63..2^64-1.
func (n num) imm64() (uint64, bool) {
	if n.neg {
		v, ok := n.int64()
		return uint64(v), ok
	}
	return n.mag, true
}

func (n num) off16() (int16, bool) {
	v, ok := n.int64()
	if !ok || v < math.MinInt16 || v > math.MaxInt16 {
		return 0, false
	}
	return int16(v), true
}

func (p *parser) imm32() (int32, error) {
	n, err := p.number()
	if err != nil {
		return 0, err
	}
	v, ok := n.imm32()
	if !ok {
		return 0, p.errorf(n.tok, "immediate %s does not fit in 32 bits", n.text)
	}
	return v, nil
}

// target reads a jump or call target into it: +0x3, -2, pc+3, pc-0x2, 5, or
// a label.
func (p *parser) target(it *item, fix fixup) error {
	t := p.peek()
	if t.kind == tIdent && !t.is("pc") {
		if !labelName(t.text) {
			return p.errorf(t, "expected a jump target, found %s", t)
		}
		p.next()
		it.fix, it.label, it.labelCol = fix, t.text, t.col
		return nil
	}
	if t.is("pc") {
		p.next()
		if s := p.peek(); !s.is("+") && !s.is("-") {
			return p.errorf(s, "expected \"+\" or \"-\" after \"pc\", found %s", s)
		}
	}
	n, err := p.number()
	if err != nil {
		return err
	}
	v, ok := n.int64()
	switch fix {
	case fixOff:
		if !ok || v < math.MinInt16 || v > math.MaxInt16 {
			return p.errorf(n.tok, "jump offset %s does not fit in 16 bits (gotol takes a 32-bit one)", n.text)
		}
		it.slots[0].Off = int16(v)
	case fixImm:
		if !ok || v < math.MinInt32 || v > math.MaxInt32 {
			return p.errorf(n.tok, "offset %s does not fit in 32 bits", n.text)
		}
		it.slots[0].Imm = int32(v)
	}
	return nil
}

func aluOpcode(wide bool, op isa.ALUOp, src isa.Source) isa.Opcode {
	c := isa.ClassALU
	if wide {
		c = isa.ClassALU64
	}
	return isa.Opcode(c) | isa.Opcode(op) | isa.Opcode(src)
}

func (p *parser) instruction() (item, error) {
	t := p.peek()
	switch {
	case t.is("exit"):
		p.next()
		return p.done(one(isa.Instruction{Op: isa.OpExit}))
	case t.is("goto") || t.is("ja"):
		p.next()
		it := one(isa.Instruction{Op: isa.OpJA})
		if err := p.target(&it, fixOff); err != nil {
			return item{}, err
		}
		return p.done(it)
	case t.is("gotol"):
		p.next()
		it := one(isa.Instruction{Op: isa.OpJA32})
		if err := p.target(&it, fixImm); err != nil {
			return item{}, err
		}
		return p.done(it)
	case t.is("may_goto"):
		// BPF_JMP|BPF_JCOND, src BPF_MAY_GOTO.
		p.next()
		it := one(isa.Instruction{Op: isa.OpMayGoto})
		if err := p.target(&it, fixOff); err != nil {
			return item{}, err
		}
		return p.done(it)
	case t.is("call"):
		p.next()
		return p.call()
	case t.is("callx"):
		p.next()
		r, err := p.wideReg()
		if err != nil {
			return item{}, err
		}
		return p.done(one(isa.Instruction{Op: isa.OpCallX, Dst: r}))
	case t.is("if"):
		p.next()
		return p.cond()
	case t.is("lock"):
		p.next()
		return p.lock()
	case t.is("ld_pseudo"):
		p.next()
		return p.ldPseudo()
	case t.is("*"):
		return p.store()
	case p.isReg(0):
		return p.assign()
	case t.kind == tEOF:
		return item{}, p.errorf(t, "expected an instruction")
	}
	return item{}, p.errorf(t, "unknown instruction %s", t)
}

var condOps = map[string]isa.JumpOp{
	"==": isa.JumpEq, "!=": isa.JumpNE, "&": isa.JumpSet,
	">": isa.JumpGT, ">=": isa.JumpGE, "<": isa.JumpLT, "<=": isa.JumpLE,
	"s>": isa.JumpSGT, "s>=": isa.JumpSGE, "s<": isa.JumpSLT, "s<=": isa.JumpSLE,
}

// cond parses "if r1 OP r2|imm goto target".
func (p *parser) cond() (item, error) {
	dst, wide, _, err := p.reg()
	if err != nil {
		return item{}, err
	}
	opTok := p.next()
	op, ok := condOps[opTok.text]
	if !ok || opTok.kind != tPunct {
		return item{}, p.errorf(opTok, "expected a comparison (== != > >= < <= & s> s>= s< s<=), found %s", opTok)
	}
	c := isa.ClassJMP
	if !wide {
		c = isa.ClassJMP32
	}
	ins := isa.Instruction{Op: isa.Opcode(c) | isa.Opcode(op), Dst: dst}
	if p.isReg(0) {
		src, srcWide, st, err := p.reg()
		if err != nil {
			return item{}, err
		}
		if err := p.sameWidth(wide, st, srcWide); err != nil {
			return item{}, err
		}
		ins.Op |= isa.Opcode(isa.SourceX)
		ins.Src = src
	} else {
		if ins.Imm, err = p.imm32(); err != nil {
			return item{}, err
		}
	}
	if err := p.expect("goto"); err != nil {
		return item{}, err
	}
	it := one(ins)
	if err := p.target(&it, fixOff); err != nil {
		return item{}, err
	}
	return p.done(it)
}

// call parses the operand of call: a helper id, "pc+3", "name#id",
// "kfunc#id[, off]" or a label.
func (p *parser) call() (item, error) {
	t := p.peek()
	if t.is("pc") {
		it := one(isa.Instruction{Op: isa.OpCall, Src: isa.PseudoCall})
		if err := p.target(&it, fixImm); err != nil {
			return item{}, err
		}
		return p.done(it)
	}
	if t.kind != tIdent {
		id, err := p.imm32()
		if err != nil {
			return item{}, err
		}
		return p.done(one(isa.Instruction{Op: isa.OpCall, Imm: id}))
	}
	// A name: "kernel-function" is the kernel's name for an unnamed kfunc.
	name := p.next().text
	for p.peek().is("-") && p.peekAt(1).kind == tIdent {
		p.next()
		name += "-" + p.next().text
	}
	if !p.accept("#") {
		if !labelName(name) {
			return item{}, p.errorf(t, "expected a helper id, a label or name#id, found %q", name)
		}
		it := one(isa.Instruction{Op: isa.OpCall, Src: isa.PseudoCall})
		it.fix, it.label, it.labelCol = fixImm, name, t.col
		return p.done(it)
	}
	id, err := p.imm32()
	if err != nil {
		return item{}, err
	}
	ins := isa.Instruction{Op: isa.OpCall, Imm: id}
	if name == "kfunc" || name == "kernel-function" {
		ins.Src = isa.PseudoKfuncCall
		if p.accept(",") {
			n, err := p.number()
			if err != nil {
				return item{}, err
			}
			off, ok := n.off16()
			if !ok {
				return item{}, p.errorf(n.tok, "kfunc offset %s does not fit in 16 bits", n.text)
			}
			ins.Off = off
		}
	}
	return p.done(one(ins))
}

// size reads the "u32" of "*(u32 *)" and reports whether it was signed.
func (p *parser) size() (isa.Size, bool, token, error) {
	t := p.next()
	var sz isa.Size
	switch strings.TrimLeft(t.text, "us") {
	case "8":
		sz = isa.SizeB
	case "16":
		sz = isa.SizeH
	case "32":
		sz = isa.SizeW
	case "64":
		sz = isa.SizeDW
	default:
		return 0, false, t, p.errorf(t, "expected a size u8, u16, u32 or u64, found %s", t)
	}
	if t.kind != tIdent || (t.text[0] != 'u' && t.text[0] != 's') {
		return 0, false, t, p.errorf(t, "expected a size u8, u16, u32 or u64, found %s", t)
	}
	return sz, t.text[0] == 's', t, nil
}

// cast reads "(u32 *)".
func (p *parser) cast() (isa.Size, bool, token, error) {
	if err := p.expect("("); err != nil {
		return 0, false, token{}, err
	}
	sz, signed, t, err := p.size()
	if err != nil {
		return 0, false, t, err
	}
	if err := p.expect("*"); err != nil {
		return 0, false, t, err
	}
	return sz, signed, t, p.expect(")")
}

// address reads "r1 + 0x4", "r1 - 8", "r1 +4" or "r1".
func (p *parser) address() (isa.Register, int16, error) {
	r, err := p.wideReg()
	if err != nil {
		return 0, 0, err
	}
	if t := p.peek(); !t.is("+") && !t.is("-") {
		return r, 0, nil
	}
	n, err := p.number()
	if err != nil {
		return 0, 0, err
	}
	off, ok := n.off16()
	if !ok {
		return 0, 0, p.errorf(n.tok, "offset %s does not fit in 16 bits", n.text)
	}
	return r, off, nil
}

// memory reads "(r1 + 0x4)".
func (p *parser) memory() (isa.Register, int16, error) {
	if err := p.expect("("); err != nil {
		return 0, 0, err
	}
	r, off, err := p.address()
	if err != nil {
		return 0, 0, err
	}
	return r, off, p.expect(")")
}

// store parses "*(u32 *)(r1 + 0x4) = r2|w2|imm".
func (p *parser) store() (item, error) {
	p.next() // *
	sz, signed, st, err := p.cast()
	if err != nil {
		return item{}, err
	}
	if signed {
		return item{}, p.errorf(st, "a store has no sign: write u%d", sz.Bytes()*8)
	}
	dst, off, err := p.memory()
	if err != nil {
		return item{}, err
	}
	if err := p.expect("="); err != nil {
		return item{}, err
	}
	ins := isa.Instruction{Dst: dst, Off: off}
	if p.isReg(0) {
		src, wide, t, err := p.reg()
		if err != nil {
			return item{}, err
		}
		if !wide && sz == isa.SizeDW {
			return item{}, p.errorf(t, "a 64-bit store needs an r register, found %q", t.text)
		}
		ins.Op = isa.Opcode(isa.ClassSTX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(sz)
		ins.Src = src
	} else {
		ins.Op = isa.Opcode(isa.ClassST) | isa.Opcode(isa.ModeMEM) | isa.Opcode(sz)
		if ins.Imm, err = p.imm32(); err != nil {
			return item{}, err
		}
	}
	return p.done(one(ins))
}

var lockOps = map[string]isa.AtomicOp{"+=": isa.AtomicAdd, "|=": isa.AtomicOr, "&=": isa.AtomicAnd, "^=": isa.AtomicXor}

func atomicOpcode(sz isa.Size) isa.Opcode {
	return isa.Opcode(isa.ClassSTX) | isa.Opcode(isa.ModeATOMIC) | isa.Opcode(sz)
}

// atomicSize checks the width of an atomic operation and of its value
// register.
func (p *parser) atomicSize(sz isa.Size, st token, wide bool, rt token) error {
	if sz != isa.SizeW && sz != isa.SizeDW {
		return p.errorf(st, "atomic operations are 32 or 64 bits wide, not %d", sz.Bytes()*8)
	}
	if !wide && sz == isa.SizeDW {
		return p.errorf(rt, "a 64-bit atomic operation needs an r register, found %q", rt.text)
	}
	return nil
}

// lock parses "lock *(u64 *)(r1 + 0x0) += r2".
func (p *parser) lock() (item, error) {
	if err := p.expect("*"); err != nil {
		return item{}, err
	}
	sz, signed, st, err := p.cast()
	if err != nil {
		return item{}, err
	}
	if signed {
		return item{}, p.errorf(st, "an atomic operation has no sign: write u%d", sz.Bytes()*8)
	}
	dst, off, err := p.memory()
	if err != nil {
		return item{}, err
	}
	opTok := p.next()
	op, ok := lockOps[opTok.text]
	if !ok {
		return item{}, p.errorf(opTok, "expected an atomic operation (+= |= &= ^=), found %s", opTok)
	}
	src, wide, rt, err := p.reg()
	if err != nil {
		return item{}, err
	}
	if err := p.atomicSize(sz, st, wide, rt); err != nil {
		return item{}, err
	}
	return p.done(one(isa.Instruction{Op: atomicOpcode(sz), Dst: dst, Src: src, Off: off, Imm: int32(op)}))
}

// ldPseudo parses llvm-objdump's "ld_pseudo r1, 0x1, 0x5": a lddw with a
// pseudo source. The second slot's imm is not printed; it is taken as 0.
func (p *parser) ldPseudo() (item, error) {
	dst, err := p.wideReg()
	if err != nil {
		return item{}, err
	}
	if err := p.expect(","); err != nil {
		return item{}, err
	}
	n, err := p.number()
	if err != nil {
		return item{}, err
	}
	if n.neg || n.mag > 15 {
		return item{}, p.errorf(n.tok, "pseudo source %s does not fit in 4 bits", n.text)
	}
	if err := p.expect(","); err != nil {
		return item{}, err
	}
	imm, err := p.imm32()
	if err != nil {
		return item{}, err
	}
	return p.done(two(isa.LoadImm64(dst, isa.Register(n.mag), uint64(uint32(imm)))))
}

var aluOps = map[string]struct {
	op     isa.ALUOp
	signed bool
}{
	"+=": {isa.ALUAdd, false}, "-=": {isa.ALUSub, false}, "*=": {isa.ALUMul, false},
	"/=": {isa.ALUDiv, false}, "s/=": {isa.ALUDiv, true}, "%=": {isa.ALUMod, false},
	"s%=": {isa.ALUMod, true}, "|=": {isa.ALUOr, false}, "&=": {isa.ALUAnd, false},
	"^=": {isa.ALUXor, false}, "<<=": {isa.ALULsh, false}, ">>=": {isa.ALURsh, false},
	"s>>=": {isa.ALUArsh, false},
}

// assign parses the forms that start with a register: arithmetic, moves,
// loads, byte swaps, fetching atomics and 64-bit immediate loads.
func (p *parser) assign() (item, error) {
	dst, wide, dt, err := p.reg()
	if err != nil {
		return item{}, err
	}
	opTok := p.next()
	if a, ok := aluOps[opTok.text]; ok && opTok.kind == tPunct {
		ins := isa.Instruction{Dst: dst}
		if a.signed {
			ins.Off = 1
		}
		if p.isReg(0) {
			src, srcWide, st, err := p.reg()
			if err != nil {
				return item{}, err
			}
			if err := p.sameWidth(wide, st, srcWide); err != nil {
				return item{}, err
			}
			ins.Op, ins.Src = aluOpcode(wide, a.op, isa.SourceX), src
		} else {
			ins.Op = aluOpcode(wide, a.op, isa.SourceK)
			if ins.Imm, err = p.imm32(); err != nil {
				return item{}, err
			}
		}
		return p.done(one(ins))
	}
	if !opTok.is("=") {
		return item{}, p.errorf(opTok, "expected \"=\" or an arithmetic assignment after %q, found %s", dt.text, opTok)
	}
	t := p.peek()
	switch {
	case t.is("-") && p.isReg(1):
		p.next()
		src, srcWide, st, err := p.reg()
		if err != nil {
			return item{}, err
		}
		if src != dst || srcWide != wide {
			return item{}, p.errorf(st, "negation is in place: write %s = -%s", dt.text, dt.text)
		}
		return p.done(one(isa.Instruction{Op: aluOpcode(wide, isa.ALUNeg, isa.SourceK), Dst: dst}))
	case t.is("-") || t.is("+") || t.kind == tNum:
		return p.constant(dst, wide, dt)
	case p.isReg(0):
		src, srcWide, st, err := p.reg()
		if err != nil {
			return item{}, err
		}
		if err := p.sameWidth(wide, st, srcWide); err != nil {
			return item{}, err
		}
		return p.done(one(isa.Instruction{Op: aluOpcode(wide, isa.ALUMov, isa.SourceX), Dst: dst, Src: src}))
	case t.is("("):
		// movsx: "r1 = (s8)r2"
		p.next()
		sz, signed, szt, err := p.size()
		if err != nil {
			return item{}, err
		}
		if !signed || sz == isa.SizeDW || (!wide && sz == isa.SizeW) {
			return item{}, p.errorf(szt, "sign-extending move from %q does not exist (s8, s16, and s32 for r registers)", szt.text)
		}
		if err := p.expect(")"); err != nil {
			return item{}, err
		}
		src, srcWide, st, err := p.reg()
		if err != nil {
			return item{}, err
		}
		if err := p.sameWidth(wide, st, srcWide); err != nil {
			return item{}, err
		}
		return p.done(one(isa.Instruction{Op: aluOpcode(wide, isa.ALUMov, isa.SourceX), Dst: dst, Src: src, Off: int16(sz.Bytes() * 8)}))
	case t.is("*"):
		p.next()
		return p.load(dst, wide, dt)
	case t.kind == tIdent:
		return p.call0(dst, wide, dt)
	case t.is("&"):
		return item{}, p.errorf(t, "per-CPU address moves are kernel-internal and have no instruction encoding")
	}
	return item{}, p.errorf(t, "cannot parse %s after %q", t, dt.text+" =")
}

// constant parses "r1 = imm" (mov) and "r1 = imm ll" (lddw). The kernel
// prints lddw without "ll"; its "(18)" prefix selects lddw.
func (p *parser) constant(dst isa.Register, wide bool, dt token) (item, error) {
	n, err := p.number()
	if err != nil {
		return item{}, err
	}
	if p.accept("ll") || p.hint == int(isa.OpLoadImm64) {
		if !wide {
			return item{}, p.errorf(dt, "lddw loads 64 bits: write r%d", dst)
		}
		v, ok := n.imm64()
		if !ok {
			return item{}, p.errorf(n.tok, "immediate %s does not fit in 64 bits", n.text)
		}
		return p.done(two(isa.LoadImm64(dst, 0, v)))
	}
	v, ok := n.imm32()
	if !ok {
		return item{}, p.errorf(n.tok, "immediate %s does not fit in 32 bits (for a 64-bit constant write \"r%d = %s ll\")", n.text, dst, n.text)
	}
	return p.done(one(isa.Instruction{Op: aluOpcode(wide, isa.ALUMov, isa.SourceK), Dst: dst, Imm: v}))
}

// load parses the rest of "r1 = *(u32 *)(r2 + 0x4)" and "r0 = *(u8 *)skb[...]".
func (p *parser) load(dst isa.Register, wide bool, dt token) (item, error) {
	sz, signed, st, err := p.cast()
	if err != nil {
		return item{}, err
	}
	if p.peek().is("skb") {
		return p.packetLoad(dst, dt, sz, signed, st)
	}
	src, off, err := p.memory()
	if err != nil {
		return item{}, err
	}
	mode := isa.ModeMEM
	if signed {
		if sz == isa.SizeDW {
			return item{}, p.errorf(st, "sign-extending load of 64 bits does not exist: write u64")
		}
		mode = isa.ModeMEMSX
	}
	if !wide && sz == isa.SizeDW {
		return item{}, p.errorf(dt, "a 64-bit load needs an r register, found %q", dt.text)
	}
	return p.done(one(isa.Instruction{Op: isa.Opcode(isa.ClassLDX) | isa.Opcode(mode) | isa.Opcode(sz), Dst: dst, Src: src, Off: off}))
}

// packetLoad parses "skb[0xc]", "skb[r1]" and "skb[r1 + 0x4]", the legacy
// BPF_ABS and BPF_IND loads; they always load into r0.
func (p *parser) packetLoad(dst isa.Register, dt token, sz isa.Size, signed bool, st token) (item, error) {
	p.next() // skb
	if dst != isa.R0 || dt.text[0] != 'r' {
		return item{}, p.errorf(dt, "legacy packet loads always load into r0")
	}
	if signed || sz == isa.SizeDW {
		return item{}, p.errorf(st, "legacy packet loads are u8, u16 or u32")
	}
	if err := p.expect("["); err != nil {
		return item{}, err
	}
	ins := isa.Instruction{Op: isa.Opcode(isa.ClassLD) | isa.Opcode(isa.ModeABS) | isa.Opcode(sz)}
	var err error
	if p.isReg(0) {
		ins.Op = isa.Opcode(isa.ClassLD) | isa.Opcode(isa.ModeIND) | isa.Opcode(sz)
		if ins.Src, err = p.wideReg(); err != nil {
			return item{}, err
		}
		// "skb[r1 + 0x4]", "skb[r1 - 0x4]", and the kernel's "skb[r1 + -4]".
		if t := p.peek(); t.is("+") || t.is("-") {
			if t.is("+") && (p.peekAt(1).is("-") || p.peekAt(1).is("+")) {
				p.next()
			}
			if ins.Imm, err = p.imm32(); err != nil {
				return item{}, err
			}
		}
	} else if ins.Imm, err = p.imm32(); err != nil {
		return item{}, err
	}
	if err := p.expect("]"); err != nil {
		return item{}, err
	}
	return p.done(one(ins))
}

var endianRe = regexp.MustCompile(`^(le|be|bswap)(16|32|64)$`)

// call0 parses the "r1 = name..." forms: byte swaps, fetching atomics,
// lddw with a pseudo source, addr_space_cast.
func (p *parser) call0(dst isa.Register, wide bool, dt token) (item, error) {
	t := p.next()
	name := t.text
	if m := endianRe.FindStringSubmatch(name); m != nil {
		r, _, rt, err := p.reg()
		if err != nil {
			return item{}, err
		}
		if r != dst {
			return item{}, p.errorf(rt, "a byte swap is in place: write %s = %s %s", dt.text, name, dt.text)
		}
		bits, _ := strconv.Atoi(m[2])
		op := map[string]isa.Opcode{
			"le":    aluOpcode(false, isa.ALUEnd, isa.SourceLE),
			"be":    aluOpcode(false, isa.ALUEnd, isa.SourceBE),
			"bswap": aluOpcode(true, isa.ALUEnd, isa.SourceLE),
		}[m[1]]
		return p.done(one(isa.Instruction{Op: op, Dst: dst, Imm: int32(bits)}))
	}
	switch {
	case strings.HasPrefix(name, "atomic_fetch_") || strings.HasPrefix(name, "atomic64_fetch_"):
		var op isa.AtomicOp
		switch name[strings.LastIndexByte(name, '_')+1:] {
		case "add":
			op = isa.AtomicAdd
		case "or":
			op = isa.AtomicOr
		case "and":
			op = isa.AtomicAnd
		case "xor":
			op = isa.AtomicXor
		default:
			return item{}, p.errorf(t, "unknown atomic operation %q (add, or, and, xor)", name)
		}
		return p.fetchAtomic(dst, wide, dt, t, op|isa.AtomicFetch)
	case name == "xchg_64" || name == "xchg32_32" || name == "atomic_xchg" || name == "atomic64_xchg":
		return p.fetchAtomic(dst, wide, dt, t, isa.AtomicXchg)
	case name == "cmpxchg_64" || name == "cmpxchg32_32" || name == "atomic_cmpxchg" || name == "atomic64_cmpxchg":
		return p.fetchAtomic(dst, wide, dt, t, isa.AtomicCmpXchg)
	case name == "addr_space_cast":
		return p.addrSpaceCast(dst, wide, dt)
	case name == "map" && p.peek().is("["):
		return item{}, p.errorf(t, "map[id:N] names a loaded kernel map, which has no encoding in a program; write map_fd(N)")
	}
	src, ok := map[string]isa.Register{
		"map_fd": isa.PseudoMapFD, "map_value": isa.PseudoMapValue, "btf_id": isa.PseudoBTFID,
		"func": isa.PseudoFunc, "map_idx": isa.PseudoMapIdx, "map_idx_value": isa.PseudoMapIdxValue,
	}[name]
	if !ok {
		return item{}, p.errorf(t, "unknown operation %q", name)
	}
	if !wide {
		return item{}, p.errorf(dt, "lddw loads 64 bits: write r%d", dst)
	}
	it := two(isa.LoadImm64(dst, src, 0))
	if err := p.expect("("); err != nil {
		return item{}, err
	}
	var err error
	if src == isa.PseudoFunc {
		err = p.target(&it, fixImm)
	} else {
		it.slots[0].Imm, err = p.imm32()
	}
	if err != nil {
		return item{}, err
	}
	switch src {
	case isa.PseudoMapValue, isa.PseudoBTFID, isa.PseudoMapIdxValue:
		if err := p.expect(","); err != nil {
			return item{}, err
		}
		if it.slots[1].Imm, err = p.imm32(); err != nil {
			return item{}, err
		}
	}
	if err := p.expect(")"); err != nil {
		return item{}, err
	}
	p.accept("ll")
	return p.done(it)
}

// fetchAtomic parses the argument list of the fetching atomics, in LLVM's
// spelling ("atomic_fetch_add((u64 *)(r1 + 0x0), r2)", "xchg_64(r1 + 0x0,
// r2)", "cmpxchg32_32(r1 + 0x0, w0, w2)") and the kernel's
// ("atomic64_fetch_add((u64 *)(r1 +0), r2)", "atomic_cmpxchg((u32 *)(r1
// +0), r0, r2)").
func (p *parser) fetchAtomic(dst isa.Register, wide bool, dt, nt token, op isa.AtomicOp) (item, error) {
	if err := p.expect("("); err != nil {
		return item{}, err
	}
	var sz isa.Size
	var st token
	var mem isa.Register
	var off int16
	var err error
	if p.peek().is("(") {
		// (u64 *)(r1 + 0x0)
		var signed bool
		if sz, signed, st, err = p.cast(); err != nil {
			return item{}, err
		}
		if signed {
			return item{}, p.errorf(st, "an atomic operation has no sign: write u%d", sz.Bytes()*8)
		}
		if mem, off, err = p.memory(); err != nil {
			return item{}, err
		}
		if strings.Contains(nt.text, "64") && sz != isa.SizeDW {
			return item{}, p.errorf(st, "%s operates on u64", nt.text)
		}
	} else {
		// r1 + 0x0, size from the name
		st = nt
		switch {
		case strings.HasSuffix(nt.text, "_64"):
			sz = isa.SizeDW
		case strings.HasSuffix(nt.text, "32_32"):
			sz = isa.SizeW
		default:
			return item{}, p.errorf(nt, "%s takes a typed address: %s((u64 *)(r1 + 0x0), ...)", nt.text, nt.text)
		}
		if mem, off, err = p.address(); err != nil {
			return item{}, err
		}
	}
	if err := p.expect(","); err != nil {
		return item{}, err
	}
	if op == isa.AtomicCmpXchg {
		// The comparand is always r0, and so is the result.
		r, _, rt, err := p.reg()
		if err != nil {
			return item{}, err
		}
		if r != isa.R0 || dst != isa.R0 {
			return item{}, p.errorf(rt, "cmpxchg compares with and loads into r0: write r0 = %s(..., r0, src)", nt.text)
		}
		if err := p.expect(","); err != nil {
			return item{}, err
		}
	}
	src, srcWide, rt, err := p.reg()
	if err != nil {
		return item{}, err
	}
	if err := p.atomicSize(sz, st, srcWide && wide, rt); err != nil {
		return item{}, err
	}
	if op != isa.AtomicCmpXchg && src != dst {
		return item{}, p.errorf(rt, "%s loads the old value into its operand: write %s = %s(..., %s)", nt.text, rt.text, nt.text, rt.text)
	}
	if err := p.expect(")"); err != nil {
		return item{}, err
	}
	return p.done(one(isa.Instruction{Op: atomicOpcode(sz), Dst: mem, Src: src, Off: off, Imm: int32(op)}))
}

// addrSpaceCast parses "r1 = addr_space_cast(r2, 0x0, 0x1)", the kernel's
// arena cast (mov64 with off 1), which isa.ValidateProgram rejects.
func (p *parser) addrSpaceCast(dst isa.Register, wide bool, dt token) (item, error) {
	if !wide {
		return item{}, p.errorf(dt, "addr_space_cast is a 64-bit move: write r%d", dst)
	}
	if err := p.expect("("); err != nil {
		return item{}, err
	}
	src, err := p.wideReg()
	if err != nil {
		return item{}, err
	}
	var as [2]uint64
	for i := range as {
		if err := p.expect(","); err != nil {
			return item{}, err
		}
		n, err := p.number()
		if err != nil {
			return item{}, err
		}
		if n.neg || n.mag > math.MaxUint16 {
			return item{}, p.errorf(n.tok, "address space %s does not fit in 16 bits", n.text)
		}
		as[i] = n.mag
	}
	if err := p.expect(")"); err != nil {
		return item{}, err
	}
	return p.done(one(isa.Instruction{Op: aluOpcode(true, isa.ALUMov, isa.SourceX), Dst: dst, Src: src, Off: 1, Imm: int32(uint32(as[0]<<16 | as[1]))}))
}
