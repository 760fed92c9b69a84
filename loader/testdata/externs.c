// SPDX-License-Identifier: GPL-2.0
//
// externs refers to symbols it does not define: a map of another object
// (declared extern, as samples/bpf/xdp_sample.bpf.h declares its maps for
// bpftool gen object to join), a kernel variable (__ksym), and a symbol of
// inline assembly. The first is a reference the loader cannot resolve; the
// others are what the kernel's loader resolves or leaves as a constant.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

typedef struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} array_map;

extern array_map shared_counts;
extern __u64 shared_total;

array_map own_counts SEC(".maps");

extern void _stext __ksym;

SEC("xdp")
int uses_extern_map(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&shared_counts, &k);

	return v ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int uses_extern_var(struct xdp_md *ctx)
{
	return shared_total ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int uses_own_map(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&own_counts, &k);

	return v ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int uses_ksym(struct xdp_md *ctx)
{
	__u64 p = (__u64)&_stext;

	asm volatile("" : "+r"(p));
	return p & 1 ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int uses_asm_symbol(struct xdp_md *ctx)
{
	__u64 v;

	asm volatile("%0 = ASM_SYMBOL ll" : "=r"(v));
	return v ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
