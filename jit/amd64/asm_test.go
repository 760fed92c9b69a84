package amd64

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// encodingTests documents the encoding of each Asm method: the call, the
// bytes it emits, and their AT&T text (source first, destination last) as
// x86asm.GNUSyntax prints it, in the style of older GNU objdumps: "retq",
// negative immediates as "$-0x80", "%riz" for the empty index of a SIB
// byte, branch targets relative to the instruction's start. (Every entry's
// bytes were also disassembled with GNU objdump 2.40 and agree.) They include
// the awkward cases: rsp and r12 as a base need a SIB byte, rbp and r13 as
// a base need a displacement even when it is 0, the disp8/disp32 and
// imm8/imm32 boundaries, spl/bpl/sil/dil as byte registers (which need a
// REX prefix), and r8-r15 in each operand slot (REX.R, REX.X, REX.B).
//
// Each label case binds its label right after the instruction, so the
// displacement is 0.
var encodingTests = []struct {
	emit func(a *Asm)
	hex  string
	gnu  string
}{
	// ALU, r/m <- r form; dst in ModRM.rm (REX.B), src in ModRM.reg (REX.R).
	{func(a *Asm) { a.ALU(ADD, W64, RAX, RCX) }, "4801c8", "add %rcx,%rax"},
	{func(a *Asm) { a.ALU(SUB, W32, R8, R15) }, "4529f8", "sub %r15d,%r8d"},
	{func(a *Asm) { a.ALU(XOR, W64, R12, RSP) }, "4931e4", "xor %rsp,%r12"},
	{func(a *Asm) { a.ALU(CMP, W32, RDI, R9) }, "4439cf", "cmp %r9d,%edi"},
	{func(a *Asm) { a.ALU(OR, W64, R13, RBP) }, "4909ed", "or %rbp,%r13"},
	{func(a *Asm) { a.ALU(AND, W32, RSI, RDX) }, "21d6", "and %edx,%esi"},
	{func(a *Asm) { a.ALU(ADC, W64, RBX, R10) }, "4c11d3", "adc %r10,%rbx"},
	{func(a *Asm) { a.ALU(SBB, W32, R11, R11) }, "4519db", "sbb %r11d,%r11d"},

	// ALU with an immediate: 83 /op ib for -128..127, else 81 /op id.
	{func(a *Asm) { a.ALUImm(ADD, W64, RAX, 1) }, "4883c001", "add $0x1,%rax"},
	{func(a *Asm) { a.ALUImm(AND, W32, R11, 127) }, "4183e37f", "and $0x7f,%r11d"},
	{func(a *Asm) { a.ALUImm(SUB, W64, RSP, -128) }, "4883ec80", "sub $-0x80,%rsp"},
	{func(a *Asm) { a.ALUImm(OR, W32, RCX, 128) }, "81c980000000", "or $0x80,%ecx"},
	{func(a *Asm) { a.ALUImm(XOR, W64, R15, -129) }, "4981f77fffffff", "xor $-0x81,%r15"},
	{func(a *Asm) { a.ALUImm(CMP, W64, R10, math.MinInt32) }, "4981fa00000080", "cmp $-0x80000000,%r10"},
	{func(a *Asm) { a.ALUImm(ADD, W32, RAX, math.MaxInt32) }, "81c0ffffff7f", "add $0x7fffffff,%eax"},

	{func(a *Asm) { a.Test(W64, RAX, R8) }, "4c85c0", "test %r8,%rax"},
	{func(a *Asm) { a.Test(W32, R9, RSI) }, "4185f1", "test %esi,%r9d"},
	{func(a *Asm) { a.TestImm(W32, RSI, 0x100) }, "f7c600010000", "test $0x100,%esi"},
	{func(a *Asm) { a.TestImm(W64, R9, -1) }, "49f7c1ffffffff", "test $-0x1,%r9"},

	{func(a *Asm) { a.Mov(W64, R10, RDI) }, "4989fa", "mov %rdi,%r10"},
	{func(a *Asm) { a.Mov(W32, RAX, RAX) }, "89c0", "mov %eax,%eax"},
	{func(a *Asm) { a.Mov(W32, RBP, R12) }, "4489e5", "mov %r12d,%ebp"},

	// Immediates into registers: B8+r id zero-extends, REX.W C7 /0 id
	// sign-extends, REX.W B8+r io (movabs) carries all 64 bits.
	{func(a *Asm) { a.MovImm32(R14, 0xdeadbeef) }, "41beefbeadde", "mov $-0x21524111,%r14d"},
	{func(a *Asm) { a.MovImm32(RAX, 0) }, "b800000000", "mov $0x0,%eax"},
	{func(a *Asm) { a.MovImm64(RAX, 0) }, "b800000000", "mov $0x0,%eax"},
	{func(a *Asm) { a.MovImm64(RCX, 0xffffffff) }, "b9ffffffff", "mov $-0x1,%ecx"},
	{func(a *Asm) { a.MovImm64(RDX, 0x100000000) }, "48ba0000000001000000", "mov $0x100000000,%rdx"},
	{func(a *Asm) { a.MovImm64(R8, math.MaxUint64) }, "49c7c0ffffffff", "mov $-0x1,%r8"},
	{func(a *Asm) { a.MovImm64(RBX, 1<<64-1<<31) }, "48c7c300000080", "mov $-0x80000000,%rbx"},
	{func(a *Asm) { a.MovImm64(R15, 1<<64-1<<31-1) }, "49bfffffff7fffffffff", "mov $-0x80000001,%r15"},

	// Memory operands: rsp and r12 need a SIB byte (rm 100 means "SIB
	// follows"), rbp and r13 need a disp8 of 0 (mod 00 rm 101 means rip).
	{func(a *Asm) { a.Lea(RAX, RSP, 8) }, "488d442408", "lea 0x8(%rsp),%rax"},
	{func(a *Asm) { a.Lea(R9, R13, 0) }, "4d8d4d00", "lea (%r13),%r9"},
	{func(a *Asm) { a.Lea(RDX, RBP, 0) }, "488d5500", "lea (%rbp),%rdx"},
	{func(a *Asm) { a.Lea(RCX, R12, 0) }, "498d0c24", "lea (%r12,%riz),%rcx"},
	{func(a *Asm) { a.Lea(RSI, RDI, 0) }, "488d37", "lea (%rdi),%rsi"},
	{func(a *Asm) { a.LeaIndex(RAX, RBX, RCX, 8, 0) }, "488d04cb", "lea (%rbx,%rcx,8),%rax"},
	{func(a *Asm) { a.LeaIndex(R8, RBP, R12, 2, -1) }, "4e8d4465ff", "lea -0x1(%rbp,%r12,2),%r8"},
	{func(a *Asm) { a.LeaIndex(RDX, R13, RAX, 1, 0) }, "498d540500", "lea (%r13,%rax),%rdx"},
	{func(a *Asm) { a.LeaIndex(RSI, R12, R15, 4, 0x1000) }, "4b8db4bc00100000", "lea 0x1000(%r12,%r15,4),%rsi"},
	{func(a *Asm) { a.LeaIndex(RDI, RSP, RBP, 1, 0) }, "488d3c2c", "lea (%rsp,%rbp),%rdi"},
	{func(a *Asm) { l := a.NewLabel(); a.LeaLabel(RAX, l); a.Bind(l) }, "488d0500000000", "lea (%rip),%rax"},
	{func(a *Asm) { l := a.NewLabel(); a.LeaLabel(R12, l); a.Bind(l) }, "4c8d2500000000", "lea (%rip),%r12"},

	{func(a *Asm) { a.Neg(W64, R11) }, "49f7db", "neg %r11"},
	{func(a *Asm) { a.Not(W32, RDX) }, "f7d2", "not %edx"},
	{func(a *Asm) { a.Shift(SHL, W64, RAX) }, "48d3e0", "shl %cl,%rax"},
	{func(a *Asm) { a.Shift(SAR, W32, R9) }, "41d3f9", "sar %cl,%r9d"},
	{func(a *Asm) { a.Shift(SHR, W64, RCX) }, "48d3e9", "shr %cl,%rcx"},
	{func(a *Asm) { a.ShiftImm(SHR, W64, R12, 63) }, "49c1ec3f", "shr $0x3f,%r12"},
	{func(a *Asm) { a.ShiftImm(ROL, W32, RBX, 8) }, "c1c308", "rol $0x8,%ebx"},
	{func(a *Asm) { a.ShiftImm(ROR, W64, RDI, 32) }, "48c1cf20", "ror $0x20,%rdi"},
	{func(a *Asm) { a.Ror16(RAX, 8) }, "66c1c808", "ror $0x8,%ax"},
	{func(a *Asm) { a.Ror16(R10, 8) }, "6641c1ca08", "ror $0x8,%r10w"},

	{func(a *Asm) { a.Imul(W64, RAX, R15) }, "490fafc7", "imul %r15,%rax"},
	{func(a *Asm) { a.Imul(W32, R9, RCX) }, "440fafc9", "imul %ecx,%r9d"},
	{func(a *Asm) { a.ImulImm(W32, R8, RCX, 3) }, "446bc103", "imul $0x3,%ecx,%r8d"},
	{func(a *Asm) { a.ImulImm(W64, RDX, R13, 1000) }, "4969d5e8030000", "imul $0x3e8,%r13,%rdx"},
	{func(a *Asm) { a.Div(W64, R9) }, "49f7f1", "div %r9"},
	{func(a *Asm) { a.Idiv(W32, RCX) }, "f7f9", "idiv %ecx"},
	{func(a *Asm) { a.Cqo() }, "4899", "cqto"},
	{func(a *Asm) { a.Cdq() }, "99", "cltd"},
	{func(a *Asm) { a.Bswap(W64, R8) }, "490fc8", "bswap %r8"},
	{func(a *Asm) { a.Bswap(W32, RDI) }, "0fcf", "bswap %edi"},

	// Byte registers 4-7 are spl, bpl, sil, dil only with a REX prefix
	// (0x40 when no other bit is needed); without one they are ah..bh.
	{func(a *Asm) { a.Movzx(RAX, RSI, 1) }, "400fb6c6", "movzbl %sil,%eax"},
	{func(a *Asm) { a.Movzx(RAX, RSP, 1) }, "400fb6c4", "movzbl %spl,%eax"},
	{func(a *Asm) { a.Movzx(RSI, RBX, 1) }, "0fb6f3", "movzbl %bl,%esi"},
	{func(a *Asm) { a.Movzx(R12, RBX, 1) }, "440fb6e3", "movzbl %bl,%r12d"},
	{func(a *Asm) { a.Movzx(RDX, R9, 2) }, "410fb7d1", "movzwl %r9w,%edx"},
	{func(a *Asm) { a.Movzx(RDI, RBP, 2) }, "0fb7fd", "movzwl %bp,%edi"},
	{func(a *Asm) { a.Movsx(W64, RAX, RDI, 1) }, "480fbec7", "movsbq %dil,%rax"},
	{func(a *Asm) { a.Movsx(W32, RCX, RBP, 1) }, "400fbecd", "movsbl %bpl,%ecx"},
	{func(a *Asm) { a.Movsx(W32, R10, RDX, 2) }, "440fbfd2", "movswl %dx,%r10d"},
	{func(a *Asm) { a.Movsx(W64, RCX, R14, 4) }, "4963ce", "movsxd %r14d,%rcx"},
	{func(a *Asm) { a.Cmov(CondE, W64, RAX, RBX) }, "480f44c3", "cmove %rbx,%rax"},
	{func(a *Asm) { a.Cmov(CondG, W32, R11, R12) }, "450f4fdc", "cmovg %r12d,%r11d"},
	{func(a *Asm) { a.Cmov(CondB, W64, RSP, R8) }, "490f42e0", "cmovb %r8,%rsp"},
	{func(a *Asm) { a.Setcc(CondB, RAX) }, "0f92c0", "setb %al"},
	{func(a *Asm) { a.Setcc(CondNE, RBP) }, "400f95c5", "setne %bpl"},
	{func(a *Asm) { a.Setcc(CondA, RDI) }, "400f97c7", "seta %dil"},
	{func(a *Asm) { a.Setcc(CondLE, R13) }, "410f9ec5", "setle %r13b"},
	{func(a *Asm) { a.Xchg(W64, RAX, RCX) }, "4887c8", "xchg %rcx,%rax"},
	{func(a *Asm) { a.Xchg(W32, RAX, RAX) }, "87c0", "xchg %eax,%eax"},
	{func(a *Asm) { a.Xchg(W32, R14, RDX) }, "4187d6", "xchg %edx,%r14d"},

	// Loads: the disp8/disp32 boundary is -128..127.
	{func(a *Asm) { a.Load(1, RAX, RDI, 0) }, "0fb607", "movzbl (%rdi),%eax"},
	{func(a *Asm) { a.Load(2, R8, RSP, 127) }, "440fb744247f", "movzwl 0x7f(%rsp),%r8d"},
	{func(a *Asm) { a.Load(4, RCX, RBP, 0) }, "8b4d00", "mov (%rbp),%ecx"},
	{func(a *Asm) { a.Load(8, R15, R12, -128) }, "4d8b7c2480", "mov -0x80(%r12,%riz),%r15"},
	{func(a *Asm) { a.Load(8, RAX, RBX, 128) }, "488b8380000000", "mov 0x80(%rbx),%rax"},
	{func(a *Asm) { a.Load(8, RAX, R13, -129) }, "498b857fffffff", "mov -0x81(%r13),%rax"},
	{func(a *Asm) { a.Load(4, RSI, R12, 0) }, "418b3424", "mov (%r12,%riz),%esi"},
	{func(a *Asm) { a.Load(8, RDX, RSP, math.MaxInt32) }, "488b9424ffffff7f", "mov 0x7fffffff(%rsp),%rdx"},
	{func(a *Asm) { a.LoadSX(1, RAX, RSI, 1) }, "480fbe4601", "movsbq 0x1(%rsi),%rax"},
	{func(a *Asm) { a.LoadSX(2, R9, R10, -2) }, "4d0fbf4afe", "movswq -0x2(%r10),%r9"},
	{func(a *Asm) { a.LoadSX(4, RDX, RSP, 0) }, "48631424", "movsxd (%rsp),%rdx"},

	// Stores.
	{func(a *Asm) { a.Store(1, RDI, 0, RSI) }, "408837", "mov %sil,(%rdi)"},
	{func(a *Asm) { a.Store(1, RAX, 0, RSP) }, "408820", "mov %spl,(%rax)"},
	{func(a *Asm) { a.Store(1, R8, 5, RBP) }, "41886805", "mov %bpl,0x5(%r8)"},
	{func(a *Asm) { a.Store(1, RDX, 0, RDI) }, "40883a", "mov %dil,(%rdx)"},
	{func(a *Asm) { a.Store(1, RCX, 0, RBX) }, "8819", "mov %bl,(%rcx)"},
	{func(a *Asm) { a.Store(1, R13, 0, R9) }, "45884d00", "mov %r9b,(%r13)"},
	{func(a *Asm) { a.Store(2, R12, 0, R9) }, "6645890c24", "mov %r9w,(%r12,%riz)"},
	{func(a *Asm) { a.Store(4, RBP, -8, RAX) }, "8945f8", "mov %eax,-0x8(%rbp)"},
	{func(a *Asm) { a.Store(8, R13, 0, R14) }, "4d897500", "mov %r14,(%r13)"},
	{func(a *Asm) { a.Store(8, RSP, -129, RBX) }, "48899c247fffffff", "mov %rbx,-0x81(%rsp)"},
	{func(a *Asm) { a.StoreImm(1, RAX, 0, -1) }, "c600ff", "movb $0xff,(%rax)"},
	{func(a *Asm) { a.StoreImm(2, RSP, 2, 0x1234) }, "66c74424023412", "movw $0x1234,0x2(%rsp)"},
	{func(a *Asm) { a.StoreImm(4, R11, 0x100, 7) }, "41c78300010000" + "07000000", "movl $0x7,0x100(%r11)"},
	{func(a *Asm) { a.StoreImm(8, RBP, -512, -1) }, "48c78500feffff" + "ffffffff", "movq $-0x1,-0x200(%rbp)"},
	{func(a *Asm) { a.StoreImm(8, R13, 0, 1) }, "49c7450001000000", "movq $0x1,(%r13)"},

	// ALU with memory.
	{func(a *Asm) { a.ALULoad(ADD, W64, RAX, RDI, 8) }, "48034708", "add 0x8(%rdi),%rax"},
	{func(a *Asm) { a.ALULoad(CMP, W32, R10, R12, 0) }, "453b1424", "cmp (%r12,%riz),%r10d"},
	{func(a *Asm) { a.ALUStore(SUB, W64, RSP, 16, R8) }, "4c29442410", "sub %r8,0x10(%rsp)"},
	{func(a *Asm) { a.ALUStore(XOR, W32, R13, 0, RCX) }, "41314d00", "xor %ecx,(%r13)"},
	{func(a *Asm) { a.ALUMemImm(ADD, W64, RBP, -8, 1) }, "488345f801", "addq $0x1,-0x8(%rbp)"},
	{func(a *Asm) { a.ALUMemImm(CMP, W32, R12, 4, 1000) }, "41817c2404e8030000", "cmpl $0x3e8,0x4(%r12,%riz)"},
	{func(a *Asm) { a.CmpMem8Imm(RDI, 0, 0) }, "803f00", "cmpb $0x0,(%rdi)"},
	{func(a *Asm) { a.CmpMem8Imm(R13, 0, -1) }, "41807d00ff", "cmpb $0xff,(%r13)"},

	// Atomics: F0 (lock) comes before 66 and REX.
	{func(a *Asm) { a.LockALU(ADD, 8, RDI, 0, RSI) }, "f0480137", "lock add %rsi,(%rdi)"},
	{func(a *Asm) { a.LockALU(OR, 4, R12, 4, R8) }, "f04509442404", "lock or %r8d,0x4(%r12,%riz)"},
	{func(a *Asm) { a.LockALU(AND, 8, RBP, 0, RAX) }, "f048214500", "lock and %rax,(%rbp)"},
	{func(a *Asm) { a.LockALU(XOR, 4, RAX, -4, R15) }, "f0443178fc", "lock xor %r15d,-0x4(%rax)"},
	{func(a *Asm) { a.LockXadd(8, RDI, 0, RAX) }, "f0480fc107", "lock xadd %rax,(%rdi)"},
	{func(a *Asm) { a.LockXadd(4, R13, 8, R9) }, "f0450fc14d08", "lock xadd %r9d,0x8(%r13)"},
	{func(a *Asm) { a.LockXadd(1, RAX, 0, RSI) }, "f0400fc030", "lock xadd %sil,(%rax)"},
	{func(a *Asm) { a.LockXadd(2, RAX, 0, RCX) }, "f0660fc108", "lock xadd %cx,(%rax)"},
	{func(a *Asm) { a.XchgMem(8, RSP, 0, R10) }, "4c871424", "xchg %r10,(%rsp)"},
	{func(a *Asm) { a.XchgMem(1, RCX, 0, RDI) }, "408639", "xchg %dil,(%rcx)"},
	{func(a *Asm) { a.XchgMem(2, RCX, 0, RDX) }, "668711", "xchg %dx,(%rcx)"},
	{func(a *Asm) { a.XchgMem(4, R8, 0, RDX) }, "418710", "xchg %edx,(%r8)"},
	{func(a *Asm) { a.LockCmpxchg(8, RDI, 0, RDX) }, "f0480fb117", "lock cmpxchg %rdx,(%rdi)"},
	{func(a *Asm) { a.LockCmpxchg(4, R12, 0, R11) }, "f0450fb11c24", "lock cmpxchg %r11d,(%r12,%riz)"},
	{func(a *Asm) { a.LockCmpxchg(1, RSI, 0, RBP) }, "f0400fb02e", "lock cmpxchg %bpl,(%rsi)"},
	{func(a *Asm) { a.LockCmpxchg(2, RSI, 0, RBX) }, "f0660fb11e", "lock cmpxchg %bx,(%rsi)"},

	// Control flow: rel32 counts from the end of the instruction.
	{func(a *Asm) { l := a.NewLabel(); a.Jmp(l); a.Bind(l) }, "e900000000", "jmpq .+0x0"},
	{func(a *Asm) { l := a.NewLabel(); a.Jcc(CondNE, l); a.Bind(l) }, "0f8500000000", "jne .+0x0"},
	{func(a *Asm) { l := a.NewLabel(); a.Jcc(CondL, l); a.Bind(l) }, "0f8c00000000", "jl .+0x0"},
	{func(a *Asm) { l := a.NewLabel(); a.Call(l); a.Bind(l) }, "e800000000", "callq .+0x0"},
	{func(a *Asm) { a.CallReg(RAX) }, "ffd0", "call *%rax"},
	{func(a *Asm) { a.CallReg(R11) }, "41ffd3", "call *%r11"},
	{func(a *Asm) { a.JmpReg(R15) }, "41ffe7", "jmp *%r15"},
	{func(a *Asm) { a.Ret() }, "c3", "retq"},
	{func(a *Asm) { a.Push(RBP) }, "55", "push %rbp"},
	{func(a *Asm) { a.Push(R12) }, "4154", "push %r12"},
	{func(a *Asm) { a.Pop(RBX) }, "5b", "pop %rbx"},
	{func(a *Asm) { a.Pop(R15) }, "415f", "pop %r15"},
	{func(a *Asm) { a.Int3() }, "cc", "int3"},
	{func(a *Asm) { a.Pause() }, "f390", "pause"},
	{func(a *Asm) { a.RepMovsb() }, "f3a4", "rep movsb %ds:(%rsi),%es:(%rdi)"},
	{func(a *Asm) { a.RepStosb() }, "f3aa", "rep stos %al,%es:(%rdi)"},
	{func(a *Asm) { a.Load64Index(RDX, RBX, R13) }, "4a8b142b", "mov (%rbx,%r13),%rdx"},
	{func(a *Asm) { a.Load64Index(RAX, R13, RAX) }, "498b440500", "mov (%r13,%rax),%rax"},
	{func(a *Asm) { a.ALULoad64Index(OR, RDX, RBX, R14) }, "4a0b1433", "or (%rbx,%r14),%rdx"},
	{func(a *Asm) { a.ALULoad64Index(OR, R8, RBX, R15) }, "4e0b043b", "or (%rbx,%r15),%r8"},
	{func(a *Asm) { a.MovdquLoad(0, RSI, 0) }, "f30f6f06", "movdqu (%rsi),%xmm0"},
	{func(a *Asm) { a.MovdquLoad(1, R8, -16) }, "f3410f6f48f0", "movdqu -0x10(%r8),%xmm1"},
	{func(a *Asm) { a.MovdquStore(RDI, 0, 0) }, "f30f7f07", "movdqu %xmm0,(%rdi)"},
	{func(a *Asm) { a.MovdquStore(R10, 0x100, 1) }, "f3410f7f8a00010000", "movdqu %xmm1,0x100(%r10)"},
	{func(a *Asm) { a.Nop(1) }, "90", "nop"},
	{func(a *Asm) { a.Nop(5) }, "0f1f440000", "nopl (%rax,%rax)"},
	{func(a *Asm) { a.Raw(0x0f, 0x0b) }, "0f0b", "ud2"},
}

