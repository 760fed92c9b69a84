// SPDX-License-Identifier: GPL-2.0
//
// target calls helpers whose availability depends on what a program is
// verified for (waggle verify --target): meta calls bpf_xdp_adjust_meta,
// which upstream Linux offers XDP programs and some kernel builds do not;
// xfrm calls bpf_skb_get_xfrm_state, which Linux offers tc programs and
// waggle's runtime does not implement; unprivileged calls bpf_jiffies64, which
// Linux offers only with CAP_BPF.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int meta(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_meta(ctx, -4) < 0)
		return XDP_ABORTED;
	return XDP_PASS;
}

SEC("tc")
int xfrm(struct __sk_buff *skb)
{
	struct bpf_xfrm_state x = {};

	if (bpf_skb_get_xfrm_state(skb, 0, &x, sizeof(x), 0) < 0)
		return TC_ACT_OK;
	return x.reqid & 1 ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("socket")
int unprivileged(struct __sk_buff *skb)
{
	return bpf_jiffies64() & 1;
}

char _license[] SEC("license") = "GPL";
