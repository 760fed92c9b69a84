package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/isa"
)

// Object is a loaded eBPF object: its programs, linked and in waggle's
// instruction form, and the maps they refer to by index.
type Object struct {
	// Programs are the object's programs (functions in sections other than
	// .text), in section and symbol order for an ELF file, by name for a
	// CollectionSpec (which does not keep the order).
	Programs []*Program

	// Maps are the maps the programs may refer to. Index i is what a lddw
	// with src isa.PseudoMapIdx or isa.PseudoMapIdxValue and imm i means.
	// They include the declared maps (.maps, legacy "maps" sections), the
	// global data sections (.data, .rodata, .bss, .data.*, .rodata.*) as
	// one-element arrays whose Contents hold the initial value, and .kconfig
	// when a program reads it (its Contents are zero: the runtime fills in
	// the values it emulates). They are copies: changing them does not change
	// the CollectionSpec they came from.
	//
	// Contents never refer to other programs or maps by name here: such
	// elements are moved to Bindings. Extra (the tail of a legacy map
	// definition) is parsed into MapDefs and cleared.
	Maps []*ebpf.MapSpec

	// Bindings are the initial elements of prog arrays and maps of maps that
	// point at a program or map of this object: libbpf's declarative
	// `.values = { [0] = &prog }`, iproute2's inner_idx and its "ID/KEY"
	// tail-call sections. The runtime stores them after creating the maps.
	Bindings []Binding

	// MapDefs are the legacy definitions ("maps" sections) that carried
	// more than the five common fields, as written in the object.
	MapDefs []MapDef

	// Variables are the global variables of the data sections, by name (a
	// copy of CollectionSpec.Variables), so the runtime can read and set them
	// as cilium/ebpf's VariableSpec does.
	Variables map[string]*ebpf.VariableSpec

	// License is the content of the "license" section ("" if none).
	License string
	// KernelVersion is the content of the legacy "version" section.
	KernelVersion uint32
	// BTF is the object's type information, or nil when it has none.
	BTF *btf.Spec
	// ByteOrder is the byte order the object was compiled for.
	ByteOrder binary.ByteOrder

	// Spec is the CollectionSpec cilium/ebpf read from the object after
	// normalisation (Load, LoadFile), or the one FromSpec was given: what a
	// loader hands to the kernel through cilium/ebpf, as package kernel
	// does. Programs and Maps above are built from it but share no memory
	// with it; copy it (CollectionSpec.Copy) before changing it.
	Spec *ebpf.CollectionSpec
	// Normalised says what Load changed in the object so that cilium/ebpf
	// reads it ("section .relxdp: 4 RELA entries rewritten as REL"), one
	// note per change; empty when it changed nothing or for FromSpec.
	Normalised []string
}

