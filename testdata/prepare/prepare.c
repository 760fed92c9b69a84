// SPDX-License-Identifier: GPL-2.0
//
// Programs that cannot all be prepared, as Linux loads them: each on its
// own. entry (XDP) tail-calls, by the first byte of the packet, good or bad
// ("tail-good", "tail-bad": sections libbpf does not know, so they take
// entry's type). bad calls bpf_skb_load_bytes, which XDP programs may not
// call: the kernel refuses it, and so does waggle, without refusing the
// others. untyped is in a section that names no type and in no prog array.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int good(struct xdp_md *ctx);
int bad(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int(void *));
} jmp SEC(".maps") = {
	.values = {
		[0] = (void *)&good,
		[1] = (void *)&bad,
	},
};

SEC("xdp")
int entry(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;

	if (data + 1 > end)
		return XDP_ABORTED;
	bpf_tail_call(ctx, &jmp, *(__u8 *)data);
	return XDP_PASS;
}

SEC("tail-good")
int good(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("tail-bad")
int bad(struct xdp_md *ctx)
{
	char b[4];

	bpf_skb_load_bytes(ctx, 0, b, sizeof(b));
	return XDP_TX;
}

SEC("xdp")
int other(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("from-netdev")
int untyped(struct __sk_buff *skb)
{
	return skb->len > 100;
}

char LICENSE[] SEC("license") = "GPL";
