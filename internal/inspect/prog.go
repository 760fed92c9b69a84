package inspect

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/arch/x86/x86asm"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/isa"
)

// Ref names a kernel object: by id, or by the path of its pin in a bpffs.
type Ref struct {
	ID   uint32
	Path string
}

// ParseRef reads "ID" (decimal) or "PIN" (a path); bpftool's "id N" and
// "pinned PATH" forms are accepted as two words.
func ParseRef(args ...string) (Ref, error) {
	switch {
	case len(args) == 2 && args[0] == "id":
		args = args[1:]
	case len(args) == 2 && args[0] == "pinned":
		return Ref{Path: args[1]}, nil
	case len(args) != 1:
		return Ref{}, fmt.Errorf("want an id or a pinned path, got %q", strings.Join(args, " "))
	}
	s := args[0]
	if s == "" {
		return Ref{}, fmt.Errorf("empty id or path")
	}
	if s[0] >= '0' && s[0] <= '9' {
		id, err := strconv.ParseUint(s, 10, 32)
		if err != nil || id == 0 {
			return Ref{}, fmt.Errorf("%q is not an id (a number from 1 to %d) or a path", s, uint32(1<<32-1))
		}
		return Ref{ID: uint32(id)}, nil
	}
	return Ref{Path: s}, nil
}

func (r Ref) String() string {
	if r.Path != "" {
		return r.Path
	}
	return "id " + strconv.FormatUint(uint64(r.ID), 10)
}

// Program is what `bpftool prog show` says about a program.
type Program struct {
	ID              uint32   `json:"id"`
	Type            string   `json:"type"`
	Name            string   `json:"name,omitempty"`
	Tag             string   `json:"tag"`
	GPLCompatible   bool     `json:"gpl_compatible"`
	RunTimeNs       uint64   `json:"run_time_ns,omitempty"`
	RunCnt          uint64   `json:"run_cnt,omitempty"`
	RecursionMisses uint64   `json:"recursion_misses,omitempty"`
	LoadedAt        int64    `json:"loaded_at"` // seconds since the epoch
	UID             uint32   `json:"uid"`
	BytesXlated     uint32   `json:"bytes_xlated"`
	Jited           bool     `json:"jited"`
	BytesJited      uint32   `json:"bytes_jited"`
	BytesMemlock    uint64   `json:"bytes_memlock"`
	MapIDs          []uint32 `json:"map_ids,omitempty"`
	BTFID           uint32   `json:"btf_id,omitempty"`
	VerifiedInsns   uint32   `json:"verified_insns,omitempty"`
}

// SourceLine is a line of source from a program's BTF line info.
type SourceLine struct {
	File   string
	Line   string
	Number uint32
	Column uint32
}

// XlatedInsn is one translated instruction as `bpftool prog dump xlated
// -j` shows it, with the slot it starts at (pc) and, for a map reference,
// the map's name.
type XlatedInsn struct {
	Proto   string `json:"proto,omitempty"`
	Src     string `json:"src,omitempty"`
	File    string `json:"file,omitempty"`
	LineNum uint32 `json:"line_num,omitempty"`
	LineCol uint32 `json:"line_col,omitempty"`
	PC      int    `json:"pc"`
	Disasm  string `json:"disasm"`
	Map     string `json:"map,omitempty"`
	// Opcodes are the instruction's bytes (both slots of a lddw).
	Opcodes string `json:"opcodes"`
	// HasLine is whether the instruction starts a source line (Src may
	// be empty on a line of its own).
	HasLine bool `json:"-"`
}

// Annotations are what makes translated instructions readable: source
// lines and functions by slot, map names by id, and kernel symbols by
// address.
type Annotations struct {
	Lines map[int]SourceLine
	Funcs map[int]*btf.Func
	// MapName returns a map's name by id ("" if unknown).
	MapName func(id uint32) string
	// Symbol returns the kernel symbol at an address ("" if none); CallBase
	// is the address of __bpf_call_base, which helper calls are relative to
	// (0 if unknown).
	Symbol   func(addr uint64) string
	CallBase uint64
}

