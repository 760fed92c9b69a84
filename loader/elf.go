package loader

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/waggle-bpf/waggle/isa"
)

// ELF64 layout constants (the System V gABI; BPF objects are always ELF64).
//
//	Elf64_Shdr (64 bytes)              Elf64_Sym (24 bytes)
//	 0 sh_name     4                    0 st_name   4
//	 4 sh_type     4                    4 st_info   1
//	 8 sh_flags    8                    5 st_other  1
//	16 sh_addr     8                    6 st_shndx  2
//	24 sh_offset   8                    8 st_value  8
//	32 sh_size     8                   16 st_size   8
//	40 sh_link     4
//	44 sh_info     4                   Elf64_Rel (16)   Elf64_Rela (24)
//	48 sh_addralign 8                   0 r_offset 8     0 r_offset 8
//	56 sh_entsize  8                    8 r_info   8     8 r_info   8
//	                                                    16 r_addend 8
const (
	shdrSize   = 64
	symSize    = 24
	relSize    = 16
	relaSize   = 24
	ehdrShoff  = 0x28
	ehdrShent  = 0x3a
	shdrType   = 4
	shdrSizeAt = 32
	shdrEntAt  = 56
	symSizeAt  = 16
)

// BPF relocation types that write data (the kernel's
// Documentation/bpf/llvm_reloc.rst). R_BPF_64_64 (1, lddw) and R_BPF_64_32
// (10, call) write an instruction's imm.
const (
	rBPF64Abs64    = 2 // R_BPF_64_ABS64: 8 bytes of data
	rBPF64Abs32    = 3 // R_BPF_64_ABS32: 4 bytes of data
	rBPF64NoDyld32 = 4 // R_BPF_64_NODYLD32: 4 bytes of data (BTF)
)

// secKind classifies a section the way cilium/ebpf's ELF reader does.
type secKind int

const (
	kindOther secKind = iota
	kindProgram
	kindLegacyMaps // "maps", "maps/..."
	kindBTFMaps    // ".maps"
	kindData       // .data*, .rodata*, .bss
	kindLicense
)

func classify(s *elf.Section) secKind {
	switch {
	case strings.HasPrefix(s.Name, "license"):
		return kindLicense
	case strings.HasPrefix(s.Name, "version"):
		return kindOther
	case strings.HasPrefix(s.Name, "maps"):
		return kindLegacyMaps
	case s.Name == ".maps":
		return kindBTFMaps
	case s.Name == ".bss" || strings.HasPrefix(s.Name, ".data") || strings.HasPrefix(s.Name, ".rodata"):
		return kindData
	case s.Type == elf.SHT_PROGBITS && s.Flags&elf.SHF_EXECINSTR != 0 && s.Size > 0:
		return kindProgram
	}
	return kindOther
}

// symbolIn reports whether cilium/ebpf keeps sym as a function (program
// sections) or map/variable (other sections) symbol: named, of type FUNC or
// OBJECT or NOTYPE (old clang), and in program sections not a local label.
func symbolIn(kind secKind, sym elf.Symbol) bool {
	if sym.Name == "" {
		return false
	}
	typ := elf.ST_TYPE(sym.Info)
	switch kind {
	case kindProgram:
		if typ == elf.STT_NOTYPE {
			return elf.ST_BIND(sym.Info) != elf.STB_LOCAL
		}
		return typ == elf.STT_FUNC
	case kindLegacyMaps, kindBTFMaps, kindData:
		return typ == elf.STT_NOTYPE || typ == elf.STT_OBJECT
	}
	return false
}

// elfSym is a symbol with its index in the symbol table.
type elfSym struct {
	elf.Symbol
	index int // 1-based, as in r_info
}

// elfReloc is one relocation of a program section.
type elfReloc struct {
	index int // position in its relocation section
	sym   elfSym
}

// elfFacts is what the loader takes from the ELF file itself rather than
// from cilium/ebpf's CollectionSpec: exact instruction bytes, relocations,
// and the order of programs and maps.
type elfFacts struct {
	data     []byte // the normalised object
	bo       binary.ByteOrder
	sections []*elf.Section
	kinds    []secKind
	// funcs maps a function name to its symbol, for program sections.
	funcs map[string]elfSym
	// relocs maps a program section index to its relocations by offset.
	relocs map[int]map[uint64]elfReloc
	// progOrder lists the functions of non-.text program sections in
	// section and offset order; mapOrder lists map symbols (legacy and BTF)
	// and data section names in section and offset order.
	progOrder []string
	mapOrder  []string
	// legacyMaps lists, per legacy maps section, its map names in offset
	// order (what inner_map_idx counts in).
	legacyMaps [][]string
	// normalised describes what readELF changed so that cilium/ebpf accepts
	// the object (empty when it changed nothing).
	normalised []string
	// badRelocs holds, by function name, the first relocation of the
	// function that could not be applied: normalise drops it, and the
	// programs that link the function fail with this error.
	badRelocs map[string]error
	// textRenamed is set when the object's only program section, .text,
	// was renamed textAlias so that cilium/ebpf exposes its functions as
	// programs.
	textRenamed bool
}