// Program returns the program called name, or nil.
func (o *Object) Program(name string) *Program {
	for _, p := range o.Programs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// MapIndex returns the index in Maps of the map called name (a symbol name
// such as "counts", or a section name such as ".rodata"), or -1.
func (o *Object) MapIndex(name string) int {
	for i, m := range o.Maps {
		if m.Name == name {
			return i
		}
	}
	return -1
}

// Program is one program of an Object.
type Program struct {
	// Name is the program's function (symbol) name.
	Name string
	// Section is the ELF section it came from, e.g. "xdp" or
	// "tracepoint/syscalls/sys_enter_openat".
	Section string
	// Type and AttachType are derived from the section name as libbpf does
	// (cilium/ebpf's copy of libbpf's section_defs), unless
	// Options.ProgramType overrides the type. A section libbpf does not know
	// ("ingress", iproute2's "1/0", Open vSwitch's "tail-3", Cilium's old
	// "from-netdev", ".text") gives no type (ebpf.UnspecifiedProgram); such
	// a program takes the type of the typed programs whose prog arrays hold
	// it (Object.Bindings), as a loader puts a tail call only in a prog
	// array of its own type, and otherwise Options.DefaultType.
	Type       ebpf.ProgramType
	AttachType ebpf.AttachType
	// TypeFrom says where Type came from.
	TypeFrom TypeSource
	// AttachTo is the part of the section name after the first slash:
	// "syscalls/sys_enter_openat" for "tracepoint/syscalls/sys_enter_openat",
	// "do_unlinkat" for "kprobe/do_unlinkat". Tracepoints keep their group,
	// since the name alone does not identify one.
	AttachTo string
	// Flags are BPF_F_SLEEPABLE or BPF_F_XDP_HAS_FRAGS when the section name
	// asks for them ("fentry.s/", "xdp.frags").
	Flags uint32
	// License and KernelVersion are the object's.
	License       string
	KernelVersion uint32

	// Insns are the linked program: the entry function first, then every
	// function it reaches through bpf-to-bpf calls or function pointers.
	// Calls are "call pc+N" (src isa.PseudoCall) and function pointers are
	// lddw with src isa.PseudoFunc, both relative to the next slot as in the
	// kernel. Map and global data references use isa.PseudoMapIdx and
	// isa.PseudoMapIdxValue with indices into Object.Maps.
	Insns []isa.Instruction
	// Lines holds, for every slot of Insns, the BTF line info of the source
	// line it was compiled from (the zero Line where there is none).
	Lines []Line
	// Funcs lists every function in Insns by start slot, ascending; Funcs[0]
	// is the entry function.
	Funcs []Func
	// Externs are the slots that refer to something outside the object:
	// kernel functions (kfuncs) and kernel symbols (ksyms), which waggle
	// cannot resolve in user space. Their instructions keep a zero imm.
	Externs []Extern

	// Err, when not nil, is why this program cannot be linked (a bad
	// relocation, a call of a function the object does not define, an
	// instruction that cannot be encoded). As the kernel loads each program
	// on its own, such a program does not fail the object: the others load,
	// and Insns, Lines and Funcs of this one may be empty or incomplete.
	Err error
}

// TypeSource says how a program's type was decided.
type TypeSource int

// Sources of a program type.
const (
	TypeFromSection  TypeSource = iota // the section name, as libbpf reads it (or none)
	TypeFromOption                     // Options.ProgramType
	TypeFromTailCall                   // the type of the programs whose prog arrays hold it
	TypeFromDefault                    // Options.DefaultType
)

// String returns "section", "option", "tail call" or "default".
func (s TypeSource) String() string {
	switch s {
	case TypeFromSection:
		return "section"
	case TypeFromOption:
		return "option"
	case TypeFromTailCall:
		return "tail call"
	case TypeFromDefault:
		return "default"
	}
	return fmt.Sprintf("TypeSource(%d)", int(s))
}

// Func returns the function that slot pc belongs to.
func (p *Program) Func(pc int) Func {
	var f Func
	for _, g := range p.Funcs {
		if g.Start > pc {
			break
		}
		f = g
	}
	return f
}

// Line is a BTF line info record: where a slot came from.
type Line struct {
	File   string // source file as the compiler saw it
	Line   int    // 1-based line number, 0 if unknown
	Column int    // 1-based column, 0 if unknown
	Text   string // the source line's text, as recorded in BTF
}

// String formats the line as "file:line: text", the form error messages use.
// It returns "" for the zero Line.
func (l Line) String() string {
	switch {
	case l.File == "" && l.Line == 0:
		return l.Text
	case l.Text == "":
		return fmt.Sprintf("%s:%d", l.File, l.Line)
	}
	return fmt.Sprintf("%s:%d: %s", l.File, l.Line, l.Text)
}

// Func is one function of a linked program.
type Func struct {
	Name  string
	Start int // first slot
	// BTF is the function's BTF description (name, linkage, prototype), or
	// nil when the object has no BTF.
	BTF *btf.Func
}

// ExternKind says what an Extern refers to.
type ExternKind int

// Kinds of Extern.
const (
	Kfunc ExternKind = iota + 1 // a call of a kernel function (src BPF_PSEUDO_KFUNC_CALL)
	Ksym                        // a lddw of a kernel symbol's address
)

// String returns "kfunc" or "ksym".
func (k ExternKind) String() string {
	switch k {
	case Kfunc:
		return "kfunc"
	case Ksym:
		return "ksym"
	}
	return fmt.Sprintf("ExternKind(%d)", int(k))
}

// Extern is a slot that refers to a symbol outside the object.
type Extern struct {
	Slot int
	Name string
	Kind ExternKind
}

// Binding is an initial element of a prog array or map of maps that refers to
// another object of the same Object.
type Binding struct {
	Map     int    // the prog array or map of maps, an index into Object.Maps
	Key     uint32 // the slot
	Program int    // the program stored there, an index into Object.Programs, or -1
	Inner   int    // the map stored there, an index into Object.Maps, or -1
}

// MapDefFormat names the layout of a legacy map definition in a "maps"
// section. The first five 32-bit fields (type, key size, value size, max
// entries, flags) are the same in all of them.
type MapDefFormat int

// Legacy map definition layouts.
const (
	// MapDefAuto reads the layout from BTF (the type name of the map's
	// variable) when the object has it, else from the definition's size:
	// 20 and 24 bytes are bpf_map_def, 32 and 36 are bpf_elf_map, and 28
	// bytes (both) are bpf_elf_map when the object has iproute2's "ID/KEY"
	// tail-call sections, bpf_map_def otherwise.
	MapDefAuto MapDefFormat = iota
	// MapDefLibbpf is samples/bpf's struct bpf_map_def: type, key_size,
	// value_size, max_entries, map_flags, inner_map_idx, numa_node.
	MapDefLibbpf
	// MapDefIproute2 is iproute2's struct bpf_elf_map: type, size_key,
	// size_value, max_elem, flags, id, pinning, inner_id, inner_idx.
	MapDefIproute2
)

// String returns the C struct name of the layout, or "auto".
func (f MapDefFormat) String() string {
	switch f {
	case MapDefAuto:
		return "auto"
	case MapDefLibbpf:
		return "bpf_map_def"
	case MapDefIproute2:
		return "bpf_elf_map"
	}
	return fmt.Sprintf("MapDefFormat(%d)", int(f))
}

// MapDef is a legacy map definition with fields beyond the common five.
type MapDef struct {
	Map    int          // index into Object.Maps
	Format MapDefFormat // MapDefLibbpf or MapDefIproute2
	Size   int          // bytes of the definition in the object

	// struct bpf_map_def (samples/bpf): the index, among the maps of the
	// same section in offset order, of the inner map template, and the NUMA
	// node (also copied to the MapSpec).
	InnerMapIdx, NumaNode uint32

	// struct bpf_elf_map (iproute2): a map's id, its pinning (PIN_NONE 0,
	// PIN_OBJECT_NS 1, PIN_GLOBAL_NS 2; recorded, not applied), the id of
	// the inner map template of a map of maps, and the slot of the map of
	// maps where this map is stored.
	ID, Pinning, InnerID, InnerIdx uint32
}

// Options configure loading.
type Options struct {
	// ProgramType overrides the program type of programs, keyed by program
	// name or section name (a program name wins), like a command's --type
	// flag. Sections libbpf does not know (iproute2's "ingress", "1/0", ...)
	// get ebpf.UnspecifiedProgram otherwise. A key that names no program and
	// no section is an error.
	ProgramType map[string]ebpf.ProgramType

	// AttachType overrides the expected attach type of programs, keyed as
	// ProgramType is: what a loader that names a section's type sets with
	// it (bpftool's "prog load OBJ PATH type cgroup/connect4" sets
	// BPF_PROG_TYPE_CGROUP_SOCK_ADDR and BPF_CGROUP_INET4_CONNECT), for
	// sections whose names say neither (Cilium v1.10's "connect4"). A key
	// that names no program and no section is an error.
	AttachType map[string]ebpf.AttachType

	// DefaultType is the type of every program that has none after the
	// section name, ProgramType and the prog arrays of typed programs have
	// been consulted: what tc's "bpf obj FILE" or a loader's
	// bpf_program__set_type does for sections it does not know.
	// ebpf.UnspecifiedProgram (the zero value) leaves them without a type.
	DefaultType ebpf.ProgramType

	// MapDef is the layout of legacy map definitions in "maps" sections.
	MapDef MapDefFormat
}

// ErrNotSupported is returned (wrapped) for input the loader understands but
// cannot turn into a program waggle runs.
var ErrNotSupported = errors.New("not supported")

// maxObjectSize bounds what Load reads from a reader without a size.
const maxObjectSize = 1 << 30

// LoadFile reads the ELF object at path, as Load does.
func LoadFile(path string, opts Options) (*Object, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	obj, err := loadBytes(b, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return obj, nil
}

// Load reads an eBPF ELF object. It parses the object with cilium/ebpf,
// after normalising what cilium/ebpf refuses (RELA relocation sections,
// zero-size symbols), links every program and resolves its map references to
// indices into Object.Maps. Instruction bytes that no relocation touches are
// the ELF section's own.
func Load(r io.ReaderAt, opts Options) (*Object, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, fmt.Errorf("read object: %w", err)
	}
	return loadBytes(b, opts)
}

// FromSpec turns a CollectionSpec (from ebpf.LoadCollectionSpec or bpf2go)
// into an Object. The spec is not modified. Use Load when the ELF file is at
// hand: a spec has lost the ELF's order of programs and maps (FromSpec sorts
// them by name) and cilium/ebpf's decoder has already rewritten a few
// instruction fields, which FromSpec restores as well as it can.
func FromSpec(spec *ebpf.CollectionSpec, opts Options) (obj *Object, err error) {
	if spec == nil {
		return nil, errors.New("nil CollectionSpec")
	}
	defer recoverError("convert CollectionSpec", &err)
	obj, err = build(spec, opts, nil)
	if err != nil {
		return nil, err
	}
	obj.Spec = spec
	return obj, nil
}

func loadBytes(b []byte, opts Options) (obj *Object, err error) {
	defer recoverError("load ELF", &err)
	ef, err := readELF(b)
	if err != nil {
		return nil, err
	}
	spec, err := parseSpec(ef.data)
	if err != nil {
		return nil, err
	}
	if obj, err = build(spec, opts, ef); err != nil {
		return nil, err
	}
	obj.Spec, obj.Normalised = spec, ef.normalised
	return obj, nil
}

// parseSpec runs cilium/ebpf's ELF reader, turning a panic into an error.
func parseSpec(b []byte) (spec *ebpf.CollectionSpec, err error) {
	defer func() {
		if r := recover(); r != nil {
			spec, err = nil, fmt.Errorf("cilium/ebpf panicked parsing the object (a bug in cilium/ebpf, please report it with the object): %v", r)
		}
	}()
	spec, err = ebpf.LoadCollectionSpecFromReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("cilium/ebpf: %w", err)
	}
	return spec, nil
}

// recoverError turns a panic below it into an error: malformed input must
// never crash the caller. It is a last line of defence; each parser checks
// its bounds.
func recoverError(what string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%s: internal error on malformed input (please report it): %v", what, r)
	}
}

// readAll reads everything r holds.
func readAll(r io.ReaderAt) ([]byte, error) {
	if s, ok := r.(interface{ Size() int64 }); ok {
		n := s.Size()
		if n < 0 || n > maxObjectSize {
			return nil, fmt.Errorf("object is %d bytes, more than %d", n, maxObjectSize)
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return b, nil
	}
	var buf bytes.Buffer
	chunk := make([]byte, 64<<10)
	for off := int64(0); ; {
		n, err := r.ReadAt(chunk, off)
		buf.Write(chunk[:n])
		off += int64(n)
		if errors.Is(err, io.EOF) {
			return buf.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		if off > maxObjectSize {
			return nil, fmt.Errorf("object is more than %d bytes", maxObjectSize)
		}
	}
}