func TestAsm_encodings(t *testing.T) {
	for _, tc := range encodingTests {
		t.Run(tc.gnu, func(t *testing.T) {
			var a Asm
			tc.emit(&a)
			code, err := a.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(code); got != tc.hex {
				t.Errorf("emitted %s, want %s", got, tc.hex)
			}
			inst, err := x86asm.Decode(code, 64)
			if err != nil {
				t.Fatalf("decode %x: %v", code, err)
			}
			if inst.Len != len(code) {
				t.Errorf("decoded %d of %d bytes", inst.Len, len(code))
			}
			if got := x86asm.GNUSyntax(inst, 0, nil); got != tc.gnu {
				t.Errorf("decodes as %q, want %q", got, tc.gnu)
			}
		})
	}
}

// ---- exhaustive cross-checks against x86asm.Decode ----

var (
	allRegs = []Reg{RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15}
	widths  = []Width{W32, W64}
	sizes   = []int{1, 2, 4, 8}
	aluOps  = []ALUOp{ADD, OR, ADC, SBB, AND, SUB, XOR, CMP}
	// disps cross each displacement boundary: none, disp8, disp32.
	disps = []int32{0, 1, -1, 127, -128, 128, -129, 0x12345, math.MaxInt32, math.MinInt32}
	// imms cross the imm8/imm32 boundary.
	imms = []int32{0, 1, -1, 127, -128, 128, -129, 0x12345678, math.MaxInt32, math.MinInt32}
)