// textAlias is the name .text gets in an object whose only code is in
// .text: the same string without its dot (sh_name + 1), which cilium/ebpf
// does not hide as it hides ".text".
const textAlias = "text"

// badReloc is a relocation of a program section that normalise dropped.
type badReloc struct {
	sec int
	off uint64
	err error
}

// readELF validates and normalises an ELF object and gathers its facts.
func readELF(b []byte) (*elfFacts, error) {
	f, err := parseELF(b)
	if err != nil {
		return nil, err
	}
	if f.Class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("ELF class is %s, eBPF objects are ELFCLASS64", f.Class)
	}
	if f.Machine != elf.EM_BPF && f.Machine != elf.EM_NONE {
		return nil, fmt.Errorf("ELF machine is %s, not EM_BPF", f.Machine)
	}
	data := slices.Clone(b)
	notes, bad, err := normalise(f, data)
	if err != nil {
		return nil, err
	}
	data, renamed, err := renameText(f, data)
	if err != nil {
		return nil, err
	}
	if renamed {
		notes = append(notes, "the object's only code is in .text: its functions are programs")
	}
	if len(notes) > 0 {
		if f, err = parseELF(data); err != nil {
			return nil, fmt.Errorf("normalised object: %w", err)
		}
	}
	ef, err := gatherFacts(f, data)
	if err != nil {
		return nil, err
	}
	ef.normalised = notes
	ef.textRenamed = renamed
	if err := ef.assignBadRelocs(bad); err != nil {
		return nil, err
	}
	return ef, nil
}

func parseELF(b []byte) (f *elf.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("parse ELF: debug/elf panicked on malformed input: %v", r)
		}
	}()
	f, err = elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse ELF: %w", err)
	}
	return f, nil
}

// maxDataSize bounds a global data section: Linux refuses array values
// larger than KMALLOC_MAX_SIZE (4 MiB on x86-64 with 4 KiB pages), and no
// architecture allows more than this.
const maxDataSize = 64 << 20

// symbols returns the symbol table with indices, or nil if there is none.
func symbols(f *elf.File) ([]elfSym, *elf.Section, error) {
	symtab := f.SectionByType(elf.SHT_SYMTAB)
	if symtab == nil {
		return nil, nil, nil
	}
	syms, err := f.Symbols()
	if err != nil {
		return nil, nil, fmt.Errorf("symbol table: %w", err)
	}
	out := make([]elfSym, len(syms))
	for i, s := range syms {
		out[i] = elfSym{s, i + 1}
	}
	return out, symtab, nil
}

// sectionBytes returns the file bytes of a section that has them.
func sectionBytes(data []byte, s *elf.Section) ([]byte, error) {
	if s.Type == elf.SHT_NOBITS {
		return nil, nil
	}
	if s.Flags&elf.SHF_COMPRESSED != 0 {
		return nil, fmt.Errorf("section %s: compressed sections are %w", s.Name, ErrNotSupported)
	}
	end := s.Offset + s.Size
	if end < s.Offset || end > uint64(len(data)) {
		return nil, fmt.Errorf("section %s: bytes %d-%d lie outside the %d-byte file", s.Name, s.Offset, end, len(data))
	}
	return data[s.Offset:end], nil
}

// shdrAt returns the file offset of section header i.
func shdrAt(data []byte, bo binary.ByteOrder, i int) (int, error) {
	if len(data) < 0x40 {
		return 0, fmt.Errorf("ELF header truncated")
	}
	shoff := bo.Uint64(data[ehdrShoff:])
	shent := uint64(bo.Uint16(data[ehdrShent:]))
	if shent < shdrSize {
		return 0, fmt.Errorf("section header size is %d, ELF64 needs %d", shent, shdrSize)
	}
	off := shoff + uint64(i)*shent
	if off < shoff || off+shdrSize > uint64(len(data)) {
		return 0, fmt.Errorf("section header %d lies outside the file", i)
	}
	return int(off), nil
}

