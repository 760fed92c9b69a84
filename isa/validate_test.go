package isa

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

var exit = Instruction{Op: OpExit}

func TestValidateProgram(t *testing.T) {
	lddw := LoadImm64(R0, 0, 0x1122334455667788)
	for _, tc := range []struct {
		name  string
		prog  []Instruction
		err   error // nil: valid
		index int
	}{
		{name: "mov64 imm", prog: []Instruction{{Op: 0xb7, Imm: 1}, exit}},
		{name: "lddw", prog: []Instruction{lddw[0], lddw[1], exit}},
		{name: "sdiv64 reg", prog: []Instruction{{Op: 0x3f, Dst: 1, Src: 2, Off: 1}, exit}},
		{name: "movsx64 s32", prog: []Instruction{{Op: 0xbf, Dst: 1, Src: 2, Off: 32}, exit}},
		{name: "bswap64", prog: []Instruction{{Op: 0xd7, Dst: 1, Imm: 64}, exit}},
		{name: "gotol", prog: []Instruction{{Op: OpJA32, Imm: 0}, exit}},
		{name: "cmpxchg64", prog: []Instruction{{Op: 0xdb, Dst: 10, Src: 1, Off: -8, Imm: int32(AtomicCmpXchg)}, exit}},
		{name: "ld_abs b", prog: []Instruction{{Op: 0x30, Imm: 12}, exit}},
		{name: "ld_ind w", prog: []Instruction{{Op: 0x40, Src: 1}, exit}},
		{name: "callx", prog: []Instruction{{Op: OpCallX, Dst: 2}, exit}},
		{name: "kfunc call carries an offset", prog: []Instruction{{Op: OpCall, Src: PseudoKfuncCall, Off: 3, Imm: 7}, exit}},
		{name: "local call", prog: []Instruction{{Op: OpCall, Src: PseudoCall, Imm: 1}, exit, {Op: 0xb7}, exit}},
		{name: "ends with goto", prog: []Instruction{exit, {Op: OpJA, Off: -2}}},
		{name: "may_goto forward", prog: []Instruction{{Op: OpMayGoto, Off: 1}, {Op: 0xb7}, exit}},
		{name: "may_goto loop", prog: []Instruction{{Op: OpMayGoto, Off: 1}, {Op: OpJA, Off: -2}, exit}},

		{name: "empty", prog: nil, err: ErrEmpty},
		{name: "add imm with offset", prog: []Instruction{{Op: 0x07, Off: 1}, exit}, err: ErrReserved},
		{name: "add imm with src", prog: []Instruction{{Op: 0x07, Src: 1}, exit}, err: ErrReserved},
		{name: "add reg with imm", prog: []Instruction{{Op: 0x0f, Imm: 1}, exit}, err: ErrReserved},
		{name: "mov64 reg offset 1 (kernel's addr_space_cast)", prog: []Instruction{{Op: 0xbf, Off: 1}, exit}, err: ErrReserved},
		{name: "movsx32 s32", prog: []Instruction{{Op: 0xbc, Dst: 1, Src: 2, Off: 32}, exit}, err: ErrReserved},
		{name: "mov imm with offset", prog: []Instruction{{Op: 0xb7, Off: 8}, exit}, err: ErrReserved},
		{name: "div offset 2", prog: []Instruction{{Op: 0x37, Off: 2, Imm: 1}, exit}, err: ErrReserved},
		{name: "neg with imm", prog: []Instruction{{Op: 0x87, Imm: 1}, exit}, err: ErrReserved},
		{name: "neg reg form", prog: []Instruction{{Op: 0x8f}, exit}, err: ErrInvalidOpcode},
		{name: "end width 8", prog: []Instruction{{Op: 0xd4, Imm: 8}, exit}, err: ErrInvalidOpcode},
		{name: "bswap big-endian form", prog: []Instruction{{Op: 0xdf, Imm: 16}, exit}, err: ErrInvalidOpcode},
		{name: "alu op 0xe0", prog: []Instruction{{Op: 0xe7}, exit}, err: ErrInvalidOpcode},
		{name: "register r11", prog: []Instruction{{Op: 0xb7, Dst: 11}, exit}, err: ErrInvalidRegister},
		{name: "src register r15", prog: []Instruction{{Op: 0xbf, Src: 15}, exit}, err: ErrInvalidRegister},
		{name: "write to r10", prog: []Instruction{{Op: 0xb7, Dst: 10}, exit}, err: ErrReadOnlyFP},
		{name: "load into r10", prog: []Instruction{{Op: 0x79, Dst: 10, Src: 1}, exit}, err: ErrReadOnlyFP},
		{name: "fetch into r10", prog: []Instruction{{Op: 0xdb, Dst: 1, Src: 10, Imm: 1}, exit}, err: ErrReadOnlyFP},
		{name: "exit with imm", prog: []Instruction{{Op: OpExit, Imm: 1}}, err: ErrReserved},
		{name: "exit in jmp32", prog: []Instruction{{Op: 0x96}, exit}, err: ErrInvalidOpcode},
		{name: "call with dst", prog: []Instruction{{Op: OpCall, Dst: 1, Imm: 1}, exit}, err: ErrReserved},
		{name: "call with offset", prog: []Instruction{{Op: OpCall, Off: 1, Imm: 1}, exit}, err: ErrReserved},
		{name: "call src 3", prog: []Instruction{{Op: OpCall, Src: 3}, exit}, err: ErrInvalidOpcode},
		{name: "ja with imm", prog: []Instruction{{Op: OpJA, Imm: 1}, exit}, err: ErrReserved},
		{name: "gotol with offset", prog: []Instruction{{Op: OpJA32, Off: 1}, exit}, err: ErrReserved},
		{name: "jeq imm with src", prog: []Instruction{{Op: 0x15, Src: 1}, exit}, err: ErrReserved},
		{name: "jeq reg with imm", prog: []Instruction{{Op: 0x1d, Imm: 1}, exit}, err: ErrReserved},
		{name: "may_goto +0", prog: []Instruction{{Op: OpMayGoto}, exit}, err: ErrJumpRange},
		{name: "may_goto with imm", prog: []Instruction{{Op: OpMayGoto, Off: 1, Imm: 1}, {Op: 0xb7}, exit}, err: ErrReserved},
		{name: "may_goto with dst", prog: []Instruction{{Op: OpMayGoto, Dst: 1, Off: 1}, {Op: 0xb7}, exit}, err: ErrReserved},
		{name: "jcond src 1", prog: []Instruction{{Op: OpMayGoto, Src: 1, Off: 1}, {Op: 0xb7}, exit}, err: ErrInvalidOpcode},
		{name: "jcond reg form", prog: []Instruction{{Op: 0xed, Off: 1}, {Op: 0xb7}, exit}, err: ErrInvalidOpcode},
		{name: "jcond in jmp32", prog: []Instruction{{Op: 0xe6, Off: 1}, {Op: 0xb7}, exit}, err: ErrInvalidOpcode},
		{name: "jump op 0xf0", prog: []Instruction{{Op: 0xf5, Off: 1}, {Op: 0xb7}, exit}, err: ErrInvalidOpcode},
		{name: "may_goto past the end", prog: []Instruction{{Op: OpMayGoto, Off: 1}, exit}, err: ErrJumpRange},
		{name: "ends with may_goto", prog: []Instruction{exit, {Op: OpMayGoto, Off: -2}}, err: ErrNoExit, index: 1},
		{name: "ldx with imm", prog: []Instruction{{Op: 0x61, Imm: 1}, exit}, err: ErrReserved},
		{name: "ldxsdw", prog: []Instruction{{Op: 0x99}, exit}, err: ErrInvalidOpcode},
		{name: "st with src", prog: []Instruction{{Op: 0x62, Src: 1}, exit}, err: ErrReserved},
		{name: "stx with imm", prog: []Instruction{{Op: 0x63, Imm: 1}, exit}, err: ErrReserved},
		{name: "atomic byte", prog: []Instruction{{Op: 0xd3}, exit}, err: ErrInvalidOpcode},
		{name: "atomic op 0x10", prog: []Instruction{{Op: 0xdb, Imm: 0x10}, exit}, err: ErrInvalidOpcode},
		{name: "ld_abs dw", prog: []Instruction{{Op: 0x38}, exit}, err: ErrInvalidOpcode},
		{name: "ld_abs with src", prog: []Instruction{{Op: 0x20, Src: 1}, exit}, err: ErrReserved},
		{name: "opcode 0x00", prog: []Instruction{{}, exit}, err: ErrInvalidOpcode},
		{name: "lddw truncated", prog: []Instruction{exit, lddw[0]}, err: ErrLoadImm64, index: 1},
		{name: "lddw second slot opcode", prog: []Instruction{lddw[0], exit, exit}, err: ErrLoadImm64},
		{name: "lddw pseudo 7", prog: []Instruction{{Op: OpLoadImm64, Src: 7}, {}, exit}, err: ErrInvalidOpcode},
		{name: "lddw map fd with high imm", prog: []Instruction{{Op: OpLoadImm64, Src: PseudoMapFD}, {Imm: 1}, exit}, err: ErrLoadImm64},
		{name: "jump past the end", prog: []Instruction{{Op: OpJA, Off: 1}, exit}, err: ErrJumpRange},
		{name: "jump before the start", prog: []Instruction{{Op: 0x15, Off: -2}, exit}, err: ErrJumpRange},
		{name: "jump into lddw", prog: []Instruction{{Op: OpJA, Off: 1}, lddw[0], lddw[1], exit}, err: ErrJumpRange},
		{name: "call into lddw", prog: []Instruction{{Op: OpCall, Src: PseudoCall, Imm: 1}, lddw[0], lddw[1], exit}, err: ErrJumpRange},
		{name: "falls off the end", prog: []Instruction{{Op: 0xb7}}, err: ErrNoExit},
		{name: "ends with a conditional jump", prog: []Instruction{exit, {Op: 0x15, Off: -2}}, err: ErrNoExit, index: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateProgram(tc.prog)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
			var ve *Error
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not *isa.Error", err)
			}
			if ve.Index != tc.index {
				t.Errorf("index %d, want %d (%v)", ve.Index, tc.index, err)
			}
			if !strings.HasPrefix(err.Error(), "instruction ") {
				t.Errorf("message does not name the instruction: %v", err)
			}
		})
	}
}