var (
	xALU   = map[ALUOp]x86asm.Op{ADD: x86asm.ADD, OR: x86asm.OR, ADC: x86asm.ADC, SBB: x86asm.SBB, AND: x86asm.AND, SUB: x86asm.SUB, XOR: x86asm.XOR, CMP: x86asm.CMP}
	xShift = map[ShiftOp]x86asm.Op{ROL: x86asm.ROL, ROR: x86asm.ROR, SHL: x86asm.SHL, SHR: x86asm.SHR, SAR: x86asm.SAR}
	xJcc   = [16]x86asm.Op{x86asm.JO, x86asm.JNO, x86asm.JB, x86asm.JAE, x86asm.JE, x86asm.JNE, x86asm.JBE, x86asm.JA,
		x86asm.JS, x86asm.JNS, x86asm.JP, x86asm.JNP, x86asm.JL, x86asm.JGE, x86asm.JLE, x86asm.JG}
	xCmov = [16]x86asm.Op{x86asm.CMOVO, x86asm.CMOVNO, x86asm.CMOVB, x86asm.CMOVAE, x86asm.CMOVE, x86asm.CMOVNE, x86asm.CMOVBE, x86asm.CMOVA,
		x86asm.CMOVS, x86asm.CMOVNS, x86asm.CMOVP, x86asm.CMOVNP, x86asm.CMOVL, x86asm.CMOVGE, x86asm.CMOVLE, x86asm.CMOVG}
	xSet = [16]x86asm.Op{x86asm.SETO, x86asm.SETNO, x86asm.SETB, x86asm.SETAE, x86asm.SETE, x86asm.SETNE, x86asm.SETBE, x86asm.SETA,
		x86asm.SETS, x86asm.SETNS, x86asm.SETP, x86asm.SETNP, x86asm.SETL, x86asm.SETGE, x86asm.SETLE, x86asm.SETG}
)

