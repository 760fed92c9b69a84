package main

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/internal/conformance"
	"github.com/waggle-bpf/waggle/isa"
)

// Input formats of a program argument.
const (
	formatAuto        = "auto"
	formatAsm         = "asm"         // LLVM / kernel syntax
	formatConformance = "conformance" // the conformance suite's assembler dialect
	formatData        = "data"        // a conformance .data test file
	formatBin         = "bin"         // raw little-endian bytecode
	formatHex         = "hex"         // hex text
	formatELF         = "elf"         // an ELF object; --section picks the program
)

var formats = []string{formatAuto, formatAsm, formatConformance, formatData, formatBin, formatHex, formatELF}

// program is a program read from the command line, with where it came from.
type program struct {
	insns  []isa.Instruction
	source string
	// mem is the input memory the source carries (a .data file's "-- mem").
	mem []byte
	// relocations counts the relocation entries of an ELF section: such a
	// program refers to maps or global data the loader must resolve.
	relocations int
}

// readProgram reads a program from arg: a file path ("-" for stdin) or, when
// no such file exists, inline hex bytecode.
func (e *env) readProgram(arg, format, section string) (*program, error) {
	if !contains(formats, format) {
		return nil, fmt.Errorf("unknown format %q, want one of %s", format, strings.Join(formats, ", "))
	}
	var data []byte
	var err error
	switch {
	case arg == "-":
		data, err = io.ReadAll(e.stdin)
		arg = "stdin"
	default:
		data, err = os.ReadFile(arg)
		if errors.Is(err, os.ErrNotExist) && (format == formatAuto || format == formatHex) && looksHex(arg) {
			data, err, arg, format = []byte(arg), nil, "command line", formatHex
		}
	}
	if err != nil {
		return nil, err
	}
	if format == formatAuto {
		format = detectFormat(arg, data)
	}
	p := &program{source: arg}
	switch format {
	case formatELF:
		p.insns, p.relocations, p.source, err = readELF(arg, data, section)
	case formatBin:
		p.insns, err = isa.Decode(data)
	case formatHex:
		var b []byte
		if b, err = parseHex(string(data)); err == nil {
			p.insns, err = isa.Decode(b)
		}
	case formatAsm:
		p.insns, err = asm.Parse(string(data))
	case formatConformance:
		p.insns, err = asm.ParseConformance(string(data))
	case formatData:
		var t *conformance.Test
		if t, err = conformance.Parse(filepath.Base(arg), data); err == nil {
			p.insns, err = conformance.Assemble(t)
			p.mem = t.Mem
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", arg, err)
	}
	if section != "" && format != formatELF {
		return nil, fmt.Errorf("%s: --section applies only to ELF objects", arg)
	}
	return p, nil
}

func detectFormat(name string, data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte(elf.ELFMAG)):
		return formatELF
	case strings.HasSuffix(name, ".data"):
		return formatData
	case strings.HasSuffix(name, ".bin"):
		return formatBin
	case strings.HasSuffix(name, ".hex"):
		return formatHex
	case !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0:
		return formatBin
	case looksHex(string(data)):
		return formatHex
	case bytes.Contains(data, []byte("%r")):
		return formatConformance
	}
	return formatAsm
}

// looksHex reports whether s is nothing but hex bytes and separators.
func looksHex(s string) bool {
	_, err := parseHex(s)
	return err == nil && strings.TrimSpace(s) != ""
}

// parseHex reads hex text in the forms tools print: "b7 00 00 00 01 00 00
// 00", "b700000001000000", "\x00" escapes are not accepted. Tokens written as
// 0x followed by exactly 16 digits are 64-bit instruction words, the
// conformance suite's "-- raw" form, stored little-endian; other tokens are
// byte strings.
func parseHex(s string) ([]byte, error) {
	var out []byte
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == ','
	})
	if len(fields) == 0 {
		return nil, errors.New("no hex digits")
	}
	for _, f := range fields {
		if w, ok := strings.CutPrefix(strings.ToLower(f), "0x"); ok && len(w) == 16 {
			v, err := strconv.ParseUint(w, 16, 64)
			if err != nil {
				return nil, fmt.Errorf("bad instruction word %q: %w", f, err)
			}
			out = append(out, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
			continue
		}
		f = strings.TrimPrefix(strings.ToLower(f), "0x")
		b, err := hex.DecodeString(f)
		if err != nil {
			return nil, fmt.Errorf("bad hex %q: %w", f, err)
		}
		out = append(out, b...)
	}
	return out, nil
}

