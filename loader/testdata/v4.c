//go:build ignore

// Instructions only -mcpu=v4 has: sdiv/smod (offset 1), movsx (offset 8,
// 16, 32), sign-extending loads, unconditional bswap, gotol.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int signed_ops(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	long a = (long)ctx->ingress_ifindex - 100;
	int b = (int)ctx->rx_queue_index - 7;
	long r = 0;

	if (data + 8 > end)
		return XDP_PASS;
	r += a / 3;
	r += a % 5;
	r += b / -2;
	r += b % 3;
	r += (signed char)a;
	r += (short)b;
	r += (int)a;
	r += *(signed char *)data;
	r += *(short *)(data + 2);
	r += *(int *)(data + 4);
	r += __builtin_bswap64(a) >> 60;
	r += __builtin_bswap32(b) >> 28;

	/* Every offset-carrying form once, whatever the optimiser picks. */
	asm volatile(
		"r1 = 5\n"
		"r2 = -3\n"
		"w3 = -9\n"
		"r1 = (s8)r2\n"
		"r1 = (s16)r2\n"
		"r1 = (s32)r2\n"
		"w1 = (s8)w2\n"
		"w1 = (s16)w2\n"
		"r1 s/= r2\n"
		"r1 s%%= 3\n"
		"w1 s/= w2\n"
		"w1 s%%= -4\n"
		"r1 = bswap16 r1\n"
		"r1 = bswap32 r1\n"
		"r1 = bswap64 r1\n"
		"*(u64 *)(r10 - 8) = r2\n"
		"r3 = *(s8 *)(r10 - 8)\n"
		"r3 = *(s16 *)(r10 - 8)\n"
		"r3 = *(s32 *)(r10 - 8)\n"
		"gotol +0\n"
		::: "r1", "r2", "r3");
	return r & 3;
}

char LICENSE[] SEC("license") = "GPL";
