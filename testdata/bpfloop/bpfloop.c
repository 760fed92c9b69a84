// SPDX-License-Identifier: Apache-2.0
//
// bpf_loop with everything taken from the packet, so that one program
// covers the helper's cases on every engine and in the kernel: the count,
// the flags, the index at which the callback ends the loop, and whether
// the callback is one that runs a loop itself (a callback two frames
// deep). Rebuild with `go generate` in the repository's root.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

struct acc {
	__u64 sum;
	__u32 stop;
	__u32 calls;
};

struct params {
	__u32 n;
	__u32 flags;
	__u32 stop;
	__u32 nested;
};

// cb adds its index to the sum, records it in seen (an update: a helper
// call inside the callback) and ends the loop at index stop.
static long cb(__u32 i, struct acc *a)
{
	__u32 k = i & 3;
	__u64 v = i;

	a->sum += i;
	a->calls++;
	bpf_map_update_elem(&seen, &k, &v, BPF_ANY);
	return i == a->stop;
}

// outer runs a loop of 3 in each of its iterations.
static long outer(__u32 i, struct acc *a)
{
	bpf_loop(3, cb, a, 0);
	return 0;
}

SEC("xdp")
int loop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct params *p = data + 14;
	struct acc a = {};
	long r;

	if ((void *)(p + 1) > end)
		return XDP_ABORTED;
	a.stop = p->stop;
	if (p->nested)
		r = bpf_loop(p->n, outer, &a, p->flags);
	else
		r = bpf_loop(p->n, cb, &a, p->flags);
	return (__u32)(a.sum << 20) ^ (a.calls << 8) ^ (__u32)r;
}

char _license[] SEC("license") = "GPL";