// normalise rewrites, in data, what cilium/ebpf v0.22.0 refuses or
// misreads but the kernel (through libbpf, iproute2 or samples/bpf's
// loader) runs:
//
//   - RELA sections for program, map and data sections: cilium/ebpf reads
//     only SHT_REL, so it would silently drop every relocation (leaving map
//     loads as plain constants). Each entry's addend is written into the
//     relocated field, where LLVM puts the implicit addend of a REL entry,
//     and the entries are rewritten as Elf64_Rel.
//   - Zero-size function and map symbols (old clang): cilium/ebpf reads a
//     symbol's size bytes ("no instructions found for symbol", "missing
//     type"). Such a symbol is given the extent up to the next symbol of its
//     section, or the section's end.
//
// Relocations of program sections are also checked here, so that a bad one
// is reported with its section, index and instruction.
func normalise(f *elf.File, data []byte) (notes []string, bad []badReloc, err error) {
	bo := f.ByteOrder
	syms, symtab, err := symbols(f)
	if err != nil {
		return nil, nil, err
	}
	kinds := make([]secKind, len(f.Sections))
	for i, s := range f.Sections {
		kinds[i] = classify(s)
	}
	// Every section the loader or cilium/ebpf reads must lie in the file,
	// and a zero-filled one (.bss) must be of a size a map value can have:
	// cilium/ebpf allocates by the sizes the headers claim.
	for i, s := range f.Sections {
		switch {
		case s.Type == elf.SHT_NOBITS:
			if kinds[i] == kindData && s.Size > maxDataSize {
				return nil, nil, fmt.Errorf("section %s: %d bytes, more than the %d a map value may have", s.Name, s.Size, maxDataSize)
			}
		case kinds[i] != kindOther || s.Type == elf.SHT_REL || s.Type == elf.SHT_RELA || s.Type == elf.SHT_SYMTAB || s.Type == elf.SHT_STRTAB || strings.HasPrefix(s.Name, ".BTF"):
			if _, err := sectionBytes(data, s); err != nil {
				return nil, nil, err
			}
		}
	}

	weak := make(map[int]bool) // weak externs that lddw reads
	for i, s := range f.Sections {
		if s.Type != elf.SHT_REL && s.Type != elf.SHT_RELA {
			continue
		}
		target := int(s.Info)
		if target <= 0 || target >= len(f.Sections) {
			continue // cilium/ebpf ignores these too
		}
		tk := kinds[target]
		if tk != kindProgram && tk != kindLegacyMaps && tk != kindBTFMaps && tk != kindData {
			continue
		}
		ts := f.Sections[target]
		tdata, err := sectionBytes(data, ts)
		if err != nil {
			return nil, nil, err
		}
		rdata, err := sectionBytes(data, s)
		if err != nil {
			return nil, nil, err
		}
		rela := s.Type == elf.SHT_RELA
		ent := uint64(relSize)
		if rela {
			ent = relaSize
		}
		if s.Entsize != 0 && s.Entsize != ent {
			return nil, nil, fmt.Errorf("section %s: entry size %d, %s entries are %d bytes", s.Name, s.Entsize, s.Type, ent)
		}
		if uint64(len(rdata))%ent != 0 {
			return nil, nil, fmt.Errorf("section %s: size %d is not a multiple of the %d-byte entry", s.Name, len(rdata), ent)
		}
		if symtab == nil && len(rdata) > 0 {
			return nil, nil, fmt.Errorf("section %s: relocations but no symbol table", s.Name)
		}
		n := len(rdata) / int(ent)
		kept := 0 // entries written back, as Elf64_Rel
		for k := 0; k < n; k++ {
			e := rdata[k*int(ent):]
			off := bo.Uint64(e)
			info := bo.Uint64(e[8:])
			symNo := int(elf.R_SYM64(info))
			typ := elf.R_TYPE64(info)
			where := fmt.Sprintf("section %s: relocation %d", ts.Name, k)
			if tk == kindProgram {
				where = fmt.Sprintf("section %s: relocation %d at instruction %d", ts.Name, k, off/isa.InstructionSize)
			}
			// A relocation of an instruction that cannot be applied fails
			// the programs that contain the instruction, not the object:
			// it is dropped here and reported when they are linked.
			inText := tk == kindProgram && off%isa.InstructionSize == 0 && off < uint64(len(tdata))
			var relErr error
			if symNo == 0 || symNo > len(syms) {
				relErr = fmt.Errorf("symbol index %d is not in the %d-entry symbol table", symNo, len(syms))
			} else if tk == kindProgram {
				sym := syms[symNo-1]
				relErr = checkProgramReloc(f, kinds, tdata, off, sym, bo)
				if relErr == nil && sym.Section == elf.SHN_UNDEF && elf.ST_BIND(sym.Info) == elf.STB_WEAK && isa.Unmarshal(tdata[off:], bo).IsLoadImm64() {
					weak[sym.index] = true
				}
			}
			if relErr == nil && rela {
				relErr = writeAddend(tdata, tk, off, typ, int64(bo.Uint64(e[16:])), bo)
			}
			switch {
			case relErr != nil && !inText:
				return nil, nil, fmt.Errorf("%s: %w", where, relErr)
			case relErr != nil:
				bad = append(bad, badReloc{sec: target, off: off, err: fmt.Errorf("%s: %w", where, relErr)})
				notes = append(notes, fmt.Sprintf("%s: dropped (%v)", where, relErr))
				continue
			}
			// Compact in place: entry k of 16 bytes never overtakes entry
			// k of 16 or 24 bytes.
			bo.PutUint64(rdata[kept*relSize:], off)
			bo.PutUint64(rdata[kept*relSize+8:], info)
			kept++
		}
		if rela || kept < n {
			h, err := shdrAt(data, bo, i)
			if err != nil {
				return nil, nil, err
			}
			bo.PutUint32(data[h+shdrType:], uint32(elf.SHT_REL))
			bo.PutUint64(data[h+shdrSizeAt:], uint64(kept*relSize))
			bo.PutUint64(data[h+shdrEntAt:], relSize)
			if rela {
				notes = append(notes, fmt.Sprintf("section %s: %d RELA entries rewritten as REL", s.Name, n))
			}
		}
	}

	// The steps below read relocations: from now on they are all REL.
	if len(notes) > 0 {
		if f, err = parseELF(data); err != nil {
			return nil, nil, fmt.Errorf("object with RELA rewritten as REL: %w", err)
		}
	}

	// Weak externs read by lddw (`extern int CONFIG_HZ __kconfig __weak`,
	// which libbpf supports and cilium/ebpf refuses for .kconfig) become
	// global: both mean the same to waggle, whose runtime provides every
	// value it knows and zero otherwise.
	if len(weak) > 0 && symtab != nil && symtab.Entsize == symSize {
		for idx := range weak {
			at := symtab.Offset + uint64(idx)*symSize + 4
			if at >= uint64(len(data)) {
				return nil, nil, fmt.Errorf("symbol table entry %d lies outside the file", idx)
			}
			data[at] = elf.ST_INFO(elf.STB_GLOBAL, elf.ST_TYPE(data[at]))
		}
		notes = append(notes, fmt.Sprintf("%d weak externs made global", len(weak)))
	}

	// Call targets that old clang left as local labels (STT_NOTYPE,
	// STB_LOCAL, which cilium/ebpf skips as jump labels) become functions.
	if symtab != nil && symtab.Entsize == symSize {
		k, err := retypeCallTargets(f, kinds, data, syms, symtab)
		if err != nil {
			return nil, nil, err
		}
		if k > 0 {
			notes = append(notes, fmt.Sprintf("%d local call targets typed as functions", k))
			for i := range syms {
				syms[i].Info = data[symtab.Offset+uint64(syms[i].index)*symSize+4]
			}
		}
		// ... and so do the static functions that start a program section
		// (Open vSwitch's datapath), which cilium/ebpf would otherwise find
		// no symbol for ("missing symbols").
		k, err = retypeSectionEntries(f, kinds, data, syms, symtab)
		if err != nil {
			return nil, nil, err
		}
		if k > 0 {
			notes = append(notes, fmt.Sprintf("%d local symbols starting a program section typed as functions", k))
			for i := range syms {
				syms[i].Info = data[symtab.Offset+uint64(syms[i].index)*symSize+4]
			}
		}
	}

	// Zero-size symbols in program and legacy map sections.
	if symtab != nil && symtab.Entsize == symSize {
		bySec := make(map[int][]elfSym)
		for _, sym := range syms {
			sec := int(sym.Section)
			if sec <= 0 || sec >= len(f.Sections) {
				continue
			}
			k := kinds[sec]
			if (k == kindProgram || k == kindLegacyMaps) && symbolIn(k, sym.Symbol) {
				bySec[sec] = append(bySec[sec], sym)
			}
		}
		for sec, list := range bySec {
			slices.SortStableFunc(list, func(a, b elfSym) int { return cmpU64(a.Value, b.Value) })
			size := f.Sections[sec].Size
			fixed := 0
			for k, sym := range list {
				if sym.Size != 0 || sym.Value >= size {
					continue
				}
				end := size
				for _, next := range list[k+1:] {
					if next.Value > sym.Value {
						end = next.Value
						break
					}
				}
				at := symtab.Offset + uint64(sym.index)*symSize + symSizeAt
				if at+8 > uint64(len(data)) {
					return nil, nil, fmt.Errorf("symbol %q: symbol table entry %d lies outside the file", sym.Name, sym.index)
				}
				bo.PutUint64(data[at:], end-sym.Value)
				fixed++
			}
			if fixed > 0 {
				notes = append(notes, fmt.Sprintf("section %s: %d zero-size symbols given their extent", f.Sections[sec].Name, fixed))
			}
		}
	}
	return notes, bad, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkProgramReloc checks one relocation of a program section: it must
// point at an instruction that can carry one, and the symbol must be of a
// kind that instruction can refer to.
func checkProgramReloc(f *elf.File, kinds []secKind, text []byte, off uint64, sym elfSym, bo binary.ByteOrder) error {
	if off%isa.InstructionSize != 0 || off+isa.InstructionSize > uint64(len(text)) {
		return fmt.Errorf("offset %d is not an instruction of the %d-byte section", off, len(text))
	}
	ins := isa.Unmarshal(text[off:], bo)
	name := sym.Name
	if name == "" && int(sym.Section) < len(f.Sections) && sym.Section != elf.SHN_UNDEF {
		name = f.Sections[sym.Section].Name
	}
	var tk secKind
	switch {
	case sym.Section == elf.SHN_UNDEF:
		return nil // kfuncs, ksyms, kconfig, inline asm: cilium/ebpf sorts them out
	case sym.Section >= elf.SHN_LORESERVE:
		return fmt.Errorf("symbol %q is in special section %s", name, sym.Section)
	case int(sym.Section) >= len(f.Sections):
		return fmt.Errorf("symbol %q is in section %d, which does not exist", name, sym.Section)
	default:
		tk = kinds[sym.Section]
	}
	switch {
	case ins.IsLoadImm64():
		if off+2*isa.InstructionSize > uint64(len(text)) {
			return fmt.Errorf("lddw referring to %q is cut off at the end of the section", name)
		}
		switch tk {
		case kindLegacyMaps, kindBTFMaps, kindData, kindProgram:
			return nil
		}
		return fmt.Errorf("symbol %q is in section %s, which is not a map, data or program section", name, f.Sections[sym.Section].Name)
	case ins.Op == isa.OpCall:
		if tk != kindProgram {
			return fmt.Errorf("call of %q, which is not a function (section %s)", name, f.Sections[sym.Section].Name)
		}
		if ins.Src != isa.PseudoCall {
			return fmt.Errorf("call of %q has src %d, a bpf-to-bpf call needs src 1", name, ins.Src)
		}
		return nil
	}
	return fmt.Errorf("symbol %q: instruction %s is neither a lddw nor a call", name, isa.Format(ins, isa.Instruction{}))
}

// writeAddend stores a RELA addend where a REL entry of the same type keeps
// its implicit addend.
func writeAddend(sec []byte, kind secKind, off uint64, typ uint32, addend int64, bo binary.ByteOrder) error {
	if sec == nil {
		return fmt.Errorf("relocation into a section without bytes (NOBITS)")
	}
	width := uint64(0)
	switch {
	case kind == kindProgram:
		// lddw (R_BPF_64_64) and call (R_BPF_64_32) keep the addend in the
		// first slot's imm.
		if addend < -1<<31 || addend > 1<<32-1 {
			return fmt.Errorf("addend %d does not fit an instruction's 32-bit imm", addend)
		}
		if off%isa.InstructionSize != 0 || off+isa.InstructionSize > uint64(len(sec)) {
			return fmt.Errorf("offset %d is not an instruction of the %d-byte section", off, len(sec))
		}
		bo.PutUint32(sec[off+4:], uint32(addend))
		return nil
	case typ == rBPF64Abs64:
		width = 8
	case typ == rBPF64Abs32 || typ == rBPF64NoDyld32:
		width = 4
	default:
		return fmt.Errorf("relocation type %d in a data section is %w", typ, ErrNotSupported)
	}
	if off+width > uint64(len(sec)) || off+width < off {
		return fmt.Errorf("offset %d lies outside the %d-byte section", off, len(sec))
	}
	if width == 8 {
		bo.PutUint64(sec[off:], uint64(addend))
	} else {
		bo.PutUint32(sec[off:], uint32(addend))
	}
	return nil
}

// gatherFacts reads what build needs from the (normalised) ELF file.
func gatherFacts(f *elf.File, data []byte) (*elfFacts, error) {
	syms, _, err := symbols(f)
	if err != nil {
		return nil, err
	}
	ef := &elfFacts{
		data:     data,
		bo:       f.ByteOrder,
		sections: f.Sections,
		kinds:    make([]secKind, len(f.Sections)),
		funcs:    make(map[string]elfSym),
		relocs:   make(map[int]map[uint64]elfReloc),
	}
	for i, s := range f.Sections {
		ef.kinds[i] = classify(s)
	}
	// Symbols by section, by offset; at one offset the last symbol wins, as
	// in cilium/ebpf's reader.
	bySec := make(map[int]map[uint64]elfSym)
	for _, sym := range syms {
		sec := int(sym.Section)
		if sec <= 0 || sec >= len(f.Sections) || !symbolIn(ef.kinds[sec], sym.Symbol) {
			continue
		}
		if bySec[sec] == nil {
			bySec[sec] = make(map[uint64]elfSym)
		}
		bySec[sec][sym.Value] = sym
	}
	for i, s := range f.Sections {
		list := sortedSyms(bySec[i])
		switch ef.kinds[i] {
		case kindProgram:
			for _, sym := range list {
				ef.funcs[sym.Name] = sym
				if s.Name != ".text" {
					ef.progOrder = append(ef.progOrder, sym.Name)
				}
			}
		case kindLegacyMaps:
			var names []string
			for _, sym := range list {
				names = append(names, sym.Name)
			}
			ef.legacyMaps = append(ef.legacyMaps, names)
			ef.mapOrder = append(ef.mapOrder, names...)
		case kindBTFMaps:
			for _, sym := range list {
				ef.mapOrder = append(ef.mapOrder, sym.Name)
			}
		case kindData:
			ef.mapOrder = append(ef.mapOrder, s.Name)
		}
	}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_REL {
			continue
		}
		target := int(s.Info)
		if target <= 0 || target >= len(f.Sections) || ef.kinds[target] != kindProgram {
			continue
		}
		rdata, err := sectionBytes(data, s)
		if err != nil {
			return nil, err
		}
		m := make(map[uint64]elfReloc)
		for k := 0; k+relSize <= len(rdata); k += relSize {
			off := ef.bo.Uint64(rdata[k:])
			symNo := int(elf.R_SYM64(ef.bo.Uint64(rdata[k+8:])))
			if symNo == 0 || symNo > len(syms) {
				continue // reported by normalise
			}
			m[off] = elfReloc{index: k / relSize, sym: syms[symNo-1]}
		}
		ef.relocs[target] = m
	}
	return ef, nil
}