func TestEncodeDecode(t *testing.T) {
	prog := []Instruction{
		{Op: 0xb7, Dst: 1, Imm: -5},
		{Op: 0x3f, Dst: 3, Src: 9, Off: 1},
		{Op: 0x7b, Dst: 10, Src: 1, Off: -8},
	}
	lddw := LoadImm64(R2, PseudoMapValue, 0xdeadbeef00000010)
	prog = append(prog, lddw[:]...)
	prog = append(prog, exit)
	b := Encode(prog)
	want := "b7 01 00 00 fb ff ff ff"
	if got := hexBytes(b[:8]); got != want {
		t.Errorf("first slot %s, want %s", got, want)
	}
	if got := hexBytes(b[8:16]); got != "3f 93 01 00 00 00 00 00" {
		t.Errorf("sdiv slot %s", got)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range prog {
		if back[i] != prog[i] {
			t.Errorf("slot %d: %+v, want %+v", i, back[i], prog[i])
		}
	}
	if _, err := Decode(b[:len(b)-3]); !errors.Is(err, ErrTruncated) {
		t.Errorf("truncated input: %v", err)
	}
	// Big-endian swaps the register nibbles.
	var be [8]byte
	prog[1].Marshal(be[:], binary.BigEndian)
	if be[1] != 0x39 || Unmarshal(be[:], binary.BigEndian) != prog[1] {
		t.Errorf("big-endian slot % x", be)
	}
}

func hexBytes(b []byte) string { return fmt.Sprintf("% x", b) }

// FuzzDecode: any byte string decodes, validates and formats with an error
// or a result, never a panic; valid programs re-encode to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(Encode([]Instruction{{Op: 0xb7, Imm: 1}, exit}))
	f.Add([]byte{0x18, 0x01, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		prog, err := Decode(b)
		if err != nil {
			return
		}
		for i, ins := range prog {
			var next Instruction
			if i+1 < len(prog) {
				next = prog[i+1]
			}
			_ = Format(ins, next)
			_ = ins.Op.String()
			_ = ins.Validate()
		}
		if ValidateProgram(prog) == nil {
			if string(Encode(prog)) != string(b) {
				t.Fatalf("re-encoding changed the bytes")
			}
		}
	})
}
