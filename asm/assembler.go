package asm

import (
	"fmt"
	"math"
	"strings"

	"github.com/waggle-bpf/waggle/isa"
)

// fixup says which field of an instruction receives the distance to its
// target label.
type fixup uint8

const (
	fixNone fixup = iota
	fixOff        // goto and conditional jumps: the 16-bit offset
	fixImm        // gotol, bpf-to-bpf call, lddw of a function: the 32-bit imm
)

// item is one assembled instruction (one or two slots) before its label is
// resolved.
type item struct {
	line  int
	slots [2]isa.Instruction
	n     int // number of slots: 2 for lddw, 1 otherwise

	fix      fixup
	label    string // target label when fix != fixNone
	labelCol int

	raw     []isa.Instruction // the instruction from an objdump listing's bytes column
	rawOnly bool              // the text was "<unknown>": raw is the instruction
	text    string            // the instruction text, for messages
}

func one(ins isa.Instruction) item { return item{slots: [2]isa.Instruction{ins}, n: 1} }

func two(p [2]isa.Instruction) item { return item{slots: p, n: 2} }

type labelDef struct{ slot, line int }

// assembler collects items and labels for both dialects and resolves the
// labels at the end. Slot numbers count lddw as two, as the kernel does.
type assembler struct {
	items  []item
	slot   int
	labels map[string]labelDef
}

func newAssembler() *assembler { return &assembler{labels: make(map[string]labelDef)} }

func (a *assembler) define(name string, line, col int) error {
	if prev, ok := a.labels[name]; ok {
		return &Error{Line: line, Column: col, Msg: fmt.Sprintf("label %q already defined at line %d", name, prev.line)}
	}
	a.labels[name] = labelDef{slot: a.slot, line: line}
	return nil
}

func (a *assembler) add(it item) {
	a.items = append(a.items, it)
	a.slot += it.n
}

// finish resolves labels, checks objdump byte columns against the text and
// returns the program.
func (a *assembler) finish() ([]isa.Instruction, error) {
	prog := make([]isa.Instruction, 0, a.slot)
	for _, it := range a.items {
		pc := len(prog)
		if it.fix != fixNone && it.label != "" {
			def, ok := a.labels[it.label]
			if !ok {
				return nil, &Error{Line: it.line, Column: it.labelCol, Msg: fmt.Sprintf("undefined label %q", it.label)}
			}
			rel := int64(def.slot) - int64(pc) - 1
			switch it.fix {
			case fixOff:
				if rel < math.MinInt16 || rel > math.MaxInt16 {
					return nil, &Error{Line: it.line, Column: it.labelCol, Msg: fmt.Sprintf("label %q is %d slots away, beyond the 16-bit jump offset (use gotol)", it.label, rel)}
				}
				it.slots[0].Off = int16(rel)
			case fixImm:
				it.slots[0].Imm = int32(rel) // a program never has 2^31 slots
			}
		}
		ins := it.slots[:it.n]
		if it.raw != nil {
			switch {
			case it.rawOnly, equal(ins, it.raw), lossy(ins, it.raw):
				ins = it.raw
			default:
				var next isa.Instruction
				if len(it.raw) > 1 {
					next = it.raw[1]
				}
				return nil, &Error{Line: it.line, Msg: fmt.Sprintf("text %q does not match the bytes beside it, which encode %q", it.text, isa.Format(it.raw[0], next))}
			}
		}
		prog = append(prog, ins...)
	}
	return prog, nil
}

func equal(a, b []isa.Instruction) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// lossy reports whether text (what the text of a line encodes) differs from
// raw (the bytes llvm-objdump printed beside it) only in a field LLVM's
// text does not show:
//
//   - "call 0x3" is also how LLVM prints a bpf-to-bpf call (src 1) and a
//     kfunc call (src 2, with off);
//   - "ld_pseudo r1, 0x2, 0x5" drops the second slot's imm;
//   - "r0 = *(u8 *)skb[r1]" drops the imm of a legacy indirect load;
//   - without -mattr=+alu32, a 32-bit fetch-add prints as the plain
//     "lock *(u32 *)(r1 + 0x0) += r2".
func lossy(text, raw []isa.Instruction) bool {
	if len(text) != len(raw) {
		return false
	}
	t, r := text[0], raw[0]
	switch {
	case t.Op == isa.OpCall && r.Op == isa.OpCall && t.Src == 0 && t.Off == 0 && t.Dst == r.Dst && t.Imm == r.Imm:
		return r.Src == isa.PseudoCall || r.Src == isa.PseudoKfuncCall
	case t.Op == isa.OpLoadImm64 && len(text) == 2:
		return t == r && text[1].Imm == 0 && t.Src != 0 && text[1] == (isa.Instruction{Imm: text[1].Imm}) && raw[1] == (isa.Instruction{Imm: raw[1].Imm})
	case t.Op.Class() == isa.ClassLD && t.Op.Mode() == isa.ModeIND:
		r.Imm = 0
		return t.Imm == 0 && t == r
	case t.Op == isa.Opcode(isa.ClassSTX)|isa.Opcode(isa.ModeATOMIC)|isa.Opcode(isa.SizeW) && t.Imm == int32(isa.AtomicAdd):
		return r.Imm == int32(isa.AtomicAdd|isa.AtomicFetch) && t.Op == r.Op && t.Dst == r.Dst && t.Src == r.Src && t.Off == r.Off
	}
	return false
}

// labelName reports whether s can name a label: an identifier that is not
// a register and not "pc" (which starts the kernel's "pc+3" targets).
func labelName(s string) bool {
	if s == "" || !isIdentStart(s[0]) || s == "pc" {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	_, _, kind := register(s)
	return kind == notRegister
}

type regKind uint8

const (
	notRegister regKind = iota
	validRegister
	badRegister // looks like a register (r11, w99) but is not one
)

// register parses r0-r10 (wide) and w0-w10 (32-bit).
func register(s string) (r isa.Register, wide bool, kind regKind) {
	if len(s) < 2 || (s[0] != 'r' && s[0] != 'w') {
		return 0, false, notRegister
	}
	digits := s[1:]
	for i := 0; i < len(digits); i++ {
		if !isDigit(digits[i]) {
			return 0, false, notRegister
		}
	}
	if len(digits) > 1 && digits[0] == '0' || len(digits) > 2 {
		return 0, false, badRegister
	}
	n := 0
	for i := 0; i < len(digits); i++ {
		n = n*10 + int(digits[i]-'0')
	}
	if n > int(isa.MaxRegister) {
		return 0, false, badRegister
	}
	return isa.Register(n), s[0] == 'r', validRegister
}

// cutComment removes a comment: ";" or "//" anywhere, "#" at the start of
// the line or after white space (so "call bpf_map_lookup_elem#1" keeps its
// "#1").
func cutComment(s string) string {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, "//"); i >= 0 {
		s = s[:i]
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			return s[:i]
		}
	}
	return s
}
