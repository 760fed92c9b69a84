// Package asm owns the text form of eBPF programs: it assembles text into
// []isa.Instruction (Parse for LLVM and kernel syntax, ParseConformance for
// the conformance suite's dialect), prints programs back as text
// (Disassemble), and offers a small DSL for writing test programs in Go
// (Assemble, Mov64.Imm, JEq.Imm, ...).
//
// # Syntax accepted by Parse
//
// One instruction per line, in the syntax llvm-objdump-19 -d prints for BPF
// and isa.Format prints:
//
//	r1 = -0x5                      w1 += w2          r1 = (s8)r2
//	r1 = *(u8 *)(r2 - 0x8)         *(u64 *)(r10 - 0x8) = -0x3
//	lock *(u32 *)(r1 + 0x4) += r2  w2 = atomic_fetch_xor((u32 *)(r1 + 0x4), w2)
//	r0 = cmpxchg_64(r1 + 0x4, r0, r2)                w2 = xchg32_32(r1 + 0x4, w2)
//	if r1 s> -0x5 goto +0x3        gotol +0x5        call 0x1    callx r2
//	r1 = 0x1122334455667788 ll     r0 = *(u8 *)skb[0xc]          exit
//
// both without and with --mattr=+alu32 (so "r1 = *(u32 *)(r2 + 0x4)" and
// "w1 = *(u32 *)(r2 + 0x4)" are the same load, and so are "lock *(u32 *)..
// += r2" and "+= w2"); isa.Format's spellings for what LLVM prints lossily
// ("call pc+3", "call kfunc#7, 2", "r1 = map_fd(3) ll", "r1 = map_value(3,
// 0x10) ll", "r1 = btf_id(7, 0) ll", "r1 = func(pc+3) ll", "r1 =
// map_idx(0) ll", "r1 = map_idx_value(0, 0x10) ll", "skb[r1 + 0x4]");
// LLVM's "ld_pseudo r1, 0x1, 0x3"; and the kernel verifier log's spellings
// from kernel/bpf/disasm.c: "goto pc+3", "gotol pc-2", "if r1 > 0xfffffffb
// goto pc+3", "*(u32 *)(r10 -4) = r1", "r0 = *(u32 *)(r1 +4)", "call
// bpf_map_lookup_elem#1", "call kernel-function#9", "r0 =
// atomic64_fetch_add((u64 *)(r1 +0), r0)", "r0 = atomic_cmpxchg((u32 *)(r1
// +0), r0, r2)", decimal immediates; "may_goto +0x3" and the log's "may_goto
// pc+3" (Linux's BPF_JCOND). A kernel extension that isa.ValidateProgram
// rejects is parsed so that listings containing it can be read:
// "r1 = addr_space_cast(r2, 0x0, 0x1)".
//
// Around the instruction, Parse accepts and ignores what llvm-objdump and
// the verifier print: a leading "5:" index; llvm-objdump's bytes column
// ("   5:\t71 21 f8 ff 00 00 00 00\tr1 = ..."), 8 or 16 bytes; the
// verifier's "(b7)" opcode prefix, which must agree with the text; trailing
// "<LBB0_2>" or "<prog+0x38>" annotations; "file format", "Disassembly of
// section" and relocation lines. Comments start with ";" or "//" anywhere,
// or "#" at the start of a line or after white space (the "#" of
// "bpf_map_lookup_elem#1" is not a comment). A whole listing of one section
// can be fed back; a second "Disassembly of section" line is an error.
//
// Labels are "name:" (alone or before an instruction on the same line), and
// llvm-objdump's symbol lines "0000000000000040 <mix>:" and "<L0>:" define
// them too. "goto name", "if r1 == r2 goto name", "gotol name", "call name"
// (a bpf-to-bpf call) and "r1 = func(name) ll" refer to them. A label is an
// identifier other than a register name or "pc".
//
// Errors are *Error values: "line 3: unknown register \"r11\"", "line 7:
// undefined label \"out\"", "line 2: immediate 0x1ffffffff does not fit in
// 32 bits". Parse never panics.
//
// # Ambiguities of LLVM's text, and how they are resolved
//
// Immediates. A 32-bit immediate may be written as -2^31..2^32-1 and keeps
// its low 32 bits, so "r1 = 0xffffffff" is "r1 = -0x1" (imm -1, which the
// 64-bit move sign-extends). That is what LLVM's own assembler does, and how
// the kernel prints jump immediates ("if r1 > 0xfffffffb"). Anything wider
// is an error, never a silent lddw: a 64-bit constant needs "ll" or the
// kernel's "(18)" prefix, which is how verifier logs print lddw.
//
// Calls. "call 0x3" is a helper call (src 0). LLVM prints bpf-to-bpf calls
// (src 1) and kfunc calls (src 2) the same way, so from text alone they
// cannot be told apart; waggle writes them "call pc+3" and "call kfunc#3".
// "call name#N" is a helper call by id (the kernel's spelling; the name is
// not checked) unless name is "kfunc" or the kernel's "kernel-function".
//
// Where LLVM's text loses fields. llvm-objdump-19 prints a bpf-to-bpf or
// kfunc call as "call imm", a lddw with a pseudo source as "ld_pseudo r1,
// src, imm" without the second slot's imm, a legacy indirect packet load as
// "skb[r1]" without its imm, and, without --mattr=+alu32, a 32-bit fetch-add
// as the plain "lock *(u32 *)(r1 + 0x0) += r2" and other 32-bit fetching
// atomics as "<unknown>". When a line carries llvm-objdump's bytes column,
// the bytes decide in exactly these cases, and "<unknown>" takes the bytes
// as the instruction; any other disagreement between text and bytes is an
// error. Without the bytes column, the text is taken as written, and
// "<unknown>" is an error.
//
// Relocations. In a clang-built object, instructions that need relocation
// hold placeholders: a call to a function in another section is "call
// -0x1" (src 1, imm -1), one within the section already has its offset
// ("call 0x7", src 1), and a map or global-data load is "r1 = 0x0 ll" with
// src 0 (the loader sets the pseudo source). Parse reproduces the object's
// bytes, placeholders included: the bytes column supplies the src of the
// calls, and the lddw text is already exact. testdata/clang holds objects
// built by clang-19 at -mcpu=v1 to v4 with their llvm-objdump-19 listings;
// the tests parse every listing and compare it slot by slot with the
// section bytes read from the ELF file, and also parse every line's text
// alone, where the only differences allowed are the lossy cases above.
//
// # Disassembly
//
// Disassemble prints one instruction per line with isa.Format. The Listing
// style adds llvm-objdump's index and bytes columns (a lddw on one line,
// sixteen bytes), and the Labels style names jump and call targets "L<slot>"
// so that the text can be edited and reassembled. For every program
// isa.ValidateProgram accepts, Parse(Disassemble(p, style)) == p in every
// style.
//
// # The conformance dialect
//
// ParseConformance reads the "-- asm" sections of the conformance suite
// (testdata/conformance/README.md §2): "mov %r0, 1", "ldxw %r0, [%r1+4]",
// "jeq %r1, 0, +2", "lock fetch add32 [%r10-8], %r1", "call local label",
// "call %r2" (callx, register in dst), "ja32 label" (into imm), the implicit
// "exit" label. Its numbers follow that README: a token containing "0x" is
// hex and must fit in 32 bits (64 for lddw), any other is signed decimal in
// the int32 range.
package asm
