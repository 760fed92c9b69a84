// bpf-to-bpf calls (within .text and from a program section), a bounded
// loop, and references to global data in .data, .rodata and .bss and to maps.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

const volatile __u32 weights[8] = {1, 2, 3, 5, 8, 13, 21, 34};
__u32 scale = 3;
__u64 total;

static __noinline __u64 weighted_sum(__u32 n)
{
	__u64 sum = 0;
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < n && i < 64; i++)
		sum += (__u64)i * weights[i & 7];
	return sum;
}

static __noinline int mix(int a, int b, int c)
{
	return a * scale + b - c;
}

__noinline int classify(__u64 v, int bias)
{
	int r = mix((int)v, bias, 7);
	if (r < 0)
		return XDP_DROP;
	return r & 1 ? XDP_PASS : XDP_TX;
}

SEC("xdp")
int calls(struct xdp_md *ctx)
{
	__u64 s = weighted_sum(ctx->rx_queue_index);
	int r = classify(s, ctx->ingress_ifindex);
	total += s;

	__u32 k = r & 3;
	__u64 *v = bpf_map_lookup_elem(&stats, &k);
	if (v)
		*v = s + bpf_ktime_get_ns();
	else {
		__u64 init = s;
		bpf_map_update_elem(&stats, &k, &init, 0);
	}
	return r;
}

char _license[] SEC("license") = "GPL";