// xreg is r's x86asm name as a size-byte register. x86asm numbers each
// size's registers in encoding order, except bytes: AL, CL, DL, BL, AH, CH,
// DH, BH, then SPB, BPB, SIB, DIB, R8B... The encoder always means spl..dil
// for byte registers 4-7, never ah..bh.
func xreg(r Reg, size int) x86asm.Reg {
	switch size {
	case 1:
		if r < RSP {
			return x86asm.AL + x86asm.Reg(r)
		}
		return x86asm.SPB + x86asm.Reg(r-RSP)
	case 2:
		return x86asm.AX + x86asm.Reg(r)
	case 4:
		return x86asm.EAX + x86asm.Reg(r)
	case 8:
		return x86asm.RAX + x86asm.Reg(r)
	}
	panic(fmt.Sprintf("xreg: size %d", size))
}

// xmem is the x86asm form of [base+disp].
func xmem(base Reg, disp int32) x86asm.Mem {
	return x86asm.Mem{Base: xreg(base, 8), Disp: int64(disp)}
}

// xmemIndex is the x86asm form of [base+index*scale+disp].
func xmemIndex(base, index Reg, scale uint8, disp int32) x86asm.Mem {
	return x86asm.Mem{Base: xreg(base, 8), Index: xreg(index, 8), Scale: scale, Disp: int64(disp)}
}

// want is what one emitted instruction must decode to.
type want struct {
	op       x86asm.Op
	args     []x86asm.Arg // in Intel order, destination first
	memBytes int          // size of the memory access, 0 to not check
	rexW     bool         // the instruction needs REX.W (64-bit operand size not the default)
	lock     bool         // a LOCK prefix
}

// checker runs emitters through x86asm.Decode and reports mismatches, at
// most maxErrors of them per test.
type checker struct {
	t      *testing.T
	errors int
	cases  int
}

const maxErrors = 20

// check emits one instruction and checks that it decodes as w: the
// opcode, the operands, the memory access size, the LOCK prefix, a REX
// prefix exactly when one is needed (with the right W bit), no prefix the
// decoder ignores, and no byte emitted but not decoded or decoded but not
// emitted.
func (c *checker) check(name string, emit func(*Asm), w want) {
	c.t.Helper()
	c.cases++
	if c.errors >= maxErrors {
		return
	}
	var a Asm
	emit(&a)
	code, err := a.Finish()
	if err != nil {
		c.fail(name, code, "finish: %v", err)
		return
	}
	inst, err := x86asm.Decode(code, 64)
	if err != nil {
		c.fail(name, code, "decode: %v", err)
		return
	}
	text := x86asm.GNUSyntax(inst, 0, nil)
	if inst.Len != len(code) {
		c.fail(name, code, "%q decodes %d of %d bytes", text, inst.Len, len(code))
		return
	}
	if inst.Op != w.op {
		c.fail(name, code, "%q: op %v, want %v", text, inst.Op, w.op)
		return
	}
	for i := range inst.Args {
		var got, exp x86asm.Arg = inst.Args[i], nil
		if i < len(w.args) {
			exp = w.args[i]
		}
		if m, ok := got.(x86asm.Mem); ok && m.Index == 0 {
			// x86asm sets Scale 1 whenever there is a SIB byte, even
			// without an index (base rsp or r12); it means nothing then.
			m.Scale = 0
			got = m
		}
		if got != exp {
			c.fail(name, code, "%q: operand %d is %v, want %v", text, i, got, exp)
			return
		}
		if got == nil {
			break
		}
	}
	if w.memBytes != 0 && inst.MemBytes != w.memBytes {
		c.fail(name, code, "%q: memory access of %d bytes, want %d", text, inst.MemBytes, w.memBytes)
	}
	var lock, rex bool
	var rexByte x86asm.Prefix
	for _, p := range inst.Prefix {
		if p == 0 {
			break
		}
		if p&(x86asm.PrefixIgnored|x86asm.PrefixInvalid) != 0 {
			c.fail(name, code, "%q: prefix %v ignored or invalid", text, p)
		}
		switch {
		case p&0xff == x86asm.PrefixLOCK:
			lock = true
		case p.IsREX():
			rex, rexByte = true, p
		}
	}
	if lock != w.lock {
		c.fail(name, code, "%q: lock prefix %v, want %v", text, lock, w.lock)
	}
	if needed := w.rexW || needsREX(w.args); rex != needed {
		c.fail(name, code, "%q: REX prefix %v, want %v", text, rex, needed)
	} else if rex && (rexByte&x86asm.PrefixREXW != 0) != w.rexW {
		c.fail(name, code, "%q: REX.W %v, want %v", text, rexByte&x86asm.PrefixREXW != 0, w.rexW)
	}
}

// needsREX reports whether any operand is r8-r15 (of any size), a base or
// index r8-r15, or spl, bpl, sil or dil.
func needsREX(args []x86asm.Arg) bool {
	ext := func(r x86asm.Reg) bool {
		switch {
		case r >= x86asm.SPB && r <= x86asm.R15B,
			r >= x86asm.R8W && r <= x86asm.R15W,
			r >= x86asm.R8L && r <= x86asm.R15L,
			r >= x86asm.R8 && r <= x86asm.R15:
			return true
		}
		return false
	}
	for _, a := range args {
		switch a := a.(type) {
		case x86asm.Reg:
			if ext(a) {
				return true
			}
		case x86asm.Mem:
			if ext(a.Base) || ext(a.Index) {
				return true
			}
		}
	}
	return false
}

func (c *checker) fail(name string, code []byte, format string, args ...any) {
	c.t.Helper()
	c.errors++
	c.t.Errorf("%s = % x: %s", name, code, fmt.Sprintf(format, args...))
	if c.errors == maxErrors {
		c.t.Errorf("too many errors, stopping")
	}
}

// exhaustive runs gen, which calls check for every case of one method.
func exhaustive(t *testing.T, name string, gen func(c *checker)) {
	t.Run(name, func(t *testing.T) {
		c := &checker{t: t}
		gen(c)
		if c.cases == 0 {
			t.Fatal("no cases")
		}
	})
}

func imm(v int32) x86asm.Imm { return x86asm.Imm(v) }