func sortedSyms(m map[uint64]elfSym) []elfSym {
	list := make([]elfSym, 0, len(m))
	for _, s := range m {
		list = append(list, s)
	}
	slices.SortFunc(list, func(a, b elfSym) int { return cmpU64(a.Value, b.Value) })
	return list
}

// funcBytes returns the bytes of a function symbol's instructions.
func (ef *elfFacts) funcBytes(name string) (elfSym, []byte, error) {
	sym, ok := ef.funcs[name]
	if !ok {
		return sym, nil, fmt.Errorf("function %s: no symbol in the ELF file", name)
	}
	s := ef.sections[sym.Section]
	b, err := sectionBytes(ef.data, s)
	if err != nil {
		return sym, nil, err
	}
	end := sym.Value + sym.Size
	if end < sym.Value || end > uint64(len(b)) {
		return sym, nil, fmt.Errorf("function %s: bytes %d-%d lie outside section %s", name, sym.Value, end, s.Name)
	}
	return sym, b[sym.Value:end], nil
}

// isTailCallSection reports whether name is an iproute2 tail-call section
// "ID/KEY" (both numbers, as iproute2's sscanf("%i/%i") reads them).
func isTailCallSection(name string) (id, key uint32, ok bool) {
	a, b, found := strings.Cut(name, "/")
	if !found {
		return 0, 0, false
	}
	x, ok1 := parseCInt(a)
	y, ok2 := parseCInt(b)
	return x, y, ok1 && ok2
}

