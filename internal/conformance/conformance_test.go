package conformance

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/isa"
)

// The suite is read from the repository's copy, so a clean clone runs
// these tests.
const (
	suiteDir    = "../../testdata/conformance/tests"
	negativeDir = "../../testdata/conformance/negative"
	bugsDir     = "../../testdata/kernel-bugs"
)

func glob(tb testing.TB, pattern string) []string {
	tb.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		tb.Fatalf("no files match %s: %v", pattern, err)
	}
	return files
}

func mustRead(tb testing.TB, path string) *Test {
	tb.Helper()
	test, err := ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return test
}

// TestSuite reads and assembles every file in tests/, checks the counts the
// README gives, and checks that every program is valid.
func TestSuite(t *testing.T) {
	files := glob(t, filepath.Join(suiteDir, "*.data"))
	if len(files) != 313 {
		t.Errorf("%d files in tests/, the README says 313", len(files))
	}
	var withMem, withRaw, plainZero int
	for _, f := range files {
		test := mustRead(t, f)
		if !test.HasResult || test.HasError {
			t.Errorf("%s: HasResult %v, HasError %v; every suite file has a result and no error", f, test.HasResult, test.HasError)
		}
		if test.Mem != nil {
			withMem++
		}
		if test.Raw != nil {
			withRaw++
		}
		if test.Result == 0 {
			plainZero++
		}
		prog, err := Assemble(test)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if err := isa.ValidateProgram(prog); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if withMem != 40 || withRaw != 1 {
		t.Errorf("%d files with memory and %d with raw programs, the README says 40 and 1", withMem, withRaw)
	}
	t.Logf("%d files, %d with memory, %d with a raw program, %d expecting 0", len(files), withMem, withRaw, plainZero)
}

func TestLddwAsmEqualsRaw(t *testing.T) {
	test := mustRead(t, filepath.Join(suiteDir, "lddw.data"))
	if test.Raw == nil {
		t.Fatal("lddw.data has no raw program")
	}
	prog, err := asm.ParseConformance(test.Asm)
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) != len(test.Raw) {
		t.Fatalf("asm has %d slots, raw %d", len(prog), len(test.Raw))
	}
	for i := range prog {
		if prog[i] != test.Raw[i] {
			t.Errorf("slot %d: asm %v, raw %v", i, prog[i], test.Raw[i])
		}
	}
	if test.Result != 0x1122334455667788 {
		t.Errorf("result %#x", test.Result)
	}
}