func TestAsm_decodeRegisterOps(t *testing.T) {
	exhaustive(t, "ALU", func(c *checker) {
		for _, op := range aluOps {
			for _, w := range widths {
				for _, dst := range allRegs {
					for _, src := range allRegs {
						c.check(fmt.Sprintf("ALU(%v, %v, %v, %v)", op, w, dst, src),
							func(a *Asm) { a.ALU(op, w, dst, src) },
							want{op: xALU[op], args: []x86asm.Arg{xreg(dst, int(w)), xreg(src, int(w))}, rexW: w == W64})
					}
				}
			}
		}
	})
	exhaustive(t, "ALUImm", func(c *checker) {
		for _, op := range aluOps {
			for _, w := range widths {
				for _, dst := range allRegs {
					for _, v := range imms {
						c.check(fmt.Sprintf("ALUImm(%v, %v, %v, %d)", op, w, dst, v),
							func(a *Asm) { a.ALUImm(op, w, dst, v) },
							want{op: xALU[op], args: []x86asm.Arg{xreg(dst, int(w)), imm(v)}, rexW: w == W64})
					}
				}
			}
		}
	})
	exhaustive(t, "Test", func(c *checker) {
		for _, w := range widths {
			for _, x := range allRegs {
				for _, y := range allRegs {
					c.check(fmt.Sprintf("Test(%v, %v, %v)", w, x, y),
						func(a *Asm) { a.Test(w, x, y) },
						want{op: x86asm.TEST, args: []x86asm.Arg{xreg(x, int(w)), xreg(y, int(w))}, rexW: w == W64})
				}
				for _, v := range imms {
					c.check(fmt.Sprintf("TestImm(%v, %v, %d)", w, x, v),
						func(a *Asm) { a.TestImm(w, x, v) },
						want{op: x86asm.TEST, args: []x86asm.Arg{xreg(x, int(w)), imm(v)}, rexW: w == W64})
				}
			}
		}
	})
	exhaustive(t, "Mov", func(c *checker) {
		for _, w := range widths {
			for _, dst := range allRegs {
				for _, src := range allRegs {
					c.check(fmt.Sprintf("Mov(%v, %v, %v)", w, dst, src),
						func(a *Asm) { a.Mov(w, dst, src) },
						want{op: x86asm.MOV, args: []x86asm.Arg{xreg(dst, int(w)), xreg(src, int(w))}, rexW: w == W64})
				}
			}
		}
	})
	exhaustive(t, "MovImm32", func(c *checker) {
		for _, dst := range allRegs {
			for _, v := range []uint32{0, 1, 0x7f, 0x80, 0x7fffffff, 0x80000000, 0xffffffff} {
				// x86asm reports every imm32 as a signed int32.
				c.check(fmt.Sprintf("MovImm32(%v, %#x)", dst, v),
					func(a *Asm) { a.MovImm32(dst, v) },
					want{op: x86asm.MOV, args: []x86asm.Arg{xreg(dst, 4), x86asm.Imm(int32(v))}})
			}
		}
	})
	exhaustive(t, "Xchg", func(c *checker) {
		for _, w := range widths {
			for _, x := range allRegs {
				for _, y := range allRegs {
					c.check(fmt.Sprintf("Xchg(%v, %v, %v)", w, x, y),
						func(a *Asm) { a.Xchg(w, x, y) },
						want{op: x86asm.XCHG, args: []x86asm.Arg{xreg(x, int(w)), xreg(y, int(w))}, rexW: w == W64})
				}
			}
		}
	})
	exhaustive(t, "Cmov", func(c *checker) {
		for cc := range Cond(16) {
			for _, w := range widths {
				for _, dst := range allRegs {
					for _, src := range allRegs {
						c.check(fmt.Sprintf("Cmov(%v, %v, %v, %v)", cc, w, dst, src),
							func(a *Asm) { a.Cmov(cc, w, dst, src) },
							want{op: xCmov[cc], args: []x86asm.Arg{xreg(dst, int(w)), xreg(src, int(w))}, rexW: w == W64})
					}
				}
			}
		}
	})
	exhaustive(t, "Setcc", func(c *checker) {
		for cc := range Cond(16) {
			for _, r := range allRegs {
				c.check(fmt.Sprintf("Setcc(%v, %v)", cc, r),
					func(a *Asm) { a.Setcc(cc, r) },
					want{op: xSet[cc], args: []x86asm.Arg{xreg(r, 1)}})
			}
		}
	})
	exhaustive(t, "unary", func(c *checker) {
		for _, w := range widths {
			for _, r := range allRegs {
				args := []x86asm.Arg{xreg(r, int(w))}
				for _, u := range []struct {
					name string
					emit func(*Asm, Width, Reg)
					op   x86asm.Op
				}{
					{"Neg", (*Asm).Neg, x86asm.NEG},
					{"Not", (*Asm).Not, x86asm.NOT},
					{"Div", (*Asm).Div, x86asm.DIV},
					{"Idiv", (*Asm).Idiv, x86asm.IDIV},
					{"Bswap", (*Asm).Bswap, x86asm.BSWAP},
				} {
					c.check(fmt.Sprintf("%s(%v, %v)", u.name, w, r),
						func(a *Asm) { u.emit(a, w, r) },
						want{op: u.op, args: args, rexW: w == W64})
				}
			}
		}
	})
	exhaustive(t, "Shift", func(c *checker) {
		for op, xop := range xShift {
			for _, w := range widths {
				for _, r := range allRegs {
					c.check(fmt.Sprintf("Shift(%v, %v, %v)", op, w, r),
						func(a *Asm) { a.Shift(op, w, r) },
						want{op: xop, args: []x86asm.Arg{xreg(r, int(w)), x86asm.CL}, rexW: w == W64})
					for _, n := range []uint8{0, 1, 7, 8, 31, 32, 63, 255} {
						c.check(fmt.Sprintf("ShiftImm(%v, %v, %v, %d)", op, w, r, n),
							func(a *Asm) { a.ShiftImm(op, w, r, n) },
							want{op: xop, args: []x86asm.Arg{xreg(r, int(w)), x86asm.Imm(n)}, rexW: w == W64})
					}
				}
			}
		}
		for _, r := range allRegs {
			for _, n := range []uint8{1, 8, 15} {
				c.check(fmt.Sprintf("Ror16(%v, %d)", r, n),
					func(a *Asm) { a.Ror16(r, n) },
					want{op: x86asm.ROR, args: []x86asm.Arg{xreg(r, 2), x86asm.Imm(n)}})
			}
		}
	})
	exhaustive(t, "Imul", func(c *checker) {
		for _, w := range widths {
			for _, dst := range allRegs {
				for _, src := range allRegs {
					c.check(fmt.Sprintf("Imul(%v, %v, %v)", w, dst, src),
						func(a *Asm) { a.Imul(w, dst, src) },
						want{op: x86asm.IMUL, args: []x86asm.Arg{xreg(dst, int(w)), xreg(src, int(w))}, rexW: w == W64})
					for _, v := range imms {
						c.check(fmt.Sprintf("ImulImm(%v, %v, %v, %d)", w, dst, src, v),
							func(a *Asm) { a.ImulImm(w, dst, src, v) },
							want{op: x86asm.IMUL, args: []x86asm.Arg{xreg(dst, int(w)), xreg(src, int(w)), imm(v)}, rexW: w == W64})
					}
				}
			}
		}
	})
	exhaustive(t, "Bsr", func(c *checker) {
		for _, w := range widths {
			for _, dst := range allRegs {
				for _, src := range allRegs {
					c.check(fmt.Sprintf("Bsr(%v, %v, %v)", w, dst, src),
						func(a *Asm) { a.Bsr(w, dst, src) },
						want{op: x86asm.BSR, args: []x86asm.Arg{xreg(dst, int(w)), xreg(src, int(w))}, rexW: w == W64})
				}
			}
		}
	})
	exhaustive(t, "Movzx", func(c *checker) {
		for _, from := range []int{1, 2} {
			for _, dst := range allRegs {
				for _, src := range allRegs {
					c.check(fmt.Sprintf("Movzx(%v, %v, %d)", dst, src, from),
						func(a *Asm) { a.Movzx(dst, src, from) },
						want{op: x86asm.MOVZX, args: []x86asm.Arg{xreg(dst, 4), xreg(src, from)}})
				}
			}
		}
	})
	exhaustive(t, "Movsx", func(c *checker) {
		for _, w := range widths {
			for _, from := range []int{1, 2, 4} {
				if from == 4 && w == W32 {
					continue // movsxd has no 32-bit form; see TestAsm_panics
				}
				op := x86asm.MOVSX
				if from == 4 {
					op = x86asm.MOVSXD
				}
				for _, dst := range allRegs {
					for _, src := range allRegs {
						c.check(fmt.Sprintf("Movsx(%v, %v, %v, %d)", w, dst, src, from),
							func(a *Asm) { a.Movsx(w, dst, src, from) },
							want{op: op, args: []x86asm.Arg{xreg(dst, int(w)), xreg(src, from)}, rexW: w == W64})
					}
				}
			}
		}
	})
	exhaustive(t, "indirect", func(c *checker) {
		for _, r := range allRegs {
			args := []x86asm.Arg{xreg(r, 8)}
			// call, jmp, push and pop are 64-bit by default: no REX.W.
			c.check(fmt.Sprintf("CallReg(%v)", r), func(a *Asm) { a.CallReg(r) }, want{op: x86asm.CALL, args: args})
			c.check(fmt.Sprintf("JmpReg(%v)", r), func(a *Asm) { a.JmpReg(r) }, want{op: x86asm.JMP, args: args})
			c.check(fmt.Sprintf("Push(%v)", r), func(a *Asm) { a.Push(r) }, want{op: x86asm.PUSH, args: args})
			c.check(fmt.Sprintf("Pop(%v)", r), func(a *Asm) { a.Pop(r) }, want{op: x86asm.POP, args: args})
		}
	})
	exhaustive(t, "nullary", func(c *checker) {
		c.check("Ret()", (*Asm).Ret, want{op: x86asm.RET})
		c.check("Cqo()", (*Asm).Cqo, want{op: x86asm.CQO, rexW: true})
		c.check("Cdq()", (*Asm).Cdq, want{op: x86asm.CDQ})
		c.check("Int3()", (*Asm).Int3, want{op: x86asm.INT, args: []x86asm.Arg{x86asm.Imm(3)}})
	})
}