// parseCInt parses an unsigned integer as C's %i does: decimal, 0x hex or
// 0 octal.
func parseCInt(s string) (uint32, bool) {
	base := uint64(10)
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	if s == "" {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		v = v*base + d
		if v > 1<<32-1 {
			return 0, false
		}
	}
	return uint32(v), true
}

// retypeCallTargets finds the functions that bpf-to-bpf calls and function
// pointer loads reach and gives STT_FUNC to the local STT_NOTYPE symbols at
// those places. Old clang emitted static functions that way; cilium/ebpf
// takes such symbols for jump labels and then finds no function to call.
func retypeCallTargets(f *elf.File, kinds []secKind, data []byte, syms []elfSym, symtab *elf.Section) (int, error) {
	type place struct {
		sec int
		off uint64
	}
	targets := make(map[place]bool)
	bo := f.ByteOrder
	for i, s := range f.Sections {
		if kinds[i] != kindProgram {
			continue
		}
		text, err := sectionBytes(data, s)
		if err != nil {
			return 0, err
		}
		// Relocated calls and function pointers, by symbol.
		relocated := make(map[uint64]bool)
		for _, rs := range f.Sections {
			if rs.Type != elf.SHT_REL || int(rs.Info) != i {
				continue
			}
			rdata, err := sectionBytes(data, rs)
			if err != nil {
				return 0, err
			}
			for k := 0; k+relSize <= len(rdata); k += relSize {
				off := bo.Uint64(rdata[k:])
				symNo := int(elf.R_SYM64(bo.Uint64(rdata[k+8:])))
				relocated[off] = true
				if symNo == 0 || symNo > len(syms) || off%8 != 0 || off+8 > uint64(len(text)) {
					continue
				}
				sym := syms[symNo-1]
				ts := int(sym.Section)
				if ts <= 0 || ts >= len(f.Sections) || kinds[ts] != kindProgram {
					continue
				}
				ins := isa.Unmarshal(text[off:], bo)
				switch {
				case ins.IsLocalCall() && elf.ST_TYPE(sym.Info) == elf.STT_SECTION:
					targets[place{ts, uint64(int64(ins.Imm)+1) * 8}] = true
				case ins.IsLoadImm64() && elf.ST_TYPE(sym.Info) == elf.STT_SECTION:
					targets[place{ts, uint64(uint32(ins.Imm))}] = true
				case ins.IsLocalCall() || ins.IsLoadImm64():
					targets[place{ts, sym.Value}] = true
				}
			}
		}
		// Calls within the section that carry no relocation.
		for off := uint64(0); off+8 <= uint64(len(text)); off += 8 {
			ins := isa.Unmarshal(text[off:], bo)
			if ins.IsLocalCall() && !relocated[off] && ins.Imm != -1 {
				t := int64(off) + (int64(ins.Imm)+1)*8
				if t >= 0 {
					targets[place{i, uint64(t)}] = true
				}
			}
		}
	}
	n := 0
	for _, sym := range syms {
		sec := int(sym.Section)
		if sym.Name == "" || sec <= 0 || sec >= len(f.Sections) || kinds[sec] != kindProgram {
			continue
		}
		if elf.ST_TYPE(sym.Info) != elf.STT_NOTYPE || elf.ST_BIND(sym.Info) != elf.STB_LOCAL || !targets[place{sec, sym.Value}] {
			continue
		}
		at := symtab.Offset + uint64(sym.index)*symSize + 4
		if at >= uint64(len(data)) {
			return 0, fmt.Errorf("symbol %q: symbol table entry %d lies outside the file", sym.Name, sym.index)
		}
		data[at] = elf.ST_INFO(elf.STB_LOCAL, elf.STT_FUNC)
		n++
	}
	return n, nil
}

