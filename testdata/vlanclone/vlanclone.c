// SPDX-License-Identifier: GPL-2.0
//
// vlanclone sends copies of the packet with bpf_clone_redirect while it
// pushes and pops VLAN tags, as Open vSwitch's datapath does for a flow
// whose actions are push_vlan, output, pop_vlan, output: each copy leaves
// with the accelerated tag the packet has at that moment. The device is
// cb[0]; cb[1] is the flags of the clones (BPF_F_INGRESS or 0).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("tc")
int vlan_clone(struct __sk_buff *ctx)
{
	__u32 ifindex = ctx->cb[0];
	__u64 flags = ctx->cb[1];

	/* The packet as it came (a tag in it stays in it). */
	bpf_clone_redirect(ctx, ifindex, flags);
	/* 802.1Q, priority 1, VLAN 100: accelerated. */
	bpf_skb_vlan_push(ctx, bpf_htons(ETH_P_8021Q), 0x2064);
	bpf_clone_redirect(ctx, ifindex, flags);
	/* 802.1ad, VLAN 7: the first tag moves into the packet. */
	bpf_skb_vlan_push(ctx, bpf_htons(ETH_P_8021AD), 7);
	bpf_clone_redirect(ctx, ifindex, flags);
	/* Off goes the accelerated tag; the one in the packet takes its place. */
	bpf_skb_vlan_pop(ctx);
	bpf_clone_redirect(ctx, ifindex, flags);
	bpf_skb_vlan_pop(ctx);
	bpf_clone_redirect(ctx, ifindex, flags);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