// TestAsm_MovImm64 checks that MovImm64 gives the 64-bit value it is
// asked for, with the shortest flag-preserving form.
func TestAsm_MovImm64(t *testing.T) {
	values := []uint64{
		0, 1, 0x7f, 0x80, 0x7fffffff, 0x80000000, 0xffffffff, // mov r32, imm32
		0x100000000, 0x7fffffff00000000, 1 << 63, 0x123456789abcdef0, // movabs
		1<<64 - 1<<31 - 1, 1<<64 - 1<<32, // movabs: just below int32, and 0xffffffff00000000
		math.MaxUint64, 1<<64 - 0x80, 1<<64 - 1<<31, // mov r64, simm32
	}
	for _, dst := range allRegs {
		for _, v := range values {
			var a Asm
			a.MovImm64(dst, v)
			code, _ := a.Finish()
			inst, err := x86asm.Decode(code, 64)
			if err != nil {
				t.Fatalf("MovImm64(%v, %#x) = % x: %v", dst, v, code, err)
			}
			if inst.Len != len(code) || inst.Op != x86asm.MOV || inst.Args[0] == nil || inst.Args[2] != nil {
				t.Fatalf("MovImm64(%v, %#x) = % x = %v: not one mov", dst, v, code, inst)
			}
			imm, ok := inst.Args[1].(x86asm.Imm)
			if !ok {
				t.Fatalf("MovImm64(%v, %#x) = %v: no immediate", dst, v, inst)
			}
			// The value the register gets: an imm into a 32-bit
			// register is zero-extended to 64 bits, an imm32 into a 64-bit
			// register sign-extended (x86asm's Imm is already the
			// sign-extended value).
			var got uint64
			var wantLen int
			switch inst.Args[0] {
			case xreg(dst, 4):
				got = uint64(uint32(imm))
			case xreg(dst, 8):
				got = uint64(imm)
			default:
				t.Fatalf("MovImm64(%v, %#x) = %v: wrong register", dst, v, inst)
			}
			switch s := int64(v); {
			case v <= math.MaxUint32:
				wantLen = 5 // B8+r id
				if dst >= R8 {
					wantLen++ // REX.B
				}
			case s >= math.MinInt32 && s <= math.MaxInt32:
				wantLen = 7 // REX.W C7 /0 id
			default:
				wantLen = 10 // REX.W B8+r io
			}
			if got != v || len(code) != wantLen {
				t.Errorf("MovImm64(%v, %#x) = % x = %s: sets %#x in %d bytes, want %#x in %d",
					dst, v, code, x86asm.GNUSyntax(inst, 0, nil), got, len(code), v, wantLen)
			}
		}
	}
}

func TestAsm_decodeMemoryOps(t *testing.T) {
	exhaustive(t, "Load", func(c *checker) {
		for _, size := range sizes {
			op, dsize := x86asm.MOVZX, 4 // movzx r32: zero-extends to 64 bits
			if size >= 4 {
				op, dsize = x86asm.MOV, size
			}
			for _, dst := range allRegs {
				for _, base := range allRegs {
					for _, d := range disps {
						c.check(fmt.Sprintf("Load(%d, %v, %v, %d)", size, dst, base, d),
							func(a *Asm) { a.Load(size, dst, base, d) },
							want{op: op, args: []x86asm.Arg{xreg(dst, dsize), xmem(base, d)}, memBytes: size, rexW: size == 8})
					}
				}
			}
		}
	})
	exhaustive(t, "LoadSX", func(c *checker) {
		for _, size := range []int{1, 2, 4} {
			op := x86asm.MOVSX
			if size == 4 {
				op = x86asm.MOVSXD
			}
			for _, dst := range allRegs {
				for _, base := range allRegs {
					for _, d := range disps {
						c.check(fmt.Sprintf("LoadSX(%d, %v, %v, %d)", size, dst, base, d),
							func(a *Asm) { a.LoadSX(size, dst, base, d) },
							want{op: op, args: []x86asm.Arg{xreg(dst, 8), xmem(base, d)}, memBytes: size, rexW: true})
					}
				}
			}
		}
	})
	exhaustive(t, "Store", func(c *checker) {
		for _, size := range sizes {
			for _, src := range allRegs {
				for _, base := range allRegs {
					for _, d := range disps {
						c.check(fmt.Sprintf("Store(%d, %v, %d, %v)", size, base, d, src),
							func(a *Asm) { a.Store(size, base, d, src) },
							want{op: x86asm.MOV, args: []x86asm.Arg{xmem(base, d), xreg(src, size)}, memBytes: size, rexW: size == 8})
					}
				}
			}
		}
	})
	exhaustive(t, "StoreImm", func(c *checker) {
		for _, size := range sizes {
			for _, base := range allRegs {
				for _, d := range disps {
					for _, v := range imms {
						// The low size bytes of v are stored. x86asm shows
						// the imm8 of a byte operation unsigned, and an
						// imm16 or imm32 sign-extended.
						var x x86asm.Imm
						switch size {
						case 1:
							x = x86asm.Imm(uint8(v))
						case 2:
							x = x86asm.Imm(int16(v))
						default:
							x = x86asm.Imm(v)
						}
						c.check(fmt.Sprintf("StoreImm(%d, %v, %d, %d)", size, base, d, v),
							func(a *Asm) { a.StoreImm(size, base, d, v) },
							want{op: x86asm.MOV, args: []x86asm.Arg{xmem(base, d), x}, memBytes: size, rexW: size == 8})
					}
				}
			}
		}
	})
	exhaustive(t, "ALULoad+ALUStore", func(c *checker) {
		for _, op := range aluOps {
			for _, w := range widths {
				for _, r := range allRegs {
					for _, base := range allRegs {
						for _, d := range disps {
							c.check(fmt.Sprintf("ALULoad(%v, %v, %v, %v, %d)", op, w, r, base, d),
								func(a *Asm) { a.ALULoad(op, w, r, base, d) },
								want{op: xALU[op], args: []x86asm.Arg{xreg(r, int(w)), xmem(base, d)}, memBytes: int(w), rexW: w == W64})
							c.check(fmt.Sprintf("ALUStore(%v, %v, %v, %d, %v)", op, w, base, d, r),
								func(a *Asm) { a.ALUStore(op, w, base, d, r) },
								want{op: xALU[op], args: []x86asm.Arg{xmem(base, d), xreg(r, int(w))}, memBytes: int(w), rexW: w == W64})
						}
					}
				}
			}
		}
	})
	exhaustive(t, "ALUMemImm", func(c *checker) {
		for _, op := range aluOps {
			for _, w := range widths {
				for _, base := range allRegs {
					for _, d := range disps {
						for _, v := range imms {
							c.check(fmt.Sprintf("ALUMemImm(%v, %v, %v, %d, %d)", op, w, base, d, v),
								func(a *Asm) { a.ALUMemImm(op, w, base, d, v) },
								want{op: xALU[op], args: []x86asm.Arg{xmem(base, d), imm(v)}, memBytes: int(w), rexW: w == W64})
						}
					}
				}
			}
		}
	})
	exhaustive(t, "CmpMem8Imm", func(c *checker) {
		for _, base := range allRegs {
			for _, d := range disps {
				for _, v := range []int8{0, 1, -1, 127, -128} {
					c.check(fmt.Sprintf("CmpMem8Imm(%v, %d, %d)", base, d, v),
						func(a *Asm) { a.CmpMem8Imm(base, d, v) },
						want{op: x86asm.CMP, args: []x86asm.Arg{xmem(base, d), x86asm.Imm(uint8(v))}, memBytes: 1})
				}
			}
		}
	})
	exhaustive(t, "Lea", func(c *checker) {
		for _, dst := range allRegs {
			for _, base := range allRegs {
				for _, d := range disps {
					c.check(fmt.Sprintf("Lea(%v, %v, %d)", dst, base, d),
						func(a *Asm) { a.Lea(dst, base, d) },
						want{op: x86asm.LEA, args: []x86asm.Arg{xreg(dst, 8), xmem(base, d)}, rexW: true})
				}
			}
		}
	})
	exhaustive(t, "LeaIndex", func(c *checker) {
		for _, dst := range allRegs {
			for _, base := range allRegs {
				for _, index := range allRegs {
					if index == RSP {
						continue // not encodable; see TestAsm_panics
					}
					for _, scale := range []uint8{1, 2, 4, 8} {
						for _, d := range []int32{0, -1, 127, 128, math.MinInt32} {
							c.check(fmt.Sprintf("LeaIndex(%v, %v, %v, %d, %d)", dst, base, index, scale, d),
								func(a *Asm) { a.LeaIndex(dst, base, index, scale, d) },
								want{op: x86asm.LEA, args: []x86asm.Arg{xreg(dst, 8), xmemIndex(base, index, scale, d)}, rexW: true})
						}
					}
				}
			}
		}
	})
}

func TestAsm_decodeAtomics(t *testing.T) {
	exhaustive(t, "LockALU", func(c *checker) {
		for _, op := range []ALUOp{ADD, OR, ADC, SBB, AND, SUB, XOR} {
			for _, size := range []int{4, 8} {
				for _, src := range allRegs {
					for _, base := range allRegs {
						for _, d := range disps {
							c.check(fmt.Sprintf("LockALU(%v, %d, %v, %d, %v)", op, size, base, d, src),
								func(a *Asm) { a.LockALU(op, size, base, d, src) },
								want{op: xALU[op], args: []x86asm.Arg{xmem(base, d), xreg(src, size)}, memBytes: size, rexW: size == 8, lock: true})
						}
					}
				}
			}
		}
	})
	for _, m := range []struct {
		name string
		emit func(a *Asm, size int, base Reg, disp int32, src Reg)
		op   x86asm.Op
		lock bool
	}{
		{"LockXadd", (*Asm).LockXadd, x86asm.XADD, true},
		{"XchgMem", (*Asm).XchgMem, x86asm.XCHG, false},
		{"LockCmpxchg", (*Asm).LockCmpxchg, x86asm.CMPXCHG, true},
	} {
		exhaustive(t, m.name, func(c *checker) {
			for _, size := range sizes {
				for _, src := range allRegs {
					for _, base := range allRegs {
						for _, d := range disps {
							c.check(fmt.Sprintf("%s(%d, %v, %d, %v)", m.name, size, base, d, src),
								func(a *Asm) { m.emit(a, size, base, d, src) },
								want{op: m.op, args: []x86asm.Arg{xmem(base, d), xreg(src, size)}, memBytes: size, rexW: size == 8, lock: m.lock})
						}
					}
				}
			}
		})
	}
}