// retypeSectionEntries gives STT_FUNC to the local STT_NOTYPE symbol at
// offset 0 of each program section in which cilium/ebpf keeps no symbol at
// offset 0. Old clang typed no symbol, so a static function in its own
// section, as Open vSwitch's eBPF datapath declares all of them
// (`__section("tail-3") static int tail_action_tunnel_set(...)`), came out
// as a local STT_NOTYPE symbol, which cilium/ebpf skips as a jump label and
// then refuses the section ("missing symbols"). iproute2 and OVS's loader
// find programs by section and never needed the symbol's type. Jump labels
// (LBB0_3) follow the function's symbol at the same offset in the symbol
// table, so the first one is the function.
func retypeSectionEntries(f *elf.File, kinds []secKind, data []byte, syms []elfSym, symtab *elf.Section) (int, error) {
	first := make(map[int]elfSym) // section -> first local NOTYPE symbol at offset 0
	kept := make(map[int]bool)    // sections with a symbol cilium/ebpf keeps at offset 0
	for _, sym := range syms {
		sec := int(sym.Section)
		if sym.Name == "" || sym.Value != 0 || sec <= 0 || sec >= len(f.Sections) || kinds[sec] != kindProgram {
			continue
		}
		if symbolIn(kindProgram, sym.Symbol) {
			kept[sec] = true
			continue
		}
		if elf.ST_TYPE(sym.Info) != elf.STT_NOTYPE || elf.ST_BIND(sym.Info) != elf.STB_LOCAL {
			continue
		}
		if _, ok := first[sec]; !ok {
			first[sec] = sym
		}
	}
	n := 0
	for sec, sym := range first {
		if kept[sec] {
			continue
		}
		at := symtab.Offset + uint64(sym.index)*symSize + 4
		if at >= uint64(len(data)) {
			return 0, fmt.Errorf("symbol %q: symbol table entry %d lies outside the file", sym.Name, sym.index)
		}
		data[at] = elf.ST_INFO(elf.STB_LOCAL, elf.STT_FUNC)
		n++
	}
	return n, nil
}

