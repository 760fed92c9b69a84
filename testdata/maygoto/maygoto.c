// SPDX-License-Identifier: GPL-2.0
//
// maygoto runs loops bounded by may_goto (BPF_JMP|BPF_JCOND, opcode 0xe5,
// Linux 6.9), the way libbpf's can_loop uses it, for TestMayGoto_kernel:
// a loop that only the budget ends, a loop that ends by its own condition
// first, the budget of a bpf-to-bpf call's frame and of each bpf_loop
// callback. Iteration counts go to the array "out".
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// may_goto_or(label): the instruction may_goto, written by its encoding
// (opcode 0xe5, registers 0, a 16-bit offset in slots relative to the next
// instruction, imm 0) so that any assembler takes it. It jumps to label
// once the frame's loop budget is spent, and otherwise falls through. The
// offset goes out as the low half of a 32-bit word (bytes 2-5) because
// LLVM's BPF backend places a 16-bit PC-relative fixup at bytes 4-5.
#define may_goto_or(label)                                                 \
	asm volatile goto("1: .byte 0xe5, 0x00\n"                          \
			  "   .long ((%l[" #label "] - 1b - 8) / 8) & 0xffff\n" \
			  "   .short 0\n"                                    \
			  :::: label)

// can_loop is true while the frame's loop budget lasts.
#define can_loop                                 \
	({                                       \
		__label__ spent, more;           \
		int ok_ = 1;                     \
		may_goto_or(spent);              \
		goto more;                       \
	spent:                                   \
		ok_ = 0;                         \
	more:                                    \
		ok_;                             \
	})

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

static void put(__u32 slot, __u64 v)
{
	bpf_map_update_elem(&out, &slot, &v, BPF_ANY);
}

// spin counts how often can_loop is true in a frame of its own.
static __attribute__((noinline)) __u64 spin(__u64 start)
{
	__u64 n = start;

	while (can_loop)
		n++;
	return n;
}

static long spin_cb(__u64 index, void *ctx)
{
	__u64 n = 0;

	while (can_loop)
		n++;
	put(4 + index, n);
	return 0;
}

// maygoto_exhaust: a loop that only the budget ends.
SEC("xdp")
int maygoto_exhaust(struct xdp_md *ctx)
{
	__u64 n = 0;

	while (can_loop)
		n++;
	put(0, n);
	return XDP_PASS;
}

// maygoto_bounded: a loop over the packet's first byte's worth of bytes
// that ends by its own condition long before the budget; the budget only
// makes it verifiable without unrolling.
SEC("xdp")
int maygoto_bounded(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;
	__u64 sum = 0, i = 0;

	if (data + 1 > end)
		return XDP_ABORTED;
	while (i < data[0] && can_loop) {
		if (data + 1 + (i & 0xff) + 1 > end)
			break;
		sum += data[1 + (i & 0xff)];
		i++;
	}
	put(1, i);
	put(2, sum);
	return sum & 1 ? XDP_DROP : XDP_PASS;
}

// maygoto_frames: the caller spends a little of its budget, a callee
// exhausts its own, the caller then exhausts what it has left; two bpf_loop
// callbacks exhaust one budget each.
SEC("xdp")
int maygoto_frames(struct xdp_md *ctx)
{
	__u64 n = 0;

	for (int i = 0; i < 3 && can_loop; i++)
		n++;
	put(3, spin(0));
	while (can_loop)
		n++;
	put(6, n);
	put(7, bpf_loop(2, spin_cb, 0, 0));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