// TestAsm_displacement checks the length of memory operands for every
// base register: no displacement for 0 (except rbp and r13, which need a
// disp8 of 0), disp8 for -128..127, disp32 otherwise, and a SIB byte for
// rsp and r12. Every memory method shares this encoding; Load(8) shows it
// as REX.W 8B ModRM [SIB] [disp].
func TestAsm_displacement(t *testing.T) {
	for _, base := range allRegs {
		for _, d := range disps {
			var a Asm
			a.Load(8, RAX, base, d)
			wantLen := 3 // REX.W, 8B, ModRM
			if base == RSP || base == R12 {
				wantLen++ // SIB
			}
			switch {
			case d == 0 && base != RBP && base != R13:
			case d >= -128 && d <= 127:
				wantLen++
			default:
				wantLen += 4
			}
			if a.Len() != wantLen {
				t.Errorf("Load(8, rax, %v, %d) is %d bytes, want %d", base, d, a.Len(), wantLen)
			}
		}
	}
}

// ---- labels ----

// target decodes the branch or RIP-relative lea at code[pc:] and returns
// the address it refers to.
func target(t *testing.T, code []byte, pc int) (x86asm.Op, int) {
	t.Helper()
	inst, err := x86asm.Decode(code[pc:], 64)
	if err != nil {
		t.Fatalf("decode at %d: %v", pc, err)
	}
	end := pc + inst.Len
	switch arg := inst.Args[0].(type) {
	case x86asm.Rel:
		return inst.Op, end + int(arg)
	case x86asm.Reg:
		if m, ok := inst.Args[1].(x86asm.Mem); ok && m.Base == x86asm.RIP {
			return inst.Op, end + int(m.Disp)
		}
	}
	t.Fatalf("at %d: %v refers to no address", pc, inst)
	return 0, 0
}

func TestAsm_labels(t *testing.T) {
	// A program with forward and backward references of every kind, some
	// labels referenced several times, and padding so that the offsets are
	// not all small:
	//
	//	top:    jmp fwd        ; forward
	//	        call fn        ; forward, to a label bound later
	//	        lea rax, [rip+data]
	//	mid:    nop x200
	//	        je top         ; backward
	//	        jg mid         ; backward
	//	fwd:    lea r13, [rip+top]
	//	        jne fwd        ; to itself's label, backward by its own length
	//	        jmp mid
	//	fn:     ret
	//	data:   int3
	var a Asm
	top, mid, fwd, fn, data := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	type ref struct {
		at int
		op x86asm.Op
		l  Label
	}
	var refs []ref
	emit := func(op x86asm.Op, l Label, e func()) {
		refs = append(refs, ref{a.Len(), op, l})
		e()
	}
	a.Bind(top)
	emit(x86asm.JMP, fwd, func() { a.Jmp(fwd) })
	emit(x86asm.CALL, fn, func() { a.Call(fn) })
	emit(x86asm.LEA, data, func() { a.LeaLabel(RAX, data) })
	a.Bind(mid)
	a.Nop(200)
	emit(x86asm.JE, top, func() { a.Jcc(CondE, top) })
	emit(x86asm.JG, mid, func() { a.Jcc(CondG, mid) })
	a.Bind(fwd)
	emit(x86asm.LEA, top, func() { a.LeaLabel(R13, top) })
	emit(x86asm.JNE, fwd, func() { a.Jcc(CondNE, fwd) })
	emit(x86asm.JMP, mid, func() { a.Jmp(mid) })
	a.Bind(fn)
	a.Ret()
	a.Bind(data)
	a.Int3()

	code, err := a.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != a.Len() {
		t.Fatalf("Finish returned %d bytes, Len is %d", len(code), a.Len())
	}
	for _, r := range refs {
		op, got := target(t, code, r.at)
		want, ok := a.Offset(r.l)
		if !ok {
			t.Fatalf("%v unbound", r.l)
		}
		if op != r.op || got != want {
			t.Errorf("at %d: %v to %d, want %v to %v at %d", r.at, op, got, r.op, r.l, want)
		}
	}
	// Spot-check the offsets themselves.
	for l, w := range map[Label]int{top: 0, mid: 5 + 5 + 7} {
		if got, _ := a.Offset(l); got != w {
			t.Errorf("Offset(%v) = %d, want %d", l, got, w)
		}
	}
}

// TestAsm_shortJumps: a jump backward takes the short form exactly when
// its rel8 reaches (-128); a forward one when SetShortJumps asks, and
// Finish says which long ones would have reached (+127) and fails,
// naming them, for short ones that do not.
func TestAsm_shortJumps(t *testing.T) {
	for _, tc := range []struct {
		name string
		jump func(a *Asm, l Label)
		op   x86asm.Op
		long int // the long form's length
	}{
		{"jmp", func(a *Asm, l Label) { a.Jmp(l) }, x86asm.JMP, 5},
		{"jcc", func(a *Asm, l Label) { a.Jcc(CondBE, l) }, x86asm.JBE, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Backward: the rel8 counts from the end of the 2-byte jump.
			for _, gap := range []int{0, 1, 126, 127, 128} {
				var a Asm
				l := a.NewLabel()
				a.Bind(l)
				a.Nop(gap)
				tc.jump(&a, l)
				code, err := a.Finish()
				if err != nil {
					t.Fatal(err)
				}
				wantLen := 2
				if gap+2 > 128 {
					wantLen = tc.long
				}
				inst, err := x86asm.Decode(code[gap:], 64)
				if op, to := target(t, code, gap); err != nil || op != tc.op || to != 0 || inst.Len != wantLen {
					t.Errorf("back over %d bytes: %v to %d, %d bytes (%v), want %v to 0, %d bytes", gap, op, to, inst.Len, err, tc.op, wantLen)
				}
			}
			// Forward, long, then short where the long one said it
			// reaches.
			for _, gap := range []int{0, 127, 128} {
				emit := func(short []bool) ([]byte, *Asm, error) {
					var a Asm
					a.SetShortJumps(short)
					l := a.NewLabel()
					tc.jump(&a, l)
					a.Nop(gap)
					a.Bind(l)
					code, err := a.Finish()
					return code, &a, err
				}
				code, a, err := emit(nil)
				if err != nil {
					t.Fatal(err)
				}
				if op, to := target(t, code, 0); op != tc.op || to != tc.long+gap {
					t.Errorf("forward over %d: %v to %d", gap, op, to)
				}
				reach := a.ShortJumps()
				if len(reach) != 1 || reach[0] != (gap <= 127) {
					t.Errorf("forward over %d: ShortJumps %v", gap, reach)
				}
				code, _, err = emit([]bool{true})
				var far *FarJumpsError
				if gap > 127 {
					if !errors.As(err, &far) || len(far.Jumps) != 1 || far.Jumps[0] != 0 {
						t.Errorf("short forward over %d: %v, want a FarJumpsError for jump 0", gap, err)
					}
					continue
				}
				inst, derr := x86asm.Decode(code, 64)
				if op, to := target(t, code, 0); err != nil || derr != nil || op != tc.op || to != 2+gap || inst.Len != 2 {
					t.Errorf("short forward over %d: %v to %d (%v)", gap, op, to, err)
				}
			}
		})
	}
}

func TestAsm_Offset(t *testing.T) {
	var a Asm
	a.Nop(3)
	l := a.NewLabel()
	if _, ok := a.Offset(l); ok {
		t.Errorf("Offset of an unbound label is ok")
	}
	a.Bind(l)
	if got, ok := a.Offset(l); !ok || got != 3 {
		t.Errorf("Offset = %d, %v, want 3, true", got, ok)
	}
}

