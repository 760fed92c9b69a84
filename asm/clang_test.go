package asm

import (
	"debug/elf"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

// The objects in testdata/clang were built by clang-19 from the .c files
// there, at -mcpu=v1 to v4, and listed by llvm-objdump-19 -d (two also with
// --mattr=+alu32); insns.o holds every valid instruction form as raw bytes.
// See testdata/clang/Makefile. These tests need neither clang nor
// llvm-objdump.

// elfPrograms returns the instructions of each executable section of an
// object, read directly from its bytes.
func elfPrograms(tb testing.TB, path string) map[string][]isa.Instruction {
	tb.Helper()
	f, err := elf.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	progs := make(map[string][]isa.Instruction)
	for _, s := range f.Sections {
		if s.Type != elf.SHT_PROGBITS || s.Flags&elf.SHF_EXECINSTR == 0 || s.Size == 0 {
			continue
		}
		b, err := s.Data()
		if err != nil {
			tb.Fatal(err)
		}
		if progs[s.Name], err = isa.Decode(b); err != nil {
			tb.Fatalf("section %s: %v", s.Name, err)
		}
	}
	return progs
}

var reSectionHeader = regexp.MustCompile(`(?m)^Disassembly of section (.*):$`)

// splitListing cuts an llvm-objdump -d listing into the text of each section.
func splitListing(text string) map[string]string {
	out := make(map[string]string)
	idx := reSectionHeader.FindAllStringSubmatchIndex(text, -1)
	for i, m := range idx {
		end := len(text)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		out[text[m[2]:m[3]]] = text[m[0]:end]
	}
	return out
}

func listings(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob("testdata/clang/*.objdump")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no listings in testdata/clang: %v", err)
	}
	return files
}

func objectOf(listing string) string {
	return strings.TrimSuffix(strings.TrimSuffix(listing, ".objdump"), ".alu32") + ".o"
}

// TestParse_llvmObjdump parses each committed listing, bytes column
// included, and compares it with the section bytes of the object it came
// from: they must be identical, slot for slot.
func TestParse_llvmObjdump(t *testing.T) {
	for _, file := range listings(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			text, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want := elfPrograms(t, objectOf(file))
			sections := splitListing(string(text))
			if len(sections) != len(want) {
				t.Errorf("listing has %d sections, object has %d executable ones", len(sections), len(want))
			}
			for name, prog := range want {
				got, err := Parse(sections[name])
				if err != nil {
					t.Fatalf("section %s: %v", name, err)
				}
				if !equal(got, prog) {
					t.Errorf("section %s: %s", name, firstDiff(got, prog))
				}
			}
		})
	}
}

var reListingLine = regexp.MustCompile(`^\s*(\d+):\t([0-9a-f ]+)\t(.*)$`)

// TestParse_llvmObjdumpTextOnly parses the text column of every listing
// line on its own, without the bytes beside it, and compares it with the
// object's bytes. The text must encode exactly those bytes except where
// LLVM's text is known to lose fields (the lossy cases of asm.lossy and
// "<unknown>"); the test counts each kind so a change shows.
func TestParse_llvmObjdumpTextOnly(t *testing.T) {
	var exact, lossyText, unknown int
	for _, file := range listings(t) {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		want := elfPrograms(t, objectOf(file))
		for name, section := range splitListing(string(text)) {
			prog := want[name]
			for _, line := range strings.Split(section, "\n") {
				m := reListingLine.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				var idx int
				for _, c := range m[1] {
					idx = idx*10 + int(c-'0')
				}
				raw := mustHex(t, m[2])
				if idx+len(raw) > len(prog) || !equal(prog[idx:idx+len(raw)], raw) {
					t.Fatalf("%s %s: slot %d: bytes column %s does not match the object", file, name, idx, m[2])
				}
				if m[3] == "<unknown>" {
					unknown++
					continue
				}
				got, err := Parse(m[3])
				switch {
				case err != nil:
					t.Errorf("%s %s: slot %d: %v", file, name, idx, err)
				case equal(got, raw):
					exact++
				case lossy(got, raw):
					lossyText++
				default:
					t.Errorf("%s %s: slot %d: text %q encodes %s, object has %s", file, name, idx, m[3], hexOf(got), m[2])
				}
			}
		}
	}
	t.Logf("%d lines encode their bytes exactly, %d lose a field LLVM does not print, %d are <unknown>", exact, lossyText, unknown)
	if exact == 0 || lossyText == 0 || unknown == 0 {
		t.Errorf("expected all three kinds of line in the listings")
	}
}

// TestDisassemble_llvmObjects checks Parse(Disassemble(p)) == p, in every
// style, on the sections of every object, including insns.o with every
// valid instruction form and two kernel extensions.
func TestDisassemble_llvmObjects(t *testing.T) {
	objs, _ := filepath.Glob("testdata/clang/*.o")
	for _, obj := range objs {
		for name, prog := range elfPrograms(t, obj) {
			for _, style := range []Style{Plain, Listing, Labels, Listing | Labels} {
				text := Disassemble(prog, style)
				got, err := Parse(text)
				if err != nil {
					t.Fatalf("%s %s style %d: %v", obj, name, style, err)
				}
				if !equal(got, prog) {
					t.Errorf("%s %s style %d: %s", obj, name, style, firstDiff(got, prog))
				}
			}
		}
	}
}

// TestDisassemble_matchesObjdump compares Disassemble(p, Listing) with the
// listing llvm-objdump printed, line by line, where isa.Format uses LLVM's
// text (everywhere but the spellings format.go documents): a packet parser,
// and clang's can_loop loops (may_goto).
func TestDisassemble_matchesObjdump(t *testing.T) {
	for _, name := range []string{"xdp_parse_v3", "can_loop"} {
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile("testdata/clang/" + name + ".objdump")
			if err != nil {
				t.Fatal(err)
			}
			prog := elfPrograms(t, "testdata/clang/"+name+".o")["xdp"]
			var want []string
			for _, line := range strings.Split(splitListing(string(text))["xdp"], "\n") {
				if reListingLine.MatchString(line) {
					want = append(want, reAnnotation.ReplaceAllString(line, ""))
				}
			}
			got := strings.Split(strings.TrimSuffix(Disassemble(prog, Listing), "\n"), "\n")
			if len(got) != len(want) {
				t.Fatalf("got %d lines, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("line %d:\ngot  %q\nwant %q", i, got[i], want[i])
				}
			}
		})
	}
}