// TestNegative checks each of the 15 malformed or edge-case files in
// negative/ gives the error, or the reading, the README describes.
func TestNegative(t *testing.T) {
	for _, tc := range []struct {
		file string
		// readErr: Parse fails with this class; asmErr: Assemble fails with
		// an error containing this text.
		readErr error
		asmErr  string
		check   func(t *testing.T, test *Test, prog []isa.Instruction)
	}{
		{file: "empty.data", readErr: ErrNoExpectation},
		{file: "empty_instructions.data", asmErr: ErrNoProgram.Error()},
		{file: "invalid_unknown_directive.data", readErr: ErrUnknownSection},
		{file: "invalid_imm32_dec_range.data", asmErr: "invalid_imm32_dec_range.data: line 5: immediate 2147483648 does not fit in 32 bits"},
		{file: "invalid_imm32_hex_range.data", asmErr: "line 5: immediate 0x100000000 does not fit in 32 bits"},
		{file: "invalid_label.data", asmErr: `line 4: undefined label "NOT_A_LABEL"`},
		{file: "invalid_lock.data", asmErr: "line 4: invalid number of operands for lock"},
		{file: "invalid_lock2.data", asmErr: "line 4: invalid number of operands for lock"},
		{file: "invalid_mnemonic.data", asmErr: `line 5: invalid mnemonic "ldxq"`},
		{file: "invalid_offset.data", asmErr: `line 4: invalid memory operand "%r1"`},
		{file: "invalid_offset_range.data", asmErr: "line 5: offset +0x10000 does not fit in 16 bits"},
		{file: "invalid_operand_count.data", asmErr: "line 4: lddw takes 2 operand(s)"},
		{file: "invalid_register.data", asmErr: `line 4: unknown register "%r50"`},
		{
			// A valid program (r0 |= r10) that expects the load to fail
			// with "Invalid": an edge case of the upstream runner's error
			// comparison; Linux's verifier does reject the pointer
			// arithmetic, RFC 9669 does not.
			file: "error.data",
			check: func(t *testing.T, test *Test, prog []isa.Instruction) {
				if !test.HasError || test.Error != "Invalid" || test.HasResult {
					t.Errorf("error %q (HasError %v, HasResult %v), want only \"Invalid\"", test.Error, test.HasError, test.HasResult)
				}
				if err := isa.ValidateProgram(prog); err != nil {
					t.Error(err)
				}
			},
		},
		{
			// The expected result is deliberately wrong in its high bits:
			// the load of bytes 2-9 of the memory gives 0x8877665544332211.
			file: "incorrect_return_value_high_bits.data",
			check: func(t *testing.T, test *Test, prog []isa.Instruction) {
				loaded := uint64(0)
				for i := 9; i >= 2; i-- {
					loaded = loaded<<8 | uint64(test.Mem[i])
				}
				if loaded != 0x8877665544332211 || test.Result != 0x8977665544332211 {
					t.Errorf("loaded %#x, expected %#x: want 0x8877665544332211 and 0x8977665544332211", loaded, test.Result)
				}
				if err := isa.ValidateProgram(prog); err != nil {
					t.Error(err)
				}
			},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			test, err := ReadFile(filepath.Join(negativeDir, tc.file))
			if tc.readErr != nil {
				if !errors.Is(err, tc.readErr) {
					t.Fatalf("ReadFile: %v, want %v", err, tc.readErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			prog, err := Assemble(test)
			if tc.asmErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.asmErr) {
					t.Fatalf("Assemble: %v, want an error containing %q", err, tc.asmErr)
				}
				if tc.asmErr != ErrNoProgram.Error() {
					var aerr *asm.Error
					if !errors.As(err, &aerr) {
						t.Errorf("Assemble error %v is not an *asm.Error", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, test, prog)
		})
	}
	all := glob(t, filepath.Join(negativeDir, "*.data"))
	unused := glob(t, filepath.Join(negativeDir, "unused-*.data"))
	if len(all)-len(unused) != 15 {
		t.Errorf("%d files in negative/ besides unused-*, want 15", len(all)-len(unused))
	}
}

// TestUnused reads the 45 negative/unused-* files as byte lines (README §5)
// and checks that isa.ValidateProgram rejects each program for its reserved
// field.
func TestUnused(t *testing.T) {
	files := glob(t, filepath.Join(negativeDir, "unused-*.data"))
	if len(files) != 45 {
		t.Errorf("%d unused-* files, want 45", len(files))
	}
	var accepted []string
	for _, f := range files {
		test := mustRead(t, f)
		if !test.HasError || test.Error != "" || test.HasResult {
			t.Errorf("%s: HasError %v, Error %q, HasResult %v; want an empty -- error only", f, test.HasError, test.Error, test.HasResult)
		}
		prog, err := Assemble(test)
		if err != nil {
			t.Fatal(err)
		}
		if len(prog) != 2 || prog[1].Op != isa.OpExit {
			t.Errorf("%s: %d slots %v, want an instruction and exit", f, len(prog), prog)
		}
		err = isa.ValidateProgram(prog)
		if err == nil {
			accepted = append(accepted, filepath.Base(f))
			continue
		}
		// The file name ends in the field that is set: unused-add_imm-src.
		name := strings.TrimSuffix(filepath.Base(f), ".data")
		field := map[string]string{"offset": "off", "src": "src", "imm": "imm", "dst": "dst"}[name[strings.LastIndexByte(name, '-')+1:]]
		var verr *isa.Error
		if !errors.As(err, &verr) || verr.Index != 0 || !errors.Is(err, isa.ErrReserved) || !strings.HasPrefix(verr.Detail, field+" ") {
			t.Errorf("%s: %v, want a reserved-field error for %s at instruction 0", f, err, field)
		}
	}
	if len(accepted) > 0 {
		t.Errorf("isa.ValidateProgram accepts %d of %d unused-* programs: %s", len(accepted), len(files), strings.Join(accepted, ", "))
	}
}

// TestKernelBugs reads the regression cases where Linux contradicts RFC
// 9669: raw programs with memory and the RFC's result.
func TestKernelBugs(t *testing.T) {
	for _, f := range glob(t, filepath.Join(bugsDir, "*.data")) {
		test := mustRead(t, f)
		prog, err := Assemble(test)
		if err != nil {
			t.Fatal(err)
		}
		if test.Raw == nil || test.Mem == nil || !test.HasResult {
			t.Errorf("%s: want a raw program, memory and a result", f)
		}
		if err := isa.ValidateProgram(prog); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       Test
		prog       string // Disassemble(prog) when the program assembles
	}{
		{
			name: "crlf, comments, last result wins",
			data: "# header\r\n-- asm\r\nmov %r0, 1 # one\r\n\r\nexit\r\n-- result\r\n0x5\r\n0x10000000A#\r\n",
			want: Test{Asm: "mov %r0, 1\nexit", Result: 0x10000000a, HasResult: true},
			prog: "r0 = 0x1\nexit\n",
		},
		{
			name: "decimal and negative results",
			data: "-- asm\nexit\n-- result\n-1",
			want: Test{Asm: "exit", Result: ^uint64(0), HasResult: true},
		},
		{
			name: "raw words, hex and decimal, several per line",
			data: "-- raw\n0x00000001000000b7 149\n-- result\n1",
			want: Test{Raw: []isa.Instruction{{Op: 0xb7, Imm: 1}, {Op: 0x95}}, Result: 1, HasResult: true},
			prog: "r0 = 0x1\nexit\n",
		},
		{
			name: "raw byte lines win over asm",
			data: "-- asm\nmov %r0, 2\nexit\n-- raw\nb7 00 00 00 01 00 00 00\n95  00 00 00 00 00 00 00\n-- error\n",
			want: Test{Asm: "mov %r0, 2\nexit", Raw: []isa.Instruction{{Op: 0xb7, Imm: 1}, {Op: 0x95}}, HasError: true},
			prog: "r0 = 0x1\nexit\n",
		},
		{
			name: "memory over lines, c and note sections ignored, last error wins",
			data: "-- c\nint main() { return 0; } // i - 1\n-- mem\naa bb\n0x11\n-- no register offset\ncall instruction\n-- asm\nexit\n-- error\nfirst\nsecond one",
			want: Test{Asm: "exit", Mem: []byte{0xaa, 0xbb, 0x11}, Error: "second one", HasError: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("x", []byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if got.Asm != tc.want.Asm || got.Result != tc.want.Result || got.HasResult != tc.want.HasResult ||
				got.Error != tc.want.Error || got.HasError != tc.want.HasError ||
				string(got.Mem) != string(tc.want.Mem) || len(got.Raw) != len(tc.want.Raw) {
				t.Fatalf("got %+v\nwant %+v", *got, tc.want)
			}
			for i := range got.Raw {
				if got.Raw[i] != tc.want.Raw[i] {
					t.Errorf("raw slot %d: %v, want %v", i, got.Raw[i], tc.want.Raw[i])
				}
			}
			if tc.prog != "" {
				prog, err := Assemble(got)
				if err != nil {
					t.Fatal(err)
				}
				if s := asm.Disassemble(prog, asm.Plain); s != tc.prog {
					t.Errorf("program %q, want %q", s, tc.prog)
				}
			}
		})
	}
}

func TestParse_errors(t *testing.T) {
	for _, tc := range []struct {
		data string
		want string
	}{
		{"-- asm\nexit\n-- result\nzz", `line 4: result "zz" is not a 64-bit number`},
		{"-- asm\nexit\n-- result\n0x1ffffffffffffffff", `is not a 64-bit hex number`},
		{"-- mem\n1ff\n-- result\n0", `line 2: memory byte "1ff" is not two hex digits`},
		{"-- raw\n0xzz\n-- result\n0", `line 2: raw instruction "0xzz" is not a 64-bit word`},
		{"-- asm\nexit\n-- bogus\n-- result\n0", `line 3: unknown section header "-- bogus"`},
		{"-- asm\nexit", `no -- result or -- error section`},
	} {
		_, err := Parse("x", []byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q): %v, want an error containing %q", tc.data, err, tc.want)
		}
	}
}

func TestAssemble_lineNumbers(t *testing.T) {
	test, err := Parse("x", []byte("# a\n-- asm\n\nmov %r0, 1\n# b\nmov %r0, %r11x\nexit\n-- result\n0"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Assemble(test)
	var aerr *asm.Error
	if !errors.As(err, &aerr) || aerr.Line != 6 {
		t.Fatalf("Assemble: %v, want an *asm.Error on line 6", err)
	}
	if want := `x: line 6: invalid register "%r11x"`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