// FormatXlated formats translated instructions in waggle's syntax (package
// isa's, as `waggle disasm` prints), each prefixed with its opcode as
// bpftool does ("(b7) r0 = 0x0"). The kernel's dump conventions are
// undone: a lddw of a map prints the map's id (and name), a helper call
// the kernel function it resolved to, a bpf-to-bpf call its relative
// target.
func FormatXlated(insns []isa.Instruction, a Annotations) []XlatedInsn {
	out := make([]XlatedInsn, 0, len(insns))
	for i := 0; i < len(insns); i++ {
		ins := insns[i]
		var next isa.Instruction
		if ins.IsLoadImm64() && i+1 < len(insns) {
			next = insns[i+1]
		}
		x := XlatedInsn{PC: i}
		if fn := a.Funcs[i]; fn != nil {
			x.Proto = FuncPrototype(fn)
		}
		if l, ok := a.Lines[i]; ok {
			x.Src, x.File, x.LineNum, x.LineCol, x.HasLine = l.Line, l.File, l.Number, l.Column, true
		}
		text := isa.Format(ins, next)
		switch {
		case ins.IsLoadImm64() && (ins.Src == isa.PseudoMapFD || ins.Src == isa.PseudoMapValue):
			id := uint32(ins.Imm)
			if a.MapName != nil {
				x.Map = a.MapName(id)
			}
			text = fmt.Sprintf("%s = map[id:%d]", ins.Dst, id)
			if ins.Src == isa.PseudoMapValue {
				text += fmt.Sprintf("[0]+%d", next.Imm)
			}
			text += " ll"
			if x.Map != "" {
				text += " ; " + x.Map
			}
		case ins.Op == isa.Opcode(isa.ClassALU64)|isa.Opcode(isa.ALUMov)|isa.Opcode(isa.SourceX) && ins.Off == -1:
			// BPF_MOV64_PERCPU_REG (off BPF_ADDR_PERCPU), which the verifier
			// inserts for per-CPU map lookups, printed as the kernel's
			// disassembler does.
			text = fmt.Sprintf("%s = &(void __percpu *)(%s)", ins.Dst, ins.Src)
		case ins.Op == isa.OpCall && ins.Src == isa.PseudoCall:
			// The kernel puts the subprogram's index in imm and the relative
			// target in off (jit_subprogs).
			text = fmt.Sprintf("call pc%+d", ins.Off)
		case ins.Op == isa.OpCall:
			text = "call " + helperText(ins, a)
		}
		x.Disasm = fmt.Sprintf("(%02x) %s", uint8(ins.Op), text)
		x.Opcodes = spacedHex(isa.Encode(insns[i:min(i+ins.Width(), len(insns))]))
		out = append(out, x)
		if ins.IsLoadImm64() {
			i++
		}
	}
	return out
}

// helperText names a helper or kfunc call of translated code as bpftool
// does ("bpf_map_lookup_elem#123456"): the kernel symbol at
// __bpf_call_base+imm, else the helper by id (a tail call the kernel
// turned back into call 12), else the raw offset.
func helperText(ins isa.Instruction, a Annotations) string {
	if a.CallBase != 0 && a.Symbol != nil {
		if s := a.Symbol(uint64(int64(a.CallBase) + int64(ins.Imm))); s != "" {
			return s + "#" + strconv.Itoa(int(ins.Imm))
		}
	}
	if n := helpers.Name(ins.Imm); n != "" && ins.Src == 0 {
		return "bpf_" + n + "#" + strconv.Itoa(int(ins.Imm))
	}
	return "#" + strconv.Itoa(int(ins.Imm))
}

// JitedFunc is one function of a program's machine code.
type JitedFunc struct {
	Name  string `json:"name"`
	Proto string `json:"proto,omitempty"`
	Addr  uint64 `json:"addr,omitempty"`
	// Symbol is the function's kernel symbol (bpf_prog_<tag>_<name>).
	Symbol string      `json:"symbol,omitempty"`
	Insns  []JitedInsn `json:"insns"`
}