// readELF returns the instructions of one executable section of an ELF
// object. The bytes come straight from the section, so no encoder can alter
// them. With section empty the object must have exactly one.
func readELF(name string, data []byte, section string) ([]isa.Instruction, int, string, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, 0, "", fmt.Errorf("not a valid ELF object: %w", err)
	}
	if f.Machine != elf.EM_BPF {
		return nil, 0, "", fmt.Errorf("ELF machine is %v, not EM_BPF", f.Machine)
	}
	progs := programSections(f)
	var s *elf.Section
	if section == "" {
		switch len(progs) {
		case 0:
			return nil, 0, "", errors.New("no executable section with instructions")
		case 1:
			s = progs[0]
		default:
			return nil, 0, "", fmt.Errorf("%d program sections (%s): choose one with --section", len(progs), sectionNames(progs))
		}
	} else {
		s = f.Section(section)
		if s == nil {
			return nil, 0, "", fmt.Errorf("no section %q; program sections are %s", section, sectionNames(progs))
		}
	}
	b, err := s.Data()
	if err != nil {
		return nil, 0, "", fmt.Errorf("section %s: %w", s.Name, err)
	}
	insns, err := isa.DecodeOrder(b, f.ByteOrder)
	if err != nil {
		return nil, 0, "", fmt.Errorf("section %s: %w", s.Name, err)
	}
	return insns, relocationCount(f, s), fmt.Sprintf("%s section %s", name, s.Name), nil
}

// programSections lists the sections holding code, in file order.
func programSections(f *elf.File) []*elf.Section {
	var out []*elf.Section
	for _, s := range f.Sections {
		if s.Type == elf.SHT_PROGBITS && s.Flags&elf.SHF_EXECINSTR != 0 && s.Size > 0 {
			out = append(out, s)
		}
	}
	return out
}

func sectionNames(ss []*elf.Section) string {
	var names []string
	for _, s := range ss {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// relocationCount counts the REL and RELA entries that apply to section s.
func relocationCount(f *elf.File, s *elf.Section) int {
	n := 0
	for i, r := range f.Sections {
		if (r.Type == elf.SHT_REL || r.Type == elf.SHT_RELA) && int(r.Info) < len(f.Sections) && f.Sections[r.Info] == s && r.Entsize > 0 {
			n += int(r.Size / r.Entsize)
		}
		_ = i
	}
	return n
}

// symbols returns the function symbols of section s by offset in slots, for
// labels in a listing.
func symbols(f *elf.File, s *elf.Section) map[int]string {
	syms, err := f.Symbols()
	if err != nil {
		return nil
	}
	out := map[int]string{}
	for _, sym := range syms {
		if int(sym.Section) < len(f.Sections) && f.Sections[sym.Section] == s && elf.ST_TYPE(sym.Info) == elf.STT_FUNC {
			out[int(sym.Value/isa.InstructionSize)] = sym.Name
		}
	}
	return out
}

// readMemory returns the input memory from --mem (a file) or --mem-hex.
func readMemory(file, hexText string) ([]byte, bool, error) {
	switch {
	case file != "" && hexText != "":
		return nil, false, errors.New("give --mem or --mem-hex, not both")
	case file != "":
		b, err := os.ReadFile(file)
		return b, true, err
	case hexText != "":
		b, err := parseHex(hexText)
		if err != nil {
			return nil, false, fmt.Errorf("--mem-hex: %w", err)
		}
		return b, true, nil
	}
	return nil, false, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// isELF reports whether path is a file starting with the ELF magic.
func isELF(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	return err == nil && string(magic[:]) == elf.ELFMAG
}
