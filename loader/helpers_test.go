package loader

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

// objects returns the committed test objects.
func objects(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob("testdata/*.o")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no test objects (%v): run go generate", err)
	}
	return files
}

// unresolvable are the test objects' programs that refer to a symbol no
// object defines, by object and program, with the symbol: the loader
// fails them, and so does the kernel.
var unresolvable = map[string]map[string]string{
	"externs.o": {"uses_extern_map": "shared_counts", "uses_extern_var": "shared_total"},
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustLoad(tb testing.TB, path string) *Object {
	tb.Helper()
	obj, err := LoadFile(path, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return obj
}

func mustLoadBytes(tb testing.TB, b []byte) *Object {
	tb.Helper()
	obj, err := Load(bytes.NewReader(b), Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return obj
}

func mustProgram(tb testing.TB, obj *Object, name string) *Program {
	tb.Helper()
	p := obj.Program(name)
	if p == nil {
		tb.Fatalf("no program %s", name)
	}
	return p
}

func mustMap(tb testing.TB, obj *Object, name string) int {
	tb.Helper()
	i := obj.MapIndex(name)
	if i < 0 {
		tb.Fatalf("no map %s", name)
	}
	return i
}

// rawFunc is a function as the ELF file has it, read without the loader.
type rawFunc struct {
	insns []isa.Instruction
	// fixed marks the slots a loader rewrites: relocated ones (both halves
	// of a lddw) and bpf-to-bpf calls.
	fixed []bool
}

// rawFuncs reads every function of the program sections of an ELF file
// with debug/elf alone. A symbol without a size extends to the next symbol
// of its section.
func rawFuncs(tb testing.TB, b []byte) map[string]rawFunc {
	tb.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	syms, err := f.Symbols()
	if err != nil {
		tb.Fatal(err)
	}
	relocated := make(map[int]map[uint64]bool)
	for _, s := range f.Sections {
		if s.Type != elf.SHT_REL && s.Type != elf.SHT_RELA {
			continue
		}
		data, _ := s.Data()
		ent := 16
		if s.Type == elf.SHT_RELA {
			ent = 24
		}
		m := make(map[uint64]bool)
		for k := 0; k+ent <= len(data); k += ent {
			m[f.ByteOrder.Uint64(data[k:])] = true
		}
		relocated[int(s.Info)] = m
	}
	out := make(map[string]rawFunc)
	for _, sym := range syms {
		sec := int(sym.Section)
		if sec <= 0 || sec >= len(f.Sections) || sym.Name == "" {
			continue
		}
		s := f.Sections[sec]
		if s.Flags&elf.SHF_EXECINSTR == 0 || elf.ST_TYPE(sym.Info) == elf.STT_SECTION {
			continue
		}
		if elf.ST_TYPE(sym.Info) == elf.STT_NOTYPE && elf.ST_BIND(sym.Info) == elf.STB_LOCAL && (len(sym.Name) > 3 && sym.Name[:3] == "LBB") {
			continue // a jump label
		}
		end := sym.Value + sym.Size
		if sym.Size == 0 {
			end = s.Size
			for _, o := range syms {
				if int(o.Section) == sec && o.Value > sym.Value && o.Value < end && !(len(o.Name) > 3 && o.Name[:3] == "LBB") && o.Name != "" {
					end = o.Value
				}
			}
		}
		data, err := s.Data()
		if err != nil {
			tb.Fatal(err)
		}
		prog, err := isa.DecodeOrder(data[sym.Value:end], f.ByteOrder)
		if err != nil {
			tb.Fatal(err)
		}
		fixed := make([]bool, len(prog))
		for j := range prog {
			off := sym.Value + uint64(j*8)
			if relocated[sec][off] {
				fixed[j] = true
				if prog[j].IsLoadImm64() && j+1 < len(prog) {
					fixed[j+1] = true
				}
			}
			if prog[j].IsLocalCall() {
				fixed[j] = true
			}
		}
		out[sym.Name] = rawFunc{prog, fixed}
	}
	return out
}

// toRELA rewrites every REL section of an ELF object as RELA, moving each
// implicit addend from the relocated field into r_addend and zeroing the
// field, as a RELA producer would emit it. The object grows: the RELA
// sections are appended at the end of the file and their headers point
// there. addend, if set, changes the addend of chosen relocations.
func toRELA(tb testing.TB, b []byte, addend func(sec string, sym elf.Symbol, implicit int64) int64) []byte {
	tb.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	syms, _ := f.Symbols()
	out := slices.Clone(b)
	bo := f.ByteOrder.(binary.AppendByteOrder).(interface {
		binary.ByteOrder
		binary.AppendByteOrder
	})
	shoff := bo.Uint64(out[0x28:])
	for i, s := range f.Sections {
		if s.Type != elf.SHT_REL {
			continue
		}
		target := f.Sections[s.Info]
		data, _ := s.Data()
		var rela []byte
		for k := 0; k+16 <= len(data); k += 16 {
			off := bo.Uint64(data[k:])
			info := bo.Uint64(data[k+8:])
			field := out[target.Offset+off:]
			var implicit int64
			typ := elf.R_TYPE64(info)
			switch {
			case target.Flags&elf.SHF_EXECINSTR != 0:
				implicit = int64(int32(bo.Uint32(field[4:])))
				bo.PutUint32(field[4:], 0)
			case typ == 2: // R_BPF_64_ABS64
				implicit = int64(bo.Uint64(field))
				bo.PutUint64(field, 0)
			case typ == 3 || typ == 4:
				implicit = int64(bo.Uint32(field))
				bo.PutUint32(field, 0)
			}
			a := implicit
			if addend != nil {
				sym := elf.Symbol{}
				if n := int(elf.R_SYM64(info)); n > 0 && n <= len(syms) {
					sym = syms[n-1]
				}
				a = addend(target.Name, sym, implicit)
			}
			rela = bo.AppendUint64(rela, off)
			rela = bo.AppendUint64(rela, info)
			rela = bo.AppendUint64(rela, uint64(a))
		}
		for len(out)%8 != 0 {
			out = append(out, 0)
		}
		at := uint64(len(out))
		out = append(out, rela...)
		h := shoff + uint64(i)*64
		bo.PutUint32(out[h+4:], uint32(elf.SHT_RELA))
		bo.PutUint64(out[h+24:], at)
		bo.PutUint64(out[h+32:], uint64(len(rela)))
		bo.PutUint64(out[h+56:], 24)
	}
	return out
}

// mapNames rewrites the map indices of a program's lddw slots into names, so
// programs of two Objects can be compared.
type namedSlot struct {
	isa.Instruction
	Map string
}

func named(obj *Object, p *Program) []namedSlot {
	out := make([]namedSlot, len(p.Insns))
	for i, ins := range p.Insns {
		out[i].Instruction = ins
		if ins.IsLoadImm64() && (ins.Src == isa.PseudoMapIdx || ins.Src == isa.PseudoMapIdxValue) && int(ins.Imm) < len(obj.Maps) {
			out[i].Imm = 0
			out[i].Map = obj.Maps[ins.Imm].Name
		}
	}
	return out
}
