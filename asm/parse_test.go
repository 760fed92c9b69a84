package asm

import (
	"errors"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

// parseCases pairs one line of text with the bytes it assembles to. The
// LLVM forms are what llvm-objdump-19 -d prints (with and without
// --mattr=+alu32), the kernel forms what kernel/bpf/disasm.c prints in
// verifier logs, and the rest isa.Format's own spellings.
var parseCases = []struct {
	text, hex string
}{
	// ALU64, immediate (LLVM hex, kernel decimal)
	{"r1 += 0x5", "07 01 00 00 05 00 00 00"},
	{"r1 += -0x5", "07 01 00 00 fb ff ff ff"},
	{"r1 += -5", "07 01 00 00 fb ff ff ff"},
	{"r1 -= 0x5", "17 01 00 00 05 00 00 00"},
	{"r1 *= 0x5", "27 01 00 00 05 00 00 00"},
	{"r1 /= 0x5", "37 01 00 00 05 00 00 00"},
	{"r1 s/= 0x5", "37 01 01 00 05 00 00 00"},
	{"r1 |= 0x5", "47 01 00 00 05 00 00 00"},
	{"r1 &= 0x5", "57 01 00 00 05 00 00 00"},
	{"r1 <<= 0x5", "67 01 00 00 05 00 00 00"},
	{"r1 >>= 0x5", "77 01 00 00 05 00 00 00"},
	{"r1 = -r1", "87 01 00 00 00 00 00 00"},
	{"r1 %= 0x5", "97 01 00 00 05 00 00 00"},
	{"r1 s%= 0x5", "97 01 01 00 05 00 00 00"},
	{"r1 ^= 0x5", "a7 01 00 00 05 00 00 00"},
	{"r1 = 0x5", "b7 01 00 00 05 00 00 00"},
	{"r1 = 5", "b7 01 00 00 05 00 00 00"},
	{"r1 = 0xffffffff", "b7 01 00 00 ff ff ff ff"},
	{"r1 = -0x80000000", "b7 01 00 00 00 00 00 80"},
	{"r1 s>>= 0x5", "c7 01 00 00 05 00 00 00"},
	// ALU64, register
	{"r1 += r2", "0f 21 00 00 00 00 00 00"},
	{"r1 -= r2", "1f 21 00 00 00 00 00 00"},
	{"r1 *= r2", "2f 21 00 00 00 00 00 00"},
	{"r1 /= r2", "3f 21 00 00 00 00 00 00"},
	{"r1 s/= r2", "3f 21 01 00 00 00 00 00"},
	{"r1 |= r2", "4f 21 00 00 00 00 00 00"},
	{"r1 &= r2", "5f 21 00 00 00 00 00 00"},
	{"r1 <<= r2", "6f 21 00 00 00 00 00 00"},
	{"r1 >>= r2", "7f 21 00 00 00 00 00 00"},
	{"r1 %= r2", "9f 21 00 00 00 00 00 00"},
	{"r1 s%= r2", "9f 21 01 00 00 00 00 00"},
	{"r1 ^= r2", "af 21 00 00 00 00 00 00"},
	{"r1 = r10", "bf a1 00 00 00 00 00 00"},
	{"r1 s>>= r2", "cf 21 00 00 00 00 00 00"},
	{"r1 = (s8)r2", "bf 21 08 00 00 00 00 00"},
	{"r1 = (s16)r2", "bf 21 10 00 00 00 00 00"},
	{"r1 = (s32)r2", "bf 21 20 00 00 00 00 00"},
	// ALU32
	{"w1 += 0x5", "04 01 00 00 05 00 00 00"},
	{"w1 -= w2", "1c 21 00 00 00 00 00 00"},
	{"w1 *= 0x5", "24 01 00 00 05 00 00 00"},
	{"w1 /= w2", "3c 21 00 00 00 00 00 00"},
	{"w1 s/= w2", "3c 21 01 00 00 00 00 00"},
	{"w1 |= 0x5", "44 01 00 00 05 00 00 00"},
	{"w1 &= w2", "5c 21 00 00 00 00 00 00"},
	{"w1 <<= 0x5", "64 01 00 00 05 00 00 00"},
	{"w1 >>= w2", "7c 21 00 00 00 00 00 00"},
	{"w1 = -w1", "84 01 00 00 00 00 00 00"},
	{"w1 %= 0x5", "94 01 00 00 05 00 00 00"},
	{"w1 s%= 0x5", "94 01 01 00 05 00 00 00"},
	{"w1 ^= w2", "ac 21 00 00 00 00 00 00"},
	{"w1 = 0x5", "b4 01 00 00 05 00 00 00"},
	{"w1 = w2", "bc 21 00 00 00 00 00 00"},
	{"w1 = (s8)w2", "bc 21 08 00 00 00 00 00"},
	{"w1 = (s16)w2", "bc 21 10 00 00 00 00 00"},
	{"w1 s>>= 0x5", "c4 01 00 00 05 00 00 00"},
	// byte swaps
	{"r1 = le16 r1", "d4 01 00 00 10 00 00 00"},
	{"r1 = le32 r1", "d4 01 00 00 20 00 00 00"},
	{"r1 = le64 r1", "d4 01 00 00 40 00 00 00"},
	{"r1 = be16 r1", "dc 01 00 00 10 00 00 00"},
	{"r1 = be32 r1", "dc 01 00 00 20 00 00 00"},
	{"r1 = be64 r1", "dc 01 00 00 40 00 00 00"},
	{"r1 = bswap16 r1", "d7 01 00 00 10 00 00 00"},
	{"r1 = bswap32 r1", "d7 01 00 00 20 00 00 00"},
	{"r1 = bswap64 r1", "d7 01 00 00 40 00 00 00"},
	// 64-bit immediates
	{"r1 = 0x1122334455667788 ll", "18 01 00 00 88 77 66 55 00 00 00 00 44 33 22 11"},
	{"r1 = -0x1 ll", "18 01 00 00 ff ff ff ff 00 00 00 00 ff ff ff ff"},
	{"r1 = 0x0 ll", "18 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
	{"(18) r1 = 0xffff888012345678", "18 01 00 00 78 56 34 12 00 00 00 00 80 88 ff ff"},
	{"(18) r1 = 0x5", "18 01 00 00 05 00 00 00 00 00 00 00 00 00 00 00"},
	{"ld_pseudo r1, 0x1, 0x5", "18 11 00 00 05 00 00 00 00 00 00 00 00 00 00 00"},
	{"ld_pseudo\tr2, 0x2, 0xffffffff", "18 22 00 00 ff ff ff ff 00 00 00 00 00 00 00 00"},
	{"r1 = map_fd(3) ll", "18 11 00 00 03 00 00 00 00 00 00 00 00 00 00 00"},
	{"r1 = map_fd(3)", "18 11 00 00 03 00 00 00 00 00 00 00 00 00 00 00"},
	{"r1 = map_value(3, 0x10) ll", "18 21 00 00 03 00 00 00 00 00 00 00 10 00 00 00"},
	{"r1 = btf_id(7, -2) ll", "18 31 00 00 07 00 00 00 00 00 00 00 fe ff ff ff"},
	{"r1 = func(pc+3) ll", "18 41 00 00 03 00 00 00 00 00 00 00 00 00 00 00"},
	{"r1 = func(pc-1) ll", "18 41 00 00 ff ff ff ff 00 00 00 00 00 00 00 00"},
	{"r1 = map_idx(0) ll", "18 51 00 00 00 00 00 00 00 00 00 00 00 00 00 00"},
	{"r1 = map_idx_value(1, 0x10) ll", "18 61 00 00 01 00 00 00 00 00 00 00 10 00 00 00"},
	// loads
	{"r1 = *(u8 *)(r2 - 0x8)", "71 21 f8 ff 00 00 00 00"},
	{"r1 = *(u16 *)(r2 + 0x4)", "69 21 04 00 00 00 00 00"},
	{"r1 = *(u32 *)(r2 + 0x4)", "61 21 04 00 00 00 00 00"},
	{"w1 = *(u32 *)(r2 + 0x4)", "61 21 04 00 00 00 00 00"},
	{"w1 = *(u8 *)(r2 + 0x4)", "71 21 04 00 00 00 00 00"},
	{"r1 = *(u64 *)(r2 + 0x7fff)", "79 21 ff 7f 00 00 00 00"},
	{"r0 = *(u32 *)(r1 +4)", "61 10 04 00 00 00 00 00"},
	{"r0 = *(u64 *)(r10 -8)", "79 a0 f8 ff 00 00 00 00"},
	{"r0 = *(u64 *)(r10 - 32768)", "79 a0 00 80 00 00 00 00"},
	{"r4 = *(s8 *)(r1 + 0x0)", "91 14 00 00 00 00 00 00"},
	{"r4 = *(s16 *)(r8 + 0x10)", "89 84 10 00 00 00 00 00"},
	{"r4 = *(s32 *)(r8 - 0x10)", "81 84 f0 ff 00 00 00 00"},
	{"r0 = *(u8 *)skb[0xc]", "30 00 00 00 0c 00 00 00"},
	{"r0 = *(u16 *)skb[-12]", "28 00 00 00 f4 ff ff ff"},
	{"r0 = *(u32 *)skb[r1]", "40 10 00 00 00 00 00 00"},
	{"r0 = *(u8 *)skb[r3 + 0x4]", "50 30 00 00 04 00 00 00"},
	{"r0 = *(u8 *)skb[r3 + 4]", "50 30 00 00 04 00 00 00"},
	{"r0 = *(u16 *)skb[r3 - 0x80000000]", "48 30 00 00 00 00 00 80"},
	{"(48) r0 = *(u16 *)skb[r3 + -4]", "48 30 00 00 fc ff ff ff"},
	{"(30) r0 = *(u8 *)skb[12]", "30 00 00 00 0c 00 00 00"},
	// stores
	{"*(u8 *)(r10 - 0x8) = 0x12c", "72 0a f8 ff 2c 01 00 00"},
	{"*(u16 *)(r10 - 0x8) = -0x3", "6a 0a f8 ff fd ff ff ff"},
	{"*(u32 *)(r10 -4) = 5", "62 0a fc ff 05 00 00 00"},
	{"*(u64 *)(r10 - 0x8) = -0x3", "7a 0a f8 ff fd ff ff ff"},
	{"*(u8 *)(r1 + 0x4) = r2", "73 21 04 00 00 00 00 00"},
	{"*(u16 *)(r1 + 0x4) = w2", "6b 21 04 00 00 00 00 00"},
	{"*(u32 *)(r10 -4) = r1", "63 1a fc ff 00 00 00 00"},
	{"*(u32 *)(r10 - 0x4) = w1", "63 1a fc ff 00 00 00 00"},
	{"*(u64 *)(r10 - 0x8) = r1", "7b 1a f8 ff 00 00 00 00"},
	// atomics, 64-bit
	{"lock *(u64 *)(r1 + 0x0) += r2", "db 21 00 00 00 00 00 00"},
	{"lock *(u64 *)(r1 + 0x0) |= r2", "db 21 00 00 40 00 00 00"},
	{"lock *(u64 *)(r1 + 0x0) &= r2", "db 21 00 00 50 00 00 00"},
	{"lock *(u64 *)(r1 + 0x0) ^= r2", "db 21 00 00 a0 00 00 00"},
	{"r2 = atomic_fetch_add((u64 *)(r1 + 0x8), r2)", "db 21 08 00 01 00 00 00"},
	{"r2 = atomic_fetch_or((u64 *)(r1 + 0x8), r2)", "db 21 08 00 41 00 00 00"},
	{"r2 = atomic_fetch_and((u64 *)(r1 + 0x8), r2)", "db 21 08 00 51 00 00 00"},
	{"r2 = atomic_fetch_xor((u64 *)(r1 + 0x8), r2)", "db 21 08 00 a1 00 00 00"},
	{"r2 = xchg_64(r1 + 0x8, r2)", "db 21 08 00 e1 00 00 00"},
	{"r0 = cmpxchg_64(r1 + 0x4, r0, r2)", "db 21 04 00 f1 00 00 00"},
	{"r0 = atomic64_fetch_add((u64 *)(r1 +0), r0)", "db 01 00 00 01 00 00 00"},
	{"r3 = atomic64_xchg((u64 *)(r1 -8), r3)", "db 31 f8 ff e1 00 00 00"},
	{"r0 = atomic64_cmpxchg((u64 *)(r1 +8), r0, r2)", "db 21 08 00 f1 00 00 00"},
	// atomics, 32-bit (plain llvm-objdump, alu32, kernel)
	{"lock *(u32 *)(r1 + 0x4) += r2", "c3 21 04 00 00 00 00 00"},
	{"lock *(u32 *)(r1 + 0x4) += w2", "c3 21 04 00 00 00 00 00"},
	{"lock *(u32 *)(r1 + 0x4) |= w2", "c3 21 04 00 40 00 00 00"},
	{"lock *(u32 *)(r1 + 0x4) &= w2", "c3 21 04 00 50 00 00 00"},
	{"lock *(u32 *)(r1 +4) ^= r2", "c3 21 04 00 a0 00 00 00"},
	{"w2 = atomic_fetch_add((u32 *)(r1 + 0x4), w2)", "c3 21 04 00 01 00 00 00"},
	{"w2 = atomic_fetch_or((u32 *)(r1 + 0x4), w2)", "c3 21 04 00 41 00 00 00"},
	{"w2 = atomic_fetch_and((u32 *)(r1 + 0x4), w2)", "c3 21 04 00 51 00 00 00"},
	{"w2 = atomic_fetch_xor((u32 *)(r1 + 0x4), w2)", "c3 21 04 00 a1 00 00 00"},
	{"r2 = atomic_fetch_xor((u32 *)(r1 +4), r2)", "c3 21 04 00 a1 00 00 00"},
	{"w2 = xchg32_32(r1 + 0x4, w2)", "c3 21 04 00 e1 00 00 00"},
	{"r2 = atomic_xchg((u32 *)(r1 +4), r2)", "c3 21 04 00 e1 00 00 00"},
	{"w0 = cmpxchg32_32(r1 + 0x4, w0, w2)", "c3 21 04 00 f1 00 00 00"},
	{"r0 = atomic_cmpxchg((u32 *)(r1 +4), r0, r2)", "c3 21 04 00 f1 00 00 00"},
	// jumps
	{"goto +0x3", "05 00 03 00 00 00 00 00"},
	{"goto -0x2 <f+0x10>", "05 00 fe ff 00 00 00 00"},
	{"goto pc+3", "05 00 03 00 00 00 00 00"},
	{"goto pc-1", "05 00 ff ff 00 00 00 00"},
	{"ja +3", "05 00 03 00 00 00 00 00"},
	{"gotol +0x5", "06 00 00 00 05 00 00 00"},
	{"gotol pc-100000", "06 00 00 00 60 79 fe ff"},
	{"if r1 == 0x5 goto +0x3", "15 01 03 00 05 00 00 00"},
	{"if r1 > 0x5 goto +0x3", "25 01 03 00 05 00 00 00"},
	{"if r1 >= 0x5 goto +0x3", "35 01 03 00 05 00 00 00"},
	{"if r1 & 0x5 goto +0x3", "45 01 03 00 05 00 00 00"},
	{"if r1 != 0x5 goto +0x3", "55 01 03 00 05 00 00 00"},
	{"if r1 s> -0x5 goto +0x3", "65 01 03 00 fb ff ff ff"},
	{"if r1 s>= 0x5 goto +0x3", "75 01 03 00 05 00 00 00"},
	{"if r1 < 0x5 goto +0x3", "a5 01 03 00 05 00 00 00"},
	{"if r1 <= 0x5 goto +0x3", "b5 01 03 00 05 00 00 00"},
	{"if r1 s< 0x5 goto +0x3", "c5 01 03 00 05 00 00 00"},
	{"if r1 s<= 0x5 goto +0x3", "d5 01 03 00 05 00 00 00"},
	{"if r1 == r2 goto -0x3", "1d 21 fd ff 00 00 00 00"},
	{"if r1 > r2 goto -0x3", "2d 21 fd ff 00 00 00 00"},
	{"if r1 >= r2 goto -0x3", "3d 21 fd ff 00 00 00 00"},
	{"if r1 & r2 goto -0x3", "4d 21 fd ff 00 00 00 00"},
	{"if r1 != r2 goto -0x3", "5d 21 fd ff 00 00 00 00"},
	{"if r1 s> r2 goto -0x3", "6d 21 fd ff 00 00 00 00"},
	{"if r1 s>= r2 goto -0x3", "7d 21 fd ff 00 00 00 00"},
	{"if r1 < r2 goto -0x3", "ad 21 fd ff 00 00 00 00"},
	{"if r1 <= r2 goto -0x3", "bd 21 fd ff 00 00 00 00"},
	{"if r1 s< r2 goto -0x3", "cd 21 fd ff 00 00 00 00"},
	{"if r1 s<= r2 goto -0x3", "dd 21 fd ff 00 00 00 00"},
	{"if w1 == 0x5 goto -0x2", "16 01 fe ff 05 00 00 00"},
	{"if w1 s< w2 goto +0x7fff", "ce 21 ff 7f 00 00 00 00"},
	{"if w1 > -0x1 goto -0x8000", "26 01 00 80 ff ff ff ff"},
	{"if r1 > 0xfffffffb goto pc+3", "25 01 03 00 fb ff ff ff"},
	{"if w1 != w2 goto pc-2", "5e 21 fe ff 00 00 00 00"},
	{"if r1 s> r2 goto +0x3 <LBB0_2>", "6d 21 03 00 00 00 00 00"},
	// calls and exit
	{"call 0x1", "85 00 00 00 01 00 00 00"},
	{"call 1", "85 00 00 00 01 00 00 00"},
	{"call -0x1", "85 00 00 00 ff ff ff ff"},
	{"call pc+3", "85 10 00 00 03 00 00 00"},
	{"call pc-10", "85 10 00 00 f6 ff ff ff"},
	{"call kfunc#7", "85 20 00 00 07 00 00 00"},
	{"call kfunc#7, 2", "85 20 02 00 07 00 00 00"},
	{"call kernel-function#9", "85 20 00 00 09 00 00 00"},
	{"call bpf_map_lookup_elem#1", "85 00 00 00 01 00 00 00"},
	{"call unknown#195896080", "85 00 00 00 10 23 ad 0b"},
	{"callx r2", "8d 02 00 00 00 00 00 00"},
	{"exit", "95 00 00 00 00 00 00 00"},
	// may_goto (BPF_JMP|BPF_JCOND), as LLVM and the verifier log print it
	{"may_goto +0x3", "e5 00 03 00 00 00 00 00"},
	{"may_goto -0x2", "e5 00 fe ff 00 00 00 00"},
	{"may_goto pc+3", "e5 00 03 00 00 00 00 00"},
	{"      7: (e5) may_goto pc-4", "e5 00 fc ff 00 00 00 00"},
	{"may_goto", ""},
	{"may_goto r1", ""},
	// a kernel extension isa.ValidateProgram rejects, as LLVM prints it
	{"r1 = addr_space_cast(r2, 0x0, 0x1)", "bf 21 01 00 01 00 00 00"},
	// decorations: objdump columns, verifier-log index and opcode, comments
	{"       5:\t71 21 f8 ff 00 00 00 00\tr1 = *(u8 *)(r2 - 0x8)", "71 21 f8 ff 00 00 00 00"},
	{"       1:\t18 01 00 00 88 77 66 55 00 00 00 00 44 33 22 11\tr1 = 0x1122334455667788 ll", "18 01 00 00 88 77 66 55 00 00 00 00 44 33 22 11"},
	{"      17:\tc3 21 04 00 f1 00 00 00\t<unknown>", "c3 21 04 00 f1 00 00 00"},
	{"      16:\t85 10 00 00 ff ff ff ff\tcall -0x1", "85 10 00 00 ff ff ff ff"},
	{"       2:\t85 20 03 00 07 00 00 00\tcall 0x7", "85 20 03 00 07 00 00 00"},
	{"      18:\t18 21 00 00 05 00 00 00 00 00 00 00 10 00 00 00\tld_pseudo\tr1, 0x2, 0x5", "18 21 00 00 05 00 00 00 00 00 00 00 10 00 00 00"},
	{"       3:\t40 10 00 00 04 00 00 00\tr0 = *(u32 *)skb[r1]", "40 10 00 00 04 00 00 00"},
	{"      22:\tc3 14 00 00 01 00 00 00\tlock *(u32 *)(r4 + 0x0) += r1", "c3 14 00 00 01 00 00 00"},
	{"       8:\t15 00 31 00 00 00 00 00\tif r0 == 0x0 goto +0x31 <atomics+0x1d0>", "15 00 31 00 00 00 00 00"},
	{"       4:\tr1 += 0xe", "07 01 00 00 0e 00 00 00"},
	{"0: (b7) r0 = 1                        ; R0_w=1", "b7 00 00 00 01 00 00 00"},
	{"12: (85) call bpf_map_lookup_elem#1   ; R0_w=map_value_or_null(id=1,map=m,ks=4,vs=8)", "85 00 00 00 01 00 00 00"},
	{"(bf) r1 = r6", "bf 61 00 00 00 00 00 00"},
	{"r0 = 1 // comment", "b7 00 00 00 01 00 00 00"},
	{"r0 = 1 # comment", "b7 00 00 00 01 00 00 00"},
	{"\t r0 = 1 ; comment\r", "b7 00 00 00 01 00 00 00"},
	{"start: r0 = 1", "b7 00 00 00 01 00 00 00"},
	{"R0 = 1", ""}, // an error: registers are lower case
}

func TestParse_instructions(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.text, func(t *testing.T) {
			got, err := Parse(tc.text)
			if tc.hex == "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %s, want an error", tc.text, hexOf(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := mustHex(t, tc.hex)
			if !equal(got, want) {
				t.Errorf("Parse(%q) = %s, want %s", tc.text, hexOf(got), tc.hex)
			}
		})
	}
}

func TestParse_labels(t *testing.T) {
	src := `
; a bpf-to-bpf call, forward and backward jumps, may_goto, a long jump and a function address
entry:
	r1 = func(sub) ll
	call sub
	if r0 == 0x0 goto out
back:	r0 += -1
	if w0 s> 0x3 goto back
	may_goto back
	gotol out
	goto +0
out:
	exit
sub:
	r0 = 0x1
	exit
`
	want := []isa.Instruction{
		{Op: isa.OpLoadImm64, Dst: 1, Src: isa.PseudoFunc, Imm: 9}, {},
		{Op: isa.OpCall, Src: isa.PseudoCall, Imm: 7},
		{Op: 0x15, Off: 5},
		{Op: 0x07, Imm: -1},
		{Op: 0x66, Off: -2, Imm: 3},
		{Op: isa.OpMayGoto, Off: -3},
		{Op: isa.OpJA32, Imm: 1},
		{Op: isa.OpJA},
		{Op: isa.OpExit},
		{Op: 0xb7, Imm: 1},
		{Op: isa.OpExit},
	}
	got, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(got, want) {
		t.Fatal(firstDiff(got, want))
	}
}

// TestParse_objdumpHeaders feeds a whole llvm-objdump listing of one section,
// headers, symbols and relocation lines included.
func TestParse_objdumpHeaders(t *testing.T) {
	src := `
calls_v4.o:	file format elf64-bpf

Disassembly of section .text:

0000000000000000 <classify>:
       0:	85 10 00 00 01 00 00 00	call 0x1
		0000000000000000:  R_BPF_64_32	mix
       1:	95 00 00 00 00 00 00 00	exit

0000000000000010 <mix>:
       2:	bc 20 00 00 00 00 00 00	w0 = w2
       3:	05 00 ff ff 00 00 00 00	goto -0x1 <mix>
<L0>:
       4:	95 00 00 00 00 00 00 00	exit
`
	got, err := Parse(src + "\tcall mix\n\tgoto L0\n\tgoto classify\n")
	if err != nil {
		t.Fatal(err)
	}
	want := mustHex(t, "85 10 00 00 01 00 00 00  95 00 00 00 00 00 00 00  bc 20 00 00 00 00 00 00  05 00 ff ff 00 00 00 00  95 00 00 00 00 00 00 00"+
		"85 10 00 00 fc ff ff ff  05 00 fd ff 00 00 00 00  05 00 f8 ff 00 00 00 00")
	if !equal(got, want) {
		t.Fatal(firstDiff(got, want))
	}
}

func TestParse_errors(t *testing.T) {
	for _, tc := range []struct {
		src, want string
	}{
		{"r0 = 0\nexit\nr11 = 1", `line 3: unknown register "r11"`},
		{"w99 += w1", `line 1: unknown register "w99"`},
		{"r01 = 1", `line 1: unknown register "r01"`},
		{"r1 = r16", `line 1: unknown register "r16"`},
		{"r0 = 0\nif r0 == 0 goto out\nexit", `line 2: undefined label "out"`},
		{"call nowhere", `line 1: undefined label "nowhere"`},
		{"r1 += 0x1ffffffff", `line 1: immediate 0x1ffffffff does not fit in 32 bits`},
		{"r1 = 0x1ffffffff", `line 1: immediate 0x1ffffffff does not fit in 32 bits (for a 64-bit constant write "r1 = 0x1ffffffff ll")`},
		{"r1 = -0x80000001", `does not fit in 32 bits`},
		{"r1 = 0x10000000000000000 ll", `number "0x10000000000000000" does not fit in 64 bits`},
		{"r1 = -0x8000000000000001 ll", `immediate -0x8000000000000001 does not fit in 64 bits`},
		{"r1 = 0x ll", `malformed number "0x"`},
		{"r1 = 12ab", `malformed number "12ab"`},
		{"w1 += r2", `"r2" mixes 32-bit (w) and 64-bit (r) registers`},
		{"if w1 > r2 goto +1", `mixes 32-bit`},
		{"r1 = *(u64 *)(r2 + 0x8000)", `offset +0x8000 does not fit in 16 bits`},
		{"r1 = *(u64 *)(r2 - 0x8001)", `offset -0x8001 does not fit in 16 bits`},
		{"w1 = *(u64 *)(r2 + 0)", `a 64-bit load needs an r register`},
		{"r1 = *(s64 *)(r2 + 0)", `sign-extending load of 64 bits does not exist`},
		{"r1 = *(u12 *)(r2 + 0)", `expected a size u8, u16, u32 or u64, found "u12"`},
		{"*(s32 *)(r2 + 0) = 1", `a store has no sign`},
		{"*(u64 *)(r2 + 0) = w1", `a 64-bit store needs an r register`},
		{"goto +0x8000", `jump offset +0x8000 does not fit in 16 bits`},
		{"gotol +0x80000000", `offset +0x80000000 does not fit in 32 bits`},
		{"foo", `line 1: unknown instruction "foo"`},
		{"r1 <> 2", `expected "=" or an arithmetic assignment after "r1", found "<"`},
		{"r1 @ 2", `unexpected character '@'`},
		{"r1 == 2", `expected "=" or an arithmetic assignment after "r1", found "=="`},
		{"w1 = 1 ll", `lddw loads 64 bits: write r1`},
		{"w1 = map_fd(1)", `lddw loads 64 bits: write r1`},
		{"<unknown>", `llvm-objdump could not print this instruction`},
		{"5: (b7) r1 = r2", `opcode prefix (b7) does not match the instruction, which encodes (bf)`},
		{"0:\t07 01 00 00 05 00 00 00\tr1 += 0x6", `text "r1 += 0x6" does not match the bytes beside it, which encode "r1 += 0x5"`},
		{"0:\t85 10 00 00 05 00 00 00\tcall 0x6", `does not match the bytes`},
		{"0:\t85 10 00 00 05 00 00 00\tcall pc+5\n0:\t18 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00\texit", `line 2: text "exit" does not match`},
		{"a:\na:\nexit", `line 2: label "a" already defined at line 1`},
		{"r1:", `"r1" cannot be a label`},
		{"Disassembly of section .text:\nexit\nDisassembly of section xdp:\nexit", `line 3: second section "xdp"`},
		{"lock *(u8 *)(r1 + 0) += r2", `atomic operations are 32 or 64 bits wide, not 8`},
		{"lock *(u64 *)(r1 + 0) += w2", `a 64-bit atomic operation needs an r register`},
		{"lock *(u64 *)(r1 + 0) -= r2", `expected an atomic operation (+= |= &= ^=), found "-="`},
		{"r1 = xchg_64(r1 + 0, r2)", `xchg_64 loads the old value into its operand`},
		{"r1 = cmpxchg_64(r1 + 0, r0, r2)", `cmpxchg compares with and loads into r0`},
		{"r0 = atomic_fetch_nand((u64 *)(r1 + 0), r0)", `unknown atomic operation "atomic_fetch_nand"`},
		{"r0 = atomic64_fetch_add((u32 *)(r1 + 0), r0)", `atomic64_fetch_add operates on u64`},
		{"r1 = le16 r2", `a byte swap is in place: write r1 = le16 r1`},
		{"r1 = -r2", `negation is in place`},
		{"r1 = (s64)r2", `sign-extending move from "s64" does not exist`},
		{"w1 = (s32)w2", `sign-extending move from "s32" does not exist`},
		{"call pc", `expected "+" or "-" after "pc"`},
		{"call kfunc#7, 0x8000", `kfunc offset 0x8000 does not fit in 16 bits`},
		{"r0 = *(u8 *)skb[r1", `expected "]", found end of line`},
		{"r1 = *(u8 *)skb[0]", `legacy packet loads always load into r0`},
		{"r0 = *(u64 *)skb[0]", `legacy packet loads are u8, u16 or u32`},
		{"goto +1 extra", `unexpected "extra" after the instruction`},
		{"goto", `expected a number, found end of line`},
		{"r1 = map[id:5]", `map[id:N] names a loaded kernel map`},
		{"r1 = &(void __percpu *)(r1)", `per-CPU address moves are kernel-internal`},
		{"ld_pseudo r1, 16, 0", `pseudo source 16 does not fit in 4 bits`},
		{"r1 = addr_space_cast(r2, 0x10000, 0)", `address space 0x10000 does not fit in 16 bits`},
		{"r1 = frobnicate(r2)", `unknown operation "frobnicate"`},
		{"if r1 ! r2 goto +1", `unexpected character '!'`},
		{"if r1 = r2 goto +1", `expected a comparison`},
		{"0:\t07 01 00 00 05 00 00 00", `bytes without instruction text`},
		{"callx w1", `expected a 64-bit register r1, found "w1"`},
		{"goto r1", `expected a jump target, found "r1"`},
	} {
		t.Run(tc.src, func(t *testing.T) {
			_, err := Parse(tc.src)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			var aerr *Error
			if !errors.As(err, &aerr) {
				t.Errorf("error %v is not an *asm.Error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParse_errorColumn(t *testing.T) {
	_, err := Parse("exit\n\tr1 += r12")
	var aerr *Error
	if !errors.As(err, &aerr) {
		t.Fatalf("got %v, want an *Error", err)
	}
	if aerr.Line != 2 || aerr.Column != 8 {
		t.Errorf("error at line %d column %d, want line 2 column 8", aerr.Line, aerr.Column)
	}
}

func TestParse_empty(t *testing.T) {
	prog, err := Parse("\n ; nothing\n")
	if err != nil || len(prog) != 0 {
		t.Errorf("Parse of a comment = %v, %v; want no instructions", prog, err)
	}
}
