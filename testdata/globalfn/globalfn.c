// SPDX-License-Identifier: GPL-2.0
//
// globalfn has XDP programs that call global functions (non-static,
// noinline: BTF linkage global), which Linux verifies once, on their own,
// for any arguments their prototype allows, rather than for what each
// caller passes (TestGlobalFuncs_kernel; TestVerify_kernel compares every
// verdict with the kernel's). Programs named ok_* are safe; bad_* are
// refused, each for one reason.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define __global __attribute__((noinline))

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

// dead is false, and the verifier knows it: .rodata is frozen.
const volatile int dead = 0;

// proto_of reads the EtherType, checking the packet's length itself.
__global int proto_of(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *p = data;

	if (data + 14 > end)
		return -1;
	return p[12] << 8 | p[13];
}

// count adds one to a counter; it checks the index itself.
__global int count(__u32 i)
{
	__u64 *v;

	if (i >= 4)
		return 0;
	v = bpf_map_lookup_elem(&counts, &i);
	if (!v)
		return 0;
	__sync_fetch_and_add(v, 1);
	return 1;
}

SEC("xdp")
int ok_calls(struct xdp_md *ctx)
{
	int proto = proto_of(ctx);

	count(0);
	count(1);
	count(2);
	count(3);
	return proto == 0x0800 ? XDP_PASS : XDP_DROP;
}

// slot reads a table at an index it does not check: safe for what the
// caller passes, not for any __u32.
__global int slot(__u32 i)
{
	volatile __u64 table[4] = {1, 2, 3, 4};

	return table[i];
}

SEC("xdp")
int bad_caller_bounds(struct xdp_md *ctx)
{
	__u32 i = ctx->ingress_ifindex & 3;

	return slot(i) ? XDP_PASS : XDP_DROP;
}

// first reads through a pointer it does not test for NULL.
__global int first(const __u32 *p)
{
	return *p;
}

SEC("xdp")
int bad_maybe_null(struct xdp_md *ctx)
{
	__u32 x = ctx->ingress_ifindex;

	return first(&x) ? XDP_PASS : XDP_DROP;
}

struct big {
	__u64 a, b;
};

__global int sum(const struct big *b)
{
	if (!b)
		return 0;
	return b->a + b->b;
}

SEC("xdp")
int bad_too_small(struct xdp_md *ctx)
{
	__u64 small = ctx->ingress_ifindex;

	return sum((const struct big *)&small) ? XDP_PASS : XDP_DROP;
}

// deref takes memory that is never NULL.
__global int deref(const __u32 *p __attribute__((btf_decl_tag("arg:nonnull"))))
{
	return *p;
}

SEC("xdp")
int bad_null_to_nonnull(struct xdp_md *ctx)
{
	const __u32 *volatile p = 0;

	return deref(p) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int ok_nonnull(struct xdp_md *ctx)
{
	__u32 x = ctx->ingress_ifindex;

	return deref(&x) ? XDP_PASS : XDP_DROP;
}

// broken reads past its own stack, whatever it is given.
__global int broken(__u32 i)
{
	volatile __u64 table[2] = {1, 2};

	return table[i + 2];
}

SEC("xdp")
int ok_dead_call(struct xdp_md *ctx)
{
	if (dead)
		return broken(0);
	return XDP_PASS;
}

SEC("xdp")
int bad_live_call(struct xdp_md *ctx)
{
	broken(0);
	return XDP_PASS;
}

// shrink moves the packet's start: packet pointers the caller holds are
// stale after the call.
__global int shrink(struct xdp_md *ctx)
{
	return bpf_xdp_adjust_head(ctx, 4);
}

SEC("xdp")
int bad_stale_packet(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *p = data;

	if (data + 1 > end)
		return XDP_DROP;
	shrink(ctx);
	return *(volatile __u8 *)p ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
