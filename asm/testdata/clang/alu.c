// Arithmetic over packet bytes: byte swaps, shifts, 32-bit operations and,
// from v4 on, sign-extending loads and moves and signed division.
#include "common.h"

SEC("xdp")
int alu(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 24 > end)
		return XDP_DROP;

	__s8 b = *(__s8 *)data;
	__s16 h = *(__s16 *)(data + 2);
	__s32 w = *(__s32 *)(data + 4);
	__s64 x = b + h + (__s64)w;
	__u32 u = __builtin_bswap32(*(__u32 *)(data + 8));
	__u64 q = __builtin_bswap64(*(__u64 *)(data + 16));
	__u16 s = __builtin_bswap16(*(__u16 *)(data + 12));
	__u32 r = (u >> (s & 31)) ^ (u << 3);
	q = (q >> 7) | (q << 57);
	x = x >> (b & 63);
#if __BPF_CPU_VERSION__ >= 4
	__s64 d = x / (__s64)(w | 1);
	__s64 m = x % 7;
	__s32 d32 = (__s32)x / (h | 1);
	__s32 m32 = (__s32)q % (__s32)(u | 1);
	x = d + m + d32 + m32 + (__s8)u + (__s16)q + (__s32)(q >> 8);
#else
	x = (__u64)x / ((__u64)w | 1) + (__u32)x % 7;
#endif
	return (__u32)(x ^ q ^ s ^ r) & 3;
}

char _license[] SEC("license") = "GPL";