// JitedInsn is one machine instruction.
type JitedInsn struct {
	Src     string `json:"src,omitempty"`
	File    string `json:"file,omitempty"`
	LineNum uint32 `json:"line_num,omitempty"`
	LineCol uint32 `json:"line_col,omitempty"`
	Offset  int    `json:"pc"`
	Bytes   string `json:"opcodes"`
	Disasm  string `json:"operation"`
	HasLine bool   `json:"-"`
}

// JitedInput is a program's machine code and what is known about it.
type JitedInput struct {
	Code []byte
	// FuncLens splits Code into the program's functions (the main program
	// first); nil for one function.
	FuncLens []uint32
	// Addrs are the functions' kernel addresses (JitedKsymAddrs), used as
	// each function's pc; nil or short when unknown.
	Addrs []uint64
	// Names and Protos name the functions (from BTF func info); missing
	// ones are named by index.
	Names, Protos []string
	// Lines are source lines by kernel address (JitedLineInfos paired with
	// the line info).
	Lines map[uint64]SourceLine
	// Symbol resolves call targets to kernel symbols.
	Symbol func(addr uint64) string
}

// maxJitedFuncs bounds the functions a program's info may claim.
const maxJitedFuncs = 1 << 16

// DisasmJited disassembles x86-64 machine code in AT&T syntax, as
// `bpftool prog dump jited` (through libbfd) does, a function at a time.
// Code x86asm cannot decode prints as (bad) bytes and decoding resumes at
// the next byte, so the whole buffer is always covered.
func DisasmJited(in JitedInput) ([]JitedFunc, error) {
	lens := in.FuncLens
	if len(lens) == 0 {
		lens = []uint32{uint32(len(in.Code))}
	}
	if len(lens) > maxJitedFuncs {
		return nil, fmt.Errorf("jited code: %d functions", len(lens))
	}
	var total uint64
	for _, l := range lens {
		total += uint64(l)
	}
	if total != uint64(len(in.Code)) {
		return nil, fmt.Errorf("jited code: the functions' lengths add up to %d bytes, the code has %d", total, len(in.Code))
	}
	var out []JitedFunc
	off := 0
	for i, l := range lens {
		code := in.Code[off : off+int(l)]
		off += int(l)
		f := JitedFunc{Name: fmt.Sprintf("func#%d", i)}
		if i < len(in.Names) && in.Names[i] != "" {
			f.Name = in.Names[i]
		}
		if i < len(in.Protos) {
			f.Proto = in.Protos[i]
		}
		if i < len(in.Addrs) {
			f.Addr = in.Addrs[i]
			if in.Symbol != nil {
				f.Symbol = in.Symbol(f.Addr) // bpf_prog_<tag>_<name>
			}
		}
		f.Insns = disasmX86(code, f.Addr, in.Lines, in.Symbol)
		out = append(out, f)
	}
	return out, nil
}

func disasmX86(code []byte, base uint64, lines map[uint64]SourceLine, symbol func(uint64) string) []JitedInsn {
	// Branch targets print as offsets in the function (pc counts from 0,
	// as bpftool's listing does); those that land on a kernel symbol (the
	// helpers and kfuncs the code calls) print as its name.
	var symname func(uint64) (string, uint64)
	if symbol != nil && base != 0 {
		symname = func(off uint64) (string, uint64) {
			if s := symbol(base + off); s != "" {
				return s, off
			}
			return "", 0
		}
	}
	var out []JitedInsn
	for pc := 0; pc < len(code); {
		inst, err := x86asm.Decode(code[pc:], 64)
		n := inst.Len
		text := ""
		if err != nil || n == 0 {
			n, text = 1, "(bad)"
		} else {
			text = x86asm.GNUSyntax(inst, uint64(pc), symname)
		}
		j := JitedInsn{Offset: pc, Bytes: spacedHex(code[pc : pc+n]), Disasm: text}
		if base != 0 {
			if l, ok := lines[base+uint64(pc)]; ok {
				j.Src, j.File, j.LineNum, j.LineCol, j.HasLine = l.Line, l.File, l.Number, l.Column, true
			}
		}
		out = append(out, j)
		pc += n
	}
	return out
}

func spacedHex(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 3*len(b))
	for i, c := range b {
		if i > 0 {
			s = append(s, ' ')
		}
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}