func TestAsm_Finish_unbound(t *testing.T) {
	var a Asm
	bound, unbound, unused := a.NewLabel(), a.NewLabel(), a.NewLabel()
	_ = unused // never referenced: may stay unbound
	a.Bind(bound)
	a.Jmp(bound)
	a.Jcc(CondE, unbound)
	a.Call(unbound)
	_, err := a.Finish()
	if err == nil {
		t.Fatal("Finish with an unbound label: no error")
	}
	if msg := err.Error(); !strings.Contains(msg, unbound.String()) || strings.Contains(msg, bound.String()) || strings.Contains(msg, unused.String()) {
		t.Errorf("error %q should name %v only", msg, unbound)
	}

	// Binding it afterwards makes Finish succeed.
	a.Bind(unbound)
	code, err := a.Finish()
	if err != nil {
		t.Fatalf("Finish after Bind: %v", err)
	}
	if op, got := target(t, code, 2); op != x86asm.JE || got != len(code) { // after a short jmp
		t.Errorf("je to %d, want %d", got, len(code))
	}
}

// TestAsm_panics lists the generator bugs the encoder refuses.
func TestAsm_panics(t *testing.T) {
	for _, tc := range []struct {
		name string
		emit func(a *Asm)
	}{
		{"bind twice", func(a *Asm) { l := a.NewLabel(); a.Bind(l); a.Bind(l) }},
		{"zero label", func(a *Asm) { a.Jmp(0) }},
		{"label of another Asm", func(a *Asm) { var b Asm; b.NewLabel(); a.Bind(b.NewLabel()) }},
		{"Offset of no label", func(a *Asm) { a.Offset(1) }},
		{"width 0", func(a *Asm) { a.ALU(ADD, 0, RAX, RCX) }},
		{"width 2", func(a *Asm) { a.Mov(2, RAX, RCX) }},
		{"register 16", func(a *Asm) { a.Mov(W64, 16, RCX) }},
		{"base register 16", func(a *Asm) { a.Load(8, RAX, 16, 0) }},
		{"Load size 3", func(a *Asm) { a.Load(3, RAX, RCX, 0) }},
		{"LoadSX size 8", func(a *Asm) { a.LoadSX(8, RAX, RCX, 0) }},
		{"Store size 16", func(a *Asm) { a.Store(16, RAX, 0, RCX) }},
		{"StoreImm size 0", func(a *Asm) { a.StoreImm(0, RAX, 0, 1) }},
		{"scale 3", func(a *Asm) { a.LeaIndex(RAX, RBX, RCX, 3, 0) }},
		{"scale 0", func(a *Asm) { a.LeaIndex(RAX, RBX, RCX, 0, 0) }},
		{"rsp index", func(a *Asm) { a.LeaIndex(RAX, RBX, RSP, 1, 0) }},
		{"index 16", func(a *Asm) { a.LeaIndex(RAX, RBX, 16, 1, 0) }},
		{"Movzx from 4", func(a *Asm) { a.Movzx(RAX, RCX, 4) }},
		{"Movsx W32 from 4", func(a *Asm) { a.Movsx(W32, RAX, RCX, 4) }},
		{"Movsx from 8", func(a *Asm) { a.Movsx(W64, RAX, RCX, 8) }},
		{"ALU op 8", func(a *Asm) { a.ALU(8, W64, RAX, RCX) }},
		{"shift op 6", func(a *Asm) { a.Shift(6, W64, RAX) }},
		{"cond 16", func(a *Asm) { a.Setcc(16, RAX) }},
		{"lock cmp", func(a *Asm) { a.LockALU(CMP, 8, RAX, 0, RCX) }},
		{"LockALU size 2", func(a *Asm) { a.LockALU(ADD, 2, RAX, 0, RCX) }},
		{"LockXadd size 3", func(a *Asm) { a.LockXadd(3, RAX, 0, RCX) }},
		{"Nop(-1)", func(a *Asm) { a.Nop(-1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("no panic")
				}
				if msg, _ := r.(string); !strings.HasPrefix(msg, "BUG: amd64: ") {
					t.Errorf("panic %v, want a message starting \"BUG: amd64: \"", r)
				}
			}()
			var a Asm
			tc.emit(&a)
		})
	}
}

func TestAsm_Nop(t *testing.T) {
	for n := range 21 {
		var a Asm
		a.Nop(n)
		code, _ := a.Finish()
		if len(code) != n {
			t.Fatalf("Nop(%d) emitted %d bytes", n, len(code))
		}
		insts := 0
		for pc := 0; pc < n; insts++ {
			inst, err := x86asm.Decode(code[pc:], 64)
			if err != nil {
				t.Fatalf("Nop(%d) = % x: at %d: %v", n, code, pc, err)
			}
			if inst.Op != x86asm.NOP && !(inst.Op == x86asm.XCHG && inst.Args[0] == x86asm.AX && inst.Args[1] == x86asm.AX) {
				t.Fatalf("Nop(%d) = % x: at %d: %v is not a nop", n, code, pc, inst)
			}
			pc += inst.Len
			if pc > n {
				t.Fatalf("Nop(%d) = % x: the last nop runs past the end", n, code)
			}
		}
		// As few instructions as the 9-byte maximum allows.
		if want := (n + 8) / 9; insts != want {
			t.Errorf("Nop(%d) = % x: %d instructions, want %d", n, code, insts, want)
		}
	}
}

func TestReg_String(t *testing.T) {
	for r, want := range []string{"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
		"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"} {
		// x86asm's names are upper case.
		if got := Reg(r).String(); got != want || strings.ToLower(xreg(Reg(r), 8).String()) != want {
			t.Errorf("Reg(%d).String() = %q, x86asm says %v, want %q", r, got, xreg(Reg(r), 8), want)
		}
	}
	if got := Reg(16).String(); got != "Reg(16)" {
		t.Errorf("Reg(16).String() = %q", got)
	}
}

// emitMix emits reps times a mix of instructions like a code generator's,
// with a backward jump to top, and returns how many instructions it emitted.
func emitMix(a *Asm, top Label, reps int) int {
	for i := range reps {
		r := allRegs[i%16]
		a.Mov(W64, r, RDI)
		a.ALUImm(ADD, W64, r, int32(i))
		a.Load(8, RAX, R12, int32(8*i))
		a.Store(4, RBP, -8, r)
		a.MovImm64(RSI, uint64(i)<<40)
		a.LockXadd(4, R13, 0, r)
		a.Jcc(CondNE, top)
	}
	return 7 * reps
}

// TestAsm_allocs checks that emitting into a grown Asm allocates nothing:
// only the buffer and the label reference list ever grow.
func TestAsm_allocs(t *testing.T) {
	var a Asm
	top := a.NewLabel()
	a.Bind(top)
	a.Grow(1 << 16)
	allocs := testing.AllocsPerRun(10, func() {
		a.Mov(W64, R8, RDI)
		a.ALUImm(ADD, W64, R9, 1000)
		a.Load(8, RAX, R12, 8)
		a.Store(1, RBP, -8, RSI)
		a.MovImm64(RSI, 1<<40)
		a.LeaIndex(RAX, R13, R12, 8, -1)
		a.LockCmpxchg(8, R13, 0, RCX)
		a.Nop(13)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch of emits", allocs)
	}
}

// BenchmarkAsm measures encoding speed: a fresh Asm per iteration, whose
// buffer grows as it goes (fresh) or is sized up front with Grow (grown).
func BenchmarkAsm(b *testing.B) {
	const reps = 100
	for _, grow := range []bool{false, true} {
		name := "fresh"
		if grow {
			name = "grown"
		}
		b.Run(name, func(b *testing.B) {
			insts := 0
			for b.Loop() {
				var a Asm
				if grow {
					a.Grow(4096)
				}
				top := a.NewLabel()
				a.Bind(top)
				insts = emitMix(&a, top, reps)
				if _, err := a.Finish(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*insts), "ns/insn")
		})
	}
}

func TestEnums_String(t *testing.T) {
	for _, tc := range []struct {
		v    fmt.Stringer
		want string
	}{
		{W32, "W32"}, {W64, "W64"}, {Width(2), "Width(2)"},
		{ADD, "add"}, {CMP, "cmp"}, {ALUOp(8), "ALUOp(8)"},
		{ROL, "rol"}, {SAR, "sar"}, {ShiftOp(6), "ShiftOp(6)"},
		{CondO, "o"}, {CondAE, "ae"}, {CondG, "g"}, {Cond(16), "Cond(16)"},
		{Label(3), "L3"},
	} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.v, got, tc.want)
		}
	}
	// The condition names are the suffixes x86asm knows.
	for cc := range Cond(16) {
		if got, want := "J"+strings.ToUpper(cc.String()), xJcc[cc].String(); got != want {
			t.Errorf("Cond(%d): j%v, x86asm says %v", uint8(cc), cc, want)
		}
	}
}

func TestCond_Not(t *testing.T) {
	for _, p := range [][2]Cond{{CondO, CondNO}, {CondB, CondAE}, {CondE, CondNE}, {CondBE, CondA},
		{CondS, CondNS}, {CondP, CondNP}, {CondL, CondGE}, {CondLE, CondG}} {
		if p[0].Not() != p[1] || p[1].Not() != p[0] {
			t.Errorf("%v.Not() = %v, %v.Not() = %v", p[0], p[0].Not(), p[1], p[1].Not())
		}
	}
}
