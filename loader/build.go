package loader

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/isa"
)

// kconfigName is the name of the virtual data section of __kconfig externs.
const kconfigName = ".kconfig"

// builder turns a CollectionSpec into an Object.
type builder struct {
	spec *ebpf.CollectionSpec
	opts Options
	ef   *elfFacts // nil for FromSpec
	obj  *Object
	// mapIdx maps a CollectionSpec.Maps key to its index in obj.Maps.
	mapIdx map[string]int
	// kconfig is the index of the .kconfig map, -1 until a program reads it.
	kconfig  int
	kconfigD *btf.Datasec
}

func build(spec *ebpf.CollectionSpec, opts Options, ef *elfFacts) (*Object, error) {
	b := &builder{
		spec:    spec,
		opts:    opts,
		ef:      ef,
		mapIdx:  make(map[string]int),
		kconfig: -1,
		obj: &Object{
			BTF:       spec.Types,
			ByteOrder: spec.ByteOrder,
			Variables: make(map[string]*ebpf.VariableSpec, len(spec.Variables)),
		},
	}
	if b.obj.ByteOrder == nil {
		b.obj.ByteOrder = binary.LittleEndian
	}
	if spec.Types != nil {
		var ds *btf.Datasec
		if spec.Types.TypeByName(kconfigName, &ds) == nil {
			b.kconfigD = ds
		}
	}
	for name, v := range spec.Variables {
		b.obj.Variables[name] = v.Copy()
	}
	var order []string
	if ef != nil {
		order = ef.mapOrder
	}
	for _, name := range ordered(spec.Maps, order) {
		ms := spec.Maps[name].Copy()
		ms.Name = name
		b.mapIdx[name] = len(b.obj.Maps)
		b.obj.Maps = append(b.obj.Maps, ms)
	}
	order = nil
	if ef != nil {
		order = ef.progOrder
	}
	names := ordered(spec.Programs, order)
	var keys [][2]string // option, key
	for key := range opts.ProgramType {
		keys = append(keys, [2]string{"ProgramType", key})
	}
	for key := range opts.AttachType {
		keys = append(keys, [2]string{"AttachType", key})
	}
	for _, k := range keys {
		found := false
		for _, name := range names {
			if ps := spec.Programs[name]; name == k[1] || ps.SectionName == k[1] {
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("option %s: no program or section is called %q", k[0], k[1])
		}
	}
	for _, name := range names {
		ps := spec.Programs[name]
		p, err := b.program(name, ps)
		if err != nil {
			// This program alone cannot be linked; the others can.
			p = b.header(name, ps)
			p.Err = err
		}
		b.obj.Programs = append(b.obj.Programs, p)
		if b.obj.License == "" {
			b.obj.License, b.obj.KernelVersion = p.License, p.KernelVersion
		}
	}
	if err := b.legacyMaps(); err != nil {
		return nil, err
	}
	if err := b.bindings(); err != nil {
		return nil, err
	}
	b.inferTypes()
	return b.obj, nil
}

// ordered returns the keys of m: first those in order, in that order, then
// the rest sorted.
func ordered[V any](m map[string]V, order []string) []string {
	out := make([]string, 0, len(m))
	seen := make(map[string]bool, len(m))
	for _, k := range order {
		if _, ok := m[k]; ok && !seen[k] {
			out = append(out, k)
			seen[k] = true
		}
	}
	rest := make([]string, 0, len(m)-len(out))
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// function is one function's instructions in a cilium/ebpf stream.
type function struct {
	name  string
	insns asm.Instructions
	// labels are the symbols inside the function that its jumps refer
	// to (hand-built programs: asm.JEq.Imm(r, 0, "out")), at their slot
	// from the function's start.
	labels map[string]int
}

// split cuts an instruction stream at its symbols. The first function takes
// def as its name when the stream does not start with a symbol. A symbol
// that jumps refer to, and no call or function pointer, is a label inside
// the function, as cilium/ebpf's encoder treats it (objects from ELF files
// have no such symbols: their jumps are offsets already).
func split(insns asm.Instructions, def string) []function {
	jumpedTo, called := map[string]bool{}, map[string]bool{}
	for _, ins := range insns {
		switch ref := ins.Reference(); {
		case ref == "":
		case ins.IsFunctionReference():
			called[ref] = true
		case isJump(ins.OpCode):
			jumpedTo[ref] = true
		}
	}
	var out []function
	slot := 0
	for i, ins := range insns {
		sym := ins.Symbol()
		if sym != "" && i != 0 && jumpedTo[sym] && !called[sym] {
			f := &out[len(out)-1]
			if f.labels == nil {
				f.labels = map[string]int{}
			}
			f.labels[sym] = slot
		} else if sym != "" || i == 0 {
			if sym == "" {
				sym = def
			}
			out = append(out, function{name: sym})
			slot = 0
		}
		out[len(out)-1].insns = append(out[len(out)-1].insns, ins)
		slot += int(ins.Width())
	}
	return out
}

// isJump reports whether op is a jump that takes an offset: not a call or
// an exit.
func isJump(op asm.OpCode) bool {
	return op.Class().IsJump() && op.JumpOp() != asm.Call && op.JumpOp() != asm.Exit
}

// link collects the functions a program reaches: those in its own stream
// (cilium/ebpf has already appended the ones it calls), then any function
// another program of the spec defines. A function appears once.
func (b *builder) link(name string, ps *ebpf.ProgramSpec) ([]function, error) {
	var funcs []function
	have := make(map[string]bool)
	add := func(fs []function) {
		for _, f := range fs {
			if !have[f.name] {
				have[f.name] = true
				funcs = append(funcs, f)
			}
		}
	}
	add(split(ps.Instructions, name))
	for i := 0; i < len(funcs); i++ {
		for _, ins := range funcs[i].insns {
			ref := ins.Reference()
			if !ins.IsFunctionReference() || ref == "" || have[ref] {
				continue
			}
			other, ok := b.spec.Programs[ref]
			if !ok || len(other.Instructions) == 0 {
				return nil, fmt.Errorf("function %s refers to function %q, which the object does not define (an extern or forward declaration?)", funcs[i].name, ref)
			}
			add(split(other.Instructions, ref))
		}
	}
	return funcs, nil
}

// program converts and links one program.
func (b *builder) program(name string, ps *ebpf.ProgramSpec) (*Program, error) {
	if len(ps.Instructions) == 0 {
		return nil, errors.New("no instructions")
	}
	funcs, err := b.link(name, ps)
	if err != nil {
		return nil, err
	}
	if b.ef != nil {
		for _, f := range funcs {
			if err := b.ef.badRelocs[f.name]; err != nil {
				if f.name != name {
					return nil, fmt.Errorf("function %s: %w", f.name, err)
				}
				return nil, err
			}
		}
	}
	p := b.header(name, ps)

	// Lay out the functions.
	start := make(map[string]int, len(funcs))
	n := 0
	for _, f := range funcs {
		start[f.name] = n
		for _, ins := range f.insns {
			n += int(ins.Width())
		}
		p.Funcs = append(p.Funcs, Func{Name: f.name, Start: start[f.name], BTF: btf.FuncMetadata(&f.insns[0])})
	}
	p.Insns = make([]isa.Instruction, n)
	p.Lines = make([]Line, n)
	// relocated marks the slots whose value the loader computed rather than
	// copied.
	relocated := make([]bool, n)

	for _, f := range funcs {
		pc := start[f.name]
		var line Line
		for k := range f.insns {
			ins := &f.insns[k]
			where := func(err error) error {
				return fmt.Errorf("function %s: instruction %d (%v): %w", f.name, pc, *ins, err)
			}
			slots, err := convert(ins)
			if err != nil {
				return nil, where(err)
			}
			w := int(ins.Width())
			reloc, err := b.resolve(p, ins, slots, pc, start, func(label string) (int, bool) {
				at, ok := f.labels[label]
				return start[f.name] + at, ok
			})
			if err != nil {
				return nil, where(err)
			}
			if src := ins.Source(); src != nil {
				line = sourceLine(src)
			}
			for j := 0; j < w; j++ {
				p.Insns[pc+j] = slots[j]
				p.Lines[pc+j] = line
				relocated[pc+j] = reloc
			}
			pc += w
		}
	}
	if b.ef != nil {
		if err := b.exactBytes(p, relocated); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// header returns the program's description without its instructions: name,
// section, type and the rest.
func (b *builder) header(name string, ps *ebpf.ProgramSpec) *Program {
	p := &Program{
		Name:          name,
		Section:       ps.SectionName,
		Type:          ps.Type,
		AttachType:    ps.AttachType,
		AttachTo:      ps.AttachTo,
		Flags:         ps.Flags,
		License:       ps.License,
		KernelVersion: ps.KernelVersion,
	}
	if b.ef != nil && b.ef.textRenamed && p.Section == textAlias {
		p.Section = ".text"
	}
	if t, ok := b.opts.ProgramType[ps.SectionName]; ok {
		p.Type, p.TypeFrom = t, TypeFromOption
	}
	if t, ok := b.opts.ProgramType[name]; ok {
		p.Type, p.TypeFrom = t, TypeFromOption
	}
	if a, ok := b.opts.AttachType[ps.SectionName]; ok {
		p.AttachType = a
	}
	if a, ok := b.opts.AttachType[name]; ok {
		p.AttachType = a
	}
	return p
}

// inferTypes gives a type to the programs that have none: the type of the
// typed programs whose prog arrays hold them (a prog array accepts only
// programs of its owner's type, kernel/bpf/core.c
// __bpf_prog_map_compatible, so a loader that fills one gives its targets
// that type), then Options.DefaultType. A program that programs of two
// types tail-call gets neither (the kernel would refuse one of the two
// calls).
func (b *builder) inferTypes() {
	obj := b.obj
	// The prog arrays each program refers to.
	uses := make([][]int, len(obj.Programs))
	for i, p := range obj.Programs {
		seen := map[int32]bool{}
		for k := 0; k+1 < len(p.Insns); k++ {
			ins := p.Insns[k]
			if !ins.IsLoadImm64() {
				continue
			}
			k++
			if ins.Src != isa.PseudoMapIdx || seen[ins.Imm] || int(ins.Imm) >= len(obj.Maps) || ins.Imm < 0 {
				continue
			}
			seen[ins.Imm] = true
			if obj.Maps[ins.Imm].Type == ebpf.ProgramArray {
				uses[i] = append(uses[i], int(ins.Imm))
			}
		}
	}
	targets := make(map[int][]int) // prog array -> programs bound in it
	for _, bnd := range obj.Bindings {
		if bnd.Program >= 0 {
			targets[bnd.Map] = append(targets[bnd.Map], bnd.Program)
		}
	}
	type typ struct {
		t ebpf.ProgramType
		a ebpf.AttachType
	}
	inherited := make(map[int]typ)
	conflict := make(map[int]bool)
	var work []int
	for i, p := range obj.Programs {
		if p.Type != ebpf.UnspecifiedProgram {
			work = append(work, i)
		}
	}
	for len(work) > 0 {
		i := work[len(work)-1]
		work = work[:len(work)-1]
		from := typ{obj.Programs[i].Type, obj.Programs[i].AttachType}
		if t, ok := inherited[i]; ok {
			from = t
		}
		for _, m := range uses[i] {
			for _, j := range targets[m] {
				q := obj.Programs[j]
				if q.Type != ebpf.UnspecifiedProgram || conflict[j] {
					continue
				}
				if t, ok := inherited[j]; ok {
					if t.t != from.t {
						conflict[j] = true
						delete(inherited, j)
					}
					continue
				}
				inherited[j] = from
				work = append(work, j)
			}
		}
	}
	for j, t := range inherited {
		p := obj.Programs[j]
		p.Type, p.AttachType, p.TypeFrom = t.t, t.a, TypeFromTailCall
	}
	if b.opts.DefaultType == ebpf.UnspecifiedProgram {
		return
	}
	for _, p := range obj.Programs {
		if p.Type == ebpf.UnspecifiedProgram {
			p.Type, p.TypeFrom = b.opts.DefaultType, TypeFromDefault
		}
	}
}

// sourceLine converts cilium/ebpf's source annotation.
func sourceLine(src fmt.Stringer) Line {
	if l, ok := src.(*btf.Line); ok {
		return Line{File: l.FileName(), Line: int(l.LineNumber()), Column: int(l.LineColumn()), Text: l.Line()}
	}
	return Line{Text: src.String()}
}

// resolve rewrites the reference an instruction makes, if any, in slots, and
// reports whether it did.
func (b *builder) resolve(p *Program, ins *asm.Instruction, slots *[2]isa.Instruction, pc int, start map[string]int, label func(string) (int, bool)) (bool, error) {
	ref := ins.Reference()
	switch {
	case ref != "" && isJump(ins.OpCode):
		t, ok := label(ref)
		if !ok {
			return false, fmt.Errorf("jump to %q, which is no label of the function", ref)
		}
		d := t - pc - 1
		if ins.OpCode.Class() == asm.Jump32Class && ins.OpCode.JumpOp() == asm.Ja {
			slots[0].Imm = int32(d) // gotol
			return true, nil
		}
		if d < math.MinInt16 || d > math.MaxInt16 {
			return false, fmt.Errorf("jump to %q is %d instructions away, more than a 16-bit offset reaches", ref, d)
		}
		slots[0].Off = int16(d)
		return true, nil

	case ins.IsFunctionReference():
		if ref == "" {
			if ins.Constant == -1 {
				return false, errors.New("function reference without a target")
			}
			return false, nil // already relative, as in a hand-built spec
		}
		t, ok := start[ref]
		if !ok {
			return false, fmt.Errorf("unknown function %q", ref)
		}
		slots[0].Imm = int32(t - pc - 1)
		if ins.OpCode.IsDWordLoad() {
			slots[1].Imm = 0
		}
		return true, nil

	case ins.IsLoadFromMap():
		if ins.Map() != nil {
			return false, fmt.Errorf("map reference already bound to a kernel map (%v): give the loader the spec before loading it into the kernel", ins.Map())
		}
		if ref == "" {
			if ins.Src != asm.PseudoMapValue {
				return false, errors.New("map load without a map reference")
			}
			off, err := b.kconfigOffset(ins)
			if err != nil {
				return false, err
			}
			idx, err := b.kconfigMap()
			if err != nil {
				return false, err
			}
			slots[0].Src, slots[0].Imm, slots[1].Imm = isa.PseudoMapIdxValue, int32(idx), int32(off)
			return true, nil
		}
		idx, ok := b.mapIdx[ref]
		if !ok {
			return false, fmt.Errorf("symbol %q is not a map or data section of the object", ref)
		}
		// The second slot's imm is kept: a map value's offset, and for a
		// map itself what must be 0 (the verifier refuses anything else,
		// as the kernel does).
		slots[1].Imm = int32(uint32(uint64(ins.Constant) >> 32))
		if ins.Src == asm.PseudoMapFD {
			slots[0].Src, slots[0].Imm = isa.PseudoMapIdx, int32(idx)
		} else {
			slots[0].Src, slots[0].Imm = isa.PseudoMapIdxValue, int32(idx)
		}
		return true, nil

	case ins.IsKfuncCall():
		p.Externs = append(p.Externs, Extern{Slot: pc, Name: ref, Kind: Kfunc})
		slots[0].Imm = 0
		return true, nil

	case ref != "" && ins.OpCode.IsDWordLoad():
		// A kernel symbol (__ksym), or a symbol inline assembly refers to;
		// not a variable or map the object declares extern for another
		// object to define.
		if err := b.externVar(ref); err != nil {
			return false, err
		}
		p.Externs = append(p.Externs, Extern{Slot: pc, Name: ref, Kind: Ksym})
		slots[0].Imm, slots[1].Imm = 0, 0
		return true, nil

	case ref != "":
		return false, fmt.Errorf("reference to %q that is neither a map, a function nor a kernel symbol", ref)
	}
	return false, nil
}

// externVar fails for a symbol the object's BTF declares as an extern
// variable outside .ksyms and .kconfig: a map or global variable of another
// object (samples/bpf's xdp_sample.bpf.h declares its maps so, for bpftool
// gen object to join the objects). Nothing defines it here, so the program
// cannot run: libbpf refuses such an extern, and the kernel, given the
// zero cilium/ebpf leaves, refuses the map pointer or memory access; waggle
// refuses the program, naming the symbol. Symbols without a BTF variable
// (inline assembly's) stay constants to be patched, as in cilium/ebpf.
func (b *builder) externVar(name string) error {
	if b.spec.Types == nil {
		return nil
	}
	types, err := b.spec.Types.AnyTypesByName(name)
	if err != nil {
		return nil
	}
	for _, t := range types {
		v, ok := t.(*btf.Var)
		if !ok || v.Linkage != btf.ExternVar || b.inDatasec(".ksyms", v) || b.inDatasec(kconfigName, v) {
			continue
		}
		what := "variable"
		if isMapDef(v.Type) {
			what = "map"
		}
		return fmt.Errorf("symbol %q is an extern %s that no section of the object defines (it belongs to another object: link them first, as bpftool gen object does)", name, what)
	}
	return nil
}

// inDatasec reports whether the object's BTF lists v in the data section
// name.
func (b *builder) inDatasec(name string, v *btf.Var) bool {
	var ds *btf.Datasec
	if b.spec.Types.TypeByName(name, &ds) != nil {
		return false
	}
	for _, vs := range ds.Vars {
		if vs.Type == v {
			return true
		}
	}
	return false
}

// isMapDef reports whether t is a BTF map definition: a struct whose type
// member is __uint(type, ...), a pointer to an array.
func isMapDef(t btf.Type) bool {
	s, ok := btf.UnderlyingType(t).(*btf.Struct)
	if !ok {
		return false
	}
	for _, m := range s.Members {
		if p, ok := btf.UnderlyingType(m.Type).(*btf.Pointer); ok && m.Name == "type" {
			_, arr := btf.UnderlyingType(p.Target).(*btf.Array)
			return arr
		}
	}
	return false
}

// kconfigMap returns the index of the .kconfig map, adding it on first use.
func (b *builder) kconfigMap() (int, error) {
	if b.kconfig >= 0 {
		return b.kconfig, nil
	}
	size := uint32(0)
	if b.kconfigD != nil {
		size = b.kconfigD.Size
	}
	if size > maxDataSize {
		return 0, fmt.Errorf("%s is %d bytes, more than the %d a map value may have", kconfigName, size, maxDataSize)
	}
	ms := &ebpf.MapSpec{
		Name:       kconfigName,
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  size,
		MaxEntries: 1,
		Flags:      bpfFRdonlyProg,
		Contents:   []ebpf.MapKV{{Key: uint32(0), Value: make([]byte, size)}},
	}
	if b.kconfigD != nil {
		ms.Key, ms.Value = &btf.Int{Size: 4}, btf.Copy(b.kconfigD)
	}
	b.kconfig = len(b.obj.Maps)
	b.mapIdx[kconfigName] = b.kconfig
	b.obj.Maps = append(b.obj.Maps, ms)
	return b.kconfig, nil
}

// bpfFRdonlyProg is BPF_F_RDONLY_PROG (include/uapi/linux/bpf.h): the
// program may only read the map. cilium/ebpf sets it on .rodata maps.
const bpfFRdonlyProg = 1 << 7

// convert turns one cilium/ebpf instruction into its slots, undoing what
// cilium/ebpf's decoder folded into the opcode (asm/instruction.go,
// Unmarshal): sdiv/smod and movsx keep their offset there, atomics their imm.
func convert(ins *asm.Instruction) (*[2]isa.Instruction, error) {
	op := ins.OpCode
	if uint32(op)>>8 != 0 && !op.Class().IsALU() && op.AtomicOp() == asm.InvalidAtomic {
		return nil, fmt.Errorf("opcode %#x has no 8-bit encoding", uint32(op))
	}
	if ins.Dst > 15 || ins.Src > 15 {
		return nil, fmt.Errorf("register out of range (dst %d, src %d)", ins.Dst, ins.Src)
	}
	lo := isa.Instruction{
		Op:  isa.Opcode(uint8(op)),
		Dst: isa.Register(ins.Dst),
		Src: isa.Register(ins.Src),
		Off: ins.Offset,
	}
	var out [2]isa.Instruction
	switch {
	case op.IsDWordLoad():
		lo.Imm = int32(uint32(uint64(ins.Constant)))
		out[1] = isa.Instruction{Imm: int32(uint32(uint64(ins.Constant) >> 32))}
	case op.Class().IsALU():
		off := int16(0)
		switch op.ALUOp() {
		case asm.SDiv, asm.SMod:
			off = 1
		case asm.MovSX8:
			off = 8
		case asm.MovSX16:
			off = 16
		case asm.MovSX32:
			off = 32
		}
		if off != 0 {
			if ins.Offset != 0 {
				return nil, fmt.Errorf("%v carries offset %d besides its implied %d", op, ins.Offset, off)
			}
			lo.Off = off
		}
		if uint32(op)>>8 != 0 && off == 0 {
			return nil, fmt.Errorf("opcode %#x has no 8-bit encoding", uint32(op))
		}
		if err := imm32(ins, &lo); err != nil {
			return nil, err
		}
	case op.AtomicOp() != asm.InvalidAtomic:
		// The atomic operation lives in imm; the decoder keeps the
		// original imm in Constant and copies it into the opcode.
		want := int64(uint32(op)&0x1ff00) >> 8
		lo.Imm = int32(want)
		if ins.Constant != 0 && ins.Constant&0x1ff == want {
			lo.Imm = int32(ins.Constant)
		}
	case ins.IsBuiltinCall():
		// Helper ids are tagged with the platform in bits 28-30; Linux's
		// tag is 0.
		if uint64(ins.Constant)>>28 != 0 && ins.Constant >= 0 {
			return nil, fmt.Errorf("helper %d is not a Linux helper (cilium/ebpf platform tag %d)", ins.Constant&(1<<28-1), ins.Constant>>28)
		}
		if err := imm32(ins, &lo); err != nil {
			return nil, err
		}
	default:
		if err := imm32(ins, &lo); err != nil {
			return nil, err
		}
	}
	out[0] = lo
	return &out, nil
}

func imm32(ins *asm.Instruction, lo *isa.Instruction) error {
	if ins.Constant < -1<<31 || ins.Constant > 1<<31-1 {
		return fmt.Errorf("constant %d does not fit in 32 bits", ins.Constant)
	}
	lo.Imm = int32(ins.Constant)
	return nil
}

// exactBytes replaces every slot the loader did not compute with the bytes
// of the ELF section, and recomputes global data offsets from the ELF's
// relocations.
func (b *builder) exactBytes(p *Program, relocated []bool) error {
	ef := b.ef
	for k, f := range p.Funcs {
		end := len(p.Insns)
		if k+1 < len(p.Funcs) {
			end = p.Funcs[k+1].Start
		}
		sym, raw, err := ef.funcBytes(f.Name)
		if err != nil {
			return err
		}
		if len(raw) != (end-f.Start)*isa.InstructionSize {
			return fmt.Errorf("function %s: %d slots in cilium/ebpf's spec, %d bytes in the ELF symbol", f.Name, end-f.Start, len(raw))
		}
		relocs := ef.relocs[int(sym.Section)]
		for pc := f.Start; pc < end; pc++ {
			j := pc - f.Start
			elfIns := isa.Unmarshal(raw[j*isa.InstructionSize:], ef.bo)
			if !relocated[pc] {
				p.Insns[pc] = elfIns
				continue
			}
			ins := &p.Insns[pc]
			if !ins.IsLoadImm64() || ins.Src != isa.PseudoMapIdxValue {
				continue
			}
			rel, ok := relocs[sym.Value+uint64(j*isa.InstructionSize)]
			if !ok {
				continue
			}
			off, err := b.dataOffset(rel, elfIns)
			if err != nil {
				return fmt.Errorf("section %s: relocation %d at instruction %d: %w", ef.sections[sym.Section].Name, rel.index, (sym.Value/isa.InstructionSize)+uint64(j), err)
			}
			p.Insns[pc+1].Imm = int32(off)
		}
	}
	return nil
}

// dataOffset is the offset into a data section a lddw refers to, as libbpf
// computes it: the symbol's value plus the addend in the instruction's imm
// (cilium/ebpf drops the addend for STT_OBJECT symbols). For .kconfig
// externs it is the variable's offset in the Datasec.
func (b *builder) dataOffset(rel elfReloc, ins isa.Instruction) (uint32, error) {
	sym := rel.sym
	if sym.Section == elf.SHN_UNDEF {
		if b.kconfigD == nil {
			return 0, fmt.Errorf("extern %q: no %s in BTF", sym.Name, kconfigName)
		}
		for _, v := range b.kconfigD.Vars {
			if v.Type.TypeName() == sym.Name {
				return v.Offset, nil
			}
		}
		return 0, fmt.Errorf("extern %q is not in %s", sym.Name, kconfigName)
	}
	base := uint64(0)
	if elf.ST_TYPE(sym.Info) != elf.STT_SECTION {
		base = sym.Value
	}
	off := base + uint64(uint32(ins.Imm))
	if off > 1<<32-1 {
		return 0, fmt.Errorf("offset %d into %q does not fit in 32 bits", off, sym.Name)
	}
	return uint32(off), nil
}

// kconfigOffset finds the offset into .kconfig of a __kconfig extern load in
// a spec. cilium/ebpf keeps it in unexported instruction metadata; see
// kconfigMetaOffset. With the ELF file at hand, exactBytes recomputes it
// from the relocation.
func (b *builder) kconfigOffset(ins *asm.Instruction) (uint32, error) {
	if off, ok := kconfigMetaOffset(ins); ok {
		return off, nil
	}
	if b.kconfigD != nil && len(b.kconfigD.Vars) == 1 {
		return b.kconfigD.Vars[0].Offset, nil
	}
	return 0, fmt.Errorf("load of a %s extern whose variable is unknown: %w", kconfigName, ErrNotSupported)
}
