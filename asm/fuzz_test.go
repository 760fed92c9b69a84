package asm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

// FuzzParse checks that both dialects give a program or an error, never a
// panic, and that what Parse accepts survives a trip through Disassemble.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.text)
	}
	for _, tc := range conformanceCases {
		f.Add(tc.text)
	}
	f.Add("a:\nif r1 == r2 goto a\ncall a\nr1 = func(a) ll\ngotol a")
	f.Add("0: (18) r1 = 0x5\n1: (95) exit")
	f.Add("lddw %r0, 0x1\nja exit\nexit\ncall local exit")
	if files, err := filepath.Glob("testdata/clang/*_v3.objdump"); err == nil {
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(string(b))
			}
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		if prog, err := Parse(src); err == nil {
			checkRoundTrip(t, prog)
		}
		if prog, err := ParseConformance(src); err == nil {
			checkRoundTrip(t, prog)
		}
	})
}

// checkRoundTrip checks Parse(Disassemble(p)) == p for the instructions of
// p that the text can express: all of them when p is valid, and each valid
// instruction on its own otherwise.
func checkRoundTrip(t *testing.T, prog []isa.Instruction) {
	t.Helper()
	if isa.ValidateProgram(prog) == nil {
		for _, style := range []Style{Plain, Listing, Labels, Listing | Labels} {
			text := Disassemble(prog, style)
			got, err := Parse(text)
			if err != nil {
				t.Fatalf("style %d: Parse(Disassemble(p)): %v\n%s", style, err, text)
			}
			if !equal(got, prog) {
				t.Fatalf("style %d: Parse(Disassemble(p)) != p: %s\n%s", style, firstDiff(got, prog), text)
			}
		}
		return
	}
	for i := 0; i < len(prog); i++ {
		one := prog[i : i+1]
		if prog[i].IsLoadImm64() && i+1 < len(prog) {
			one = prog[i : i+2]
		}
		i += len(one) - 1
		if !validAlone(one) {
			continue
		}
		text := Disassemble(one, Plain)
		got, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		if !equal(got, one) {
			t.Fatalf("Parse(%q) = %s, want %s", text, hexOf(got), hexOf(one))
		}
	}
}

// validAlone reports whether an instruction (one slot, or a lddw's two) is
// valid apart from where its jump lands.
func validAlone(ins []isa.Instruction) bool {
	if ins[0].Validate() != nil {
		return false
	}
	if ins[0].IsLoadImm64() {
		return len(ins) == 2 && isa.ValidateProgram([]isa.Instruction{ins[0], ins[1], {Op: isa.OpExit}}) == nil
	}
	return true
}

// FuzzDisassemble decodes random bytes and checks Parse(Disassemble(p)) == p
// in every style, for the whole program when isa.ValidateProgram accepts it
// and for every valid instruction in it otherwise. Disassemble must not
// panic on any input.
func FuzzDisassemble(f *testing.F) {
	for _, tc := range parseCases {
		if tc.hex != "" {
			f.Add(isa.Encode(append(mustHex(f, tc.hex), isa.Instruction{Op: isa.OpExit})))
		}
	}
	if objs, err := filepath.Glob("testdata/clang/*_v4.o"); err == nil {
		for _, obj := range objs {
			for _, prog := range elfPrograms(f, obj) {
				f.Add(isa.Encode(prog))
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		prog, err := isa.Decode(b[:len(b)/8*8])
		if err != nil {
			t.Fatal(err)
		}
		for _, style := range []Style{Plain, Listing, Labels, Listing | Labels} {
			if s := Disassemble(prog, style); len(prog) > 0 && !strings.HasSuffix(s, "\n") {
				t.Fatalf("output does not end in a newline: %q", s)
			}
		}
		checkRoundTrip(t, prog)
	})
}