// renameText renames .text to textAlias when it is the only program
// section and has code, so that cilium/ebpf, which hides the functions of
// .text (libbpf's subprograms), lists them as programs; and points the
// BTF.ext records of .text (func and line info, CO-RE relocations) at the
// new name. PREVAIL's test objects, and anything compiled without section
// attributes, are built so: the program to run is named when it runs. The
// name is restored in Program.Section. It returns the object, which may
// have grown.
func renameText(f *elf.File, data []byte) ([]byte, bool, error) {
	text := -1
	for i, s := range f.Sections {
		switch {
		case s.Name == textAlias:
			return data, false, nil // taken: leave the object as it is
		case classify(s) != kindProgram:
		case s.Name == ".text":
			text = i
		default:
			return data, false, nil // programs in other sections: .text holds subprograms
		}
	}
	if text < 0 {
		return data, false, nil
	}
	data, ok, err := renameBTFExtSection(f, data, ".text", textAlias)
	if err != nil || !ok {
		return data, false, err
	}
	bo := f.ByteOrder
	h, err := shdrAt(data, bo, text)
	if err != nil {
		return data, false, err
	}
	// sh_name: ".text" -> "text", the same string one byte on.
	bo.PutUint32(data[h:], bo.Uint32(data[h:])+1)
	return data, true, nil
}

