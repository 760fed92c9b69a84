// Package fuzzgen owns the random program generators of the differential
// tests. Generate, described here, feeds the engines' comparison with the
// kernel; GeneratePtr (ptr.go) feeds the verifier's, with programs that
// do pointer and bounds tricks, right or with one near miss, for XDP,
// sched_cls and socket filter, and their inputs (internal/verifuzz).
//
// From a seed Generate deterministically builds an XDP program that the
// Linux 6.18 verifier accepts, together with its input packet, such that the
// output packet and the return value capture the program's whole final
// state. The same program runs in the kernel (BPF_PROG_TEST_RUN) and in
// waggle's engines, and any difference is a bug in one of them.
//
// # Program shape
//
//	slot
//	 0   r2 = *(u32 *)(r1 + 4)        xdp_md.data_end   } the ctx loads; ForInterp and
//	 1   r1 = *(u32 *)(r1 + 0)        xdp_md.data       } ForConformance replace them
//	 2   r3 = r1
//	 3   r3 += 256                    PacketSize
//	 4   if r3 <= r2 goto +2
//	 5   w0 = 0xbad                   ShortReturn: packet too short
//	 6   exit
//	 7   *(u64 *)(r10 - 8) = r1       spill the packet pointer
//	 8   *(u64 *)(r10 - 16) = r2      and the end of the packet
//	     stack window init            8 slots, from the packet or constants
//	     r0, r2-r9, r1 init           from the packet or constants
//	     body                         random, see below
//	     epilogue                     r0-r9 and the stack window into the packet
//	     r0 = *(u64 or u32 *)(r9 + k) one word of the output
//	     exit
//
// The return value is one 8- or 4-byte word of the output, chosen at random.
// An XDP test run reports only the low 32 bits of r0; Linux 6.18 neither
// rejects nor clamps any XDP return value (checked: -1 and
// 0x123456789abcdef0 come back as 0xffffffff and 0x9abcdef0), and the
// output packet holds all 64 bits of every register anyway.
//
// # Packet layout (PacketSize bytes)
//
//	  0 ..  79  in: initial r0-r9 words      out: final r0-r9 (8 bytes each, LE)
//	 80 .. 143  in: initial stack window     out: final stack window, slot r10-88 first
//	144 .. 255  scratch: the body stores here (and loads anywhere in the packet)
//
// # Stack layout
//
//	r10 -   8          the packet pointer (spilled by the prologue)
//	r10 -  16          the end of the packet (data_end, spilled likewise)
//	r10 -  24          the epilogue's save slot for r9
//	r10 -  88 .. - 25  the window: 8 slots, initialised by the prologue, that
//	                   the body loads, stores and runs atomics on
//	r10 - 104 .. - 89  free: never used by generated programs (rewrites that
//	                   need scratch slots, such as difftest's, use them)
//
// # Body
//
// The body is a tree of blocks: straight-line instructions, forward
// conditional jumps that skip whole nodes of their block, if/else diamonds
// (the "else" reached only by the conditional jump, the join by ja or
// gotol, so no instruction is unreachable, which the verifier rejects), and
// short counted loops whose counter register the loop body never writes.
// With Config.MayGoto, half the loops start with may_goto, as clang compiles
// `while (can_loop)`: a jump out of the loop that only a spent loop budget
// takes, which these loops never spend.
// Every instruction of RFC 9669 that an XDP program may use without helpers
// appears: ALU and ALU64 of every operation with register and immediate
// sources, signed division and modulo, movsx, byte swaps, lddw, JMP and
// JMP32 of every condition, ja and gotol, loads and stores of every size
// (sign-extending loads too) on the stack and the packet, and every atomic
// operation of both sizes on stack slots. Division and modulo by zero, by -1
// and of INT_MIN are generated on purpose; shifts by immediate stay in range
// (the verifier rejects others). Packet pointers exist only inside short
// fixed sequences, so the body's registers always hold scalars.
package fuzzgen
