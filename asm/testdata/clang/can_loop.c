// can_loop, as libbpf's bpf_experimental.h provides it, written twice:
// with LLVM's may_goto mnemonic (clang 19 and later), and by the
// instruction's encoding (opcode 0xe5, a 16-bit offset in bytes 2-3).
#include "common.h"

#define can_loop_with(insn)                      \
	({                                       \
		__label__ spent, more;           \
		int ok_ = 1;                     \
		asm volatile goto(insn :::: spent); \
		goto more;                       \
	spent:                                   \
		ok_ = 0;                         \
	more:                                    \
		ok_;                             \
	})

#define MAY_GOTO_MNEMONIC "may_goto %l[spent]"
#define MAY_GOTO_BYTES "1: .byte 0xe5, 0\n .long ((%l[spent] - 1b - 8) / 8) & 0xffff\n .short 0"

SEC("xdp")
int mnemonic(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;
	__u32 n = 0;

	while (data + n + 1 <= end && data[n] && can_loop_with(MAY_GOTO_MNEMONIC))
		n++;
	return n;
}

SEC("xdp")
int bytes(struct xdp_md *ctx)
{
	__u64 n = 0;

	while (can_loop_with(MAY_GOTO_BYTES))
		n += 3;
	return n;
}

char LICENSE[] SEC("license") = "GPL";