// renameBTFExtSection points the .BTF.ext records of section from at the
// section name to: it appends to to the string table of .BTF (which moves,
// grown, to the end of the object) and rewrites each sec_name_off. It
// reports false when the BTF is laid out in a way it does not handle, and
// changes nothing then.
//
//	struct btf_header { u16 magic; u8 version, flags; u32 hdr_len;
//	    u32 type_off, type_len, str_off, str_len; };
//	struct btf_ext_header { u16 magic; u8 version, flags; u32 hdr_len;
//	    u32 func_info_off, func_info_len, line_info_off, line_info_len;
//	    u32 core_relo_off, core_relo_len; /* if hdr_len >= 32 */ };
//	each .BTF.ext block: u32 rec_size; then { u32 sec_name_off, num_info;
//	    num_info records of rec_size bytes } to its end.
func renameBTFExtSection(f *elf.File, data []byte, from, to string) ([]byte, bool, error) {
	extSec, btfSec := f.Section(".BTF.ext"), f.Section(".BTF")
	if extSec == nil || btfSec == nil {
		return data, true, nil // nothing refers to the name
	}
	e, err := sectionBytes(data, extSec)
	if err != nil {
		return data, false, err
	}
	b, err := sectionBytes(data, btfSec)
	if err != nil {
		return data, false, err
	}
	bo := f.ByteOrder
	if len(b) < 24 || len(e) < 24 {
		return data, false, nil // cilium/ebpf reports malformed BTF itself
	}
	strs := uint64(bo.Uint32(b[4:])) + uint64(bo.Uint32(b[16:]))
	strLen := uint64(bo.Uint32(b[20:]))
	if strs+strLen != uint64(len(b)) {
		return data, false, nil // strings are not last: cannot grow them in place
	}
	isFrom := func(off uint32) bool {
		at := strs + uint64(off)
		end := at + uint64(len(from))
		return end < uint64(len(b)) && string(b[at:end]) == from && b[end] == 0
	}
	// The sec_name_off fields to rewrite.
	var fields []uint64
	hdr := uint64(bo.Uint32(e[4:]))
	blocks := [][2]uint64{{8, 12}, {16, 20}}
	if hdr >= 32 && len(e) >= 32 {
		blocks = append(blocks, [2]uint64{24, 28})
	}
	for _, blk := range blocks {
		start := hdr + uint64(bo.Uint32(e[blk[0]:]))
		end := start + uint64(bo.Uint32(e[blk[1]:]))
		if end > uint64(len(e)) || start+4 > end {
			continue
		}
		rec := uint64(bo.Uint32(e[start:]))
		for at := start + 4; at+8 <= end; at += 8 + uint64(bo.Uint32(e[at+4:]))*rec {
			if isFrom(bo.Uint32(e[at:])) {
				fields = append(fields, extSec.Offset+at)
			}
		}
	}
	if len(fields) == 0 {
		return data, true, nil
	}
	if strLen+uint64(len(to))+1 > 1<<32-1 {
		return data, false, nil
	}
	// Move .BTF to the end of the object, with the new string.
	grown := append(slices.Clone(b), append([]byte(to), 0)...)
	bo.PutUint32(grown[20:], uint32(strLen)+uint32(len(to))+1)
	at := (len(data) + 7) &^ 7
	out := make([]byte, at, at+len(grown))
	copy(out, data)
	out = append(out, grown...)
	idx := slices.Index(f.Sections, btfSec)
	h, err := shdrAt(out, bo, idx)
	if err != nil {
		return data, false, err
	}
	bo.PutUint64(out[h+24:], uint64(at)) // sh_offset
	bo.PutUint64(out[h+shdrSizeAt:], uint64(len(grown)))
	for _, off := range fields {
		bo.PutUint32(out[off:], uint32(strLen))
	}
	return out, true, nil
}

// assignBadRelocs files each dropped relocation under the function whose
// instructions it was meant for.
func (ef *elfFacts) assignBadRelocs(bad []badReloc) error {
	if len(bad) == 0 {
		return nil
	}
	ef.badRelocs = make(map[string]error)
	for _, r := range bad {
		name := ""
		for n, sym := range ef.funcs {
			if int(sym.Section) == r.sec && sym.Value <= r.off && r.off < sym.Value+sym.Size {
				name = n
				break
			}
		}
		if name == "" {
			return fmt.Errorf("%w (and no function holds that instruction)", r.err)
		}
		if ef.badRelocs[name] == nil {
			ef.badRelocs[name] = r.err
		}
	}
	return nil
}
